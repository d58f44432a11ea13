"""``poisonlab ledger``, ``poisonlab data`` and ``poisonlab model``: the provenance ledger from the
command line (parse -> ledger -> render).

- ``ledger init | verify | log``: create a ledger, check its hash chain (exit 1 naming the first
  tampered row), show the latest rows;
- ``data snapshot | diff``: record a dataset file as a snapshot, compare two snapshots;
- ``data reputation``: every contributor's reputation against a trusted model, sybil-like groups
  and the quarantine's decisions (recorded in the ledger with ``--record``);
- ``data quarantine add | list | release | reject``: quarantine decisions;
- ``model register | promote | rollback | list``: the model registry.

Every command takes ``--ledger`` (a path or a URL); the default is $POISONLAB_LEDGER, else
``poisonlab-ledger.db`` in the current folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from .app import FORCE_HELP, app, console, json_text, output_guard

LEDGER_HELP = ("The ledger: a file (SQLite) or a URL (sqlite:///..., postgresql+psycopg://user@host/db); "
               "default $POISONLAB_LEDGER, else poisonlab-ledger.db here.")

ledger_app = typer.Typer(no_args_is_help=True, help="The provenance ledger: create it, verify its hash "
                         "chain, show its latest rows.")
data_app = typer.Typer(no_args_is_help=True, help="Dataset snapshots in the ledger: record, compare, "
                       "quarantine.")
quarantine_app = typer.Typer(no_args_is_help=True, help="Quarantine decisions on contributors, sources "
                             "or samples.")
model_app = typer.Typer(no_args_is_help=True, help="The model registry: register, promote, roll back, list.")
app.add_typer(ledger_app, name="ledger")
app.add_typer(data_app, name="data")
data_app.add_typer(quarantine_app, name="quarantine")
app.add_typer(model_app, name="model")

#: Exit status of ``ledger verify`` when the chain is broken.
EXIT_TAMPERED = 1


def _open(ledger: Optional[str], *, create: bool = True):
    from ..provenance.ledger import Ledger

    return Ledger.open(ledger, create=create)


# --- ledger -----------------------------------------------------------------------------------

@ledger_app.command("init")
def ledger_init(ledger: Optional[str] = typer.Option(None, "--ledger", "-l", help=LEDGER_HELP)) -> None:
    """Create the ledger (or migrate an older one); print where it is."""
    with _open(ledger) as led:
        seq, head = led.head()
        console.print(f"ledger [bold]{led.url}[/] ready: schema version {led.schema_version}, "
                      f"{seq + 1} chained rows, head {head[:16]}")


@ledger_app.command("verify")
def ledger_verify(
    ledger: Optional[str] = typer.Option(None, "--ledger", "-l", help=LEDGER_HELP),
    expect_head: Optional[str] = typer.Option(None, "--expect-head", help="A head hash printed by an "
                                              "earlier verify; the chain must still contain it."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the report as JSON."),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
) -> None:
    """Check the hash chain and every snapshot's Merkle root; exit 1 naming the first tampered row."""
    guard = output_guard(force=force)
    if json_out is not None:
        guard.file(json_out, "--json")
    from ..provenance.snapshot import unfinished_ingests

    with _open(ledger, create=False) as led:
        report = led.verify(expect_head=expect_head)
        unfinished = unfinished_ingests(led)
        url = led.url
    if json_out is not None:
        guard.write_text(json_out, json_text(report.to_dict()))
    if report.ok:
        # plain echo, never wrapped: the head hash is meant to be copied (--expect-head)
        typer.echo(f"ledger {url}: OK -- {report.n_rows} chained rows, {report.n_snapshots} snapshots, "
                   f"{report.n_samples} samples; head seq {report.head_seq}, hash {report.head_hash}")
        if unfinished:
            names = ", ".join(f"{u['name']} (started {str(u['started'])[:19]})" for u in unfinished[:5])
            typer.echo(f"note: {len(unfinished)} ingest(s) never finished (killed, or still running): {names}; "
                       f"their staged rows belong to no snapshot")
        return
    typer.echo(f"ledger {url}: TAMPERED -- first bad row: {report.problem}", err=True)
    raise typer.Exit(code=EXIT_TAMPERED)


