"""DP-SGD through Opacus: epsilon from the accountant, clear refusals, seeded training."""

import math

import numpy as np
import pytest
from torch import nn

pytest.importorskip("opacus")

from poisonlab.defenses.training import DPSGD  # noqa: E402
from poisonlab.defenses.training.dp_sgd import opacus_problems  # noqa: E402
from poisonlab.exceptions import InvalidParameterError  # noqa: E402
from poisonlab.models import TrainConfig, model_factory  # noqa: E402
from poisonlab.models.architectures import ARCHITECTURES, ModelSpec, build_model  # noqa: E402

CFG = TrainConfig(epochs=2, batch_size=40, lr=0.05, optimizer="sgd", seed=0)
FACTORY = model_factory("mlp", "tabular", hidden=(8,))


def _data():
    X = np.random.default_rng(0).normal(size=(200, 4)).astype("float32")
    return X, (X[:, 0] > 0).astype(int)


def test_epsilon_matches_the_accountant_and_falls_with_noise():
    from opacus.accountants import RDPAccountant

    X, y = _data()
    eps = [DPSGD(noise_multiplier=s, random_state=0).fit(X, y, model_factory=FACTORY, config=CFG).epsilon_
           for s in (0.5, 1.0, 2.0)]
    assert eps[0] > eps[1] > eps[2] > 0
    acc = RDPAccountant()
    for _ in range(2 * 5):  # 2 epochs x round(1 / (40 / 200)) Poisson steps
        acc.step(noise_multiplier=1.0, sample_rate=0.2)
    assert eps[1] == pytest.approx(acc.get_epsilon(delta=1e-5))
    assert math.isinf(DPSGD(noise_multiplier=0.0, random_state=0).fit(X, y, model_factory=FACTORY, config=CFG).epsilon_)


def test_seeded_and_inputs_untouched_and_module_clean():
    X, y = _data()
    X0 = X.copy()
    a = DPSGD(random_state=1).fit(X, y, model_factory=FACTORY, config=CFG)
    b = DPSGD(random_state=1).fit(X, y, model_factory=FACTORY, config=CFG)
    assert np.array_equal(a.predict_proba(X), b.predict_proba(X)) and np.array_equal(X, X0)
    assert not any(hasattr(p, "grad_sample") for p in a.classifier_.module_.parameters())


def test_negative_noise_is_refused():
    X, y = _data()
    with pytest.raises(InvalidParameterError, match="noise_multiplier must be in \\[0, inf\\); got -1"):
        DPSGD(noise_multiplier=-1.0).fit(X, y, model_factory=FACTORY, config=CFG)


def test_a_model_opacus_refuses_names_the_layer():
    class Net(nn.Module):
        def __init__(self, spec):
            super().__init__()
            self.fc = nn.Linear(4, 8)
            self.norm = nn.BatchNorm1d(8)
            self.act = nn.ReLU(inplace=True)
            self.out = nn.Linear(8, 2)

        def forward(self, x):
            return self.out(self.act(self.norm(self.fc(x))))

    X, y = _data()
    with pytest.raises(InvalidParameterError) as err:
        DPSGD().fit(X, y, model_factory=Net, config=CFG)
    msg = str(err.value)
    assert "norm (BatchNorm1d)" in msg and "act (ReLU)" in msg and "\n" not in msg


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_reference_architectures_are_opacus_compatible(name):
    spec = {"mlp": ModelSpec((1, 28, 28), 10), "audio-wave-cnn": ModelSpec((8000,), 10)}.get(
        name, ModelSpec((1, 32, 40) if name.startswith("audio") else (1, 28, 28), 10, vocab_size=50))
    assert opacus_problems(build_model(name, spec)) == []
