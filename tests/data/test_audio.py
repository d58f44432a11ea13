"""Audio: the real FSDD set, WAV reading, and the mel features by hand."""

import wave

import numpy as np
import pytest

from poisonlab import DataError
from poisonlab.data import load_fsdd, log_mel_spectrogram, mfcc, read_wav
from poisonlab.data.audio import mel_filterbank


def test_fsdd_real(data_dir):
    s = load_fsdd(data_dir)
    assert len(s.train) == 2700 and len(s.test) == 300
    assert set(s.train.class_counts()) == {270} and s.train.X.shape[1:2] == (1,)
    assert set(s.train.metadata["contributor"]) == {"george", "jackson", "lucas", "nicolas", "theo", "yweweler"}
    assert np.isfinite(s.train.X).all()


def _wav(path, rate, data):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.asarray(data, dtype="<i2").tobytes())


def test_wav_reading_and_bad_rate(tmp_path):
    f = tmp_path / "a.wav"
    _wav(f, 8000, [0, 16384, -32768])
    wav, rate = read_wav(f, expected_rate=8000)
    assert rate == 8000 and wav.tolist() == [0.0, 0.5, -1.0]
    _wav(f, 16000, [0, 1])
    with pytest.raises(DataError, match="16000 Hz; expected 8000"):
        read_wav(f, expected_rate=8000)
    f.write_bytes(b"RIFF....WAVE")
    with pytest.raises(DataError, match="not a readable PCM WAV"):
        read_wav(f)


def test_mel_features_hand_checks():
    fb = mel_filterbank(8000, 256, 32)
    assert fb.shape == (32, 129) and (fb >= 0).all() and fb.max() <= 1.0
    t = np.arange(8000) / 8000
    tone = np.sin(2 * np.pi * 1000 * t).astype(np.float32)[None]
    S = log_mel_spectrogram(tone, 8000)
    band = S[0].mean(axis=1).argmax()
    centres = np.linspace(0, 2595 * np.log10(1 + 4000 / 700), 34)[1:-1]
    assert abs(700 * (10 ** (centres[band] / 2595) - 1) - 1000) < 150  # the 1 kHz band lights up
    M = mfcc(tone, 8000, n_mfcc=13)
    assert M.shape == (1, 13, S.shape[2]) and np.isfinite(M).all()
