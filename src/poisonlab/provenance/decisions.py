"""Quarantine, release and reject decisions as ledger rows.

A quarantine is a ``decisions`` row of kind ``quarantine`` on a subject -- ``contributor:NAME``,
``source:NAME`` or ``samples:SNAPSHOT:I,J,...`` (any non-empty text works) -- with who decided
and why. A later ``release`` (the data may be used) or ``reject`` (it may not, for good) decision
on the same subject closes it. :func:`open_quarantines` lists the subjects quarantined and not
closed since. Nothing is updated or deleted: the history is the chain.

This module only records decisions; *which* contributors to quarantine is the reputation
policy's business (:mod:`poisonlab.provenance.quarantine`).

Examples
--------
>>> from poisonlab.provenance.ledger import Ledger
>>> ledger = Ledger.open(":memory:")
>>> _ = quarantine(ledger, "contributor:mallory", reason="new", actor="alice")
>>> [q["subject"] for q in open_quarantines(ledger)]
['contributor:mallory']
>>> _ = release(ledger, "contributor:mallory", reason="reviewed", actor="bob")
>>> open_quarantines(ledger)
[]
"""

from __future__ import annotations

from typing import Any

from .ledger import Ledger, LedgerError

__all__ = ["quarantine", "release", "reject", "open_quarantines", "subject_history", "record_decisions"]


def quarantine(ledger: Ledger, subject: str, *, reason: str | None = None, actor: str | None = None) -> dict[str, Any]:
    """Quarantine ``subject`` (a ``quarantine`` decision)."""
    return ledger.record_decision("quarantine", _subject(subject), actor=actor, reason=reason)


def _close(ledger: Ledger, kind: str, subject: str, reason: str | None, actor: str | None) -> dict[str, Any]:
    subject = _subject(subject)
    open_ = {q["subject"]: q for q in open_quarantines(ledger)}
    if subject not in open_:
        names = ", ".join(sorted(open_)) or "none"
        raise LedgerError(f"{subject} is not in quarantine (quarantined now: {names})")
    return ledger.record_decision(kind, subject, actor=actor, reason=reason, ref_id=open_[subject]["id"])


def release(ledger: Ledger, subject: str, *, reason: str | None = None, actor: str | None = None) -> dict[str, Any]:
    """Release a quarantined ``subject`` (its data may be used); LedgerError if not quarantined."""
    return _close(ledger, "release", subject, reason, actor)


def reject(ledger: Ledger, subject: str, *, reason: str | None = None, actor: str | None = None) -> dict[str, Any]:
    """Reject a quarantined ``subject`` for good; LedgerError if not quarantined."""
    return _close(ledger, "reject", subject, reason, actor)


def open_quarantines(ledger: Ledger) -> list[dict[str, Any]]:
    """The ``quarantine`` rows not followed by a release or reject of the same subject, oldest
    first."""
    d = ledger.tables["decisions"]
    state: dict[str, dict[str, Any] | None] = {}
    for row in ledger.rows("decisions", where=d.c.kind.in_(("quarantine", "release", "reject"))):
        if row["kind"] == "quarantine":
            state.setdefault(row["subject"], None)
            if state[row["subject"]] is None:
                state[row["subject"]] = row
        else:
            state[row["subject"]] = None
    return sorted((r for r in state.values() if r is not None), key=lambda r: r["seq"])


def subject_history(ledger: Ledger, subject: str) -> list[dict[str, Any]]:
    """Every decision on ``subject``, oldest first."""
    d = ledger.tables["decisions"]
    return ledger.rows("decisions", where=d.c.subject == _subject(subject))


def _subject(subject: str) -> str:
    if not isinstance(subject, str) or not subject.strip():
        raise LedgerError("a decision needs a subject (e.g. contributor:NAME or samples:SNAPSHOT:1,2)")
    return subject.strip()


#: Subject prefixes a decision's subject may already carry.
SUBJECT_KINDS = ("contributor:", "source:", "samples:", "model:")


def record_decisions(ledger: Ledger, decisions: list[dict[str, Any]], *, actor: str = "quarantine-policy") -> list[dict[str, Any]]:
    """Record decisions given as dicts (``kind``, ``subject``, optional ``reason`` and
    ``samples``), e.g. what :meth:`poisonlab.provenance.quarantine.Quarantine.step` returns, in
    one transaction. A subject without one of the :data:`SUBJECT_KINDS` prefixes is a
    contributor's name, whatever it holds (``org:alice`` becomes ``contributor:org:alice``); the
    samples, if any, are kept with the reason as JSON."""
    from .hashing import canonical_json
    from .ledger import DECISION_KINDS

    rows = []
    for d in decisions:
        kind, subject = d.get("kind"), _subject(str(d.get("subject", "")))
        if kind not in DECISION_KINDS:
            raise LedgerError(f"decision kind must be one of {', '.join(DECISION_KINDS)}; got {kind!r}")
        if not subject.startswith(SUBJECT_KINDS):
            subject = f"contributor:{subject}"
        reason = d.get("reason")
        if d.get("samples") is not None:
            reason = canonical_json({"reason": reason, "samples": list(d["samples"])})
        rows.append(("decisions", {"kind": kind, "subject": subject, "actor": actor, "reason": reason}))
    with ledger.write() as conn:
        return ledger.append_rows(conn, rows) if rows else []
