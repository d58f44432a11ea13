"""The ledger: its hash chain, what verify names when rows are edited, deleted or reordered with
raw SQL, schema versions (newer refused, v1 migrated), bad locations, and both backends."""

import sqlite3
import threading

import pytest
import sqlalchemy as sa

from poisonlab.provenance.hashing import canonical_json
from poisonlab.provenance.ledger import (
    GENESIS,
    SCHEMA_VERSION,
    Ledger,
    LedgerError,
    row_hash,
    schema_metadata,
)


def _fill(ledger: Ledger) -> None:
    ledger.record_decision("quarantine", "contributor:mallory", actor="alice", reason="new")
    ledger.record_run("run-1", scenario={"name": "demo"}, code_commit="abc", environment={"python": "3"}, seed=0)
    ledger.record_event("run-1", "StepStarted", {"step": "train"})
    ledger.record_decision("release", "contributor:mallory", actor="bob", reason="reviewed")
    ledger.record_event("run-1", "StepFinished", {"step": "train", "seconds": 1.5})


@pytest.fixture
def filled(tmp_path):
    path = tmp_path / "ledger.db"
    with Ledger.open(path) as ledger:
        _fill(ledger)
    return path


def _sql(path, *statements):
    con = sqlite3.connect(path)
    with con:
        for s in statements:
            con.execute(s)
    con.close()


def _verify(path):
    with Ledger.open(path, create=False) as ledger:
        return ledger.verify()


def test_chain_links_every_row_to_the_previous_one(ledger_url):
    with Ledger.open(ledger_url) as ledger:
        _fill(ledger)
        rows = sorted([(r["seq"], t, r) for t in ("decisions", "runs", "events") for r in ledger.rows(t)],
                      key=lambda x: x[0])
        assert [s for s, _, _ in rows] == [0, 1, 2, 3, 4]
        prev = GENESIS
        for _, table, r in rows:
            assert r["prev_hash"] == prev
            content = {k: v for k, v in r.items() if k not in ("id", "seq", "prev_hash", "row_hash")}
            assert r["row_hash"] == row_hash(prev, table, content)
            prev = r["row_hash"]
        report = ledger.verify()
        assert report.ok and report.n_rows == 5 and report.head_seq == 4 and report.head_hash == prev
        assert ledger.schema_version == SCHEMA_VERSION


def test_verify_names_an_edited_row(filled):
    _sql(filled, "UPDATE decisions SET reason = 'looks fine' WHERE id = 1")
    report = _verify(filled)
    assert not report.ok
    p = report.problem
    assert (p.table, p.id, p.seq) == ("decisions", 1, 0) and "hash mismatch" in p.what


def test_verify_names_a_deleted_row(filled):
    _sql(filled, "DELETE FROM events WHERE id = 1")  # seq 2
    p = _verify(filled).problem
    assert "seq 2 is missing" in p.what and "deleted" in p.what and (p.table, p.seq) == ("decisions", 3)


def test_verify_notices_the_last_row_deleted(filled):
    _sql(filled, "DELETE FROM events WHERE id = 2")  # seq 4, the last
    p = _verify(filled).problem
    assert p.table == "chain_head" and "rows were deleted" in p.what


def test_verify_names_reordered_rows(filled):
    # swap the positions of seq 1 (the run) and seq 2 (an event)
    _sql(filled, "UPDATE runs SET seq = -1 WHERE seq = 1", "UPDATE events SET seq = 1 WHERE seq = 2",
         "UPDATE runs SET seq = 2 WHERE seq = -1")
    p = _verify(filled).problem
    assert (p.table, p.seq) == ("events", 1) and "out of order" in p.what


def test_verify_notices_a_rewritten_chain_only_with_an_expected_head(filled):
    with Ledger.open(filled) as ledger:
        head = ledger.verify().head_hash
    # rewrite the last row consistently (content, its hash and the head): the chain alone holds
    con = sqlite3.connect(filled)
    seq, prev = con.execute("SELECT seq, prev_hash FROM events WHERE id = 2").fetchone()
    content = dict(zip(("run_id", "kind", "payload_json", "created"),
                       con.execute("SELECT run_id, kind, payload_json, created FROM events WHERE id = 2").fetchone()))
    content["payload_json"] = canonical_json({"step": "train", "seconds": 99})
    new = row_hash(prev, "events", content)
    with con:
        con.execute("UPDATE events SET payload_json = ?, row_hash = ? WHERE id = 2", (content["payload_json"], new))
        con.execute("UPDATE chain_head SET hash = ?", (new,))
    con.close()
    with Ledger.open(filled) as ledger:
        assert ledger.verify().ok
        report = ledger.verify(expect_head=head)
        assert not report.ok and "expected head" in report.problem.what


def test_concurrent_writers_in_threads_keep_one_chain(ledger_url):
    with Ledger.open(ledger_url) as ledger:
        def work(i):
            for j in range(10):
                ledger.record_event(f"run-{i}", "Note", {"j": j})

        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        report = ledger.verify()
        assert report.ok and report.n_rows == 40


