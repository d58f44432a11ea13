"""``poisonlab``: the command-line entry point. Thin: parses, calls the library, prints, writes."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from ..exceptions import PoisonlabError

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


DEMO_ATTACKS = {"image": "badnets", "text": "badword", "tabular": "tabular_trigger", "audio": "audio_trigger"}


@app.command()
def demo(
    dataset: str = typer.Option("digits", help="Built-in dataset name (digits needs no files)."),
    attack: Optional[str] = typer.Option(None, help="Registered attack name (default: badnets for "
                                         "images, badword for text, tabular_trigger for tables, audio_trigger for audio)."),
    poison_rate: float = typer.Option(0.1, help="Fraction of the training set to poison."),
    target: int = typer.Option(0, help="Target class."),
    epochs: int = typer.Option(30, help="Training epochs."),
    seed: int = typer.Option(0, help="Seed for the poison and the training."),
    out: Path = typer.Option(Path("poisonlab-demo.json"), help="Where to write the JSON results."),
    data_dir: Optional[Path] = typer.Option(None, help=DATA_DIR_HELP),
) -> None:
    """Poison a dataset, train a poisoned and a clean model, and compare them."""
    from .. import registry
    from ..evaluation.experiment import run_backdoor
    from ..models.training import TrainConfig
    from ..reports import atomic_write_json
    from .progress import training_progress

    try:
        splits = _load(dataset, data_dir, waveforms=True)
        modality = splits.train.modality
        # audio: the model takes waveforms and computes its log-mel spectrogram itself
        architecture = "audio-wave-cnn" if modality == "audio" else None
        attack = attack or DEMO_ATTACKS[modality]
        kw = {"encoder": splits.encoder} if attack == "tabular_trigger" and getattr(splits, "encoder", None) else {}
        atk = registry.create("attack", attack, poison_rate=poison_rate, target=target, random_state=seed, **kw)
        config = TrainConfig(epochs=epochs, lr=3e-3, batch_size=64, seed=seed)
        console.print(f"[bold]poisonlab demo[/]: {type(atk).__name__} on {dataset} "
                      f"({len(splits.train)} train / {len(splits.test)} test), target class {target}, "
                      f"{poison_rate:.0%} poisoned")
        t0 = time.perf_counter()
        with training_progress(console) as progress:
            result = run_backdoor(splits.train, splits.test, atk, config=config, progress=progress,
                                  architecture=architecture)
        seconds = time.perf_counter() - t0
    except PoisonlabError as exc:
        _fail(exc)
    result.pop("models")
    result.pop("poison_result")
    result["seconds"] = seconds
    table = Table(title="Poisoned vs clean model (test set)")
    table.add_column("model")
    table.add_column("clean accuracy", justify="right")
    table.add_column("attack success rate", justify="right")
    table.add_column("epochs", justify="right")
    for label in ("clean", "poisoned"):
        m = result[label]
        table.add_row(label, f"{m['clean_accuracy']:.2%}", f"{m['attack_success_rate']:.2%}",
                      str(m["epochs_run"]))
    console.print(table)
    change = result["poisoned"]["clean_accuracy"] - result["clean"]["clean_accuracy"]
    console.print(f"The poisoned model's clean accuracy differs from the clean model's by "
                  f"{change * 100:+.2f} points, yet it obeys the trigger on "
                  f"{result['poisoned']['attack_success_rate']:.2%} of triggered inputs "
                  f"(the clean model: {result['clean']['attack_success_rate']:.2%}).")
    atomic_write_json(out, result)
    console.print(f"Results written to [bold]{out}[/] ({seconds:.1f} s).")


@app.command()
def attack(
    attack_name: str = typer.Argument(..., metavar="ATTACK", help="Registered attack name."),
    out: Path = typer.Option(..., "--out", "-o", help="Output .npz (poisoned X, y, poison_mask, ids)."),
    dataset: Optional[str] = typer.Option(None, help="Built-in dataset (its training split)."),
    input: Optional[Path] = typer.Option(None, "--input", "-i", help="A .npz with X and y instead."),
    param: list[str] = typer.Option([], "--param", "-p", help="Attack parameter key=value (repeatable)."),
    seed: int = typer.Option(0, help="random_state of the attack."),
    data_dir: Optional[Path] = typer.Option(None, help=DATA_DIR_HELP),
    force: bool = typer.Option(False, help="Overwrite --out if it exists (never the input)."),
    surrogate: Optional[Path] = typer.Option(None, help="Surrogate model weights (.safetensors) for "
                                             "attacks that need a model (label_consistent, "
                                             "feature_collision, gradient_matching)."),
    architecture: Optional[str] = typer.Option(None, help="Architecture of --surrogate (default: the "
                                               "modality's reference model)."),
    target_index: Optional[int] = typer.Option(None, help="Target input for targeted attacks: this "
                                               "index of the dataset's test split (of --input with "
                                               "--input)."),
) -> None:
    """Poison a dataset file; write the poisoned data and the ground-truth mask."""
    import numpy as np

    from .. import registry
    from ..data import read_npz
    from ..reports import atomic_write_bytes, atomic_write_json
    from ..reports.files import to_jsonable

    if (dataset is None) == (input is None):
        _fail(ValueError("give exactly one of --dataset or --input"))
    if out.suffix != ".npz":
        _fail(ValueError(f"--out must end in .npz; got {out}"))
    if input is not None and out.resolve() == input.resolve():
        _fail(ValueError("--out must differ from --input: poisonlab never overwrites your data"))
    if out.exists() and not force:
        _fail(ValueError(f"{out} exists; pass --force to replace it"))
    try:
        params = _parse_params(param)
        params.setdefault("random_state", seed)
        atk = registry.create("attack", attack_name, **params)
        if input is not None:
            ds = read_npz(input)
        else:
            ds = _load(dataset, data_dir, waveforms=attack_name == "audio_trigger").train
        needs = _attack_needs(atk, ds, dataset, data_dir, surrogate, architecture, target_index)
        res = atk.poison(ds.X, ds.y, **needs)
    except PoisonlabError as exc:
        _fail(exc)
    import io

    buf = io.BytesIO()
    ids = np.asarray(ds.ids)
    if len(res.y) > len(ids):  # attacks that inject samples append them: give them ids of their own
        ids = np.concatenate([ids.astype(str), [f"injected-{k}" for k in range(len(res.y) - len(ids))]])
    X_out = np.asarray(res.X, dtype=str) if res.X.dtype == object else res.X  # texts: no pickle
    np.savez_compressed(buf, X=X_out, y=res.y, poison_mask=res.poison_mask, indices=res.indices,
                        ids=ids, classes=np.array(ds.classes))
    atomic_write_bytes(out, buf.getvalue())
    meta = {"attack": attack_name, "params": to_jsonable({k: (v if not isinstance(v, np.ndarray) else "<array>")
                                                          for k, v in atk.get_params().items()}),
            "source": str(input) if input else dataset, "n_samples": len(res.y),
            "n_poison": res.n_poison, "target": res.target, "info": dict(res.info)}
    atomic_write_json(out.with_suffix(".json"), meta)
    console.print(f"Poisoned {res.n_poison} of {len(res.y)} samples with {type(atk).__name__}; "
                  f"wrote [bold]{out}[/] and {out.with_suffix('.json')}.")


@app.command()
def reproduce(
    ids: list[str] = typer.Argument(None, metavar="ID...", help="Reproduction IDs (e.g. R1 R2)."),
    seeds: int = typer.Option(3, min=1, help="Number of seeds (0 .. N-1)."),
    out_dir: Path = typer.Option(Path("poisonlab-out/reproduce"), help="Where JSON and Markdown go."),
    data_dir: Optional[Path] = typer.Option(None, help=DATA_DIR_HELP),
    list_: bool = typer.Option(False, "--list", help="List the reproductions and exit."),
    threads: Optional[int] = typer.Option(None, min=1, help="Torch threads (1 when jobs run side by side)."),
) -> None:
    """Run entries of the reproduction suite; write one JSON per ID and a Markdown table."""
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    from ..evaluation.reproduce import REPRODUCTIONS, run_reproduction
    from ..reports import atomic_write_bytes, atomic_write_json, atomic_write_text, reproduction_table
    from ..reports.plots import rate_sweep_png
    from .progress import training_progress

    if list_ or not ids:
        table = Table(title="Reproductions")
        for col in ("ID", "title", "paper", "target"):
            table.add_column(col)
        for rep in REPRODUCTIONS.values():
            table.add_row(rep.id, rep.title, rep.paper, rep.target)
        console.print(table)
        return
    unknown = [i for i in ids if i not in REPRODUCTIONS]
    if unknown:
        _fail(ValueError(f"unknown reproduction(s) {unknown}; available: {sorted(REPRODUCTIONS)}"))
    records = []
    for rid in ids:
        console.print(f"[bold]{rid}[/]: {REPRODUCTIONS[rid].title} — {seeds} seed(s)")
        try:
            command = " ".join(["poisonlab", "reproduce", *ids, "--seeds", str(seeds)])

            def save(record, rid=rid, command=command):  # after every seed: a stopped run keeps its seeds
                atomic_write_json(out_dir / f"{rid}.json", {**record, "command": command})

            with training_progress(console) as progress:
                rec = run_reproduction(rid, seeds=seeds, root=data_dir, progress=progress, on_seed=save)
        except PoisonlabError as exc:
            _fail(exc)
        rec["command"] = command
        if "by_rate" in rec["measured"]:
            atomic_write_bytes(out_dir / f"{rid}.png", rate_sweep_png(rec))
        records.append(rec)
        colour = "green" if rec["passed"] else "red"
        console.print(f"[{colour}]{'PASS' if rec['passed'] else 'MISS'}[/] {rid}: {rec['verdict']} "
                      f"({rec['seconds'] / 60:.1f} min)")
    # The table covers every result in the folder (IDs run earlier too), in ID order.
    import re

    found = sorted((p for p in out_dir.glob("R*.json") if re.fullmatch(r"R\d+\.json", p.name)),
                   key=lambda p: int(p.stem[1:]))
    md = reproduction_table(json.loads(p.read_text()) for p in found)
    atomic_write_text(out_dir / "table.md", md)
    console.print(f"Wrote {len(records)} result(s); table.md lists all {len(found)} in [bold]{out_dir}[/].")
    if not all(r["passed"] for r in records):
        raise typer.Exit(code=1)


def _attack_from_sidecar(npz: Path, data_dir: Optional[Path]):
    """Rebuild the attack recorded beside a poisoned ``.npz`` (for ASR), and its source's test
    split. Attacks with a random trigger re-poison the source to redraw it (seeded, identical)."""
    from .. import registry

    meta_path = npz.with_suffix(".json")
    if not meta_path.is_file():
        return None, None
    meta = json.loads(meta_path.read_text())
    params = {k: (tuple(v) if isinstance(v, list) else v) for k, v in meta.get("params", {}).items()
              if v != "<array>"}
    atk = registry.create("attack", meta["attack"], **params)
    source = meta.get("source")
    from ..data import DATASETS

    if source not in DATASETS:
        return atk, None
    splits = _load(source, data_dir)
    if hasattr(atk, "apply_trigger"):
        atk.poison(splits.train.X, splits.train.y)
    return atk, splits.test


@app.command("scan-data")
def scan_data(
    dataset: Optional[str] = typer.Option(None, help="Built-in dataset (its training split)."),
    input: Optional[Path] = typer.Option(None, "--input", "-i", help="A .npz (X, y[, ids, poison_mask])."),
    detectors: str = typer.Option(",".join(("spectral", "spectre", "activation_clustering", "label_issues",
                                            "knn_label", "robust_outliers", "duplicates")),
                                  help="Comma-separated detector names."),
    contamination: float = typer.Option(0.05, help="Fraction to quarantine (and detectors' threshold)."),
    features: Optional[Path] = typer.Option(None, help="Precomputed features (.npy, memory-mapped)."),
    model: Optional[Path] = typer.Option(None, help="Model weights (.safetensors) to take features from."),
    architecture: Optional[str] = typer.Option(None, help="Architecture of --model, or of the reference model."),
    layer: Optional[str] = typer.Option(None, help="Layer to read features from (default: penultimate)."),
    epochs: int = typer.Option(10, help="Epochs of the reference model (when no --model/--features)."),
    retrain: bool = typer.Option(False, help="Retrain without the quarantined samples and compare."),
    top: int = typer.Option(20, help="Rows of the ranked table."),
    seed: int = typer.Option(0, help="Seed of the reference model."),
    out_dir: Path = typer.Option(Path("poisonlab-out/scan"), help="Where scores.json/.csv and quarantine.txt go."),
    data_dir: Optional[Path] = typer.Option(None, help=DATA_DIR_HELP),
) -> None:
    """Rank every training sample by how likely it is poisoned; quarantine the worst."""
    import numpy as np

    from ..data import read_npz
    from ..defenses.data.scan import scan
    from ..evaluation.experiment import retrain_comparison
    from ..models.training import TrainConfig
    from ..reports import atomic_write_json, atomic_write_text
    from .progress import training_progress

    if (dataset is None) == (input is None):
        _fail(ValueError("give exactly one of --dataset or --input"))
    try:
        mask = None
        test, atk = None, None
        if input is not None:
            ds = read_npz(input)
            with np.load(input, allow_pickle=False) as z:
                mask = z["poison_mask"].astype(bool) if "poison_mask" in z.files else None
            atk, test = _attack_from_sidecar(input, data_dir)
        else:
            splits = _load(dataset, data_dir)
            ds, test = splits.train, splits.test
        feats = None
        if features is not None:
            feats = np.load(features, mmap_mode="r", allow_pickle=False)
        user_model = None
        if model is not None:
            user_model = _load_safetensors_model(model, architecture, ds)
        config = TrainConfig(epochs=epochs, seed=seed)
        names = [d.strip() for d in detectors.split(",") if d.strip()]
        with training_progress(console) as progress:
            def on_event(event: str, info: dict) -> None:
                if event == "detector":
                    console.print(f"  {info['name']:<22} {info['seconds']:.2f} s")
                else:
                    progress("reference model", event, info)

            result = scan(ds, features=feats, model=user_model, layer=layer, detectors=names,
                          contamination=contamination, architecture=architecture if model is None else None,
                          config=config, poison_mask=mask, progress=on_event)
            if retrain:
                if test is None:
                    raise PoisonlabError("--retrain needs a test split: use --dataset, or an --input "
                                         "written by 'poisonlab attack --dataset ...'")
                result.retrain = retrain_comparison(ds, ~result.quarantine, test, attack=atk,
                                                    architecture=architecture, config=config,
                                                    progress=progress)
    except (PoisonlabError, OSError) as exc:
        _fail(exc)
    table = Table(title=f"Most suspicious of {len(ds)} samples")
    for col in ("rank", "id", "label", "score", "why"):
        table.add_column(col)
    for row in result.table(top):
        table.add_row(str(row["rank"]), row["id"], ds.classes[row["label"]], f"{row['score']:.3f}",
                      "; ".join(row["why"]) or "ranked high by several detectors")
    console.print(table)
    if result.evaluation:
        ev = Table(title="Against the ground-truth poison mask")
        for col in ("detector", "precision", "recall", "F1", "AUROC", "flagged"):
            ev.add_column(col)
        for name, m in result.evaluation.items():
            ev.add_row(name, f"{m['precision']:.2f}", f"{m['recall']:.2f}", f"{m['f1']:.2f}",
                       f"{m['auroc']:.3f}", str(m["n_flagged"]))
        console.print(ev)
    if result.retrain:
        for label in ("before", "after"):
            m = result.retrain[label]
            asr = f", ASR {m['attack_success_rate']:.2%}" if "attack_success_rate" in m else ""
            console.print(f"retrained {label} removal: clean accuracy {m['clean_accuracy']:.2%}{asr}")
    rows = ["id,label,combined,quarantined," + ",".join(f"{n},{n}_flag" for n in result.scores)]
    for i in range(len(ds)):
        cells = [str(ds.ids[i]), str(int(ds.y[i])), f"{result.combined[i]:.6g}", str(int(result.quarantine[i]))]
        cells += [f"{result.scores[n][i]:.6g},{int(result.flags[n][i])}" for n in result.scores]
        rows.append(",".join(cells))
    atomic_write_text(out_dir / "scores.csv", "\n".join(rows) + "\n")
    atomic_write_text(out_dir / "quarantine.txt", "\n".join(ds.ids[result.quarantine]) + "\n")
    atomic_write_json(out_dir / "scores.json", {
        "dataset": ds.summary(), "detectors": names, "contamination": contamination,
        "representation": result.representation, "seconds": result.seconds,
        "n_quarantined": int(result.quarantine.sum()), "top": result.table(top),
        "class_reports": result.reports, "evaluation": result.evaluation, "retrain": result.retrain})
    console.print(f"Quarantined {int(result.quarantine.sum())} ids; wrote scores.csv, scores.json and "
                  f"quarantine.txt to [bold]{out_dir}[/]. Your data was not changed.")


def _attack_needs(atk, ds, dataset, data_dir, surrogate, architecture, target_index) -> dict:
    """The keyword extras an attack's ``needs`` names, from the command's options."""
    needs = {}
    if "model" in atk.needs:
        if surrogate is None:
            raise PoisonlabError(f"{type(atk).__name__} crafts against a surrogate model: pass "
                                 f"--surrogate weights.safetensors (and --architecture)")
        needs["model"] = _load_safetensors_model(surrogate, architecture, ds)
    if "target_input" in atk.needs or "X_val" in atk.needs:
        pool = ds if dataset is None else _load(dataset, data_dir).test
        if "target_input" in atk.needs:
            if target_index is None or not 0 <= target_index < len(pool):
                raise PoisonlabError(f"{type(atk).__name__} needs --target-index in [0, {len(pool)}) "
                                     f"(an input of the {'input file' if dataset is None else 'test split'})")
            needs["target_input"] = pool.X[target_index]
        if "X_val" in atk.needs:
            if dataset is None:
                raise PoisonlabError(f"{type(atk).__name__} needs an attacker validation set: use "
                                     f"--dataset (its test split serves) or the Python API")
            needs["X_val"], needs["y_val"] = pool.X, pool.y
    return needs


def _load_safetensors_model(path: Path, architecture: Optional[str], ds):
    """Weights from a .safetensors file (never a pickle) into a named architecture."""
    from safetensors.torch import load_file

    from ..evaluation.experiment import model_factory
    from ..models.adapters import TorchClassifier
    from ..models.architectures import ModelSpec

    if path.suffix != ".safetensors":
        raise PoisonlabError(f"--model must be a .safetensors file (pickled models are never loaded "
                             f"here); got {path.name}")
    try:
        state = load_file(str(path))
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
        raise PoisonlabError(f"{path} is not a readable safetensors file: {exc}") from exc
    spec = ModelSpec(tuple(ds.X.shape[1:]), ds.n_classes)
    module = model_factory(architecture, ds.modality)(spec)
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        raise PoisonlabError(f"the weights in {path.name} do not fit architecture "
                             f"{architecture or 'default'}: {str(exc).splitlines()[0]}") from exc
    return TorchClassifier.from_trained(module, n_classes=ds.n_classes)


@app.command()
def datasets(data_dir: Optional[Path] = typer.Option(None, help=DATA_DIR_HELP)) -> None:
    """List the built-in datasets."""
    from ..data import DATASETS, ENV_VAR

    table = Table(title="Built-in datasets")
    table.add_column("name")
    table.add_column("modality")
    table.add_column("needs files")
    for name, (_, needs_files, modality) in DATASETS.items():
        table.add_row(name, modality, "yes" if needs_files else "no (ships with scikit-learn)")
    console.print(table)
    console.print(f"Files are read from --data-dir or ${ENV_VAR}.")


from . import model_cmds  # noqa: E402,F401  (registers scan-model and monitor)


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
