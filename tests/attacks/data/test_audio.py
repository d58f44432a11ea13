"""Audio triggers: the tone, where it is mixed in, and bad input."""

import numpy as np
import pytest

from poisonlab.attacks.data import AudioTrigger
from poisonlab.attacks.triggers import mix_into, tone
from poisonlab.exceptions import DataError, InvalidParameterError


def test_tone_and_audio_trigger():
    s = tone(800, 8000, 1000.0, 0.5)
    assert np.abs(s).max() <= 0.5 and s[0] == 0.0
    spectrum = np.abs(np.fft.rfft(s))
    assert np.argmax(spectrum) == 100  # 1 kHz in an 800-sample window at 8 kHz
    W = np.zeros((6, 8000), np.float32)
    assert np.allclose(mix_into(W, s, 100)[:, 100:900], s.astype(np.float32))
    y = np.arange(6) % 3
    atk = AudioTrigger(frequency=1000.0, duration=0.1, amplitude=0.5, position="end", n_poison=2, target=0,
                       random_state=0)
    res = atk.poison(W, y, sample_rate=8000)
    assert np.allclose(res.X[res.indices][:, -800:], s.astype(np.float32))


def test_audio_trigger_bad_input():
    W = np.zeros((6, 8000), np.float32)
    y = np.arange(6) % 3
    with pytest.raises(DataError, match="sampled at 16000 Hz"):
        AudioTrigger(n_poison=1).poison(W, y, sample_rate=16000)
    with pytest.raises(InvalidParameterError, match="frequency"):
        AudioTrigger(frequency=5000.0, n_poison=1).poison(W, y)
    with pytest.raises(InvalidParameterError, match="runs past the end"):
        AudioTrigger(position=0.95, n_poison=1).poison(W, y)
    with pytest.raises(DataError, match="waveforms"):
        AudioTrigger(n_poison=1).poison(np.zeros((6, 1, 32, 40)), y)
