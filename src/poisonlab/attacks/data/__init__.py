"""Attacks that poison the training set."""

from .badnets import BadNets
from .blended import Blended
from .label_consistent import LabelConsistent
from .linear import AdversarialLabelFlip, SVMPoisoning
from .label_flip import RandomLabelFlip, TargetedLabelFlip
from .sig import SIG
from .wanet import WaNet

__all__ = ["AdversarialLabelFlip", "BadNets", "Blended", "LabelConsistent", "RandomLabelFlip", "SIG", "SVMPoisoning", "TargetedLabelFlip", "WaNet"]
