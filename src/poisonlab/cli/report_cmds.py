"""``poisonlab report``: a self-contained HTML page from any run record.

``run``, ``scan-data`` and ``scan-model`` take ``--report PATH`` too: they declare the path on
their output guard before any work and write :func:`poisonlab.reports.html.build_html` of their
record through it at the end.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Optional

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


# --- records of the commands that write none of their own (the CLI assembles them) ----------------

def scan_record(ds, result, *, poison_mask=None, top: int = 20, scenario: dict[str, Any],
                data_files: Iterable[Any] = ()) -> dict[str, Any]:
    """The run record (kind ``"scan"``) of a ``scan-data``: :meth:`ScanResult.to_dict`, the
    dataset's summary and class names, and what a report shows of the scores and samples
    (:func:`poisonlab.runs.report_data.scan_evidence`: histograms, ROC points, the top
    ``min(top, 24)`` samples' inputs; bounded in size whatever the data's)."""
    from ..reports import to_jsonable
    from ..runs.report_data import MAX_TOP, scan_evidence
    from ..runs.record import make_record

    results = {**result.to_dict(top), "dataset": ds.summary(), "classes": list(ds.classes),
               "evidence": scan_evidence(ds, result, poison_mask, k=min(top, MAX_TOP))}
    return make_record(kind="scan", scenario=to_jsonable(scenario), results=to_jsonable(results),
                       timings=to_jsonable(dict(result.seconds)),
                       data_files=[p for p in data_files if p is not None])


def model_scan_record(report: dict[str, Any], *, detector=None, classes=None, scenario: dict[str, Any],
                      timings: dict[str, float] | None = None, data_files: Iterable[Any] = ()) -> dict[str, Any]:
    """The run record (kind ``"model_scan"``) of a ``scan-model``: its report, the class names
    and, when Neural Cleanse ran, every class's reversed trigger as a small picture
    (:func:`poisonlab.runs.report_data.trigger_previews`)."""
    from ..reports import to_jsonable
    from ..runs.report_data import trigger_previews
    from ..runs.record import make_record

    results = dict(report)
    if classes is not None:
        results["classes"] = list(classes)
    if detector is not None and hasattr(detector, "masks_"):
        results["triggers"] = trigger_previews(detector.masks_, detector.patterns_)
    return make_record(kind="model_scan", scenario=to_jsonable(scenario), results=to_jsonable(results),
                       timings=to_jsonable(dict(timings or {})),
                       data_files=[p for p in data_files if p is not None])


def write_report(guard, path: Optional[Path], record: dict[str, Any]) -> None:
    """Render ``record`` and write it to ``path`` (declared on ``guard`` before the work)."""
    if path is None:
        return
    from ..reports.html import build_html

    guard.write_text(path, build_html(record))
    console.print(f"report: [bold]{path}[/]")
