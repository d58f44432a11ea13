"""class_conditional_flip: the pair-flip noise matrix R19 measures confident learning against."""

import numpy as np
import pytest

from poisonlab.attacks.data.label_noise import class_conditional_flip


def test_flips_the_rate_of_each_class_to_the_next():
    y = np.repeat(np.arange(4), [10, 20, 30, 40])
    y_noisy = class_conditional_flip(y, 0.25, 4, random_state=0)
    for c, size in zip(range(4), (10, 20, 30, 40)):
        moved = (y == c) & (y_noisy != y)
        assert moved.sum() == round(0.25 * size)
        assert np.all(y_noisy[moved] == (c + 1) % 4)
    assert np.array_equal(y, np.repeat(np.arange(4), [10, 20, 30, 40])), "the input is not modified"


def test_seeded_and_a_shared_generator_advances():
    y = np.repeat(np.arange(3), 50)
    assert np.array_equal(class_conditional_flip(y, 0.2, 3, 7), class_conditional_flip(y, 0.2, 3, 7))
    rng = np.random.default_rng(7)
    first, second = class_conditional_flip(y, 0.2, 3, rng), class_conditional_flip(y, 0.2, 3, rng)
    assert np.array_equal(first, class_conditional_flip(y, 0.2, 3, np.random.default_rng(7)))
    assert not np.array_equal(first, second)


@pytest.mark.parametrize("kw, match", [({"rate": 1.5}, "rate must be in"), ({"n_classes": 1}, "n_classes"),
                                       ({"random_state": -1}, "random_state")])
def test_bad_arguments(kw, match):
    args = {"y": np.arange(6) % 3, "rate": 0.2, "n_classes": 3, "random_state": 0, **kw}
    with pytest.raises(ValueError, match=match):
        class_conditional_flip(**args)