@ledger_app.command("log")
def ledger_log(
    ledger: Optional[str] = typer.Option(None, "--ledger", "-l", help=LEDGER_HELP),
    limit: int = typer.Option(20, min=1, help="How many rows (newest first)."),
) -> None:
    """Show the latest chained rows, newest first."""
    with _open(ledger, create=False) as led:
        entries = led.log(limit)
        url = led.url
    table = Table(title=f"{url}: last {len(entries)} rows")
    for col in ("seq", "table", "id", "created", "what", "row hash"):
        table.add_column(col, justify="right" if col in ("seq", "id") else "left")
    for e in entries:
        table.add_row(str(e["seq"]), e["table"], str(e["id"]), str(e["created"] or "")[:19], e["summary"],
                      e["row_hash"][:12])
    console.print(table)


# --- data ---------------------------------------------------------------------------------------

@data_app.command("snapshot")
def data_snapshot(
    input: Path = typer.Argument(..., help="A .npz (X, y; optional per-sample source and contributor), "
                                 "a .npy (with --labels) or a .csv (a label column)."),
    source: str = typer.Option(..., "--source", help="Where the data came from (for samples without "
                               "their own source)."),
    contributor: str = typer.Option(..., "--contributor", help="Who contributed it (for samples "
                                    "without their own contributor)."),
    ledger: Optional[str] = typer.Option(None, "--ledger", "-l", help=LEDGER_HELP),
    name: Optional[str] = typer.Option(None, "--name", help="The snapshot's name (default: the file's stem)."),
    labels: Optional[Path] = typer.Option(None, "--labels", help="Labels of a .npy input (a .npy)."),
    label_column: str = typer.Option("label", "--label-column", help="The label column of a CSV."),
    chunk: int = typer.Option(50_000, min=1, help="Samples read and written per batch."),
) -> None:
    """Record a dataset file as a snapshot: every sample's content hash, label, source and
    contributor, and the Merkle root over them (streaming; all or nothing)."""
    from ..provenance.snapshot import ingest_snapshot

    with _open(ledger) as led:
        row = ingest_snapshot(led, input, source=source, contributor=contributor, name=name, chunk=chunk,
                              labels=labels, label_column=label_column)
        url = led.url
    typer.echo(f"snapshot {row['name']} (id {row['id']}): {row['n_samples']} samples, Merkle root "
               f"{row['merkle_root']}, recorded in {url} at seq {row['seq']}")


