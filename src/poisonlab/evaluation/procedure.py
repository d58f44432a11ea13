"""Measure procedure tampering: the same data and seed, trained honestly and tampered."""

from __future__ import annotations

from typing import Any

import numpy as np

from .metrics import confusion_matrix


def targeted_error(y_true: np.ndarray, y_pred: np.ndarray, source: int, target: int) -> float:
    """Share of ``source``-class inputs predicted as ``target``."""
    m = y_true == source
    return float(np.mean(y_pred[m] == target)) if m.any() else float("nan")


def compare_runs(make_model, train, test, *, honest_config, tampered_config, honest_val=None,
                 tampered_val=None, source: int | None = None, target: int | None = None) -> dict[str, Any]:
    """Train twice from the same data and seed: honest vs tampered (config and/or validation
    set). Returns accuracy, the chosen epoch and, with ``source``/``target``, the targeted error,
    for both, and their differences."""
    out = {}
    for label, cfg, val in (("honest", honest_config, honest_val), ("tampered", tampered_config, tampered_val)):
        model = make_model(cfg)
        kw = {"X_val": val[0], "y_val": val[1]} if val is not None else {}
        model.fit(train.X, train.y, **kw)
        pred = model.predict(test.X)
        row = {"accuracy": float(np.mean(pred == test.y)), "epochs_run": len(model.history_.train_loss),
               "best_epoch": model.history_.best_epoch,
               "confusion_matrix": confusion_matrix(test.y, pred, test.n_classes).tolist()}
        if source is not None and target is not None:
            row["targeted_error"] = targeted_error(test.y, pred, source, target)
        out[label] = row
    out["accuracy_change"] = out["tampered"]["accuracy"] - out["honest"]["accuracy"]
    if source is not None and target is not None:
        out["targeted_error_change"] = out["tampered"]["targeted_error"] - out["honest"]["targeted_error"]
    return out
