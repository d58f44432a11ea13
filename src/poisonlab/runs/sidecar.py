"""Poisoned data files and their sidecars: what ``poisonlab attack`` writes, what ``scan-data``
and later steps read back.

A poisoned data set is stored as a ``.npz`` (``X``, ``y``, ``poison_mask``, ``indices``, ``ids``,
``classes``; texts as unicode arrays, never pickled objects) with a JSON **sidecar** beside it,
``<stem>.poison.json``, that records the attack (registry name and parameters), the source of the
clean data and the sha256 of the ``.npz``. The sidecar lets a later step rebuild the attack (for its
trigger, to measure the attack success rate) and find the source's test split.

The sidecar's name carries ``.poison`` so that it never collides with a ``<stem>.json`` of the
user's; sidecars written before that name (``<stem>.json`` holding the keys ``attack``, ``params``
and ``source``) are still read.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..data.dataset import Dataset
from ..exceptions import DataError, InvalidParameterError, PoisonlabError

#: ``<stem>`` + this suffix names the sidecar of ``<stem>.npz``.
SIDECAR_SUFFIX = ".poison.json"
#: The ``format`` field of a sidecar, and its version.
SIDECAR_FORMAT = "poisonlab.poison-sidecar"
SIDECAR_VERSION = 1
#: What a sidecar written before ``SIDECAR_SUFFIX`` (``<stem>.json``) must hold to be taken as one.
LEGACY_KEYS = frozenset({"attack", "params", "source"})


def sidecar_path(path: str | os.PathLike) -> Path:
    """Where the sidecar of the poisoned data file ``path`` lives: ``p.npz -> p.poison.json``."""
    path = Path(path)
    return path.with_name(path.stem + SIDECAR_SUFFIX)


def _legacy_sidecar_path(path: Path) -> Path:
    return path.with_suffix(".json")


@dataclass(frozen=True)
class PoisonedData:
    """A poisoned data file read back.

    Attributes
    ----------
    path : Path
        The ``.npz``.
    dataset : Dataset
        Its samples (ids, classes and modality as stored).
    poison_mask : bool ndarray or None
        The ground truth, when the file holds one.
    sidecar : dict or None
        The recorded attack (see :func:`write_poisoned`), when a sidecar was found.
    sidecar_path : Path or None
        The file it came from (``<stem>.poison.json``, or a legacy ``<stem>.json``).
    """

    path: Path
    dataset: Dataset
    poison_mask: np.ndarray | None
    sidecar: dict[str, Any] | None
    sidecar_path: Path | None


def check_output(path: str | os.PathLike, *, source: str | os.PathLike | None = None,
                 force: bool = False) -> Path:
    """Refuse an output path :func:`write_poisoned` must not write: not a ``.npz``, the input file
    itself (never, even with ``force``), or an existing file (or a sidecar that is not ours)
    without ``force``. Returns the path; call it before a long attack to fail early."""
    path = Path(path)
    if path.suffix != ".npz":
        raise InvalidParameterError(f"the poisoned data file must end in .npz; got {path}")
    if source is not None and Path(source).exists() and path.resolve() == Path(source).resolve():
        raise InvalidParameterError(f"{path} is the input file: poisonlab never overwrites your data; "
                                    f"choose another output")
    if not force:
        if path.exists():
            raise DataError(f"{path} exists; pass force=True (--force) to replace it")
        side = sidecar_path(path)
        if side.exists() and not _is_ours(side):
            raise DataError(f"{side} exists and is not a poisonlab sidecar; pass force=True (--force) "
                            f"to replace it")
    return path


def _is_ours(side: Path) -> bool:
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("format") == SIDECAR_FORMAT


def _storable(value: Any) -> bool:
    """Whether ``value`` round-trips through JSON (tuples come back as lists, then tuples)."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and _storable(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return all(_storable(v) for v in value)
    return value is None or isinstance(value, (bool, int, float, str, np.bool_, np.integer, np.floating))


def _plain(value: Any) -> Any:
    """JSON-ready copy of ``value``: numpy scalars to Python, non-finite floats to None, tuples
    to lists, anything else (arrays, objects) to ``"<TypeName>"``."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return f"<{type(value).__name__}>"


def attack_name(attack: Any) -> str:
    """The registry name of ``attack``'s class, or ``module:QualName`` for an unregistered one."""
    from .. import registry

    for name, cls in registry.available("attack").items():
        if type(attack) is cls:
            return name
    return f"{type(attack).__module__}:{type(attack).__qualname__}"


