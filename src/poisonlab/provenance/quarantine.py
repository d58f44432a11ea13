"""Quarantine for new and low-reputation contributors: which samples reach training.

The policy
----------
A contributor is in one of three states, read off their Beta reputation
(:class:`~poisonlab.provenance.reputation.ReputationBook`):

* **trusted** -- at least ``min_verified`` of their samples agreed with the trusted model
  (``verified``) and the lower credible bound of their reputation is at least
  ``min_reputation``. Contributors the defender vouches for (``trusted=``, e.g. the curators of
  the seed data) start here and stay until the *upper* bound falls below ``min_reputation``
  (the burden of proof is reversed for them). Their samples are admitted to training.
* **rejected** -- the upper credible bound of their reputation is below ``reject_below`` (the
  defender is confident most of their samples are wrong), or they belong to a sybil-like group
  (:meth:`~poisonlab.provenance.reputation.ReputationBook.sybil_groups`, when
  ``reject_sybils``). Their held samples are dropped and new ones are refused. Rejection is
  final.
* **quarantined** -- anyone else, new contributors first. Their samples are held; when they
  become trusted, everything held is released into training at once.

A trusted contributor whose lower bound later falls below ``min_reputation`` goes back to
quarantine (their new samples are held again); already admitted samples stay admitted.

:meth:`Quarantine.step` applies the policy to one round of contributions and returns what was
admitted, held, released and dropped, and the decisions as plain dicts (``kind`` quarantine /
release / reject, ``subject``, ``reason``, ``samples``) that a ledger can record.

Threat model and limits
-----------------------
See :mod:`poisonlab.provenance.reputation`: the policy is only as good as the trusted model's
agreement. A patient attacker that contributes ``min_verified`` good samples before poisoning is
released, and then needs enough bad samples to fall below ``min_reputation`` before it is
quarantined again: what it slipped in meanwhile stays admitted. Quarantine also delays honest
newcomers' data by at least one round when they contribute fewer than ``min_verified`` samples at
once.

Examples
--------
>>> from poisonlab.provenance.reputation import ReputationBook
>>> book = ReputationBook(n_classes=2)
>>> q = Quarantine(QuarantinePolicy(min_verified=3, min_reputation=0.3, reject_below=0.1), trusted=["seed"])
>>> book.update(["new"] * 2, labels=[0, 1], trusted_pred=[0, 1], round=1)
>>> r = q.step(["new", "new"], [10, 11], book, round=1)
>>> r.admitted.tolist(), r.held.tolist(), r.decisions[0]["kind"]
([], [10, 11], 'quarantine')
>>> book.update(["new"] * 2, labels=[1, 1], trusted_pred=[1, 1], round=2)
>>> r = q.step(["new", "new"], [12, 13], book, round=2)
>>> r.admitted.tolist(), r.released.tolist(), r.decisions[0]["kind"]
([12, 13, 10, 11], [10, 11], 'release')
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

from .._validation import check_scalar
from ..exceptions import DataError, InvalidParameterError
from .reputation import ReputationBook

TRUSTED, QUARANTINED, REJECTED = "trusted", "quarantined", "rejected"


@dataclass(frozen=True)
class QuarantinePolicy:
    """The thresholds of the quarantine (see the module docstring).

    Parameters
    ----------
    min_verified : int, default=10
        Verified samples (agreeing with the trusted model, not flagged) a contributor needs
        before release.
    min_reputation : float, default=0.6
        The lower credible bound of the reputation needed for release (and to stay trusted).
    reject_below : float, default=0.5
        Reject when the upper credible bound falls below this (0 never rejects on reputation).
    reject_sybils : bool, default=True
        Reject every member of a sybil-like group.
    sybil_min_disagreement, sybil_min_similarity : float, default=0.5, 0.9
        :meth:`~poisonlab.provenance.reputation.ReputationBook.sybil_groups`' thresholds.
    """

    min_verified: int = 10
    min_reputation: float = 0.6
    reject_below: float = 0.5
    reject_sybils: bool = True
    sybil_min_disagreement: float = 0.5
    sybil_min_similarity: float = 0.9

    def __post_init__(self) -> None:
        check_scalar(self.min_verified, "min_verified", numbers.Integral, low=0)
        check_scalar(self.min_reputation, "min_reputation", numbers.Real, low=0.0, high=1.0)
        check_scalar(self.reject_below, "reject_below", numbers.Real, low=0.0, high=1.0)
        if not isinstance(self.reject_sybils, bool):
            raise InvalidParameterError(f"reject_sybils must be a bool; got {self.reject_sybils!r}")
        check_scalar(self.sybil_min_disagreement, "sybil_min_disagreement", numbers.Real, low=0.0, high=1.0,
                     low_inclusive=False)
        check_scalar(self.sybil_min_similarity, "sybil_min_similarity", numbers.Real, low=-1.0, high=1.0)
        if self.reject_below > self.min_reputation:
            raise InvalidParameterError(f"reject_below ({self.reject_below}) must not exceed min_reputation "
                                        f"({self.min_reputation})")


def reputation_status(rep: dict[str, float], policy: QuarantinePolicy) -> str:
    """The state a reputation record (``ReputationBook.reputation()[c]``) earns on its own:
    trusted, rejected or quarantined (sybil groups and the trusted list are applied by
    :class:`Quarantine`)."""
    if rep["upper"] < policy.reject_below:
        return REJECTED
    if rep["verified"] >= policy.min_verified and rep["lower"] >= policy.min_reputation:
        return TRUSTED
    return QUARANTINED


@dataclass(frozen=True)
class QuarantineRound:
    """What :meth:`Quarantine.step` decided for one round.

    Attributes
    ----------
    admitted : ndarray of int
        Sample ids that reach training now: this round's samples from trusted contributors,
        then the released ones.
    held : ndarray of int
        This round's samples put in quarantine.
    released : ndarray of int
        Samples held in earlier rounds (or this one) released now.
    dropped : ndarray of int
        Samples of rejected contributors (this round's and the held ones).
    status : dict of str -> str
        Every contributor's state after the round.
    decisions : list of dict
        ``{"kind", "subject", "reason", "samples"}`` per change of state (and per quarantine of
        new samples), in the order taken.
    groups : list of set of str
        The sybil-like groups found this round (with the policy's thresholds), whether or not the
        policy rejects them.
    """

    admitted: np.ndarray
    held: np.ndarray
    released: np.ndarray
    dropped: np.ndarray
    status: dict[str, str] = field(default_factory=dict)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    groups: list[set[str]] = field(default_factory=list)


class Quarantine:
    """Applies a :class:`QuarantinePolicy` round after round, holding samples in between.

    Parameters
    ----------
    policy : QuarantinePolicy
    trusted : iterable of str, optional
        Contributors trusted from the start (they can still fall back into quarantine).

    Attributes
    ----------
    held_ : dict of str -> list of int
        Sample ids held per contributor.
    status_ : dict of str -> str
    """

    def __init__(self, policy: QuarantinePolicy | None = None, *, trusted: Iterable[str] = ()) -> None:
        self.policy = policy if policy is not None else QuarantinePolicy()
        self.vouched = frozenset(str(c) for c in trusted)
        self.held_: dict[str, list[int]] = {}
        self.status_: dict[str, str] = {c: TRUSTED for c in self.vouched}

    def step(self, contributors: Iterable[Any], sample_ids: Any, book: ReputationBook, *,
             round: int = 0) -> QuarantineRound:
        """Decide one round: ``contributors[i]`` sent sample ``sample_ids[i]``; ``book`` already
        holds this round's evidence (call :meth:`ReputationBook.update` first)."""
        ids = np.asarray([str(c) for c in contributors], dtype=object)
        samples = np.asarray(sample_ids)
        if samples.shape != ids.shape or (samples.size and not np.issubdtype(samples.dtype, np.integer)):
            raise DataError(f"sample_ids must be {ids.size} integer ids, one per contributor entry")
        samples = samples.astype(np.int64)
        p = self.policy
        groups = book.sybil_groups(min_disagreement=p.sybil_min_disagreement,
                                   min_similarity=p.sybil_min_similarity)
        sybils: dict[str, int] = {c: len(g) for g in groups for c in g} if p.reject_sybils else {}
        reps = book.reputation(sorted(set(ids.tolist()) | set(self.held_) | set(self.status_)))
        decisions: list[dict[str, Any]] = []
        new_status: dict[str, str] = {}
        for c, rep in reps.items():
            before = self.status_.get(c)
            if before == REJECTED:
                new_status[c] = REJECTED
                continue
            if c in sybils and c not in self.vouched:  # a vouched-for account is not rejected as a sybil
                st, why = REJECTED, f"member of a sybil-like group of {sybils[c]} contributors"
            else:
                st = reputation_status(rep, p)
                if c in self.vouched and st == QUARANTINED and rep["upper"] >= p.min_reputation:
                    st = TRUSTED  # vouched for: trusted until the evidence says otherwise
                why = (f"reputation {rep['mean']:.3f} (bounds {rep['lower']:.3f}-{rep['upper']:.3f}), "
                       f"{rep['verified']} of {rep['n']} samples verified")
            new_status[c] = st
            if st == REJECTED:
                dropped = self.held_.pop(c, [])
                decisions.append({"kind": "reject", "subject": c, "reason": why,
                                  "samples": [int(s) for s in dropped]})
            elif st == TRUSTED and before != TRUSTED and c in self.held_:
                decisions.append({"kind": "release", "subject": c, "reason": why,
                                  "samples": [int(s) for s in self.held_[c]]})
            elif st == QUARANTINED and before == TRUSTED:
                decisions.append({"kind": "quarantine", "subject": c, "reason": "reputation fell: " + why,
                                  "samples": []})
        self.status_.update(new_status)
        state = np.array([self.status_.get(c, QUARANTINED) for c in ids], dtype=object)
        admit_now = samples[state == TRUSTED]
        hold_now = samples[state == QUARANTINED]
        drop_now = samples[state == REJECTED]
        released: list[int] = []
        dropped: list[int] = [int(s) for d in decisions if d["kind"] == "reject" for s in d["samples"]]
        for d in decisions:
            if d["kind"] == "release":
                released += self.held_.pop(d["subject"])
        held_ids = ids[state == QUARANTINED]
        for c in dict.fromkeys(held_ids.tolist()):
            mine = hold_now[held_ids == c]
            self.held_.setdefault(c, []).extend(int(s) for s in mine)
            decisions.append({"kind": "quarantine", "subject": c,
                              "reason": f"not yet trusted: {reps[c]['verified']} of {p.min_verified} samples "
                                        f"verified, reputation lower bound {reps[c]['lower']:.3f} "
                                        f"(needs {p.min_reputation})",
                              "samples": [int(s) for s in mine]})
        return QuarantineRound(admitted=np.concatenate([admit_now, np.asarray(released, dtype=np.int64)]),
                               held=hold_now, released=np.asarray(released, dtype=np.int64),
                               dropped=np.concatenate([drop_now, np.asarray(dropped, dtype=np.int64)]),
                               status=dict(self.status_), decisions=decisions, groups=groups)

    @property
    def n_held(self) -> int:
        """Samples currently in quarantine."""
        return sum(len(v) for v in self.held_.values())


def decisions_for_ledger(result: QuarantineRound) -> list[dict[str, Any]]:
    """The round's decisions as plain dicts ``{"kind", "subject", "reason", "samples"}``
    (``kind`` in quarantine / release / reject), ready for the ledger's decisions table."""
    return [dict(d, samples=list(d["samples"])) for d in result.decisions]
