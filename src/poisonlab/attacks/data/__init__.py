"""Attacks that poison the training set."""

from .adversarial_poisoning import AdversarialPoisoning
from .audio import AudioTrigger
from .badnets import BadNets
from .blended import Blended
from .dictionary import DictionaryAttack
from .bias import SubgroupLabelFlip
from .feature_collision import FeatureCollision
from .gradient_matching import GradientMatching
from .label_consistent import LabelConsistent
from .linear import AdversarialLabelFlip, SVMPoisoning
from .label_flip import RandomLabelFlip, TargetedLabelFlip
from .sig import SIG
from .tabular import TabularTrigger
from .unlearnable import Unlearnable
from .text import CharTrigger, CleanLabelRareWord, RareWordTrigger, SentenceTrigger
from .wanet import WaNet

__all__ = ["AdversarialLabelFlip", "AdversarialPoisoning", "AudioTrigger", "BadNets", "Blended", "CharTrigger", "CleanLabelRareWord", "DictionaryAttack", "FeatureCollision", "GradientMatching", "LabelConsistent", "RandomLabelFlip", "RareWordTrigger", "SentenceTrigger", "SIG", "SVMPoisoning", "SubgroupLabelFlip", "TabularTrigger", "TargetedLabelFlip", "Unlearnable", "WaNet"]
