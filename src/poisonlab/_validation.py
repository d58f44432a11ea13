"""Validation helpers shared by every attack, detector, model and loader.

Messages follow one pattern: the parameter's name, what it must be, and what it got.
"""

from __future__ import annotations

import numbers
from typing import Any, Iterable

import numpy as np

from .exceptions import DataError, InvalidParameterError, NotFittedError


# --- hyperparameters ---------------------------------------------------------------------------

def check_scalar(
    value: Any,
    name: str,
    kind: type | tuple[type, ...] = numbers.Real,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
    allow_none: bool = False,
) -> Any:
    """Check that ``value`` is a number of ``kind`` within ``[low, high]``; return it.

    Booleans are refused where a number is expected (``True`` is an int to Python, not to a user).
    """
    if value is None and allow_none:
        return None
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) or not isinstance(value, kinds):
        names = " or ".join(k.__name__ for k in kinds)
        raise InvalidParameterError(f"{name} must be {names}; got {value!r} ({type(value).__name__})")
    if isinstance(value, numbers.Real) and not np.isfinite(value):
        raise InvalidParameterError(f"{name} must be finite; got {value!r}")
    lo_ok = low is None or (value >= low if low_inclusive else value > low)
    hi_ok = high is None or (value <= high if high_inclusive else value < high)
    if not (lo_ok and hi_ok):
        lb = "[" if low_inclusive else "("
        hb = "]" if high_inclusive else ")"
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise InvalidParameterError(f"{name} must be in {lb}{lo}, {hi}{hb}; got {value!r}")
    return value


def check_option(value: Any, name: str, options: Iterable[Any]) -> Any:
    """Check that ``value`` is one of ``options``; return it."""
    options = tuple(options)
    if value not in options:
        raise InvalidParameterError(f"{name} must be one of {options}; got {value!r}")
    return value


def check_random_state(random_state: Any, name: str = "random_state") -> np.random.Generator:
    """Turn ``None``, an int, or a Generator into a ``numpy.random.Generator``.

    Never touches numpy's global state. A Generator passed in is used as-is (shared, not copied).
    """
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None:
        return np.random.default_rng()
    if isinstance(random_state, (numbers.Integral, np.integer)) and not isinstance(random_state, bool):
        if random_state < 0:
            raise InvalidParameterError(f"{name} must be a non-negative int; got {random_state!r}")
        return np.random.default_rng(int(random_state))
    raise InvalidParameterError(
        f"{name} must be None, a non-negative int or a numpy Generator; got {random_state!r}"
    )


def derive_seed(rng: np.random.Generator) -> int:
    """Draw a 63-bit seed from ``rng`` (to seed torch or a sub-component reproducibly)."""
    return int(rng.integers(0, 2**63 - 1))


# --- data --------------------------------------------------------------------------------------

def check_array(
    X: Any,
    name: str = "X",
    *,
    min_ndim: int = 1,
    max_ndim: int | None = None,
    allow_nan: bool = False,
    min_samples: int = 1,
    dtype: Any = None,
) -> np.ndarray:
    """Return ``X`` as an ndarray after checking rank, emptiness and finiteness.

    The input is never modified; a view or the same object may be returned, so callers that
    write must copy.
    """
    try:
        arr = np.asarray(X) if dtype is None else np.asarray(X, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name} could not be converted to an array: {exc}") from exc
    if arr.dtype == object:
        raise DataError(f"{name} must be numeric; got an array of Python objects")
    if arr.ndim < min_ndim or (max_ndim is not None and arr.ndim > max_ndim):
        want = f"{min_ndim}" if max_ndim == min_ndim else f"{min_ndim} to {max_ndim or 'any'}"
        raise DataError(f"{name} must have {want} dimensions; got shape {arr.shape}")
    if arr.shape[0] < min_samples:
        raise DataError(f"{name} must have at least {min_samples} sample(s); got shape {arr.shape}")
    if not allow_nan and np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
        bad = np.flatnonzero(~np.isfinite(arr.reshape(len(arr), -1)).all(axis=1))
        raise DataError(
            f"{name} contains NaN or infinite values in {bad.size} sample(s), first at index {bad[0]}"
        )
    return arr


