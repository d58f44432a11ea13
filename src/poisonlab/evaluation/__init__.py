"""Evaluation: metrics, detection and fairness measures, red-team experiments.

The reproduction suite that uses them is :mod:`poisonlab.reproductions`.
"""

from .metrics import (
    attack_success_rate,
    backdoor_metrics,
    clean_accuracy,
    confusion_matrix,
    per_class_accuracy,
)

__all__ = ["attack_success_rate", "backdoor_metrics", "clean_accuracy", "confusion_matrix",
           "per_class_accuracy"]
