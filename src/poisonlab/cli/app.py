"""The Typer application every command registers on, and the helpers commands share.

Command modules (``main``, ``model_cmds``, ...) import from here, never from each other, so the
CLI has no import cycle; :mod:`poisonlab.cli.main` imports them all to register their commands.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Red-team and defend ML training pipelines against data poisoning.")
console = Console()
err_console = Console(stderr=True)

DATA_DIR_HELP = "Folder holding the datasets (one sub-folder each); default: $POISONLAB_DATA_DIR."


def _fail(exc: Exception) -> None:
    err_console.print(f"[bold red]error:[/] {exc}")
    raise typer.Exit(code=2)


def _parse_params(items: list[str]) -> dict[str, Any]:
    """``key=value`` pairs; values parsed as JSON when they can be (numbers, lists, null)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"--param takes key=value; got {item!r}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out[key.strip().replace("-", "_")] = tuple(value) if isinstance(value, list) else value
    return out


def _load(dataset: str, data_dir: Optional[Path], *, waveforms: bool = False):
    """A built-in dataset; with ``waveforms``, audio datasets come as raw waveforms (audio
    triggers are mixed into the waveform, before any features)."""
    from ..data import DATASETS, load_dataset

    if waveforms and dataset in DATASETS and DATASETS[dataset][2] == "audio":
        return load_dataset(dataset, data_dir, features="waveform")
    return load_dataset(dataset, data_dir)