@data_app.command("reputation")
def data_reputation(
    input: Path = typer.Argument(..., help="A .npz with X, y and a per-sample contributor array."),
    model: Path = typer.Option(..., "--model", help="The trusted model (.safetensors with its model card)."),
    modality: str = typer.Option("image", help="image, text, tabular or audio (how X is read)."),
    contributor_key: str = typer.Option("contributor", "--contributor-key", help="The .npz array naming "
                                        "each sample's contributor."),
    trusted: Optional[str] = typer.Option(None, "--trusted", help="Comma-separated contributors vouched "
                                          "for (not quarantined while their evidence allows)."),
    min_verified: int = typer.Option(10, min=0, help="Samples agreeing with the trusted model a new "
                                     "contributor needs before release."),
    min_reputation: float = typer.Option(0.6, min=0.0, max=1.0, help="Lower credible bound of the "
                                         "reputation needed for release."),
    record: bool = typer.Option(False, "--record", help="Record the decisions (quarantine, release, "
                                "reject) in the ledger."),
    ledger: Optional[str] = typer.Option(None, "--ledger", "-l", help=LEDGER_HELP),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the assessment as JSON here."),
    no_fail: bool = typer.Option(False, "--no-fail", help="Exit 0 even when samples are held or dropped."),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
) -> None:
    """Each contributor's reputation (a Beta posterior over how often their labels agree with the
    trusted model), sybil-like groups (new accounts that disagree with the model the same way),
    and what the quarantine decides: trusted, held until enough samples are verified, or rejected.

    Exit status: 0 no sample held or dropped; 3 some were (0 with --no-fail); 2 bad input."""
    from ..provenance.quarantine import QuarantinePolicy
    from ..runs.reputation import assess_file, record_assessment
    from .app import EXIT_FLAGGED

    guard = output_guard([input, model], force=force)
    if json_out is not None:
        guard.file(json_out, "--json")
    policy = QuarantinePolicy(min_verified=min_verified, min_reputation=min_reputation,
                              reject_below=min(0.5, min_reputation))
    vouched = [c.strip() for c in trusted.split(",") if c.strip()] if trusted else []
    res = assess_file(input, model, modality=modality, contributor_key=contributor_key, trusted=vouched,
                      policy=policy)
    table = Table(title=f"Contributors of {input.name} against the trusted model")
    for col in ("contributor", "samples", "verified", "reputation", "95% bounds", "status"):
        table.add_column(col, justify="right" if col not in ("contributor", "status") else "left")
    colours = {"trusted": "green", "quarantined": "yellow", "rejected": "red"}
    for c, rep in sorted(res.reputation.items(), key=lambda kv: kv[1]["mean"]):
        st = res.status.get(c, "quarantined")
        table.add_row(c, str(rep["n"]), str(rep["verified"]), f"{rep['mean']:.3f}",
                      f"{rep['lower']:.3f}-{rep['upper']:.3f}", f"[{colours[st]}]{st}[/]")
    console.print(table)
    for g in res.groups:
        console.print(f"[red]sybil-like group[/] of {len(g)}: {', '.join(g)} (their labels disagree with the "
                      f"trusted model the same way)")
    console.print(f"{len(res.held)} samples held in quarantine, {len(res.dropped)} dropped (rejected contributors)")
    if record:
        n, url = record_assessment(ledger, res)
        console.print(f"ledger: {n} decisions recorded in {url} ('poisonlab data quarantine list')")
    if json_out is not None:
        guard.write_text(json_out, json_text(res.to_dict()))
    if (len(res.held) or len(res.dropped)) and not no_fail:
        raise typer.Exit(code=EXIT_FLAGGED)


def _counts_table(title: str, rows: dict[str, dict[str, int]], *, by_class: bool = False) -> Table:
    rows = {kind: {str(k): v for k, v in d.items()} for kind, d in rows.items()}
    table = Table(title=title)
    table.add_column("")
    kinds = list(rows)
    for k in kinds:
        table.add_column(k, justify="right")
    keys: list[str] = []
    for d in rows.values():
        keys += [str(k) for k in d if str(k) not in keys]
    if by_class:
        keys.sort(key=lambda k: (0, int(k), "") if k.lstrip("-").isdigit() else (1, 0, k))
    for key in keys:
        table.add_row(key, *[str(rows[k].get(key, 0)) for k in kinds])
    return table


