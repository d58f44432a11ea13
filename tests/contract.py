"""Contract checks over attacks, detectors and aggregators (shared/DESIGN.md).

Each check raises AssertionError when an object breaks a rule; ``test_common.py`` runs them over
the registry, and ``test_contract_meta.py`` proves they catch deliberately broken objects.
"""

from __future__ import annotations

import functools
import inspect
import pickle
import re
from typing import Any, Callable

import numpy as np
import pytest

from poisonlab import BackdoorAttack, BaseDetector, NotFittedError, PoisonResult
from poisonlab._validation import invalid_values, make_constraint
from poisonlab.exceptions import InvalidParameterError


# --- declared parameters -----------------------------------------------------------------------

def check_declarations(cls):
    """Every ``__init__`` parameter has a declared constraint list, no declaration names a
    non-parameter, every default satisfies its declaration, and ``random_state`` follows the one
    convention (None, an int >= 0 or a Generator)."""
    params = cls._param_names()
    declared = dict(cls._parameter_constraints)
    missing = [p for p in params if p not in declared]
    assert not missing, f"{cls.__name__} does not declare constraints for parameter(s) {missing}"
    extra = sorted(set(declared) - set(params))
    assert not extra, f"{cls.__name__} declares constraints for non-parameter(s) {extra}"
    sig = inspect.signature(cls.__init__)
    for name in params:
        constraints = [make_constraint(c) for c in declared[name]]
        assert constraints, f"{cls.__name__}.{name} declares no constraint"
        default = sig.parameters[name].default
        assert default is inspect.Parameter.empty or any(c.is_satisfied_by(default) for c in constraints), \
            f"{cls.__name__}.{name}'s default {default!r} breaks its own declaration"
    if "random_state" in declared:
        assert declared["random_state"] == ["random_state"], \
            f"{cls.__name__}.random_state must be declared as ['random_state'] (one convention)"


def check_invalid_params(cls, params: dict, call: Callable[[Any], Any]):
    """For every declared parameter, every invalid value generated from its declaration (outside
    an interval, not an option, a wrong type, NaN, -1 for a seed, ...) makes ``call(obj)`` (poison,
    fit or aggregate on valid data) raise an InvalidParameterError naming the parameter."""
    check_declarations(cls)
    for name, constraints in cls._parameter_constraints.items():
        bad_values = invalid_values(constraints)
        assert bad_values, f"cannot build an invalid value for {cls.__name__}.{name}: its declaration accepts anything"
        for bad in bad_values:
            obj = cls(**{**params, name: bad})
            try:
                call(obj)
            except InvalidParameterError as exc:
                assert re.search(rf"\b{re.escape(name)}\b", str(exc)), \
                    f"{cls.__name__}({name}={bad!r}) raised an error that does not name {name!r}: {exc}"
            except Exception as exc:  # noqa: BLE001 - any other failure means the check did not run
                raise AssertionError(f"{cls.__name__}({name}={bad!r}) raised {type(exc).__name__} instead of an "
                                     f"InvalidParameterError naming {name!r}: {exc}") from exc
            else:
                raise AssertionError(f"{cls.__name__} accepted the invalid value {name}={bad!r}: its declared "
                                     f"constraint is not enforced")


def attack_data(cls):
    rng = np.random.default_rng(7)
    if cls.modalities == ("text",):
        words = np.array(["free", "prize", "call", "now", "meet", "lunch", "see", "you", "win", "today"])
        X = np.array([" ".join(rng.choice(words, 5)) for _ in range(80)], dtype=object)
        return X, np.arange(80) % 4
    if cls.modalities == ("audio",):
        return (rng.uniform(-0.3, 0.3, size=(80, 8000)).astype(np.float32)), np.arange(80) % 4
    if cls.modalities == ("tabular",):
        return rng.uniform(0, 0.5, size=(80, 6)).astype(np.float32), np.arange(80) % 4
    X = rng.uniform(0, 0.5, size=(80, 1, 8, 8)).astype(np.float32)
    y = np.arange(80) % (2 if getattr(cls, "binary_only", False) else 4)
    if getattr(cls, "binary_only", False):
        X[y == 1] += 0.3  # separable enough for a linear model to have support vectors
    return X, y


