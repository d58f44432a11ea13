"""Metrics of an attacked model: clean accuracy, attack success rate, per-class accuracy,
confusion matrix. Pure functions of labels and predictions."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import check_labels, check_same_length
from ..exceptions import DataError


def confusion_matrix(y_true: Any, y_pred: Any, n_classes: int | None = None) -> np.ndarray:
    """``C[i, j]`` = number of samples of true class ``i`` predicted as ``j``."""
    y_true, y_pred = check_labels(y_true, name="y_true"), check_labels(y_pred, name="y_pred")
    check_same_length(y_true=y_true, y_pred=y_pred)
    k = n_classes or int(max(y_true.max(initial=-1), y_pred.max(initial=-1))) + 1
    return np.bincount(y_true * k + y_pred, minlength=k * k).reshape(k, k)


def clean_accuracy(y_true: Any, y_pred: Any) -> float:
    """Fraction of clean test inputs classified correctly."""
    y_true, y_pred = check_labels(y_true, name="y_true"), check_labels(y_pred, name="y_pred")
    check_same_length(y_true=y_true, y_pred=y_pred)
    if y_true.size == 0:
        raise DataError("accuracy of zero samples is undefined")
    return float(np.mean(y_true == y_pred))


def per_class_accuracy(y_true: Any, y_pred: Any, n_classes: int | None = None) -> np.ndarray:
    """Recall of each class; NaN for a class with no test samples."""
    cm = confusion_matrix(y_true, y_pred, n_classes)
    support = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(cm) / np.maximum(support, 1), np.nan)


def attack_success_rate(y_true: Any, y_pred_triggered: Any, target_labels: Any) -> float:
    """Fraction of triggered inputs classified as the attacker wanted.

    Only inputs whose true class differs from their target label count: a target-class input
    classified as the target is no success of the attack (the usual definition, e.g.
    BackdoorBench). ``target_labels`` is an int (all-to-one) or one label per input (all-to-all).
    """
    y_true = check_labels(y_true, name="y_true")
    y_pred = check_labels(y_pred_triggered, len(y_true), name="y_pred_triggered")
    target = np.broadcast_to(np.asarray(target_labels, dtype=np.int64), y_true.shape)
    keep = y_true != target
    if not keep.any():
        raise DataError("attack success rate needs test inputs outside the target class")
    return float(np.mean(y_pred[keep] == target[keep]))


def backdoor_metrics(model: Any, attack: Any, X_test: np.ndarray, y_test: np.ndarray,
                     n_classes: int) -> dict[str, Any]:
    """Clean accuracy, ASR, per-class accuracy and confusion matrix of ``model`` under ``attack``."""
    pred = model.predict(X_test)
    wanted = attack.target_labels(y_test)
    keep = np.flatnonzero(y_test != wanted)
    pred_trig = model.predict(attack.apply_trigger(X_test[keep]))
    return {
        "clean_accuracy": clean_accuracy(y_test, pred),
        "attack_success_rate": attack_success_rate(y_test[keep], pred_trig, wanted[keep]),
        "per_class_accuracy": per_class_accuracy(y_test, pred, n_classes).tolist(),
        "confusion_matrix": confusion_matrix(y_test, pred, n_classes).tolist(),
    }
