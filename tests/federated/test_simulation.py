"""The federated simulation: accuracy floors, the stacked training seen through the whole loop,
seeds, Byzantine clients, dropouts, the aggregator's context, detection metrics, bad inputs."""

import dataclasses

import numpy as np
import pytest
import torch

from poisonlab.attacks.data import TargetedLabelFlip
from poisonlab.base import BaseAggregator, BaseUpdateAttack
from poisonlab.data import load_dataset
from poisonlab.defenses.federated import CoordinateMedian, FedAvg
from poisonlab.exceptions import DataError, InvalidParameterError
from poisonlab.federated import (
    FederationConfig,
    partition_clients,
    poison_clients,
    run_federation,
)
from poisonlab.models import MLP, ModelSpec


@pytest.fixture(scope="module")
def digits():
    s = load_dataset("digits")
    parts = partition_clients(s.train.y, 10, random_state=0)
    clients = [(s.train.X[p], s.train.y[p]) for p in parts]
    return clients, (s.test.X, s.test.y)


def mlp(spec):
    return MLP(int(np.prod(spec.input_shape)), spec.n_classes, hidden=(32,))


def blobs(n_clients=4, n=40, seed=0, d=5, sizes=None):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=3.0, size=(3, d))
    out = []
    for k in range(n_clients):
        m = n if sizes is None else sizes[k]
        y = np.arange(m) % 3
        out.append(((centers[y] + rng.normal(size=(m, d))).astype(np.float32), y))
    yt = np.arange(60) % 3
    return out, ((centers[yt] + rng.normal(size=(60, d))).astype(np.float32), yt)


def small(spec):
    return MLP(int(np.prod(spec.input_shape)), spec.n_classes, hidden=(8,))


class Recorder(BaseAggregator):
    """FedAvg that keeps every round's updates and context."""

    accepts = ("client_ids", "server_update")
    _parameter_constraints: dict = {}

    def __init__(self):
        pass

    def _aggregate(self, U, w, **context):
        self.__dict__.setdefault("log_", []).append((U.copy(), w.copy(), dict(context)))
        return w @ U, w.copy()


class ServerOnly(BaseAggregator):
    """Applies the server's own update and nothing else (needs server_update)."""

    needs = ("server_update",)
    _parameter_constraints: dict = {}

    def __init__(self):
        pass

    def _aggregate(self, U, w, **context):
        return np.asarray(context["server_update"], dtype=float), np.full(len(U), 1.0 / len(U))


class NormFilter(BaseAggregator):
    """Mean of the updates whose norm is at most 3x the median norm (excludes the rest)."""

    _parameter_constraints: dict = {}

    def __init__(self):
        pass

    def _aggregate(self, U, w, **context):
        norms = np.linalg.norm(U, axis=1)
        keep = norms <= 3 * np.median(norms)
        eff = np.where(keep, w, 0.0)
        eff = eff / eff.sum()
        return eff @ U, eff


class SignFlip(BaseUpdateAttack):
    _parameter_constraints: dict = {}

    def __init__(self, *, scale: float = 4.0, random_state=None):
        self.scale = scale
        self.random_state = random_state

    def _craft(self, own, *, honest, n_clients, rng):
        return -self.scale * own


class Omniscient(BaseUpdateAttack):
    """Sends minus the mean honest update, with noise from its random_state."""

    knowledge = "honest"
    _parameter_constraints: dict = {}

    def __init__(self, *, random_state=None):
        self.random_state = random_state

    def _craft(self, own, *, honest, n_clients, rng):
        return np.tile(-honest.mean(0), (len(own), 1)) + rng.normal(scale=1e-3, size=own.shape)


def _strip(history):
    return [{k: v for k, v in dataclasses.asdict(r).items() if k != "seconds"} for r in history]


# --- accuracy ---------------------------------------------------------------------------------

