"""The grid cache: finished cells and trained models on disk, keyed by the hash of their resolved
configuration.

A cell's result is written (atomically) as soon as the cell finishes, so a grid killed with
SIGKILL and started again finds every finished cell and recomputes none of them. Trained models
are cached the same way, so cells that differ only in what they do *after* training (another
detector, another monitor) share one training, and so do reproductions that inspect the same
model (R1's models for R11-R14). There is no process-wide state: a cache is a folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .._files import atomic_write_bytes, atomic_write_text
from ..exceptions import DataError
from .scenario import canonical_json, config_hash

#: Bumped when what a cached cell or model means changes, so old entries are not reused.
CACHE_VERSION = 1


class Cache:
    """A folder of ``cells/<hash>.json`` and ``models/<hash>.safetensors`` (+ ``.json``).

    ``Cache(None)`` is a cache that remembers nothing (every lookup misses, nothing is written).
    """

    def __init__(self, root: str | Path | None) -> None:
        self.root = Path(root) if root is not None else None

    # -- keys ----------------------------------------------------------------------------------

    @staticmethod
    def key(config: Any) -> str:
        return config_hash({"cache_version": CACHE_VERSION, "config": config})

    # -- cells ---------------------------------------------------------------------------------

    def _cell_path(self, key: str) -> Path | None:
        return None if self.root is None else self.root / "cells" / f"{key}.json"

    def get_cell(self, key: str) -> dict[str, Any] | None:
        path = self._cell_path(key)
        if path is None or not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return None  # a damaged entry is recomputed (writes are atomic, so this is rare)

    def put_cell(self, key: str, result: dict[str, Any]) -> None:
        path = self._cell_path(key)
        if path is not None:
            atomic_write_text(path, canonical_json(result))

    def finished_cells(self) -> set[str]:
        if self.root is None or not (self.root / "cells").is_dir():
            return set()
        return {p.stem for p in (self.root / "cells").glob("*.json")}

    # -- models --------------------------------------------------------------------------------

    def _model_paths(self, key: str) -> tuple[Path, Path] | None:
        if self.root is None:
            return None
        base = self.root / "models" / key
        return base.with_suffix(".safetensors"), base.with_suffix(".json")

    def get_model(self, key: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """``(state_dict, info)`` of a cached torch model, or None."""
        paths = self._model_paths(key)
        if paths is None or not (paths[0].is_file() and paths[1].is_file()):
            return None
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(paths[0])), json.loads(paths[1].read_text())
        except (OSError, json.JSONDecodeError, SafetensorError):
            return None

    def put_model(self, key: str, state: dict[str, Any], info: dict[str, Any]) -> None:
        paths = self._model_paths(key)
        if paths is None:
            return
        from safetensors.torch import save

        tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
        atomic_write_bytes(paths[0], save(tensors))
        # the info is written last: a model counts as cached only when both files exist
        atomic_write_text(paths[1], canonical_json(info))


def read_json(path: str | Path) -> dict[str, Any]:
    """A JSON file as a dict, with a one-line DataError for a missing or corrupt file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path} is not readable JSON: {exc}") from None
    if not isinstance(data, dict):
        raise DataError(f"{path} must hold a JSON object")
    return data
