"""The contract checks must catch objects that break the rules."""

import numbers

import numpy as np
import pytest

from poisonlab._validation import Interval, check_array
from poisonlab.attacks.data import BadNets
from poisonlab.base import CONTAMINATION, BaseAttack, BaseDetector, PoisonResult
from poisonlab.defenses.data import KNNLabelConsistency

from .contract import check_attack, check_declarations, check_detector, check_invalid_params


class _Unseeded(BadNets):
    """Ignores random_state: every call draws a different mask."""

    def _poison(self, X, y, *, n_classes, rng, **needs):
        return super()._poison(X, y, n_classes=n_classes, rng=np.random.default_rng(), **needs)


class _LiesAboutMask(BaseAttack):
    """Changes samples it does not report."""

    _parameter_constraints = {"random_state": ["random_state"]}

    def __init__(self, *, random_state=None):
        self.random_state = random_state

    def _poison(self, X, y, *, n_classes, rng, **needs):
        y2 = (y + 1) % n_classes
        mask = np.zeros(len(y), bool)
        mask[0] = True
        return PoisonResult(np.array(X), y2, mask, np.array([0]))


class _BadFlags(KNNLabelConsistency):
    def fit(self, X, y):
        super().fit(X, y)
        self.flags_ = ~self.flags_
        return self


class _Toy(BaseDetector):
    """A correct detector: distance to the mean, with one declared hyperparameter."""

    _parameter_constraints = {"power": [Interval(numbers.Real, 0, None, closed="neither")],
                              "contamination": CONTAMINATION}

    def __init__(self, *, power=1.0, contamination=0.1):
        self.power = power
        self.contamination = contamination

    def fit(self, X, y=None):
        X = check_array(X, "X", min_ndim=2)
        self._calibrate(np.abs(X - X.mean(axis=0)).sum(axis=1) ** self.power)
        return self


class _Unenforced(_Toy):
    """Declares its constraints but never checks them."""

    def _validate_params(self):
        pass


class _IgnoresInput(_Toy):
    """Scores that depend only on how many samples there are."""

    def fit(self, X, y=None):
        self._calibrate(np.linspace(0.0, 1.0, len(X)))
        return self


class _Undeclared(_Toy):
    """A parameter without a declaration."""

    def __init__(self, *, power=1.0, offset=0.0, contamination=0.1):
        super().__init__(power=power, contamination=contamination)
        self.offset = offset


class _DeclaresGhost(_Toy):
    _parameter_constraints = {**_Toy._parameter_constraints, "ghost": [None]}


class _OwnSeedRule(_Toy):
    _parameter_constraints = {**_Toy._parameter_constraints, "random_state": [Interval(numbers.Integral, 0, None,
                                                                                        closed="left")]}

    def __init__(self, *, power=1.0, contamination=0.1, random_state=0):
        super().__init__(power=power, contamination=contamination)
        self.random_state = random_state


class _BypassingAttack(BadNets):
    """A BadNets whose declared target_mode options are never checked."""

    def _validate_params(self):
        pass


@pytest.mark.parametrize("cls, msg", [(_Unseeded, "same random_state"), (_LiesAboutMask, "outside poison_mask")])
def test_contract_catches_broken_attacks(cls, msg):
    with pytest.raises(AssertionError, match=msg):
        check_attack(cls)


def test_contract_catches_broken_detector():
    with pytest.raises(AssertionError, match="scores_ > threshold_"):
        check_detector(_BadFlags)


def test_the_toy_detector_passes():
    # the positive control of the tests below: what they break is all that is wrong
    check_detector(_Toy)


def test_contract_catches_an_unenforced_constraint():
    with pytest.raises(AssertionError, match=r"accepted the invalid value power=.*not enforced"):
        check_detector(_Unenforced)
    with pytest.raises(AssertionError, match=r"_BypassingAttack accepted the invalid value target_mode="):
        check_attack(_BypassingAttack)


def test_contract_catches_scores_that_ignore_the_input():
    with pytest.raises(AssertionError, match="scores_ must depend on the data"):
        check_detector(_IgnoresInput)


def test_contract_catches_missing_and_stray_declarations():
    with pytest.raises(AssertionError, match=r"does not declare constraints for parameter\(s\) \['offset'\]"):
        check_detector(_Undeclared)
    with pytest.raises(AssertionError, match=r"non-parameter\(s\) \['ghost'\]"):
        check_declarations(_DeclaresGhost)
    with pytest.raises(AssertionError, match="one convention"):
        check_declarations(_OwnSeedRule)


def test_contract_catches_an_error_that_does_not_name_the_parameter():
    class _Vague(_Toy):
        def _validate_params(self):
            if not self.power > 0:
                from poisonlab import InvalidParameterError

                raise InvalidParameterError("bad value")
            super()._validate_params()

    X = np.random.default_rng(0).normal(size=(20, 3))
    with pytest.raises(AssertionError, match="does not name 'power'"):
        check_invalid_params(_Vague, {}, lambda det: det.fit(X))


def test_contract_catches_a_wrong_exception_type():
    class _Crashes(_Unenforced):
        def fit(self, X, y=None):
            if not self.power > 0:
                raise RuntimeError("boom")
            return super().fit(X, y)

    X = np.random.default_rng(0).normal(size=(20, 3))
    with pytest.raises(AssertionError, match="raised RuntimeError instead of an InvalidParameterError"):
        check_invalid_params(_Crashes, {}, lambda det: det.fit(X))


