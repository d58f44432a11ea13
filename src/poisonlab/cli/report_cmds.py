"""``poisonlab report``: a self-contained HTML page from any run record.

``run``, ``scan-data`` and ``scan-model`` take ``--report PATH`` too: they declare the path on
their output guard before any work and write :func:`poisonlab.reports.html.build_html` of their
record through it at the end.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

import typer

from .app import FORCE_HELP, app, console, output_guard


@app.command("report")
def report(
    run: Path = typer.Argument(..., metavar="RUN", help="A run record (record.json, a reproduction's "
                               "R<n>.json, ...) or a folder holding record.json."),
    html: Optional[Path] = typer.Option(None, "--html", help="Where the HTML goes (default: report.html "
                                        "beside the record)."),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
) -> None:
    """Write a self-contained HTML report of a run record: the verdict and why, poisoned against
    clean models, sweeps, detectors' score distributions and ROC curves, the most suspicious
    samples, reversed triggers, per-class tables. One file: inline plots, no script, no network."""
    from ..reports.html import build_html, read_record

    record, source = read_record(run)
    out = html if html is not None else source.with_name("report.html")
    guard = output_guard([source], force=force)
    guard.file(out, "--html")
    guard.write_text(out, build_html(record, source=os.fspath(source)))
    console.print(f"report: [bold]{out}[/] ({record.get('kind')} record {source})")


def write_report(guard, path: Optional[Path], record: dict[str, Any]) -> None:
    """Render ``record`` and write it to ``path`` (declared on ``guard`` before the work)."""
    if path is None:
        return
    from ..reports.html import build_html

    guard.write_text(path, build_html(record))
    console.print(f"report: [bold]{path}[/]")
