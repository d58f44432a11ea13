"""The registry as a table: what ``poisonlab list`` prints and what ``poisonlab attack --help``
ends with (one formatting, from the declared parameter constraints). Registers no command."""

from __future__ import annotations

import inspect
from typing import Any, Optional

from rich.console import Console
from rich.table import Table
from typer.core import TyperCommand

#: Kinds whose entries are classes with declared hyperparameters worth listing.
_WITH_PARAMS = ("attack", "detector", "trainer", "aggregator")


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


def registry_table(kind: Optional[str], found: list[Any], *, title: Optional[str] = None) -> Table:
    """The table ``poisonlab list`` prints for ``found`` entries of ``kind`` (all kinds when None):
    name, kind, stage, unit, modalities, summary and, for classes with declared
    hyperparameters, each parameter with its default and what it must be. ``attack --help``
    prints the same table."""
    params = kind in _WITH_PARAMS
    table = Table(title=title or f"Registered {kind or 'entries'} ({len(found)})", show_lines=params)
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
    return table


def registry_help(kind: str, intro: str, *, exclude_stages: tuple[str, ...] = ()) -> type[TyperCommand]:
    """A command class whose ``--help`` ends with :func:`registry_table` of ``kind`` (built when
    the help is shown, so that importing the command line imports no attack), leaving out the
    entries of ``exclude_stages`` (``attack`` poisons datasets: no federated attacks)."""

    class _RegistryHelp(TyperCommand):
        def format_help(self, ctx: Any, formatter: Any) -> None:
            super().format_help(ctx, formatter)
            from .. import registry

            out = Console()
            out.print(intro, highlight=False)
            found = [e for e in registry.entries(kind) if e.stage not in exclude_stages]
            out.print(registry_table(kind, found))

    return _RegistryHelp
