"""``poisonlab list [KIND]``: what the registry holds, one line per entry (the table of
:mod:`poisonlab.cli.registry_view`, which ``poisonlab attack --help`` ends with too)."""

from __future__ import annotations

from typing import Optional

import typer

from ..exceptions import InvalidParameterError
from .app import app, console
from .registry_view import registry_table


def _kind(name: str) -> str:
    """``attacks`` -> ``attack``; unknown kinds fail with the list of kinds."""
    from ..registry import KINDS

    singular = name[:-1] if name.endswith("s") and name[:-1] in KINDS else name
    if singular not in KINDS:
        raise InvalidParameterError(f"unknown kind {name!r}; kinds: {', '.join(KINDS)}")
    return singular


@app.command("list")
def list_entries(
    kind: Optional[str] = typer.Argument(
        None, help="attack, detector, trainer, aggregator, dataset, architecture or reproduction "
                   "(default: all)."),
) -> None:
    """List what the registry holds: name, kind, stage, unit, modalities and a summary; for attacks
    and detectors also each parameter, its default and what it must be."""
    from .. import registry

    kind = None if kind is None else _kind(kind)
    found = registry.entries(kind)
    if not found:
        console.print(f"No {kind} is registered yet.")
        return
    console.print(registry_table(kind, found))
