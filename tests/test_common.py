"""The contract suite: every registered attack, detector and aggregator follows the rules."""

import pytest

from poisonlab import registry

from .contract import check_aggregator, check_attack, check_detector, detector_case


@pytest.mark.parametrize("name", sorted(registry.available("attack")))
def test_attack_contract(name):
    check_attack(registry.get("attack", name))


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
