"""The Flower adapter (poisonlab.federated.flower): flat vectors and back, the strategy's output and
history, the malicious client wrapper, and a real Flower simulation on Ray in which Multi-Krum
holds against two sign-flipping nodes and FedAvg does not."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")  # read when flwr is first imported
pytest.importorskip("flwr")

from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict  # noqa: E402
from flwr.clientapp import ClientApp  # noqa: E402
from flwr.supercore.task_identity import TaskIdentity  # noqa: E402

from poisonlab import registry  # noqa: E402
from poisonlab.base import BaseAggregator, BaseUpdateAttack  # noqa: E402
from poisonlab.exceptions import DataError, InvalidParameterError  # noqa: E402
from poisonlab.federated.flower import (  # noqa: E402
    EXCLUDED_KEY,
    KEPT_KEY,
    PoisonlabStrategy,
    RoundRecord,
    flatten_arrays,
    malicious_client_app,
    unflatten_arrays,
)


def _model_arrays(seed=0):
    """A 64-16-10 MLP's state in torch's key order (float32) plus an int64 counter."""
    rng = np.random.default_rng(seed)
    return {
        "0.weight": (rng.standard_normal((16, 64)) / 8).astype(np.float32),
        "0.bias": np.zeros(16, dtype=np.float32),
        "2.weight": (rng.standard_normal((10, 16)) / 4).astype(np.float32),
        "2.bias": np.zeros(10, dtype=np.float32),
        "steps": np.array(7, dtype=np.int64),
    }


def _record(arrays):
    return ArrayRecord({k: Array(np.asarray(v)) for k, v in arrays.items()})


# --- flat vectors ------------------------------------------------------------------------------

def test_flatten_unflatten_round_trip_keeps_keys_shapes_dtypes_and_values():
    arrays = {**_model_arrays(), "mask": np.array([True, False, True]),
              "double": np.arange(6, dtype=np.float64).reshape(2, 3)}
    for source in (arrays, _record(arrays)):
        vector, spec = flatten_arrays(source)
        assert vector.dtype == np.float64
        assert vector.shape == (16 * 64 + 16 + 10 * 16 + 10 + 1 + 3 + 6,) == (spec.n_params,)
        back = unflatten_arrays(vector, spec)
        assert list(back) == list(arrays)
        for key, value in arrays.items():
            assert back[key].dtype == value.dtype and back[key].shape == value.shape, key
            np.testing.assert_array_equal(back[key], value)


def test_flatten_follows_the_given_layout_whatever_the_key_order():
    arrays = _model_arrays()
    vector, spec = flatten_arrays(arrays)
    shuffled = {k: arrays[k] for k in reversed(list(arrays))}
    again, same = flatten_arrays(shuffled, spec)
    assert same is spec
    np.testing.assert_array_equal(again, vector)


def test_flatten_torch_state_dict():
    torch = pytest.importorskip("torch")
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    vector, spec = flatten_arrays(model.state_dict())
    assert spec.keys == tuple(model.state_dict())
    assert spec.dtypes[-1] == np.int64  # num_batches_tracked
    back = unflatten_arrays(vector, spec)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in back.items()})


def test_flatten_refuses_a_mismatched_layout():
    vector, spec = flatten_arrays(_model_arrays())
    missing = dict(_model_arrays())
    del missing["steps"]
    with pytest.raises(DataError, match=r"missing \['steps'\]"):
        flatten_arrays(missing, spec)
    wrong = {**_model_arrays(), "0.bias": np.zeros(17, dtype=np.float32)}
    with pytest.raises(DataError, match="'0.bias' has shape"):
        flatten_arrays(wrong, spec)
    with pytest.raises(DataError, match="dtype"):
        flatten_arrays({"names": np.array(["a", "b"])})


def test_unflatten_refuses_wrong_length_and_overflow():
    vector, spec = flatten_arrays(_model_arrays())
    with pytest.raises(DataError, match="parameters"):
        unflatten_arrays(vector[:-1], spec)
    huge = vector.copy()
    huge[0] = 1e300
    with pytest.raises(DataError, match="overflows float32"):
        unflatten_arrays(huge, spec)
    nan_count = vector.copy()
    nan_count[-1] = np.nan
    with pytest.raises(DataError, match="'steps'"):
        unflatten_arrays(nan_count, spec)


def test_module_imports_without_flwr():
    code = textwrap.dedent("""
        import sys
        sys.modules["flwr"] = None  # as if flwr were not installed
        import numpy as np
        import poisonlab.federated.flower as fl
        v, spec = fl.flatten_arrays({"w": np.ones(2)})
        assert v.tolist() == [1.0, 1.0]
        try:
            fl.PoisonlabStrategy
        except ImportError as exc:
            assert "poisonlab[flower]" in str(exc), exc
        else:
            raise AssertionError("PoisonlabStrategy without flwr")
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


