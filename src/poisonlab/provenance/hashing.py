"""Content hashes of samples, Merkle roots of snapshots, and the canonical JSON rows are hashed over.

Everything here is a pure function of its input, so a hash computed on one machine is the hash
computed on any other (same numpy dtype, same bytes).

- :func:`sample_hash`: sha256 over a sample's dtype, shape and bytes (C order); a text sample
  over its UTF-8 bytes. Two samples with the same hash are the same content.
- :func:`near_hash`: sha256 of a numeric sample rounded to ``decimals`` places (a coarse key for
  near-duplicates: two samples that round to the same values share it).
- :func:`leaf_hash`, :func:`merkle_root` and :class:`MerkleBuilder`: the Merkle tree of RFC 6962
  (certificate transparency): a leaf is ``sha256(0x00 || data)``, a node
  ``sha256(0x01 || left || right)``, and ``n`` leaves split at the largest power of two below
  ``n``. :class:`MerkleBuilder` adds leaves one at a time in O(log n) memory and gives the same
  root as :func:`merkle_root` over the whole list.
- :func:`canonical_json`: sorted keys, no whitespace, ``null`` fields dropped, numpy values as
  Python ones; NaN and infinity are refused (they have no JSON spelling).

Threat model: sha256 is collision resistant, so a poisoner who changes a sample's bytes, its
label, its source or its contributor changes the leaf and therefore the root. Limits: the hash
is over the bytes, so the same image re-encoded (other dtype, other scale) is another sample.

Examples
--------
>>> import numpy as np
>>> sample_hash(np.array([1, 2], dtype=np.uint8)) == sample_hash(np.array([1, 2], dtype=np.uint8))
True
>>> sample_hash(np.array([1, 2], dtype=np.uint8)) == sample_hash(np.array([1, 2], dtype=np.int64))
False
>>> merkle_root([]) == hashlib.sha256(b"").hexdigest()
True
>>> canonical_json({"b": 1, "a": [1.5, None], "c": None})
'{"a":[1.5,null],"b":1}'
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any, Iterable

import numpy as np

from ..exceptions import DataError

__all__ = ["sample_hash", "row_hashes", "near_hash", "near_hashes", "leaf_hash", "node_hash",
           "merkle_root", "MerkleBuilder", "canonical_json", "sha256_text", "jsonable"]


def sha256_text(text: str) -> str:
    """sha256 (hex) of ``text`` encoded as UTF-8."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sample_hash(sample: Any) -> str:
    """sha256 (hex) of one sample: ``"<dtype>|<shape>|"`` then its bytes in C order; a ``str``
    (a text sample) as ``"text|"`` then its UTF-8 bytes.

    Object arrays are refused: their bytes are pointers, not content.
    """
    if isinstance(sample, str):
        return hashlib.sha256(b"text|" + sample.encode("utf-8")).hexdigest()
    arr = np.ascontiguousarray(sample)
    if arr.dtype.kind == "U" and arr.ndim == 0:
        return sample_hash(str(arr))
    if arr.dtype == object:
        raise DataError("cannot hash an object array (its bytes are pointers, not content); "
                        "store numbers, or texts as a unicode array")
    h = hashlib.sha256(f"{arr.dtype.str}|{arr.shape}|".encode())
    h.update(arr.tobytes())
    return h.hexdigest()


def row_hashes(X: np.ndarray) -> list[str]:
    """:func:`sample_hash` of every row of ``X`` (``X[i]`` is sample ``i``)."""
    if X.dtype.kind == "U":
        return [sample_hash(str(x)) for x in X]
    if X.dtype == object:
        raise DataError("cannot hash an object array (its bytes are pointers, not content); "
                        "store numbers, or texts as a unicode array")
    X = np.ascontiguousarray(X)
    prefix = f"{X.dtype.str}|{X.shape[1:]}|".encode()
    sha = hashlib.sha256
    return [sha(prefix + row).hexdigest() for row in _row_bytes(X)]