# --- trainers --------------------------------------------------------------------------------

from poisonlab.defenses.training.partition import DeepPartitionAggregation  # noqa: E402

from .contract import check_trainer, trainer_case  # noqa: E402


class _IgnoresSeed(DeepPartitionAggregation):
    """Trains its base models from a fresh seed, whatever random_state says."""

    def _fit(self, X, y, *, model_factory, config, rng, **hooks):
        from poisonlab.models import TrainConfig

        saved, self.random_state = self.random_state, None
        try:
            fresh = TrainConfig(**{**config.to_dict(), "seed": int(np.random.default_rng().integers(2**31))})
            super()._fit(X, y, model_factory=model_factory, config=fresh, rng=np.random.default_rng(), **hooks)
        finally:
            self.random_state = saved


class _ModifiesInput(DeepPartitionAggregation):
    """Standardises the caller's array in place before training."""

    def fit(self, X, y, **kw):
        X -= X.mean(axis=0)
        return super().fit(X, y, **kw)


def test_the_dpa_trainer_passes_the_trainer_contract():
    params, fit_kwargs, user_class = trainer_case("dpa")
    check_trainer(DeepPartitionAggregation, params, fit_kwargs, user_class)


def test_contract_catches_a_trainer_that_ignores_random_state():
    params, fit_kwargs, user_class = trainer_case("dpa")
    with pytest.raises(AssertionError, match="same random_state must give the same predictions"):
        check_trainer(_IgnoresSeed, params, fit_kwargs, user_class)


def test_contract_catches_a_trainer_that_modifies_its_input():
    params, fit_kwargs, user_class = trainer_case("dpa")
    with pytest.raises(AssertionError, match="fit modified its inputs"):
        check_trainer(_ModifiesInput, params, fit_kwargs, user_class)


# --- federated update attacks ----------------------------------------------------------------

from poisonlab.attacks.federated import IPM, GaussianNoise, SignFlip  # noqa: E402

from .contract import check_update_attack  # noqa: E402


class _ModifiesOwnUpdates(SignFlip):
    """Zeroes the first coordinate of the caller's own updates before flipping them."""

    def craft(self, own_updates, **kw):
        own_updates[:, 0] = 0.0
        return super().craft(own_updates, **kw)


class _Echo(SignFlip):
    """Sends exactly what an honest client would (a copy of its own update)."""

    def _craft(self, own, *, honest, n_clients, rng):
        return np.array(own, copy=True)


class _UnseededNoise(GaussianNoise):
    """Ignores random_state: fresh noise on every call."""

    def _craft(self, own, *, honest, n_clients, rng):
        return super()._craft(own, honest=honest, n_clients=n_clients, rng=np.random.default_rng())


class _ClaimsOwnKnowledge(IPM):
    """Reads the honest updates while declaring that it sees only its own."""

    knowledge = "own"


def test_the_sign_flip_attack_passes_the_update_attack_contract():
    # the positive control of the tests below: what they break is all that is wrong
    check_update_attack(SignFlip)


@pytest.mark.parametrize("cls, msg", [
    (_ModifiesOwnUpdates, "craft modified its inputs"),
    (_Echo, "returned the honest update unchanged"),
    (_UnseededNoise, "same random_state must give the same updates"),
    (_ClaimsOwnKnowledge, "declares knowledge='own' but fails without honest updates"),
])
def test_contract_catches_broken_update_attacks(cls, msg):
    with pytest.raises(AssertionError, match=msg):
        check_update_attack(cls)


# --- aggregators -----------------------------------------------------------------------------

from poisonlab.base import BaseAggregator  # noqa: E402
from poisonlab.defenses.federated import CoordinateMedian, FedAvg, FLTrust, Krum  # noqa: E402

from .contract import check_aggregator  # noqa: E402


class _TrustsClientZero(BaseAggregator):
    """Returns client 0's update whatever the others send: trust by position."""

    uses_weights = False
    _parameter_constraints: dict = {}

    def __init__(self):
        pass

    def _aggregate(self, U, w, **context):
        eff = np.zeros(len(U))
        eff[0] = 1.0
        return U[0].copy(), eff


class _IgnoresWeights(CoordinateMedian):
    """Declares that client weights matter but ignores them."""

    uses_weights = True


class _HidesItsWeights(FedAvg):
    """Declares that client weights do not matter but uses them."""

    uses_weights = False


class _MeanClaimingRobust(FedAvg):
    """The plain mean, declared robust."""

    robust = True


def test_robust_aggregators_pass_the_aggregator_contract():
    # the positive controls of the tests below: what they break is all that is wrong
    check_aggregator(CoordinateMedian)
    check_aggregator(Krum, {"f": 1})
    check_aggregator(FLTrust)
    check_aggregator(FedAvg)  # not robust, and says so


@pytest.mark.parametrize("cls, msg", [
    (_TrustsClientZero, "permuting the clients must permute weights_"),
    (_IgnoresWeights, "declares uses_weights = True but client weights do not change"),
    (_HidesItsWeights, "declares uses_weights = False but client weights change"),
    (_MeanClaimingRobust, "declares robust = True but one client sending 1e6 x an honest update dragged"),
])
def test_contract_catches_broken_aggregators(cls, msg):
    with pytest.raises(AssertionError, match=msg):
        check_aggregator(cls)