def test_clean_fedavg_on_digits_reaches_90_percent(digits):
    clients, test = digits
    res = run_federation(mlp, clients, test, aggregator=FedAvg(),
                         config=FederationConfig(rounds=15, batch_size=16, lr=0.2, eval_every=5),
                         random_state=0)
    assert res.accuracy >= 0.90
    assert [r.accuracy is not None for r in res.history] == [(i + 1) % 5 == 0 for i in range(15)]
    # the rebuilt module is the final global model
    with torch.no_grad():
        pred = res.model()(torch.as_tensor(test[0])).argmax(1).numpy()
    assert (pred == test[1]).mean() == pytest.approx(res.accuracy)


def test_clean_fedsgd_with_worker_momentum_learns_digits(digits):
    clients, test = digits
    res = run_federation(mlp, clients, test, aggregator=FedAvg(),
                         config=FederationConfig(rounds=60, mode="fedsgd", batch_size=32, lr=0.1,
                                                 momentum=0.9, eval_every=60), random_state=0)
    assert res.accuracy >= 0.85


# --- the stack inside the loop ------------------------------------------------------------------

def test_a_client_alone_sends_the_same_first_update_as_inside_the_federation():
    clients, test = blobs(n_clients=5, sizes=[30, 11, 47, 5, 22])
    cfg = FederationConfig(rounds=1, batch_size=8, local_epochs=2, lr=0.1, momentum=0.9)
    together = run_federation(small, clients, test, aggregator=Recorder(), config=cfg, random_state=3)
    alone = run_federation(small, clients[:1], test, aggregator=Recorder(), config=cfg, random_state=3)
    U_all = together.aggregator.log_[0][0]
    U_one = alone.aggregator.log_[0][0]
    np.testing.assert_allclose(U_all[0], U_one[0], rtol=1e-5, atol=1e-6)
    assert not np.allclose(U_all[0], U_all[1])
    # FedAvg weights are the clients' sample counts
    np.testing.assert_allclose(together.aggregator.log_[0][1], np.array([30, 11, 47, 5, 22]) / 115)


@pytest.mark.parametrize("mode", ["fedavg", "fedsgd"])
def test_training_the_round_in_chunks_changes_nothing(mode):
    clients, test = blobs(n_clients=5, sizes=[30, 11, 47, 5, 22])
    base = dict(rounds=3, mode=mode, batch_size=8, momentum=0.9, clients_per_round=4)
    one = run_federation(small, clients, test, aggregator=FedAvg(), config=FederationConfig(**base),
                         random_state=0)
    chunked = run_federation(small, clients, test, aggregator=FedAvg(),
                             config=FederationConfig(**base, clients_per_chunk=2), random_state=0)
    np.testing.assert_allclose(one.params, chunked.params, rtol=1e-5, atol=1e-6)


def test_same_seed_same_history_and_parameters_other_seed_differs():
    clients, test = blobs(n_clients=6)
    cfg = FederationConfig(rounds=6, clients_per_round=4, dropout=0.3, batch_size=8)
    kw = dict(aggregator=FedAvg(), config=cfg, malicious=[1], update_attack=Omniscient())
    a = run_federation(small, clients, test, random_state=5, **kw)
    b = run_federation(small, clients, test, random_state=5, **kw)
    c = run_federation(small, clients, test, random_state=6, **kw)
    assert _strip(a.history) == _strip(b.history)
    assert np.array_equal(a.params, b.params)
    assert _strip(a.history) != _strip(c.history)
    assert not np.array_equal(a.params, c.params)
    g1 = run_federation(small, clients, test, random_state=np.random.default_rng(9), **kw)
    g2 = run_federation(small, clients, test, random_state=np.random.default_rng(9), **kw)
    assert np.array_equal(g1.params, g2.params)


def test_global_torch_and_numpy_rng_are_untouched():
    clients, test = blobs()
    torch.manual_seed(0)
    np.random.seed(0)
    t_state, n_state = torch.get_rng_state(), np.random.get_state()[1].copy()
    run_federation(small, clients, test, aggregator=FedAvg(), config=FederationConfig(rounds=2),
                   random_state=0)
    assert torch.equal(torch.get_rng_state(), t_state)
    assert np.array_equal(np.random.get_state()[1], n_state)


