"""STRIP: STRong Intentional Perturbation (Gao et al. 2019)."""

from __future__ import annotations

import numbers
import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..._validation import Interval, Options, check_array, check_is_fitted, check_seed
from ...base import FALSE_POSITIVE_RATE, FPR_RULES, BaseDetector, normal_fpr_threshold
from ...exceptions import AssumptionError, DataError, InvalidParameterError
from ...registry import register

SUPERIMPOSE = ("add", "blend", "words", "swap")


def overlay_entropy(probs: np.ndarray) -> np.ndarray:
    """Shannon entropy in bits over *classes* (the last axis) of each overlay's prediction
    (Gao et al. 2019, eq. 5): ``(..., K) -> (...)``."""
    from scipy.special import entr  # -p ln p, with 0 ln 0 = 0

    return entr(probs).sum(axis=-1) / np.log(2.0)


def mean_entropy(probs: np.ndarray) -> np.ndarray:
    """STRIP's score: Shannon entropy over *classes* of each overlay's prediction, averaged over
    the N overlays of an input (Gao et al. 2019, eq. 5-6). ``probs``: (n_inputs, N, K)."""
    return overlay_entropy(probs).mean(axis=1)


def settled(total: np.ndarray, total_sq: np.ndarray, count: int, boundary: float, z: float,
            floor: float) -> np.ndarray:
    """Which inputs a sequential STRIP may stop for after ``count`` overlays: those whose running
    mean entropy lies more than ``z`` standard errors from the decision ``boundary``.

    The standard error is ``max(s, floor) / sqrt(count)`` with ``s`` the sample standard
    deviation of the input's overlay entropies so far; ``floor`` keeps a run of identical
    entropies from settling an input on no evidence of spread.
    """
    mean = total / count
    var = np.maximum(total_sq / count - mean ** 2, 0.0) * count / max(count - 1, 1)
    se = np.maximum(np.sqrt(var), floor) / np.sqrt(count)
    return np.abs(mean - boundary) > z * se


def blend_overlays(X: np.ndarray, overlays: np.ndarray, weight: float) -> np.ndarray:
    """Image/waveform superimposition: ``(1 - w) x + w x_overlay`` for every (input, overlay)
    pair: (n, 1, ...) and (n, N, ...) broadcast to (n, N, ...)."""
    return (1.0 - weight) * X[:, None] + weight * overlays