def attack_needs(cls, X, y):
    """Keyword extras an attack's ``needs`` names, built for ``attack_data``."""
    needs = {}
    if "model" in cls.needs:
        import torch

        from poisonlab.models import ModelSpec

        torch.manual_seed(0)
        needs["model"] = _tiny_cnn(ModelSpec(input_shape=X.shape[1:], n_classes=int(y.max()) + 1)).eval()
    if "target_input" in cls.needs:
        needs["target_input"] = X[1].copy()
    if "groups" in cls.needs:
        needs["groups"] = np.where(np.arange(len(y)) % 3 == 0, "a", "b")
    if "X_val" in cls.needs:
        needs["X_val"], needs["y_val"] = X[::3].copy(), y[::3].copy()
    return needs


def check_attack(cls, params=None):
    params = {"random_state": 0, **(params or {})}
    X, y = attack_data(cls)
    X0, y0 = X.copy(), y.copy()
    needs = attack_needs(cls, X, y)
    atk = cls(**params)
    res = atk.poison(X, y, **needs)
    # returns a frozen PoisonResult, inputs untouched
    assert isinstance(res, PoisonResult), "poison must return a PoisonResult"
    assert np.array_equal(X, X0) and np.array_equal(y, y0), "poison modified its inputs"
    with pytest.raises(Exception):
        res.X = None
    # dtypes and shapes (attacks that inject samples append them at the end)
    n = len(X)
    assert len(res.y) >= n and res.X.shape[1:] == X.shape[1:] and res.X.dtype == X.dtype, "X shape/dtype changed"
    assert res.y.dtype == np.int64 and res.y.ndim == 1, "y must stay int64"
    assert res.poison_mask.dtype == bool and res.poison_mask.shape == res.y.shape
    assert np.array_equal(res.indices, np.flatnonzero(res.poison_mask)), "indices must match the mask"
    assert res.n_poison >= 1, "an attack must poison something"
    assert res.poison_mask[n:].all(), "appended samples must be in poison_mask"
    # the mask is the truth: untouched outside, changed inside
    clean = ~res.poison_mask[:n]
    assert np.array_equal(res.X[:n][clean], X[clean]) and np.array_equal(res.y[:n][clean], y[clean]), \
        "samples outside poison_mask were altered"
    changed = (res.X[:n].reshape(n, -1) != X.reshape(n, -1)).any(axis=1) | (res.y[:n] != y)
    assert changed[res.poison_mask[:n]].all(), "a sample in poison_mask is unchanged"
    # read-only inputs work (no in-place writes)
    Xr, yr = X.copy(), y.copy()
    Xr.flags.writeable = False
    yr.flags.writeable = False
    cls(**params).poison(Xr, yr, **needs)
    # seed determinism
    a, b = cls(**params).poison(X, y, **needs), cls(**params).poison(X, y, **needs)
    assert np.array_equal(a.X, b.X) and np.array_equal(a.y, b.y) and np.array_equal(a.poison_mask, b.poison_mask), \
        "same random_state must give the same poison"
    # params round trip, clone, pickle
    cl = atk.clone()
    assert type(cl) is cls and set(cl.get_params()) == set(atk.get_params())
    c = cl.poison(X, y, **needs)
    assert np.array_equal(c.poison_mask, a.poison_mask), "clone must reproduce the poison"
    p = pickle.loads(pickle.dumps(atk)).poison(X, y, **needs)
    assert np.array_equal(p.poison_mask, a.poison_mask), "a pickled attack must reproduce the poison"
    with pytest.raises(InvalidParameterError):
        atk.set_params(no_such_parameter=1)
    if isinstance(atk, BackdoorAttack):
        T = atk.apply_trigger(X[:5])
        assert T.shape == X[:5].shape and T.dtype == X.dtype
        assert np.array_equal(X, X0), "apply_trigger modified its input"
        assert np.array_equal(T, atk.apply_trigger(X[:5])), "apply_trigger must be deterministic"
        assert not np.array_equal(T, X[:5]), "apply_trigger changed nothing"
    check_invalid_params(cls, params, lambda obj: obj.poison(X, y, **needs))


