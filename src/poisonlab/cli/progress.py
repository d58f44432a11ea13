"""Rich progress for the command line: a subscriber to the run layer's typed events.

:func:`event_progress` yields an ``emit`` callable (``Event -> None``) to hand to a workflow or
the runner; it draws one bar per training label (from ``BatchEnded`` / ``EpochEnded``) and
prints a line for each finished detector, seed, target, grid cell and note.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..runs.events import (
    BatchEnded,
    CellFinished,
    DetectorFinished,
    EpochEnded,
    Event,
    Note,
    RetrainingRoundEnded,
    RoundEnded,
    SeedFinished,
    TargetFinished,
)


class _Bars:
    """The subscriber behind :func:`event_progress`: one bar per label."""

    def __init__(self, bars: Progress) -> None:
        self.bars = bars
        self.tasks: dict[str, Any] = {}
        self.batched: set[str] = set()  # labels whose bar counts batches (else it counts epochs)

    def _task(self, label: str, description: str) -> Any:
        if label not in self.tasks:
            self.tasks[label] = self.bars.add_task(description, total=None, status="")
        return self.tasks[label]

    def print(self, text: str) -> None:
        self.bars.console.print(text, highlight=False)

    def __call__(self, event: Event) -> None:
        if isinstance(event, BatchEnded):
            task = self._task(event.label, f"train {event.label}")
            self.batched.add(event.label)
            # train_module counts batch events' epochs from 0
            self.bars.update(task, total=event.n_batches, completed=event.batch,
                             description=f"train {event.label} · epoch {event.epoch + 1}")
        elif isinstance(event, EpochEnded):
            status = f"loss {event.train_loss:.3f}"
            if event.val_accuracy is not None:
                status += f" · val acc {event.val_accuracy:.2%}"
            if event.label in self.batched:
                self.bars.update(self._task(event.label, f"train {event.label}"), status=status)
            else:  # a loop that reports epochs only (Neural Cleanse): the bar counts epochs
                task = self._task(event.label, event.label)
                self.bars.update(task, total=event.epochs, completed=event.epoch, status=status,
                                 description=f"{event.label} · epoch {event.epoch}")
        elif isinstance(event, RoundEnded):
            status = "" if event.accuracy is None else f"acc {event.accuracy:.2%}"
            if event.backdoor_accuracy is not None:
                status += f" · backdoor {event.backdoor_accuracy:.2%}"
            if event.n_malicious or event.n_excluded:
                status += f" · excluded {event.n_excluded} ({event.n_malicious} malicious in round)"
            task = self._task(event.label, f"federate {event.label}")
            self.bars.update(task, total=event.rounds, completed=event.round, status=status,
                             description=f"federate {event.label} · round {event.round}")
        elif isinstance(event, RetrainingRoundEnded):
            status = f"targeted error {event.targeted_error:.2%} · acc {event.accuracy:.2%}"
            task = self._task(f"{event.label}/{event.arm}", f"retrain {event.label} ({event.arm})")
            self.bars.update(task, total=event.rounds, completed=event.round, status=status,
                             description=f"retrain {event.label} ({event.arm}) · round {event.round}")
        elif isinstance(event, DetectorFinished):
            self.print(f"  {event.name:<22} {event.seconds:.2f} s  {event.n_flagged} flagged")
        elif isinstance(event, SeedFinished):
            self.print(f"{event.label}: seed {event.seed + 1}/{event.seeds} done in {event.seconds / 60:.1f} min")
            for task in self.tasks.values():
                self.bars.remove_task(task)
            self.tasks.clear()
            self.batched.clear()
        elif isinstance(event, TargetFinished):  # a reproduction's outer loop: one line per target
            extra = "".join(f", {k} {v:.3g}" if isinstance(v, float) else f", {k} {v}"
                            for k, v in event.info.items() if k not in ("done", "total"))
            self.print(f"{event.label}: target {event.done}/{event.total}{extra}")
        elif isinstance(event, CellFinished):
            how = "cached" if event.cached else f"{event.seconds:.1f} s"
            self.print(f"cell {event.index + 1}/{event.total} {event.cell} ({how})")
        elif isinstance(event, Note):
            self.print(event.text)


def _bars(console: Console) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[status]}"), TimeElapsedColumn(), console=console)


@contextmanager
def event_progress(console: Console) -> Iterator[Callable[[Event], None]]:
    """Yield an ``emit`` subscriber that draws the run layer's events on ``console``.

    Examples
    --------
    >>> import io
    >>> from rich.console import Console
    >>> from poisonlab.runs.events import Note
    >>> buf = io.StringIO()
    >>> with event_progress(Console(file=buf, width=80)) as emit:
    ...     emit(Note(text="three samples quarantined"))
    >>> "three samples quarantined" in buf.getvalue()
    True
    """
    bars = _bars(console)
    with bars:
        yield _Bars(bars)
