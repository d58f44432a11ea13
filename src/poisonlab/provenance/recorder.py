"""Record a run's events in the ledger as they happen.

:class:`LedgerRecorder` is an event subscriber (a callable ``Event -> None``, as the runner's
``subscribers`` take): the runner hands its events to the ledger, the ledger never calls the
runner. Each event becomes one chained ``events`` row (its own transaction), so a run that dies
midway leaves the events up to its death in the ledger.

The recorder takes any object with ``kind`` and ``to_dict()`` (what every
:class:`poisonlab.runs.events.Event` has), so this module needs nothing from ``runs``.

Limits: one transaction per event; per-batch events (``BatchEnded``) are skipped by default
(``skip``), since a long training run emits thousands and they say nothing about provenance.
"""

from __future__ import annotations

from typing import Any, Iterable

from .hashing import jsonable
from .ledger import Ledger

__all__ = ["LedgerRecorder"]


class LedgerRecorder:
    """A subscriber that appends every event to ``ledger`` under ``run_id``.

    Parameters
    ----------
    ledger : Ledger
    run_id : str
        The run the events belong to (the ``run_id`` of its ``runs`` manifest row).
    skip : iterable of str, default=("BatchEnded",)
        Event kinds not recorded.

    Attributes
    ----------
    n_recorded : int
        Events written so far.

    Examples
    --------
    >>> from poisonlab.provenance.ledger import Ledger
    >>> class Ping:
    ...     kind = "Ping"
    ...     def to_dict(self): return {"kind": "Ping", "label": "demo"}
    >>> ledger = Ledger.open(":memory:")
    >>> rec = LedgerRecorder(ledger, "run-1")
    >>> rec(Ping()); rec.n_recorded
    1
    >>> ledger.rows("events")[0]["kind"]
    'Ping'
    """

    def __init__(self, ledger: Ledger, run_id: str, *, skip: Iterable[str] = ("BatchEnded",)) -> None:
        self.ledger = ledger
        self.run_id = run_id
        self.skip = frozenset(skip)
        self.n_recorded = 0

    def __call__(self, event: Any) -> None:
        kind = getattr(event, "kind", type(event).__name__)
        if kind in self.skip:
            return
        payload = event.to_dict() if hasattr(event, "to_dict") else {"repr": repr(event)}
        self.ledger.record_event(self.run_id, kind, _finite(payload))
        self.n_recorded += 1


def _finite(value: Any) -> Any:
    """``value`` made JSON-able, with NaN and infinity as their names (an epoch's NaN loss must
    not stop the run being recorded)."""
    import math

    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    try:
        return jsonable(value)
    except Exception:  # noqa: BLE001 - anything else is recorded by its text
        return str(value)
