"""Feature extraction: named layers, and streaming into a memory-mapped array."""

import numpy as np
import pytest

from poisonlab import InvalidParameterError
from poisonlab.models import extract_features

from ._helpers import _blobs, _fit


def test_features_by_named_layer_and_streaming(tmp_path):
    X, y = _blobs()
    clf = _fit(0)
    F = clf.embed(X)
    assert F.shape == (120, 16)
    conv = clf.embed(X, layer="conv2")
    assert conv.shape == (120, 8 * 3 * 3)  # conv2 sees the pooled 3x3 map
    out = np.lib.format.open_memmap(tmp_path / "f.npy", mode="w+", dtype=np.float32, shape=(120, 16))
    extract_features(clf.module_, X, "embedding", batch_size=7, out=out)
    assert np.allclose(np.asarray(out), F)
    with pytest.raises(InvalidParameterError, match="layer 'conv9' does not exist"):
        clf.embed(X, layer="conv9")
