"""Subset-ensemble disagreement: score each training sample by how strongly the models that did
*not* see it disagree with its label."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from ..._validation import Interval, Options, check_array, check_labels
from ...base import CONTAMINATION, BaseDetector
from ...exceptions import DataError, InvalidParameterError
from ...registry import register


def out_of_subset_disagreement(votes_for_label: np.ndarray, own_vote_agrees: np.ndarray,
                               n_models: int) -> np.ndarray:
    """Share of the models that did not train on a sample whose vote differs from its label.

    ``votes_for_label[i]``: how many of the ``n_models`` models vote for sample ``i``'s label;
    ``own_vote_agrees[i]``: whether the one model that trained on it does. With each sample in
    exactly one subset, ``n_models - 1`` models did not see it:

        score_i = 1 - (votes_for_label_i - own_i) / (n_models - 1)

    >>> out_of_subset_disagreement(np.array([5, 1]), np.array([True, True]), 5).tolist()
    [0.0, 1.0]
    """
    others = votes_for_label - own_vote_agrees.astype(np.int64)
    return 1.0 - others / (n_models - 1)


def out_of_subset_probability(proba_sum_label: np.ndarray, own_proba_label: np.ndarray,
                              n_models: int) -> np.ndarray:
    """``1 -`` the mean probability the models that did not see a sample give its label.

    >>> out_of_subset_probability(np.array([2.5]), np.array([0.5]), 5).tolist()
    [0.5]
    """
    return 1.0 - (proba_sum_label - own_proba_label) / (n_models - 1)


@register("detector", "subset_disagreement")
class SubsetDisagreement(BaseDetector):
    """Subset-ensemble disagreement: train k models on disjoint content-hashed subsets and score
    each sample by the disagreement of the k - 1 models that never saw it with its label.

    The seeds' "train multiple models on different subsets of your data. If they disagree
    significantly on certain samples, those samples are suspicious", made precise with
    out-of-subset votes (the ensemble of Deep Partition Aggregation, Levine & Feizi 2021, reused;
    related to cross-validated label-issue detection, Northcutt et al. 2021). A model that
    trained on a mislabelled sample may have memorised it; the others have not.

    Threat model: the attacker flips labels or adds samples whose label disagrees with what
    clean data teaches (dirty-label poisons). Clean-label poisons (their label is plausible) and
    backdoors frequent enough for every subset to learn the trigger are invisible to it.

    Parameters
    ----------
    k : int >= 2, default=10
        Number of subsets (models). Each model sees ``n / k`` samples.
    measure : {"vote", "probability"}, default="probability"
        Share of out-of-subset models voting for another class, or one minus their mean
        predicted probability of the label (finer ranking).
    epochs, lr, batch_size : training of each subset model (Adam), defaults 50, 0.05, 32.
    contamination : float in (0, 0.5], default=0.1
        Expected poisoned fraction; sets ``threshold_``.
    random_state : None, int or Generator, default=0

    Notes
    -----
    ``fit(X, y, *, model_factory=None, ensemble=None)``: the subset models are a linear model
    on the flattened inputs unless ``model_factory`` (``ModelSpec -> nn.Module``) says otherwise;
    ``ensemble``, a fitted :class:`~poisonlab.defenses.training.partition.DeepPartitionAggregation`
    on the same ``X``, is reused instead of training (its partitions are the subsets).

    Examples
    --------
    >>> import numpy as np
    >>> from poisonlab.defenses.data.subset_disagreement import SubsetDisagreement
    >>> rng = np.random.default_rng(0)
    >>> X = np.r_[rng.normal(0, 1, (100, 2)), rng.normal(4, 1, (100, 2))].astype("float32")
    >>> y = np.r_[np.zeros(100, int), np.ones(100, int)]; y[[3, 150]] = [1, 0]
    >>> det = SubsetDisagreement(k=5, contamination=0.02, random_state=0).fit(X, y)
    >>> sorted(np.argsort(det.scores_)[-2:].tolist())
    [3, 150]
    """

    _parameter_constraints = {
        "k": [Interval(numbers.Integral, 2, None, closed="left")],
        "measure": [Options(("vote", "probability"))],
        "epochs": [Interval(numbers.Integral, 1, None, closed="left")],
        "lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "contamination": CONTAMINATION,
        "random_state": ["random_state"],
    }
    stage = "data"
    unit = "sample"
    family = "label"
    modalities = ("image", "tabular", "audio")

    def __init__(self, *, k: int = 10, measure: str = "probability", epochs: int = 50, lr: float = 0.05,
                 batch_size: int = 32, contamination: float = 0.1, random_state: Any = 0) -> None:
        self.k = k
        self.measure = measure
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.contamination = contamination
        self.random_state = random_state

    def fit(self, X: Any, y: Any, *, model_factory: Any = None, ensemble: Any = None) -> "SubsetDisagreement":
        import torch

        from ..._validation import check_seed
        from ...models.ensemble import members_from_groups, train_many
        from ...models.training import TrainConfig
        from ..training.partition import _apply_features, content_hash_partitions

        Xa = check_array(X, "X", min_ndim=2)
        ya = check_labels(y, len(Xa))
        n = len(Xa)
        if ensemble is not None:
            parts = getattr(ensemble, "partitions_", None)
            if parts is None or len(parts) != n:
                raise DataError("ensemble must be a partition ensemble fitted on this X (partitions_ of "
                                f"length {n})")
            stack, features = ensemble.classifier_.stack, ensemble.features_
            k = stack.n_models
        else:
            if self.k > n:
                raise InvalidParameterError(f"k must be at most the number of samples ({n}); got {self.k}")
            k = self.k
            parts = content_hash_partitions(Xa, k)
            features = None
            factory = model_factory if model_factory is not None else _linear
            seed = check_seed(self.random_state)
            cfg = TrainConfig(epochs=self.epochs, lr=self.lr, batch_size=self.batch_size, seed=seed)
            stack = train_many(factory, Xa, ya, members_from_groups(parts, k), config=cfg,
                               n_classes=int(ya.max()) + 1)
        if stack.n_classes <= ya.max():
            raise DataError(f"y has labels up to {ya.max()} but the ensemble knows {stack.n_classes} classes")
        F = _apply_features(features, Xa)
        label_votes = np.zeros(n, dtype=np.int64)
        own_agrees = np.zeros(n, dtype=bool)
        proba_sum = np.zeros(n, dtype=np.float64)
        own_proba = np.zeros(n, dtype=np.float64)
        yt = torch.as_tensor(np.array(ya), dtype=torch.int64)
        pt = torch.as_tensor(parts)
        for m0, m1, i0, i1, lg in stack.logits(F):
            yb, pb = yt[i0:i1], pt[i0:i1]
            agree = lg.argmax(-1) == yb[None, :]                       # (models, batch)
            p_lab = lg.softmax(-1).gather(-1, yb[None, :, None].expand(m1 - m0, -1, 1))[..., 0].double()
            label_votes[i0:i1] += agree.sum(0).numpy()
            proba_sum[i0:i1] += p_lab.sum(0).numpy()
            mine = (pb >= m0) & (pb < m1)
            if bool(mine.any()):
                rows = torch.nonzero(mine)[:, 0]
                own = pb[rows] - m0
                own_agrees[i0 + rows.numpy()] = agree[own, rows].numpy()
                own_proba[i0 + rows.numpy()] = p_lab[own, rows].numpy()
        if self.measure == "vote":
            scores = out_of_subset_disagreement(label_votes, own_agrees, k)
        else:
            scores = out_of_subset_probability(proba_sum, own_proba, k)
        self.partitions_ = parts
        self.n_models_ = k
        self._calibrate(scores)
        return self


def _linear(spec: Any) -> Any:
    from torch import nn

    return nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(spec.input_shape)), spec.n_classes))


__all__ = ("SubsetDisagreement", "out_of_subset_disagreement", "out_of_subset_probability")