def _row_bytes(X: np.ndarray) -> Iterable[bytes]:
    n = len(X)
    if n == 0:
        return []
    flat = X.reshape(n, -1).view(np.uint8).reshape(n, -1) if X.size else np.zeros((n, 0), np.uint8)
    buf = flat.tobytes()
    width = flat.shape[1]
    return (buf[i * width:(i + 1) * width] for i in range(n))


def near_hash(sample: Any, decimals: int = 2) -> str | None:
    """sha256 of a numeric sample rounded to ``decimals`` places (as float64), or None for text.

    Two samples with the same near hash agree to ``decimals`` places everywhere (the reverse
    does not hold: values either side of a rounding boundary get different keys).
    """
    arr = np.asarray(sample)
    if arr.dtype.kind not in "biuf":
        return None
    return sample_hash(np.round(arr.astype(np.float64), decimals) + 0.0)  # + 0.0: no -0.0


def near_hashes(X: np.ndarray, decimals: int = 2) -> list[str | None]:
    """:func:`near_hash` of every row of ``X``."""
    if X.dtype.kind not in "biuf":
        return [None] * len(X)
    return row_hashes(np.round(X.astype(np.float64), decimals) + 0.0)


def leaf_hash(data: bytes | str) -> bytes:
    """RFC 6962 leaf: ``sha256(0x00 || data)`` (``str`` data as UTF-8); 32 raw bytes."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 interior node: ``sha256(0x01 || left || right)``; 32 raw bytes."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def merkle_root(leaves: list[bytes]) -> str:
    """RFC 6962 Merkle tree hash (hex) of already-hashed ``leaves`` (see :func:`leaf_hash`).

    ``[]`` -> sha256 of the empty string; one leaf -> that leaf; ``n`` leaves -> node of the
    roots of the first ``k`` and the last ``n - k``, ``k`` the largest power of two below ``n``.
    """
    if not leaves:
        return hashlib.sha256(b"").hexdigest()

    def mth(items: list[bytes]) -> bytes:
        if len(items) == 1:
            return items[0]
        k = 1 << ((len(items) - 1).bit_length() - 1)
        return node_hash(mth(items[:k]), mth(items[k:]))

    return mth(list(leaves)).hex()


class MerkleBuilder:
    """The root of :func:`merkle_root`, built one leaf at a time in O(log n) memory.

    Examples
    --------
    >>> leaves = [leaf_hash(str(i)) for i in range(5)]
    >>> b = MerkleBuilder()
    >>> for leaf in leaves:
    ...     b.add(leaf)
    >>> b.root() == merkle_root(leaves), b.count
    (True, 5)
    """

    def __init__(self) -> None:
        self._stack: list[tuple[int, bytes]] = []  # (height, hash) of complete subtrees
        self.count = 0

    def add(self, leaf: bytes) -> None:
        height, node = 0, leaf
        stack = self._stack
        while stack and stack[-1][0] == height:
            _, left = stack.pop()
            node = node_hash(left, node)
            height += 1
        stack.append((height, node))
        self.count += 1

    def root(self) -> str:
        if not self._stack:
            return hashlib.sha256(b"").hexdigest()
        node = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            node = node_hash(left, node)
        return node.hex()


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars and arrays as Python ones, tuples as lists; NaN and infinity
    refused with a DataError."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        raise DataError(f"{value} cannot be stored in the ledger (JSON has no NaN or infinity)")
    return value


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if v is not None}
    return value


def canonical_json(value: Any) -> str:
    """JSON with sorted keys, no whitespace, UTF-8 kept, numpy values converted and the top-level
    object's ``null`` fields dropped (so a column added by a migration, null in old rows, leaves
    their hashes unchanged)."""
    return json.dumps(_drop_nulls(jsonable(value)), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False, allow_nan=False)
