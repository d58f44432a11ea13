"""``poisonlab``: the command-line entry point. Thin: parses, calls the library, prints, writes."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from ..exceptions import PoisonlabError
from .app import DATA_DIR_HELP, _fail, _load, _parse_params, app, console, err_console  # noqa: F401 (re-exported)

DEMO_ATTACKS = {"image": "badnets", "text": "badword", "tabular": "tabular_trigger", "audio": "audio_trigger"}


def demo_scenario(dataset: str = "digits", attack: str | None = None, poison_rate: float = 0.1,
                  target: int = 0, epochs: int = 30, seed: int = 0) -> dict:
    """The demo's scenario (with the defaults, the content of ``examples/demo.yaml``)."""
    from ..data import DATASETS

    modality = DATASETS[dataset][2] if dataset in DATASETS else "image"
    model = {"train": {"epochs": epochs, "lr": 0.003, "batch_size": 64}}
    if modality == "image":
        model["architecture"] = "cnn"
    attack = attack or DEMO_ATTACKS[modality]
    description = f"{attack} on {dataset}"
    if (dataset, attack) == ("digits", "badnets"):
        description = "BadNets on digits - a poisoned model passes an ordinary accuracy check"
    return {"name": "demo", "description": description, "dataset": dataset, "model": model,
            "attacks": [{"name": attack, "params": {"poison_rate": poison_rate, "target": target}}],
            "seeds": [seed]}


@app.command()
def demo(
    dataset: str = typer.Option("digits", help="Built-in dataset name (digits needs no files)."),
    attack: Optional[str] = typer.Option(None, help="Registered attack name (default: badnets for "
                                         "images, badword for text, tabular_trigger for tables, audio_trigger for audio)."),
    poison_rate: float = typer.Option(0.1, help="Fraction of the training set to poison."),
    target: int = typer.Option(0, help="Target class."),
    epochs: int = typer.Option(30, help="Training epochs."),
    seed: int = typer.Option(0, help="Seed for the poison and the training."),
    out: Path = typer.Option(Path("poisonlab-demo.json"), help="Where to write the run record (JSON)."),
    data_dir: Optional[Path] = typer.Option(None, help=DATA_DIR_HELP),
) -> None:
    """Poison a dataset, train a poisoned and a clean model, and compare them (the scenario
    examples/demo.yaml, run by the runner; `poisonlab run examples/demo.yaml` gives the same record)."""
    from ..reports import atomic_write_json
    from ..runs import Runner, Scenario
    from .progress import event_progress

    try:
        scenario = Scenario.model_validate(demo_scenario(dataset, attack, poison_rate, target, epochs, seed))
        atk = scenario.attacks[0].name
        console.print(f"[bold]poisonlab demo[/]: {atk} on {dataset}, target class {target}, "
                      f"{poison_rate:.0%} of the training set poisoned")
        with event_progress(console) as emit:
            record = Runner(data_dir=data_dir, subscribers=[emit]).run(scenario)
    except PoisonlabError as exc:
        _fail(exc)
    res = record["results"]
    table = Table(title=f"Poisoned vs clean model ({res['data']['test']['n']} test inputs)")
    table.add_column("model")
    table.add_column("clean accuracy", justify="right")
    table.add_column("attack success rate", justify="right")
    table.add_column("epochs", justify="right")
    for label in ("clean", "poisoned"):
        m = res["train"][label]
        table.add_row(label, f"{m['clean_accuracy']:.2%}", f"{m['attack_success_rate']:.2%}",
                      str(m["epochs_run"]))
    console.print(table)
    poisoned, clean = res["train"]["poisoned"], res["train"]["clean"]
    change = poisoned["clean_accuracy"] - clean["clean_accuracy"]
    console.print(f"The poisoned model's clean accuracy differs from the clean model's by "
                  f"{change * 100:+.2f} points, yet it obeys the trigger on "
                  f"{poisoned['attack_success_rate']:.2%} of triggered inputs "
                  f"(the clean model: {clean['attack_success_rate']:.2%}).")
    atomic_write_json(out, record)
    console.print(f"Run record written to [bold]{out}[/] ({record['timings']['total']:.1f} s).")


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
    architecture: Optional[str] = typer.Option(None, help="Architecture of --surrogate (default: its "
                                               "model card's, else the modality's reference model)."),
    target_index: Optional[int] = typer.Option(None, help="Target input for targeted attacks: this "
                                               "index of the dataset's test split (of --input with "
                                               "--input)."),
) -> None:
    """Poison a dataset file; write the poisoned data, its ground-truth mask and a sidecar
    (<stem>.poison.json: the attack and its parameters)."""
    from .. import registry
    from ..data import read_npz
    from ..runs.sidecar import check_output, write_poisoned

    if (dataset is None) == (input is None):
        _fail(ValueError("give exactly one of --dataset or --input"))
    try:
        check_output(out, source=input, force=force)
        params = _parse_params(param)
        params.setdefault("random_state", seed)
        atk = registry.create("attack", attack_name, **params)
        if input is not None:
            ds = read_npz(input)
        else:
            ds = _load(dataset, data_dir, waveforms=attack_name == "audio_trigger").train
        needs = _attack_needs(atk, ds, dataset, data_dir, surrogate, architecture, target_index)
        res = atk.poison(ds.X, ds.y, **needs)
        data_path, sidecar = write_poisoned(out, ds, res, atk, input if input is not None else dataset,
                                            force=force)
    except (PoisonlabError, OSError) as exc:
        _fail(exc)
    console.print(f"Poisoned {res.n_poison} of {len(res.y)} samples with {type(atk).__name__}; "
                  f"wrote [bold]{data_path}[/] and {sidecar}.")


