"""``poisonlab run`` and ``poisonlab train``: parse, hand to the run layer, render, write."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

from .._files import check_input
from ..exceptions import InvalidParameterError
from .app import (
    DATA_DIR_HELP,
    FORCE_HELP,
    app,
    check_one_source,
    console,
    data_root_inputs,
    dataset_inputs,
    json_text,
    output_guard,
)


def _pct(v: Any) -> str:
    return f"{v:.2%}" if isinstance(v, (int, float)) else "-"


def render_retraining(name: str, out: dict[str, Any]) -> None:
    """One row per round: targeted error and accuracy of the honest, undefended and defended
    arms, and the group's samples admitted / held by the defence."""
    deal = out["deal"]
    table = Table(title=f"{name}: continuous retraining, {deal['honest_per_round']} honest + "
                        f"{deal['attack_per_round']} group samples per round ({len(deal['group'])} accounts)")
    for col in ("round", "target err honest", "undef.", "def.", "acc honest", "undef.", "def.",
                "group in undef.", "def.", "held"):
        table.add_column(col, justify="right")
    arms = out["arms"]

    def pct(v: float) -> str:
        return f"{v:.1%}"

    for h, u, d in zip(arms["honest"], arms["undefended"], arms["defended"]):
        table.add_row(str(h["round"]), pct(h["targeted_error"]), pct(u["targeted_error"]), pct(d["targeted_error"]),
                      pct(h["accuracy"]), pct(u["accuracy"]), pct(d["accuracy"]), str(u["attack_admitted"]),
                      str(d["attack_admitted"]), str(d.get("attack_held", 0)))
    console.print(table)
    last = arms["defended"][-1]
    console.print(f"defence: {last.get('group_rejected', 0)}/{len(deal['group'])} group accounts rejected, "
                  f"{last.get('honest_rejected', 0)} honest accounts rejected; decisions "
                  + ", ".join(f"{k} {v}" for k, v in out["decisions"]["by_kind"].items()))


def render_record(record: dict[str, Any]) -> None:
    """Print a run record's headline numbers: one table for a run, one row per cell for a grid."""
    if record["kind"] == "run" and "federate" in record["results"]:
        fed = record["results"]["federate"]
        table = Table(title=f"{record['scenario']['name']}: federated, {len(fed['clients'])} clients "
                            f"({len(fed['malicious'])} malicious)")
        for col in ("rounds", "accuracy", "backdoor accuracy", "exclusion precision", "exclusion recall"):
            table.add_column(col, justify="right")
        table.add_row(str(fed.get("rounds")), _pct(fed.get("accuracy")), _pct(fed.get("backdoor_accuracy")),
                      _pct(fed.get("detection_precision")), _pct(fed.get("detection_recall")))
        console.print(table)
        return
    if record["kind"] == "run" and "retraining" in record["results"]:
        render_retraining(record["scenario"]["name"], record["results"]["retraining"])
        return
    if record["kind"] == "grid" and any("retraining" in c["results"] for c in record["results"]["cells"]):
        table = Table(title=f"{record['scenario']['name']}: {record['n_cells']} continuous-retraining cells, "
                            f"last round ({record['n_cached']} from the cache)")
        for col in ("cell", "target err honest", "undef.", "def.", "acc honest", "undef.", "def.",
                    "group in def.", "group rejected"):
            table.add_column(col, justify="left" if col == "cell" else "right")
        for cell in record["results"]["cells"]:
            arms = cell["results"].get("retraining", {}).get("arms", {})
            last = {a: (arms.get(a) or [{}])[-1] for a in ("honest", "undefended", "defended")}
            table.add_row(cell["name"], *(_pct(last[a].get("targeted_error")) for a in last),
                          *(_pct(last[a].get("accuracy")) for a in last),
                          str(last["defended"].get("attack_admitted", "-")),
                          f"{last['defended'].get('group_rejected', '-')}/{len(cell['results'].get('retraining', {}).get('deal', {}).get('group', []))}")
        console.print(table)
        return
    if record["kind"] == "grid" and any("federate" in c["results"] for c in record["results"]["cells"]):
        table = Table(title=f"{record['scenario']['name']}: {record['n_cells']} federated cells "
                            f"({record['n_cached']} from the cache)")
        for col in ("cell", "accuracy", "backdoor accuracy", "exclusion precision", "exclusion recall"):
            table.add_column(col, justify="left" if col == "cell" else "right")
        for cell in record["results"]["cells"]:
            fed = cell["results"].get("federate", {})
            table.add_row(cell["name"], _pct(fed.get("accuracy")), _pct(fed.get("backdoor_accuracy")),
                          _pct(fed.get("detection_precision")), _pct(fed.get("detection_recall")))
        console.print(table)
        return
    if record["kind"] == "run":
        res = record["results"]
        table = Table(title=f"{record['scenario']['name']}: test set")
        for col in ("model", "clean accuracy", "attack success rate", "clean model's ASR"):
            table.add_column(col, justify="right" if col != "model" else "left")
        for label, m in res.get("train", {}).items():
            table.add_row(label, _pct(m.get("clean_accuracy")), _pct(m.get("attack_success_rate")),
                          _pct(m.get("clean_model_asr")))
        if "retrain" in res:
            m = res["retrain"]
            table.add_row(f"retrained (-{m['n_removed']})", _pct(m.get("clean_accuracy")),
                          _pct(m.get("attack_success_rate")), "")
        for name, m in res.get("defend", {}).items():
            table.add_row(f"trained with {name}", _pct(m.get("clean_accuracy")),
                          _pct(m.get("attack_success_rate")), "")
        console.print(table)
        for name, m in res.get("defend", {}).items():
            facts = []
            if "detection" in m:
                facts.append(f"isolated {m['n_flagged']}: precision {m['detection']['precision']:.2f}  "
                             f"recall {m['detection']['recall']:.2f}")
            if "epsilon" in m:
                facts.append(f"epsilon {m['epsilon']:.2f} at delta {m['delta']:g}")
            if "certificate" in m:
                c = m["certificate"]
                facts.append(f"median certified radius {c['median_radius']} ({c['threat'].replace('_', '/')}, "
                             f"{c['n_models']} models)")
            if facts:
                console.print(f"  {name}: " + "; ".join(facts))
        for name, ev in res.get("scan", {}).get("evaluation", {}).items():
            console.print(f"  {name:<24} precision {ev['precision']:.2f}  recall {ev['recall']:.2f}  "
                          f"AUROC {ev['auroc']:.3f}")
        for name, ins in res.get("inspect", {}).items():
            console.print(f"  {name}: {ins['verdict']} (flagged classes {ins['flagged']})")
        for name, mon in res.get("monitor", {}).items():
            far = f", FAR {mon['far']:.2%}" if "far" in mon else ""
            console.print(f"  {name}: FRR {mon['frr']:.2%}{far}")
        return
    table = Table(title=f"{record['scenario']['name']}: {record['n_cells']} cells "
                        f"({record['n_cached']} from the cache)")
    for col in ("cell", "clean acc", "ASR", "clean model ASR", "recall", "precision"):
        table.add_column(col, justify="left" if col == "cell" else "right")
    for cell in record["results"]["cells"]:
        r = cell["results"]
        model = r.get("train", {}).get("poisoned") or r.get("train", {}).get("model") or {}
        ev = r.get("scan", {}).get("evaluation", {})
        q = ev.get("combined (quarantine)", {})
        table.add_row(cell["name"], _pct(model.get("clean_accuracy")), _pct(model.get("attack_success_rate")),
                      _pct(model.get("clean_model_asr")), _pct(q.get("recall")), _pct(q.get("precision")))
    console.print(table)