# --- the strategy, round by round --------------------------------------------------------------

class _Grid:
    """The part of Flower's Grid that configure_train uses. Flower's node sampling polls it once a
    second until enough nodes are connected: fail instead of waiting forever."""

    def __init__(self, node_ids):
        self.node_ids = list(node_ids)
        self.calls = 0

    def get_node_ids(self):
        self.calls += 1
        if self.calls > 4:
            raise AssertionError(f"Flower waits for more than the {len(self.node_ids)} test nodes "
                                 "(min_available_nodes / min_train_nodes too high)")
        return self.node_ids


@pytest.fixture
def task_identity(monkeypatch):
    """What a Flower process sets before messages can be created (run_simulation does the same)."""
    monkeypatch.setattr(TaskIdentity, "_run_id", 1)
    monkeypatch.setattr(TaskIdentity, "_task_id", 1)
    monkeypatch.setattr(TaskIdentity, "_node_id", 0)


def _round(strategy, arrays, updates, num_examples, server_round=1):
    """configure_train, then replies carrying ``arrays + update`` (a dict, or raw ArrayRecord)."""
    node_ids = list(range(101, 101 + len(updates)))
    messages = list(strategy.configure_train(server_round, _record(arrays), ConfigRecord(), _Grid(node_ids)))
    by_node = {m.metadata.dst_node_id: m for m in messages}
    replies = []
    for node, update, n in zip(node_ids, updates, num_examples):
        if isinstance(update, ArrayRecord):
            out = update
        else:
            out = _record({k: (np.asarray(arrays[k]) + update[k]).astype(np.asarray(arrays[k]).dtype)
                           for k in arrays})
        content = RecordDict({"arrays": out, "metrics": MetricRecord({"num-examples": n, "loss": float(n)})})
        replies.append(Message(content, reply_to=by_node[node]))
    return node_ids, strategy.aggregate_train(server_round, replies)


def _constant_update(arrays, value):
    return {k: np.full(np.shape(v), value) for k, v in arrays.items()}


def test_strategy_is_a_flower_fedavg():
    from flwr.serverapp.strategy import FedAvg

    strategy = PoisonlabStrategy("median", fraction_evaluate=0.0, min_available_nodes=3)
    assert isinstance(strategy, FedAvg)
    assert strategy.min_available_nodes == 3 and strategy.fraction_evaluate == 0.0
    assert type(strategy.aggregator).__name__ == "CoordinateMedian"


def test_fedavg_through_the_adapter_is_the_weighted_mean_with_same_keys_shapes_dtypes(task_identity):
    arrays = {k: v for k, v in _model_arrays().items() if k != "steps"}
    strategy = PoisonlabStrategy("fedavg", fraction_evaluate=0.0)
    updates = [_constant_update(arrays, 0.5), _constant_update(arrays, 1.0), _constant_update(arrays, 2.0)]
    node_ids, (out, metrics) = _round(strategy, arrays, updates, num_examples=[1, 1, 2])
    assert isinstance(out, ArrayRecord)
    assert list(out.keys()) == list(arrays)
    for key, value in arrays.items():
        got = out[key].numpy()
        assert got.dtype == value.dtype and got.shape == value.shape, key
        # (0.5 * 1 + 1.0 * 1 + 2.0 * 2) / 4 = 1.375
        np.testing.assert_allclose(got, value + 1.375, rtol=0, atol=1e-6)
    assert metrics[EXCLUDED_KEY] == 0 and metrics[KEPT_KEY] == 3
    assert metrics["loss"] == pytest.approx((1 * 1 + 1 * 1 + 2 * 2) / 4)  # Flower's weighted mean
    (record,) = strategy.history
    assert isinstance(record, RoundRecord)
    assert record.server_round == 1 and record.node_ids == tuple(node_ids)
    assert record.excluded == () and record.malformed == () and record.down_weighted == ()
    assert record.weights == pytest.approx((0.25, 0.25, 0.5))


