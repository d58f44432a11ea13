"""Inference-stage detectors: score each input at run time (unit = input)."""

from .strip import STRIP

__all__ = ["STRIP"]
