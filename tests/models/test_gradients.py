"""PGD: the mask confines the perturbation."""

import numpy as np

from poisonlab.models import ModelSpec, build_model


def test_pgd_mask_confines_the_perturbation():
    """Pixels where the mask is 0 are never changed, in L-inf and L2; the rest still move."""
    from poisonlab.models.gradients import pgd

    model = build_model("cnn", ModelSpec((1, 8, 8), 3))
    X = np.random.default_rng(0).uniform(0.2, 0.8, (6, 1, 8, 8)).astype(np.float32)
    y = np.array([0, 1, 2, 0, 1, 2])
    mask = np.zeros_like(X)
    mask[..., :4, :] = 1
    for norm, eps in (("linf", 0.1), ("l2", 0.5)):
        adv = pgd(model, X, y, eps=eps, norm=norm, steps=10, seed=0, mask=mask)
        assert np.array_equal(adv[..., 4:, :], X[..., 4:, :])
        assert np.abs(adv - X)[..., :4, :].max() > 0
