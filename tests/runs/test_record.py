"""Run records: fingerprints over what is deterministic, hashes by hand, the environment."""

import hashlib

import numpy as np

from poisonlab.runs.record import deterministic_part, environment, fingerprint, jsonable, sha256_array


def test_fingerprint_ignores_timings_and_environment():
    a = {"results": {"acc": 0.9, "seconds": 1.0}, "environment": {"argv": ["x"]}}
    b = {"results": {"acc": 0.9, "seconds": 2.5}, "environment": {"argv": ["y"]}}
    assert fingerprint(a) == fingerprint(b)
    assert fingerprint(a) != fingerprint({**a, "results": {"acc": 0.91}})
    assert deterministic_part(a) == {"results": {"acc": 0.9}}


def test_sha256_array_by_hand():
    a = np.array([1, 2], dtype=np.int64)
    expected = hashlib.sha256(b"<i8|(2,)|" + a.tobytes()).hexdigest()
    assert sha256_array(a) == expected
    assert sha256_array(a.astype(np.int32)) != expected  # the dtype counts
    assert sha256_array(np.array(["ab", "c"], dtype=object)) != sha256_array(np.array(["a", "bc"], dtype=object))


def test_jsonable():
    out = jsonable({"a": np.float32(0.5), "b": (1, 2), "c": np.arange(3), "d": float("nan")})
    assert out == {"a": 0.5, "b": [1, 2], "c": [0, 1, 2], "d": None}
    big = jsonable(np.zeros(100))
    assert big["shape"] == [100] and len(big["array_sha256"]) == 64


def test_environment_names_versions_and_checkout(tmp_path):
    f = tmp_path / "data.bin"
    f.write_bytes(b"abc")
    env = environment(threads=1, data_files=[f])
    assert env["data_files"][str(f)] == hashlib.sha256(b"abc").hexdigest()
    for pkg in ("python", "numpy", "scipy", "scikit-learn", "torch", "cleanlab"):
        assert env["versions"][pkg]
    git = env["git"]
    assert git is None or (len(git["commit"]) == 40 and isinstance(git["dirty"], bool))
