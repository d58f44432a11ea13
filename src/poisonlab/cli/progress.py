"""Rich progress bars fed by the library's progress callbacks."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


@contextmanager
def training_progress(console: Console) -> Iterator:
    """Yield a ``progress(label, event, info)`` callback drawing one bar per trained model."""
    bars = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[status]}"), TimeElapsedColumn(), console=console)
    tasks: dict[str, int] = {}

    def callback(label: str, event: str, info: dict) -> None:
        if event == "seed":
            bars.console.print(f"{label}: seed {info['seed'] + 1}/{info['seeds']} done "
                               f"in {info['seconds'] / 60:.1f} min")
            for task in tasks.values():
                bars.remove_task(task)
            tasks.clear()
            return
        if event == "target":  # a reproduction's outer loop: one line per finished target
            extra = "".join(f", {k} {v:.3g}" if isinstance(v, float) else f", {k} {v}"
                            for k, v in info.items() if k not in ("done", "total"))
            bars.console.print(f"{label}: target {info['done']}/{info['total']}{extra}")
            return
        if label not in tasks:
            tasks[label] = bars.add_task(f"train {label}", total=None, status="")
        task = tasks[label]
        if event == "batch":
            bars.update(task, total=info["n_batches"], completed=info["batch"],
                        description=f"train {label} · epoch {info['epoch'] + 1}")
        elif event == "epoch":
            status = f"loss {info['train_loss']:.3f}"
            if "val_accuracy" in info:
                status += f" · val acc {info['val_accuracy']:.2%}"
            bars.update(task, status=status)

    with bars:
        yield callback
