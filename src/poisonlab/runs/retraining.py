"""Continuous retraining under attack: rounds of new contributions, with and without reputation
and quarantine.

The loop
--------
A deployed model is retrained every round on everything admitted so far. The defender starts from
a vetted **seed set** (``seed_fraction`` of the training split, labelled by trusted curators).
Each of ``rounds`` rounds then brings:

* ``honest_contributors`` honest contributions of ``samples_per_contributor`` samples each,
  drawn without replacement from the rest of the training split with their true labels; each
  honest contributor of a round is a new account with probability ``new_fraction`` (always in
  round 1), otherwise a returning one;
* a coordinated group of ``group_size`` **new** accounts (created in round 1) that each send,
  every round, samples of the **targeted kind** labelled ``flip_to``. The targeted kind is every
  input of class ``target_class`` (``target_kind="class"``: SMS spam appealed as ham -- the
  moderation-appeals example -- or Adult's ``>50K`` rows labelled ``<=50K``, failed fraud
  labelled benign) or only those whose text holds one of ``keywords``
  (``target_kind="keyword"``). The group owns ``attacker_share`` of the targeted-kind samples
  outside the seed set (its own messages), spread evenly over its accounts and the rounds.

Three arms are retrained on the same contributions, round after round:

* ``honest`` -- the group never shows up (the reference);
* ``undefended`` -- every contribution is admitted;
* ``defended`` -- each round the model of the previous round (trained only on what the defence
  admitted) labels the new samples; a :class:`~poisonlab.provenance.reputation.ReputationBook`
  turns agreement into a Beta reputation per contributor, and a
  :class:`~poisonlab.provenance.quarantine.Quarantine` admits the trusted contributors' samples,
  holds new or doubtful contributors' samples until they are verified, and drops the samples of
  rejected contributors (and sybil-like groups).

Every arm records per round the targeted error (error on the test inputs of the targeted kind),
the overall test accuracy, and how many of the group's samples it has admitted; the defended arm
also records what it holds and the reputations.

Limits: the group here is impatient (it mislabels from its first sample); a patient group that
first earns reputation with correct labels is outside this loop (see ``docs/reputation.md``). The
trusted model is the defended arm's own last model, so an early slip feeds on itself.
"""

from __future__ import annotations

import numbers
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np

from .._validation import check_option, check_random_state, check_scalar
from ..exceptions import DataError, InvalidParameterError
from ..provenance.quarantine import Quarantine, QuarantinePolicy
from ..provenance.reputation import ReputationBook

#: What the group mislabels: a whole class, or the class's texts holding a keyword.
TARGET_KINDS = ("class", "keyword")
#: The fast learners retrained each round ("auto": tfidf-logreg for text, logreg otherwise).
LEARNERS = ("auto", "tfidf-logreg", "naive-bayes", "logreg")
#: The arms of a run, in report order.
ARMS = ("honest", "undefended", "defended")
#: The id of the seed set's curators (trusted from the start).
SEED_CONTRIBUTOR = "seed"


