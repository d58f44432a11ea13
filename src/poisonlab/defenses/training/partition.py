"""Certified partition ensembles: Deep Partition Aggregation, SS-DPA and Run-off Election.

Deep Partition Aggregation (DPA; Levine & Feizi, "Deep Partition Aggregation: Provable Defenses
against General Poisoning Attacks", ICLR 2021) splits the training set into ``k`` partitions by a
hash of each sample's *content*, trains one base model per partition and predicts by plurality
vote (ties to the smaller label). Because a sample's partition depends on nothing but its own
bytes, inserting or removing one sample changes one partition and so one base model's vote; the
per-input certificate (:func:`~poisonlab.defenses.training.certificates.dpa_radius`) is the
number of insertions/removals that provably cannot change the prediction.

SS-DPA (the same paper, Sec. 4) certifies against *label flips*: partitions hash the input only,
so a flipped label changes one partition's labels, and every base model may also use all the
training *inputs* without labels (here: a PCA fitted on every input). That unsupervised step sees
every input, so SS-DPA certifies label flips and nothing else.

Run-off Election (ROE; Rezaei, Kaya, Feizi et al., "Run-Off Election: Improved Provable Defense
against Data Poisoning Attacks", ICML 2023) aggregates the *same* base models in two rounds (the
top two classes, then a head-to-head vote over every model's ranking of the two) and certifies
more inputs at the same radius (:func:`~poisonlab.defenses.training.certificates.roe_radius`).
Finite Aggregation (Wang et al., ICML 2022), whose base models each read ``d`` of ``k * d``
buckets, lives in :mod:`.finite_aggregation` and reuses this module's hash and features.

Threat model: the attacker inserts, removes (DPA) or relabels (SS-DPA) up to ``r`` training
samples, knowing everything including the hash and the seeds. The certificate bounds what they can
do to a given test input's prediction; it says nothing about accuracy on inputs whose radius is
small.

Limits: the base models see ``n / k`` samples each, so clean accuracy drops as ``k`` grows; the
certificate assumes each base model is a deterministic function of its partition (here: its own
seed, its own batches, masked optimizer steps, see :mod:`poisonlab.models.ensemble`); a fixed
``features`` map must not be fitted on the training data (it would see every partition). Each
base model's batch order is keyed on its samples' content hashes, not their row numbers
(:func:`poisonlab.models.ensemble.epoch_orders`), so inserting or removing a sample anywhere in
the training set leaves every other partition's model bit-identical (tested).
"""

from __future__ import annotations

import hashlib
import numbers
from typing import Any, ClassVar

import numpy as np

from ..._validation import Interval, Options, check_array, check_is_fitted
from ...base import BaseTrainer
from ...exceptions import DataError, InvalidParameterError
from ...registry import register
from .certificates import Certificate, dpa_radius, roe_radius

#: Training-loop hooks a batched ensemble cannot honour (it runs its own masked optimizer and
#: per-model batches): refused with a message saying why.
_UNSUPPORTED_HOOKS = ("optimizer_factory", "loader_factory", "on_batch_losses", "batch_transform", "callback")


def _check_hooks(trainer: Any, n_models: int, hooks: dict, X: np.ndarray) -> None:
    """Refuse the training-loop hooks a batched ensemble cannot honour, unknown hooks and texts."""
    name = type(trainer).__name__
    bad = sorted(h for h in hooks if h in _UNSUPPORTED_HOOKS)
    unknown = sorted(h for h in hooks if h not in _UNSUPPORTED_HOOKS and h != "loss_fn")
    if bad:
        raise InvalidParameterError(
            f"{name} trains its {n_models} base models batched with one masked optimizer "
            f"per model; it cannot use {bad} (choose the optimizer with config.optimizer)")
    if unknown:
        raise InvalidParameterError(f"{name}.fit got unknown hook(s) {unknown}")
    if X.dtype == object:
        raise DataError(f"{name} takes numeric arrays; encode texts first")


