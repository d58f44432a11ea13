"""Snapshots: streaming ingest of .npz/.npy/.csv, the Merkle root over the sample rows, all or
nothing under SIGKILL, two processes ingesting at once, a file changed while read."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from poisonlab.exceptions import DataError
from poisonlab.provenance import snapshot as snapshot_mod
from poisonlab.provenance.hashing import merkle_root, sample_hash
from poisonlab.provenance.ledger import Ledger, sample_leaf
from poisonlab.provenance.snapshot import ingest_snapshot, purge_unfinished, unfinished_ingests

PY = sys.executable


def _data(n=1000, d=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)).astype(np.float32), rng.integers(0, 3, n)


def test_npz_snapshot_records_every_sample_and_its_root(tmp_path):
    X, y = _data(250)
    contributors = np.array(["bob"] * 200 + ["eve"] * 50)
    np.savez_compressed(tmp_path / "a.npz", X=X, y=y, contributor=contributors)
    with Ledger.open(tmp_path / "l.db") as ledger:
        row = ingest_snapshot(ledger, tmp_path / "a.npz", source="web", contributor="crowd",
                              time="2026-01-01T00:00:00+00:00", chunk=64)
        leaves = [sample_leaf(i, sample_hash(X[i]), str(y[i]), "web", str(contributors[i]),
                              "2026-01-01T00:00:00+00:00") for i in range(250)]
        assert row["n_samples"] == 250 and row["name"] == "a" and row["merkle_root"] == merkle_root(leaves)
        # per-sample names, and the snapshot's default
        assert {r["name"] for r in ledger.rows("contributors")} == {"bob", "eve", "crowd"}
        report = ledger.verify()
        assert report.ok and report.n_samples == 250


def test_npy_with_labels_and_csv(tmp_path):
    X, y = _data(100)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    (tmp_path / "t.csv").write_text("text,label,contributor\nhello,0,ann\nworld,1,bob\nhello,1,cat\n")
    with Ledger.open(tmp_path / "l.db") as ledger:
        a = ingest_snapshot(ledger, tmp_path / "X.npy", labels=tmp_path / "y.npy", source="s", contributor="c", chunk=30)
        b = ingest_snapshot(ledger, tmp_path / "t.csv", source="s", contributor="c")
        assert a["n_samples"] == 100 and b["n_samples"] == 3
        with pytest.raises(DataError, match="give their labels"):
            ingest_snapshot(ledger, tmp_path / "X.npy", source="s", contributor="c")
        assert ledger.verify().ok and len(ledger.rows("snapshots")) == 2


def test_texts_and_per_sample_sources(tmp_path):
    texts = np.array(["free money", "hello", "free money"])
    np.savez(tmp_path / "t.npz", X=texts, y=np.array([1, 0, 0]), source=np.array(["sms", "sms", "web"]))
    (tmp_path / "q.csv").write_text('text,label,source\n"a, quoted",0,forum\nplain,1,\n')
    with Ledger.open(tmp_path / "l.db") as ledger:
        ingest_snapshot(ledger, tmp_path / "t.npz", source="default", contributor="c")
        ingest_snapshot(ledger, tmp_path / "q.csv", source="default", contributor="c")
        with ledger.read() as conn:
            rows = conn.exec_driver_sql("SELECT ingest_id, idx, content_hash, label, source FROM snapshot_samples "
                                        "ORDER BY ingest_id, idx").all()
        assert rows[0][2] == rows[2][2] == sample_hash("free money") and rows[0][3] == "1"
        assert [r[4] for r in rows] == ["sms", "sms", "web", "forum", "default"]  # empty cell: the default
        assert rows[3][2] == sample_hash("a, quoted")
        assert {r["name"] for r in ledger.rows("sources")} == {"default", "sms", "web", "forum"}
        assert ledger.verify().ok


def test_a_tampered_sample_row_breaks_the_snapshot_root(tmp_path):
    import sqlite3

    X, y = _data(50)
    np.savez(tmp_path / "a.npz", X=X, y=y)
    with Ledger.open(tmp_path / "l.db") as ledger:
        ingest_snapshot(ledger, tmp_path / "a.npz", source="web", contributor="bob")
    con = sqlite3.connect(tmp_path / "l.db")
    with con:
        con.execute("UPDATE snapshot_samples SET label = CASE label WHEN '0' THEN '1' ELSE '0' END WHERE idx = 7")
    con.close()
    with Ledger.open(tmp_path / "l.db") as ledger:
        p = ledger.verify().problem
        assert p.table == "snapshot_samples" and "Merkle root of snapshot 'a'" in p.what
    con = sqlite3.connect(tmp_path / "l.db")
    with con:
        con.execute("DELETE FROM snapshot_samples WHERE idx = 20")
    con.close()
    with Ledger.open(tmp_path / "l.db") as ledger:
        assert "sample index 20 of snapshot 'a' is missing" in ledger.verify().problem.what


def test_a_file_changed_while_read_records_nothing(tmp_path, monkeypatch):
    X, y = _data(300)
    path = tmp_path / "a.npz"
    np.savez(path, X=X, y=y)
    real = snapshot_mod.iter_chunks

    def changing(*args, **kwargs):
        for i, chunk in enumerate(real(*args, **kwargs)):
            if i == 1:
                with open(path, "ab") as fh:  # someone appends while we read
                    fh.write(b"more")
            yield chunk

    monkeypatch.setattr(snapshot_mod, "iter_chunks", changing)
    with Ledger.open(tmp_path / "l.db") as ledger:
        with pytest.raises(DataError, match="changed while it was read"):
            ingest_snapshot(ledger, path, source="web", contributor="bob", chunk=100)
        assert ledger.rows("snapshots") == [] and unfinished_ingests(ledger) == []
        with ledger.read() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM snapshot_samples").scalar() == 0


@pytest.mark.parametrize("content, message", [
    (b"not a zip", "not a readable .npz"),
])
def test_bad_inputs_are_one_line_data_errors(tmp_path, content, message):
    (tmp_path / "bad.npz").write_bytes(content)
    np.savez(tmp_path / "noy.npz", X=np.zeros((3, 2)))
    np.savez(tmp_path / "obj.npz", X=np.array([object()] * 2, dtype=object), y=np.zeros(2, int))
    with Ledger.open(tmp_path / "l.db") as ledger:
        with pytest.raises(DataError, match=message):
            ingest_snapshot(ledger, tmp_path / "bad.npz", source="s", contributor="c")
        with pytest.raises(DataError, match="must hold arrays 'X' and 'y'"):
            ingest_snapshot(ledger, tmp_path / "noy.npz", source="s", contributor="c")
        with pytest.raises(DataError, match="object array"):
            ingest_snapshot(ledger, tmp_path / "obj.npz", source="s", contributor="c")
        with pytest.raises(DataError, match="does not exist"):
            ingest_snapshot(ledger, tmp_path / "missing.npz", source="s", contributor="c")
        assert ledger.rows("snapshots") == []


_INGEST = """
import sys, time, pathlib
from poisonlab.provenance.ledger import Ledger
from poisonlab.provenance.snapshot import ingest_snapshot
url, path, name, marker, pause = sys.argv[1:6]
def progress(n):
    pathlib.Path(marker).write_text(str(n))
    if pause == "1":
        time.sleep(60)  # killed here, mid-ingest, with sample batches already committed
