"""``poisonlab gate``, ``canary build|run``, ``drift``, ``sign`` and ``verify-signature``: decide
whether a model may ship, watch it across versions, and sign what ships."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from .._files import check_input
from ..exceptions import PoisonlabError
from .app import (
    DATA_DIR_HELP,
    EXIT_FLAGGED,
    FORCE_HELP,
    NO_FAIL_HELP,
    _load,
    app,
    console,
    dataset_inputs,
    err_console,
    exit_for,
    json_text,
    output_guard,
)

#: Exit status of ``poisonlab gate`` when a check fails (and of ``verify-signature`` on a mismatch).
EXIT_GATE_FAILED = 1


canary_app = typer.Typer(no_args_is_help=True, help="Build a canary suite from trusted data; run it against a model.")
app.add_typer(canary_app, name="canary")

MODALITY_HELP = "Modality of a --data file (image, text, tabular, audio)."


def _trusted(dataset: Optional[str], data: Optional[Path], data_dir: Optional[Path], modality: str,
             *, required: bool = True):
    """The trusted labelled data: a built-in dataset's test split, or a .npz (X, y[, ids, classes])."""
    from ..data import read_npz

    if dataset is not None and data is not None:
        raise PoisonlabError("give one of --dataset NAME or --data FILE.npz, not both")
    if dataset is not None:
        return _load(dataset, data_dir).test
    if data is not None:
        check_input(data, "--data")
        return read_npz(data, modality=modality)
    if required:
        raise PoisonlabError("give the trusted labelled data: --dataset NAME (its test split) or --data FILE.npz")
    return None


def _npz(path: Optional[Path], what: str, modality: str, classes):
    from ..data import read_npz

    if path is None:
        return None
    check_input(path, what)
    return read_npz(path, modality=modality, classes=classes)