def content_hashes(X: Any, *, salt: bytes = b"") -> np.ndarray:
    """The first 8 bytes of ``sha256(salt + row bytes)`` of each row, as uint64.

    The row is hashed as the C-contiguous bytes of its dtype and shape, so it depends on the
    sample alone (the same input given as float32 and float64 hashes differently; give the
    ensemble one dtype). Partitions and each base model's batch order are functions of it.
    """
    arr = np.ascontiguousarray(np.asarray(X))
    if arr.dtype == object:
        rows = (str(r).encode("utf-8") for r in arr)
    else:
        rows = (r.tobytes() for r in arr)
    out = np.empty(len(arr), dtype=np.uint64)
    for i, b in enumerate(rows):
        out[i] = int.from_bytes(hashlib.sha256(salt + b).digest()[:8], "little")
    return out


def content_hash_partitions(X: Any, k: int, *, salt: bytes = b"") -> np.ndarray:
    """Partition of each row: ``int(sha256(salt + row bytes)[:8]) mod k`` (DPA's hash,
    :func:`content_hashes`): inserting or removing a sample moves no other sample.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.arange(12, dtype=np.float32).reshape(6, 2)
    >>> p = content_hash_partitions(X, 3)
    >>> np.array_equal(p[1:], content_hash_partitions(X[1:], 3))    # removing row 0 moves nothing
    True
    """
    return (content_hashes(X, salt=salt) % np.uint64(k)).astype(np.int64)


