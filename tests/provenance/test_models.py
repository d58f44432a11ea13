"""The model registry: register needs a model card; gate verdicts, promotion and rollback to the
last version that passed the gate; decisions on contributors (quarantine, release, reject)."""

import pytest

from poisonlab.exceptions import DataError
from poisonlab.provenance.decisions import (
    open_quarantines,
    quarantine,
    record_decisions,
    reject,
    release,
    subject_history,
)
from poisonlab.provenance.ledger import Ledger, LedgerError
from poisonlab.provenance.models import list_models, production_model, promote, record_gate, register_model, rollback


def save_tiny_model(path, seed=0):
    import torch

    from poisonlab.models import ModelSpec, build_model
    from poisonlab.models.io import save_model

    torch.manual_seed(seed)
    spec = ModelSpec((4,), 2)
    save_model(build_model("mlp", spec), path, architecture="mlp", spec=spec,
               metrics={"clean_accuracy": 0.9 + seed / 100})
    return path


def test_register_promote_gate_and_rollback(tmp_path):
    paths = [save_tiny_model(tmp_path / f"m{i}.safetensors", seed=i) for i in range(3)]
    with Ledger.open(tmp_path / "l.db") as ledger:
        ids = [register_model(ledger, p, run_id=f"run-{i}")["id"] for i, p in enumerate(paths)]
        rows = list_models(ledger)
        assert [r["id"] for r in rows] == ids and rows[0]["metrics"] == {"clean_accuracy": 0.9}
        assert rows[1]["run_id"] == "run-1" and all(len(r["weights_sha256"]) == 64 for r in rows)
        with pytest.raises(LedgerError, match="no model was promoted"):
            rollback(ledger)
        record_gate(ledger, ids[0], True, {"asr": 0.01})
        record_gate(ledger, ids[1], False, {"asr": 0.9})
        record_gate(ledger, ids[2], True, {"asr": 0.02})
        promote(ledger, ids[2])
        assert production_model(ledger) == ids[2]
        # model 1 failed its gate: rollback skips it to model 0
        assert rollback(ledger, reason="backdoor found in production")["id"] == ids[0]
        assert production_model(ledger) == ids[0]
        assert [r["production"] for r in list_models(ledger)] == [True, False, False]
        assert [r["gate"] for r in list_models(ledger)] == [True, False, True]
        with pytest.raises(LedgerError, match="no earlier model passed the gate"):
            rollback(ledger)
        with pytest.raises(LedgerError, match="no model with id 99"):
            promote(ledger, 99)
        assert ledger.verify().ok


def test_a_model_without_a_card_is_refused(tmp_path):
    path = save_tiny_model(tmp_path / "m.safetensors")
    (tmp_path / "m.card.json").unlink()
    with Ledger.open(tmp_path / "l.db") as ledger:
        with pytest.raises(DataError, match="has no model card"):
            register_model(ledger, path)
        with pytest.raises(DataError, match="does not exist"):
            register_model(ledger, tmp_path / "none.safetensors")
        assert ledger.rows("models") == []


def test_quarantine_release_and_reject():
    with Ledger.open(":memory:") as ledger:
        quarantine(ledger, "contributor:mallory", reason="new", actor="alice")
        quarantine(ledger, "contributor:trudy", reason="low reputation", actor="alice")
        assert [q["subject"] for q in open_quarantines(ledger)] == ["contributor:mallory", "contributor:trudy"]
        release(ledger, "contributor:mallory", reason="reviewed", actor="bob")
        reject(ledger, "contributor:trudy", reason="poison confirmed", actor="bob")
        assert open_quarantines(ledger) == []
        with pytest.raises(LedgerError, match="is not in quarantine"):
            release(ledger, "contributor:trudy")
        quarantine(ledger, "contributor:mallory", reason="again")
        assert [q["reason"] for q in open_quarantines(ledger)] == ["again"]
        assert [h["kind"] for h in subject_history(ledger, "contributor:mallory")] == [
            "quarantine", "release", "quarantine"]
        with pytest.raises(LedgerError, match="needs a subject"):
            quarantine(ledger, "  ")
        assert ledger.verify().ok


def test_policy_decisions_are_recorded_in_one_transaction():
    with Ledger.open(":memory:") as ledger:
        rows = record_decisions(ledger, [
            {"kind": "quarantine", "subject": "mallory", "reason": "new", "samples": [3, 4]},
            {"kind": "reject", "subject": "trudy", "reason": "sybil"}])
        assert [r["subject"] for r in rows] == ["contributor:mallory", "contributor:trudy"]
        assert [q["subject"] for q in open_quarantines(ledger)] == ["contributor:mallory"]
        assert '"samples":[3,4]' in rows[0]["reason"] and ledger.verify().ok
        with pytest.raises(LedgerError, match="decision kind"):
            record_decisions(ledger, [{"kind": "approve", "subject": "x"}])
        # a contributor's name with a colon in it is still a contributor
        row, = record_decisions(ledger, [{"kind": "quarantine", "subject": "org:alice"}])
        assert row["subject"] == "contributor:org:alice"