def test_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / "ledger.db"
    Ledger.open(path).close()
    _sql(path, f"UPDATE meta SET value = '{SCHEMA_VERSION + 1}' WHERE key = 'schema_version'")
    with pytest.raises(LedgerError, match=f"schema version {SCHEMA_VERSION + 1}, newer"):
        Ledger.open(path)


@pytest.mark.parametrize("value", ["abc", None])
def test_a_damaged_schema_version_is_one_ledger_error(tmp_path, value):
    path = tmp_path / "ledger.db"
    Ledger.open(path).close()
    _sql(path, "UPDATE meta SET value = 'abc' WHERE key = 'schema_version'" if value else
         "DELETE FROM meta WHERE key = 'schema_version'")
    with pytest.raises(LedgerError, match="holds no valid ledger: its schema_version is unreadable"):
        Ledger.open(path)


def make_v1_ledger(path) -> str:
    """A ledger as poisonlab wrote it at schema version 1 (no snapshots.sample_spec), with one
    chained snapshot row; returns that row's hash."""
    engine = sa.create_engine(f"sqlite:///{path}")
    md = schema_metadata(1)
    assert "sample_spec" not in md.tables["snapshots"].c
    content = {"name": "old", "ingest_id": 1, "n_samples": 0,
               "merkle_root": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
               "source": "web", "contributor": "bob", "created": "2025-01-01T00:00:00+00:00"}
    h = row_hash(GENESIS, "snapshots", content)
    with engine.begin() as conn:
        md.create_all(conn)
        conn.execute(md.tables["meta"].insert().values(key="schema_version", value="1"))
        conn.execute(md.tables["chain_head"].insert().values(id=1, seq=0, hash=h))
        conn.execute(md.tables["ingests"].insert().values(id=1, name="old"))
        conn.execute(md.tables["snapshots"].insert().values(seq=0, prev_hash=GENESIS, row_hash=h, **content))
    engine.dispose()
    return h


def test_a_v1_ledger_is_migrated_and_still_verifies(tmp_path):
    path = tmp_path / "v1.db"
    make_v1_ledger(path)
    with Ledger.open(path) as ledger:
        assert ledger.schema_version == 2
        cols = {c["name"] for c in sa.inspect(ledger.engine).get_columns("snapshots")}
        assert "sample_spec" in cols
        report = ledger.verify()
        assert report.ok and report.n_rows == 1 and report.n_snapshots == 1
        ledger.record_decision("gate", "model:1", reason="{}")
        assert ledger.verify().ok


def test_unreachable_server_is_one_line_naming_the_url_without_password():
    with pytest.raises(LedgerError) as err:
        Ledger.open("postgresql+psycopg://alice:s3cret@127.0.0.1:1/ledger")
    msg = str(err.value)
    assert "127.0.0.1:1/ledger" in msg and "s3cret" not in msg and "***" in msg and "\n" not in msg


@pytest.mark.parametrize("target, message", [
    ("mysql://u@h/db", "only SQLite and PostgreSQL"),
    ("{tmp}/missing/ledger.db", "does not exist"),
    ("{tmp}", "is a folder"),
])
def test_bad_locations_are_one_line_errors(tmp_path, target, message):
    with pytest.raises(LedgerError, match=message):
        Ledger.open(target.format(tmp=tmp_path))


def test_opening_without_create_needs_an_existing_ledger(tmp_path):
    with pytest.raises(LedgerError, match="does not exist"):
        Ledger.open(tmp_path / "none.db", create=False)


def test_default_ledger_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("POISONLAB_LEDGER", str(tmp_path / "env.db"))
    with Ledger.open() as ledger:
        ledger.record_decision("quarantine", "source:x")
    assert (tmp_path / "env.db").exists()
    monkeypatch.delenv("POISONLAB_LEDGER")
    monkeypatch.chdir(tmp_path)
    Ledger.open().close()
    assert (tmp_path / "poisonlab-ledger.db").exists()


def test_unknown_table_and_decision_kind_are_refused():
    with Ledger.open(":memory:") as ledger:
        with pytest.raises(LedgerError, match="not a chained ledger table"):
            ledger.append("meta", key="x")
        with pytest.raises(LedgerError, match="decision kind"):
            ledger.record_decision("approve", "model:1")
        assert ledger.verify().ok and ledger.verify().n_rows == 0


def test_scan_scores_are_chained_and_tamper_evident(tmp_path):
    import json

    path = tmp_path / "l.db"
    with Ledger.open(path) as ledger:
        row = ledger.record_scan("spectral", [0.1, 2.5, 0.3], run_id="run-1")
        assert json.loads(ledger.rows("scans")[0]["scores_json"]) == [0.1, 2.5, 0.3] and row["seq"] == 0
    _sql(path, "UPDATE scans SET scores_json = '[0.1,0.2,0.3]'")  # hide the outlier
    p = _verify(path).problem
    assert (p.table, p.seq) == ("scans", 0) and "hash mismatch" in p.what
