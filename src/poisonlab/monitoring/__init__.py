"""Watch a model across versions: canary suites (:mod:`.canaries`) and behaviour drift between
two model versions (:mod:`.drift`). Library functions: they never write files except through
the explicit ``save_*`` functions, never print, and never import the run layer."""

from .canaries import (
    CanaryResult,
    CanarySuite,
    Probe,
    ProbeResult,
    build_canary_suite,
    load_canary_suite,
    run_canaries,
    save_canary_suite,
    trigger_families,
)
from .drift import DriftResult, compare_predictions, drift_between, flip_rates, ks_two_sample, newly_firing

__all__ = ["CanaryResult", "CanarySuite", "DriftResult", "Probe", "ProbeResult", "build_canary_suite",
           "compare_predictions", "drift_between", "flip_rates", "ks_two_sample", "load_canary_suite",
           "newly_firing", "run_canaries", "save_canary_suite", "trigger_families"]
