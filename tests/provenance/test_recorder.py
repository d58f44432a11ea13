"""LedgerRecorder: the runner's typed events recorded as they happen, in order, chained."""

import json

from poisonlab.provenance.ledger import Ledger
from poisonlab.provenance.recorder import LedgerRecorder
from poisonlab.runs.events import BatchEnded, EpochEnded, EventBus, StepFinished, StepStarted


def test_events_are_recorded_in_order_and_batches_skipped():
    with Ledger.open(":memory:") as ledger:
        ledger.record_run("r1", scenario={"name": "demo"}, seed=0)
        rec = LedgerRecorder(ledger, "r1")
        bus = EventBus([rec])
        bus.emit(StepStarted(label="poisoned model", step="train"))
        bus.emit(BatchEnded(label="poisoned model", epoch=1, batch=1, n_batches=10))
        bus.emit(EpochEnded(label="poisoned model", epoch=1, epochs=1, train_loss=float("nan")))
        bus.emit(StepFinished(label="poisoned model", step="train", seconds=1.5, summary={"acc": 0.9}))
        rows = ledger.rows("events")
        assert [r["kind"] for r in rows] == ["StepStarted", "EpochEnded", "StepFinished"]
        assert rec.n_recorded == 3 and all(r["run_id"] == "r1" for r in rows)
        assert json.loads(rows[1]["payload_json"])["train_loss"] == "nan"  # NaN kept as text
        assert json.loads(rows[2]["payload_json"])["summary"] == {"acc": 0.9}
        assert ledger.verify().ok and ledger.verify().n_rows == 4
