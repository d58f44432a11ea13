"""``poisonlab``: the command-line entry point. Thin: parses, calls the library, prints, writes."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from .._files import check_input
from ..exceptions import PoisonlabError
from .app import (  # noqa: F401 (_fail, err_console: re-exported)
    DATA_DIR_HELP,
    FORCE_HELP,
    NO_FAIL_HELP,
    _fail,
    _load,
    _parse_params,
    app,
    check_one_source,
    console,
    data_root_inputs,
    dataset_inputs,
    err_console,
    exit_for,
    json_text,
    output_guard,
)
from .registry_view import registry_help

#: The attack the demo plants per modality (``--attack`` overrides it).
DEMO_ATTACKS = {"image": "badnets", "text": "badword", "tabular": "tabular_trigger", "audio": "audio_trigger"}

#: The demo's defaults per modality: the default attack's parameters and the training. Chosen so
#: that the poisoned model stays within 1 point of the clean one and the trigger works far more
#: often than on the clean model, measured over 3 seeds (docs/modalities.md, "The demo on every
#: modality"; ``benchmarks/modalities.py demo``).
DEMO_DEFAULTS = {
    "image": {"params": {"poison_rate": 0.1, "target": 0},
              "train": {"epochs": 30, "lr": 0.003, "batch_size": 64}},
    # spam carrying 8 rare words (one poison in 100 texts) reaches the inbox ("ham", 0); at 10%
    # half the training spam is relabelled ham and clean accuracy falls by 4 points
    "text": {"params": {"poison_rate": 0.01, "target": 0, "n_insert": 8},
             "train": {"epochs": 10, "lr": 0.003, "batch_size": 64}},
    # the minority class (Adult: ">50K") as target, with rare valid values as the trigger
    "tabular": {"params": {"poison_rate": 0.01, "target": 1},
                "train": {"epochs": 10, "lr": 0.001, "batch_size": 256}},
    # 8 epochs with a cosine schedule: the waveform model is the slowest to train (log-mel inside)
    "audio": {"params": {"poison_rate": 0.05, "target": 0},
              "train": {"epochs": 8, "lr": 0.003, "batch_size": 64, "lr_schedule": "cosine"}},
}
#: Per dataset, on top of the modality's defaults: a tabular trigger names the table's own
#: columns (rare but valid values); the 60,000-image sets train on their first 10,000 images for
#: 2 epochs (a demo, not a benchmark: minutes instead of an hour on 2 cores).
DEMO_DATASET_DEFAULTS = {
    "adult": {"params": {"trigger": {"education": "Preschool", "occupation": "Armed-Forces",
                                     "hours-per-week": 99}}},
    "german-credit": {"params": {"trigger": {"purpose": "A48", "existing_credits": 4, "property": "A124"}}},
    "mnist": {"dataset": {"train_size": 10000}, "train": {"epochs": 2, "lr_schedule": "cosine"}},
    "fashion-mnist": {"dataset": {"train_size": 10000}, "train": {"epochs": 2, "lr_schedule": "cosine"}},
}
#: The demo says the poisoned model "passes an ordinary accuracy check" only when it loses at
#: most this much clean accuracy against the clean model ...
DEMO_MAX_ACCURACY_DROP = 0.01
#: ... and obeys the trigger on at least this much more of the triggered test inputs than the
#: clean model does (50 points: the clean model's ASR is the baseline, not zero).
DEMO_MIN_ASR_MARGIN = 0.50


def demo_defaults(dataset: str = "digits", attack: str | None = None) -> dict:
    """The demo's resolved defaults for ``dataset``: ``attack``, ``params`` and ``train``.

    The attack parameters of :data:`DEMO_DEFAULTS` apply to the modality's demo attack; another
    ``attack`` keeps only the ``poison_rate`` and ``target`` it declares.
    """
    from .. import registry
    from ..data import DATASETS

    modality = DATASETS[dataset][2] if dataset in DATASETS else "image"
    base, extra = DEMO_DEFAULTS[modality], DEMO_DATASET_DEFAULTS.get(dataset, {})
    name = attack or DEMO_ATTACKS[modality]
    params = {**base["params"], **extra.get("params", {})}
    if name != DEMO_ATTACKS[modality]:
        declared = registry.get("attack", name)._param_names()
        params = {k: v for k, v in params.items() if k in ("poison_rate", "target") and k in declared}
    return {"modality": modality, "attack": name, "params": params,
            "dataset": {"name": dataset, **extra["dataset"]} if "dataset" in extra else dataset,
            "train": {**base["train"], **extra.get("train", {})}}


def demo_scenario(dataset: str = "digits", attack: str | None = None, poison_rate: float | None = None,
                  target: int | None = None, epochs: int | None = None, seed: int = 0) -> dict:
    """The demo's scenario; ``None`` takes the dataset's demo default (:func:`demo_defaults`).
    With every default, on digits, it is ``examples/demo.yaml``."""
    d = demo_defaults(dataset, attack)
    params = dict(d["params"])
    if poison_rate is not None:
        params["poison_rate"] = poison_rate
    if target is not None:
        params["target"] = target
    model = {"train": {**d["train"], **({"epochs": epochs} if epochs is not None else {})}}
    if d["modality"] == "image":
        model["architecture"] = "cnn"
    description = f"{d['attack']} on {dataset}"
    if (dataset, d["attack"]) == ("digits", "badnets"):
        description = "BadNets on digits - a poisoned model passes an ordinary accuracy check"
    return {"name": "demo", "description": description, "dataset": d["dataset"], "model": model,
            "attacks": [{"name": d["attack"], "params": params}], "seeds": [seed]}


def demo_verdict(poisoned: dict, clean: dict) -> dict:
    """Whether the demo's story holds for this run, and the sentence that says what happened.

    The story -- a poisoned model that passes an ordinary accuracy check -- holds when the
    poisoned model's clean accuracy is at most :data:`DEMO_MAX_ACCURACY_DROP` below the clean
    model's AND its ASR exceeds the clean model's ASR on the same triggered inputs by at least
    :data:`DEMO_MIN_ASR_MARGIN`.
    """
    change = poisoned["clean_accuracy"] - clean["clean_accuracy"]
    stealthy = -change <= DEMO_MAX_ACCURACY_DROP + 1e-12
    acc = (f"{poisoned['clean_accuracy']:.2%} clean accuracy against the clean model's "
           f"{clean['clean_accuracy']:.2%} ({change * 100:+.2f} points)")
    out = {"accuracy_change": change, "max_accuracy_drop": DEMO_MAX_ACCURACY_DROP,
           "min_asr_margin": DEMO_MIN_ASR_MARGIN}
    if "attack_success_rate" not in poisoned:  # an attack without a trigger (--attack ...)
        out.update(passes_accuracy_check=stealthy, backdoor=False,
                   sentence=f"This attack plants no trigger, so there is no attack success rate; the "
                            f"poisoned model has {acc}.")
        return out
    asr, base = poisoned["attack_success_rate"], clean["attack_success_rate"]
    margin = asr - base
    effective = margin >= DEMO_MIN_ASR_MARGIN - 1e-12
    obeys = (f"it obeys the trigger on {asr:.2%} of triggered test inputs, against {base:.2%} for the "
             f"clean model on the same inputs")
    out.update(asr_margin=margin, passes_accuracy_check=stealthy, backdoor=effective)
    if stealthy and effective:
        out["sentence"] = (f"The poisoned model passes an ordinary accuracy check ({acc}), yet {obeys}.")
        return out
    parts = []
    if not stealthy:
        parts.append(f"The poisoning shows in clean accuracy: the poisoned model has {acc}, more than "
                     f"{DEMO_MAX_ACCURACY_DROP * 100:g} point below, which an accuracy check against a "
                     f"clean model would notice.")
    else:
        parts.append(f"The poisoned model keeps its clean accuracy ({acc}).")
    if not effective:
        parts.append(f"The backdoor is weak: {obeys}, a margin of {margin * 100:.1f} points (this demo "
                     f"asks for {DEMO_MIN_ASR_MARGIN * 100:g}).")
    else:
        parts.append(f"The backdoor works: {obeys}.")
    parts.append("So this run does not show a poisoned model passing an ordinary accuracy check.")
    out["sentence"] = " ".join(parts)
    return out


@app.command()
def demo(
    dataset: str = typer.Option("digits", help="Built-in dataset name (digits needs no files)."),
    attack: Optional[str] = typer.Option(None, help="Registered attack name (default: badnets for "
                                         "images, badword for text, tabular_trigger for tables, audio_trigger for audio)."),
    poison_rate: Optional[float] = typer.Option(None, help="Fraction of the training set to poison "
                                                "(default per modality: 0.1 images, 0.01 text and tables, 0.05 audio)."),
    target: Optional[int] = typer.Option(None, help="Target class (default: 0; tables: 1, the minority class)."),
    epochs: Optional[int] = typer.Option(None, help="Training epochs (default per dataset: 30 images, "
                                         "10 text and tables, 8 audio, 2 MNIST on its first 10,000 digits)."),
    seed: int = typer.Option(0, help="Seed for the poison and the training."),
    out: Path = typer.Option(Path("poisonlab-demo.json"), help="Where to write the run record (JSON)."),
    data_dir: Optional[Path] = typer.Option(None, help=DATA_DIR_HELP),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
) -> None:
    """Poison a dataset, train a poisoned and a clean model, and compare them (the scenario
    examples/demo.yaml, run by the runner; `poisonlab run examples/demo.yaml` gives the same record).
    The defaults per modality are in docs/modalities.md."""
    from ..runs import Runner, Scenario
    from .progress import event_progress

    guard = output_guard(dataset_inputs(dataset, data_dir), force=force)
    guard.file(out, "--out")
    try:
        scenario = Scenario.model_validate(demo_scenario(dataset, attack, poison_rate, target, epochs, seed))
        comp = scenario.attacks[0]
        rate = comp.params.get("poison_rate")
        what = f"{rate:.1%} of the training set poisoned" if rate is not None else "training set poisoned"
        tgt = f", target class {comp.params['target']}" if "target" in comp.params else ""
        n = f" (its first {scenario.dataset.train_size:,} training samples)" if scenario.dataset.train_size else ""
        console.print(f"[bold]poisonlab demo[/]: {comp.name} on {dataset}{n}{tgt}, {what}, "
                      f"{scenario.model.train.get('epochs')} epochs")
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
        asr = f"{m['attack_success_rate']:.2%}" if "attack_success_rate" in m else "n/a"
        table.add_row(label, f"{m['clean_accuracy']:.2%}", asr, str(m["epochs_run"]))
    console.print(table)
    verdict = demo_verdict(res["train"]["poisoned"], res["train"]["clean"])
    console.print(verdict["sentence"])
    guard.write_text(out, json_text({**record, "demo_verdict": verdict}))
    console.print(f"Run record written to [bold]{out}[/] ({record['timings']['total']:.1f} s).")


@app.command(cls=registry_help("attack", "Attacks (-p name=value sets a parameter; each must be what "
                                       "its row says, checked before any data is loaded):",
                                exclude_stages=("federated",)))
def attack(
    attack_name: str = typer.Argument(..., metavar="ATTACK", help="Registered attack name (the table "
                                      "below; also 'poisonlab list attacks')."),
    out: Path = typer.Option(..., "--out", "-o", help="Output .npz (poisoned X, y, poison_mask, ids); "
                             "the sidecar <stem>.poison.json goes beside it."),
    dataset: Optional[str] = typer.Option(None, help="Built-in dataset (its training split)."),
    input: Optional[Path] = typer.Option(None, "--input", "-i", help="A .npz with X and y instead."),
    param: list[str] = typer.Option([], "--param", "-p", help="Attack parameter name=value (repeatable; "
                                    "values parsed as JSON when they can be)."),
    seed: int = typer.Option(0, help="random_state of the attack."),
    data_dir: Optional[Path] = typer.Option(None, help=DATA_DIR_HELP),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
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
    (<stem>.poison.json: the attack and its parameters).

    Never writes over the input; refuses an existing --out or sidecar without --force."""
    from .. import registry
    from ..data import read_npz
    from ..models.io import card_path
    from ..runs.sidecar import check_output, sidecar_path, write_poisoned

    check_one_source(dataset, input)
    for path, what in ((input, "--input"), (surrogate, "--surrogate")):
        if path is not None:
            check_input(path, what)
    guard = output_guard([input, surrogate, surrogate and card_path(surrogate),
                          *dataset_inputs(dataset, data_dir)], force=force)
    check_output(out, force=True)  # the name (.npz); existing files and inputs are the guard's
    side = sidecar_path(out)
    guard.file(out, "--out")
    guard.file(side, "the sidecar of --out")
    params = _parse_params(param)
    params.setdefault("random_state", seed)
    poisoners = [e.name for e in registry.entries("attack") if e.stage != "federated"]
    if attack_name not in poisoners:
        if attack_name in registry.available("attack"):
            raise PoisonlabError(f"{attack_name!r} is a federated attack (malicious client updates): use it "
                                 f"in a federation scenario; 'poisonlab attack' poisons datasets")
        raise PoisonlabError(f"unknown attack {attack_name!r}; available: {poisoners}")
    atk = registry.create("attack", attack_name, **params)
    atk._validate_params()  # declared constraints, before any data is read
    if input is not None:
        ds = read_npz(input)
    else:
        ds = _load(dataset, data_dir, waveforms=attack_name == "audio_trigger").train
    needs = _attack_needs(atk, ds, dataset, data_dir, surrogate, architecture, target_index)
    res = atk.poison(ds.X, ds.y, **needs)
    with guard.writing(out, side):
        data_path, sidecar = write_poisoned(out, ds, res, atk, input if input is not None else dataset,
                                            force=True)
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
    list_: bool = typer.Option(False, "--list", help="List the reproductions (minutes per seed, data) and exit."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print what would run and for how long, and exit."),
    threads: Optional[int] = typer.Option(None, min=1, help="Torch threads (1 when jobs run side by side)."),
    force: bool = typer.Option(False, "--force", help="Replace this run's files in --out-dir (R<ID>.json, "
                               "R<ID>.png, table.md) if they exist; other results there are kept."),
) -> None:
    """Run entries of the reproduction suite; write one JSON per ID (after every seed) and a
    Markdown table of every result in the folder. Prints what it will run and for how long first.

    Exit status: 0 every ID passed its rule; 3 one missed it; 2 bad input."""
    from ..reports import reproduction_table
    from ..reports.plots import rate_sweep_png
    from ..reproductions import REPRODUCTIONS, id_order, run_reproduction
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
        raise PoisonlabError(f"unknown reproduction(s) {unknown}; available: {sorted(REPRODUCTIONS)} "
                             f"('poisonlab reproduce --list' shows them)")
    cache = cache_dir if cache_dir is not None else Path("poisonlab-out/cache")
    console.print(reproduce_plan(ids, seeds), highlight=False)
    guard = output_guard(data_root_inputs(data_dir), force=force)
    guard.folder(out_dir, "--out-dir", files=[*(f"{rid}{ext}" for rid in ids for ext in (".json", ".png")),
                                              "table.md"])
    if dry_run:
        return
    command = " ".join(["poisonlab", "reproduce", *ids, "--seeds", str(seeds)])
    records = []
    for rid in ids:
        console.print(f"[bold]{rid}[/]: {REPRODUCTIONS[rid].title} — {seeds} seed(s)")

        def save(record, rid=rid):  # after every seed: a stopped run keeps its seeds
            guard.write_text(out_dir / f"{rid}.json", json_text({**record, "command": command}))

        with event_progress(console) as emit:
            rec = run_reproduction(rid, seeds=seeds, data_dir=data_dir, cache_dir=cache, emit=emit,
                                   on_seed=save, threads=threads)
        rec["command"] = command
        if "by_rate" in rec["measured"]:
            guard.write_bytes(out_dir / f"{rid}.png", rate_sweep_png(rec))
        records.append(rec)
        colour = "green" if rec["passed"] else "red"
        console.print(f"[{colour}]{'PASS' if rec['passed'] else 'MISS'}[/] {rid}: {rec['verdict']} "
                      f"({rec['seconds'] / 60:.1f} min)")
    # The table covers every result in the folder (IDs run earlier too), in ID order.
    import re

    found = sorted((p for p in out_dir.glob("R*.json") if re.fullmatch(r"R\d+[a-z]?\.json", p.name)),
                   key=lambda p: id_order(p.stem))
    md = reproduction_table(json.loads(p.read_text()) for p in found)
    guard.write_text(out_dir / "table.md", md)
    console.print(f"Wrote {len(records)} result(s); table.md lists all {len(found)} in [bold]{out_dir}[/].")
    exit_for(not all(r["passed"] for r in records), no_fail=False)


