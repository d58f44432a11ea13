"""The contract suite: every registered attack, detector and aggregator follows the rules, and
every declared parameter of every one of them refuses an invalid value with a named error."""

import numpy as np
import pytest

from poisonlab import registry

from .contract import (
    attack_data,
    attack_needs,
    check_aggregator,
    check_attack,
    check_declarations,
    check_detector,
    check_trainer,
    check_update_attack,
    detector_case,
    trainer_case,
    trainer_data,
    update_attack_data,
)

# Optimising attacks run the contract with small budgets: the contract checks behaviour, not
# attack strength (their own tests and the reproductions do that).
FAST_PARAMS = {"adversarial_label_flip": {"n_poison": 2, "max_candidates": 10},
               "feature_collision": {"steps": 50}, "gradient_matching": {"steps": 20},
               "label_consistent": {"steps": 10}, "adversarial_poisoning": {"steps": 5},
               "unlearnable": {"steps": 3, "train_steps": 2, "max_iter": 2}}

CLASS_KINDS = ("attack", "detector", "aggregator", "trainer")

# Aggregators that tolerate f Byzantine clients are told f = 1 (nine clients in the contract);
# centred clipping gets a radius at the honest spread and enough iterations to reach the honest
# cloud from zero in its first round; norm clipping a bound above the honest norms.
AGGREGATOR_PARAMS = {"krum": {"f": 1}, "multi_krum": {"f": 1}, "bulyan": {"f": 1}, "trimmed_mean": {"f": 1},
                     "nnm": {"f": 1}, "centered_clipping": {"tau": 1.0, "n_iter": 10},
                     "norm_clipping": {"max_norm": 10.0}}

#: Data and training attacks poison a training set (``poison``); federated attacks craft client
#: updates (``craft``) and follow their own contract.
DATA_ATTACKS = sorted(n for n, c in registry.available("attack").items() if c.stage != "federated")
UPDATE_ATTACKS = sorted(n for n, c in registry.available("attack").items() if c.stage == "federated")


@pytest.mark.parametrize("name", DATA_ATTACKS)
def test_attack_contract(name):
    check_attack(registry.get("attack", name), FAST_PARAMS.get(name))


@pytest.mark.parametrize("name", UPDATE_ATTACKS)
def test_update_attack_contract(name):
    check_update_attack(registry.get("attack", name), FAST_PARAMS.get(name))


@pytest.mark.parametrize("name", sorted(registry.available("detector")))
def test_detector_contract(name):
    params, args, kwargs = detector_case(name)
    check_detector(registry.get("detector", name), params, args, kwargs)


@pytest.mark.parametrize("name", sorted(registry.available("aggregator")))
def test_aggregator_contract(name):
    check_aggregator(registry.get("aggregator", name), AGGREGATOR_PARAMS.get(name))


@pytest.mark.parametrize("name", sorted(registry.available("trainer")))
def test_trainer_contract(name):
    params, fit_kwargs, user_class = trainer_case(name)
    check_trainer(registry.get("trainer", name), params, fit_kwargs, user_class, data=trainer_data(name))


@pytest.mark.parametrize("kind, name", [(k, n) for k in CLASS_KINDS for n in sorted(registry.available(k))])
def test_every_parameter_is_declared(kind, name):
    check_declarations(registry.get(kind, name))


@pytest.mark.parametrize("name", [n for n in DATA_ATTACKS
                                  if "random_state" in registry.get("attack", n)._param_names()])
def test_attacks_take_a_generator_as_random_state(name):
    cls = registry.get("attack", name)
    X, y = attack_data(cls)
    needs = attack_needs(cls, X, y)
    params = FAST_PARAMS.get(name, {})
    a = cls(**params, random_state=np.random.default_rng(5)).poison(X, y, **needs)
    b = cls(**params, random_state=np.random.default_rng(5)).poison(X, y, **needs)
    assert np.array_equal(a.poison_mask, b.poison_mask) and np.array_equal(a.X, b.X)


@pytest.mark.parametrize("name", [n for n in UPDATE_ATTACKS
                                  if "random_state" in registry.get("attack", n)._param_names()])
def test_update_attacks_take_a_generator_as_random_state(name):
    cls = registry.get("attack", name)
    own, honest = update_attack_data()
    a = cls(random_state=np.random.default_rng(5)).craft(own, honest_updates=honest)
    b = cls(random_state=np.random.default_rng(5)).craft(own, honest_updates=honest)
    assert np.array_equal(a, b)
    assert np.isfinite(cls(random_state=None).craft(own, honest_updates=honest)).all()


@pytest.mark.parametrize("name", sorted(n for n, c in registry.available("detector").items()
                                        if "random_state" in c._param_names()))
def test_detectors_take_a_generator_or_none_as_random_state(name):
    params, args, kwargs = detector_case(name)
    cls = registry.get("detector", name)
    a = cls(**params, random_state=np.random.default_rng(5)).fit(*args, **kwargs)
    b = cls(**params, random_state=np.random.default_rng(5)).fit(*args, **kwargs)
    assert np.array_equal(a.scores_, b.scores_)
    assert np.isfinite(cls(**params, random_state=None).fit(*args, **kwargs).scores_).all()


def test_registry_is_not_empty():
    assert len(registry.available("attack")) >= 4
    assert registry.available("detector") and registry.available("aggregator")


def test_registry_unknown_names():
    with pytest.raises(ValueError, match="unknown attack 'nope'"):
        registry.get("attack", "nope")
    with pytest.raises(ValueError, match="valid parameters"):
        registry.create("attack", "badnets", bogus=1)
