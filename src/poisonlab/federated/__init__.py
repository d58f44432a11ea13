"""Federated learning: client partitioning, the simulation loop (all sampled clients of a round
trained at once), and the Flower adapters.

* :func:`partition_clients` (:mod:`~poisonlab.federated.partition`) -- IID, Dirichlet label skew,
  classes per client;
* :func:`run_federation` (:mod:`~poisonlab.federated.simulation`) -- rounds of sampling, local
  training, update poisoning and robust aggregation, measuring accuracy and backdoor accuracy;
  :func:`poison_clients` applies a data attack to the malicious clients beforehand.

Torch is imported when a simulation runs, not when this package is imported.
"""

from .partition import SCHEMES, dirichlet, iid, partition_clients, shards
from .simulation import (
    MODES,
    FederationConfig,
    FederationResult,
    RoundResult,
    poison_clients,
    run_federation,
)

__all__ = [
    "FederationConfig", "FederationResult", "MODES", "RoundResult", "SCHEMES", "dirichlet", "iid",
    "partition_clients", "poison_clients", "run_federation", "shards",
]
