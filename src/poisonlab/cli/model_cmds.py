"""``poisonlab scan-model`` and ``poisonlab monitor``: inspect a finished model, watch live inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from .._files import check_input
from .app import (
    DATA_DIR_HELP,
    FORCE_HELP,
    NO_FAIL_HELP,
    _load,
    app,
    console,
    dataset_inputs,
    exit_for,
    json_text,
    output_guard,
)

#: Neural Cleanse's clean inputs when ``--n-clean`` is not given and the data has as many.
N_CLEAN = 500

monitor_app = typer.Typer(no_args_is_help=True, help="Fit STRIP on clean data, then score live inputs.")
app.add_typer(monitor_app, name="monitor")


@app.command("scan-model")
def scan_model(
    model: Path = typer.Argument(..., help="Model weights: .safetensors, or a pickle-based .pt/.pth (scanned first)."),
    dataset: str = typer.Option(..., help="Built-in dataset the model was trained for (clean inputs come from its test split)."),
    architecture: Optional[str] = typer.Option(None, help="Architecture name (default: the model card's, "
                                               "else the modality's)."),
    n_clean: Optional[int] = typer.Option(
        None, min=1, help=f"Clean inputs Neural Cleanse optimises on (default: {N_CLEAN}, or the whole "
                          "test split when it is smaller; with --repair prune at most half of it, the "
                          "rest validates the pruning). A larger value than the data has is refused."),
    epochs: int = typer.Option(100, min=1, help="Neural Cleanse epochs at most (each class stops when "
                               "it converges; unconverged runs are reported inconclusive)."),
    repair: Optional[str] = typer.Option(None, help="unlearn | prune: write a repaired copy (safetensors + "
                                                  "model card) beside the model."),
    out_dir: Path = typer.Option(Path("poisonlab-out/scan-model"), help="Report, triggers and repairs go here."),
    seed: int = typer.Option(0, help="Seed of Neural Cleanse's optimisation."),
    data_dir: Optional[Path] = typer.Option(None, help=DATA_DIR_HELP),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP + " Without it, an --out-dir that "
                               "already holds report.json, record.json or trigger PNGs, or an existing repaired copy, "
                               "is refused."),
    no_fail: bool = typer.Option(False, "--no-fail", help=NO_FAIL_HELP),
    report_path: Optional[Path] = typer.Option(None, "--report", help="Also write a self-contained HTML "
                                               "report (one file, no network) to this path."),
) -> None:
    """Check a model file for code, then for a backdoor (Neural Cleanse); optionally repair it.

    Exit status: 0 no backdoor suspected; 3 a backdoor suspected or an unsafe file (0 with
    --no-fail); 2 bad input."""
    from ..defenses.model import UnsafeModelError
    from ..exceptions import InvalidParameterError
    from ..models.io import card_path, save_model
    from ..reports.images import trigger_png
    from ..runs.model_scan import REPAIRS, repaired_path, scan_model
    from .progress import event_progress

    if repair not in (None, *REPAIRS):
        raise InvalidParameterError(f"--repair must be 'unlearn' or 'prune'; got {repair!r}")
    check_input(model, "MODEL")
    guard = output_guard([model, card_path(model), *dataset_inputs(dataset, data_dir)], force=force)
    guard.folder(out_dir, "--out-dir", files=["report.json", "record.json"])
    if report_path is not None:
        guard.file(report_path, "--report")
    from ..runs.model_scan import model_scan_record
    from .report_cmds import write_report

    params = {"command": "scan-model", "model": model, "dataset": dataset, "architecture": architecture,
              "n_clean": n_clean, "epochs": epochs, "repair": repair, "seed": seed}
    target = repaired_path(model, repair) if repair else None
    if target is not None:
        guard.file(target, "the repaired copy (--repair)")
        guard.file(card_path(target), "the repaired copy's model card")
    splits = _load(dataset, data_dir)
    guard.folder(out_dir, "--out-dir", files=[f"trigger_class{c}.png" for c in range(splits.test.n_classes)])
    n_use = _n_clean(n_clean, len(splits.test), repair, dataset)
    try:
        with event_progress(console) as emit:
            result = scan_model(model, splits.test, train=splits.train, architecture=architecture,
                                n_clean=n_use, epochs=epochs, repair=repair, seed=seed,
                                dataset_name=dataset, emit=emit)
    except UnsafeModelError as exc:
        refused = {"model": str(model), "file_safety": exc.report.to_dict(), "verdict": "refused: unsafe file"}
        guard.write_text(out_dir / "report.json", json_text(refused))
        record = model_scan_record(refused, scenario=params, data_files=[model])
        guard.write_text(out_dir / "record.json", json_text(record))
        if report_path is not None:
            write_report(guard, report_path, record)
        console.print(f"[bold red]unsafe model file, not loaded:[/] {exc}", highlight=False)
        exit_for(True, no_fail)
        return
    nc = result.detector
    table = Table(title=f"Neural Cleanse: reversed trigger size per class ({n_use} clean inputs)")
    for col in ("class", "L1 norm of mask", "anomaly index", "x smaller than all others", "reached ASR", "flagged"):
        table.add_column(col)
    for c in range(len(nc.l1_norms_)):
        table.add_row(splits.test.classes[c], f"{nc.l1_norms_[c]:.1f}", f"{nc.anomaly_index_[c]:+.2f}",
                      f"{nc.gap_[c]:.2f}", "yes" if nc.reached_threshold_[c] else "no",
                      "BACKDOOR?" if nc.flags_[c] else "")
    console.print(table)
    console.print(f"[bold]{result.verdict}[/]")
    for c in range(len(nc.l1_norms_)):
        guard.write_bytes(out_dir / f"trigger_class{c}.png", trigger_png(nc.masks_[c], nc.patterns_[c]))
    report = result.report
    report["n_clean"] = n_use
    if result.repaired is not None:
        checked = result.checked
        with guard.writing(target, card_path(target)):
            save_model(result.repaired, target, architecture=checked.architecture,
                       spec=checked.card.spec if checked.card is not None else _spec(splits.test),
                       modality=splits.test.modality, class_names=splits.test.classes,
                       architecture_kwargs=checked.card.architecture_kwargs if checked.card is not None
                       and checked.card.architecture == checked.architecture else None,
                       extra={"repaired_from": str(model), "repair": report["repair"]["method"]})
        report["repair"]["written"] = str(target)
        console.print(f"repaired copy written to [bold]{target}[/] (the original is untouched)")
    guard.write_text(out_dir / "report.json", json_text(report))
    record = model_scan_record(report, detector=nc, classes=splits.test.classes, scenario=params,
                               timings=result.seconds, data_files=[model])
    guard.write_text(out_dir / "record.json", json_text(record))
    console.print(f"report, run record and reversed triggers in [bold]{out_dir}[/]")
    if report_path is not None:
        write_report(guard, report_path, record)
    exit_for(bool(result.flagged), no_fail)


def _n_clean(n_clean: Optional[int], n_test: int, repair: Optional[str], dataset: str) -> int:
    """The clean inputs Neural Cleanse uses: ``n_clean`` when the test split can give them (and,
    with ``--repair prune``, leave as many again to validate the pruning), else a one-line error;
    by default :data:`N_CLEAN` adapted to the data, with a note saying so."""
    from ..exceptions import InvalidParameterError

    cap = n_test // 2 if repair == "prune" else n_test
    if n_clean is None:
        n_use = min(N_CLEAN, cap)
        if n_use < N_CLEAN:
            why = "half of" if repair == "prune" else "all"
            rest = "; the other half validates fine-pruning" if repair == "prune" else ""
            console.print(f"note: Neural Cleanse uses {n_use} clean inputs ({why} the {n_test} test "
                          f"inputs of {dataset}{rest}); --n-clean chooses another number", highlight=False)
        return n_use
    if n_clean > n_test:
        raise InvalidParameterError(f"--n-clean {n_clean} exceeds the {n_test} test inputs of {dataset}; "
                                    f"pass --n-clean {cap} or less (or leave it out)")
    if n_clean > cap:
        raise InvalidParameterError(f"--n-clean {n_clean} leaves {n_test - n_clean} of the {n_test} test inputs "
                                    f"of {dataset} to validate fine-pruning (--repair prune); pass --n-clean "
                                    f"{cap} or less (or leave it out)")
    return n_clean


def _spec(ds):
    from ..models.architectures import ModelSpec

    return ModelSpec(tuple(ds.X.shape[1:]), ds.n_classes)


@monitor_app.command("fit")
def monitor_fit(
    model: Path = typer.Option(..., help="Model weights (.safetensors or a scanned .pt)."),
    dataset: str = typer.Option(..., help="Built-in dataset: clean held-out inputs come from its test split."),
    out: Path = typer.Option(..., help="Folder to save the fitted monitor in (STRIP's strip.json/.npz, "
                                             "the model's weights and card)."),
    architecture: Optional[str] = typer.Option(None, help="Architecture name (default: the model card's, "
                                               "else the modality's)."),
    n_clean: int = typer.Option(2000, help="Clean inputs: half overlay pool, half threshold references."),
    n_overlays: int = typer.Option(100, help="Clean overlays blended into each scored input."),
    false_positive_rate: float = typer.Option(0.01, help="Clean inputs flagged (FRR)."),
    boundary: str = typer.Option("quantile", help="Threshold rule: 'quantile' (empirical) or 'normal' "
                                                  "(the paper's normal fit to clean entropies)."),
    early_stop: Optional[float] = typer.Option(
        None, help="Sequential scoring: stop overlaying an input once its mean entropy is this many "
                   "standard errors from the threshold (e.g. 4); default: all N overlays."),
    seed: int = typer.Option(0, help="Seed of the overlays."),
    data_dir: Optional[Path] = typer.Option(None, help=DATA_DIR_HELP),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP + " Without it, an --out folder "
                               "that already holds a monitor is refused."),
) -> None:
    """Fit STRIP on clean inputs and save it (no pickle: safetensors, npz and JSON)."""
    from ..defenses.inference import STRIP
    from ..models.io import card_path
    from ..runs.monitor import MODEL_FILE, fit_monitor, save_monitor
    from .progress import event_progress

    STRIP(n_overlays=n_overlays, false_positive_rate=false_positive_rate, boundary=boundary,
          early_stop=early_stop, random_state=seed)._validate_params()  # before any work
    check_input(model, "--model")
    guard = output_guard([model, card_path(model), *dataset_inputs(dataset, data_dir)], force=force)
    files = [STRIP.STATE_FILE, STRIP.ARRAYS_FILE, MODEL_FILE, card_path(MODEL_FILE).name]
    guard.folder(out, "--out", files=files)
    splits = _load(dataset, data_dir)
    with event_progress(console) as emit:
        monitor = fit_monitor(model, splits.test, architecture=architecture, n_clean=n_clean,
                              n_overlays=n_overlays, false_positive_rate=false_positive_rate,
                              boundary=boundary, early_stop=early_stop, seed=seed, emit=emit)
    with guard.writing(*(out / f for f in files)):
        save_monitor(out, monitor)
    console.print(f"STRIP fitted on {monitor.info['n_clean']} clean inputs: threshold "
                  f"{monitor.detector.threshold_:.3f} (FRR {false_positive_rate:.1%}); saved to [bold]{out}[/]")


@monitor_app.command("score")
def monitor_score(
    monitor: Path = typer.Option(..., help="Folder written by 'poisonlab monitor fit'."),
    input: Path = typer.Option(..., "--input", "-i", help="A .npz with the inputs under X."),
    out: Path = typer.Option(Path("poisonlab-out/monitor-scores.csv"), help="CSV of scores and flags "
                             "(never the input)."),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
    no_fail: bool = typer.Option(False, "--no-fail", help=NO_FAIL_HELP),
) -> None:
    """Score a batch of inputs with a saved STRIP monitor; print the flagged ones.

    Exit status: 0 no input flagged; 3 inputs flagged as triggered (0 with --no-fail); 2 bad input."""
    from ..runs.monitor import load_monitor, read_batch, score_batch

    check_input(monitor, "--monitor", folder=True)
    check_input(input, "--input")
    guard = output_guard([monitor, input], force=force)
    guard.file(out, "--out")
    X = read_batch(input)
    det = load_monitor(monitor)
    result = score_batch(det, X)
    guard.write_text(out, "index,score,flagged\n" + "".join(
        f"{i},{s:.6f},{int(f)}\n" for i, (s, f) in enumerate(zip(result.scores, result.flags))))
    console.print(f"{int(result.flags.sum())} of {len(X)} inputs flagged as triggered "
                  f"(first: {result.flagged[:10].tolist()}); scores in [bold]{out}[/]")
    exit_for(bool(result.flags.any()), no_fail)
