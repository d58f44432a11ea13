"""STRIP: STRong Intentional Perturbation (Gao et al. 2019)."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from ..._validation import check_array, check_is_fitted, check_option, check_scalar
from ...base import BaseDetector
from ...exceptions import DataError
from ...registry import register

SUPERIMPOSE = ("add", "blend", "words", "swap")


def mean_entropy(probs: np.ndarray) -> np.ndarray:
    """STRIP's score: Shannon entropy over *classes* of each overlay's prediction, averaged over
    the N overlays of an input (Gao et al. 2019, eq. 5-6). ``probs``: (n_inputs, N, K)."""
    from scipy.special import entr  # -p ln p, with 0 ln 0 = 0

    return entr(probs).sum(axis=2).mean(axis=1) / np.log(2.0)


def blend_overlays(X: np.ndarray, overlays: np.ndarray, weight: float) -> np.ndarray:
    """Image/waveform superimposition: ``(1 - w) x + w x_overlay`` for every (input, overlay)
    pair: (n, 1, ...) and (n, N, ...) broadcast to (n, N, ...)."""
    return (1.0 - weight) * X[:, None] + weight * overlays


def add_overlays(X: np.ndarray, overlays: np.ndarray, high: float) -> np.ndarray:
    """The paper's image superimposition: ``clip(x + x_overlay, 0, high)`` (OpenCV's
    ``addWeighted(x, 1, x_overlay, 1, 0)`` on saturating pixels), so a trigger keeps its strength."""
    return np.clip(X[:, None] + overlays, None, high)


def swap_features(X: np.ndarray, overlays: np.ndarray, rng: np.random.Generator, fraction: float) -> np.ndarray:
    """Tabular superimposition: each overlay copy takes a random ``fraction`` of its features
    from the clean overlay sample."""
    take = rng.random(overlays.shape) < fraction
    return np.where(take, overlays, X[:, None])


def mix_words(texts: np.ndarray, overlays: np.ndarray, rng: np.random.Generator, fraction: float) -> np.ndarray:
    """Text superimposition (word-level mixing, as STRIP-ViTA): keep each word of the input
    with probability ``1 - fraction`` and append the overlay text's words in the same way."""
    out = np.empty(overlays.shape, dtype=object)
    for i, t in enumerate(texts):
        words = t.split()
        for j, o in enumerate(overlays[i]):
            ow = o.split()
            keep = [w for w in words if rng.random() >= fraction]
            add = [w for w in ow if rng.random() < fraction]
            out[i, j] = " ".join(keep + add) or t
    return out


