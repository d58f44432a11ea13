"""The contract suite: every registered attack, detector and aggregator follows the rules."""

import pytest

from poisonlab import registry

from .contract import check_aggregator, check_attack, check_detector, detector_case


# Optimising attacks run the contract with small budgets: the contract checks behaviour, not
# attack strength (their own tests and the reproductions do that).
FAST_PARAMS = {"adversarial_label_flip": {"n_poison": 2, "max_candidates": 10},
               "feature_collision": {"steps": 50}, "gradient_matching": {"steps": 20},
               "label_consistent": {"steps": 10}}


@pytest.mark.parametrize("name", sorted(registry.available("attack")))
def test_attack_contract(name):
    check_attack(registry.get("attack", name), FAST_PARAMS.get(name))


@pytest.mark.parametrize("name", sorted(registry.available("detector")))
def test_detector_contract(name):
    params, args, kwargs = detector_case(name)
    check_detector(registry.get("detector", name), params, args, kwargs)


@pytest.mark.parametrize("name", sorted(registry.available("aggregator")))
def test_aggregator_contract(name):
    check_aggregator(registry.get("aggregator", name))


def test_registry_is_not_empty():
    assert len(registry.available("attack")) >= 4
    assert registry.available("detector") and registry.available("aggregator")


def test_registry_unknown_names():
    with pytest.raises(ValueError, match="unknown attack 'nope'"):
        registry.get("attack", "nope")
    with pytest.raises(ValueError, match="valid parameters"):
        registry.create("attack", "badnets", bogus=1)
