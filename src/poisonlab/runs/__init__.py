"""The run layer: scenarios, the runner, typed events, run records, the grid cache, backends.

Everything a user runs -- from the CLI or from Python -- is a :class:`Scenario` executed by the
:class:`Runner`, which emits typed events (:mod:`poisonlab.runs.events`) and returns a versioned
run record (:mod:`poisonlab.runs.record`). Workflows (the data scan, model scan-and-repair, the
monitor, attack sidecars) live here too, below the CLI and above the methods they compose.
"""

from .events import Event, EventBus
from .record import fingerprint, make_record
from .runner import BACKENDS, Runner, run_scenario
from .scenario import Scenario, ScenarioError, config_hash, expand, load_scenario

__all__ = ["BACKENDS", "Event", "EventBus", "Runner", "Scenario", "ScenarioError", "config_hash",
           "expand", "fingerprint", "load_scenario", "make_record", "run_scenario"]
