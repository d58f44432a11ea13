"""Triggers as pure functions: each takes a batch and returns a triggered copy.

Images are ``(N, H, W)`` (one channel) or ``(N, C, H, W)`` (channels first); pass
``channels_last=True`` for ``(N, H, W, C)``. Any size and channel count works: a trigger is placed
on the last two spatial axes and broadcast over channels. Inputs are never modified.
"""

from __future__ import annotations

import numpy as np

from .._validation import check_option
from ..exceptions import DataError, InvalidParameterError

LOCATIONS = ("bottom-right", "bottom-left", "top-right", "top-left", "center")


def _spatial(X: np.ndarray, channels_last: bool) -> tuple[int, int]:
    """(H, W) of an image batch, with a clear error for non-image arrays."""
    if X.ndim == 3:
        return X.shape[1], X.shape[2]
    if X.ndim == 4:
        return (X.shape[1], X.shape[2]) if channels_last else (X.shape[2], X.shape[3])
    raise DataError(
        f"images must be (N, H, W) or (N, C, H, W){' / (N, H, W, C)' if channels_last else ''}; "
        f"got shape {X.shape}"
    )


def patch_pattern(kind: str | np.ndarray, size: int) -> np.ndarray:
    """A ``size x size`` pattern in [0, 1]: "square" (all ones) or "checkerboard" (BadNets)."""
    if isinstance(kind, np.ndarray):
        pattern = np.asarray(kind, dtype=np.float64)
        if pattern.ndim != 2 or not np.isfinite(pattern).all():
            raise InvalidParameterError(f"pattern must be a finite 2-D array; got shape {pattern.shape}")
        return pattern
    check_option(kind, "pattern", ("square", "checkerboard"))
    if kind == "square":
        return np.ones((size, size))
    ii, jj = np.indices((size, size))
    return ((ii + jj) % 2 == 0).astype(np.float64)


