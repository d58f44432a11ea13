"""Small images as PNG bytes (reversed triggers)."""

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