@app.command("gate")
def gate(
    model: Path = typer.Argument(..., help="The model to release: .safetensors with its model card."),
    policy: Path = typer.Option(..., "--policy", help="The gate policy (YAML or JSON): checks and thresholds."),
    dataset: Optional[str] = typer.Option(None, help="Built-in dataset whose test split is the trusted data."),
    data: Optional[Path] = typer.Option(None, "--data", help="Trusted labelled held-out data (.npz: X, y[, ids, "
                                        "classes]) instead of --dataset."),
    modality: str = typer.Option("image", help=MODALITY_HELP),
    baseline: Optional[Path] = typer.Option(None, help="The last released model (.safetensors + card): the "
                                            "drift check compares with it."),
    source_val: Optional[Path] = typer.Option(None, "--source-val", help="A validation set derived from the "
                                              "training source (.npz): the validation_gap check."),
    train: Optional[Path] = typer.Option(None, "--train", help="The training data or snapshot (.npz): the "
                                         "data_scan check."),
    canaries: Optional[Path] = typer.Option(None, help="A canary suite folder ('poisonlab canary build'); "
                                            "default: built from the trusted data with the policy's settings."),
    junit: Optional[Path] = typer.Option(None, "--junit", help="Write JUnit XML here (one testcase per check)."),
    report_path: Optional[Path] = typer.Option(None, "--report", help="Write a self-contained HTML report here."),
    record_path: Optional[Path] = typer.Option(None, "--record", help="Write the run record (JSON) here."),
    sign_key: Optional[Path] = typer.Option(None, "--sign", help="Elliptic-curve private key (PEM): sign the "
                                            "model when the gate passes (needs --signature)."),
    signature: Optional[Path] = typer.Option(None, "--signature", help="Where the signature goes (with --sign)."),
    ledger: Optional[str] = typer.Option(None, "--ledger", envvar="POISONLAB_LEDGER", help="A provenance ledger (path or URL): without "
                                         "--baseline, drift compares with the version in production there; "
                                         "the model is registered and the verdict recorded (a passed model "
                                         "can then be promoted, and is a rollback target). Default: $POISONLAB_LEDGER when set."),
    data_dir: Optional[Path] = typer.Option(None, help=DATA_DIR_HELP),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
) -> None:
    """Run a release policy's checks on a model; block the release when one fails.

    Checks (named in the policy): file_safety, canaries, strip, neural_cleanse, drift (needs
    --baseline), validation_gap (needs --source-val), data_scan (needs --train). A check whose
    input is not given is skipped unless the policy sets its 'require: true'.

    Exit status: 0 every check passed (skipped checks do not block); 1 a check failed or errored
    (the release is blocked: stdout ends with 'gate: FAIL', and --junit/--report/--record are
    written); 2 bad input, a bad policy or a model without a model card (one line 'error: ...',
    nothing written). An unexpected crash outside the checks also exits 1, but prints 'error:
    unexpected ...' on stderr and writes no JUnit file: a CI job tells the two apart by the file.
    """
    from ..models.io import card_path
    from ..monitoring.canaries import load_canary_suite
    from ..runs.gate import gate_record, junit_xml, load_policy, run_gate
    from .progress import event_progress

    pol = load_policy(policy)  # a bad policy is one line, before anything else
    check_input(model, "MODEL")
    if (sign_key is None) != (signature is None):
        raise PoisonlabError("--sign KEY and --signature OUT go together")
    inputs = [model, card_path(model), policy, data, baseline, baseline and card_path(baseline), source_val, train,
              sign_key, *dataset_inputs(dataset, data_dir)]
    guard = output_guard(inputs, force=force)
    for path, what in ((junit, "--junit"), (report_path, "--report"), (record_path, "--record"),
                       (signature, "--signature")):
        if path is not None:
            guard.file(path, what)
    if sign_key is not None:
        from ..runs.signing import check_private_key

        check_input(sign_key, "--sign")
        check_private_key(sign_key)  # a bad key fails now, before any check runs or anything is written
    if baseline is None and ledger is not None:
        from ..runs.ledger import released_baseline

        baseline = released_baseline(ledger)
        if baseline is not None:
            console.print(f"drift baseline: the released model [bold]{baseline}[/] (ledger)")
    if baseline is not None:
        check_input(baseline, "--baseline")
    needs_data = [c for c in pol.enabled() if c != "file_safety"]
    trusted = _trusted(dataset, data, data_dir, modality, required=bool(needs_data))
    classes = tuple(trusted.classes) if trusted is not None else None
    source = _npz(source_val, "--source-val", trusted.modality if trusted else modality, classes)
    train_ds = _npz(train, "--train", trusted.modality if trusted else modality, classes)
    suite = None
    if canaries is not None:
        check_input(canaries, "--canaries", folder=True)
        suite = load_canary_suite(canaries)
    with event_progress(console) as emit:
        result = run_gate(model, pol, trusted=trusted, baseline=baseline, source_val=source, train=train_ds,
                          suite=suite, emit=emit)
    table = Table(title=f"Release gate: {pol.name}")
    for col in ("check", "result", "what was measured"):
        table.add_column(col)
    colours = {"passed": "green", "failed": "red", "error": "red", "skipped": "yellow", "warned": "yellow"}
    for c in result.checks:
        table.add_row(c.name, f"[{colours[c.status]}]{c.status}[/]", c.message)
    console.print(table)
    scenario = {"command": "gate", "model": model, "policy": pol.model_dump(), "policy_file": policy,
                "dataset": dataset, "data": data, "baseline": baseline, "source_val": source_val, "train": train,
                "canaries": canaries}
    if junit is not None:
        guard.write_text(junit, junit_xml(result))
        console.print(f"JUnit XML: [bold]{junit}[/]")
    if report_path is not None or record_path is not None:
        rec = gate_record(result, scenario=scenario, data_files=[model, data, baseline, source_val, train])
        if record_path is not None:
            guard.write_text(record_path, json_text(rec))
            console.print(f"record: [bold]{record_path}[/]")
        if report_path is not None:
            from .report_cmds import write_report

            write_report(guard, report_path, rec)
    if ledger is not None:
        from ..runs.ledger import record_gate_result

        model_id = record_gate_result(ledger, model, result)
        console.print(f"ledger: gate verdict recorded for model {model_id}")
    colour = "green" if result.passed else "red"
    console.print(f"[{colour}]gate: {result.verdict()}[/]", highlight=False)
    if not result.passed:
        raise typer.Exit(code=EXIT_GATE_FAILED)
    if sign_key is not None:
        from ..runs.signing import sign_model

        guard.write_bytes(signature, sign_model(model, sign_key))
        console.print(f"signed {model.name}: [bold]{signature}[/]")


