"""Run records: the versioned JSON every run writes, and what it says about where it ran.

A record holds the resolved scenario, each step's results and timings, the artifacts with their
sha256, and the environment (git commit and dirty flag when run from a checkout, package
versions, thread count, the exact argv, the checksums of the data files read). Its
``fingerprint`` is the sha256 of the *deterministic* part -- the scenario and the results with
timings removed -- so two records of the same scenario and seed compare by one string, whatever
machine, process or backend produced them.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from .scenario import canonical_json

#: Bumped whenever a record's layout changes incompatibly.
RECORD_VERSION = 1
#: Keys whose values vary between identical runs (wall-clock time, where and when it ran).
NONDETERMINISTIC_KEYS = frozenset({"seconds", "timings", "created", "environment", "artifacts",
                                   "train_seconds", "poison_seconds", "cached", "fingerprint",
                                   "record_path", "command", "backend", "n_cached", "seconds_per_round"})
#: Distributions always reported; optional ones are added when imported.
_CORE_PACKAGES = ("poisonlab", "numpy", "scipy", "scikit-learn", "torch", "cleanlab", "pydantic",
                  "safetensors")
_OPTIONAL_PACKAGES = {"ray": "ray", "flwr": "flwr", "opacus": "opacus", "sqlalchemy": "SQLAlchemy",
                      "psycopg": "psycopg", "art": "adversarial-robustness-toolbox", "pyod": "pyod",
                      "byzfl": "byzfl"}


def sha256_array(a: Any) -> str:
    """sha256 over an array's dtype, shape and bytes (C order): a stable content fingerprint."""
    arr = np.ascontiguousarray(np.asarray(a))
    h = hashlib.sha256(f"{arr.dtype.str}|{arr.shape}|".encode())
    if arr.dtype == object:
        h.update("\x1f".join(map(str, arr.ravel())).encode("utf-8"))
    else:
        h.update(arr.tobytes())
    return h.hexdigest()


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def package_versions() -> dict[str, str]:
    """Versions of the core packages, and of every optional one this process imported."""
    out: dict[str, str] = {"python": platform.python_version()}
    for dist in _CORE_PACKAGES:
        out[dist] = _version(dist)
    for module, dist in _OPTIONAL_PACKAGES.items():
        if module in sys.modules:
            out[dist] = _version(dist)
    return out


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def git_state(start: str | Path | None = None) -> dict[str, Any] | None:
    """``{"commit", "dirty"}`` of the checkout holding this package, or None outside one."""
    root = Path(start) if start else Path(__file__).resolve().parents[3]
    if not (root / ".git").exists():
        return None
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(status.strip())}


def environment(*, threads: int | None = None, data_files: Iterable[str | Path] = ()) -> dict[str, Any]:
    """Where and how a run ran: git state, versions, threads, argv, platform, data checksums."""
    import torch

    files = {}
    for f in data_files:
        p = Path(f)
        if p.is_file():
            files[str(p)] = sha256_file(p)
    return {
        "git": git_state(),
        "versions": package_versions(),
        "threads": threads if threads is not None else torch.get_num_threads(),
        "argv": list(sys.argv),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "data_files": files,
    }


def deterministic_part(data: Any) -> Any:
    """``data`` without the keys that vary between identical runs (timings, environment, ...)."""
    if isinstance(data, dict):
        return {k: deterministic_part(v) for k, v in data.items() if k not in NONDETERMINISTIC_KEYS}
    if isinstance(data, list):
        return [deterministic_part(v) for v in data]
    return data


def fingerprint(data: Any) -> str:
    """sha256 of the deterministic part of a record (or of any JSON-friendly result)."""
    return hashlib.sha256(canonical_json(deterministic_part(data)).encode()).hexdigest()


def make_record(*, kind: str, scenario: dict[str, Any], results: Any, timings: dict[str, float],
                artifacts: list[dict[str, Any]] | None = None, threads: int | None = None,
                data_files: Iterable[str | Path] = (), **extra: Any) -> dict[str, Any]:
    """Assemble a record; ``fingerprint`` covers scenario and results, never timings."""
    record = {
        "record_version": RECORD_VERSION,
        "kind": kind,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "scenario": scenario,
        "results": results,
        "timings": timings,
        "artifacts": artifacts or [],
        "environment": environment(threads=threads, data_files=data_files),
        **extra,
    }
    record["fingerprint"] = fingerprint({"scenario": scenario, "results": results, **extra})
    return record


def artifact(path: str | Path, kind: str) -> dict[str, Any]:
    """An artifact entry: path, kind ("weights", "model_card", "scores", ...) and sha256."""
    return {"path": str(path), "kind": kind, "sha256": sha256_file(path)}


def jsonable(value: Any) -> Any:
    """numpy scalars and arrays -> Python values; tuples -> lists; objects -> their type name."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist()) if value.size <= 64 and value.dtype != object else \
            {"array_sha256": sha256_array(value), "shape": list(value.shape)}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None if np.isnan(value) else ("inf" if value > 0 else "-inf")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return f"<{type(value).__name__}>"