@data_app.command("diff")
def data_diff(
    a: str = typer.Argument(..., help="The earlier snapshot (name or id)."),
    b: str = typer.Argument(..., help="The later snapshot (name or id)."),
    ledger: Optional[str] = typer.Option(None, "--ledger", "-l", help=LEDGER_HELP),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the full diff as JSON."),
    no_near: bool = typer.Option(False, "--no-near", help="Skip the near-duplicate check."),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
) -> None:
    """Compare two snapshots: added, removed and relabelled samples by contributor and class, the
    label-distribution shift, and near-duplicates that changed label."""
    from ..provenance.diff import diff_snapshots

    guard = output_guard(force=force)
    if json_out is not None:
        guard.file(json_out, "--json")
    with _open(ledger, create=False) as led:
        d = diff_snapshots(led, a, b, near_duplicates=not no_near)
    console.print(f"[bold]{d.a['name']}[/] ({d.a['n_samples']} samples) -> [bold]{d.b['name']}[/] "
                  f"({d.b['n_samples']} samples): {d.n_unchanged} unchanged, {d.n_added} added, "
                  f"{d.n_removed} removed, {d.n_relabelled} relabelled")
    contributors = {"added": d.added_by_contributor, "removed": d.removed_by_contributor,
                    "relabelled": d.relabelled_by_contributor}
    if any(contributors.values()):
        console.print(_counts_table("changes by contributor", contributors))
    if d.added_by_class or d.removed_by_class:
        console.print(_counts_table("added and removed by class", {"added": d.added_by_class,
                                                                   "removed": d.removed_by_class},
                                    by_class=True))
    if d.relabelled_by_class:
        console.print(_counts_table("relabelled (old->new)", {"samples": d.relabelled_by_class}))
    s = d.label_shift
    table = Table(title=f"label distribution: TVD {s['tvd']:.4f}, chi-square {s['chi2']:.2f} "
                        f"(dof {s['dof']}, p = {s['p_value']:.3g})")
    for col in ("class", "A", "B", "A share", "B share"):
        table.add_column(col, justify="left" if col == "class" else "right")
    for k in s["classes"]:
        table.add_row(k, str(s["counts_a"][k]), str(s["counts_b"][k]), f"{s['proportions_a'][k]:.2%}",
                      f"{s['proportions_b'][k]:.2%}")
    console.print(table)
    if d.near_duplicates:
        nd = d.near_duplicates
        more = " (check truncated)" if nd["truncated"] else ""
        console.print(f"near-duplicates that changed label: {nd['n_changed_label']}{more}"
                      + (f" -- by contributor {json.dumps(nd['by_contributor'])}" if nd["by_contributor"] else ""))
    if json_out is not None:
        guard.write_text(json_out, json_text(d.to_dict()))
        console.print(f"diff: [bold]{json_out}[/]")


# --- data quarantine ------------------------------------------------------------------------------

SUBJECT_HELP = "What: contributor:NAME, source:NAME or samples:SNAPSHOT:I,J,..."


@quarantine_app.command("add")
def quarantine_add(
    subject: str = typer.Argument(..., help=SUBJECT_HELP),
    reason: Optional[str] = typer.Option(None, "--reason", help="Why."),
    actor: Optional[str] = typer.Option(None, "--actor", help="Who decides (default: the user name)."),
    ledger: Optional[str] = typer.Option(None, "--ledger", "-l", help=LEDGER_HELP),
) -> None:
    """Quarantine a contributor, source or set of samples."""
    from ..provenance.decisions import quarantine

    with _open(ledger) as led:
        row = quarantine(led, subject, reason=reason, actor=actor)
    console.print(f"quarantined {row['subject']} (decision {row['id']}, seq {row['seq']})")


@quarantine_app.command("list")
def quarantine_list(ledger: Optional[str] = typer.Option(None, "--ledger", "-l", help=LEDGER_HELP)) -> None:
    """What is quarantined and not yet released or rejected."""
    from ..provenance.decisions import open_quarantines

    with _open(ledger, create=False) as led:
        rows = open_quarantines(led)
    if not rows:
        console.print("nothing is in quarantine")
        return
    table = Table(title=f"{len(rows)} in quarantine")
    for col in ("subject", "since", "by", "reason", "decision"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["subject"], str(r["created"])[:19], str(r["actor"]), str(r["reason"] or ""), str(r["id"]))
    console.print(table)


