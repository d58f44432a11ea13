"""Finite Aggregation: certified partition ensembles whose base models share buckets.

Finite Aggregation (FA; Wang, Levine & Feizi, "Improved Certified Defenses against Data
Poisoning with (Deterministic) Finite Aggregation", ICML 2022) generalises Deep Partition
Aggregation (:mod:`.partition`):

* the training set is hashed by content into ``k * d`` *buckets* (``h_split``: sha256 of each
  sample, as DPA's partitions, modulo ``k * d``);
* a second, data-independent assignment ``h_spr`` sends every bucket to ``d`` of the ``k * d``
  base models, so that every model trains on the union of exactly ``d`` buckets (here, as in the
  paper's code: ``d`` distinct cyclic shifts drawn once from the seed, bucket ``b`` feeds models
  ``(b + shift_j) mod kd``; :func:`spread_assignment`);
* the prediction is the plurality over the ``k * d`` models (ties to the smaller label), or
  Run-off Election over them (FA+ROE; Rezaei et al., ICML 2023).

Each model sees ``d / (k d) = 1 / k`` of the data, as a DPA model with ``k`` partitions, but an
insertion or removal changes one bucket and so at most ``d`` of ``k d`` votes: the certificate
(:func:`~poisonlab.defenses.training.certificates.fa_radius`, Theorem 2 of the paper) counts
changed buckets with each bucket's actual effect on the vote gap, which certifies more inputs
at a given radius than DPA's when the models disagree. ``d = 1`` is DPA.

Threat model: the attacker inserts or removes up to ``r`` training samples, knowing everything
(the hash, the shifts, the seeds). The certificate bounds what they can do to a given test
input's prediction; it says nothing about inputs whose radius is small.

Limits: training costs ``d`` times DPA's (``k d`` models of ``n / k`` samples each); the
certificate assumes each base model is a deterministic function of its own ``d`` buckets
(:mod:`poisonlab.models.ensemble`) and that ``features`` is not fitted on the training data;
for ``d > 1`` the radius is a lower bound (it ignores that two changed buckets may feed the same
model), not always the exact one. The base models' batch orders are keyed on their samples'
content hashes (:func:`poisonlab.models.ensemble.epoch_orders`), so inserting, removing or
relabelling a sample anywhere leaves every model that no changed bucket feeds bit-identical
(tested).
"""

from __future__ import annotations

import numbers
from typing import Any, ClassVar, Iterator

import numpy as np

from ..._validation import Interval, Options, check_is_fitted, check_seed
from ...base import BaseTrainer
from ...exceptions import DataError, InvalidParameterError
from ...registry import register
from .certificates import Certificate, fa_radius, fa_roe_radius, run_off_vote
from .partition import PartitionEnsembleClassifier, _apply_features, _check_hooks, content_hash_partitions, content_hashes

#: Salt of the shift draw (so the shifts and the models' seeds never share a stream).
_SPREAD_TAG = 0x46415370   # "FASp"


def spread_assignment(k: int, d: int, *, seed: int) -> np.ndarray:
    """FA's ``h_spr``: the ``d`` base models each of the ``k * d`` buckets feeds.

    ``d`` distinct shifts are drawn once from ``seed``; bucket ``b`` feeds models
    ``(b + shift_j) mod kd``, so every bucket feeds ``d`` distinct models and every model trains
    on ``d`` distinct buckets (models ``m`` reads buckets ``(m - shift_j) mod kd``). It depends on
    ``k``, ``d`` and the seed only, never on data.

    Returns
    -------
    ndarray (k * d, d) of int64

    Examples
    --------
    >>> import numpy as np
    >>> s = spread_assignment(3, 2, seed=0)
    >>> s.shape, sorted(np.bincount(s.ravel()).tolist()) == [2] * 6
    ((6, 2), True)
    >>> bool((np.diff(np.sort(s, axis=1), axis=1) > 0).all())     # d distinct models per bucket
    True
    """
    if not isinstance(k, numbers.Integral) or k < 1 or not isinstance(d, numbers.Integral) or d < 1:
        raise InvalidParameterError(f"k and d must be positive ints; got k={k!r}, d={d!r}")
    n = int(k) * int(d)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed) & (2**63 - 1), _SPREAD_TAG]))
    shifts = np.sort(rng.choice(n, size=int(d), replace=False)).astype(np.int64)
    return (np.arange(n, dtype=np.int64)[:, None] + shifts[None, :]) % n


