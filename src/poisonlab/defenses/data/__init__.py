"""Data-stage detectors: score each training sample before training (unit = sample).

Each takes features ``X`` (n, d) -- usually a model's penultimate layer -- and labels ``y``.
"""

from .activation_clustering import ActivationClustering
from .combine import RankCombiner
from .duplicates import DuplicateConflicts
from .knn_label import KNNLabelConsistency
from .label_issues import LabelIssues
from .robust_outliers import RobustOutliers
from .spectral import SpectralSignatures
from .spectre import Spectre

__all__ = ["ActivationClustering", "DuplicateConflicts", "KNNLabelConsistency", "LabelIssues",
           "RankCombiner", "RobustOutliers", "SpectralSignatures", "Spectre"]
