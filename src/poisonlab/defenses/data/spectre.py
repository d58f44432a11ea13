"""SPECTRE: robust whitening and the QUantum Entropy score (Hayase et al. 2021)."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from scipy.linalg import expm

from ..._validation import check_scalar
from ...base import BaseDetector
from ...registry import register
from ._perclass import check_features, per_class, principal_projection, relative_to_median


def robust_whiten(R: np.ndarray, support_fraction: float | None, seed: int) -> np.ndarray:
    """Whiten with a robust mean and covariance (Minimum Covariance Determinant).

    ``Z = (R - mu_rob) Sigma_rob^{-1/2}``: in these coordinates clean samples look isotropic,
    so a small cluster of poisons stands out along its own direction even when it is too small
    to dominate the plain covariance (SPECTRE section 4.2).
    """
    from sklearn.covariance import MinCovDet

    mcd = MinCovDet(support_fraction=support_fraction, random_state=seed).fit(R)
    w, V = np.linalg.eigh(mcd.covariance_)
    w = np.maximum(w, 1e-12 * max(w.max(), 1e-12))
    return (R - mcd.location_) @ V @ np.diag(w ** -0.5) @ V.T


def que_scores(Z: np.ndarray, alpha: float = 4.0) -> np.ndarray:
    """QUantum Entropy scores (SPECTRE, Algorithm QUEscore).

    ``S = Z^T Z / n``; ``Q = exp(alpha (S - I) / (||S||_2 - 1))``; ``tau_i = z_i^T Q z_i / tr(Q)``.
    ``alpha = 0`` gives the squared norm; large ``alpha`` tends to the spectral score along the
    top direction of the whitened covariance.
    """
    n, d = Z.shape
    S = Z.T @ Z / n
    top = np.linalg.eigvalsh(S)[-1]
    scale = top - 1.0 if top - 1.0 > 1e-9 else 1.0
    Q = expm(alpha * (S - np.eye(d)) / scale)
    return np.einsum("ij,jk,ik->i", Z, Q, Z) / np.trace(Q)


@register("detector", "spectre")
class Spectre(BaseDetector):
    """SPECTRE (Hayase, Kong, Somani & Oh 2021, "SPECTRE: Defending Against Backdoor Attacks
    Using Robust Statistics").

    Per class: project centred representations on their top ``n_components`` principal
    directions, whiten with a robust covariance estimate, and score each sample with the
    QUantum Entropy (QUE) score. Robust whitening makes the poisons' direction visible even
    when they are few, where spectral signatures fail.

    Threat model: as spectral signatures (backdoor poisons separable in representation space),
    with poison counts down to a few dozen per class.

    Parameters
    ----------
    n_components : int, default=32
        PCA dimensions kept before robust estimation (the paper uses 32 on CIFAR-10).
    alpha : float, default=4.0
        QUE parameter (the paper's default).
    support_fraction : float in (0, 1], optional
        Fraction of each class the robust estimator fits on; default scikit-learn's
        ``(n + d + 1) / 2``.
    contamination : float in (0, 0.5], default=0.05
    random_state : int, default=0
        Seeds the MCD search.

    Limits
    ------
    The paper's robust estimator is a filtering algorithm with its own epsilon search; this
    implementation uses the Minimum Covariance Determinant (fast-MCD), also a high-breakdown
    estimator, and takes epsilon as ``contamination``. Classes with fewer samples than
    ``2 * n_components`` use fewer components.

    Examples
    --------
    >>> import numpy as np
    >>> from poisonlab.defenses.data import Spectre
    >>> rng = np.random.default_rng(0)
    >>> R = rng.normal(size=(400, 6)); R[:12] += 4
    >>> det = Spectre(n_components=6, contamination=0.03).fit(R, np.zeros(400, int))
    >>> bool(det.flags_[:12].mean() > 0.9)
    True
    """

    def __init__(self, *, n_components: int = 32, alpha: float = 4.0,
                 support_fraction: float | None = None, contamination: float = 0.05,
                 random_state: int = 0) -> None:
        self.n_components = n_components
        self.alpha = alpha
        self.support_fraction = support_fraction
        self.contamination = contamination
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> "Spectre":
        """Score representations ``X`` (n, d) grouped by labels ``y``."""
        check_scalar(self.n_components, "n_components", numbers.Integral, low=1)
        check_scalar(self.alpha, "alpha", numbers.Real, low=0.0)
        check_scalar(self.support_fraction, "support_fraction", numbers.Real, low=0.0, high=1.0,
                     low_inclusive=False, allow_none=True)
        check_scalar(self.random_state, "random_state", numbers.Integral, low=0)
        self._check_threshold_params()
        X, y = check_features(X, y, min_per_class=4)
        X = X.astype(np.float64, copy=False)

        def score(idx: np.ndarray, c: int) -> np.ndarray:
            P = principal_projection(X[idx], self.n_components)
            return que_scores(robust_whiten(P, self.support_fraction, self.random_state), self.alpha)

        raw = per_class(y, score)
        self.raw_scores_ = raw
        self._calibrate(per_class(y, lambda idx, c: relative_to_median(raw[idx])))
        return self