@dataclass(frozen=True)
class RetrainingConfig:
    """The retraining loop's setting (see the module docstring); checked on creation.

    Parameters
    ----------
    rounds : int, default=10
    seed_fraction : float, default=0.1
        Share of the training split in the vetted seed set.
    honest_contributors : int, default=20
        Honest contributions per round.
    samples_per_contributor : int, default=15
        Samples per honest contribution.
    new_fraction : float, default=0.5
        Chance that an honest contribution after round 1 comes from a new account.
    group_size : int, default=5
        Accounts of the coordinated group; at most ``honest_contributors``.
    attacker_share : float, default=0.5
        Share of the targeted-kind training samples outside the seed set that the group owns.
    target_kind : {"class", "keyword"}, default="class"
    target_class, flip_to : int, default=1, 0
        The class the group mislabels, and the label it gives.
    keywords : tuple of str, default=()
        For ``target_kind="keyword"`` (text only): words (case-insensitive) that make an input of
        ``target_class`` targeted.
    learner : {"auto", "tfidf-logreg", "naive-bayes", "logreg"}, default="auto"
    min_verified, min_reputation, reject_below, reject_sybils
        The :class:`~poisonlab.provenance.quarantine.QuarantinePolicy`.
    credibility : float, default=0.95
        Of the reputation's credible bounds.
    decay : float, default=1.0
        The reputation's forgetting factor per round.
    patience : int, default=0
        Rounds in which the group labels its samples correctly first, to earn reputation (0: it
        mislabels from round 1). Must be below ``rounds``.
    camouflage : float, default=0.0
        Share of each group account's samples per round that it labels correctly even while
        attacking (to keep its disagreement rate down).
    """

    rounds: int = 10
    seed_fraction: float = 0.1
    honest_contributors: int = 20
    samples_per_contributor: int = 15
    new_fraction: float = 0.5
    group_size: int = 5
    attacker_share: float = 0.5
    target_kind: str = "class"
    target_class: int = 1
    flip_to: int = 0
    keywords: tuple[str, ...] = ()
    learner: str = "auto"
    min_verified: int = 10
    min_reputation: float = 0.6
    reject_below: float = 0.5
    reject_sybils: bool = True
    credibility: float = 0.95
    decay: float = 1.0
    patience: int = 0
    camouflage: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "keywords", tuple(str(k) for k in self.keywords))
        check_scalar(self.rounds, "rounds", numbers.Integral, low=1)
        check_scalar(self.seed_fraction, "seed_fraction", numbers.Real, low=0.0, high=1.0,
                     low_inclusive=False, high_inclusive=False)
        check_scalar(self.honest_contributors, "honest_contributors", numbers.Integral, low=1)
        check_scalar(self.samples_per_contributor, "samples_per_contributor", numbers.Integral, low=1)
        check_scalar(self.new_fraction, "new_fraction", numbers.Real, low=0.0, high=1.0)
        check_scalar(self.group_size, "group_size", numbers.Integral, low=1)
        if self.group_size > self.honest_contributors:
            raise InvalidParameterError(f"group_size must be at most honest_contributors "
                                        f"({self.honest_contributors}); got {self.group_size}")
        check_scalar(self.attacker_share, "attacker_share", numbers.Real, low=0.0, high=1.0,
                     low_inclusive=False, high_inclusive=False)
        check_option(self.target_kind, "target_kind", TARGET_KINDS)
        check_scalar(self.target_class, "target_class", numbers.Integral, low=0)
        check_scalar(self.flip_to, "flip_to", numbers.Integral, low=0)
        if self.flip_to == self.target_class:
            raise InvalidParameterError(f"flip_to must differ from target_class; both are {self.flip_to}")
        if self.target_kind == "keyword" and not self.keywords:
            raise InvalidParameterError("keywords must name at least one word for target_kind='keyword'")
        check_option(self.learner, "learner", LEARNERS)
        check_scalar(self.credibility, "credibility", numbers.Real, low=0.5, high=1.0, high_inclusive=False)
        check_scalar(self.decay, "decay", numbers.Real, low=0.0, high=1.0, low_inclusive=False)
        check_scalar(self.patience, "patience", numbers.Integral, low=0)
        if self.patience >= self.rounds:
            raise InvalidParameterError(f"patience must be below rounds ({self.rounds}); got {self.patience}")
        check_scalar(self.camouflage, "camouflage", numbers.Real, low=0.0, high=1.0, high_inclusive=False)
        self.policy()  # checks min_verified, min_reputation, reject_below, reject_sybils

    def policy(self) -> QuarantinePolicy:
        """The quarantine policy of the defended arm."""
        return QuarantinePolicy(min_verified=self.min_verified, min_reputation=self.min_reputation,
                                reject_below=self.reject_below, reject_sybils=self.reject_sybils)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["keywords"] = list(self.keywords)
        return d


# --- data -------------------------------------------------------------------------------------

def targeted_mask(X: Any, y: np.ndarray, config: RetrainingConfig, modality: str) -> np.ndarray:
    """True for inputs of the targeted kind: class ``target_class`` (and, for
    ``target_kind="keyword"``, texts holding one of the keywords as a word)."""
    mask = np.asarray(y) == config.target_class
    if config.target_kind == "keyword":
        if modality != "text":
            raise InvalidParameterError(f"target_kind='keyword' needs text inputs; the dataset is {modality}")
        from sklearn.feature_extraction.text import CountVectorizer

        vec = CountVectorizer(vocabulary=sorted({k.lower() for k in config.keywords}), lowercase=True,
                              binary=True)
        mask &= np.asarray(vec.transform(np.asarray(X, dtype=object)).sum(axis=1)).ravel() > 0
    return mask