def test_callers_arrays_and_objects_are_not_modified():
    clients, test = blobs()
    copies = [(X.copy(), y.copy()) for X, y in clients]
    for X, y in clients:
        X.flags.writeable = False
        y.flags.writeable = False
    agg = Recorder()
    module = small(ModelSpec((5,), 3))
    before = [p.detach().clone() for p in module.parameters()]
    res = run_federation(module, clients, test, aggregator=agg, config=FederationConfig(rounds=2))
    assert all(np.array_equal(X, Xc) and np.array_equal(y, yc) for (X, y), (Xc, yc) in zip(clients, copies))
    assert not hasattr(agg, "log_") and len(res.aggregator.log_) == 2
    assert all(torch.equal(p, q) for p, q in zip(module.parameters(), before))
    # a module given as the factory is the initial global model
    np.testing.assert_array_equal(res.initial_params, torch.cat([p.reshape(-1) for p in before]).numpy())


def test_fedsgd_weights_clients_equally_unless_told_otherwise():
    clients, test = blobs(n_clients=3, sizes=[10, 20, 30])
    sgd = run_federation(small, clients, test, aggregator=Recorder(),
                         config=FederationConfig(rounds=1, mode="fedsgd"), random_state=0)
    np.testing.assert_allclose(sgd.aggregator.log_[0][1], [1 / 3] * 3)
    counts = run_federation(small, clients, test, aggregator=Recorder(),
                            config=FederationConfig(rounds=1, mode="fedsgd", weighting="samples"), random_state=0)
    np.testing.assert_allclose(counts.aggregator.log_[0][1], [1 / 6, 2 / 6, 3 / 6])


class Noise(BaseUpdateAttack):
    _parameter_constraints: dict = {}

    def __init__(self, *, random_state=None):
        self.random_state = random_state

    def _craft(self, own, *, honest, n_clients, rng):
        return rng.normal(size=own.shape)


def test_a_seeded_update_attack_draws_new_noise_every_round_reproducibly():
    clients, test = blobs(n_clients=3)
    kw = dict(aggregator=Recorder(), config=FederationConfig(rounds=3), malicious=[0],
              update_attack=Noise(random_state=0))
    a = run_federation(small, clients, test, random_state=0, **kw)
    b = run_federation(small, clients, test, random_state=1, **kw)
    sent = [U[0] for U, _, _ in a.aggregator.log_]
    assert not np.allclose(sent[0], sent[1]) and not np.allclose(sent[1], sent[2])
    # its own int seed fixes its draws whatever the simulation's seed
    assert all(np.array_equal(U[0], V[0]) for (U, _, _), (V, _, _) in zip(a.aggregator.log_, b.aggregator.log_))


# --- Byzantine clients ----------------------------------------------------------------------

def test_sign_flippers_ruin_fedavg_but_not_the_median(digits):
    clients, test = digits
    cfg = FederationConfig(rounds=15, batch_size=16, lr=0.2, eval_every=15)
    kw = dict(config=cfg, malicious=[0, 1, 2], update_attack=SignFlip(scale=4.0), random_state=0)
    mean = run_federation(mlp, clients, test, aggregator=FedAvg(), **kw)
    median = run_federation(mlp, clients, test, aggregator=CoordinateMedian(), **kw)
    assert mean.accuracy < 0.3
    assert median.accuracy > 0.8
    assert all(r.malicious == (0, 1, 2) for r in mean.history)


def test_exclusions_are_scored_against_the_true_malicious_clients():
    clients, test = blobs(n_clients=8)
    res = run_federation(small, clients, test, aggregator=NormFilter(),
                         config=FederationConfig(rounds=3, clients_per_round=6),
                         malicious=[2, 5], update_attack=SignFlip(scale=50.0), random_state=1)
    for r in res.history:
        assert set(r.excluded) == set(r.malicious)
        assert r.precision == (1.0 if r.malicious else None)
        assert r.recall == (1.0 if r.malicious else None)
        assert len(r.weights) == len(r.participants)
    s = res.summary()
    assert s["detection_precision"] == 1.0 and s["detection_recall"] == 1.0
    import json

    json.dumps(s)
    json.dumps([r.to_dict() for r in res.history])