def _close(kind: str, subject: str, reason: Optional[str], actor: Optional[str], ledger: Optional[str]) -> None:
    from ..provenance import decisions

    with _open(ledger, create=False) as led:
        row = getattr(decisions, kind)(led, subject, reason=reason, actor=actor)
    console.print(f"{'released' if kind == 'release' else 'rejected'} {row['subject']} "
                  f"(decision {row['id']}, seq {row['seq']})")


@quarantine_app.command("release")
def quarantine_release(
    subject: str = typer.Argument(..., help=SUBJECT_HELP),
    reason: Optional[str] = typer.Option(None, "--reason", help="Why."),
    actor: Optional[str] = typer.Option(None, "--actor", help="Who decides (default: the user name)."),
    ledger: Optional[str] = typer.Option(None, "--ledger", "-l", help=LEDGER_HELP),
) -> None:
    """Release a quarantined subject: its data may be used."""
    _close("release", subject, reason, actor, ledger)


@quarantine_app.command("reject")
def quarantine_reject(
    subject: str = typer.Argument(..., help=SUBJECT_HELP),
    reason: Optional[str] = typer.Option(None, "--reason", help="Why."),
    actor: Optional[str] = typer.Option(None, "--actor", help="Who decides (default: the user name)."),
    ledger: Optional[str] = typer.Option(None, "--ledger", "-l", help=LEDGER_HELP),
) -> None:
    """Reject a quarantined subject for good."""
    _close("reject", subject, reason, actor, ledger)


# --- model ----------------------------------------------------------------------------------------

@model_app.command("register")
def model_register(
    path: Path = typer.Argument(..., help="The weights (.safetensors) with their model card beside them."),
    run_id: Optional[str] = typer.Option(None, "--run-id", help="The run that produced the model."),
    ledger: Optional[str] = typer.Option(None, "--ledger", "-l", help=LEDGER_HELP),
) -> None:
    """Record a model version (weights sha256, model card, metrics, parent run)."""
    from ..provenance.models import register_model

    with _open(ledger) as led:
        row = register_model(led, path, run_id=run_id)
    console.print(f"model {row['id']}: {row['path']} (weights {row['weights_sha256'][:16]}) recorded at seq "
                  f"{row['seq']}")


@model_app.command("promote")
def model_promote(
    model_id: int = typer.Argument(..., help="The model's id (see 'poisonlab model list')."),
    reason: Optional[str] = typer.Option(None, "--reason", help="Why."),
    ledger: Optional[str] = typer.Option(None, "--ledger", "-l", help=LEDGER_HELP),
) -> None:
    """Make a model the production version."""
    from ..provenance.models import promote

    with _open(ledger, create=False) as led:
        promote(led, model_id, reason=reason)
    console.print(f"model {model_id} is in production")


@model_app.command("rollback")
def model_rollback(
    reason: Optional[str] = typer.Option(None, "--reason", help="Why."),
    ledger: Optional[str] = typer.Option(None, "--ledger", "-l", help=LEDGER_HELP),
) -> None:
    """Put back the latest earlier model that passed the gate."""
    from ..provenance.models import rollback

    with _open(ledger, create=False) as led:
        row = rollback(led, reason=reason)
    console.print(f"rolled back to model {row['id']}: {row['path']}")


@model_app.command("list")
def model_list(ledger: Optional[str] = typer.Option(None, "--ledger", "-l", help=LEDGER_HELP)) -> None:
    """Every registered model, its last gate verdict and which one is in production."""
    from ..provenance.models import list_models

    with _open(ledger, create=False) as led:
        rows = list_models(led)
    if not rows:
        console.print("no model registered")
        return
    table = Table(title=f"{len(rows)} models")
    for col in ("id", "path", "weights", "run", "gate", "production"):
        table.add_column(col)
    for r in rows:
        gate = "-" if r["gate"] is None else ("passed" if r["gate"] else "failed")
        table.add_row(str(r["id"]), r["path"], r["weights_sha256"][:12], str(r["run_id"] or "-"), gate,
                      "yes" if r["production"] else "")
    console.print(table)