with Ledger.open(url) as ledger:
    ingest_snapshot(ledger, path, source="web", contributor=name, name=name, chunk=2000, on_progress=progress)
"""


def _spawn(url, path, name, marker, pause):
    return subprocess.Popen([PY, "-c", _INGEST, url, str(path), name, str(marker), pause],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_sigkill_mid_ingest_leaves_no_partial_snapshot(ledger_url, tmp_path):
    X, y = _data(20_000, 8)
    np.savez(tmp_path / "big.npz", X=X, y=y)
    np.savez(tmp_path / "small.npz", X=X[:500], y=y[:500])
    with Ledger.open(ledger_url) as ledger:
        committed = ingest_snapshot(ledger, tmp_path / "small.npz", source="web", contributor="first")
    marker = tmp_path / "progress"
    proc = _spawn(ledger_url, tmp_path / "big.npz", "killed", marker, "1")
    deadline = time.time() + 60
    while not marker.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert marker.exists(), proc.communicate()[1].decode()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with Ledger.open(ledger_url) as ledger:
        snaps = ledger.rows("snapshots")
        assert [s["name"] for s in snaps] == ["small"] and snaps[0]["merkle_root"] == committed["merkle_root"]
        report = ledger.verify()
        assert report.ok and report.n_samples == 500
        unfinished = unfinished_ingests(ledger)
        assert [u["name"] for u in unfinished] == ["killed"]
        assert purge_unfinished(ledger, [u["id"] for u in unfinished]) == 2000  # the committed batch
        assert unfinished_ingests(ledger) == [] and ledger.verify().ok


def test_two_processes_ingesting_at_once_both_succeed(ledger_url, tmp_path):
    for i in range(2):
        X, y = _data(12_000, 4, seed=i)
        np.savez(tmp_path / f"d{i}.npz", X=X, y=y)
    procs = [_spawn(ledger_url, tmp_path / f"d{i}.npz", f"p{i}", tmp_path / f"m{i}", "0") for i in range(2)]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    with Ledger.open(ledger_url) as ledger:
        snaps = {s["name"]: s for s in ledger.rows("snapshots")}
        assert set(snaps) == {"p0", "p1"} and all(s["n_samples"] == 12_000 for s in snaps.values())
        report = ledger.verify()
        assert report.ok and report.n_samples == 24_000 and report.n_snapshots == 2


def test_csv_rows_whose_fields_differ_only_in_where_a_separator_falls_hash_differently(tmp_path):
    from poisonlab.provenance.snapshot import iter_chunks

    path = tmp_path / "c.csv"
    path.write_text('a,b,label\n"x\x1fy",z,0\nx,"y\x1fz",0\n')
    chunk = next(iter(iter_chunks(path)))
    assert chunk.content[0] != chunk.content[1]


def test_an_ingest_whose_staged_rows_are_purged_meanwhile_records_nothing(tmp_path):
    """purge_unfinished run while an ingest is going (it looks unfinished) must not leave a
    snapshot without its samples: the ingest refuses to commit, and the ledger still verifies."""
    path = tmp_path / "d.npz"
    np.savez(path, X=np.arange(300 * 2, dtype=np.float32).reshape(300, 2), y=np.zeros(300, dtype=int))
    ledger = Ledger.open(tmp_path / "ledger.db")

    def purge(n_done):
        if n_done == 100:
            purge_unfinished(ledger, [i["id"] for i in unfinished_ingests(ledger)])

    with pytest.raises(DataError, match="were removed while it ran"):
        ingest_snapshot(ledger, path, source="s", contributor="c", chunk=100, on_progress=purge)
    assert ledger.rows("snapshots") == [] and ledger.verify().ok
