"""Federated aggregation rules: per round, unit = client.

:mod:`.aggregate` holds the maths as pure functions named after their papers; the classes are thin
protocol over it (:class:`~poisonlab.base.BaseAggregator`: non-finite updates dropped, weights
normalised, context checked, ``weights_`` / ``excluded_`` reported).
"""

from .basic import AggregationRule, CoordinateMedian, FedAvg
from .bulyan import Bulyan
from .centered_clipping import CenteredClipping
from .fltrust import FLTrust
from .foolsgold import FoolsGold
from .geometric_median import GeometricMedian
from .krum import Krum, MultiKrum
from .nnm import NNM
from .norm_clipping import NormClipping
from .trimmed_mean import TrimmedMean

__all__ = ["AggregationRule", "Bulyan", "CenteredClipping", "CoordinateMedian", "FLTrust", "FedAvg",
           "FoolsGold", "GeometricMedian", "Krum", "MultiKrum", "NNM", "NormClipping", "TrimmedMean"]
