"""Atomic file writing: write to a temporary file in the same folder, fsync, then rename.

A crash or a full disk leaves either the old file or the new one, never half of one. The byte and
text writers and :func:`to_jsonable` live in :mod:`poisonlab._files` (below every package, so ``models/`` can save weights
without importing ``reports/``) and are re-exported here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .._files import atomic_write_bytes, atomic_write_text, to_jsonable  # noqa: F401 (re-exported)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    text = json.dumps(to_jsonable(obj), indent=2, sort_keys=False, allow_nan=False)
    return atomic_write_text(path, text + "\n")
