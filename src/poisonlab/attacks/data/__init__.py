"""Attacks that poison the training set."""

from .badnets import BadNets
from .blended import Blended
from .label_flip import RandomLabelFlip, TargetedLabelFlip

__all__ = ["BadNets", "Blended", "RandomLabelFlip", "TargetedLabelFlip"]