def test_honest_knowledge_attack_sees_the_honest_updates():
    clients, test = blobs(n_clients=5)
    seen = {}

    class Spy(Omniscient):
        def _craft(self, own, *, honest, n_clients, rng):
            seen["honest"], seen["n"] = honest.copy(), n_clients
            return super()._craft(own, honest=honest, n_clients=n_clients, rng=rng)

    res = run_federation(small, clients, test, aggregator=Recorder(), config=FederationConfig(rounds=1),
                         malicious=[1, 3], update_attack=Spy(), random_state=0)
    U = res.aggregator.log_[0][0]
    np.testing.assert_allclose(seen["honest"], U[[0, 2, 4]])
    assert seen["n"] == 5
    np.testing.assert_allclose(U[1], -U[[0, 2, 4]].mean(0), atol=1e-2)


def test_poison_clients_poisons_only_the_malicious_clients(digits):
    clients, _ = digits
    flip = TargetedLabelFlip(source=1, target=7, poison_rate=1.0, n_classes=10, random_state=0)
    out = poison_clients(clients, [0, 3], flip)
    assert len(out) == len(clients)
    for k, ((X, y), (X0, y0)) in enumerate(zip(out, clients)):
        if k in (0, 3):
            assert not (y == 1).any() and (y != y0).sum() == (y0 == 1).sum() > 0
        else:
            assert X is X0 and y is y0
    with pytest.raises(InvalidParameterError, match="malicious"):
        poison_clients(clients, [10], flip)


def test_backdoor_accuracy_is_the_target_rate_of_the_final_model():
    clients, test = blobs()
    Xb = test[0][test[1] != 0]
    res = run_federation(small, clients, test, aggregator=FedAvg(), config=FederationConfig(rounds=3),
                         backdoor_test=(Xb, 0), random_state=0)
    with torch.no_grad():
        pred = res.model()(torch.as_tensor(Xb)).argmax(1).numpy()
    assert res.backdoor_accuracy == pytest.approx((pred == 0).mean())
    assert all(r.backdoor_accuracy is not None for r in res.history)


# --- dropout, context ---------------------------------------------------------------------------

def test_dropouts_are_recorded_and_empty_rounds_skipped():
    clients, test = blobs(n_clients=3)
    seen = []
    res = run_federation(small, clients, test, aggregator=FedAvg(),
                         config=FederationConfig(rounds=12, clients_per_round=2, dropout=0.6),
                         random_state=2, on_round=seen.append)
    assert seen == list(res.history)
    assert any(r.dropped for r in res.history)
    skipped = [r for r in res.history if r.skipped]
    assert skipped, "with p=0.6 for 2 clients some round should lose both"
    for r in res.history:
        assert set(r.participants) == set(r.selected) - set(r.dropped)
        assert len(r.selected) == 2
    for r in skipped:
        assert r.participants == () and r.update_norm is None and set(r.dropped) == set(r.selected)
    assert res.summary()["skipped_rounds"] == [r.round for r in skipped]


def test_a_skipped_round_leaves_the_global_model_unchanged():
    clients, test = blobs(n_clients=1)
    cfg = FederationConfig(rounds=8, dropout=0.7)
    res = run_federation(small, clients, test, aggregator=Recorder(), config=cfg, random_state=4)
    n_skipped = sum(r.skipped for r in res.history)
    assert 0 < n_skipped < 8 and len(res.aggregator.log_) == 8 - n_skipped
    applied = sum(w @ U for U, w, _ in res.aggregator.log_)
    np.testing.assert_allclose(res.params, res.initial_params + applied, rtol=1e-5, atol=1e-6)


def test_fltrust_style_rules_get_the_servers_update_and_client_ids():
    clients, test = blobs(n_clients=4)
    server = blobs(n_clients=5)[0][4]          # same distribution, not one of the four clients
    res = run_federation(small, clients, test, aggregator=Recorder(), server_data=server,
                         config=FederationConfig(rounds=2, clients_per_round=3), random_state=0)
    for (U, _, ctx), r in zip(res.aggregator.log_, res.history):
        assert ctx["server_update"].shape == (U.shape[1],)
        assert ctx["client_ids"].tolist() == list(r.participants)
    # a rule that applies only the server's update trains as the server would alone
    only = run_federation(small, clients, test, aggregator=ServerOnly(), server_data=server,
                          config=FederationConfig(rounds=5, lr=0.5), random_state=0)
    assert only.accuracy > 0.8