def test_multi_krum_through_the_adapter_excludes_the_outliers_by_node_id(task_identity):
    arrays = _model_arrays()
    rng = np.random.default_rng(0)
    honest = [{k: 0.01 * rng.standard_normal(np.shape(v)) + 0.1 for k, v in arrays.items()} for _ in range(5)]
    updates = [*honest, _constant_update(arrays, -5.0), _constant_update(arrays, 50.0)]
    strategy = PoisonlabStrategy(registry.create("aggregator", "multi_krum", f=2), fraction_evaluate=0.0)
    node_ids, (out, metrics) = _round(strategy, arrays, updates, num_examples=[10] * 7)
    assert strategy.history[0].excluded == tuple(node_ids[5:])
    assert metrics[EXCLUDED_KEY] == 2 and metrics[KEPT_KEY] == 5
    assert out["steps"].numpy().dtype == np.int64
    step = out["0.bias"].numpy() - arrays["0.bias"]
    assert np.all(np.abs(step - 0.1) < 0.05)  # the honest mean, untouched by -5 and +50


def test_malformed_and_non_finite_replies_are_excluded_and_recorded(task_identity):
    arrays = {k: v for k, v in _model_arrays().items() if k != "steps"}
    bad_shape = _record({**arrays, "0.bias": np.zeros(3, dtype=np.float32)})
    nan = _constant_update(arrays, 0.0)
    nan["2.bias"] = np.full(10, np.nan)
    updates = [_constant_update(arrays, 1.0), _constant_update(arrays, 1.0), bad_shape, nan,
               _constant_update(arrays, 1.0)]
    strategy = PoisonlabStrategy("fedavg", fraction_evaluate=0.0)
    node_ids, (out, metrics) = _round(strategy, arrays, updates, num_examples=[5, 5, 5, 5, 5])
    record = strategy.history[0]
    assert record.malformed == (node_ids[2],)
    assert record.excluded == (node_ids[2], node_ids[3])
    assert metrics[EXCLUDED_KEY] == 2
    np.testing.assert_allclose(out["0.weight"].numpy(), arrays["0.weight"] + 1.0, atol=1e-6)


def test_an_inconsistent_reply_is_excluded_not_fatal(task_identity):
    arrays = {"w": np.zeros(4, dtype=np.float32)}
    strategy = PoisonlabStrategy("fedavg", fraction_evaluate=0.0)
    node_ids = [1, 2, 3, 4]
    messages = list(strategy.configure_train(1, _record(arrays), ConfigRecord(), _Grid(node_ids)))
    by_node = {m.metadata.dst_node_id: m for m in messages}
    good = _record({"w": np.ones(4, dtype=np.float32)})
    contents = {
        1: RecordDict({"arrays": good, "metrics": MetricRecord({"num-examples": 2})}),
        2: RecordDict({"arrays": good, "metrics": MetricRecord({"num-examples": 2})}),
        3: RecordDict({"arrays": good, "metrics": MetricRecord({"samples": 2})}),  # no num-examples
        4: RecordDict({"arrays": good, "extra": _record({"w": np.ones(4, dtype=np.float32)}),
                       "metrics": MetricRecord({"num-examples": 2})}),  # two ArrayRecords
    }
    replies = [Message(contents[n], reply_to=by_node[n]) for n in node_ids]
    out, metrics = strategy.aggregate_train(1, replies)
    assert strategy.history[0].malformed == (3, 4) and strategy.history[0].excluded == (3, 4)
    assert metrics[EXCLUDED_KEY] == 2
    np.testing.assert_allclose(out["w"].numpy(), 1.0)


