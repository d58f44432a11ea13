"""The planted round every aggregator test starts from: ten honest clients, one client sending a
million times an honest update, one sending NaN."""

from dataclasses import dataclass

import numpy as np
import pytest


@dataclass(frozen=True)
class PlantedRound:
    U: np.ndarray          # (12, 50) updates, in the order the server receives them
    mu: np.ndarray         # the honest clients' true mean update
    honest: np.ndarray     # indices of the ten honest clients
    outlier: int           # the client sending 1e6 x an honest update
    nan: int               # the client sending NaN

    @property
    def honest_mean(self) -> np.ndarray:
        return self.U[self.honest].mean(axis=0)


def planted_round(seed: int = 0, *, outlier_scale: float = 1e6) -> PlantedRound:
    rng = np.random.default_rng(seed)
    mu = rng.normal(size=50)
    honest = mu + 0.1 * rng.normal(size=(10, 50))
    U = np.empty((12, 50))
    outlier, nan = 2, 7
    hon = np.array([i for i in range(12) if i not in (outlier, nan)])
    U[hon] = honest
    U[outlier] = outlier_scale * honest[3]
    U[nan] = honest[5]
    U[nan, 11] = np.nan
    return PlantedRound(U, mu, hon, outlier, nan)


@pytest.fixture
def planted() -> PlantedRound:
    return planted_round()


#: Parameters that let every registered rule run on the planted round (12 clients, 2 Byzantine).
RULE_PARAMS = {
    "fedavg": {}, "median": {}, "trimmed_mean": {"f": 2}, "krum": {"f": 2}, "multi_krum": {"f": 2},
    "bulyan": {"f": 2}, "geometric_median": {}, "centered_clipping": {"tau": 1.0, "n_iter": 20},
    "norm_clipping": {"max_norm": 10.0}, "fltrust": {}, "foolsgold": {}, "nnm": {"f": 2},
}


def make_rule(name: str):
    from poisonlab import registry

    return registry.create("aggregator", name, **RULE_PARAMS[name])


def rule_context(name: str, U: np.ndarray) -> dict:
    """FLTrust's server update: the mean of the finite updates (an honest-looking direction)."""
    if name != "fltrust":
        return {}
    finite = np.isfinite(U).all(axis=1)
    return {"server_update": np.median(U[finite], axis=0)}
