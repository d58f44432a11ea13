"""Content hashes, Merkle roots (RFC 6962, hand-computed) and canonical JSON."""

import hashlib

import numpy as np
import pytest

from poisonlab.exceptions import DataError
from poisonlab.provenance.hashing import (
    MerkleBuilder,
    canonical_json,
    leaf_hash,
    merkle_root,
    near_hashes,
    row_hashes,
    sample_hash,
)


def _h(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


def test_merkle_root_of_three_leaves_by_hand():
    # RFC 6962: leaves are sha256(0x00 || d); 3 leaves split 2 + 1
    l0, l1, l2 = _h(b"\x00a"), _h(b"\x00b"), _h(b"\x00c")
    expected = _h(b"\x01" + _h(b"\x01" + l0 + l1) + l2).hex()
    leaves = [leaf_hash(x) for x in ("a", "b", "c")]
    assert leaves == [l0, l1, l2]
    assert merkle_root(leaves) == expected


def test_merkle_root_edge_cases_by_hand():
    assert merkle_root([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert merkle_root([leaf_hash("a")]) == _h(b"\x00a").hex()
    l = [leaf_hash(str(i)) for i in range(5)]  # 5 leaves split 4 + 1
    four = _h(b"\x01" + _h(b"\x01" + l[0] + l[1]) + _h(b"\x01" + l[2] + l[3]))
    assert merkle_root(l) == _h(b"\x01" + four + l[4]).hex()


@pytest.mark.parametrize("n", [1, 2, 3, 7, 8, 9, 100])
def test_incremental_builder_matches_the_whole_tree(n):
    leaves = [leaf_hash(str(i)) for i in range(n)]
    b = MerkleBuilder()
    for leaf in leaves:
        b.add(leaf)
    assert b.root() == merkle_root(leaves) and b.count == n


def test_sample_hash_covers_dtype_shape_and_bytes():
    x = np.arange(6, dtype=np.float32)
    assert sample_hash(x) == hashlib.sha256(b"<f4|(6,)|" + x.tobytes()).hexdigest()
    assert sample_hash(x) != sample_hash(x.astype(np.float64))
    assert sample_hash(x) != sample_hash(x.reshape(2, 3))
    assert sample_hash("héllo") == hashlib.sha256(b"text|" + "héllo".encode()).hexdigest()
    X = np.random.default_rng(0).normal(size=(4, 2, 3)).astype(np.float32)
    assert row_hashes(X) == [sample_hash(r) for r in X]
    assert row_hashes(np.array(["a", "bc"])) == [sample_hash("a"), sample_hash("bc")]
    with pytest.raises(DataError, match="object array"):
        sample_hash(np.array([object()], dtype=object))


def test_near_hash_groups_values_equal_to_two_places():
    X = np.array([[0.101, 1.0], [0.0999, 1.001], [0.2, 1.0]])
    a, b, c = near_hashes(X)
    assert a == b != c


def test_canonical_json_is_sorted_compact_and_refuses_nan():
    assert canonical_json({"b": 1, "a": np.int64(2), "z": None}) == '{"a":2,"b":1}'
    with pytest.raises(DataError, match="NaN"):
        canonical_json({"x": float("nan")})