@register("detector", "strip")
class STRIP(BaseDetector):
    """STRIP (Gao, Xu, Wang, Chen, Ranasinghe & Nepal 2019, "STRIP: A Defence Against Trojan
    Attacks on Deep Neural Networks").

    At run time, each input is superimposed with ``n_overlays`` clean held-out inputs and the
    model's predictions on the mixtures are inspected: a clean input's prediction changes with
    the overlay (high entropy), while a triggered input keeps predicting the target (low
    entropy). The score is ``log2(K) - mean entropy`` (higher = more suspicious); the threshold
    is set on clean inputs from ``false_positive_rate`` (the paper's FRR).

    Threat model: the attacker planted an input-agnostic trigger (BadNets, Blended) and controls
    test inputs; the defender has a few hundred clean inputs and the model's probabilities.

    Parameters
    ----------
    n_overlays : int, default=100
        N in the paper.
    superimpose : {"auto", "add", "blend", "words", "swap"}, default="auto"
        "add" (images: the paper's saturating sum ``clip(x + x_overlay, max)``), "blend"
        (audio waveforms, or images by choice: ``(1 - w) x + w x_overlay``), "words" (text),
        "swap" (tabular); "auto" picks by input: strings -> words, 2-D arrays -> swap (pass
        "blend" for (N, T) waveforms), 3-D and 4-D images -> add.
    weight : float in (0, 1), default=0.5
        Overlay weight of "blend"; the fraction of features or words exchanged by "swap" and
        "words".
    false_positive_rate : float in (0, 1), default=0.01
        Fraction of clean reference inputs flagged (FRR).
    batch_size : int, default=64
        Inputs per batch; each batch makes ``batch_size * n_overlays`` predictions in one call.
    clip_max : float, optional
        Pixel ceiling of "add"; default 1.0, or the clean inputs' maximum if that is larger
        (255 for uint8-range images).
    random_state : int, default=0

    Limits
    ------
    Input-specific or sample-dependent triggers (WaNet, clean-label feature collision) keep the
    mixtures' entropy normal and evade it; so does a trigger weak enough to be overwhelmed by
    the overlay. With "swap" a trigger on few features survives only in the overlays that keep
    those features, so tabular STRIP is weaker than image STRIP.

    Examples
    --------
    >>> import numpy as np
    >>> from poisonlab.defenses.inference import STRIP
    >>> class M:  # class 0 if the corner pixel is lit (the backdoor), else follows pixel 1
    ...     def predict_proba(self, X):
    ...         X = X.reshape(len(X), -1); p = np.stack([X[:, 1], 1 - X[:, 1]], 1)
    ...         return np.where(X[:, :1] > 0.9, [[1.0, 0.0]], p)
    >>> rng = np.random.default_rng(0); clean = rng.uniform(0, 0.45, (200, 1, 2, 2))
    >>> det = STRIP(n_overlays=20, false_positive_rate=0.05).fit(clean, model=M())
    >>> trig = clean[:5].copy(); trig[:, 0, 0, 0] = 1.0
    >>> det.flag(trig).tolist()
    [True, True, True, True, True]
    """

    unit = "input"
    threshold_param = "false_positive_rate"

    def __init__(self, *, n_overlays: int = 100, superimpose: str = "auto", weight: float = 0.5,
                 false_positive_rate: float = 0.01, batch_size: int = 64, clip_max: float | None = None,
                 random_state: int = 0) -> None:
        self.n_overlays = n_overlays
        self.superimpose = superimpose
        self.weight = weight
        self.false_positive_rate = false_positive_rate
        self.batch_size = batch_size
        self.clip_max = clip_max
        self.random_state = random_state

    def _mode(self, X: np.ndarray) -> str:
        if self.superimpose != "auto":
            return self.superimpose
        if X.dtype.kind in "OUS":
            return "words"
        return "swap" if X.ndim == 2 else "add"

    def _inputs(self, X: Any) -> np.ndarray:
        arr = np.asarray(X)
        if arr.dtype.kind in "OUS":
            if arr.ndim != 1:
                raise DataError(f"texts must be a 1-D array of str; got shape {arr.shape}")
            return arr
        return check_array(X, "X", min_ndim=2)

    def fit(self, X: Any, *, model: Any) -> "STRIP":
        """Keep clean inputs ``X`` as the overlay pool; calibrate the threshold on them.

        Half of ``X`` (seeded split) becomes the overlay pool, the other half the clean
        references whose scores set the threshold, so no input is mixed with itself.
        """
        from ...models.adapters import as_classifier

        check_scalar(self.n_overlays, "n_overlays", numbers.Integral, low=1)
        check_option(self.superimpose, "superimpose", ("auto", *SUPERIMPOSE))
        check_scalar(self.weight, "weight", numbers.Real, low=0.0, high=1.0, low_inclusive=False,
                     high_inclusive=False)
        check_scalar(self.batch_size, "batch_size", numbers.Integral, low=1)
        check_scalar(self.random_state, "random_state", numbers.Integral, low=0)
        self._check_threshold_params()
        X = self._inputs(X)
        rng = np.random.default_rng(self.random_state)
        perm = rng.permutation(len(X))
        half = len(X) // 2
        if half < self.n_overlays:
            raise DataError(f"STRIP needs at least 2 * n_overlays = {2 * self.n_overlays} clean inputs "
                            f"(half overlay pool, half references); got {len(X)}")
        self.model_ = as_classifier(model)
        if not hasattr(self.model_, "predict_proba"):
            raise DataError("STRIP needs a model with predict_proba")
        self.pool_ = X[perm[:half]]
        self.mode_ = self._mode(X)
        check_scalar(self.clip_max, "clip_max", numbers.Real, allow_none=True)
        if self.mode_ in ("add", "blend"):
            self.high_ = float(self.clip_max) if self.clip_max is not None else max(1.0, float(X.max()))
        else:
            self.high_ = None
        reference = self.score(X[perm[half:]])
        self._calibrate(reference, reference)
        return self

    def score(self, X: Any) -> np.ndarray:
        """``log2(K) - mean entropy`` of each input's ``n_overlays`` superimpositions."""
        check_is_fitted(self, "pool_")
        X = self._inputs(X)
        if self.mode_ != "words" and X.shape[1:] != self.pool_.shape[1:]:
            raise DataError(f"inputs of shape {X.shape[1:]} do not match the clean inputs' {self.pool_.shape[1:]}")
        rng = np.random.default_rng([self.random_state, 1])
        out = np.empty(len(X))
        n_classes = None
        for start in range(0, len(X), self.batch_size):
            xb = X[start:start + self.batch_size]
            picks = rng.integers(0, len(self.pool_), size=(len(xb), self.n_overlays))
            overlays = self.pool_[picks]
            if self.mode_ == "add":
                mixed = add_overlays(xb.astype(np.float32), overlays.astype(np.float32), self.high_)
            elif self.mode_ == "blend":
                mixed = blend_overlays(xb.astype(np.float32), overlays.astype(np.float32), self.weight)
            elif self.mode_ == "swap":
                mixed = swap_features(xb, overlays, rng, self.weight)
            else:
                mixed = mix_words(xb, overlays, rng, self.weight)
            flat = mixed.reshape(len(xb) * self.n_overlays, *mixed.shape[2:])
            probs = self.model_.predict_proba(flat)
            n_classes = probs.shape[1]
            out[start:start + len(xb)] = mean_entropy(probs.reshape(len(xb), self.n_overlays, -1))
        return np.log2(n_classes) - out if n_classes else out

    def flag(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "threshold_")
        return self.score(X) > self.threshold_
