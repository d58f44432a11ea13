"""Contributor reputation on a user's data: the trusted model's verdict on every contributor's
labels, the Beta reputation, sybil-like groups, and what the quarantine decides.

The maths and the policy live in :mod:`poisonlab.provenance.reputation` and
:mod:`poisonlab.provenance.quarantine`; this module is the workflow between a labelled file, a
trusted model and (optionally) the ledger, so the CLI only parses and renders.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ..exceptions import DataError


@dataclass
class ContributorAssessment:
    """What :func:`assess_contributors` found.

    Attributes
    ----------
    reputation : dict
        Per contributor: ``mean``, ``lower``, ``upper``, ``n``, ``verified`` (the Beta posterior).
    status : dict
        Per contributor: trusted, quarantined or rejected.
    groups : list of list of str
        Sybil-like groups (contributors whose labels disagree with the trusted model the same way).
    decisions : list of dict
        ``{"kind", "subject", "reason", "samples"}``, ready for the ledger.
    held, dropped : ndarray of int
        Sample indices held in quarantine and dropped (rejected contributors).
    """

    reputation: dict[str, dict[str, float]]
    status: dict[str, str]
    groups: list[list[str]]
    decisions: list[dict[str, Any]]
    held: np.ndarray
    dropped: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        return {"reputation": self.reputation, "status": self.status, "groups": self.groups,
                "decisions": self.decisions, "held": self.held.tolist(), "dropped": self.dropped.tolist()}


def read_contributors(path: str | os.PathLike, n: int, key: str = "contributor") -> np.ndarray:
    """The per-sample contributor column of a ``.npz`` (a unicode or integer array of length
    ``n``); one-line DataError when it is missing or of the wrong shape."""
    from ..data.arrays import npz_member, open_npz

    with open_npz(Path(path)) as z:
        if key not in z.files:
            raise DataError(f"{path} holds no {key!r} array (one contributor per sample); found {sorted(z.files)}")
        col = npz_member(z, key, Path(path))
    if col.ndim != 1 or len(col) != n or col.dtype.kind not in "Uiu":
        raise DataError(f"{path}: {key!r} must be a 1-D array of {n} names or ids; got {col.dtype} of shape {col.shape}")
    return col.astype(str)


def assess_contributors(labels: Any, contributors: Any, trusted_pred: Any, *, n_classes: int,
                        flags: Any = None, trusted: Iterable[str] = (), policy: Any = None) -> ContributorAssessment:
    """One round of reputation and quarantine over a labelled batch.

    Parameters
    ----------
    labels, contributors, trusted_pred : array-like of length n
        Given labels, who gave them, and the trusted model's predictions.
    n_classes : int
    flags : array-like of bool, optional
        Data detectors' flags (a flagged sample counts against its contributor).
    trusted : iterable of str
        Contributors vouched for from the start.
    policy : QuarantinePolicy, optional
    """
    from ..provenance.quarantine import Quarantine, QuarantinePolicy, decisions_for_ledger
    from ..provenance.reputation import ReputationBook

    labels = np.asarray(labels)
    contributors = np.asarray(contributors).astype(str)
    if len(contributors) != len(labels) or len(np.asarray(trusted_pred)) != len(labels):
        raise DataError(f"labels, contributors and predictions must have one entry per sample; got "
                        f"{len(labels)}, {len(contributors)} and {len(np.asarray(trusted_pred))}")
    policy = policy or QuarantinePolicy()
    book = ReputationBook(n_classes=n_classes)
    book.update(contributors.tolist(), labels=labels, trusted_pred=trusted_pred, flags=flags, round=0)
    quarantine = Quarantine(policy, trusted=trusted)
    result = quarantine.step(contributors.tolist(), np.arange(len(labels)), book)
    groups = [sorted(g) for g in result.groups]
    return ContributorAssessment(reputation=book.reputation(), status=dict(result.status), groups=groups,
                                 decisions=decisions_for_ledger(result),
                                 held=np.asarray(result.held), dropped=np.asarray(result.dropped))


def assess_file(path: str | os.PathLike, model_path: str | os.PathLike, *, modality: str = "image",
                contributor_key: str = "contributor", trusted: Iterable[str] = (), policy: Any = None,
                architecture: str | None = None) -> ContributorAssessment:
    """:func:`assess_contributors` on a ``.npz`` (X, y, contributor) with a trusted model's
    predictions (``.safetensors`` with its model card; never unpickled)."""
    from ..data import read_npz
    from ..models.io import read_card
    from .model_scan import load_classifier_for

    # the classes are the trusted model's: a batch of contributions need not hold every class
    card = read_card(model_path)
    classes = None
    if card is not None:
        classes = tuple(card.class_names) if card.class_names else tuple(str(c) for c in range(card.n_classes))
    ds = read_npz(path, modality=modality, classes=classes)
    contributors = read_contributors(path, len(ds.y), contributor_key)
    clf = load_classifier_for(model_path, ds, architecture=architecture)
    pred = np.asarray(clf.predict(ds.X))
    return assess_contributors(ds.y, contributors, pred, n_classes=ds.n_classes, trusted=trusted, policy=policy)


def record_assessment(target: str | None, assessment: ContributorAssessment, *,
                      actor: str = "quarantine-policy") -> tuple[int, str]:
    """Record the assessment's decisions in the ledger at ``target`` (None: the default ledger);
    return how many, and the ledger's URL."""
    from ..provenance.decisions import record_decisions
    from ..provenance.ledger import Ledger

    with Ledger.open(target) as led:
        return len(record_decisions(led, assessment.decisions, actor=actor)), led.url
