"""Model-stage defenses: inspect and repair a finished model (unit = class / model)."""

from .file_safety import FileScanReport, UnsafeModelError, load_state_dict, scan_model_file
from .fine_pruning import FinePruningResult, fine_prune
from .neural_cleanse import NeuralCleanse, anomaly_index

__all__ = ["FinePruningResult", "FileScanReport", "NeuralCleanse",
           "UnsafeModelError", "anomaly_index", "fine_prune", "load_state_dict", "scan_model_file"]
