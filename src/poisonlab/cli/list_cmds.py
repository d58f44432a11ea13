"""``poisonlab list [KIND]``: what the registry holds, one line per entry."""

from __future__ import annotations

import inspect
from typing import Any, Optional

import typer
from rich.table import Table

from .app import _fail, app, console

#: Kinds whose entries are classes with declared hyperparameters worth listing.
_WITH_PARAMS = ("attack", "detector", "trainer", "aggregator")


def _kind(name: str) -> str:
    """``attacks`` -> ``attack``; unknown kinds fail with the list of kinds."""
    from ..registry import KINDS

    singular = name[:-1] if name.endswith("s") and name[:-1] in KINDS else name
    if singular not in KINDS:
        _fail(ValueError(f"unknown kind {name!r}; kinds: {', '.join(KINDS)}"))
    return singular


def _parameters(cls: Any) -> str:
    """One line per ``__init__`` parameter: ``name=default: what it must be``."""
    from .._validation import describe_constraints

    if not hasattr(cls, "_param_names"):
        return ""
    sig = inspect.signature(cls.__init__)
    declared = getattr(cls, "_parameter_constraints", {})
    lines = []
    for name in cls._param_names():
        default = sig.parameters[name].default
        shown = name if default is inspect.Parameter.empty else f"{name}={default!r}"
        what = describe_constraints(declared[name]) if name in declared else "(undeclared)"
        lines.append(f"{shown}: {what}")
    return "\n".join(lines)


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
    try:
        found = registry.entries(kind)
    except Exception as exc:  # noqa: BLE001 - a broken optional module: report it, one line
        _fail(exc)
    if not found:
        console.print(f"No {kind} is registered yet.")
        return
    params = kind in _WITH_PARAMS
    table = Table(title=f"Registered {kind or 'entries'} ({len(found)})", show_lines=params)
    for col in ("name", "kind", "stage", "unit", "modalities"):
        table.add_column(col, no_wrap=True)
    table.add_column("summary", ratio=2)
    if params:
        table.add_column("parameters (default: must be)", ratio=3)
    for e in found:
        row = [e.name, e.kind, e.stage or "-", e.unit or "-", ", ".join(e.modalities) or "any", e.summary]
        if params:
            row.append(_parameters(e.obj))
        table.add_row(*row)
    console.print(table)
