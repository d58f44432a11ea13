"""Data-stage detectors: score each training sample, before training."""

from .knn_label import KNNLabelConsistency

__all__ = ["KNNLabelConsistency"]
