"""Audio: WAV reading, log-mel spectrograms and MFCCs in numpy/scipy, and the Free Spoken Digit
Dataset (FSDD). Nothing is downloaded."""

from __future__ import annotations

import os
import re
import struct
import wave
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..exceptions import DataError
from .dataset import Dataset, Splits
from .paths import find_dir

FSDD_RATE = 8000
_FSDD_NAME = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)\.wav$")


def read_wav(path: str | os.PathLike, *, expected_rate: int | None = None) -> tuple[np.ndarray, int]:
    """Read a PCM WAV file as float32 in [-1, 1] (channels averaged to mono) and its rate.

    Raises DataError for a file that is not WAV, truncated, not 8/16/32-bit PCM, or (with
    ``expected_rate``) recorded at another sample rate.
    """
    path = Path(path)
    try:
        with wave.open(str(path), "rb") as w:
            n_ch, width, rate, n = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
            raw = w.readframes(n)
    except (wave.Error, EOFError, RuntimeError, struct.error, ValueError, OverflowError) as exc:
        # the standard library's reader raises RuntimeError or struct.error on damaged chunks
        raise DataError(f"{path} is not a readable PCM WAV file: {exc or type(exc).__name__}") from exc
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    if n_ch < 1:
        raise DataError(f"{path}: the header says {n_ch} channels")
    if width not in (1, 2, 4):
        raise DataError(f"{path}: {8 * width}-bit samples are not supported (8, 16 or 32-bit PCM)")
    if len(raw) != n * n_ch * width:
        raise DataError(f"{path} is truncated: header says {n} frames, data holds "
                        f"{len(raw) // max(n_ch * width, 1)}")
    if expected_rate is not None and rate != expected_rate:
        raise DataError(f"{path} is sampled at {rate} Hz; expected {expected_rate} Hz (resample it first)")
    if width == 1:
        data = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
    else:
        dtype = "<i2" if width == 2 else "<i4"
        data = np.frombuffer(raw, dtype).astype(np.float32) / float(2 ** (8 * width - 1))
    return data.reshape(-1, n_ch).mean(axis=1), rate


def fix_length(wave_: np.ndarray, length: int) -> np.ndarray:
    """Trim or zero-pad (at the end) a waveform to ``length`` samples."""
    out = np.zeros(length, dtype=np.float32)
    out[: min(length, len(wave_))] = wave_[:length]
    return out


def hz_to_mel(f):
    """HTK mel scale: ``2595 log10(1 + f / 700)``."""
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


@lru_cache(maxsize=16)
def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0,
                   fmax: float | None = None) -> np.ndarray:
    """Triangular filters ``(n_mels, n_fft // 2 + 1)``, evenly spaced on the HTK mel scale."""
    fmax = sample_rate / 2 if fmax is None else fmax
    freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    lower, center, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs[None, :] - lower) / (center - lower)
    down = (upper - freqs[None, :]) / (upper - center)
    fb = np.maximum(0.0, np.minimum(up, down))
    fb.setflags(write=False)
    return fb


def stft_power(waves: np.ndarray, n_fft: int = 256, hop: int = 80) -> np.ndarray:
    """Power spectrogram ``(N, n_fft // 2 + 1, frames)`` of a batch of equal-length waveforms
    (Hann window, no centre padding), vectorised over the batch."""
    waves = np.atleast_2d(np.asarray(waves, dtype=np.float32))
    if waves.shape[1] < n_fft:
        raise DataError(f"waveforms of {waves.shape[1]} samples are shorter than n_fft={n_fft}")
    frames = np.lib.stride_tricks.sliding_window_view(waves, n_fft, axis=1)[:, ::hop]
    spec = np.fft.rfft(frames * np.hanning(n_fft).astype(np.float32), axis=-1)
    return (np.abs(spec) ** 2).transpose(0, 2, 1).astype(np.float32)


def log_mel_spectrogram(waves: np.ndarray, sample_rate: int, *, n_fft: int = 256, hop: int = 80,
                        n_mels: int = 32, eps: float = 1e-6) -> np.ndarray:
    """``log(mel_filterbank @ |STFT|^2 + eps)``: ``(N, n_mels, frames)``."""
    power = stft_power(waves, n_fft, hop)
    fb = mel_filterbank(sample_rate, n_fft, n_mels).astype(np.float32)
    return np.log(np.einsum("mf,nft->nmt", fb, power) + eps)


def mfcc(waves: np.ndarray, sample_rate: int, *, n_mfcc: int = 13, **kw) -> np.ndarray:
    """MFCCs: the type-II orthonormal DCT of the log-mel spectrogram over mel bands, first
    ``n_mfcc`` coefficients: ``(N, n_mfcc, frames)``."""
    from scipy.fft import dct

    return dct(log_mel_spectrogram(waves, sample_rate, **kw), type=2, axis=1, norm="ortho")[:, :n_mfcc]


def load_fsdd(root=None, *, features: str = "logmel", duration: float = 1.0, n_mels: int = 32,
              n_mfcc: int = 13) -> Splits:
    """Free Spoken Digit Dataset v1.0.10: 3000 recordings, 6 speakers x 10 digits x 50 takes.

    Official split: takes 0-4 test, 5-49 train. Each recording is trimmed or padded to
    ``duration`` seconds at 8 kHz. ``features``: "logmel" ``(N, 1, n_mels, frames)``, "mfcc"
    ``(N, 1, n_mfcc, frames)``, or "waveform" ``(N, T)``. The speaker of each sample is the
    ``contributor`` metadata column.
    """
    if features not in ("logmel", "mfcc", "waveform"):
        raise DataError(f"features must be 'logmel', 'mfcc' or 'waveform'; got {features!r}")
    folder = find_dir(root, "fsdd/recordings", "recordings", "fsdd")
    files = sorted(p for p in folder.glob("*.wav") if _FSDD_NAME.match(p.name))
    if not files:
        raise DataError(f"no FSDD recordings ({{digit}}_{{speaker}}_{{take}}.wav) in {folder}")
    length = int(round(duration * FSDD_RATE))
    waves = np.stack([fix_length(read_wav(p, expected_rate=FSDD_RATE)[0], length) for p in files])
    meta = [_FSDD_NAME.match(p.name).groups() for p in files]
    y = np.array([int(m[0]) for m in meta])
    speakers = np.array([m[1] for m in meta])
    takes = np.array([int(m[2]) for m in meta])
    if features == "logmel":
        X = log_mel_spectrogram(waves, FSDD_RATE, n_mels=n_mels)[:, None]
    elif features == "mfcc":
        X = mfcc(waves, FSDD_RATE, n_mfcc=n_mfcc, n_mels=max(n_mels, n_mfcc))[:, None]
    else:
        X = waves
    ids = np.array([p.stem for p in files])
    out = []
    for split, mask in (("train", takes >= 5), ("test", takes < 5)):
        out.append(Dataset(X=X[mask], y=y[mask], classes=tuple(str(i) for i in range(10)),
                           modality="audio", ids=ids[mask], name="fsdd",
                           metadata={"contributor": speakers[mask], "source": np.full(mask.sum(), "fsdd")},
                           info={"sample_rate": FSDD_RATE, "features": features,
                                 "duration": duration, "waveforms": waves[mask]}))
    return Splits(*out)
