"""``poisonlab scan-model`` and ``poisonlab monitor``: inspect a finished model, watch live inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from ..exceptions import PoisonlabError
from .app import DATA_DIR_HELP, _fail, _load, app, console

monitor_app = typer.Typer(no_args_is_help=True, help="Fit STRIP on clean data, then score live inputs.")
app.add_typer(monitor_app, name="monitor")


@app.command("scan-model")
def scan_model(
    model: Path = typer.Argument(..., help="Model weights: .safetensors, or a pickle-based .pt/.pth (scanned first)."),
    dataset: str = typer.Option(..., help="Built-in dataset the model was trained for (clean inputs come from its test split)."),
    architecture: Optional[str] = typer.Option(None, help="Architecture name (default: the model card's, "
                                               "else the modality's)."),
    n_clean: int = typer.Option(500, help="Clean inputs Neural Cleanse optimises on."),
    epochs: int = typer.Option(20, help="Neural Cleanse epochs."),
    repair: Optional[str] = typer.Option(None, help="unlearn | prune: write a repaired copy (safetensors + "
                                                  "model card) beside the model."),
    out_dir: Path = typer.Option(Path("poisonlab-out/scan-model"), help="Report, triggers and repairs go here."),
    seed: int = typer.Option(0),
    data_dir: Optional[Path] = typer.Option(None, help=DATA_DIR_HELP),
) -> None:
    """Check a model file for code, then for a backdoor (Neural Cleanse); optionally repair it."""
    from ..defenses.model import UnsafeModelError
    from ..models.io import save_model
    from ..reports import atomic_write_bytes, atomic_write_json
    from ..reports.images import trigger_png
    from ..runs.model_scan import REPAIRS, repaired_path, scan_model
    from .progress import event_progress

    if repair not in (None, *REPAIRS):
        _fail(ValueError(f"--repair must be 'unlearn' or 'prune'; got {repair!r}"))
    try:
        target = repaired_path(model, repair) if repair else None
        splits = _load(dataset, data_dir)
        with event_progress(console) as emit:
            result = scan_model(model, splits.test, train=splits.train, architecture=architecture,
                                n_clean=n_clean, epochs=epochs, repair=repair, seed=seed,
                                dataset_name=dataset, emit=emit)
    except UnsafeModelError as exc:
        atomic_write_json(out_dir / "report.json", {"model": str(model), "file_safety": exc.report.to_dict(),
                                                    "verdict": "refused: unsafe file"})
        _fail(exc)
    except PoisonlabError as exc:
        _fail(exc)
    nc = result.detector
    table = Table(title="Neural Cleanse: reversed trigger size per class")
    for col in ("class", "L1 norm of mask", "anomaly index", "reached ASR", "flagged"):
        table.add_column(col)
    for c in range(len(nc.l1_norms_)):
        table.add_row(splits.test.classes[c], f"{nc.l1_norms_[c]:.1f}", f"{nc.scores_[c]:+.2f}",
                      "yes" if nc.reached_threshold_[c] else "no", "BACKDOOR?" if nc.flags_[c] else "")
    console.print(table)
    console.print(f"[bold]{result.verdict}[/]")
    for c in range(len(nc.l1_norms_)):
        atomic_write_bytes(out_dir / f"trigger_class{c}.png", trigger_png(nc.masks_[c], nc.patterns_[c]))
    report = result.report
    if result.repaired is not None:
        checked = result.checked
        try:
            save_model(result.repaired, target, architecture=checked.architecture,
                       spec=checked.card.spec if checked.card is not None else _spec(splits.test),
                       modality=splits.test.modality, class_names=splits.test.classes,
                       architecture_kwargs=checked.card.architecture_kwargs if checked.card is not None
                       and checked.card.architecture == checked.architecture else None,
                       extra={"repaired_from": str(model), "repair": report["repair"]["method"]})
        except PoisonlabError as exc:
            _fail(exc)
        report["repair"]["written"] = str(target)
        console.print(f"repaired copy written to [bold]{target}[/] (the original is untouched)")
    atomic_write_json(out_dir / "report.json", report)
    console.print(f"report and reversed triggers in [bold]{out_dir}[/]")


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
    n_overlays: int = typer.Option(100),
    false_positive_rate: float = typer.Option(0.01, help="Clean inputs flagged (FRR)."),
    boundary: str = typer.Option("quantile", help="Threshold rule: 'quantile' (empirical) or 'normal' "
                                                  "(the paper's normal fit to clean entropies)."),
    early_stop: Optional[float] = typer.Option(
        None, help="Sequential scoring: stop overlaying an input once its mean entropy is this many "
                   "standard errors from the threshold (e.g. 4); default: all N overlays."),
    seed: int = typer.Option(0),
    data_dir: Optional[Path] = typer.Option(None, help=DATA_DIR_HELP),
) -> None:
    """Fit STRIP on clean inputs and save it (no pickle: safetensors, npz and JSON)."""
    from ..runs.monitor import fit_monitor, save_monitor
    from .progress import event_progress

    try:
        splits = _load(dataset, data_dir)
        with event_progress(console) as emit:
            monitor = fit_monitor(model, splits.test, architecture=architecture, n_clean=n_clean,
                                  n_overlays=n_overlays, false_positive_rate=false_positive_rate,
                                  boundary=boundary, early_stop=early_stop, seed=seed, emit=emit)
        save_monitor(out, monitor)
    except (PoisonlabError, OSError) as exc:
        _fail(exc)
    console.print(f"STRIP fitted on {monitor.info['n_clean']} clean inputs: threshold "
                  f"{monitor.detector.threshold_:.3f} (FRR {false_positive_rate:.1%}); saved to [bold]{out}[/]")


@monitor_app.command("score")
def monitor_score(
    monitor: Path = typer.Option(..., help="Folder written by 'poisonlab monitor fit'."),
    input: Path = typer.Option(..., "--input", "-i", help="A .npz with the inputs under X."),
    out: Path = typer.Option(Path("poisonlab-out/monitor-scores.csv"), help="CSV of scores and flags."),
) -> None:
    """Score a batch of inputs with a saved STRIP monitor; print the flagged ones."""
    from ..reports import atomic_write_text
    from ..runs.monitor import load_monitor, read_batch, score_batch

    try:
        det = load_monitor(monitor)
        X = read_batch(input)
        result = score_batch(det, X)
    except (PoisonlabError, OSError) as exc:
        _fail(exc)
    atomic_write_text(out, "index,score,flagged\n" + "".join(
        f"{i},{s:.6f},{int(f)}\n" for i, (s, f) in enumerate(zip(result.scores, result.flags))))
    console.print(f"{int(result.flags.sum())} of {len(X)} inputs flagged as triggered "
                  f"(first: {result.flagged[:10].tolist()}); scores in [bold]{out}[/]")