def members_from_spread(buckets: np.ndarray, spread: np.ndarray) -> list[np.ndarray]:
    """Training rows of each base model: the union of the buckets that feed it.

    >>> import numpy as np
    >>> spread = np.array([[0, 1], [1, 2], [2, 0]])          # bucket b feeds models b and b + 1
    >>> [m.tolist() for m in members_from_spread(np.array([0, 1, 2, 0]), spread)]
    [[0, 2, 3], [0, 1, 3], [1, 2]]
    """
    from ...models.ensemble import members_from_groups

    K, d = spread.shape
    per_shift = [members_from_groups(spread[buckets, j], K) for j in range(d)]
    return [np.sort(np.concatenate([per_shift[j][m] for j in range(d)])) for m in range(K)]


class FiniteAggregationClassifier(PartitionEnsembleClassifier):
    """The fitted FA ensemble behind the classifier protocol: ``predict``, ``predict_proba``
    (vote shares), ``scores`` (every model's logits) and ``certify``; the inputs, classes and
    vote shares as DPA's ensemble gives them."""

    def __init__(self, stack: Any, features: Any, spread: np.ndarray, aggregation: str, threat: str) -> None:
        super().__init__(stack, features, aggregation, threat)
        self.spread = spread

    def scores(self, X: Any, *, chunk: int | None = None) -> Iterator[tuple[int, int, np.ndarray]]:
        """Yield ``(i0, i1, scores)``: every base model's logits on inputs ``i0:i1``, shape
        ``(i1 - i0, n_models, n_classes)`` float32 (chunks of about 32 MB by default)."""
        F = self._inputs(X)
        M, C = self.stack.n_models, self.stack.n_classes
        step = chunk or max(1, (8 * 1024 * 1024) // (M * C))
        for i0 in range(0, len(F), step):
            Fc = F[i0:i0 + step]
            out = np.empty((len(Fc), M, C), dtype=np.float32)
            for m0, m1, _, _, lg in self.stack.logits(Fc, batch_size=max(1, len(Fc))):
                out[:, m0:m1, :] = lg.permute(1, 0, 2).numpy()
            yield i0, i0 + len(Fc), out

    def certify(self, X: Any, *, method: str | None = None) -> Certificate:
        method = method or self.aggregation
        if method not in ("fa", "fa_roe"):
            raise InvalidParameterError(f"method must be 'fa' or 'fa_roe'; got {method!r}")
        n = len(X)
        pred = np.empty(n, dtype=np.int64)
        radius = np.empty(n, dtype=np.int64)
        counts = np.zeros((n, self.n_classes_), dtype=np.int64)
        for i0, i1, S in self.scores(X):
            votes = S.argmax(axis=2)
            np.add.at(counts, (np.arange(i0, i1)[:, None], votes), 1)
            if method == "fa":
                pred[i0:i1], radius[i0:i1] = fa_radius(votes, self.spread, self.n_classes_)
            else:
                pred[i0:i1], radius[i0:i1] = fa_roe_radius(S, self.spread)
        return Certificate(prediction=pred, radius=radius, threat=self.threat, method=method,
                           n_models=self.stack.n_models, extra={"counts": counts, "d": self.spread.shape[1]})

    def predict(self, X: Any) -> np.ndarray:
        if self.aggregation == "fa":
            return self.stack.vote_counts(self._inputs(X)).argmax(axis=1)
        counts, pairwise = self.stack.vote_statistics(self._inputs(X))
        return run_off_vote(counts, pairwise)


@register("trainer", "finite_aggregation")
class FiniteAggregation(BaseTrainer):
    """Finite Aggregation: ``k * d`` base models, each on ``d`` of ``k * d`` content-hashed
    buckets, plurality vote (or Run-off Election) and a per-input certificate against
    insertions and removals.

    Wang, Levine & Feizi, ICML 2022 (FA, Theorem 2); Rezaei et al., ICML 2023 (FA+ROE, with
    ``aggregation="fa_roe"``). The ``k * d`` models train at once
    (:func:`poisonlab.models.ensemble.train_many`, overlapping subsets).

    Parameters
    ----------
    k : int >= 2, default=50
        Each model sees ``1 / k`` of the training set (as DPA with ``k`` partitions).
    d : int >= 1, default=2
        Spread: every bucket feeds ``d`` models, every model reads ``d`` buckets; ``k * d``
        models in all (training costs ``d`` times DPA's). ``d = 1`` is DPA.
    aggregation : {"fa", "fa_roe"}, default="fa"
        Plurality (FA) or Run-off Election over the same models (FA+ROE); ``certify`` uses the
        matching certificate.
    features : nn.Module, callable or None, default=None
        A fixed map applied to every input first (never fitted on the training data).
    models_per_chunk : int >= 1, default=200
        Base models trained together (memory, not results).
    random_state : None, int or Generator
        Seeds the base models and the shifts of ``h_spr`` (:func:`spread_assignment`). The
        buckets do not depend on it: they are a function of the content.

    Attributes
    ----------
    classifier_ : FiniteAggregationClassifier
    buckets_ : ndarray (n,)
        Each training sample's bucket.
    bucket_sizes_ : ndarray (k * d,)
    spread_ : ndarray (k * d, d)
        The models each bucket feeds.
    model_sizes_ : ndarray (k * d,)
        Training samples per base model.
    certificate_ : Certificate
        Set by :meth:`certify`.

    Notes
    -----
    Threat model: up to ``radius`` training samples inserted or removed (each changes one bucket,
    hence at most ``d`` models), by an attacker who knows the hash, the shifts and the seeds.
    Limits: see the module docstring (``d`` times DPA's training cost; a lower bound for
    ``d > 1``).

    ``fit(X, y, *, model_factory, config=None, loss_fn=None)`` as
    :class:`~poisonlab.defenses.training.partition.DeepPartitionAggregation`; the same hooks
    are refused. Bad input: ``k * d`` above the number of training samples, and any base model
    whose ``d`` buckets are all empty (it would vote without data; an empty bucket alone is
    harmless), are refused.

    Examples
    --------
    >>> import numpy as np
    >>> from torch import nn
    >>> from poisonlab.defenses.training.finite_aggregation import FiniteAggregation
    >>> from poisonlab.models import TrainConfig
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 2)).astype("float32"); y = (X[:, 0] > 0).astype(int)
    >>> fa = FiniteAggregation(k=10, d=2, random_state=0).fit(
    ...     X, y, model_factory=lambda s: nn.Linear(2, 2), config=TrainConfig(epochs=20, lr=0.05, batch_size=8))
    >>> cert = fa.certify(np.array([[2.0, 0.0], [-2.0, 0.0]], dtype="float32"))
    >>> cert.prediction.tolist(), cert.method, bool((cert.radius >= 3).all())
    ([1, 0], 'fa', True)
    """

    _parameter_constraints: ClassVar[dict] = {
        "k": [Interval(numbers.Integral, 2, None, closed="left")],
        "d": [Interval(numbers.Integral, 1, None, closed="left")],
        "aggregation": [Options(("fa", "fa_roe"))],
        "features": [None, callable],
        "models_per_chunk": [Interval(numbers.Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }
    threat: ClassVar[str] = "insertion_removal"
    modalities: ClassVar[tuple[str, ...]] = ("image", "tabular", "audio")

    def __init__(self, *, k: int = 50, d: int = 2, aggregation: str = "fa", features: Any = None,
                 models_per_chunk: int = 200, random_state: Any = None) -> None:
        self.k = k
        self.d = d
        self.aggregation = aggregation
        self.features = features
        self.models_per_chunk = models_per_chunk
        self.random_state = random_state

    def _fit(self, X, y, *, model_factory, config, rng, **hooks) -> None:
        from ...models.ensemble import train_many
        from ._torch_setup import resolve_config

        K = self.k * self.d
        _check_hooks(self, K, hooks, X)
        n = len(X)
        if K > n:
            raise InvalidParameterError(f"k * d must be at most the number of training samples ({n}); got "
                                        f"k * d = {self.k} * {self.d} = {K}")
        cfg = resolve_config(config, self.random_state, rng)
        buckets = content_hash_partitions(X, K)
        spread = spread_assignment(self.k, self.d, seed=check_seed(cfg.seed))
        members = members_from_spread(buckets, spread)
        sizes = np.array([len(m) for m in members])
        empty = np.flatnonzero(sizes == 0)
        if empty.size:
            shown = ", ".join(map(str, empty[:10])) + (" ..." if empty.size > 10 else "")
            raise DataError(
                f"base model(s) {shown} of k * d = {K} received no training sample (all {self.d} of their "
                f"buckets empty; {n} samples hashed): they would vote without data; use a smaller k or d")
        F = _apply_features(self.features, X)
        stack = train_many(model_factory, F, y, members, config=cfg, n_classes=int(y.max()) + 1,
                           loss_fn=hooks.get("loss_fn"), models_per_chunk=self.models_per_chunk,
                           sample_keys=content_hashes(X))
        self.buckets_ = buckets
        self.bucket_sizes_ = np.bincount(buckets, minlength=K)
        self.spread_ = spread
        self.model_sizes_ = sizes
        self.n_classes_ = int(y.max()) + 1
        self.features_ = self.features
        self.classifier_ = FiniteAggregationClassifier(stack, self.features, spread, self.aggregation, self.threat)

    def certify(self, X: Any, *, method: str | None = None) -> Certificate:
        """Predictions and certified radii (insertions/removals) for ``X`` (``method``: "fa" or
        "fa_roe"; default the ``aggregation``). Sets ``certificate_``."""
        check_is_fitted(self, "classifier_")
        self.certificate_ = self.classifier_.certify(X, method=method)
        return self.certificate_


__all__ = ("FiniteAggregation", "FiniteAggregationClassifier", "members_from_spread", "spread_assignment")