def is_text(X: Any) -> bool:
    """Whether ``X`` looks like a batch of texts (a sequence or array of str)."""
    arr = X if isinstance(X, np.ndarray) else None
    if arr is not None:
        return arr.dtype.kind in ("U", "O") and arr.ndim == 1 and (arr.size == 0 or isinstance(arr.flat[0], (str, bytes)))
    return isinstance(X, (list, tuple)) and len(X) > 0 and isinstance(X[0], (str, bytes))


def check_texts(X: Any, name: str = "X", *, allow_empty: bool = False) -> np.ndarray:
    """Return texts as a 1-D object array of str, or raise a DataError naming the first bad one:
    a non-string, bytes that are not UTF-8, or (unless ``allow_empty``) an empty string."""
    arr = np.asarray(X, dtype=object)
    if arr.ndim != 1 or arr.size == 0:
        raise DataError(f"{name} must be a non-empty 1-D sequence of texts; got shape {arr.shape}")
    out = np.empty(len(arr), dtype=object)
    for i, t in enumerate(arr):
        if isinstance(t, bytes):
            try:
                t = t.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(f"{name}[{i}] is not valid UTF-8 ({exc.reason} at byte {exc.start})") from exc
        if not isinstance(t, str):
            raise DataError(f"{name}[{i}] must be a str; got {type(t).__name__}")
        if not allow_empty and not t.strip():
            raise DataError(f"{name}[{i}] is an empty text; drop it or give it content")
        out[i] = t
    return out


def check_labels(y: Any, n_samples: int | None = None, *, n_classes: int | None = None,
                 name: str = "y") -> np.ndarray:
    """Return integer class labels ``0 .. n_classes-1`` as int64, or raise a DataError."""
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise DataError(f"{name} must be 1-D class labels; got shape {arr.shape}")
    if n_samples is not None and arr.shape[0] != n_samples:
        raise DataError(f"{name} has {arr.shape[0]} labels but X has {n_samples} samples")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise DataError(f"{name} must hold integer class labels; got dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    if arr.size and arr.min() < 0:
        raise DataError(f"{name} must be non-negative class indices; found {int(arr.min())}")
    if n_classes is not None and arr.size and arr.max() >= n_classes:
        raise DataError(
            f"{name} holds label {int(arr.max())} but there are only {n_classes} classes (0..{n_classes - 1})"
        )
    return arr


def infer_n_classes(y: np.ndarray, n_classes: int | None = None) -> int:
    """The number of classes: given, or ``max(y) + 1``."""
    if n_classes is not None:
        return int(check_scalar(n_classes, "n_classes", numbers.Integral, low=2))
    return int(y.max()) + 1 if y.size else 0


def check_class(value: Any, name: str, n_classes: int) -> int:
    """Check that ``value`` is an existing class index."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
        raise InvalidParameterError(f"{name} must be a class index (int); got {value!r}")
    if not 0 <= int(value) < n_classes:
        raise InvalidParameterError(
            f"{name} must be an existing class in 0..{n_classes - 1}; got {value!r}"
        )
    return int(value)


def check_same_length(**arrays: Any) -> int:
    """Check that every named array has the same first dimension; return it."""
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) > 1:
        desc = ", ".join(f"{k}={n}" for k, n in lengths.items())
        raise DataError(f"inputs must have the same number of samples; got {desc}")
    return next(iter(lengths.values()))


# --- fitted state -----------------------------------------------------------------------------

def check_is_fitted(obj: Any, attributes: str | Iterable[str] | None = None) -> None:
    """Raise NotFittedError unless ``obj`` has the given fitted attributes (default: any ``*_``)."""
    if attributes is None:
        fitted = [k for k in vars(obj) if k.endswith("_") and not k.startswith("__")]
    else:
        attrs = [attributes] if isinstance(attributes, str) else list(attributes)
        fitted = [a for a in attrs if getattr(obj, a, None) is not None]
        if len(fitted) < len(attrs):
            fitted = []
    if not fitted:
        raise NotFittedError(
            f"This {type(obj).__name__} is not fitted yet; call fit(...) before using it"
        )
