"""Atomic file writing: write to a temporary file in the same folder, fsync, then rename.

A crash or a full disk leaves either the old file or the new one, never half of one. The byte and
text writers live in :mod:`poisonlab._files` (below every package, so ``models/`` can save weights
without importing ``reports/``) and are re-exported here.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from .._files import atomic_write_bytes, atomic_write_text  # noqa: F401 (re-exported)


def to_jsonable(obj: Any) -> Any:
    """Numpy scalars and arrays to Python; NaN/inf to None (strict JSON); tuples to lists."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    text = json.dumps(to_jsonable(obj), indent=2, sort_keys=False, allow_nan=False)
    return atomic_write_text(path, text + "\n")