class PartitionEnsembleClassifier:
    """The fitted ensemble behind the classifier protocol: ``predict``, ``predict_proba`` (vote
    shares), ``vote_statistics`` and ``certify``."""

    def __init__(self, stack: Any, features: Any, aggregation: str, threat: str) -> None:
        self.stack = stack
        self.features = features
        self.aggregation = aggregation
        self.threat = threat

    @property
    def n_classes_(self) -> int:
        return self.stack.n_classes

    def _inputs(self, X: Any) -> np.ndarray:
        Xa = check_array(X, "X", min_ndim=2)
        return _apply_features(self.features, Xa)

    def vote_statistics(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(counts, pairwise)`` of the base models on ``X`` (see :mod:`.certificates`)."""
        return self.stack.vote_statistics(self._inputs(X))

    def certify(self, X: Any, *, method: str | None = None) -> Certificate:
        method = method or self.aggregation
        if method not in ("dpa", "roe"):
            raise InvalidParameterError(f"method must be 'dpa' or 'roe'; got {method!r}")
        if method == "dpa":
            counts = self.stack.vote_counts(self._inputs(X))
            pred, radius = dpa_radius(counts)
        else:
            counts, pairwise = self.vote_statistics(X)
            pred, radius = roe_radius(counts, pairwise)
        return Certificate(prediction=pred, radius=radius, threat=self.threat, method=method,
                           n_models=self.stack.n_models, extra={"counts": counts})

    def predict(self, X: Any) -> np.ndarray:
        return self.certify(X).prediction

    def predict_proba(self, X: Any) -> np.ndarray:
        """Vote shares per class (not calibrated probabilities)."""
        counts = self.stack.vote_counts(self._inputs(X))
        return counts / counts.sum(axis=1, keepdims=True)


def _apply_features(features: Any, X: np.ndarray) -> np.ndarray:
    if features is None:
        return X
    import torch

    from ...models.training import to_tensor

    if isinstance(features, torch.nn.Module):
        out = []
        with torch.no_grad():
            for i in range(0, len(X), 2048):
                out.append(features.eval()(to_tensor(np.array(X[i:i + 2048]))).numpy())
        return np.concatenate(out) if out else np.empty((0,), np.float32)
    return np.asarray(features(X))


@register("trainer", "dpa")
class DeepPartitionAggregation(BaseTrainer):
    """Deep Partition Aggregation: k base models on content-hashed partitions, plurality vote
    (or Run-off Election), and a per-input certificate against insertions and removals.

    Levine & Feizi, ICLR 2021 (DPA); Rezaei et al., ICML 2023 (Run-off Election, with
    ``aggregation="roe"``). All ``k`` base models train at once
    (:func:`poisonlab.models.ensemble.train_many`): k = 1200 small models on MNIST in minutes.

    Parameters
    ----------
    k : int >= 2, default=50
        Number of partitions (base models). More partitions: larger radii, weaker base models.
    aggregation : {"dpa", "roe"}, default="dpa"
        Plurality vote (DPA) or Run-off Election over the same base models; ``certify`` uses the
        matching certificate.
    features : nn.Module, callable or None, default=None
        A fixed map applied to every input before the base models, computed once (not per
        model); e.g. :class:`poisonlab.models.ensemble.GaborFeatures`. It must not be fitted on
        the training data (it would see every partition and void the certificate).
    models_per_chunk : int >= 1, default=200
        Base models trained together (memory, not results: each model depends on its own
        partition only).
    random_state : None, int or Generator
        Seeds the base models (their initial weights and batch orders). The partitions do not
        depend on it: they are a function of the content.

    Attributes
    ----------
    classifier_ : PartitionEnsembleClassifier
    partitions_ : ndarray (n,)
        Each training sample's partition.
    partition_sizes_ : ndarray (k,)
    certificate_ : Certificate
        Set by :meth:`certify` (the last inputs certified).

    Notes
    -----
    ``fit(X, y, *, model_factory, config=None, loss_fn=None)``: ``model_factory`` builds a base
    model (``ModelSpec -> nn.Module``; deterministic layers only, see
    :mod:`poisonlab.models.ensemble`); ``config`` a :class:`~poisonlab.models.TrainConfig` per
    base model (its ``seed`` is replaced by ``random_state`` when one is given); ``loss_fn`` a
    per-sample loss. ``optimizer_factory``, ``loader_factory`` and ``on_batch_losses`` are
    refused: the batched loop runs one masked Adam/SGD per model (``config.optimizer``).

    Bad input: ``k`` above the number of training samples, and any partition that the hash
    leaves empty, are refused (an empty partition's model would vote without data; pick a
    smaller ``k``).

    Examples
    --------
    >>> import numpy as np
    >>> from torch import nn
    >>> from poisonlab.defenses.training.partition import DeepPartitionAggregation
    >>> from poisonlab.models import TrainConfig
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 2)).astype("float32"); y = (X[:, 0] > 0).astype(int)
    >>> dpa = DeepPartitionAggregation(k=10, random_state=0).fit(
    ...     X, y, model_factory=lambda s: nn.Linear(2, 2), config=TrainConfig(epochs=20, lr=0.05, batch_size=8))
    >>> cert = dpa.certify(np.array([[2.0, 0.0], [-2.0, 0.0]], dtype="float32"))
    >>> cert.prediction.tolist(), bool((cert.radius >= 3).all())
    ([1, 0], True)
    """

    _parameter_constraints: ClassVar[dict] = {
        "k": [Interval(numbers.Integral, 2, None, closed="left")],
        "aggregation": [Options(("dpa", "roe"))],
        "features": [None, callable],
        "models_per_chunk": [Interval(numbers.Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }
    #: What the certificate counts.
    threat: ClassVar[str] = "insertion_removal"
    modalities: ClassVar[tuple[str, ...]] = ("image", "tabular", "audio")

    def __init__(self, *, k: int = 50, aggregation: str = "dpa", features: Any = None,
                 models_per_chunk: int = 200, random_state: Any = None) -> None:
        self.k = k
        self.aggregation = aggregation
        self.features = features
        self.models_per_chunk = models_per_chunk
        self.random_state = random_state

    # -- the partition and the features: what DPA and SS-DPA differ in -----------------------
    def _partition(self, X: np.ndarray) -> np.ndarray:
        return content_hash_partitions(X, self.k)

    def _fit_features(self, X: np.ndarray, rng: np.random.Generator) -> Any:
        return self.features

    def _fit(self, X, y, *, model_factory, config, rng, **hooks) -> None:
        from ...models.ensemble import members_from_groups, train_many
        from ._torch_setup import resolve_config

        _check_hooks(self, self.k, hooks, X)
        n = len(X)
        if self.k > n:
            raise InvalidParameterError(f"k must be at most the number of training samples ({n}); got {self.k}")
        cfg = resolve_config(config, self.random_state, rng)
        parts = self._partition(X)
        sizes = np.bincount(parts, minlength=self.k)
        empty = np.flatnonzero(sizes == 0)
        if empty.size:
            shown = ", ".join(map(str, empty[:10])) + (" ..." if empty.size > 10 else "")
            raise DataError(
                f"partition(s) {shown} of k={self.k} received no training sample ({empty.size} empty of {n} "
                f"samples hashed): their base models would vote without data; use a smaller k")
        features = self._fit_features(X, rng)
        F = _apply_features(features, X)
        # batch orders keyed on content, so a sample inserted anywhere changes one model only
        stack = train_many(model_factory, F, y, members_from_groups(parts, self.k), config=cfg,
                           n_classes=int(y.max()) + 1, loss_fn=hooks.get("loss_fn"),
                           models_per_chunk=self.models_per_chunk, sample_keys=content_hashes(X))
        self.partitions_ = parts
        self.partition_sizes_ = sizes
        self.n_classes_ = int(y.max()) + 1
        self.features_ = features
        self.classifier_ = PartitionEnsembleClassifier(stack, features, self.aggregation, self.threat)

    def certify(self, X: Any, *, method: str | None = None) -> Certificate:
        """Predictions and certified radii for ``X`` (``method``: "dpa" or "roe"; default the
        ``aggregation``). Sets ``certificate_``."""
        check_is_fitted(self, "classifier_")
        self.certificate_ = self.classifier_.certify(X, method=method)
        return self.certificate_


@register("trainer", "ss_dpa")
class SemiSupervisedDPA(DeepPartitionAggregation):
    """SS-DPA: partition ensembles certified against label flips, with features learned from
    every training input (no labels).

    Levine & Feizi, ICLR 2021, Sec. 4 (SS-DPA). Partitions hash the input only, so flipping a
    label changes one partition; the base models read a PCA of the inputs fitted on *all*
    training inputs (``n_components``; the paper's unsupervised step, here a linear one) or the
    given ``features``. The certificate counts label flips; asking it for insertions or removals
    is refused (the PCA sees every input).

    Parameters
    ----------
    n_components : int >= 1 or None, default=None
        Components of the unsupervised PCA (None: no PCA; ``features`` or raw inputs).
    k, aggregation, features, models_per_chunk, random_state
        As :class:`DeepPartitionAggregation`.

    Examples
    --------
    >>> import numpy as np
    >>> from torch import nn
    >>> from poisonlab.defenses.training.partition import SemiSupervisedDPA
    >>> from poisonlab.models import TrainConfig
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 4)).astype("float32"); y = (X[:, 0] > 0).astype(int)
    >>> ss = SemiSupervisedDPA(k=10, n_components=2, random_state=0).fit(
    ...     X, y, model_factory=lambda s: nn.Linear(s.input_shape[0], 2),
    ...     config=TrainConfig(epochs=20, lr=0.05, batch_size=8))
    >>> ss.certify(X[:3]).threat
    'label_flip'
    """

    _parameter_constraints: ClassVar[dict] = {
        **DeepPartitionAggregation._parameter_constraints,
        "n_components": [Interval(numbers.Integral, 1, None, closed="left"), None],
    }
    threat: ClassVar[str] = "label_flip"

    def __init__(self, *, k: int = 50, n_components: int | None = None, aggregation: str = "dpa",
                 features: Any = None, models_per_chunk: int = 200, random_state: Any = None) -> None:
        super().__init__(k=k, aggregation=aggregation, features=features, models_per_chunk=models_per_chunk,
                         random_state=random_state)
        self.n_components = n_components

    def _fit_features(self, X: np.ndarray, rng: np.random.Generator) -> Any:
        if self.n_components is None:
            return self.features
        from sklearn.decomposition import PCA

        base = _apply_features(self.features, X)
        flat = base.reshape(len(base), -1)
        if self.n_components > min(flat.shape):
            raise InvalidParameterError(f"n_components must be at most min(n_samples, n_features) = "
                                        f"{min(flat.shape)}; got {self.n_components}")
        pca = PCA(n_components=self.n_components, random_state=int(rng.integers(0, 2**31 - 1))).fit(flat)
        return _PCAFeatures(self.features, pca)


class _PCAFeatures:
    """``features`` then a fitted PCA (SS-DPA's unsupervised step), float32 out."""

    def __init__(self, features: Any, pca: Any) -> None:
        self.features = features
        self.pca = pca

    def __call__(self, X: np.ndarray) -> np.ndarray:
        base = _apply_features(self.features, np.asarray(X))
        return self.pca.transform(base.reshape(len(base), -1)).astype(np.float32)


__all__ = ("DeepPartitionAggregation", "PartitionEnsembleClassifier", "SemiSupervisedDPA",
           "content_hash_partitions", "content_hashes")