@dataclass(frozen=True)
class Deal:
    """Who sends what: the seed set, and per round the sample indices (into the training
    split), their senders and whether they are the group's. ``labels`` holds the labels as
    given (the group's mislabelled samples relabelled ``flip_to``)."""

    seed: np.ndarray
    labels: np.ndarray
    rounds: tuple[tuple[np.ndarray, np.ndarray, np.ndarray], ...]
    group: tuple[str, ...]


def deal_contributions(y: np.ndarray, targeted: np.ndarray, config: RetrainingConfig,
                       rng: np.random.Generator) -> Deal:
    """Split the training split into the seed set, the group's samples and the honest pool, and
    deal them out round by round (see the module docstring)."""
    y = np.asarray(y)
    n = y.size
    order = rng.permutation(n)
    n_seed = int(round(config.seed_fraction * n))
    seed, rest = np.sort(order[:n_seed]), order[n_seed:]
    tgt_rest = rest[targeted[rest]]
    n_attack = int(round(config.attacker_share * tgt_rest.size))
    per = n_attack // (config.rounds * config.group_size)
    if per < 1:
        raise DataError(f"the group owns {n_attack} targeted samples, fewer than one per account and round "
                        f"({config.group_size} accounts x {config.rounds} rounds): raise attacker_share "
                        f"or lower group_size/rounds")
    attack = tgt_rest[:per * config.rounds * config.group_size]
    honest_pool = np.setdiff1d(rest, tgt_rest[:n_attack])
    honest_pool = honest_pool[rng.permutation(honest_pool.size)]
    per_round = config.honest_contributors * config.samples_per_contributor
    if per_round * config.rounds > honest_pool.size:
        raise DataError(f"the honest pool holds {honest_pool.size} samples; {config.rounds} rounds x "
                        f"{config.honest_contributors} contributors x {config.samples_per_contributor} samples "
                        f"need {per_round * config.rounds}")
    # the group mislabels from round patience + 1 on, except its camouflage share of each account's samples
    lied = np.zeros((config.rounds, config.group_size, per), dtype=bool)
    lied[config.patience:, :, int(round(config.camouflage * per)):] = True
    labels = y.copy()
    labels[attack[lied.ravel()]] = config.flip_to
    group = tuple(f"group-{j}" for j in range(config.group_size))
    rounds = []
    n_honest_ids = 0
    for r in range(config.rounds):
        # honest senders: new accounts, or returning ones drawn from those seen so far
        new = np.ones(config.honest_contributors, dtype=bool) if r == 0 else \
            rng.random(config.honest_contributors) < config.new_fraction
        ids = np.empty(config.honest_contributors, dtype=object)
        ids[new] = [f"honest-{n_honest_ids + k}" for k in range(int(new.sum()))]
        n_old = int((~new).sum())
        if n_old:
            back = rng.choice(n_honest_ids, size=n_old, replace=n_honest_ids < n_old)
            ids[~new] = [f"honest-{k}" for k in back]
        n_honest_ids += int(new.sum())
        h_idx = honest_pool[r * per_round:(r + 1) * per_round]
        a_idx = attack.reshape(config.rounds, config.group_size * per)[r]
        idx = np.concatenate([h_idx, a_idx])
        senders = np.concatenate([np.repeat(ids, config.samples_per_contributor),
                                  np.repeat(np.array(group, dtype=object), per)])
        is_attack = np.concatenate([np.zeros(h_idx.size, bool), np.ones(a_idx.size, bool)])
        rounds.append((idx, senders, is_attack))
    return Deal(seed=seed, labels=labels, rounds=tuple(rounds), group=group)


# --- learners ---------------------------------------------------------------------------------

