"""A run in the provenance ledger: its manifest before it starts, its events as they happen.

The runner hands its events to the ledger (:class:`poisonlab.provenance.recorder.LedgerRecorder`
is one more subscriber); the ledger never calls the runner. This module is the workflow between
them, so the CLI only parses ``--ledger`` and passes the recorder on.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from .events import Note
from .record import environment


def open_run_recorder(target: str, scenario: Any):
    """Record ``scenario``'s run manifest in the ledger at ``target`` (a path or URL) and return
    the subscriber that records the run's events under it.

    The manifest holds the resolved scenario, the steps and seeds, the code commit and
    environment, the seed (when there is one), and the Merkle root of the snapshot the
    scenario's data file was ingested as, when the ledger holds one with the same sha256.
    """
    from ..provenance.ledger import Ledger
    from ..provenance.recorder import LedgerRecorder

    led = Ledger.open(target)
    run_id = f"{scenario.name}-{uuid.uuid4().hex[:12]}"
    env = environment(data_files=[scenario.dataset.path] if scenario.dataset.path else [])
    data_sha = next(iter(env.get("data_files", {}).values()), None)
    snap = led.snapshot_for_file(data_sha) if data_sha else None
    led.record_run(run_id, scenario=scenario.to_dict(),
                   config={"steps": list(scenario.steps_to_run()), "seeds": scenario.seeds},
                   code_commit=(env.get("git") or {}).get("commit"), environment=env,
                   seed=scenario.seeds[0] if len(scenario.seeds) == 1 else None,
                   snapshot_root=snap["merkle_root"] if snap else None)
    return LedgerRecorder(led, run_id)


def close_run_recorder(recorder: Any, record: dict[str, Any], path: str | Path) -> None:
    """Record where the run's record went and its fingerprint: the last event of the run."""
    recorder(Note(label=record.get("scenario", {}).get("name", ""),
                  text=f"record {path} fingerprint {record['fingerprint']}"))


def released_baseline(target: str) -> Path | None:
    """The weights file of the version in production in the ledger at ``target`` (the gate's
    drift baseline), or None when nothing was released. A released file that is gone or changed
    since it was registered is refused: the baseline must be what was released."""
    from ..exceptions import DataError
    from ..provenance.ledger import Ledger
    from ..data.checksums import file_digest
    from ..provenance.models import released_model

    with Ledger.open(target) as led:
        row = released_model(led)
    if row is None:
        return None
    path = Path(row["path"])
    if not path.is_file():
        raise DataError(f"the released model {path} (model {row['id']} in the ledger) is gone; pass --baseline")
    if file_digest(path) != row["file_sha256"]:
        raise DataError(f"the released model {path} (model {row['id']}) changed since it was registered "
                        f"(sha256 differs); pass --baseline")
    return path


def record_gate_result(target: str, model_path: str | Path, result: Any, *, actor: str | None = None) -> int:
    """Register ``model_path`` in the ledger at ``target`` (unless the same file is registered
    already) and record the gate's verdict on it; return the model's id. A model that passed
    can then be promoted (``poisonlab model promote``) and is a rollback target."""
    from ..provenance.ledger import Ledger
    from ..provenance.models import find_model, record_gate, register_model

    with Ledger.open(target) as led:
        row = find_model(led, model_path) or register_model(led, model_path)
        summary = {"verdict": result.verdict(), "policy": result.policy.name,
                   "checks": {c.name: c.status for c in result.checks}}
        record_gate(led, int(row["id"]), result.passed, summary, actor=actor)
    return int(row["id"])
