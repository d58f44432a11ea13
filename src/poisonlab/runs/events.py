"""Typed events: what the runner (and the workflows under it) tell their subscribers.

One small frozen dataclass per kind of event. Library code never prints; it emits events to an
:class:`EventBus`, and subscribers decide what to do with them: the CLI draws progress bars, a log
writes lines, the ledger (a later capability) records them. ``emit`` arguments everywhere in
``poisonlab.runs`` are plain callables ``Event -> None``, so a list's ``append`` is a subscriber.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable


@dataclass(frozen=True)
class Event:
    """Base of every event. ``label`` says which part of a run it belongs to ("poisoned model",
    "cell 3/54", "R1 seed 0", ...)."""

    label: str = ""

    @property
    def kind(self) -> str:
        return type(self).__name__

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self)}


@dataclass(frozen=True)
class StepStarted(Event):
    """A step of a run began: poison, train, scan, retrain, inspect, repair, monitor, ..."""

    step: str = ""


@dataclass(frozen=True)
class StepFinished(Event):
    """A step ended; ``summary`` holds its headline numbers (JSON-friendly)."""

    step: str = ""
    seconds: float = 0.0
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchEnded(Event):
    """One optimisation batch of a training run ended."""

    epoch: int = 0
    batch: int = 0
    n_batches: int = 0


@dataclass(frozen=True)
class EpochEnded(Event):
    """One training epoch ended (1-based ``epoch``)."""

    epoch: int = 0
    epochs: int = 0
    train_loss: float = 0.0
    val_loss: float | None = None
    val_accuracy: float | None = None


@dataclass(frozen=True)
class DetectorFinished(Event):
    """A detector finished scoring."""

    name: str = ""
    seconds: float = 0.0
    n_flagged: int = 0


@dataclass(frozen=True)
class SeedFinished(Event):
    """One seed of a repeated measurement (a reproduction) finished."""

    seed: int = 0
    seeds: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class TargetFinished(Event):
    """One target of a targeted attack's outer loop finished; ``info`` holds its outcome."""

    done: int = 0
    total: int = 0
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CellStarted(Event):
    """A grid cell began (``index`` is 0-based)."""

    cell: str = ""
    index: int = 0
    total: int = 0


@dataclass(frozen=True)
class CellFinished(Event):
    """A grid cell finished, computed now or taken from the cache (``cached``)."""

    cell: str = ""
    index: int = 0
    total: int = 0
    seconds: float = 0.0
    cached: bool = False


@dataclass(frozen=True)
class RoundEnded(Event):
    """A federated round ended: the global model's accuracy (and backdoor accuracy), which
    clients the aggregator excluded, and how that exclusion scores against the true malicious set."""

    round: int = 0
    rounds: int = 0
    accuracy: float | None = None
    backdoor_accuracy: float | None = None
    n_selected: int = 0
    n_malicious: int = 0
    n_excluded: int = 0
    precision: float | None = None
    recall: float | None = None
    seconds: float = 0.0


@dataclass(frozen=True)
class RetrainingRoundEnded(Event):
    """A round of continuous retraining ended for one ``arm`` (honest, undefended, defended):
    the retrained model's targeted error and accuracy, how many of the group's samples it has
    admitted so far, and (defended arm) how many are held in quarantine."""

    arm: str = ""
    round: int = 0
    rounds: int = 0
    targeted_error: float = 0.0
    accuracy: float = 0.0
    attack_admitted: int = 0
    attack_held: int | None = None


@dataclass(frozen=True)
class Note(Event):
    """A sentence for the user (a warning, what a step decided)."""

    text: str = ""


Subscriber = Callable[[Event], None]


class EventBus:
    """Hands every emitted event to every subscriber, in subscription order.

    Examples
    --------
    >>> seen = []
    >>> bus = EventBus([seen.append])
    >>> bus.emit(StepStarted(label="demo", step="poison"))
    >>> seen[0].step, seen[0].kind
    ('poison', 'StepStarted')
    """

    def __init__(self, subscribers: list[Subscriber] | None = None) -> None:
        self.subscribers: list[Subscriber] = list(subscribers or [])

    def subscribe(self, subscriber: Subscriber) -> Subscriber:
        self.subscribers.append(subscriber)
        return subscriber

    def emit(self, event: Event) -> None:
        for sub in self.subscribers:
            sub(event)

    __call__ = emit


def ignore(event: Event) -> None:
    """The subscriber that does nothing (the default ``emit``)."""


def training_callback(emit: Subscriber | None, label: str) -> Callable[[str, dict], None] | None:
    """Adapt ``train_module``'s ``callback(event, info)`` to typed events under ``label``."""
    if emit is None:
        return None

    def callback(event: str, info: dict) -> None:
        if event == "batch":
            emit(BatchEnded(label=label, epoch=info["epoch"], batch=info["batch"],
                            n_batches=info["n_batches"]))
        elif event == "epoch":
            emit(EpochEnded(label=label, epoch=info["epoch"], epochs=info["epochs"],
                            train_loss=info["train_loss"], val_loss=info.get("val_loss"),
                            val_accuracy=info.get("val_accuracy")))

    return callback