def make_learner(name: str, modality: str) -> Any:
    """A fresh, unfitted scikit-learn classifier: TF-IDF + logistic regression
    (:func:`~poisonlab.models.pipelines.tfidf_pipeline`), word counts + multinomial naive Bayes,
    or standardised features + logistic regression."""
    from sklearn.pipeline import make_pipeline

    name = check_option(name, "learner", LEARNERS)
    if name == "auto":
        name = "tfidf-logreg" if modality == "text" else "logreg"
    if name in ("tfidf-logreg", "naive-bayes") and modality != "text":
        raise InvalidParameterError(f"learner {name!r} needs text inputs; the dataset is {modality}")
    if name == "tfidf-logreg":
        from ..models.pipelines import DEFAULT_TFIDF, tfidf_pipeline

        return tfidf_pipeline(**DEFAULT_TFIDF)
    if name == "naive-bayes":
        from sklearn.feature_extraction.text import CountVectorizer
        from sklearn.naive_bayes import MultinomialNB

        return make_pipeline(CountVectorizer(), MultinomialNB())
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    return make_pipeline(FunctionTransformer(_flatten), StandardScaler(), LogisticRegression(max_iter=1000))


def _flatten(X: Any) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    return X.reshape(len(X), -1)


def _take(X: Any, idx: np.ndarray) -> Any:
    return X[idx] if isinstance(X, np.ndarray) else np.asarray(X, dtype=object)[idx]


# --- the loop ---------------------------------------------------------------------------------