class KeepRefs(BaseAggregator):
    """FedAvg that keeps the arrays it was given (no copies) and a snapshot of their values."""

    accepts = ("server_update",)
    _parameter_constraints: dict = {}

    def __init__(self):
        pass

    def _aggregate(self, U, w, **context):
        kept = (U, context.get("server_update"))
        self.__dict__.setdefault("kept_", []).append((kept, tuple(None if a is None else a.copy() for a in kept)))
        return w @ U, w.copy()


@pytest.mark.parametrize("mode", ["fedavg", "fedsgd"])
def test_arrays_an_aggregator_keeps_are_never_overwritten_by_later_rounds(mode):
    # the round's updates are written in place into a fresh float64 array each round: an
    # aggregator keeping references (not copies) must still see what it was given
    clients, test = blobs(n_clients=4)
    server = blobs(n_clients=5)[0][4]
    res = run_federation(small, clients, test, aggregator=KeepRefs(), server_data=server,
                         config=FederationConfig(rounds=4, mode=mode, batch_size=8), random_state=0)
    assert len(res.aggregator.kept_) == 4
    for (U, srv), (U0, srv0) in res.aggregator.kept_:
        assert U.dtype == np.float64 and np.array_equal(U, U0) and np.array_equal(srv, srv0)
        assert not np.shares_memory(U, srv)


# --- bad inputs --------------------------------------------------------------------------------

def _run(**kw):
    clients, test = blobs(n_clients=3)
    args = dict(aggregator=FedAvg(), config=FederationConfig(rounds=1), random_state=0)
    args.update(kw)
    return run_federation(args.pop("model", small), args.pop("clients", clients), args.pop("test", test), **args)


def test_bad_inputs_fail_with_one_line_errors():
    clients, test = blobs(n_clients=3)
    bad_shape = clients[:2] + [(np.zeros((5, 4), np.float32), np.zeros(5, int))]
    cases = [
        (dict(clients=bad_shape), DataError, r"clients\[2\] X has feature shape \(4,\)"),
        (dict(test=(np.zeros((5, 6), np.float32), np.zeros(5, int))), DataError, "test X has feature shape"),
        (dict(clients=[]), DataError, "no client"),
        (dict(clients=clients[:2] + [(np.zeros((0, 5), np.float32), np.zeros(0, int))]), DataError, "at least 1"),
        (dict(config=FederationConfig(clients_per_round=4)), InvalidParameterError,
         "clients_per_round must be at most"),
        (dict(malicious=[3]), InvalidParameterError, "client index 3 outside"),
        (dict(malicious=[0, 1, 2], update_attack=Omniscient()), DataError, "every participant is malicious"),
        (dict(aggregator=ServerOnly()), InvalidParameterError, "server_data"),
        (dict(aggregator="fedavg"), InvalidParameterError, "BaseAggregator"),
        (dict(update_attack=FedAvg()), InvalidParameterError, "BaseUpdateAttack"),
        (dict(config=FederationConfig(rounds=0)), InvalidParameterError, "rounds"),
        (dict(config=FederationConfig(mode="fedprox")), InvalidParameterError, "mode"),
        (dict(config=FederationConfig(dropout=1.0)), InvalidParameterError, "dropout"),
        (dict(config=FederationConfig(lr=-1.0)), InvalidParameterError, "lr"),
        (dict(config=FederationConfig(weighting="size")), InvalidParameterError, "weighting"),
        (dict(model=lambda s: MLP(5, 3, hidden=(4,), dropout=0.2)), InvalidParameterError, "random layers"),
        (dict(model=lambda s: "not a module"), InvalidParameterError, "nn.Module"),
    ]
    for kw, exc, msg in cases:
        with pytest.raises(exc, match=msg) as info:
            _run(**kw)
        assert "\n" not in str(info.value), kw


def test_an_aggregate_that_overflows_the_global_model_is_refused():
    with pytest.raises(DataError, match="non-finite"):
        _run(config=FederationConfig(rounds=1, server_lr=1e38), malicious=[0],
             update_attack=SignFlip(scale=1e30))
