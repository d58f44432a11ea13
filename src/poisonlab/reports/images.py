"""Small images as PNG bytes (reversed triggers, sample thumbnails)."""

from __future__ import annotations

import io

import numpy as np


def trigger_png(mask: np.ndarray, pattern: np.ndarray, scale: int = 8) -> bytes:
    """The reversed trigger ``mask * pattern`` (C, H, W or H, W) as an upscaled PNG."""
    from PIL import Image

    img = mask[None] * pattern if pattern.ndim == 3 else mask * pattern
    img = np.asarray(img, dtype=np.float64)
    if img.ndim == 3:
        img = img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)
    span = img.max() - img.min()
    img = (img - img.min()) / span if span > 0 else np.zeros_like(img)
    pil = Image.fromarray((img * 255).astype(np.uint8))
    pil = pil.resize((pil.width * scale, pil.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    return buf.getvalue()


def preview_png(preview: dict, *, min_side: int = 96) -> bytes:
    """A picture stored by :func:`poisonlab.runs.report_data.sample_preview` (``uint8_b64``,
    ``shape`` [H, W, C]) as PNG bytes, upscaled by a whole factor to at least ``min_side``
    pixels a side (nearest neighbour: pixels stay sharp). Spectrograms get the viridis colour
    map (perceptually uniform, colour-blind safe) with the lowest band at the bottom."""
    import base64

    from PIL import Image

    h, w, c = (int(v) for v in preview["shape"])
    arr = np.frombuffer(base64.b64decode(preview["uint8_b64"]), dtype=np.uint8).reshape(h, w, c)
    if preview.get("kind") == "spectrogram":
        from matplotlib import colormaps

        rgb = colormaps["viridis"](arr[::-1, :, 0] / 255.0)[:, :, :3]
        arr = np.round(rgb * 255).astype(np.uint8)
    elif c == 1:
        arr = arr[:, :, 0]
    pil = Image.fromarray(arr)
    scale = max(1, -(-min_side // max(1, min(h, w))))
    if scale > 1:
        pil = pil.resize((w * scale, h * scale), Image.NEAREST)
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    return buf.getvalue()
