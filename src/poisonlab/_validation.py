"""Validation helpers shared by every attack, detector, model and loader.

Messages follow one pattern: the parameter's name, what it must be, and what it got.
"""

from __future__ import annotations

import math
import numbers
from abc import ABC, abstractmethod
import typing
from collections.abc import Mapping
from typing import Any, Callable, Iterable

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


def check_seed(random_state: Any, name: str = "random_state") -> int:
    """An int seed from ``random_state`` (None, an int >= 0 or a Generator), for the libraries
    that take ints (scikit-learn, torch). Resolve it once per ``fit`` and pass the result down.

    An int is returned as it is, so an int ``random_state`` keeps its meaning; a Generator gives
    one draw from it (the caller's stream advances); None gives a fresh seed from the OS.
    """
    if isinstance(random_state, (numbers.Integral, np.integer)) and not isinstance(random_state, (bool, np.bool_)):
        check_random_state(random_state, name)  # refuses negative ints with the usual message
        return int(random_state)
    return int(check_random_state(random_state, name).integers(0, 2**32 - 1))


def derive_seed(rng: np.random.Generator) -> int:
    """Draw a 63-bit seed from ``rng`` (to seed torch or a sub-component reproducibly)."""
    return int(rng.integers(0, 2**63 - 1))


# --- declared parameter constraints -----------------------------------------------------------
#
# Each registered class declares ``_parameter_constraints = {"param": [constraint, ...]}``: a value
# is valid when it satisfies at least one constraint of its list. A constraint is one of
#
# * ``Interval(numbers.Integral, 1, None, closed="left")`` -- a number of that type in a range;
# * ``Options(("a", "b"))`` -- one of these values;
# * ``HasMethods("fit", "predict_proba")`` -- an object with these methods (an estimator);
# * ``None`` -- None is allowed;
# * a type (``str``, ``dict``, ``Mapping``) -- an instance of it (bool is not an int);
# * ``callable`` -- any callable;
# * ``"random_state"`` -- None, an int >= 0 or a numpy Generator (:func:`check_random_state`);
# * ``"boolean"`` -- True or False;
# * ``"array-like"`` -- a list, tuple or array (not a str);
# * ``"class_index"`` -- an int >= 0 (the range check against n_classes stays where the data is).

CLOSED = ("left", "right", "both", "neither")


class Constraint(ABC):
    """One accepted kind of value for a declared parameter."""

    @abstractmethod
    def is_satisfied_by(self, value: Any) -> bool:
        """Whether ``value`` is of this kind."""

    def invalid_examples(self) -> list[Any]:
        """Values near this constraint that it refuses (the common tests try them)."""
        return []

    @abstractmethod
    def __str__(self) -> str:
        """What the value must be, in the words of an error message."""


def _is_int(value: Any) -> bool:
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_real(value: Any) -> bool:
    return isinstance(value, (numbers.Real, np.floating, np.integer)) and not isinstance(value, (bool, np.bool_))


class Interval(Constraint):
    """A number of ``type`` (``numbers.Integral`` or ``numbers.Real``) between ``left`` and
    ``right`` (None: unbounded); ``closed`` says which ends belong to it: "left", "right", "both"
    or "neither". Booleans, NaN and infinities are never in an interval."""

    def __init__(self, type: type, left: float | None, right: float | None, *, closed: str) -> None:
        if type not in (numbers.Integral, numbers.Real):
            raise InvalidParameterError(f"Interval type must be numbers.Integral or numbers.Real; got {type!r}")
        if closed not in CLOSED:
            raise InvalidParameterError(f"Interval closed must be one of {CLOSED}; got {closed!r}")
        if left is not None and right is not None and right < left:
            raise InvalidParameterError(f"Interval needs left <= right; got [{left}, {right}]")
        self.type = type
        self.left = left
        self.right = right
        self.closed = closed

    def is_satisfied_by(self, value: Any) -> bool:
        if not (_is_int(value) if self.type is numbers.Integral else _is_real(value)):
            return False
        if not math.isfinite(float(value)):
            return False
        left_in = self.closed in ("left", "both")
        right_in = self.closed in ("right", "both")
        if self.left is not None and not (value >= self.left if left_in else value > self.left):
            return False
        if self.right is not None and not (value <= self.right if right_in else value < self.right):
            return False
        return True

    def invalid_examples(self) -> list[Any]:
        step = 1 if self.type is numbers.Integral else 0.5
        out: list[Any] = []
        if self.left is not None:
            out += [self.left - step] + ([] if self.closed in ("left", "both") else [self.left])
        if self.right is not None:
            out += [self.right + step] + ([] if self.closed in ("right", "both") else [self.right])
        return out + ([float("nan"), float("inf"), "1"] if self.type is numbers.Real else [1.5, True, "1"])

    def __str__(self) -> str:
        lb = "[" if self.closed in ("left", "both") and self.left is not None else "("
        rb = "]" if self.closed in ("right", "both") and self.right is not None else ")"
        lo = "-inf" if self.left is None else _num(self.left)
        hi = "inf" if self.right is None else _num(self.right)
        what = "an int in " if self.type is numbers.Integral else "in "
        return f"{what}{lb}{lo}, {hi}{rb}"