def _features():
    rng = np.random.default_rng(3)
    X = np.r_[rng.normal(0, 1, (60, 5)), rng.normal(5, 1, (60, 5))]
    y = np.r_[np.zeros(60, int), np.ones(60, int)]
    y[[2, 70]] = 1 - y[[2, 70]]
    return X, y


def _tiny_cnn(spec):
    from poisonlab.models import build_model

    return build_model("cnn", spec, widths=(4, 8), hidden=16)


@functools.lru_cache(maxsize=1)
def _small_image_model():
    """Three classes, each lighting one pixel on faint noise: learnable in a few epochs."""
    from poisonlab.models import TorchClassifier, TrainConfig

    rng = np.random.default_rng(5)
    y = np.arange(240) % 3
    X = rng.uniform(0, 0.3, (240, 1, 8, 8)).astype(np.float32)
    X[np.arange(240), 0, y, y] = 1.0
    clf = TorchClassifier(_tiny_cnn, config=TrainConfig(epochs=15, lr=0.01, batch_size=32)).fit(X, y)
    return X, clf


def detector_case(name):
    """``(params, fit_args, fit_kwargs)`` for each registered detector."""
    if name in ("strip", "neural_cleanse"):
        X, clf = _small_image_model()
        if name == "strip":
            return {"n_overlays": 8, "false_positive_rate": 0.05}, (X,), {"model": clf}
        return {"epochs": 2}, (X[:48],), {"model": clf}
    return {}, _features(), {}


def check_detector(cls, params=None, args=None, kwargs=None):
    params = params or {}
    if args is None:
        args, kwargs = _features(), {}
    kwargs = kwargs or {}
    copies = [np.array(a, copy=True) for a in args]
    det = cls(**params)
    for attr in ("scores_", "threshold_", "flags_"):
        assert not hasattr(det, attr), f"unfitted detector must not have {attr}"
    with pytest.raises(NotFittedError):
        det.flag(args[0])
    out = det.fit(*args, **kwargs)
    assert out is det, "fit must return self"
    assert all(np.array_equal(a, c) for a, c in zip(args, copies)), "fit modified its inputs"
    assert isinstance(det, BaseDetector) and det.unit in ("sample", "input", "class", "model", "client")
    assert det.scores_.dtype == np.float64 and det.scores_.ndim == 1
    assert np.isfinite(det.scores_).all()
    assert isinstance(det.threshold_, float)
    assert det.flags_.dtype == bool and np.array_equal(det.flags_, det.scores_ > det.threshold_), \
        "flags_ must be scores_ > threshold_"
    again = cls(**params).fit(*args, **kwargs)
    assert np.array_equal(again.scores_, det.scores_), "same input must give the same scores"
    assert np.array_equal(pickle.loads(pickle.dumps(det)).scores_, det.scores_)
    assert type(det.clone()) is cls and not hasattr(det.clone(), "scores_")
    # the scores depend on the data: move the first unit onto the last (for labelled features a
    # planted outlier whose label disagrees with its new neighbours and a duplicate conflict)
    moved = [np.array(a, copy=True) for a in args]
    moved[0][0] = moved[0][-1]
    other = cls(**params).fit(*moved, **kwargs)
    assert other.scores_.shape != det.scores_.shape or not np.array_equal(other.scores_, det.scores_), \
        "scores_ must depend on the data: moving a sample left every score unchanged"
    check_invalid_params(cls, params, lambda obj: obj.fit(*args, **kwargs))


def aggregator_context(cls, honest):
    """Keyword context an aggregator's ``needs`` names, built for ``honest`` updates: the server's
    own update (FLTrust's root-data update) is the honest mean."""
    ctx = {}
    if "server_update" in cls.needs:
        ctx["server_update"] = honest.mean(axis=0)
    return ctx


