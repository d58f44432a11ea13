"""The CLI's event subscriber (poisonlab.cli.progress): what it prints for each kind of event."""

import io

from rich.console import Console

from poisonlab.cli.progress import event_progress
from poisonlab.runs.events import (
    BatchEnded,
    CellFinished,
    DetectorFinished,
    EpochEnded,
    Note,
    SeedFinished,
    StepStarted,
    TargetFinished,
)


def _drawn(events):
    buf = io.StringIO()
    with event_progress(Console(file=buf, width=200)) as emit:
        for e in events:
            emit(e)
    return buf.getvalue()


def test_lines_for_detectors_seeds_targets_cells_and_notes():
    out = _drawn([
        StepStarted(label="scan", step="scan"),
        DetectorFinished(label="scan", name="spectre", seconds=0.25, n_flagged=7),
        SeedFinished(label="R1", seed=0, seeds=3, seconds=90.0),
        TargetFinished(label="R8", done=3, total=10, info={"hit": True, "p_adversarial": 0.92065}),
        CellFinished(label="grid", cell="badnets/spectral/0.1/0", index=4, total=54, cached=True),
        Note(label="scan-model", text="file safety: m.safetensors: no code found (safetensors)"),
    ])
    assert "spectre" in out and "0.25 s" in out and "7 flagged" in out
    assert "R1: seed 1/3 done in 1.5 min" in out
    assert "R8: target 3/10, hit True, p_adversarial 0.921" in out
    assert "cell 5/54 badnets/spectral/0.1/0 (cached)" in out
    assert "file safety: m.safetensors: no code found (safetensors)" in out


def test_one_bar_per_training_label_and_epoch_only_loops():
    out = _drawn([
        BatchEnded(label="poisoned", epoch=0, batch=5, n_batches=10),
        EpochEnded(label="poisoned", epoch=1, epochs=3, train_loss=0.5, val_accuracy=0.75),
        BatchEnded(label="clean", epoch=0, batch=10, n_batches=10),
        EpochEnded(label="neural cleanse", epoch=2, epochs=4, train_loss=1.25),
    ])
    assert "train poisoned · epoch 1" in out and "loss 0.500 · val acc 75.00%" in out
    assert "train clean · epoch 1" in out and "10/10" in out
    assert "neural cleanse · epoch 2" in out and "2/4" in out