def test_aggregate_train_needs_configure_train_of_the_same_round(task_identity):
    arrays = {"w": np.zeros(2, dtype=np.float32)}
    strategy = PoisonlabStrategy("fedavg", fraction_evaluate=0.0)
    messages = strategy.configure_train(1, _record(arrays), ConfigRecord(), _Grid([5, 6]))
    replies = [Message(RecordDict({"arrays": _record(arrays), "metrics": MetricRecord({"num-examples": 1})}),
                       reply_to=m) for m in messages]
    with pytest.raises(DataError, match="without configure_train for that round"):
        strategy.aggregate_train(2, replies)


def test_a_bad_num_examples_counts_as_zero(task_identity):
    arrays = {"w": np.zeros(4, dtype=np.float32)}
    updates = [_constant_update(arrays, 1.0), _constant_update(arrays, 1.0), _constant_update(arrays, 1e6)]
    strategy = PoisonlabStrategy("fedavg", fraction_evaluate=0.0)
    node_ids, (out, _) = _round(strategy, arrays, updates, num_examples=[3, 3, -1e9])
    assert strategy.history[0].excluded == (node_ids[2],)
    np.testing.assert_allclose(out["w"].numpy(), 1.0)


def test_history_restarts_with_a_new_run(task_identity):
    arrays = {"w": np.zeros(2, dtype=np.float32)}
    strategy = PoisonlabStrategy("fedavg", fraction_evaluate=0.0)
    for server_round in (1, 2):
        _round(strategy, arrays, [_constant_update(arrays, 1.0)] * 2, [1, 1], server_round=server_round)
    assert [r.server_round for r in strategy.history] == [1, 2]
    _round(strategy, arrays, [_constant_update(arrays, 1.0)] * 2, [1, 1], server_round=1)
    assert [r.server_round for r in strategy.history] == [1]


class _TrustServer(BaseAggregator):
    """Test aggregator that needs the server's update: returns it (ignoring the clients)."""

    needs = ("server_update",)
    _parameter_constraints: dict = {}

    def __init__(self):
        pass

    def _aggregate(self, U, w, *, server_update):
        return np.asarray(server_update, dtype=np.float64), w.copy()


def test_server_update_fn_is_required_and_used(task_identity):
    with pytest.raises(InvalidParameterError, match="server_update_fn"):
        PoisonlabStrategy(_TrustServer())
    arrays = {"w": np.zeros(3, dtype=np.float32), "b": np.ones(1, dtype=np.float32)}
    seen = []

    def server_update_fn(global_arrays):
        seen.append(sorted(global_arrays.keys()))
        return {"w": np.full(3, 0.25), "b": np.array([2.0])}

    strategy = PoisonlabStrategy(_TrustServer(), server_update_fn=server_update_fn, fraction_evaluate=0.0)
    _, (out, _) = _round(strategy, arrays, [_constant_update(arrays, 9.0)] * 2, [1, 1])
    assert seen == [["b", "w"]]
    np.testing.assert_allclose(out["w"].numpy(), 0.25)
    np.testing.assert_allclose(out["b"].numpy(), 3.0)


def test_strategy_refuses_what_is_not_an_aggregator():
    with pytest.raises(InvalidParameterError, match="aggregator must be a poisonlab aggregator"):
        PoisonlabStrategy(lambda updates: updates.mean(0))
    with pytest.raises(InvalidParameterError, match="unknown|not registered|no aggregator"):
        PoisonlabStrategy("no_such_rule")


# --- the malicious client wrapper ---------------------------------------------------------------

def _train_plus_one(msg, context):
    """An honest train function: every array + 1."""
    arrays = msg.content["arrays"]
    out = _record({k: v.numpy() + np.ones((), dtype=v.numpy().dtype) for k, v in arrays.items()})
    return Message(RecordDict({"arrays": out, "metrics": MetricRecord({"num-examples": 10})}), reply_to=msg)