@app.command()
def reproduce(
    ids: list[str] = typer.Argument(None, metavar="ID...", help="Reproduction IDs (e.g. R1 R2)."),
    seeds: int = typer.Option(3, min=1, help="Number of seeds (0 .. N-1)."),
    out_dir: Path = typer.Option(Path("poisonlab-out/reproduce"), help="Where JSON and Markdown go."),
    data_dir: Optional[Path] = typer.Option(None, help=DATA_DIR_HELP),
    cache_dir: Optional[Path] = typer.Option(
        None, help="Where trained models are kept (default: poisonlab-out/cache): R11-R13 reuse R1's, "
                   "and a stopped run keeps the models it trained."),
    list_: bool = typer.Option(False, "--list", help="List the reproductions and exit."),
    threads: Optional[int] = typer.Option(None, min=1, help="Torch threads (1 when jobs run side by side)."),
) -> None:
    """Run entries of the reproduction suite; write one JSON per ID (after every seed) and a
    Markdown table of every result in the folder."""
    from ..reports import atomic_write_bytes, atomic_write_json, atomic_write_text, reproduction_table
    from ..reports.plots import rate_sweep_png
    from ..reproductions import REPRODUCTIONS, run_reproduction
    from .progress import event_progress

    if list_ or not ids:
        table = Table(title="Reproductions")
        for col in ("ID", "title", "min/seed", "data", "target"):
            table.add_column(col)
        for rep in REPRODUCTIONS.values():
            table.add_row(rep.id, rep.title, f"{rep.minutes:.1f}", ", ".join(rep.data), rep.target)
        console.print(table)
        console.print("min/seed: expected CPU minutes per seed on one thread (R11-R13 with R1's models "
                      "already cached).")
        return
    unknown = [i for i in ids if i not in REPRODUCTIONS]
    if unknown:
        _fail(ValueError(f"unknown reproduction(s) {unknown}; available: {sorted(REPRODUCTIONS)}"))
    cache = cache_dir if cache_dir is not None else Path("poisonlab-out/cache")
    command = " ".join(["poisonlab", "reproduce", *ids, "--seeds", str(seeds)])
    records = []
    for rid in ids:
        console.print(f"[bold]{rid}[/]: {REPRODUCTIONS[rid].title} — {seeds} seed(s)")

        def save(record, rid=rid):  # after every seed: a stopped run keeps its seeds
            atomic_write_json(out_dir / f"{rid}.json", {**record, "command": command})

        try:
            with event_progress(console) as emit:
                rec = run_reproduction(rid, seeds=seeds, data_dir=data_dir, cache_dir=cache, emit=emit,
                                       on_seed=save, threads=threads)
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
    architecture: Optional[str] = typer.Option(None, help="Architecture of --model (default: its model "
                                               "card's), or of the reference model."),
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

    from ..models.training import TrainConfig
    from ..reports import atomic_write_json, atomic_write_text
    from ..runs.model_scan import load_classifier_for
    from ..runs.scan import retrain_without_quarantine, scan
    from ..runs.sidecar import attack_from_sidecar, read_poisoned
    from .progress import event_progress

    if (dataset is None) == (input is None):
        _fail(ValueError("give exactly one of --dataset or --input"))
    try:
        mask = None
        test, atk = None, None
        if input is not None:
            poisoned = read_poisoned(input)
            ds, mask = poisoned.dataset, poisoned.poison_mask
            if retrain and poisoned.sidecar is not None:
                atk, test = attack_from_sidecar(poisoned.sidecar, data_dir=data_dir, where=poisoned.sidecar_path)
        else:
            splits = _load(dataset, data_dir)
            ds, test = splits.train, splits.test
        if retrain and test is None:
            raise PoisonlabError("--retrain needs a test split: use --dataset, or an --input "
                                 "written by 'poisonlab attack --dataset ...'")
        feats = None
        if features is not None:
            feats = np.load(features, mmap_mode="r", allow_pickle=False)
        user_model = None
        if model is not None:
            user_model = load_classifier_for(model, ds, architecture=architecture)
        config = TrainConfig(epochs=epochs, seed=seed)
        names = [d.strip() for d in detectors.split(",") if d.strip()]
        with event_progress(console) as emit:
            result = scan(ds, features=feats, model=user_model, layer=layer, detectors=names,
                          contamination=contamination, architecture=architecture if model is None else None,
                          config=config, poison_mask=mask, emit=emit)
            if retrain:
                retrain_without_quarantine(ds, result, test, attack=atk, architecture=architecture,
                                           config=config, emit=emit)
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
    atomic_write_json(out_dir / "scores.json", {"dataset": ds.summary(), **result.to_dict(top)})
    console.print(f"Quarantined {int(result.quarantine.sum())} ids; wrote scores.csv, scores.json and "
                  f"quarantine.txt to [bold]{out_dir}[/]. Your data was not changed.")


def _attack_needs(atk, ds, dataset, data_dir, surrogate, architecture, target_index) -> dict:
    """The keyword extras an attack's ``needs`` names, from the command's options."""
    needs = {}
    if "model" in atk.needs:
        if surrogate is None:
            raise PoisonlabError(f"{type(atk).__name__} crafts against a surrogate model: pass "
                                 f"--surrogate weights.safetensors (and --architecture)")
        from ..runs.model_scan import load_classifier_for

        needs["model"] = load_classifier_for(surrogate, ds, architecture=architecture)
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


from . import model_cmds  # noqa: E402,F401  (registers scan-model and monitor; imports .app, not this module)
from . import list_cmds  # noqa: E402,F401  (registers list)
from . import run_cmds  # noqa: E402,F401  (registers run and train)


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