@app.command("run")
def run(
    scenario: Path = typer.Argument(..., help="Scenario file (.yaml, .yml or .json); see examples/."),
    backend: str = typer.Option("local", help="local (this process), pool (local processes) or ray."),
    workers: Optional[int] = typer.Option(None, min=1, help="pool: slots, the calling process plus N-1 spawned workers; ray: workers (default: CPUs)."),
    out_dir: Optional[Path] = typer.Option(None, help="Where record.json and the cache go "
                                           "(default: poisonlab-out/runs/<scenario name>)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Recompute every cell (the cache is "
                                  "kept in OUT_DIR/cache and makes an interrupted grid resume)."),
    data_dir: Optional[Path] = typer.Option(None, help=DATA_DIR_HELP),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP + " Without it, an --out-dir that "
                               "already holds a record.json is refused (the cache there is reused)."),
    report: Optional[Path] = typer.Option(None, "--report", help="Also write a self-contained HTML "
                                          "report of the record (one file, no network) to this path."),
    ledger: Optional[str] = typer.Option(None, "--ledger", envvar="POISONLAB_LEDGER", help="Also record the run's manifest "
                                         "(scenario, commit, environment, seed) and its events in this "
                                         "provenance ledger (a path or a URL). Default: $POISONLAB_LEDGER when set."),
) -> None:
    """Run a scenario (one run or a grid) and write its run record."""
    from ..runs import BACKENDS, Runner, load_scenario
    from .progress import event_progress

    if backend not in BACKENDS:
        raise InvalidParameterError(f"--backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
    check_input(scenario, "SCENARIO")
    sc = load_scenario(scenario)
    out = out_dir or Path("poisonlab-out/runs") / sc.name
    guard = output_guard([scenario, sc.dataset.path, *data_root_inputs(data_dir)], force=force)
    guard.folder(out, "--out-dir", files=["record.json"])
    if report is not None:
        guard.file(report, "--report")
    cache = None if no_cache else out / "cache"
    steps = ", ".join(sc.steps_to_run())
    console.print(f"[bold]{sc.name}[/]: {steps} on {sc.dataset.name or sc.dataset.path} "
                  f"({backend} backend)")
    recorder = None
    if ledger is not None:
        from ..runs.ledger import open_run_recorder

        recorder = open_run_recorder(ledger, sc)
    with event_progress(console) as emit:
        record = Runner(backend=backend, workers=workers, cache_dir=cache, data_dir=data_dir,
                        subscribers=[emit] + ([recorder] if recorder else [])).run(sc)
    path = guard.write_text(out / "record.json", json_text(record))
    if recorder is not None:
        from ..runs.ledger import close_run_recorder

        close_run_recorder(recorder, record, path)
        console.print(f"ledger: run [bold]{recorder.run_id}[/] recorded in {recorder.ledger.url}")
    if report is not None:
        from ..reports.html import build_html

        guard.write_text(report, build_html(record, source=str(path)))
    render_record(record)
    console.print(f"record: [bold]{path}[/] (fingerprint {record['fingerprint'][:16]}, "
                  f"{record['timings']['total']:.1f} s)")
    if report is not None:
        console.print(f"report: [bold]{report}[/]")


@app.command("train")
def train(
    out: Path = typer.Option(..., "--out", "-o", help="Weights to write (.safetensors); the model "
                             "card goes beside it."),
    dataset: Optional[str] = typer.Option(None, help="Built-in dataset (trains on its training split)."),
    input: Optional[Path] = typer.Option(None, "--input", "-i", help="A .npz to train on (e.g. "
                                         "written by 'poisonlab attack'; its sidecar gives the test "
                                         "split and the trigger for ASR)."),
    architecture: Optional[str] = typer.Option(None, help="Architecture (default: the modality's "
                                               "reference model; see 'poisonlab list architecture')."),
    epochs: int = typer.Option(10, min=1, help="Training epochs."),
    lr: float = typer.Option(1e-3, min=0.0, help="Learning rate (Adam)."),
    batch_size: int = typer.Option(128, min=1, help="Batch size."),
    seed: int = typer.Option(0, min=0, help="Seed of the initialisation and the shuffling."),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
    data_dir: Optional[Path] = typer.Option(None, help=DATA_DIR_HELP),
) -> None:
    """Train a reference model; write its weights (safetensors) and model card."""
    from .. import registry
    from ..models.architectures import ModelSpec
    from ..models.io import card_path, save_model
    from ..models.training import TrainConfig
    from ..runs.sidecar import attack_from_sidecar, read_poisoned, sidecar_path
    from ..runs.train import train_reference
    from .progress import event_progress

    check_one_source(dataset, input)
    if input is not None:
        check_input(input, "--input")
    if out.suffix != ".safetensors":
        raise InvalidParameterError(f"--out must end in .safetensors; got {out.name}")
    card = card_path(out)
    guard = output_guard([input, input and sidecar_path(input), input and input.with_suffix(".json"),
                          *dataset_inputs(dataset, data_dir)], force=force)
    guard.file(out, "--out")
    guard.file(card, "the model card of --out")
    if architecture is not None:
        registry.get("architecture", architecture)
    config = TrainConfig(epochs=epochs, lr=lr, batch_size=batch_size, seed=seed).validate()
    attack, mask, test = None, None, None
    if input is not None:
        pd = read_poisoned(input)
        ds, mask = pd.dataset, pd.poison_mask
        if pd.sidecar is not None:
            attack, test = attack_from_sidecar(pd.sidecar, data_dir=data_dir, where=pd.sidecar_path)
        source = str(input)
    else:
        from ..runs.steps import load_splits

        splits = load_splits({"name": dataset}, data_dir=data_dir)
        ds, test, source = splits.train, splits.test, dataset
    if test is not None and test.X.shape[1:] != ds.X.shape[1:]:
        test = None  # e.g. a waveform file against a feature test split: no metric rather than a wrong one
    with event_progress(console) as emit:
        result = train_reference(ds, test, architecture=architecture, config=config, attack=attack,
                                 poison_mask=mask, emit=emit)
    vocab = getattr(result.classifier, "vocabulary_", None)
    if vocab is not None:  # text: the model reads token ids; the card carries the vocabulary
        spec = ModelSpec(tuple(vocab.transform(ds.X[:1]).shape[1:]), ds.n_classes, vocab.vocab_size)
    else:
        spec = ModelSpec(tuple(ds.X.shape[1:]), ds.n_classes)
    with guard.writing(out, card):
        save_model(result.classifier.module_, out, architecture=result.architecture, spec=spec,
                   config=config.to_dict(), data_sha256=result.data_sha256, n_samples=result.n_samples,
                   metrics=result.metrics, modality=ds.modality, class_names=list(ds.classes),
                   vocabulary=vocab, extra={"source": source})
    metrics = result.metrics
    line = f"clean accuracy {metrics['clean_accuracy']:.2%}" if "clean_accuracy" in metrics else \
        "no test split to measure on"
    if "attack_success_rate" in metrics:
        line += f", attack success rate {metrics['attack_success_rate']:.2%}"
    console.print(f"Trained {result.architecture} on {result.n_samples} samples ({line}); wrote "
                  f"[bold]{out}[/] and {card.name}.")