def _client_call(app, partition, message_type="train", node_config=None):
    from flwr.app import Metadata

    arrays = {"w": np.array([1.0, -2.0, 3.0], dtype=np.float32), "count": np.array([4], dtype=np.int64)}
    metadata = Metadata(run_id=1, message_id="m", src_node_id=0, dst_node_id=7, reply_to_message_id="",
                        group_id="1", created_at=0.0, ttl=3600.0, message_type=message_type)
    msg = Message(RecordDict({"arrays": _record(arrays), "config": ConfigRecord()}), metadata=metadata)
    config = {"partition-id": partition, "num-partitions": 4} if node_config is None else node_config
    ctx = Context(run_id=1, node_id=7, node_config=config, state=RecordDict(), run_config={})
    return app(message=msg, context=ctx)


@pytest.mark.parametrize("as_app", [False, True])
def test_malicious_nodes_send_the_crafted_update_others_pass_through(as_app):
    if as_app:
        honest = ClientApp()
        honest.train()(_train_plus_one)
    else:
        honest = _train_plus_one
    attack = registry.create("attack", "sign_flip", scale=3.0)
    app = malicious_client_app(honest, attack, malicious_partitions=[1, 3])
    assert isinstance(app, ClientApp)
    bad = _client_call(app, partition=1)
    # own update = +1 everywhere; sign flip x3 -> received - 3
    np.testing.assert_allclose(bad.content["arrays"]["w"].numpy(), [-2.0, -5.0, 0.0])
    assert bad.content["arrays"]["w"].numpy().dtype == np.float32
    assert bad.content["arrays"]["count"].numpy().tolist() == [1]
    assert bad.content["arrays"]["count"].numpy().dtype == np.int64
    assert bad.content["metrics"]["num-examples"] == 10
    good = _client_call(app, partition=2)
    np.testing.assert_allclose(good.content["arrays"]["w"].numpy(), [2.0, -1.0, 4.0])


def test_non_train_messages_pass_through():
    honest = ClientApp()
    honest.train()(_train_plus_one)

    @honest.evaluate()
    def evaluate(msg, context):
        return Message(RecordDict({"metrics": MetricRecord({"num-examples": 1, "accuracy": 0.5})}),
                       reply_to=msg)

    app = malicious_client_app(honest, registry.create("attack", "sign_flip"), malicious_partitions={0})
    reply = _client_call(app, partition=0, message_type="evaluate")
    assert reply.content["metrics"]["accuracy"] == 0.5


def test_the_attack_gets_the_number_of_partitions():
    seen = []

    class _Record(BaseUpdateAttack):
        knowledge = "own"
        _parameter_constraints: dict = {"random_state": ["random_state"]}

        def __init__(self, *, random_state=None):
            self.random_state = random_state

        def _craft(self, own, *, honest, n_clients, rng):
            seen.append(n_clients)
            return own

    app = malicious_client_app(_train_plus_one, _Record(), malicious_partitions={0})
    _client_call(app, partition=0)
    app = malicious_client_app(_train_plus_one, _Record(), malicious_partitions={0}, n_clients=9)
    _client_call(app, partition=0)
    assert seen == [4, 9]


def test_a_node_without_partition_id_is_refused():
    app = malicious_client_app(_train_plus_one, registry.create("attack", "sign_flip"), malicious_partitions={0})
    with pytest.raises(DataError, match="partition-id"):
        _client_call(app, partition=0, node_config={"num-partitions": 4})


class _Omniscient(BaseUpdateAttack):
    """Test attack that needs the honest updates."""

    knowledge = "honest"
    _parameter_constraints: dict = {"random_state": ["random_state"]}

    def __init__(self, *, random_state=None):
        self.random_state = random_state

    def _craft(self, own, *, honest, n_clients, rng):
        return -honest.mean(axis=0, keepdims=True).repeat(len(own), axis=0)


@pytest.mark.parametrize("name", ["test-omniscient", "alie", "ipm"])
def test_an_attack_needing_honest_updates_is_refused(name):
    attack = _Omniscient() if name == "test-omniscient" else registry.create("attack", name)
    with pytest.raises(DataError, match="which a Flower client does not see"):
        malicious_client_app(_train_plus_one, attack, malicious_partitions={0})


