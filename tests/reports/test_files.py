"""Atomic file writing: whole files, ordinary permissions, nothing left behind on failure."""

import os
import stat

import numpy as np
import pytest

from poisonlab.reports import atomic_write_json, atomic_write_text


def test_atomic_write_gives_ordinary_permissions_and_keeps_existing_ones(tmp_path):
    umask = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "new.txt", "a")
        assert stat.S_IMODE(path.stat().st_mode) == 0o644  # not mkstemp's 0o600
        path.chmod(0o640)
        atomic_write_text(path, "b")
        assert stat.S_IMODE(path.stat().st_mode) == 0o640 and path.read_text() == "b"
    finally:
        os.umask(umask)


def test_atomic_write_json_is_strict_and_leaves_no_temporary_file(tmp_path):
    path = atomic_write_json(tmp_path / "r.json", {"x": np.float32(1.5), "bad": float("nan")})
    assert path.read_text() == '{\n  "x": 1.5,\n  "bad": null\n}\n'
    with pytest.raises(TypeError):
        atomic_write_json(tmp_path / "r.json", {"x": object()})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]
    assert '"x": 1.5' in path.read_text()  # the failed write left the old file whole