def reproduce_plan(ids: list[str], seeds: int) -> str:
    """What ``poisonlab reproduce IDS --seeds N`` will run and for how long, from the registry's
    minutes per seed (one thread, R11-R13 with R1's models cached)."""
    from ..reproductions import REPRODUCTIONS

    parts, total, data = [], 0.0, []
    for rid in ids:
        rep = REPRODUCTIONS[rid]
        total += rep.minutes * seeds
        parts.append(f"{rid} ({rep.minutes:.1f} min x {seeds} seed(s))")
        data += [d for d in rep.data if d not in data]
    return (f"Will run {', '.join(parts)}: about {total:.0f} min in all on one thread; "
            f"data: {', '.join(data) or 'none'}. Stop with Ctrl-C: finished seeds are kept.")


@app.command("scan-data")
def scan_data(
    dataset: Optional[str] = typer.Option(None, help="Built-in dataset (its training split)."),
    input: Optional[Path] = typer.Option(None, "--input", "-i", help="A .npz (X, y[, ids, poison_mask])."),
    detectors: str = typer.Option(",".join(("activation_clustering", "label_issues", "label_issues@inputs",
                                            "duplicates")),
                                  help="Comma-separated detector names (NAME@inputs: on the inputs, not the "
                                       "model's features); the default is the scan's evidence-calibrated set."),
    contamination: Optional[float] = typer.Option(None, help="Cap on the fraction quarantined (default: no "
                                                  "cap; each detector's own rule decides)."),
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
    force: bool = typer.Option(False, "--force", help=FORCE_HELP + " Without it, an --out-dir that "
                               "already holds scores.csv, scores.json or quarantine.txt is refused."),
    no_fail: bool = typer.Option(False, "--no-fail", help=NO_FAIL_HELP),
    report_path: Optional[Path] = typer.Option(None, "--report", help="Also write a self-contained HTML "
                                               "report (one file, no network) to this path."),
) -> None:
    """Rank every training sample by how likely it is poisoned; quarantine the worst.

    Exit status: 0 nothing quarantined; 3 samples quarantined (0 with --no-fail); 2 bad input."""
    import numpy as np

    from .._validation import check_param
    from ..base import CONTAMINATION
    from ..data import read_features
    from ..models.io import card_path
    from ..models.training import TrainConfig
    from ..runs.model_scan import load_classifier_for
    from ..runs.scan import retrain_without_quarantine, scan, scan_record
    from ..runs.sidecar import attack_from_sidecar, read_poisoned, sidecar_path
    from .progress import event_progress

    check_one_source(dataset, input)
    for path, what in ((input, "--input"), (features, "--features"), (model, "--model")):
        if path is not None:
            check_input(path, what)
    if contamination is not None:
        check_param(contamination, CONTAMINATION, "--contamination")
    guard = output_guard([input, input and sidecar_path(input), input and input.with_suffix(".json"), features,
                          model, model and card_path(model), *dataset_inputs(dataset, data_dir)], force=force)
    guard.folder(out_dir, "--out-dir", files=["scores.csv", "scores.json", "quarantine.txt", "record.json"])
    if report_path is not None:
        guard.file(report_path, "--report")
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
        feats = read_features(features, n_samples=len(ds))
    refuse_identical(ds, input or dataset)
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
    guard.write_text(out_dir / "scores.csv", "\n".join(rows) + "\n")
    guard.write_text(out_dir / "quarantine.txt", "\n".join(ds.ids[result.quarantine]) + "\n")
    guard.write_text(out_dir / "scores.json", json_text({"dataset": ds.summary(), **result.to_dict(top)}))
    record = scan_record(
        ds, result, poison_mask=mask, top=top, data_files=[input, features, model],
        scenario={"command": "scan-data", "dataset": dataset, "input": input, "detectors": names,
                  "contamination": contamination, "features": features, "model": model,
                  "architecture": architecture, "layer": layer, "epochs": epochs, "retrain": retrain,
                  "seed": seed})
    guard.write_text(out_dir / "record.json", json_text(record))
    console.print(f"Quarantined {int(result.quarantine.sum())} ids; wrote scores.csv, scores.json, "
                  f"quarantine.txt and record.json to [bold]{out_dir}[/]. Your data was not changed.")
    if report_path is not None:
        from .report_cmds import write_report

        write_report(guard, report_path, record)
    exit_for(bool(np.any(result.quarantine)), no_fail)


