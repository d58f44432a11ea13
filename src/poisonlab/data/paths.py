"""Where datasets live: an explicit ``root``, else the ``POISONLAB_DATA_DIR`` environment variable."""

from __future__ import annotations

import os
from pathlib import Path

from ..exceptions import DataError

ENV_VAR = "POISONLAB_DATA_DIR"


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The folder that holds one sub-folder per dataset (as ``shared/datasets`` does)."""
    chosen = root if root is not None else os.environ.get(ENV_VAR)
    if not chosen:
        raise DataError(
            f"no dataset folder given: pass root=/path/to/datasets (--data-dir on the command line) "
            f"or set {ENV_VAR}"
        )
    path = Path(chosen).expanduser()
    if not path.is_dir():
        raise DataError(f"dataset folder {path} does not exist or is not a folder")
    return path


def find_dir(root: str | os.PathLike | None, *candidates: str) -> Path:
    """The first of ``root/candidate`` that exists (or ``root`` itself if it holds the files)."""
    base = data_root(root)
    for cand in candidates:
        if (base / cand).is_dir():
            return base / cand
    return base


def require_file(folder: Path, *names: str) -> Path:
    """The first of ``names`` present in ``folder``, or a DataError listing what was looked for."""
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise DataError(f"none of {list(names)} found in {folder}")
