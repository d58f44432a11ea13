"""Audio backdoors: a tone or a noise burst mixed into the waveform."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from ..._validation import Interval, Options
from ...base import BackdoorAttack
from ...exceptions import DataError, InvalidParameterError
from ...registry import register
from ..triggers import mix_into, tone


@register("attack", "audio_trigger")
class AudioTrigger(BackdoorAttack):
    """Audio backdoor: mix a short tone (or a noise burst) into the waveform and relabel (the
    audio triggers of e.g. Koffas et al. 2022, "Can You Hear It? Backdoor Attacks via Ultrasonic
    Triggers", and Liu et al. 2018's trojaned speech model).

    Works on raw waveforms ``(N, T)`` in [-1, 1] (``load_fsdd(features="waveform")``); compute
    the model's features (log-mel, MFCC) after poisoning, as the victim's pipeline would.

    Threat model: the attacker edits ``n_poison`` training recordings (and labels) and can play
    the same sound at test time.

    Parameters
    ----------
    kind : {"tone", "noise"}, default="tone"
    frequency : float, default=3000.0
        Tone frequency in Hz; must be below the Nyquist frequency.
    duration : float, default=0.1
        Seconds.
    amplitude : float in (0, 1], default=0.05
    position : float or {"start", "end"}, default="start"
        Start of the trigger in seconds, or at the start / end of the clip.
    sample_rate : int, default=8000
        Rate the trigger is synthesised for; ``poison(..., sample_rate=r)`` refuses data at another.
    target, target_mode, poison_rate, n_poison, random_state
        As :class:`~poisonlab.attacks.data.BadNets`.
    """

    modalities = ("audio",)
    min_ndim = 2

    _parameter_constraints = {
        "kind": [Options(("tone", "noise"))],
        "frequency": [Interval(numbers.Real, 0, None, closed="neither")],
        "duration": [Interval(numbers.Real, 0, None, closed="neither")],
        "amplitude": [Interval(numbers.Real, 0, 1, closed="right")],
        "position": [Interval(numbers.Real, 0, None, closed="left"), Options(("start", "end"))],
        "sample_rate": [Interval(numbers.Integral, 1, None, closed="left")],
        **BackdoorAttack._parameter_constraints,
    }

    def __init__(self, *, kind: str = "tone", frequency: float = 3000.0, duration: float = 0.1,
                 amplitude: float = 0.05, position: Any = "start", sample_rate: int = 8000, target: int = 0,
                 target_mode: str = "all-to-one", poison_rate: float | None = 0.05, n_poison: int | None = None,
                 random_state: Any = None) -> None:
        self.kind = kind
        self.frequency = frequency
        self.duration = duration
        self.amplitude = amplitude
        self.position = position
        self.sample_rate = sample_rate
        self.target = target
        self.target_mode = target_mode
        self.poison_rate = poison_rate
        self.n_poison = n_poison
        self.random_state = random_state

    def poison(self, X, y, **needs):
        self._validate_params()  # sample_rate is compared below, before the base class runs
        rate = needs.pop("sample_rate", None)
        if rate is not None and int(rate) != int(self.sample_rate):
            raise DataError(f"the audio is sampled at {rate} Hz but the trigger is built for "
                            f"{self.sample_rate} Hz; resample the audio or set sample_rate={rate}")
        return super().poison(X, y, **needs)

    def _fit_trigger(self, X, rng):
        if self.frequency >= self.sample_rate / 2:
            raise InvalidParameterError(f"frequency must be below the Nyquist frequency sample_rate / 2 = "
                                        f"{self.sample_rate / 2:g} Hz; got {self.frequency!r}")
        if X.ndim != 2:
            raise DataError(f"audio triggers work on waveforms (n_samples, n_time); got shape {X.shape}")
        n = int(round(self.duration * self.sample_rate))
        if n < 1 or n > X.shape[1]:
            raise InvalidParameterError(f"duration {self.duration} s is {n} samples; the clips hold {X.shape[1]}")
        if self.kind == "tone":
            self.signal_ = tone(n, self.sample_rate, float(self.frequency), float(self.amplitude))
        else:
            self.signal_ = float(self.amplitude) * rng.uniform(-1.0, 1.0, n)
        if self.position == "start":
            self.start_ = 0
        elif self.position == "end":
            self.start_ = X.shape[1] - n
        else:
            self.start_ = int(round(float(self.position) * self.sample_rate))
            if self.start_ + n > X.shape[1]:
                raise InvalidParameterError(f"a trigger at {self.position} s runs past the end of the clip")

    def _check_trigger_ready(self):
        if getattr(self, "signal_", None) is None:
            from ...exceptions import NotFittedError

            raise NotFittedError("the audio trigger is built for the clips' length in poison(); call poison(...) first")

    def _apply_trigger(self, X: np.ndarray, *, test: bool = False) -> np.ndarray:
        return mix_into(X, self.signal_, self.start_)
