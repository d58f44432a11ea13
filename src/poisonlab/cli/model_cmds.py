"""``poisonlab scan-model`` and ``poisonlab monitor``: inspect a finished model, watch live inputs."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Optional

import numpy as np
import typer
from rich.table import Table

from ..exceptions import PoisonlabError
from .main import DATA_DIR_HELP, _fail, _load, app, console

monitor_app = typer.Typer(no_args_is_help=True, help="Fit STRIP on clean data, then score live inputs.")
app.add_typer(monitor_app, name="monitor")


def _module_from_file(path: Path, architecture: Optional[str], ds):
    """Scan the file, refuse it if unsafe, then load its weights into a named architecture."""
    from ..defenses.model import load_state_dict, scan_model_file
    from ..evaluation.experiment import model_factory
    from ..models.architectures import ModelSpec

    report = scan_model_file(path)
    console.print(f"file safety: {report.summary()}")
    state = load_state_dict(path)  # raises UnsafeModelError for what the scan refused
    module = model_factory(architecture, ds.modality)(ModelSpec(tuple(ds.X.shape[1:]), ds.n_classes))
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        raise PoisonlabError(f"the weights in {path.name} do not fit architecture "
                             f"{architecture or 'default'}: {str(exc).splitlines()[0]}") from exc
    return module.eval(), report


def _save_weights(module, path: Path) -> Path:
    from safetensors.torch import save

    from ..reports import atomic_write_bytes

    state = {k: v.detach().contiguous() for k, v in module.state_dict().items()}
    return atomic_write_bytes(path, save(state))


@app.command("scan-model")
def scan_model(
    model: Path = typer.Argument(..., help="Model weights: .safetensors, or a pickle-based .pt/.pth (scanned first)."),
    dataset: str = typer.Option(..., help="Built-in dataset the model was trained for (clean inputs come from its test split)."),
    architecture: Optional[str] = typer.Option(None, help="Architecture name (default: the modality's)."),
    n_clean: int = typer.Option(500, help="Clean inputs Neural Cleanse optimises on."),
    epochs: int = typer.Option(20, help="Neural Cleanse epochs."),
    repair: Optional[str] = typer.Option(None, help="unlearn | prune: write a repaired copy beside the model."),
    out_dir: Path = typer.Option(Path("poisonlab-out/scan-model"), help="Report, triggers and repairs go here."),
    seed: int = typer.Option(0),
    data_dir: Optional[Path] = typer.Option(None, help=DATA_DIR_HELP),
) -> None:
    """Check a model file for code, then for a backdoor (Neural Cleanse); optionally repair it."""
    from ..defenses.model import NeuralCleanse, UnsafeModelError, fine_prune
    from ..models.adapters import TorchClassifier
    from ..reports import atomic_write_bytes, atomic_write_json
    from ..reports.images import trigger_png
    from .progress import training_progress

    if repair not in (None, "unlearn", "prune"):
        _fail(ValueError(f"--repair must be 'unlearn' or 'prune'; got {repair!r}"))
    try:
        splits = _load(dataset, data_dir)
        if splits.test.modality != "image":
            raise PoisonlabError("Neural Cleanse reverse-engineers image triggers; this dataset is "
                                 f"{splits.test.modality}")
        module, file_report = _module_from_file(model, architecture, splits.test)
        clf = TorchClassifier.from_trained(module, n_classes=splits.test.n_classes)
        clean = splits.test.X[:n_clean]
        with training_progress(console) as progress:
            nc = NeuralCleanse(epochs=epochs, random_state=seed).fit(
                clean, model=clf, callback=lambda e, i: progress("neural cleanse", e, i))
    except UnsafeModelError as exc:
        atomic_write_json(out_dir / "report.json", {"model": str(model), "file_safety": exc.report.to_dict(),
                                                    "verdict": "refused: unsafe file"})
        _fail(exc)
    except PoisonlabError as exc:
        _fail(exc)
    table = Table(title="Neural Cleanse: reversed trigger size per class")
    for col in ("class", "L1 norm of mask", "anomaly index", "reached ASR", "flagged"):
        table.add_column(col)
    for c in range(len(nc.l1_norms_)):
        table.add_row(splits.test.classes[c], f"{nc.l1_norms_[c]:.1f}", f"{nc.scores_[c]:+.2f}",
                      "yes" if nc.reached_threshold_[c] else "no", "BACKDOOR?" if nc.flags_[c] else "")
        atomic_write_bytes(out_dir / f"trigger_class{c}.png", trigger_png(nc.masks_[c], nc.patterns_[c]))
    console.print(table)
    flagged = np.flatnonzero(nc.flags_).tolist()
    verdict = (f"backdoor suspected: class(es) {flagged} need an abnormally small trigger (anomaly index > 2)"
               if flagged else "no class needs an abnormally small trigger (no index > 2)")
    console.print(f"[bold]{verdict}[/]")
    report = {"model": str(model), "file_safety": file_report.to_dict(), "dataset": dataset,
              "l1_norms": nc.l1_norms_, "anomaly_index": nc.scores_, "flagged_classes": flagged,
              "reached_threshold": nc.reached_threshold_, "verdict": verdict}
    if repair and flagged:
        stem = model.name.split(".")[0]
        target = model.with_name(f"{stem}.repaired-{repair}.safetensors")
        if target.resolve() == model.resolve():
            _fail(ValueError("refusing to write the repair over the original model"))
        train = splits.train
        if repair == "unlearn":
            fixed = nc.unlearn(clf, train.X[:10000], train.y[:10000], epochs=1)
            report["repair"] = {"method": "unlearn (reversed trigger, true labels, 1 epoch)"}
        else:
            res = fine_prune(clf, train.X[:10000], train.y[:10000], X_val=splits.test.X[n_clean:n_clean + 2000],
                             y_val=splits.test.y[n_clean:n_clean + 2000])
            fixed = res.model
            report["repair"] = {"method": "fine-pruning", "pruned": res.pruned, "curve": res.curve, "final": res.final}
        _save_weights(fixed.module_, target)
        report["repair"]["written"] = str(target)
        console.print(f"repaired copy written to [bold]{target}[/] (the original is untouched)")
    atomic_write_json(out_dir / "report.json", report)
    console.print(f"report and reversed triggers in [bold]{out_dir}[/]")


@monitor_app.command("fit")
def monitor_fit(
    model: Path = typer.Option(..., help="Model weights (.safetensors or a scanned .pt)."),
    dataset: str = typer.Option(..., help="Built-in dataset: clean held-out inputs come from its test split."),
    out: Path = typer.Option(..., help="Folder to save the fitted monitor in (weights, pool, settings)."),
    architecture: Optional[str] = typer.Option(None),
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
    from ..defenses.inference import STRIP
    from ..models.adapters import TorchClassifier
    from ..reports import atomic_write_bytes, atomic_write_json

    try:
        splits = _load(dataset, data_dir)
        module, _ = _module_from_file(model, architecture, splits.test)
        det = STRIP(n_overlays=n_overlays, false_positive_rate=false_positive_rate, boundary=boundary,
                    early_stop=early_stop, random_state=seed).fit(
            splits.test.X[:n_clean], model=TorchClassifier.from_trained(module))
    except PoisonlabError as exc:
        _fail(exc)
    _save_weights(module, out / "model.safetensors")
    buf = io.BytesIO()
    np.savez(buf, pool=det.pool_)
    atomic_write_bytes(out / "pool.npz", buf.getvalue())
    atomic_write_json(out / "monitor.json", {"params": det.get_params(), "threshold": det.threshold_,
                                             "mode": det.mode_, "high": det.high_, "dataset": dataset,
                                             "modality": splits.test.modality,
                                             "architecture": architecture, "n_classes": splits.test.n_classes,
                                             "input_shape": list(splits.test.X.shape[1:])})
    console.print(f"STRIP fitted on {n_clean} clean inputs: threshold {det.threshold_:.3f} "
                  f"(FRR {false_positive_rate:.1%}); saved to [bold]{out}[/]")


def load_monitor(folder: Path):
    """A saved STRIP monitor, rebuilt without unpickling anything."""
    from ..defenses.inference import STRIP
    from ..defenses.model import load_state_dict
    from ..evaluation.experiment import model_factory
    from ..models.adapters import TorchClassifier
    from ..models.architectures import ModelSpec

    meta = json.loads((folder / "monitor.json").read_text())
    det = STRIP(**meta["params"])
    with np.load(folder / "pool.npz", allow_pickle=False) as z:
        det.pool_ = z["pool"]
    module = model_factory(meta["architecture"], meta["modality"])(ModelSpec(tuple(meta["input_shape"]), meta["n_classes"]))
    module.load_state_dict(load_state_dict(folder / "model.safetensors"))
    det.model_ = TorchClassifier.from_trained(module.eval()).inference_copy()
    det.mode_, det.high_, det.threshold_ = meta["mode"], meta["high"], float(meta["threshold"])
    det.n_classes_ = int(meta["n_classes"])
    return det


@monitor_app.command("score")
def monitor_score(
    monitor: Path = typer.Option(..., help="Folder written by 'poisonlab monitor fit'."),
    input: Path = typer.Option(..., "--input", "-i", help="A .npz with the inputs under X."),
    out: Path = typer.Option(Path("poisonlab-out/monitor-scores.csv"), help="CSV of scores and flags."),
) -> None:
    """Score a batch of inputs with a saved STRIP monitor; print the flagged ones."""
    from ..reports import atomic_write_text

    try:
        det = load_monitor(monitor)
        with np.load(input, allow_pickle=False) as z:
            if "X" not in z.files:
                raise PoisonlabError(f"{input} must hold the inputs under 'X'; found {z.files}")
            X = z["X"]
        scores = det.score(X)
    except (PoisonlabError, OSError, KeyError) as exc:
        _fail(exc)
    flags = scores > det.threshold_
    atomic_write_text(out, "index,score,flagged\n" + "".join(f"{i},{s:.6f},{int(f)}\n"
                                                               for i, (s, f) in enumerate(zip(scores, flags))))
    console.print(f"{int(flags.sum())} of {len(X)} inputs flagged as triggered "
                  f"(first: {np.flatnonzero(flags)[:10].tolist()}); scores in [bold]{out}[/]")
