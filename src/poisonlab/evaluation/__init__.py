"""Evaluation: metrics, red-team experiments and the reproduction suite."""

from .metrics import (
    attack_success_rate,
    backdoor_metrics,
    clean_accuracy,
    confusion_matrix,
    per_class_accuracy,
)

__all__ = ["attack_success_rate", "backdoor_metrics", "clean_accuracy", "confusion_matrix",
           "per_class_accuracy"]