@canary_app.command("build")
def canary_build(
    out: Path = typer.Option(..., "--out", help="Folder for the suite (canaries.json + canaries.npz)."),
    dataset: Optional[str] = typer.Option(None, help="Built-in dataset: canaries come from its test split."),
    data: Optional[Path] = typer.Option(None, "--data", help="Trusted labelled data (.npz) instead."),
    modality: str = typer.Option("image", help=MODALITY_HELP),
    n_per_class: int = typer.Option(20, min=1, help="Canaries per class."),
    families: Optional[str] = typer.Option(None, help="Comma-separated trigger families (default: every "
                                           "registered one for the modality)."),
    fire_rate: float = typer.Option(0.5, help="A probe fires when this fraction of triggered canaries of "
                                    "other classes go to one class."),
    min_accuracy: float = typer.Option(0.9, help="Minimum accuracy on the canaries."),
    seed: int = typer.Option(0, help="Draws the canaries and any random part of the triggers."),
    data_dir: Optional[Path] = typer.Option(None, help=DATA_DIR_HELP),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
) -> None:
    """Draw canaries from trusted data and build a backdoor probe per trigger family."""
    from ..monitoring.canaries import SUITE_JSON, SUITE_NPZ, build_canary_suite, save_canary_suite

    guard = output_guard([data, *dataset_inputs(dataset, data_dir)], force=force)
    guard.folder(out, "--out", files=[SUITE_JSON, SUITE_NPZ])
    trusted = _trusted(dataset, data, data_dir, modality)
    names = [f.strip() for f in families.split(",") if f.strip()] if families else None
    suite = build_canary_suite(trusted, n_per_class=n_per_class, seed=seed, families=names,
                               fire_rate=fire_rate, min_accuracy=min_accuracy)
    with guard.writing(out / SUITE_JSON, out / SUITE_NPZ):
        save_canary_suite(out, suite)
    skipped = "; skipped: " + ", ".join(f"{k} ({v})" for k, v in suite.skipped.items()) if suite.skipped else ""
    console.print(f"{len(suite)} canaries, probes: {', '.join(p.family for p in suite.probes) or 'none'}"
                  f"{skipped}; saved to [bold]{out}[/]", highlight=False)


