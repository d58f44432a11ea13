"""poisonlab: red-team and defend machine-learning training pipelines against data poisoning.

The package is laid out by pipeline stage: ``data`` -> ``attacks`` -> ``models`` -> ``defenses``
-> ``evaluation`` -> ``reports``. Heavy dependencies (torch) are imported where used.
"""

from .base import BackdoorAttack, BaseAggregator, BaseAttack, BaseDetector, BaseTrainer, PoisonResult, clone
from .exceptions import (
    AssumptionError,
    ChecksumError,
    DataError,
    InvalidParameterError,
    NotFittedError,
    PoisonlabError,
)

__version__ = "0.1.0"

__all__ = [
    "AssumptionError", "BackdoorAttack", "BaseAggregator", "BaseAttack", "BaseDetector", "BaseTrainer",
    "ChecksumError", "DataError", "InvalidParameterError", "NotFittedError", "PoisonResult",
    "PoisonlabError", "__version__", "clone",
]
