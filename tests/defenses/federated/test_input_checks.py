"""Bad input to every registered aggregation rule fails with a one-line poisonlab error."""

import numpy as np
import pytest

from poisonlab import registry
from poisonlab.exceptions import DataError, InvalidParameterError, PoisonlabError

from .conftest import RULE_PARAMS, make_rule, planted_round, rule_context

NAMES = sorted(RULE_PARAMS)


def test_every_registered_rule_is_covered():
    assert set(registry.available("aggregator")) == set(RULE_PARAMS)


def _fails(name, updates, *, weights=None, error=DataError, match=None, **extra):
    U = np.asarray(planted_round().U[:, :5]) if updates is None else updates
    ctx = {**rule_context(name, np.nan_to_num(np.atleast_2d(np.asarray(U, dtype=float)))), **extra} \
        if isinstance(U, np.ndarray) and U.ndim == 2 and U.shape[0] else {**extra}
    if name == "fltrust" and "server_update" not in ctx:
        ctx["server_update"] = np.ones(5)
    with pytest.raises(error, match=match) as info:
        make_rule(name).aggregate(U, weights, **ctx)
    assert isinstance(info.value, PoisonlabError)
    assert "\n" not in str(info.value), f"a multi-line message: {info.value}"


@pytest.mark.parametrize("name", NAMES)
def test_zero_clients(name):
    _fails(name, np.empty((0, 5)), match="no client")


@pytest.mark.parametrize("name", NAMES)
def test_not_a_matrix_and_ragged_updates(name):
    _fails(name, np.ones(5), match="2-D")
    _fails(name, [[1.0, 2.0], [3.0]], match="rectangular")


@pytest.mark.parametrize("name", NAMES)
def test_weights_of_the_wrong_shape(name):
    U = planted_round().U[planted_round().honest][:, :5]
    _fails(name, U, weights=np.ones(3), match="weights has shape")


@pytest.mark.parametrize("name", NAMES)
def test_negative_or_all_zero_weights(name):
    U = planted_round().U[planted_round().honest][:, :5]
    w = np.ones(len(U))
    w[1] = -1
    _fails(name, U, weights=w, match="non-negative")
    _fails(name, U, weights=np.zeros(len(U)), match="positive sum")
    _fails(name, U, weights=["a"] * len(U), match="weights must be")


@pytest.mark.parametrize("name", NAMES)
def test_every_update_nonfinite(name):
    _fails(name, np.full((10, 5), np.nan), match="NaN or infinite")


@pytest.mark.parametrize("name", NAMES)
def test_unknown_context(name):
    U = planted_round().U[planted_round().honest][:, :5]
    _fails(name, U, error=InvalidParameterError, match="does not take", round_number=3)


def test_fltrust_needs_a_usable_server_update():
    from poisonlab.defenses.federated import FLTrust

    U = planted_round().U[planted_round().honest][:, :5]
    for kwargs, error, match in [({}, InvalidParameterError, r"needs keyword argument\(s\) \['server_update'\]"),
                                 ({"server_update": np.ones(4)}, DataError, "shape"),
                                 ({"server_update": np.zeros(5)}, DataError, "norm 0"),
                                 ({"server_update": np.r_[np.nan, np.ones(4)]}, DataError, "NaN"),
                                 ({"server_update": "up"}, DataError, "numeric")]:
        with pytest.raises(error, match=match) as info:
            FLTrust().aggregate(U, **kwargs)
        assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["foolsgold", "nnm"])
def test_client_ids_must_be_one_unique_id_per_update(name):
    U = planted_round().U[planted_round().honest][:, :5]
    _fails(name, U, match="client_ids has shape", client_ids=[1, 2, 3])
    _fails(name, U, match="unique", client_ids=[0] * len(U))