def _num(x: float) -> str:
    """``1`` for 1.0, ``0.5`` for 0.5: bounds as a user would write them."""
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _same_option(value: Any, option: Any) -> bool:
    if isinstance(option, str):
        return isinstance(value, str) and value == option
    if isinstance(option, (bool, np.bool_)) or option is None:
        return value is option
    try:
        return type(value) is type(option) and bool(value == option)
    except Exception:  # noqa: BLE001 - comparing arbitrary user objects
        return False


class Options(Constraint):
    """One of a fixed set of values (usually strings). A set is shown sorted."""

    def __init__(self, options: Iterable[Any]) -> None:
        opts = tuple(sorted(options, key=repr)) if isinstance(options, (set, frozenset)) else tuple(options)
        if not opts:
            raise InvalidParameterError("Options needs at least one option; got none")
        self.options = opts

    def is_satisfied_by(self, value: Any) -> bool:
        return any(_same_option(value, o) for o in self.options)

    def invalid_examples(self) -> list[Any]:
        return ["not-an-option", 12345]

    def __str__(self) -> str:
        return repr(self.options[0]) if len(self.options) == 1 else f"one of {self.options}"


class HasMethods(Constraint):
    """An object with all of these methods (an estimator that can ``fit`` and ``predict_proba``)."""

    def __init__(self, *methods: str) -> None:
        if not methods or not all(isinstance(m, str) for m in methods):
            raise InvalidParameterError(f"HasMethods needs method names (str); got {methods!r}")
        self.methods = methods

    def is_satisfied_by(self, value: Any) -> bool:
        return all(callable(getattr(value, m, None)) for m in self.methods)

    def invalid_examples(self) -> list[Any]:
        return [object(), "estimator"]

    def __str__(self) -> str:
        return f"an object with method(s) {', '.join(self.methods)}"


class _NoneConstraint(Constraint):
    def is_satisfied_by(self, value: Any) -> bool:
        return value is None

    def __str__(self) -> str:
        return "None"


class _InstanceOf(Constraint):
    def __init__(self, type: type) -> None:
        self.type = type

    def is_satisfied_by(self, value: Any) -> bool:
        if isinstance(value, (bool, np.bool_)) and self.type is not bool:
            return False
        return isinstance(value, self.type)

    def invalid_examples(self) -> list[Any]:
        return [object(), 12345, "text", 1.5]

    def __str__(self) -> str:
        names = {int: "int", float: "float", str: "str", dict: "dict", tuple: "tuple", list: "list",
                 numbers.Integral: "int", numbers.Real: "float", Mapping: "mapping", bool: "bool"}
        name = names.get(self.type, self.type.__name__)
        return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


class _Callable(Constraint):
    def is_satisfied_by(self, value: Any) -> bool:
        return callable(value)

    def invalid_examples(self) -> list[Any]:
        return [object(), "function"]

    def __str__(self) -> str:
        return "a callable"


class _RandomState(Constraint):
    def is_satisfied_by(self, value: Any) -> bool:
        return value is None or isinstance(value, np.random.Generator) or (_is_int(value) and value >= 0)

    def invalid_examples(self) -> list[Any]:
        return [-1, "seed", 1.5, np.random.RandomState(0)]

    def __str__(self) -> str:
        return "None, an int >= 0 or a numpy Generator"


