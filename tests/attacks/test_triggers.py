"""Trigger functions against hand-computed pixels, signals, warps and word placements."""

import numpy as np
import pytest

from poisonlab import DataError, InvalidParameterError
from poisonlab.attacks.triggers import (
    blend,
    char_trigger,
    insert_sentence,
    insert_words,
    patch_pattern,
    patch_slices,
    sinusoid,
    stamp_patch,
    warp,
    warp_grid,
    warping_field,
)

from ._helpers import _images


def test_patch_locations():
    assert patch_slices(28, 28, 3, 3, "bottom-right") == (slice(25, 28), slice(25, 28))
    assert patch_slices(28, 28, 3, 3, "top-left", margin=1) == (slice(1, 4), slice(1, 4))
    assert patch_slices(8, 10, 2, 2, "center") == (slice(3, 5), slice(4, 6))
    with pytest.raises(InvalidParameterError, match="does not fit in 4x4"):
        patch_slices(4, 4, 5, 5, "bottom-right")
    with pytest.raises(InvalidParameterError, match="location must be one of"):
        patch_slices(8, 8, 2, 2, "middle")


def test_stamp_square_grayscale_and_channels():
    X = np.zeros((2, 5, 5), dtype=np.float32)
    out = stamp_patch(X, patch_pattern("square", 2), "bottom-right", value=1.0)
    assert out[:, 3:, 3:].sum() == 8 and out.sum() == 8 and X.sum() == 0
    Xc = np.zeros((1, 3, 5, 5))
    outc = stamp_patch(Xc, patch_pattern("checkerboard", 3), "top-left", value=255)
    assert outc[0, :, 0, 0].tolist() == [255] * 3 and outc[0, :, 0, 1].tolist() == [0] * 3
    Xl = np.zeros((1, 5, 5, 3))
    outl = stamp_patch(Xl, np.ones((1, 1)), (0, 4), value=2.0, channels_last=True)
    assert outl[0, 0, 4].tolist() == [2.0] * 3 and outl.sum() == 6
    with pytest.raises(DataError, match=r"images must be"):
        stamp_patch(np.zeros((3, 4)), np.ones((1, 1)))


def test_blend_hand_computed_and_uint8():
    X = np.full((1, 2, 2), 10.0)
    key = np.array([[0.0, 20.0], [30.0, 10.0]])
    assert blend(X, key, 0.5)[0].tolist() == [[5.0, 15.0], [20.0, 10.0]]
    Xu = np.full((1, 2), 100, dtype=np.uint8)
    out = blend(Xu, np.array([255, 0]), 0.2)
    assert out.dtype == np.uint8 and out[0].tolist() == [131, 80]
    with pytest.raises(DataError, match="does not fit"):
        blend(X, np.zeros((3, 3)), 0.2)


def test_sinusoid_is_the_papers_signal():
    v = sinusoid(2, 8, 0.1, 2)
    assert v.shape == (2, 8)
    assert np.allclose(v[0], 0.1 * np.sin(2 * np.pi * np.arange(8) * 2 / 8))
    assert np.array_equal(v[0], v[1])


def test_warp_with_zero_strength_is_the_identity():
    X, _ = _images(n=4)
    field = warping_field(4, 10, 10, np.random.default_rng(0))
    assert np.allclose(warp(X, warp_grid(field, 0.0)), X, atol=1e-6)
    assert np.allclose(np.abs(field).mean(), 1.0, atol=0.35)  # normalised by mean |P| before upsampling
    # a positive strength moves pixels by at most s/H grid units (the clip keeps it in the image)
    g = warp_grid(field, 0.5)
    ident = warp_grid(field, 0.0)
    assert np.abs(g - ident).max() <= 0.5 * np.abs(field).max() / 10 + 1e-12


def test_trigger_functions_place_words_as_asked():
    X = np.array(["a b c"], dtype=object)
    assert insert_words(X, ("cf",), 1, "start", None)[0] == "cf a b c"
    assert insert_words(X, ("cf",), 2, "end", None)[0] == "a b c cf cf"
    assert insert_words(X, ("cf",), 1, "middle", None)[0] == "a cf b c"
    assert insert_sentence(X, "I watched this 3D movie", "end", None)[0] == "a b c I watched this 3D movie"
    assert char_trigger(X, "zq", "end", None)[0] == "a b czq"
    r = insert_words(X, ("cf", "mn"), 3, "random", np.random.default_rng(0))[0].split()
    assert len(r) == 6 and sum(t in ("cf", "mn") for t in r) == 3