def write_poisoned(path: str | os.PathLike, dataset: Dataset, result: Any, attack: Any,
                   source: str | os.PathLike, *, force: bool = False) -> tuple[Path, Path]:
    """Write a poisoned data set to ``path`` (``.npz``) and its sidecar beside it, atomically.

    Parameters
    ----------
    path : path
        The ``.npz`` to write (see :func:`check_output` for what is refused).
    dataset : Dataset
        The clean data that was poisoned (for its ids and class names).
    result : PoisonResult
        What ``attack.poison(dataset.X, dataset.y, ...)`` returned. Samples an attack injected
        (beyond ``len(dataset)``) get ids ``injected-<k>``.
    attack : attack object
        The attack; its registry name and parameters go to the sidecar (array parameters and
        objects are listed under ``omitted_params``: they cannot be rebuilt from JSON).
    source : str or path
        Where the clean data came from: a built-in dataset's name, or the input file's path
        (never overwritten, even with ``force``).
    force : bool, default=False
        Replace an existing ``path`` (and a sidecar that is not poisonlab's).

    Returns
    -------
    (Path, Path)
        The data file and the sidecar written.
    """
    from .._files import atomic_write_bytes, atomic_write_text

    path = check_output(path, source=source, force=force)
    ids = np.asarray(dataset.ids)
    n = len(result.y)
    if n > len(ids):  # attacks that inject samples append them: give them ids of their own
        ids = np.concatenate([ids.astype(str), [f"injected-{k}" for k in range(n - len(ids))]])
    X = np.asarray(result.X)
    X_out = X.astype(str) if X.dtype == object else X  # texts: unicode, never pickled
    buf = io.BytesIO()
    np.savez_compressed(buf, X=X_out, y=result.y, poison_mask=result.poison_mask, indices=result.indices,
                        ids=ids, classes=np.array(dataset.classes))
    data = buf.getvalue()
    params, omitted = {}, []
    for key, value in attack.get_params().items():
        if _storable(value):
            params[key] = _plain(value)
        else:
            omitted.append(key)
    meta = {"format": SIDECAR_FORMAT, "version": SIDECAR_VERSION, "data_file": path.name,
            "sha256": hashlib.sha256(data).hexdigest(), "attack": attack_name(attack), "params": params,
            "omitted_params": omitted, "source": os.fspath(source), "n_samples": n,
            "n_poison": int(result.n_poison), "target": _plain(result.target), "info": _plain(dict(result.info))}
    atomic_write_bytes(path, data)
    side = atomic_write_text(sidecar_path(path), json.dumps(meta, indent=2, allow_nan=False) + "\n")
    return path, side


def read_sidecar(path: str | os.PathLike) -> tuple[dict[str, Any] | None, Path | None]:
    """The sidecar of the poisoned data file ``path`` and where it was found, or ``(None, None)``.

    ``<stem>.poison.json`` first; a legacy ``<stem>.json`` only when it holds the keys
    ``attack``, ``params`` and ``source`` (anything else there is the user's file, ignored).
    A sidecar that is not valid JSON, or not an object with those keys, raises ``DataError``.
    """
    path = Path(path)
    side = sidecar_path(path)
    if side.is_file():
        meta = _read_json(side)
        if not isinstance(meta, dict) or not LEGACY_KEYS <= set(meta):
            raise DataError(f"{side} is not a poisonlab sidecar: it must be a JSON object with keys "
                            f"{sorted(LEGACY_KEYS)}")
        return meta, side
    legacy = _legacy_sidecar_path(path)
    if legacy.is_file():
        try:
            meta = json.loads(legacy.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None, None  # not JSON: the user's own file, not a sidecar
        if isinstance(meta, dict) and LEGACY_KEYS <= set(meta):
            return meta, legacy
    return None, None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not a valid sidecar: not UTF-8 text") from exc
    except json.JSONDecodeError as exc:
        raise DataError(f"{path} is not a valid sidecar: {exc.msg} at line {exc.lineno}, "
                        f"column {exc.colno}") from exc
    except OSError as exc:
        raise DataError(f"{path} could not be read: {exc.strerror or exc}") from exc


def read_poisoned(path: str | os.PathLike) -> PoisonedData:
    """Read a poisoned (or any) ``.npz`` data file: its samples, its poison mask when stored,
    and its sidecar when one is found (:func:`read_sidecar`)."""
    from ..data import npz_member, open_npz, read_npz

    path = Path(path)
    dataset = read_npz(path)
    with open_npz(path) as z:
        mask = npz_member(z, "poison_mask", path) if "poison_mask" in z.files else None
    if mask is not None and (mask.ndim != 1 or mask.dtype.kind not in "biu"):
        raise DataError(f"{path}: poison_mask must be a 1-D boolean array; got {mask.dtype} of shape {mask.shape}")
    mask = None if mask is None else mask.astype(bool)
    if mask is not None and len(mask) != len(dataset):
        raise DataError(f"{path}: poison_mask has {len(mask)} entries but there are {len(dataset)} samples")
    meta, side = read_sidecar(path)
    return PoisonedData(path=path, dataset=dataset, poison_mask=mask, sidecar=meta, sidecar_path=side)


def attack_from_sidecar(sidecar: dict[str, Any], *, data_dir: str | os.PathLike | None = None,
                        where: str | os.PathLike = "the sidecar") -> tuple[Any, Dataset | None]:
    """Rebuild the attack a sidecar records (for its trigger: ASR), and its source's test split.

    Returns ``(attack, test)``; ``test`` is None unless the source is a built-in dataset (loaded
    from ``data_dir``). Attacks with a random trigger re-poison the source to redraw it (seeded,
    hence identical). Parameters the sidecar could not store (``omitted_params``; legacy
    ``"<array>"`` values) take their defaults. An unknown attack or a bad parameter raises a
    ``PoisonlabError`` naming ``where``.
    """
    from .. import registry
    from ..data import DATASETS, load_dataset

    params = {k: (tuple(v) if isinstance(v, list) else v) for k, v in dict(sidecar.get("params") or {}).items()
              if v != "<array>"}
    name = sidecar.get("attack")
    if not isinstance(name, str):
        raise DataError(f"{where}: 'attack' must be an attack's registry name; got {name!r}")
    try:
        attack = registry.create("attack", name, **params)
    except (PoisonlabError, TypeError) as exc:
        raise DataError(f"{where} records an attack poisonlab cannot rebuild: {exc}") from exc
    source = sidecar.get("source")
    if not isinstance(source, str) or source not in DATASETS:
        return attack, None
    splits = load_dataset(source, data_dir)
    if hasattr(attack, "apply_trigger"):
        attack.poison(splits.train.X, splits.train.y)
    return attack, splits.test