def add_overlays(X: np.ndarray, overlays: np.ndarray, high: float) -> np.ndarray:
    """The paper's image superimposition: ``clip(x + x_overlay, 0, high)`` (OpenCV's
    ``addWeighted(x, 1, x_overlay, 1, 0)`` on saturating pixels), so a trigger keeps its strength."""
    out = X[:, None] + overlays
    return np.minimum(out, high, out=out)


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
    boundary : {"quantile", "normal"}, default="quantile"
        How ``false_positive_rate`` becomes the threshold: "quantile", the empirical quantile
        of the clean references' scores; "normal", the paper's rule (Sec. V): a normal
        distribution fitted to the clean entropies, the boundary at its FRR percentile
        (:func:`~poisonlab.base.normal_fpr_threshold`). They differ where the clean entropies
        are skewed; "normal" then flags a measured fraction of clean inputs different from
        ``false_positive_rate``, and refuses (``AssumptionError``) when the fitted normal puts
        the boundary below 0 bits, where no input could be flagged.
    batch_size : int, default=64
        Inputs per batch; each batch makes ``batch_size * n_overlays`` predictions in one call.
    clip_max : float, optional
        Pixel ceiling of "add"; default 1.0, or the clean inputs' maximum if that is larger
        (255 for uint8-range images).
    early_stop : float, optional
        Sequential STRIP (not in the paper): when set, ``score`` and ``flag`` superimpose the
        overlays in rounds of ``round_overlays`` and stop for an input once its running mean
        entropy lies more than ``early_stop`` standard errors from the fitted decision boundary
        (clearly clean or clearly triggered); undecided inputs go on up to ``n_overlays``. The
        overlays are a prefix of the ones the full run draws, and the threshold is always
        calibrated with all ``n_overlays``. Most inputs settle after one round, so scoring makes
        several times fewer predictions; the price is a small chance of a different decision
        near the boundary (measured in ``benchmarks/bench_model_defenses.py``). ``None``
        (default) runs the paper's N overlays for every input.
    round_overlays : int, default=10
        Overlays per round of the sequential mode.
    random_state : int, Generator or None, default=0
        Seeds the pool/reference split and the overlays; resolved once by ``fit`` (``seed_``),
        so ``score`` draws the same overlays for the same inputs every time.

    A torch model is scored through a frozen copy taken at ``fit`` (its convolution weights in
    channels-last layout, about 2x faster on CPU): the threshold belongs to the model as it was
    then, so refit after retraining it.

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

    stage = "inference"
    unit = "input"
    threshold_param = "false_positive_rate"

    _parameter_constraints = {
        "n_overlays": [Interval(numbers.Integral, 1, None, closed="left")],
        "superimpose": [Options(("auto", *SUPERIMPOSE))],
        "weight": [Interval(numbers.Real, 0, 1, closed="neither")],
        "false_positive_rate": FALSE_POSITIVE_RATE,
        "boundary": [Options(tuple(FPR_RULES))],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "clip_max": [Interval(numbers.Real, None, None, closed="neither"), None],
        "early_stop": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "round_overlays": [Interval(numbers.Integral, 2, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(self, *, n_overlays: int = 100, superimpose: str = "auto", weight: float = 0.5,
                 false_positive_rate: float = 0.01, boundary: str = "quantile", batch_size: int = 64,
                 clip_max: float | None = None,
                 early_stop: float | None = None, round_overlays: int = 10, random_state: Any = 0) -> None:
        self.n_overlays = n_overlays
        self.superimpose = superimpose
        self.weight = weight
        self.false_positive_rate = false_positive_rate
        self.boundary = boundary
        self.batch_size = batch_size
        self.clip_max = clip_max
        self.early_stop = early_stop
        self.round_overlays = round_overlays
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

        X = self._inputs(X)
        self.seed_ = check_seed(self.random_state)
        rng = np.random.default_rng(self.seed_)
        perm = rng.permutation(len(X))
        half = len(X) // 2
        if half < self.n_overlays:
            raise DataError(f"STRIP needs at least 2 * n_overlays = {2 * self.n_overlays} clean inputs "
                            f"(half overlay pool, half references); got {len(X)}")
        self.model_ = as_classifier(model)
        if not hasattr(self.model_, "predict_proba"):
            raise DataError("STRIP needs a model with predict_proba")
        if hasattr(self.model_, "inference_copy"):
            # a frozen copy: the threshold belongs to the model as it is now, and a torch CNN
            # runs its many overlays about 2x faster with channels-last weights
            self.model_ = self.model_.inference_copy()
        self.pool_ = X[perm[:half]]
        self.mode_ = self._mode(X)
        if self.mode_ in ("add", "blend"):
            self.high_ = float(self.clip_max) if self.clip_max is not None else max(1.0, float(X.max()))
        else:
            self.high_ = None
        # the threshold always comes from the paper's full N overlays per reference input
        entropy, _, self.n_classes_ = self._mean_entropies(X[perm[half:]], sequential=False)
        reference = np.log2(self.n_classes_) - entropy
        if self.boundary == "normal":
            bound = normal_fpr_threshold(reference, self.false_positive_rate)
            if bound >= np.log2(self.n_classes_):
                # the fitted normal puts the boundary below 0 bits: no input can be flagged
                raise AssumptionError(
                    f"boundary='normal': the normal fitted to the clean entropies puts the "
                    f"false_positive_rate={self.false_positive_rate!r} boundary at "
                    f"{np.log2(self.n_classes_) - bound:.4f} bits, below the lowest entropy possible "
                    f"(0): the clean entropies are too skewed for the paper's normal assumption; use "
                    f"boundary='quantile' or a larger false_positive_rate")
        self._calibrate(reference, reference, rule=self.boundary)
        return self

    def score(self, X: Any, *, return_overlays: bool = False) -> Any:
        """``log2(K) - mean entropy`` of each input's superimpositions (``n_overlays`` of them,
        or fewer for inputs settled early when ``early_stop`` is set). With
        ``return_overlays=True`` also returns how many overlays each input used."""
        check_is_fitted(self, "threshold_")
        self._validate_params()  # early_stop and round_overlays may be changed after fit
        entropy, used, _ = self._mean_entropies(X, sequential=self.early_stop is not None)
        scores = np.log2(self.n_classes_) - entropy
        return (scores, used) if return_overlays else scores

    def _mix(self, xb: np.ndarray, overlays: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.mode_ == "add":
            return add_overlays(xb.astype(np.float32, copy=False), overlays.astype(np.float32, copy=False),
                                self.high_)
        if self.mode_ == "blend":
            return blend_overlays(xb.astype(np.float32, copy=False), overlays.astype(np.float32, copy=False),
                                  self.weight)
        if self.mode_ == "swap":
            return swap_features(xb, overlays, rng, self.weight)
        return mix_words(xb, overlays, rng, self.weight)

    def _entropies(self, xb: np.ndarray, picks: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, int]:
        """Per-overlay entropies (n, k) of inputs ``xb`` superimposed with ``pool_[picks]``."""
        mixed = self._mix(xb, self.pool_[picks], rng)
        n, k = picks.shape
        probs = self.model_.predict_proba(mixed.reshape(n * k, *mixed.shape[2:]))
        return overlay_entropy(probs.reshape(n, k, -1)), probs.shape[1]

    def _mean_entropies(self, X: Any, *, sequential: bool) -> tuple[np.ndarray, np.ndarray, int]:
        """Mean overlay entropy of each input, the overlays each used, and the number of classes."""
        check_is_fitted(self, "pool_")
        X = self._inputs(X)
        if self.mode_ != "words" and X.shape[1:] != self.pool_.shape[1:]:
            raise DataError(f"inputs of shape {X.shape[1:]} do not match the clean inputs' {self.pool_.shape[1:]}")
        rng = np.random.default_rng([self.seed_, 1])  # the seed fit resolved (load restores it)
        out = np.empty(len(X))
        used = np.full(len(X), self.n_overlays, dtype=np.int64)
        n_classes = 0
        for start in range(0, len(X), self.batch_size):
            xb = X[start:start + self.batch_size]
            picks = rng.integers(0, len(self.pool_), size=(len(xb), self.n_overlays))
            part = slice(start, start + len(xb))
            if sequential:
                out[part], used[part], n_classes = self._sequential(xb, picks, rng)
            else:
                ent, n_classes = self._entropies(xb, picks, rng)
                out[part] = ent.mean(axis=1)
        return out, used, n_classes

    def _sequential(self, xb: np.ndarray, picks: np.ndarray,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int]:
        """Sequential STRIP on one batch: rounds of ``round_overlays`` for the inputs not yet
        :func:`settled`; returns their mean entropies, the overlays each used, and K."""
        N, K = self.n_overlays, self.n_classes_
        boundary = np.log2(K) - self.threshold_
        floor = 0.03 * np.log2(K)  # 0.1 bit for 10 classes
        total, total_sq = np.zeros(len(xb)), np.zeros(len(xb))
        used = np.full(len(xb), N, dtype=np.int64)
        count, active = 0, np.arange(len(xb))
        while len(active) and count < N:
            k = min(self.round_overlays, N - count)
            ent, K = self._entropies(xb[active], picks[active, count:count + k], rng)
            total[active] += ent.sum(axis=1)
            total_sq[active] += (ent ** 2).sum(axis=1)
            count += k
            if count < N:
                done = settled(total[active], total_sq[active], count, boundary, self.early_stop, floor)
                used[active[done]] = count
                active = active[~done]
        return total / used, used, K

    def flag(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "threshold_")
        return self.score(X) > self.threshold_

    # --- saving: no pickle (JSON + npz); the model is saved on its own (weights + card) -------

    #: File names :meth:`save` writes (and :meth:`load` reads) inside its folder.
    STATE_FILE: ClassVar[str] = "strip.json"
    ARRAYS_FILE: ClassVar[str] = "strip.npz"
    #: Where :meth:`load` looks for the model when none is given (``models.io.save_model``).
    MODEL_FILE: ClassVar[str] = "model.safetensors"
    SAVE_FORMAT: ClassVar[str] = "poisonlab.strip"
    SAVE_VERSION: ClassVar[int] = 1

    def save(self, directory: str | os.PathLike) -> Path:
        """Save the fitted detector in ``directory`` (created if needed), without pickle.

        Writes ``strip.json`` (parameters, including the early-stop settings; the fitted
        threshold, superimposition mode, pixel ceiling, number of classes and the seed ``fit``
        resolved -- a ``random_state`` of None or a Generator is saved as that seed) and ``strip.npz``
        (the overlay pool, texts as unicode, and the clean references' scores), atomically.
        The model is not saved here: save it beside them as ``model.safetensors`` with
        :func:`poisonlab.models.io.save_model` (what ``poisonlab monitor fit`` does), or pass it
        to :meth:`load`. Returns the folder.

        Examples
        --------
        >>> import tempfile
        >>> import numpy as np
        >>> from poisonlab.defenses.inference import STRIP
        >>> class M:
        ...     def predict_proba(self, X):
        ...         X = X.reshape(len(X), -1); return np.stack([X[:, 1], 1 - X[:, 1]], 1)
        >>> clean = np.random.default_rng(0).uniform(0, 0.45, (100, 1, 2, 2))
        >>> det = STRIP(n_overlays=10, false_positive_rate=0.1).fit(clean, model=M())
        >>> folder = det.save(tempfile.mkdtemp())
        >>> again = STRIP.load(folder, model=M())
        >>> bool(np.array_equal(again.score(clean[:8]), det.score(clean[:8])))
        True
        """
        import io
        import json

        from ..._files import atomic_write_bytes, atomic_write_text

        check_is_fitted(self, "threshold_")
        folder = Path(directory)
        pool = np.asarray(self.pool_)
        text = pool.dtype.kind in "OUS"
        buf = io.BytesIO()
        np.savez(buf, pool=pool.astype(str) if text else pool,
                 reference_scores=np.asarray(self.scores_, dtype=np.float64))
        params = self.get_params()
        seed = int(self.seed_) if hasattr(self, "seed_") else int(params["random_state"])
        if not isinstance(params["random_state"], numbers.Integral):
            params["random_state"] = seed  # None or a Generator: recorded as the seed fit drew from it
        state = {"format": self.SAVE_FORMAT, "version": self.SAVE_VERSION, "params": params, "seed": seed,
                 "threshold": float(self.threshold_), "mode": self.mode_,
                 "high": None if self.high_ is None else float(self.high_), "n_classes": int(self.n_classes_),
                 "pool": {"n": int(len(pool)), "shape": list(pool.shape[1:]),
                          "dtype": "object" if pool.dtype.kind == "O" else str(pool.dtype)}}
        atomic_write_bytes(folder / self.ARRAYS_FILE, buf.getvalue())
        atomic_write_text(folder / self.STATE_FILE, json.dumps(state, indent=2, allow_nan=False) + "\n")
        return folder

    @classmethod
    def load(cls, directory: str | os.PathLike, *, model: Any = None) -> "STRIP":
        """A detector saved by :meth:`save`, ready to ``score``/``flag`` new inputs.

        ``model`` is the model it was fitted with; by default ``model.safetensors`` in the same
        folder, loaded with :func:`poisonlab.models.io.load_classifier` (its model card names
        the architecture). Raises ``DataError`` for a missing or damaged folder.
        """
        import json

        folder = Path(directory)
        state_path, arrays_path = folder / cls.STATE_FILE, folder / cls.ARRAYS_FILE
        for p in (state_path, arrays_path):
            if not p.is_file():
                raise DataError(f"{folder} holds no saved STRIP: {p.name} is missing")
        try:
            state = json.loads(state_path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataError(f"{state_path} is not a saved STRIP: {exc}") from exc
        if not isinstance(state, dict) or state.get("format") != cls.SAVE_FORMAT:
            raise DataError(f"{state_path} is not a saved STRIP (format {cls.SAVE_FORMAT!r} expected)")
        if state.get("version") != cls.SAVE_VERSION:
            raise DataError(f"{state_path} has version {state.get('version')!r}; this poisonlab reads "
                            f"version {cls.SAVE_VERSION}")
        try:
            with np.load(arrays_path, allow_pickle=False) as z:
                pool, reference = z["pool"], z["reference_scores"]
            params = {k: tuple(v) if isinstance(v, list) else v for k, v in state["params"].items()}
            det = cls(**params)
            threshold, mode, high = float(state["threshold"]), state["mode"], state["high"]
            seed = int(state.get("seed", params["random_state"]))
            n_classes = int(state["n_classes"])
            dtype = state["pool"]["dtype"]
        except (KeyError, TypeError, ValueError, OSError) as exc:
            raise DataError(f"{folder}: damaged saved STRIP ({type(exc).__name__}: {exc})") from exc
        try:
            det._validate_params()
        except InvalidParameterError as exc:
            raise DataError(f"{state_path}: {exc}") from exc
        if mode not in SUPERIMPOSE or n_classes < 2 or len(pool) < 1:
            raise DataError(f"{state_path}: inconsistent state (mode {mode!r}, {n_classes} classes, "
                            f"{len(pool)} pooled inputs)")
        if model is None:
            model_path = folder / cls.MODEL_FILE
            if not model_path.is_file():
                raise DataError(f"{folder} holds no {cls.MODEL_FILE}: pass the model to STRIP.load(model=...)")
            from ...models.io import load_classifier

            model = load_classifier(model_path)
        det._set_model(model)
        det.seed_ = seed
        det.pool_ = pool.astype(object) if dtype == "object" else pool
        det.mode_, det.high_, det.n_classes_ = mode, (None if high is None else float(high)), n_classes
        det.threshold_ = threshold
        det.scores_ = np.asarray(reference, dtype=np.float64)
        det.flags_ = det.scores_ > det.threshold_
        return det

    def _set_model(self, model: Any) -> None:
        """``model_``: ``model`` through the classifier protocol, as a frozen inference copy where
        it offers one (as :meth:`fit` does)."""
        from ...models.adapters import as_classifier

        clf = as_classifier(model)
        if not hasattr(clf, "predict_proba"):
            raise DataError("STRIP needs a model with predict_proba")
        self.model_ = clf.inference_copy() if hasattr(clf, "inference_copy") else clf
