"""The model registry: every model version, its gate results, promotions and rollbacks, as
chained ledger rows.

- :func:`register_model` records a weights file with its model card (read with
  :func:`poisonlab.models.io.read_card`; a model without a card is refused, since a model whose
  training data and configuration are unknown has no provenance), the file's sha256, the parent
  run and its metrics.
- :func:`record_gate` records a release gate's verdict on a model (a ``gate`` decision).
- :func:`promote` makes a model the production version (a ``promotion`` decision).
- :func:`rollback` makes the latest *earlier* model whose last gate verdict passed the production
  version again (a ``rollback`` decision) and returns it.
- :func:`list_models` lists versions with their last gate verdict and which one is in production.

"In production" is the subject of the latest promotion or rollback decision. Nothing is ever
updated or deleted: the history of what was deployed when is the chain itself.

Threat model: a poisoned model reached production (it passed a weaker gate, or was promoted by
hand); rollback picks the last version a gate passed, not merely the previous one. Limits: the
registry records files by path and sha256; it does not keep copies of the weights.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping


from .._files import check_input
from ..data.checksums import file_digest
from ..exceptions import DataError
from .hashing import canonical_json
from .ledger import Ledger, LedgerError, loads

__all__ = ["register_model", "record_gate", "promote", "rollback", "list_models", "production_model",
           "get_model", "find_model", "released_model"]


def register_model(ledger: Ledger, path: str | os.PathLike, *, run_id: str | None = None,
                   metrics: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Record the model at ``path`` (a ``.safetensors`` file with its card beside it).

    Parameters
    ----------
    ledger : Ledger
    path : path
        The weights file.
    run_id : str, optional
        The run that produced it.
    metrics : mapping, optional
        Metrics to record (default: the card's).

    Returns
    -------
    dict
        The ``models`` row.

    Raises
    ------
    DataError
        A missing file, or no model card beside it.
    """
    from ..models.io import card_path, read_card

    path = check_input(path, "MODEL")
    card = read_card(path)
    if card is None:
        raise DataError(f"model {path} has no model card (expected {card_path(path)}); a model without "
                        f"its card has no provenance to record")
    card_dict = card.to_dict()
    return ledger.append("models", path=str(Path(path).resolve()), weights_sha256=card.weights_sha256,
                         file_sha256=file_digest(path), run_id=run_id,
                         metrics_json=canonical_json(dict(metrics if metrics is not None else card.metrics)),
                         card_json=canonical_json(card_dict))


def find_model(ledger: Ledger, path: str | os.PathLike) -> dict[str, Any] | None:
    """The latest ``models`` row for the file at ``path`` (matched by the file's sha256, so a
    moved file is found and a changed one is not), or None."""
    sha = file_digest(check_input(path, "MODEL"))
    t = ledger.tables["models"]
    rows = ledger.rows("models", where=t.c.file_sha256 == sha, limit=1, newest_first=True)
    return rows[0] if rows else None


def released_model(ledger: Ledger) -> dict[str, Any] | None:
    """The ``models`` row of the version in production (the last released one), or None."""
    current = production_model(ledger)
    return get_model(ledger, current) if current is not None else None


def get_model(ledger: Ledger, model_id: int) -> dict[str, Any]:
    """The ``models`` row with ``model_id``; LedgerError when there is none."""
    t = ledger.tables["models"]
    rows = ledger.rows("models", where=t.c.id == int(model_id))
    if not rows:
        raise LedgerError(f"no model with id {model_id} in ledger {ledger.url} (see 'poisonlab model list')")
    return rows[0]


def record_gate(ledger: Ledger, model_id: int, passed: bool, report: Any = None, *,
                actor: str | None = None) -> dict[str, Any]:
    """Record a gate verdict on a model: a ``gate`` decision whose reason is
    ``{"passed": ..., "report": ...}`` (JSON)."""
    get_model(ledger, model_id)
    return ledger.record_decision("gate", f"model:{int(model_id)}", actor=actor, ref_id=int(model_id),
                                  reason=canonical_json({"passed": bool(passed), "report": report}))


def promote(ledger: Ledger, model_id: int, *, actor: str | None = None, reason: str | None = None) -> dict[str, Any]:
    """Make ``model_id`` the production version (a ``promotion`` decision)."""
    get_model(ledger, model_id)
    return ledger.record_decision("promotion", f"model:{int(model_id)}", actor=actor, reason=reason,
                                  ref_id=int(model_id))


def _gate_verdicts(ledger: Ledger) -> dict[int, bool]:
    """The last gate verdict of every model that has one."""
    d = ledger.tables["decisions"]
    out: dict[int, bool] = {}
    for row in ledger.rows("decisions", where=d.c.kind == "gate"):
        out[int(row["ref_id"])] = bool((loads(row["reason"]) or {}).get("passed"))
    return out


def production_model(ledger: Ledger) -> int | None:
    """The id of the model in production (latest promotion or rollback), or None."""
    d = ledger.tables["decisions"]
    rows = ledger.rows("decisions", where=d.c.kind.in_(("promotion", "rollback")), limit=1, newest_first=True)
    return int(rows[0]["ref_id"]) if rows else None


def rollback(ledger: Ledger, *, actor: str | None = None, reason: str | None = None) -> dict[str, Any]:
    """Put back the latest model registered before the production one whose last gate verdict
    passed; record a ``rollback`` decision; return that model's row.

    Raises
    ------
    LedgerError
        No model in production, or no earlier model passed the gate.
    """
    current = production_model(ledger)
    if current is None:
        raise LedgerError("nothing to roll back: no model was promoted (see 'poisonlab model promote')")
    verdicts = _gate_verdicts(ledger)
    t = ledger.tables["models"]
    candidates = [m for m in ledger.rows("models", where=t.c.id < current, newest_first=True)
                  if verdicts.get(int(m["id"]))]
    if not candidates:
        raise LedgerError(f"cannot roll back model {current}: no earlier model passed the gate")
    target = candidates[0]
    ledger.record_decision("rollback", f"model:{target['id']}", actor=actor, ref_id=int(target["id"]),
                           reason=reason or f"rollback from model {current}")
    return target


def list_models(ledger: Ledger) -> list[dict[str, Any]]:
    """Every registered model, oldest first: id, path, weights sha256, run, metrics, last gate
    verdict (True, False or None) and whether it is in production."""
    verdicts = _gate_verdicts(ledger)
    current = production_model(ledger)
    out = []
    for m in ledger.rows("models"):
        out.append({"id": m["id"], "path": m["path"], "weights_sha256": m["weights_sha256"],
                    "run_id": m["run_id"], "metrics": loads(m["metrics_json"]) or {},
                    "gate": verdicts.get(int(m["id"])), "production": m["id"] == current,
                    "created": m["created"]})
    return out
