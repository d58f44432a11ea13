"""Federated aggregation rules: per round, unit = client."""

from .basic import CoordinateMedian, FedAvg

__all__ = ["CoordinateMedian", "FedAvg"]
