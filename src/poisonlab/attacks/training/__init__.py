"""Attacks on the training procedure: the data stays clean, the process is corrupted."""

from .procedure import SABOTAGES, ValidationPoisoning, sabotage

__all__ = ["SABOTAGES", "ValidationPoisoning", "sabotage"]