@pytest.mark.parametrize("kwargs, match", [
    ({"attack": "sign_flip"}, "attack must be a poisonlab update attack"),
    ({"malicious_partitions": []}, "empty"),
    ({"malicious_partitions": [-1]}, "non-negative"),
    ({"malicious_partitions": 0}, "collection"),
    ({"n_clients": 0}, "n_clients"),
    ({"honest": 3}, "ClientApp or a train function"),
])
def test_malicious_client_app_refuses_bad_arguments(kwargs, match):
    args = {"honest": _train_plus_one, "attack": registry.create("attack", "sign_flip"),
            "malicious_partitions": {0}, **kwargs}
    honest = args.pop("honest")
    attack = args.pop("attack")
    with pytest.raises(InvalidParameterError, match=match):
        malicious_client_app(honest, attack, **args)


# --- a real Flower federation on Ray ------------------------------------------------------------

N_NODES = 7  # Krum needs n > 2f + 2: with f = 2 malicious nodes, at least 7
MALICIOUS = (0, 1)
ROUNDS = 5
LOCAL_STEPS = 30
LR = 0.5


class _Trainer:
    """The honest client: full-batch gradient descent on its IID share of digits (a 64-32-10 MLP).

    Deterministic (no shuffling, the model starts from the arrays received), and it reports its
    partition id among its metrics so the test can tell which nodes the strategy kept.
    """

    def __init__(self, X, y, parts):
        self.X, self.y, self.parts = X, y, parts

    def __call__(self, msg, context):
        import torch

        torch.set_num_threads(1)
        pid = int(context.node_config["partition-id"])
        idx = self.parts[pid]
        model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
        model.load_state_dict(msg.content["arrays"].to_torch_state_dict())
        opt = torch.optim.SGD(model.parameters(), lr=LR)
        X, y = torch.from_numpy(self.X[idx]), torch.from_numpy(self.y[idx])
        for _ in range(LOCAL_STEPS):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(X), y)
            loss.backward()
            opt.step()
        metrics = MetricRecord({"num-examples": len(idx), "loss": float(loss), "partition": pid})
        return Message(RecordDict({"arrays": ArrayRecord(model.state_dict()), "metrics": metrics}),
                       reply_to=msg)


class _Dispatch:
    """One ClientApp for the three runs of one simulation: the train config says whether the
    malicious partitions attack in this run."""

    def __init__(self, honest, attacked):
        self.honest, self.attacked = honest, attacked

    def __call__(self, msg, context):
        app = self.attacked if int(msg.content["config"]["attacked"]) else self.honest
        return app(message=msg, context=context)


def _kept_partitions(contents, weighted_by_key):
    """train_metrics_aggr_fn: which partitions the aggregator kept this round."""
    return MetricRecord({"kept-partitions": sorted(int(c["metrics"]["partition"]) for c in contents)})


def _initial_arrays():
    rng = np.random.default_rng(0)
    return {
        "0.weight": (rng.standard_normal((32, 64)) / 8).astype(np.float32),
        "0.bias": np.zeros(32, dtype=np.float32),
        "2.weight": (rng.standard_normal((10, 32)) / np.sqrt(32)).astype(np.float32),
        "2.bias": np.zeros(10, dtype=np.float32),
    }


def _accuracy(arrays, X, y):
    a = {k: v.numpy().astype(np.float64) for k, v in arrays.items()}
    hidden = np.maximum(X @ a["0.weight"].T + a["0.bias"], 0.0)
    return float(((hidden @ a["2.weight"].T + a["2.bias"]).argmax(1) == y).mean())