class _Boolean(Constraint):
    def is_satisfied_by(self, value: Any) -> bool:
        return isinstance(value, (bool, np.bool_))

    def invalid_examples(self) -> list[Any]:
        return ["yes", 1, None]

    def __str__(self) -> str:
        return "a bool"


class _ArrayLike(Constraint):
    def is_satisfied_by(self, value: Any) -> bool:
        if isinstance(value, (str, bytes, Mapping)):
            return False
        if isinstance(value, np.ndarray):
            return value.ndim >= 1
        return isinstance(value, (list, tuple)) or hasattr(value, "__array__")

    def invalid_examples(self) -> list[Any]:
        return [object(), 12345, "text"]

    def __str__(self) -> str:
        return "array-like (a list, tuple or array)"


class _ClassIndex(Constraint):
    def is_satisfied_by(self, value: Any) -> bool:
        return _is_int(value) and value >= 0

    def invalid_examples(self) -> list[Any]:
        return [-1, 1.5, True, "0"]

    def __str__(self) -> str:
        return "a class index (an int >= 0)"


_NAMED: dict[str, Callable[[], Constraint]] = {
    "random_state": _RandomState, "boolean": _Boolean, "array-like": _ArrayLike, "class_index": _ClassIndex,
}


def make_constraint(spec: Any) -> Constraint:
    """The :class:`Constraint` a declaration entry stands for (see the vocabulary above)."""
    if isinstance(spec, Constraint):
        return spec
    if spec is None:
        return _NoneConstraint()
    if spec is callable:
        return _Callable()
    if isinstance(spec, str):
        if spec not in _NAMED:
            raise InvalidParameterError(f"unknown constraint {spec!r}; named constraints: {sorted(_NAMED)}")
        return _NAMED[spec]()
    if isinstance(spec, type):
        return _InstanceOf(spec)
    if isinstance(typing.get_origin(spec), type):  # typing.Mapping -> collections.abc.Mapping
        return _InstanceOf(typing.get_origin(spec))
    raise InvalidParameterError(f"a constraint must be a Constraint, None, callable, a type or one of "
                                f"{sorted(_NAMED)}; got {spec!r}")


def describe_constraints(constraints: Iterable[Any]) -> str:
    """``"in (0, 1] or None"``: what a value satisfying ``constraints`` must be."""
    parts = [str(make_constraint(c)) for c in constraints]
    # None last reads best: "an int in [1, inf) or None"
    parts = [p for p in parts if p != "None"] + [p for p in parts if p == "None"]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " or " + parts[-1]


def _short(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"<array {value.shape} {value.dtype}>"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_param(value: Any, constraints: Iterable[Any], name: str) -> Any:
    """Check ``value`` against a declared list of constraints (any one may accept it); return it.

    Raises InvalidParameterError ``"{name} must be {what}; got {value!r}"``.
    """
    constraints = list(constraints)
    if any(make_constraint(c).is_satisfied_by(value) for c in constraints):
        return value
    raise InvalidParameterError(f"{name} must be {describe_constraints(constraints)}; got {_short(value)}")


def validate_params(params: Mapping[str, Any], constraints: Mapping[str, Iterable[Any]], owner: str) -> None:
    """Check every declared parameter of ``params``; messages name ``owner.param``."""
    for name, value in params.items():
        if name in constraints:
            check_param(value, constraints[name], f"{owner}.{name}")


def invalid_values(constraints: Iterable[Any]) -> list[Any]:
    """Values that no constraint of the list accepts: each constraint's near misses plus a few
    wrong types. The common tests try each one on every declared parameter."""
    cs = [make_constraint(c) for c in constraints]
    pool: list[Any] = [ex for c in cs for ex in c.invalid_examples()]
    pool += [object(), "not-a-valid-value", -1, float("nan")]
    out: dict[tuple[str, str], Any] = {}
    for v in pool:
        key = (type(v).__name__, "" if type(v) is object else repr(v))
        if key not in out and not any(c.is_satisfied_by(v) for c in cs):
            out[key] = v
    return list(out.values())


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