def check_aggregator(cls, params=None):
    """An aggregator follows the aggregator contract (base.BaseAggregator): it leaves the updates
    alone, reports one weight per client summing to 1, is deterministic, returns identical updates
    unchanged, never lets a NaN or infinite update reach the output, is not dragged by one client
    sending a huge update unless it declares ``robust = False``, tells the truth about
    ``uses_weights``, trusts clients for what they send, not for their position, and refuses every
    invalid value of every declared parameter by name."""
    params = dict(params or {})
    rng = np.random.default_rng(0)
    U = rng.normal(size=(9, 12))  # nine honest clients, spread out
    n, d = U.shape
    ctx = aggregator_context(cls, U)
    U0 = U.copy()
    agg = cls(**params)
    out = agg.aggregate(U, **ctx)
    assert np.array_equal(U, U0), "aggregate modified the updates"
    assert out.shape == (d,) and np.isfinite(out).all()
    assert agg.weights_.shape == (n,) and agg.excluded_.dtype == bool
    assert np.isclose(agg.weights_.sum(), 1.0), f"weights_ must sum to 1; got {agg.weights_.sum()}"
    assert np.array_equal(cls(**params).aggregate(U, **ctx), out), "aggregation must be deterministic"
    # identical honest updates aggregate to themselves
    same = np.tile(U[0], (n, 1))
    assert np.allclose(cls(**params).aggregate(same, **aggregator_context(cls, same)), U[0]), \
        "identical updates must aggregate to themselves"
    # a NaN or infinite update never reaches the global model
    for bad in (np.nan, np.inf, -np.inf):
        V = np.insert(U, 4, 1.0, axis=0)
        V[4, 3] = bad
        a = cls(**params)
        o = a.aggregate(V, **ctx)
        assert np.isfinite(o).all(), f"a client sending {bad} reached the aggregate"
        assert a.weights_[4] == 0 and a.excluded_[4], f"a client sending {bad} kept a weight"
    # one client sending 1e6 x an honest update does not drag a robust rule out of the honest cloud
    center = U.mean(axis=0)
    radius = float(np.linalg.norm(U - center, axis=1).max())
    if getattr(agg, "robust", True):
        V = np.insert(U, 5, 1e6 * U[2], axis=0)
        dist = float(np.linalg.norm(cls(**params).aggregate(V, **ctx) - center))
        assert dist <= radius, (
            f"{cls.__name__} declares robust = True but one client sending 1e6 x an honest update dragged "
            f"the aggregate {dist:.3g} from the honest mean (the honest updates lie within {radius:.3g}); "
            f"declare robust = False if it is not meant to resist that")
    # uses_weights tells the truth, both ways
    w = rng.uniform(0.5, 2.0, n)
    weighted = cls(**params).aggregate(U, w, **ctx)
    if agg.uses_weights:
        assert not np.allclose(weighted, out), \
            f"{cls.__name__} declares uses_weights = True but client weights do not change its output"
    else:
        assert np.allclose(weighted, out), \
            f"{cls.__name__} declares uses_weights = False but client weights change its output"
    # no trust by position: permuting the clients permutes weights_ and leaves the result
    perm = np.array([5, 8, 0, 7, 2, 1, 3, 4, 6])  # nobody stays where it was
    a = cls(**params)
    permuted = a.aggregate(U[perm], **ctx)
    tol = 1e-6 * float(np.abs(U).max())
    assert np.allclose(a.weights_, agg.weights_[perm], atol=1e-6) and np.allclose(permuted, out, atol=tol), \
        f"{cls.__name__}: permuting the clients must permute weights_ and keep the aggregate (trust must " \
        f"follow what a client sends, not its position)"
    check_invalid_params(cls, params, lambda obj: obj.aggregate(U, **ctx))


# --- trainers ----------------------------------------------------------------------------------

class _UserNet:
    """Marker base so the contract can tell whether a trainer touched the user's model class."""


def _user_model_factory():
    """A user's torch model class and a factory building it (the trainer must call the factory
    and never patch the class or reuse a module it was given)."""
    from torch import nn

    class UserMLP(nn.Module, _UserNet):
        def __init__(self, d, c):
            super().__init__()
            self.body = nn.Sequential(nn.Flatten(), nn.Linear(d, 16), nn.ReLU(), nn.Linear(16, c))

        def forward(self, x):
            return self.body(x)

    def factory(spec):
        return UserMLP(int(np.prod(spec.input_shape)), spec.n_classes)

    return UserMLP, factory