@pytest.fixture(scope="module")
def federation():
    """One Flower simulation (7 nodes on Ray) running three strategies one after the other:
    clean FedAvg; Multi-Krum (f=2) and FedAvg with nodes 0 and 1 flipping their updates x10."""
    pytest.importorskip("ray")
    pytest.importorskip("torch")
    from flwr.serverapp import ServerApp
    from flwr.simulation import run_simulation

    from poisonlab.data import load_dataset
    from poisonlab.federated import partition_clients

    splits = load_dataset("digits")
    X = splits.train.X.reshape(len(splits.train.X), -1).astype(np.float32)
    Xte = splits.test.X.reshape(len(splits.test.X), -1).astype(np.float64)
    parts = partition_clients(splits.train.y, N_NODES, "iid", random_state=0)
    honest = ClientApp()
    honest.train()(_Trainer(X, splits.train.y, parts))
    attack = registry.create("attack", "sign_flip", scale=10.0)
    attacked = malicious_client_app(honest, attack, malicious_partitions=MALICIOUS)
    client_app = ClientApp()
    client_app.train()(_Dispatch(honest, attacked))

    runs = {
        "clean": (PoisonlabStrategy("fedavg", fraction_evaluate=0.0, min_available_nodes=N_NODES,
                                    train_metrics_aggr_fn=_kept_partitions), 0),
        "multi_krum": (PoisonlabStrategy(registry.create("aggregator", "multi_krum", f=2),
                                         fraction_evaluate=0.0, min_available_nodes=N_NODES,
                                         train_metrics_aggr_fn=_kept_partitions), 1),
        "fedavg": (PoisonlabStrategy("fedavg", fraction_evaluate=0.0, min_available_nodes=N_NODES,
                                     train_metrics_aggr_fn=_kept_partitions), 1),
    }
    results = {}
    server_app = ServerApp()

    @server_app.main()
    def main(grid, context):
        # Flower samples from the nodes connected when round 1 starts; on a busy machine its own
        # wait for min_available_nodes gave up with 2 of 7 connected (a CI run, 2026-12-02), so
        # wait here until every node is up
        import time as _time

        deadline = _time.monotonic() + 180
        while len(list(grid.get_node_ids())) < N_NODES and _time.monotonic() < deadline:
            _time.sleep(0.2)
        for name, (strategy, attacked_flag) in runs.items():
            results[name] = strategy.start(grid=grid, initial_arrays=_record(_initial_arrays()),
                                           num_rounds=ROUNDS, timeout=120,
                                           train_config=ConfigRecord({"attacked": attacked_flag}))

    # One Ray worker: on 2 busy cores it starts faster than two, and a round is ~0.3 s anyway.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")  # silences a Ray FutureWarning
        run_simulation(server_app=server_app, client_app=client_app, num_supernodes=N_NODES,
                       backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0},
                                       "init_args": {"num_cpus": 1, "include_dashboard": False}})
    assert set(results) == set(runs), "the ServerApp did not finish every run"
    return {name: (_accuracy(results[name].arrays, Xte, splits.test.y), runs[name][0], results[name])
            for name in runs}


@pytest.mark.slow
def test_clean_federation_learns(federation):
    acc, strategy, result = federation["clean"]
    assert acc >= 0.90
    assert len(strategy.history) == ROUNDS
    assert all(r.excluded == () and len(r.node_ids) == N_NODES for r in strategy.history)
    assert all(result.train_metrics_clientapp[r]["kept-partitions"] == list(range(N_NODES))
               for r in range(1, ROUNDS + 1))


@pytest.mark.slow
def test_multi_krum_holds_against_two_sign_flippers(federation):
    clean, _, _ = federation["clean"]
    acc, strategy, result = federation["multi_krum"]
    assert acc >= clean - 0.02, f"Multi-Krum {acc:.3f} vs clean {clean:.3f}"
    honest = [p for p in range(N_NODES) if p not in MALICIOUS]
    for r in range(1, ROUNDS + 1):
        assert result.train_metrics_clientapp[r]["kept-partitions"] == honest, r
        assert result.train_metrics_clientapp[r][EXCLUDED_KEY] == len(MALICIOUS)
    assert all(len(r.excluded) == len(MALICIOUS) for r in strategy.history)
    assert len({frozenset(r.excluded) for r in strategy.history}) == 1  # the same two nodes each round


@pytest.mark.slow
def test_fedavg_breaks_under_two_sign_flippers(federation):
    clean, _, _ = federation["clean"]
    acc, strategy, _ = federation["fedavg"]
    assert acc < clean - 0.10, f"FedAvg {acc:.3f} vs clean {clean:.3f}"
    assert all(r.excluded == () for r in strategy.history)