def run_retraining(train: Any, test: Any, config: RetrainingConfig | None = None, *,
                   random_state: Any = None, model_factory: Callable[[], Any] | None = None,
                   on_round: Callable[[str, dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run the three arms (honest, undefended, defended) of the retraining loop.

    Parameters
    ----------
    train, test : Dataset
        The training split (dealt out as seed set, honest contributions and the group's samples)
        and the held-out test split (targeted error and accuracy).
    config : RetrainingConfig, optional
    random_state : None, int or Generator
        Seeds the deal (who sends what); the learners are deterministic.
    model_factory : callable, optional
        ``() -> unfitted classifier`` (scikit-learn protocol); default :func:`make_learner`.
    on_round : callable ``(arm, record) -> None``, optional
        Called after every round of every arm (round 0 is the seed model).

    Returns
    -------
    dict
        ``config``, ``deal`` (sizes), ``arms`` (per arm, one record per round 0..rounds:
        ``targeted_error``, ``accuracy``, ``n_train``, ``attack_admitted``, and for the defended
        arm ``attack_held``, ``honest_held``, ``rejected``, ``group_rejected``,
        ``group_reputation``, ``honest_reputation``, ``sybil_groups``), ``final`` (per arm, the
        last round), ``decisions`` (the quarantine's, ledger-ready) and ``reputation`` (the
        final book).

    Examples
    --------
    >>> import numpy as np
    >>> from poisonlab.data.dataset import Dataset
    >>> rng = np.random.default_rng(0)
    >>> def blobs(n):
    ...     y = rng.integers(0, 2, n)
    ...     return Dataset(X=(rng.normal(size=(n, 5)) + 2.0 * y[:, None]).astype(np.float32), y=y,
    ...                    classes=("a", "b"), modality="tabular", ids=np.arange(n).astype(str))
    >>> cfg = RetrainingConfig(rounds=2, honest_contributors=4, samples_per_contributor=10, group_size=2,
    ...                        min_verified=5)
    >>> out = run_retraining(blobs(600), blobs(200), cfg, random_state=0)
    >>> sorted(out["arms"]), len(out["arms"]["defended"])
    (['defended', 'honest', 'undefended'], 3)
    >>> out["final"]["defended"]["attack_admitted"]
    0
    """
    config = config if config is not None else RetrainingConfig()
    if not isinstance(config, RetrainingConfig):
        raise InvalidParameterError(f"config must be a RetrainingConfig; got {type(config).__name__}")
    k = train.n_classes
    for name in ("target_class", "flip_to"):
        if getattr(config, name) >= k:
            raise InvalidParameterError(f"{name} must be a class of {train.name or 'the dataset'} "
                                        f"(0..{k - 1}); got {getattr(config, name)}")
    rng = check_random_state(random_state)
    make = model_factory or (lambda: make_learner(config.learner, train.modality))
    on_round = on_round or (lambda arm, rec: None)
    X, Xt = train.X, test.X
    targeted = targeted_mask(X, train.y, config, train.modality)
    t_test = targeted_mask(Xt, test.y, config, test.modality)
    if not t_test.any():
        raise DataError("the test split holds no input of the targeted kind")
    deal = deal_contributions(train.y, targeted, config, rng)
    labels = deal.labels

    def fit_eval(idx: np.ndarray) -> tuple[Any, dict[str, float]]:
        t0 = time.perf_counter()
        model = make().fit(_take(X, idx), labels[idx])
        pred = np.asarray(model.predict(Xt))
        return model, {"targeted_error": float(np.mean(pred[t_test] != test.y[t_test])),
                       "accuracy": float(np.mean(pred == test.y)), "n_train": int(idx.size),
                       "fit_seconds": time.perf_counter() - t0}

    # the group's mislabelled samples (what "attack" counts; camouflage and patience samples are correct)
    is_attack_sample = np.zeros(len(train.y), dtype=bool)
    for idx, _, att in deal.rounds:
        is_attack_sample[idx[att]] = labels[idx[att]] != train.y[idx[att]]
    seed_model, seed_rec = fit_eval(deal.seed)
    arms: dict[str, list[dict[str, Any]]] = {}
    for arm in ARMS:
        rec = {"round": 0, **seed_rec, "attack_admitted": 0}
        arms[arm] = [rec]
        on_round(arm, rec)

    # honest and undefended: everything sent is admitted (the honest arm never sees the group)
    for arm in ("honest", "undefended"):
        pool = [deal.seed]
        for r, (idx, _, att) in enumerate(deal.rounds, 1):
            pool.append(idx[~att] if arm == "honest" else idx)
            admitted = np.concatenate(pool)
            _, rec = fit_eval(admitted)
            rec = {"round": r, **rec, "attack_admitted": int(is_attack_sample[admitted].sum())}
            arms[arm].append(rec)
            on_round(arm, rec)

    # defended: reputation + quarantine against the previous round's model
    book = ReputationBook(n_classes=k, credibility=config.credibility, decay=config.decay)
    quarantine = Quarantine(config.policy(), trusted=[SEED_CONTRIBUTOR])
    book.update([SEED_CONTRIBUTOR] * deal.seed.size, labels[deal.seed], labels[deal.seed], round=0)
    trusted_model, pool, decisions = seed_model, [deal.seed], []
    group = set(deal.group)
    for r, (idx, senders, att) in enumerate(deal.rounds, 1):
        pred = np.asarray(trusted_model.predict(_take(X, idx)))
        book.update(senders, labels[idx], pred, round=r)
        qr = quarantine.step(senders, idx, book, round=r)
        decisions += [{"round": r, **d} for d in qr.decisions]
        pool.append(qr.admitted)
        admitted = np.concatenate(pool)
        trusted_model, rec = fit_eval(admitted)
        held = np.fromiter((s for v in quarantine.held_.values() for s in v), dtype=np.int64)
        rep = book.reputation()
        honest_ids = [c for c in rep if c.startswith("honest-")]
        rec = {"round": r, **rec, "attack_admitted": int(is_attack_sample[admitted].sum()),
               "attack_held": int(is_attack_sample[held].sum()), "honest_held": int((~is_attack_sample[held]).sum()),
               "rejected": sorted(c for c, s in qr.status.items() if s == "rejected"),
               "group_rejected": int(sum(qr.status.get(c) == "rejected" for c in group)),
               "honest_rejected": int(sum(qr.status.get(c) == "rejected" for c in honest_ids)),
               "group_reputation": float(np.mean([rep[c]["mean"] for c in sorted(group)])),  # one order in any process
               "honest_reputation": float(np.mean([rep[c]["mean"] for c in honest_ids])),
               "sybil_groups": [sorted(g) for g in qr.groups]}
        arms["defended"].append(rec)
        on_round("defended", rec)

    n_attack = int(is_attack_sample.sum())
    return {"config": config.to_dict(), "n_classes": k,
            "deal": {"seed": int(deal.seed.size), "honest_per_round": int((~deal.rounds[0][2]).sum()),
                     "attack_per_round": int(deal.rounds[0][2].sum()), "attack_total": n_attack,
                     "group": list(deal.group), "targeted_train": int(targeted.sum()),
                     "targeted_test": int(t_test.sum())},
            "arms": arms, "final": {arm: arms[arm][-1] for arm in ARMS},
            "decisions": decisions, "reputation": book.reputation()}