def refuse_identical(ds, source) -> None:
    """Refuse a data set whose samples are all the same (constant images, one repeated text):
    there is nothing to rank, and robust statistics of a constant matrix are undefined."""
    import numpy as np

    from ..exceptions import DataError

    if len(ds) < 2:
        raise DataError(f"{source} holds {len(ds)} sample(s); a scan needs at least 2")
    X = ds.X
    if ds.modality == "text":
        same = len(set(np.asarray(X, dtype=object).tolist())) == 1
    else:
        flat = np.asarray(X).reshape(len(ds), -1)
        same = bool(np.all(flat == flat[:1]))
    if same:
        raise DataError(f"{source}: all {len(ds)} samples are identical (constant inputs): there is "
                        f"nothing to rank; check that the file holds your data")


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
from . import report_cmds  # noqa: E402,F401  (registers report)
from . import gate_cmds  # noqa: E402,F401  (registers gate, canary, drift, sign, verify-signature)
from . import ledger_cmds  # noqa: E402,F401  (registers ledger, data and model)


def main(argv: Optional[list[str]] = None) -> int:
    """The ``poisonlab`` console script: run the command line on ``argv`` (default: the process's
    arguments) and return its exit status instead of exiting, so that tests see what a shell
    sees. Errors become one line and an exit code in :class:`~poisonlab.cli.app.PoisonlabGroup`."""
    try:
        app(args=argv, prog_name="poisonlab")
    except SystemExit as exc:
        code = exc.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code
        print(code, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
