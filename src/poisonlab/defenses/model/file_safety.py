"""Model-file safety: scan before loading, never unpickle an untrusted file.

Pickle-based files (``.pt``, ``.pth``, ``.bin``, ``.pkl``, ``.joblib``, ``.ckpt``) can run code when
loaded. They are scanned with picklescan first; a file that imports dangerous globals is refused
with a report, and torch weights are then loaded only with ``weights_only=True`` (PyTorch's
restricted unpickler). ``.safetensors`` files hold no code and are loaded directly.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ...exceptions import DataError, PoisonlabError

PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".pkl", ".pickle", ".joblib", ".ckpt", ".npy", ".npz")


class UnsafeModelError(PoisonlabError):
    """A model file would run code (or could not be proven not to) if loaded."""

    def __init__(self, message: str, report: "FileScanReport") -> None:
        super().__init__(message)
        self.report = report


@dataclass
class FileScanReport:
    """What a scan found in one model file."""

    path: str
    format: str
    safe: bool
    dangerous: list[str] = field(default_factory=list)
    suspicious: list[str] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        if self.error:
            return f"{self.path}: could not be scanned ({self.error}); refused"
        if self.dangerous:
            return f"{self.path}: DANGEROUS imports {', '.join(self.dangerous)}; refused"
        if self.suspicious:
            return f"{self.path}: safe to load as weights ({len(self.suspicious)} non-weight globals noted)"
        return f"{self.path}: no code found ({self.format})"


def scan_model_file(path: str | os.PathLike) -> FileScanReport:
    """Scan a model file without loading it; never raises for a malicious file, reports it."""
    from picklescan.scanner import SafetyLevel, scan_file_path

    path = Path(path)
    if not path.is_file():
        raise DataError(f"model file {path} does not exist")
    if path.suffix == ".safetensors":
        return _scan_safetensors(path)
    fmt = "zip-pickle" if _is_zip(path) else "pickle"
    try:
        result = scan_file_path(str(path))
    except Exception as exc:  # noqa: BLE001 - a damaged archive makes picklescan raise
        return FileScanReport(str(path), fmt, safe=False, error=f"not a readable archive: {exc}")
    dangerous = sorted({f"{g.module}.{g.name}" for g in result.globals if g.safety == SafetyLevel.Dangerous})
    suspicious = sorted({f"{g.module}.{g.name}" for g in result.globals if g.safety == SafetyLevel.Suspicious})
    error = "not a readable pickle or archive (corrupt or truncated)" if result.scan_err else None
    if result.scanned_files == 0 and error is None:
        error = "no pickle found in the file"
    return FileScanReport(str(path), fmt, safe=not dangerous and error is None, dangerous=dangerous,
                          suspicious=suspicious, error=error)


def _is_zip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) == b"PK\x03\x04"


def _scan_safetensors(path: Path) -> FileScanReport:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            list(fh.keys())
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
        return FileScanReport(str(path), "safetensors", safe=False, error=f"not a valid safetensors file: {exc}")
    return FileScanReport(str(path), "safetensors", safe=True)


def load_state_dict(path: str | os.PathLike) -> dict[str, Any]:
    """Load torch weights safely: safetensors directly; pickle-based files only after a clean
    scan, and then with ``torch.load(weights_only=True)``. Raises UnsafeModelError otherwise."""
    import torch

    report = scan_model_file(path)
    if not report.safe:
        raise UnsafeModelError(report.summary(), report)
    if report.format == "safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for bad files
        raise UnsafeModelError(f"{path}: refused by torch's weights-only loader: {str(exc).splitlines()[0]}",
                               report) from exc
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise DataError(f"{path} holds a {type(obj).__name__}, not a state dict of weights")
    return obj