def trainer_data(name=None):
    """Three separable classes of 120 tabular samples (float32), or counts for naive Bayes."""
    rng = np.random.default_rng(11)
    y = np.arange(120) % 3
    if name == "roni":
        X = rng.poisson(1.0, size=(120, 12)).astype(np.float64)
        X[np.arange(120), y * 4] += 6
        return X, y
    X = rng.normal(0, 1, size=(120, 6)).astype(np.float32)
    X[np.arange(120), y] += 3.0
    return X, y


def trainer_case(name):
    """``(params, fit_kwargs, user_class)`` for each registered trainer: small budgets, the
    contract checks behaviour, not strength."""
    from poisonlab.models import TrainConfig

    cls_, factory = _user_model_factory()
    config = TrainConfig(epochs=3, batch_size=16, lr=0.01)
    if name == "roni":
        from sklearn.naive_bayes import MultinomialNB

        return {}, {"model_factory": MultinomialNB}, MultinomialNB
    params = {"dpa": {"k": 4}, "finite_aggregation": {"k": 4, "d": 2}, "ss_dpa": {"k": 4, "n_components": 3},
              "abl": {"isolation_epochs": 1}}.get(name, {})
    return params, {"model_factory": factory, "config": config}, cls_


def _class_state(cls):
    return {k: v for k, v in vars(cls).items() if k not in ("__dict__", "__weakref__")}


def check_trainer(cls, params=None, fit_kwargs=None, user_class=None, data=None):
    """A training-stage defense follows the trainer contract (base.BaseTrainer): ``fit`` returns
    self with ``classifier_``; the inputs are never modified; the user's model class is never
    mutated; the same ``random_state`` gives the same predictions; what it learned has the
    declared shapes; and every declared parameter refuses its invalid values by name."""
    from poisonlab.base import BaseTrainer

    params = {"random_state": 0, **(params or {})} if "random_state" in cls._param_names() else dict(params or {})
    fit_kwargs = dict(fit_kwargs or {})
    X, y = data if data is not None else trainer_data()
    X0, y0 = X.copy(), y.copy()
    before = _class_state(user_class) if user_class is not None else None
    tr = cls(**params)
    assert isinstance(tr, BaseTrainer), "a trainer must subclass BaseTrainer"
    with pytest.raises(NotFittedError):
        tr.predict(X)
    out = tr.fit(X, y, **fit_kwargs)
    assert out is tr, "fit must return self"
    assert np.array_equal(X, X0) and np.array_equal(y, y0), "fit modified its inputs"
    if before is not None:
        after = _class_state(user_class)
        assert after.keys() == before.keys() and all(after[k] is before[k] for k in before), \
            f"fit mutated the user's model class {user_class.__name__}"
    assert hasattr(tr, "classifier_"), "fit must set classifier_"
    pred = tr.predict(X)
    assert pred.shape == (len(X),) and np.isin(pred, np.unique(y)).all(), "predict must give one known label per input"
    n = len(X)
    if hasattr(tr, "flags_"):
        assert tr.flags_.dtype == bool and tr.flags_.shape == (n,), "flags_ must be one bool per training sample"
    if hasattr(tr, "scores_"):
        assert tr.scores_.shape == (n,) and np.isfinite(tr.scores_).all(), "scores_ must be finite, one per sample"
    if hasattr(tr, "certify"):
        cert = tr.certify(X[:7])
        assert cert.radius.shape == (7,) and (cert.radius >= 0).all(), "radii must be >= 0, one per input"
        assert np.array_equal(cert.prediction, pred[:7]), "the certificate must certify the predictions"
    # seeded: same random_state -> same predictions and probabilities, here and on probe inputs
    if "random_state" in params:
        probes = np.random.default_rng(3).normal(0, 2, size=(200,) + X.shape[1:]).astype(X.dtype)
        again = cls(**params).fit(X, y, **fit_kwargs)
        for Z in (X, probes):
            same = np.array_equal(again.predict(Z), tr.predict(Z))
            if same and hasattr(tr, "predict_proba"):
                same = np.array_equal(again.predict_proba(Z), tr.predict_proba(Z))
            assert same, "same random_state must give the same predictions"
    # read-only inputs work
    Xr, yr = X.copy(), y.copy()
    Xr.flags.writeable = False
    yr.flags.writeable = False
    cls(**params).fit(Xr, yr, **fit_kwargs)
    assert type(tr.clone()) is cls and not hasattr(tr.clone(), "classifier_")
    check_invalid_params(cls, params, lambda obj: obj.fit(X, y, **fit_kwargs))


