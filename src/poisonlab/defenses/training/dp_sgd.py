"""DP-SGD through Opacus: per-sample clipping and Gaussian noise bound the influence of any one
training sample (Abadi et al. 2016), which also bounds what a few poisons can do (Ma, Zhu & Hsu
2019; Hong et al. 2020)."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from ..._validation import Interval, Options
from ...base import BaseTrainer
from ...exceptions import InvalidParameterError
from ...registry import register
from ._torch_setup import build_module, classifier_from, resolve_config

#: Accountants Opacus offers: Renyi DP (Mironov 2017), privacy loss random variables (Gopi et al.
#: 2021, tighter) and Gaussian DP (Dong et al. 2019, asymptotic).
ACCOUNTANTS = ("rdp", "prv", "gdp")


def opacus_problems(module: Any) -> list[str]:
    """What Opacus refuses in ``module``, one short line per offending layer, named by its path
    in the module (``"bn1 (BatchNorm1d): BatchNorm cannot support training with differential
    privacy."``); empty when Opacus can wrap it.

    Each submodule goes through ``opacus.validators.ModuleValidator``'s validators for its type
    (and the whole module through ``ModuleValidator.validate``, for what is not a layer's fault),
    and layers with ``inplace=True`` are named too: since Opacus 1.5.4 in-place activations break
    its backward hooks, which the validators do not catch.

    Examples
    --------
    >>> from torch import nn
    >>> opacus_problems(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)))
    []
    >>> opacus_problems(nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(inplace=True)))
    ['1 (BatchNorm1d): BatchNorm cannot support training with differential privacy.', '2 (ReLU): in-place operation (inplace=True) breaks per-sample gradient hooks.']
    """
    from opacus.validators import ModuleValidator

    def first_sentence(err: Any) -> str:
        text = " ".join(str(err).split())
        return text.split(". ")[0].rstrip(".") + "."

    lines: list[str] = []
    seen: set[str] = set()
    for name, sub in module.named_modules():
        label = f"{name or '<root>'} ({type(sub).__name__})"
        validator = ModuleValidator.VALIDATORS.get(type(sub))
        for err in (validator(sub) if validator is not None else []):
            msg = first_sentence(err)
            seen.add(msg)
            lines.append(f"{label}: {msg}")
        if getattr(sub, "inplace", False) is True:
            lines.append(f"{label}: in-place operation (inplace=True) breaks per-sample gradient hooks.")
    for err in ModuleValidator.validate(module, strict=False):
        msg = first_sentence(err)
        if msg not in seen:
            lines.append(f"{type(module).__name__}: {msg}")
    return lines


def check_opacus_compatible(module: Any) -> None:
    """Raise one InvalidParameterError naming every layer Opacus refuses (``model_factory``'s
    model cannot be trained with DP-SGD as it is)."""
    problems = opacus_problems(module)
    if problems:
        raise InvalidParameterError(
            f"model_factory's model cannot be trained with DP-SGD (Opacus refuses "
            f"{len(problems)} layer(s)): " + "; ".join(problems)
            + ". Replace BatchNorm by GroupNorm (opacus.validators.ModuleValidator.fix) and in-place "
              "operations by out-of-place ones")


def poisson_batches(sample_rate: float):
    """A ``loader_factory``: every sample joins each batch independently with probability
    ``sample_rate`` (Poisson sampling, what the accountant's subsampling analysis assumes),
    ``round(1 / sample_rate)`` batches per epoch, drawn from the loop's seeded generator.

    Examples
    --------
    >>> import torch
    >>> from poisonlab.models import TrainConfig
    >>> batches = poisson_batches(0.25)(100, TrainConfig(), torch.Generator().manual_seed(0))
    >>> len(batches), 10 < sum(len(b) for b in batches) / 4 < 40
    (4, True)
    """
    import torch

    def loader(n: int, config: Any, generator: "torch.Generator"):
        steps = max(1, int(round(1.0 / sample_rate)))
        draws = torch.rand((steps, n), generator=generator) < sample_rate
        return [torch.nonzero(row, as_tuple=False).flatten() for row in draws]

    return loader


@register("trainer", "dp_sgd")
class DPSGD(BaseTrainer):
    """DP-SGD through Opacus (Abadi et al., CCS 2016, "Deep Learning with Differential Privacy"):
    clip every sample's gradient to ``max_grad_norm``, add Gaussian noise of standard deviation
    ``noise_multiplier * max_grad_norm`` to the sum, sample batches by Poisson sampling, and
    account the privacy spent, reported as ``epsilon_`` for ``delta_``.

    The user's model factory, optimizer factory and loss go through unchanged: the module the
    factory builds is wrapped in Opacus's ``GradSampleModule`` and the optimizer in its
    ``DPOptimizer`` by ``PrivacyEngine.make_private`` (Opacus wraps, never replaces); the loop
    is :func:`~poisonlab.models.training.train_module` with a Poisson ``loader_factory`` of
    sample rate ``batch_size / n``.

    Threat model: the attacker controls some training samples (a backdoor, flipped labels); a
    (epsilon, delta)-DP training bounds how much any k of them can change the distribution of
    the model (group privacy: by a factor e^(k epsilon)), so against a few poisons DP-SGD is a
    certified-in-distribution defense (Ma, Zhu & Hsu, IJCAI 2019) and in practice it slows the
    learning of rare patterns such as a trigger (Hong et al. 2020). Against many poisons (1% of
    a large set) the guarantee is vacuous and what helps is the clipping and noise themselves.

    Parameters
    ----------
    noise_multiplier : float >= 0, default=1.0
        Noise standard deviation over ``max_grad_norm``. 0 clips without noise (no privacy:
        ``epsilon_`` is infinite).
    max_grad_norm : float > 0, default=1.0
        Per-sample gradient clipping bound C.
    delta : float in (0, 1), default=1e-5
        The delta ``epsilon_`` is reported for (take it below 1 / n).
    accountant : {"rdp", "prv", "gdp"}, default="rdp"
        Opacus's accountant: Renyi DP (Mironov 2017), privacy loss random variables (Gopi et
        al. 2021) or Gaussian DP.
    random_state : int, Generator or None
        Seeds the training (initial weights, Poisson sampling, the noise) when given; None keeps
        ``config.seed``.

    Attributes
    ----------
    classifier_ : TorchClassifier
    epsilon_ : float
        The privacy spent, for ``delta_`` (``inf`` when ``noise_multiplier`` is 0).
    delta_ : float
    history_ : TrainHistory
    sample_rate_ : float

    Limits
    ------
    Opacus needs per-sample gradients: no BatchNorm (GroupNorm instead), no in-place
    operations on activations; every poisonlab reference architecture qualifies. A model Opacus
    refuses raises an InvalidParameterError naming the layer. The guarantee is per sample: a
    contributor with many samples needs group privacy. The noise is drawn from torch's
    (non-cryptographic) generator seeded by the config, for reproducibility; a deployment that
    needs a real guarantee should use Opacus's ``secure_mode``. A Poisson batch that comes out
    empty is skipped (with 128 expected samples, probability e^-128 per step).

    Examples
    --------
    >>> import numpy as np
    >>> from poisonlab.defenses.training import DPSGD
    >>> from poisonlab.models import TrainConfig, model_factory
    >>> X = np.random.default_rng(0).normal(size=(200, 4)).astype("float32"); y = (X[:, 0] > 0).astype(int)
    >>> dp = DPSGD(noise_multiplier=1.0, random_state=0).fit(
    ...     X, y, model_factory=model_factory("mlp", "tabular", hidden=(8,)),
    ...     config=TrainConfig(epochs=2, batch_size=50, lr=0.1, optimizer="sgd"))
    >>> 0 < dp.epsilon_ < 10, dp.predict(X[:3]).shape
    (True, (3,))
    """

    _parameter_constraints = {
        "noise_multiplier": [Interval(numbers.Real, 0, None, closed="left")],
        "max_grad_norm": [Interval(numbers.Real, 0, None, closed="neither")],
        "delta": [Interval(numbers.Real, 0, 1, closed="neither")],
        "accountant": [Options(ACCOUNTANTS)],
        "random_state": ["random_state"],
    }

    def __init__(self, *, noise_multiplier: float = 1.0, max_grad_norm: float = 1.0, delta: float = 1e-5,
                 accountant: str = "rdp", random_state: Any = None) -> None:
        self.noise_multiplier = noise_multiplier
        self.max_grad_norm = max_grad_norm
        self.delta = delta
        self.accountant = accountant
        self.random_state = random_state

    def _fit(self, X, y, *, model_factory, config, rng, optimizer_factory=None, loss_fn=None,
             callback=None, **hooks):
        import warnings

        import torch
        from opacus import GradSampleModule, PrivacyEngine

        from ...models.training import default_optimizer, train_module

        if hooks.get("loader_factory") is not None:
            raise InvalidParameterError("loader_factory: DP-SGD draws its own Poisson batches (the "
                                        "accountant's assumption); do not pass a loader_factory")
        cfg = resolve_config(config, self.random_state, rng)
        module, spec = build_module(model_factory, X, y)
        check_opacus_compatible(module)
        n = len(X)
        sample_rate = min(1.0, cfg.batch_size / n)
        with warnings.catch_warnings():
            # secure_mode=False is stated in Limits; Opacus warns about it at every construction
            warnings.filterwarnings("ignore", message=".*[Ss]ecure RNG.*")
            engine = PrivacyEngine(accountant=self.accountant)
        gsm = GradSampleModule(module, batch_first=True, loss_reduction="mean")
        index_loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.arange(n)),
                                                   batch_size=cfg.batch_size)
        base_factory = optimizer_factory or default_optimizer

        def make_optimizer(params, config):
            base = base_factory(params, config)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*[Ss]ecure RNG.*")
                _, dp_opt, _ = engine.make_private(
                    module=gsm, optimizer=base, data_loader=index_loader,
                    noise_multiplier=float(self.noise_multiplier), max_grad_norm=float(self.max_grad_norm),
                    poisson_sampling=True)
            return dp_opt

        with warnings.catch_warnings():
            # the first layer's inputs need no gradient: torch notes it once per backward hook
            warnings.filterwarnings("ignore", message="Full backward hook is firing")
            self.history_ = train_module(gsm, np.asarray(X), np.asarray(y), cfg, callback=callback,
                                         optimizer_factory=make_optimizer, loss_fn=loss_fn,
                                         loader_factory=poisson_batches(sample_rate),
                                         on_batch_losses=hooks.get("on_batch_losses"))
        self.sample_rate_ = sample_rate
        self.delta_ = float(self.delta)
        if self.noise_multiplier == 0:
            self.epsilon_ = math.inf
        else:
            self.epsilon_ = float(engine.accountant.get_epsilon(delta=float(self.delta)))
        gsm._close()  # removes Opacus's hooks and per-sample gradients from the module
        self.classifier_ = classifier_from(module, spec.n_classes)
        self.config_ = cfg