def patch_slices(height: int, width: int, ph: int, pw: int, location: str | tuple[int, int],
                 margin: int = 0) -> tuple[slice, slice]:
    """Row and column slices of a ``ph x pw`` patch at ``location`` (a name or (row, col))."""
    if isinstance(location, str):
        check_option(location, "location", LOCATIONS)
        top = {"top": margin, "bottom": height - ph - margin, "center": (height - ph) // 2}
        left = {"left": margin, "right": width - pw - margin, "center": (width - pw) // 2}
        if location == "center":
            r, c = top["center"], left["center"]
        else:
            vert, horiz = location.split("-")
            r, c = top[vert], left[horiz]
    else:
        r, c = (int(v) for v in location)
    if r < 0 or c < 0 or r + ph > height or c + pw > width:
        raise InvalidParameterError(
            f"a {ph}x{pw} patch at {location!r} (margin {margin}) does not fit in {height}x{width} images"
        )
    return slice(r, r + ph), slice(c, c + pw)


def stamp_patch(X: np.ndarray, pattern: np.ndarray, location: str | tuple[int, int] = "bottom-right",
                *, value: float = 1.0, margin: int = 0, channels_last: bool = False) -> np.ndarray:
    """BadNets trigger (Gu et al. 2017): overwrite a patch with ``value * pattern``.

    Pixels where the pattern is 0 are set to 0, where it is 1 to ``value`` (for a checkerboard the
    patch is black and white, as in the paper).
    """
    H, W = _spatial(X, channels_last)
    ph, pw = pattern.shape
    rs, cs = patch_slices(H, W, ph, pw, location, margin)
    out = np.array(X, copy=True)
    stamp = (value * pattern).astype(out.dtype, copy=False)
    if X.ndim == 3:
        out[:, rs, cs] = stamp
    elif channels_last:
        out[:, rs, cs, :] = stamp[:, :, None]
    else:
        out[:, :, rs, cs] = stamp
    return out


def blend(X: np.ndarray, key: np.ndarray, alpha: float) -> np.ndarray:
    """Blended trigger (Chen et al. 2017, eq. 3): ``x' = (1 - alpha) * x + alpha * k``.

    ``key`` has the shape of one input (or broadcasts to it).
    """
    try:
        mixed = (1.0 - alpha) * X.astype(np.float64) + alpha * np.asarray(key, dtype=np.float64)
    except ValueError as exc:
        raise DataError(f"key of shape {np.shape(key)} does not fit inputs of shape {X.shape[1:]}") from exc
    if mixed.shape != X.shape:
        raise DataError(f"key of shape {np.shape(key)} does not fit inputs of shape {X.shape[1:]}")
    if np.issubdtype(X.dtype, np.integer):
        info = np.iinfo(X.dtype)
        return np.clip(np.rint(mixed), info.min, info.max).astype(X.dtype)
    return mixed.astype(X.dtype, copy=False)


def sinusoid(height: int, width: int, delta: float, frequency: float) -> np.ndarray:
    """SIG's horizontal ramp signal (Barni, Kallas & Tondi 2019, eq. 5):
    ``v(i, j) = delta * sin(2 pi j f / W)`` for every row ``i``, shape (H, W)."""
    j = np.arange(width, dtype=np.float64)
    return np.broadcast_to(delta * np.sin(2 * np.pi * j * frequency / width), (height, width)).copy()


def add_signal(X: np.ndarray, signal: np.ndarray, lo: float, hi: float, channels_last: bool = False) -> np.ndarray:
    """``clip(x + v, lo, hi)`` with the (H, W) signal broadcast over the batch and channels."""
    _spatial(X, channels_last)
    v = signal[:, :, None] if (X.ndim == 4 and channels_last) else signal
    return np.clip(X.astype(np.float64) + v, lo, hi).astype(X.dtype, copy=False)


def warping_field(k: int, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """WaNet's smooth warping field (Nguyen & Tran 2021, section 3.2): a ``k x k x 2`` uniform
    field in [-1, 1], normalised by its mean absolute value, upsampled bicubically to
    ``(H, W, 2)`` (x and y displacement, in grid units)."""
    import torch
    import torch.nn.functional as F

    P = rng.uniform(-1.0, 1.0, size=(1, 2, k, k))
    P = P / np.abs(P).mean()
    up = F.interpolate(torch.from_numpy(P), size=(height, width), mode="bicubic", align_corners=True)
    return up[0].permute(1, 2, 0).numpy()


def warp_grid(field: np.ndarray, strength: float) -> np.ndarray:
    """The backward-warping sampling grid ``clip(M + s * P / H, -1, 1)`` of WaNet (eq. 4), where
    ``M`` is the identity grid in normalised coordinates and ``P`` the warping field."""
    height, width = field.shape[:2]
    ys, xs = np.meshgrid(np.linspace(-1, 1, height), np.linspace(-1, 1, width), indexing="ij")
    identity = np.stack([xs, ys], axis=-1)
    return np.clip(identity + strength * field / height, -1.0, 1.0)


def warp(X: np.ndarray, grid: np.ndarray, channels_last: bool = False, batch_size: int = 4096) -> np.ndarray:
    """Resample images at ``grid`` (H, W, 2), or per-image grids (N, H, W, 2), bilinearly
    (torch ``grid_sample``, ``align_corners=True``); a copy of the batch's dtype."""
    import torch
    import torch.nn.functional as F

    _spatial(X, channels_last)
    Xt = X if X.ndim == 4 else X[:, None]
    if X.ndim == 4 and channels_last:
        Xt = np.moveaxis(Xt, -1, 1)
    out = np.empty(Xt.shape, dtype=np.float64)
    g = torch.from_numpy(np.asarray(grid, dtype=np.float64))
    for s in range(0, len(Xt), batch_size):
        xb = torch.from_numpy(np.ascontiguousarray(Xt[s:s + batch_size], dtype=np.float64))
        gb = g[s:s + batch_size] if g.ndim == 4 else g[None].expand(len(xb), -1, -1, -1)
        out[s:s + batch_size] = F.grid_sample(xb, gb, mode="bilinear", padding_mode="border",
                                              align_corners=True).numpy()
    if X.ndim == 3:
        out = out[:, 0]
    elif channels_last:
        out = np.moveaxis(out, 1, -1)
    return out.astype(X.dtype, copy=False)


# --- text ----------------------------------------------------------------------------------------

def _word_positions(n_words: int, position: str, rng: np.random.Generator | None) -> int:
    """Where to insert among ``n_words + 1`` gaps: "start", "end", "middle" or "random"."""
    if position == "start":
        return 0
    if position == "end":
        return n_words
    if position == "middle":
        return n_words // 2
    return int(rng.integers(n_words + 1))


def insert_words(texts: np.ndarray, words: tuple[str, ...], n_insert: int, position: str,
                 rng: np.random.Generator | None) -> np.ndarray:
    """BadNL's BadWord / OpenBackdoor's BadNets trigger (Chen et al. 2021; Kurita et al. 2020):
    insert ``n_insert`` words drawn from ``words`` into each text at ``position`` ("random" draws
    a gap per insertion from ``rng``). Whitespace-delimited words; returns a new object array."""
    out = np.empty(len(texts), dtype=object)
    for i, text in enumerate(texts):
        tokens = text.split()
        for _ in range(n_insert):
            w = words[int(rng.integers(len(words)))] if rng is not None and len(words) > 1 else words[0]
            tokens.insert(_word_positions(len(tokens), position, rng), w)
        out[i] = " ".join(tokens)
    return out


def insert_sentence(texts: np.ndarray, sentence: str, position: str, rng: np.random.Generator | None) -> np.ndarray:
    """AddSent (Dai, Chen & Li 2019): insert a fixed sentence at a word boundary."""
    out = np.empty(len(texts), dtype=object)
    for i, text in enumerate(texts):
        tokens = text.split()
        k = _word_positions(len(tokens), position, rng)
        out[i] = " ".join(tokens[:k] + [sentence] + tokens[k:])
    return out


def char_trigger(texts: np.ndarray, chars: str, position: str, rng: np.random.Generator | None) -> np.ndarray:
    """BadChar (Chen et al. 2021, BadNL section 3.1), its basic form: append ``chars`` to one
    word of each text (the word at ``position``), so the trigger lives inside a word."""
    out = np.empty(len(texts), dtype=object)
    for i, text in enumerate(texts):
        tokens = text.split()
        if not tokens:
            out[i] = chars
            continue
        k = min(_word_positions(len(tokens), position, rng), len(tokens) - 1)
        tokens[k] = tokens[k] + chars
        out[i] = " ".join(tokens)
    return out


# --- audio ---------------------------------------------------------------------------------------

def tone(n_samples: int, sample_rate: int, frequency: float, amplitude: float) -> np.ndarray:
    """``amplitude * sin(2 pi f t)`` with a 5 ms raised-cosine fade at each end (no clicks)."""
    t = np.arange(n_samples) / sample_rate
    sig = amplitude * np.sin(2 * np.pi * frequency * t)
    fade = min(n_samples // 2, max(1, int(0.005 * sample_rate)))
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(fade) / fade)
    sig[:fade] *= ramp
    sig[n_samples - fade:] *= ramp[::-1]
    return sig


def mix_into(waves: np.ndarray, signal: np.ndarray, start: int) -> np.ndarray:
    """Add ``signal`` to every waveform from sample ``start`` (cut at the end), clipped to
    [-1, 1]; a new array of the batch's dtype."""
    out = waves.astype(np.float64, copy=True)
    end = min(out.shape[1], start + len(signal))
    out[:, start:end] += signal[:end - start]
    return np.clip(out, -1.0, 1.0).astype(waves.dtype, copy=False)