# --- federated update attacks ------------------------------------------------------------------

def update_attack_data():
    """``(own, honest)``: 3 malicious and 8 honest clients' updates of 12 parameters, spread
    around a common non-zero direction (so every perturbation of the optimised attacks exists)."""
    rng = np.random.default_rng(17)
    direction = rng.normal(size=12)
    return direction + rng.normal(0, 0.5, size=(3, 12)), direction + rng.normal(0, 0.5, size=(8, 12))


def check_update_attack(cls, params=None):
    """A federated model-poisoning attack follows the update-attack contract
    (base.BaseUpdateAttack): ``craft`` returns finite float updates of the shape of the
    malicious clients' own; never modifies its inputs (read-only inputs work); the same
    ``random_state`` gives the same updates; it declares its knowledge truthfully (an "honest"
    attack refuses without the honest updates, naming itself; an "own" attack works without them
    and ignores them); the malicious updates differ from the honest ones the clients would have
    sent; mismatched shapes are refused; and every declared parameter refuses its invalid values
    by name."""
    from poisonlab.base import BaseUpdateAttack
    from poisonlab.exceptions import DataError

    params = {"random_state": 0, **(params or {})} if "random_state" in cls._param_names() else dict(params or {})
    own, honest = update_attack_data()
    own0, honest0 = own.copy(), honest.copy()
    n_clients = len(own) + len(honest)
    atk = cls(**params)
    assert isinstance(atk, BaseUpdateAttack), "a federated attack must subclass BaseUpdateAttack"
    assert atk.stage == "federated" and atk.unit == "client", "a federated attack works on clients"
    assert atk.knowledge in ("own", "honest"), f"knowledge must be 'own' or 'honest'; got {atk.knowledge!r}"
    out = atk.craft(own, honest_updates=honest)
    assert np.array_equal(own, own0) and np.array_equal(honest, honest0), "craft modified its inputs"
    assert isinstance(out, np.ndarray) and out.shape == own.shape and out.dtype == np.float64, \
        f"craft must return float64 updates of shape {own.shape}"
    assert np.isfinite(out).all(), "craft returned NaN or infinite updates"
    assert not np.shares_memory(out, own) and not np.shares_memory(out, honest), \
        "craft returned (a view of) its input arrays"
    assert (out != own).any(axis=1).all(), "craft returned the honest update unchanged for a malicious client"
    # read-only inputs work (no in-place writes)
    own_r, honest_r = own.copy(), honest.copy()
    own_r.flags.writeable = False
    honest_r.flags.writeable = False
    cls(**params).craft(own_r, honest_updates=honest_r)
    # seed determinism, clone, pickle
    again = cls(**params).craft(own, honest_updates=honest)
    assert np.array_equal(again, out), "same random_state must give the same updates"
    assert np.array_equal(atk.clone().craft(own, honest_updates=honest), out), "clone must reproduce the updates"
    assert np.array_equal(pickle.loads(pickle.dumps(atk)).craft(own, honest_updates=honest), out), \
        "a pickled attack must reproduce the updates"
    with pytest.raises(InvalidParameterError):
        atk.set_params(no_such_parameter=1)
    # the declared knowledge is the truth
    if atk.knowledge == "honest":
        with pytest.raises(DataError, match=cls.__name__):
            cls(**params).craft(own)
    else:
        try:
            alone = cls(**params).craft(own, n_clients=n_clients)
        except Exception as exc:  # noqa: BLE001 - any failure means it needs what it says it does not
            raise AssertionError(f"{cls.__name__} declares knowledge='own' but fails without honest updates: "
                                 f"{type(exc).__name__}: {exc}") from exc
        assert np.array_equal(alone, out), \
            f"{cls.__name__} declares knowledge='own' but its updates depend on the honest ones"
    with pytest.raises(DataError):
        cls(**params).craft(own, honest_updates=honest[:, :-1])
    check_invalid_params(cls, params, lambda obj: obj.craft(own, honest_updates=honest))