@canary_app.command("run")
def canary_run(
    model: Path = typer.Argument(..., help="Model weights (.safetensors with its model card)."),
    suite_dir: Path = typer.Option(..., "--suite", help="Folder written by 'poisonlab canary build'."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the result as JSON here."),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
    no_fail: bool = typer.Option(False, "--no-fail", help=NO_FAIL_HELP),
) -> None:
    """Run a canary suite against a model: accuracy on the canaries and backdoor probes.

    Exit status: 0 the suite passes; 3 it fails (accuracy below its minimum or a probe fires; 0
    with --no-fail); 2 bad input."""
    from ..monitoring.canaries import load_canary_suite, run_canaries
    from ..runs.gate import load_baseline

    check_input(model, "MODEL")
    check_input(suite_dir, "--suite", folder=True)
    guard = output_guard([model, suite_dir], force=force)
    if out is not None:
        guard.file(out, "--out")
    suite = load_canary_suite(suite_dir)
    clf = _model_for_suite(model, suite, load_baseline)
    res = run_canaries(clf, suite)
    _probe_table(res, suite)
    colour = "green" if res.passed else "red"
    console.print(f"[{colour}]{'PASS' if res.passed else 'FAIL'}[/]: {res.message()}", highlight=False)
    if out is not None:
        guard.write_text(out, json_text({"model": str(model), "suite": suite.summary(), **res.to_dict()}))
    exit_for(not res.passed, no_fail)


def _model_for_suite(model: Path, suite, loader):
    """A classifier for ``model``, checked against the suite's classes and inputs."""
    import numpy as np

    from ..data.dataset import Dataset, make_ids

    probe = Dataset(X=suite.X, y=np.asarray(suite.y), classes=suite.classes, modality=suite.modality,
                    ids=make_ids("canary", "suite", len(suite.y)))
    return loader(model, probe)


def _probe_table(res, suite) -> None:
    table = Table(title=f"Backdoor probes on {len(suite)} canaries")
    for col in ("trigger family", "most attracted class", "rate", "fires"):
        table.add_column(col)
    for p in res.probes:
        table.add_row(p.family, suite.classes[p.target], f"{p.rate:.1%}", "FIRES" if p.fires else "")
    console.print(table)


@app.command("drift")
def drift(
    old: Path = typer.Argument(..., help="The released model (.safetensors with its card)."),
    new: Path = typer.Argument(..., help="The candidate model (.safetensors with its card)."),
    dataset: Optional[str] = typer.Option(None, help="Built-in dataset whose test split is the reference set."),
    data: Optional[Path] = typer.Option(None, "--data", help="Trusted labelled data (.npz) instead."),
    modality: str = typer.Option("image", help=MODALITY_HELP),
    suite_dir: Optional[Path] = typer.Option(None, "--suite", help="A canary suite (default: built from the "
                                             "reference data, 20 per class, seed 0)."),
    n_reference: int = typer.Option(500, min=0, help="Reference inputs compared besides the canaries."),
    max_flip_rate: float = typer.Option(0.1, help="Exit 3 when more predictions than this flip."),
    alpha: float = typer.Option(0.01, help="Significance level of the KS tests."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the result as JSON here."),
    data_dir: Optional[Path] = typer.Option(None, help=DATA_DIR_HELP),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
    no_fail: bool = typer.Option(False, "--no-fail", help=NO_FAIL_HELP),
) -> None:
    """Compare two model versions: prediction flips per class, confidence shift (two-sample
    Kolmogorov-Smirnov test per class and overall), and backdoor probes that newly fire.

    Exit status: 0 within bounds; 3 flip rate above --max-flip-rate or a probe newly fires (0 with
    --no-fail); 2 bad input."""
    from ..models.io import card_path
    from ..monitoring.canaries import build_canary_suite, load_canary_suite
    from ..monitoring.drift import drift_between
    from ..runs.gate import load_baseline

    for p, what in ((old, "OLD"), (new, "NEW")):
        check_input(p, what)
    guard = output_guard([old, new, card_path(old), card_path(new), data, *dataset_inputs(dataset, data_dir)],
                         force=force)
    if out is not None:
        guard.file(out, "--out")
    ref = _trusted(dataset, data, data_dir, modality)
    suite = load_canary_suite(suite_dir) if suite_dir is not None else build_canary_suite(ref, seed=0)
    m_old, m_new = load_baseline(old, ref), load_baseline(new, ref)
    n = min(n_reference, len(ref))
    res, r_old, r_new = drift_between(m_old, m_new, suite, X_ref=ref.X[-n:] if n else None,
                                      y_ref=ref.y[-n:] if n else None, alpha=alpha)
    table = Table(title=f"Drift of {new.name} from {old.name} on {res.n} inputs")
    for col in ("class", "inputs", "flip rate", "KS D", "KS p-value"):
        table.add_column(col)
    for c, name in enumerate(res.classes):
        ks = (res.ks_per_class or [None] * len(res.classes))[c]
        fr = res.class_flip_rates[c]
        table.add_row(name, str(int(res.class_counts[c])), "—" if fr != fr else f"{fr:.1%}",
                      f"{ks['statistic']:.3f}" if ks else "—", f"{ks['p_value']:.3g}" if ks else "—")
    console.print(table)
    ks = res.ks
    console.print(f"overall flip rate {res.flip_rate:.1%}" + (
        f"; KS D={ks['statistic']:.3f}, p={ks['p_value']:.3g} ({'shifted' if ks['shifted'] else 'no shift'} "
        f"at alpha {alpha})" if ks else ""), highlight=False)
    for q in res.newly_firing:
        was = "n/a" if q["rate_old"] is None else f"{q['rate_old']:.0%}"
        console.print(f"[red]newly fires[/]: {q['family']} -> class {res.classes[q['target']]} "
                      f"({q['rate_new']:.0%}, was {was})", highlight=False)
    if out is not None:
        guard.write_text(out, json_text({"old": str(old), "new": str(new), **res.to_dict(),
                                         "canaries_old": r_old.to_dict(), "canaries_new": r_new.to_dict()}))
    exit_for(res.flip_rate > max_flip_rate or bool(res.newly_firing), no_fail)


@app.command("sign")
def sign(
    model: Path = typer.Argument(..., help="A model file, or a folder (every file in it is covered)."),
    key: Path = typer.Option(..., "--key", help="Elliptic-curve private key (PEM)."),
    signature: Optional[Path] = typer.Option(None, "--signature", help="Where the signature goes "
                                             "(default: MODEL.sig beside it)."),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
) -> None:
    """Sign a model with OpenSSF model-signing (offline, key-based). A single weights file does not
    cover its model card: sign the folder holding both to cover the card too."""
    from ..runs.signing import sign_model

    check_input(model, "MODEL", folder=model.is_dir())
    check_input(key, "--key")
    out = signature if signature is not None else model.with_name(model.name + ".sig")
    guard = output_guard([model, key], force=force)
    guard.file(out, "--signature")
    guard.write_bytes(out, sign_model(model, key))
    console.print(f"signed {model}: [bold]{out}[/]")


@app.command("verify-signature")
def verify_signature(
    model: Path = typer.Argument(..., help="The model file or folder that was signed."),
    key: Path = typer.Option(..., "--key", help="Elliptic-curve public key (PEM)."),
    signature: Optional[Path] = typer.Option(None, "--signature", help="The signature (default: MODEL.sig)."),
) -> None:
    """Verify a model against its signature.

    Exit status: 0 it matches; 1 it does not (changed files, another key; one line on stderr);
    2 bad input (a missing file)."""
    from ..runs.signing import SignatureError, verify_model

    sig = signature if signature is not None else model.with_name(model.name + ".sig")
    check_input(model, "MODEL", folder=model.is_dir())
    check_input(sig, "--signature")
    check_input(key, "--key")
    try:
        verify_model(model, sig, key)
    except SignatureError as exc:
        err_console.print(f"signature: FAILED - {exc}", highlight=False, markup=False)
        raise typer.Exit(code=EXIT_GATE_FAILED) from exc
    console.print(f"signature: OK - {model} matches {sig}", highlight=False)


__all__ = ["EXIT_FLAGGED", "EXIT_GATE_FAILED"]
