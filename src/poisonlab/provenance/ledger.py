"""The provenance ledger: an append-only, hash-chained record of where every sample, run, model
and decision came from, in SQLite (a file, the default) or PostgreSQL (by URL).

What it holds (SQLAlchemy Core tables):

===================  =====================================================================
``sources``          where data came from (a name and a description)
``contributors``     who contributed it
``snapshots``        one row per ingested dataset snapshot: its name, size, Merkle root, the
                     input file's sha256, default source and contributor, time
``snapshot_samples`` one row per sample: index, content hash, label, source, contributor,
                     time (covered by the snapshot's Merkle root, not chained one by one)
``ingests``          staging: an ingest in progress (its samples become visible only when
                     its snapshot row is written)
``runs``             run manifests: snapshot root, resolved scenario and config JSON, code
                     commit, environment JSON, seed
``models``           registered models: weights sha256, parent run, metrics, model card, path
``scans``            detector scores per sample (JSON)
``decisions``        quarantine, release, reject, promotion, rollback and gate decisions
``events``           the runner's events as they happened
``meta``             ``schema_version``
``chain_head``       one row: the last sequence number and hash of the chain
===================  =====================================================================

**The chain.** Every row of the chained tables (all but ``snapshot_samples``, ``ingests``,
``meta`` and ``chain_head``) has a global sequence number ``seq`` (0, 1, 2, ...), the previous
row's hash ``prev_hash`` and ``row_hash = sha256(prev_hash + canonical JSON of the row's table
name and content)`` (the content is every column but ``id``, ``seq`` and the two hashes; null
fields are left out, so a column added by a migration leaves old hashes valid). Appending takes
the chain head under a lock -- ``BEGIN IMMEDIATE`` on SQLite, ``SELECT ... FOR UPDATE`` of the
head row on PostgreSQL -- so concurrent writers, in threads or processes, extend one chain.
:meth:`Ledger.verify` walks the chain in ``seq`` order and names the first row that is wrong:
its content changed (hash mismatch), a row is missing (a ``seq`` gap, or the head says the chain
is longer: deleted), or rows were swapped (a row whose own hash holds but whose ``prev_hash`` is
not its predecessor's hash: out of order); it then recomputes every snapshot's Merkle root from
its sample rows.

Threat model: someone with write access to the database file or server edits, deletes or
reorders rows with plain SQL, or a process dies mid-write. Limits: the chain makes tampering
*evident*, not impossible. Someone who rewrites every row from the first tampered one onward
(and the head) produces a valid chain; record :attr:`VerifyReport.head_hash` somewhere they
cannot write (a CI log, a signed tag) and pass it back as ``expect_head`` to detect that.

Durability: each append is one transaction. SQLite runs in WAL mode with ``synchronous=FULL``
and a busy timeout, so a killed process loses at most its uncommitted transaction and two
processes can write at once (one waits for the other's transaction).

Examples
--------
>>> ledger = Ledger.open(":memory:")
>>> row = ledger.append("decisions", kind="quarantine", subject="contributor:mallory",
...                     actor="alice", reason="new contributor")
>>> row["seq"], ledger.verify().ok
(0, True)
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.engine import Connection, Engine, make_url

from ..exceptions import PoisonlabError
from .hashing import MerkleBuilder, canonical_json, leaf_hash

__all__ = ["Ledger", "LedgerError", "VerifyReport", "Problem", "SCHEMA_VERSION", "CHAINED_TABLES",
           "schema_metadata", "GENESIS", "mask_url", "utcnow", "DEFAULT_LEDGER", "LEDGER_ENV",
           "row_hash", "sample_leaf"]

#: The schema this code writes; older ledgers are migrated on open, newer ones refused.
SCHEMA_VERSION = 2
#: prev_hash of the first row.
GENESIS = "0" * 64
#: Environment variable naming the default ledger (a path or a URL).
LEDGER_ENV = "POISONLAB_LEDGER"
#: The default ledger file, in the current folder, when $POISONLAB_LEDGER is not set.
DEFAULT_LEDGER = "poisonlab-ledger.db"
#: How long a writer waits for another's transaction (SQLite busy timeout), in seconds.
BUSY_TIMEOUT_S = 120

#: Tables whose rows are chained, and their content columns (in the order rows are written).
CHAINED_TABLES: dict[str, tuple[str, ...]] = {
    "sources": ("name", "description", "created"),
    "contributors": ("name", "created"),
    "snapshots": ("name", "ingest_id", "n_samples", "merkle_root", "input_path", "input_sha256",
                  "source", "contributor", "created", "meta_json", "sample_spec"),
    "runs": ("run_id", "snapshot_root", "scenario_json", "config_json", "code_commit",
             "environment_json", "seed", "created"),
    "models": ("path", "weights_sha256", "file_sha256", "run_id", "metrics_json", "card_json",
               "created"),
    "scans": ("snapshot_id", "run_id", "detector", "scores_json", "created"),
    "decisions": ("kind", "subject", "actor", "reason", "ref_id", "created"),
    "events": ("run_id", "kind", "payload_json", "created"),
}
#: Columns added by each migration (table -> columns), so a v1 ledger can be built for tests.
ADDED_IN = {2: {"snapshots": ("sample_spec",)}}
DECISION_KINDS = ("quarantine", "release", "reject", "promotion", "rollback", "gate")


class LedgerError(PoisonlabError, RuntimeError):
    """The ledger cannot be opened, read or written as asked (unreachable, newer schema,
    unknown snapshot, ...). One line naming what is wrong."""


def utcnow() -> str:
    """The current UTC time, ISO 8601 with microseconds (what ``created`` columns hold)."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="microseconds")


def mask_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (plain paths unchanged)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not a URL: a path, shown as given
        return str(url)


def row_hash(prev_hash: str, table: str, content: Mapping[str, Any]) -> str:
    """``sha256(prev_hash + canonical JSON of {"table": table, **content})`` (hex)."""
    body = canonical_json({"table": table, **content})
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


def sample_leaf(idx: int, content_hash: str, label: Any, source: str | None,
                contributor: str | None, time: str | None) -> bytes:
    """The Merkle leaf of one sample row: :func:`~poisonlab.provenance.hashing.leaf_hash` of the
    canonical JSON list ``[index, content hash, label, source, contributor, time]``."""
    # json.dumps of a flat list is already canonical; spelled out because it runs once per sample
    return leaf_hash(_LIST_ENCODER.encode([int(idx), content_hash, label, source, contributor, time]))


_LIST_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


# --- the schema -------------------------------------------------------------------------------

def schema_metadata(version: int = SCHEMA_VERSION) -> sa.MetaData:
    """The tables of schema ``version`` (1 or 2)."""
    md = sa.MetaData()
    added = {t: set(cols) for v, tables in ADDED_IN.items() if v > version for t, cols in tables.items()}
    sa.Table("meta", md, sa.Column("key", sa.String(64), primary_key=True),
             sa.Column("value", sa.Text, nullable=False))
    sa.Table("chain_head", md, sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
             sa.Column("seq", sa.BigInteger, nullable=False),
             sa.Column("hash", sa.String(64), nullable=False))
    types = {"n_samples": sa.BigInteger, "ingest_id": sa.BigInteger, "seed": sa.BigInteger,
             "snapshot_id": sa.BigInteger, "ref_id": sa.BigInteger}
    for table, cols in CHAINED_TABLES.items():
        columns = [sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
                             autoincrement=True),
                   sa.Column("seq", sa.BigInteger, nullable=False, unique=True),
                   sa.Column("prev_hash", sa.String(64), nullable=False),
                   sa.Column("row_hash", sa.String(64), nullable=False)]
        columns += [sa.Column(c, types.get(c, sa.Text), nullable=True) for c in cols
                    if c not in added.get(table, ())]
        sa.Table(table, md, *columns)
    sa.Index("ix_snapshots_name", md.tables["snapshots"].c.name)
    sa.Index("ix_decisions_subject", md.tables["decisions"].c.subject)
    sa.Index("ix_events_run", md.tables["events"].c.run_id)
    sa.Table("ingests", md,
             sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
                       autoincrement=True),
             sa.Column("name", sa.Text), sa.Column("input_path", sa.Text),
             sa.Column("source", sa.Text), sa.Column("contributor", sa.Text),
             sa.Column("started", sa.Text), sa.Column("pid", sa.Integer))
    sa.Table("snapshot_samples", md,
             sa.Column("ingest_id", sa.BigInteger, primary_key=True, autoincrement=False),
             sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
             sa.Column("content_hash", sa.String(64), nullable=False),
             sa.Column("near_hash", sa.String(64), nullable=True),
             sa.Column("label", sa.Text, nullable=True),
             sa.Column("source", sa.Text, nullable=True),
             sa.Column("contributor", sa.Text, nullable=True),
             sa.Column("time", sa.Text, nullable=True))
    # no index on content_hash: inserting a million random hashes into a B-tree halves ingest
    # speed, and the diff's sort of one snapshot's rows is faster than walking such an index
    return md


def migrate_1_to_2(conn: Connection) -> None:
    """Schema 1 -> 2: ``snapshots.sample_spec`` (the dtype and shape of one sample, JSON; null
    for snapshots ingested before). Old rows' hashes stay valid (null fields are not hashed)."""
    conn.exec_driver_sql("ALTER TABLE snapshots ADD COLUMN sample_spec TEXT")


MIGRATIONS = {1: migrate_1_to_2}


# --- verification report ------------------------------------------------------------------------

@dataclass(frozen=True)
class Problem:
    """The first thing :meth:`Ledger.verify` found wrong."""

    table: str
    seq: int | None
    id: int | None
    what: str

    def __str__(self) -> str:
        if self.table == "snapshot_samples":  # sample rows are covered by their snapshot's root
            where = f"snapshot_samples of snapshots row id {self.id}"
        else:
            where = f"{self.table} row id {self.id}" if self.id is not None else self.table
        if self.seq is not None:
            where += f" (seq {self.seq})"
        return f"{where}: {self.what}"


@dataclass(frozen=True)
class VerifyReport:
    """What :meth:`Ledger.verify` checked: ``ok`` and, when not, the first ``problem``."""

    ok: bool
    n_rows: int
    n_snapshots: int
    n_samples: int
    head_seq: int | None
    head_hash: str
    problem: Problem | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["problem"] = None if self.problem is None else {**asdict(self.problem), "message": str(self.problem)}
        return out


# --- the ledger --------------------------------------------------------------------------------

def _is_url(target: str) -> bool:
    return "://" in target


def resolve_target(target: str | os.PathLike | None) -> str:
    """The ledger to open: ``target``, else $POISONLAB_LEDGER, else ``poisonlab-ledger.db``."""
    if target is None or str(target) == "":
        target = os.environ.get(LEDGER_ENV) or DEFAULT_LEDGER
    return str(target)


class Ledger:
    """An open ledger. Use :meth:`open`; close with :meth:`close` (or ``with``).

    All writes go through :meth:`append` (one chained row per call) or :meth:`transaction`
    (several rows, one commit). Reads never block writers (WAL on SQLite, MVCC on PostgreSQL).
    """

    def __init__(self, engine: Engine, url: str) -> None:
        self.engine = engine
        self.url = url
        self.tables = schema_metadata().tables
        self.dialect = engine.dialect.name

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def open(cls, target: str | os.PathLike | None = None, *, create: bool = True) -> "Ledger":
        """Open (and create, or migrate) the ledger at ``target``.

        Parameters
        ----------
        target : str or path, optional
            A file path (SQLite), ``":memory:"``, a ``sqlite:///...`` URL or a
            ``postgresql+psycopg://user:password@host/db`` URL. Default: $POISONLAB_LEDGER, else
            ``poisonlab-ledger.db`` in the current folder.
        create : bool, default=True
            Create the tables when the database has none; with False a missing file or an
            empty database is an error.

        Raises
        ------
        LedgerError
            Unreachable server or unopenable file (the URL is named, password masked); a ledger
            written by a newer poisonlab (schema version above :data:`SCHEMA_VERSION`).
        """
        target = resolve_target(target)
        shown = mask_url(target)
        if _is_url(target):
            url = make_url(target)
            if url.drivername == "postgresql" or url.drivername == "postgres":
                url = url.set(drivername="postgresql+psycopg")
        else:
            if target != ":memory:":
                path = Path(target)
                if path.is_dir():
                    raise LedgerError(f"ledger {target} is a folder; give a file or a URL")
                if not create and not path.exists():
                    raise LedgerError(f"ledger {target} does not exist (create it with 'poisonlab ledger init')")
                if not path.parent.exists():
                    raise LedgerError(f"cannot create ledger {target}: folder {path.parent} does not exist")
            url = sa.engine.URL.create("sqlite", database=None if target == ":memory:" else target)
        backend = url.get_backend_name()
        if backend not in ("sqlite", "postgresql"):
            raise LedgerError(f"ledger {shown}: only SQLite and PostgreSQL are supported; got {backend!r}")
        try:
            if backend == "sqlite":
                engine = _sqlite_engine(url)
            else:
                engine = sa.create_engine(url, connect_args={"connect_timeout": 10}, pool_pre_ping=True)
        except Exception as exc:  # noqa: BLE001 - a missing driver, a malformed URL
            raise LedgerError(f"cannot open ledger {shown}: {_first_line(exc)}") from exc
        ledger = cls(engine, shown)
        try:
            ledger._prepare(create=create)
        except LedgerError:
            engine.dispose()
            raise
        except sa.exc.SQLAlchemyError as exc:
            engine.dispose()
            raise LedgerError(f"cannot open ledger {shown}: {_first_line(getattr(exc, 'orig', None) or exc)}") from exc
        return ledger

    def _read_version(self, conn: Connection) -> int | None:
        if not sa.inspect(conn).has_table("meta"):
            return None
        return self._stored_version(conn)

    def _stored_version(self, conn: Connection) -> int:
        """The ``schema_version`` in ``meta``; LedgerError (one line) when it is missing or not a
        number: the file is not a ledger this code wrote, or it was damaged."""
        rows = conn.execute(sa.select(self.tables["meta"].c.value)
                            .where(self.tables["meta"].c.key == "schema_version")).all()
        try:
            if len(rows) != 1:
                raise ValueError(f"{len(rows)} schema_version rows")
            return int(rows[0][0])
        except (TypeError, ValueError) as exc:
            raise LedgerError(f"{self.url} holds no valid ledger: its schema_version is unreadable "
                              f"({_first_line(exc)})") from exc

    def _prepare(self, *, create: bool) -> None:
        with self.read() as conn:  # the usual case writes nothing (a read-only file can be verified)
            version = self._read_version(conn)
        if version is not None and version > SCHEMA_VERSION:
            raise LedgerError(f"ledger {self.url} has schema version {version}, newer than this "
                              f"poisonlab reads ({SCHEMA_VERSION}); upgrade poisonlab")
        if version == SCHEMA_VERSION:
            return
        if version is None and not create:
            raise LedgerError(f"{self.url} holds no ledger (create it with 'poisonlab ledger init')")
        with self.write() as conn:
            if self.dialect == "postgresql":  # two processes creating one ledger: one at a time
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(7243001)"))
            inspector = sa.inspect(conn)
            if not inspector.has_table("meta"):
                if not create:
                    raise LedgerError(f"{self.url} holds no ledger (create it with 'poisonlab ledger init')")
                schema_metadata().create_all(conn)
                conn.execute(self.tables["meta"].insert(), [{"key": "schema_version", "value": str(SCHEMA_VERSION)}])
                conn.execute(self.tables["chain_head"].insert(), [{"id": 1, "seq": -1, "hash": GENESIS}])
                return
            version = self._stored_version(conn)
            if version > SCHEMA_VERSION:
                raise LedgerError(f"ledger {self.url} has schema version {version}, newer than this "
                                  f"poisonlab reads ({SCHEMA_VERSION}); upgrade poisonlab")
            while version < SCHEMA_VERSION:
                MIGRATIONS[version](conn)
                version += 1
                conn.execute(self.tables["meta"].update().where(self.tables["meta"].c.key == "schema_version")
                             .values(value=str(version)))

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> "Ledger":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        with self.read() as conn:
            return self._stored_version(conn)

    # -- transactions ----------------------------------------------------------------------

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction (``BEGIN IMMEDIATE`` on SQLite): committed on success, rolled back
        on any exception."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(poisonlab_write=True)
            with conn.begin():
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction (one consistent view of the ledger: SQLite's WAL snapshot, taken at
        the first read; PostgreSQL at REPEATABLE READ, so a verify that reads the head and then
        every table sees no append that commits in between)."""
        with self.engine.connect() as conn:
            if self.dialect == "postgresql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield conn

    def _lock_head(self, conn: Connection) -> tuple[int, str]:
        head = self.tables["chain_head"]
        row = conn.execute(sa.select(head.c.seq, head.c.hash).where(head.c.id == 1).with_for_update()).one()
        return int(row.seq), str(row.hash)

    def append_rows(self, conn: Connection, rows: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
        """Append ``(table, content)`` rows to the chain inside the open write transaction
        ``conn``; returns each row as stored (with ``id``, ``seq`` and hashes)."""
        seq, prev = self._lock_head(conn)
        out = []
        for table, content in rows:
            cols = CHAINED_TABLES.get(table)
            if cols is None:
                raise LedgerError(f"{table!r} is not a chained ledger table; one of {', '.join(CHAINED_TABLES)}")
            unknown = set(content) - set(cols)
            if unknown:
                raise LedgerError(f"{table} has no column(s) {', '.join(sorted(unknown))}")
            content = {c: content.get(c) for c in cols}
            if "created" in cols and content.get("created") is None:
                content["created"] = utcnow()
            seq += 1
            h = row_hash(prev, table, content)
            values = {**content, "seq": seq, "prev_hash": prev, "row_hash": h}
            result = conn.execute(self.tables[table].insert().values(**values))
            out.append({"id": int(result.inserted_primary_key[0]), **values})
            prev = h
        conn.execute(self.tables["chain_head"].update().where(self.tables["chain_head"].c.id == 1)
                     .values(seq=seq, hash=prev))
        return out

    def append(self, table: str, **content: Any) -> dict[str, Any]:
        """Append one row to ``table`` (its own transaction); returns it as stored."""
        with self.write() as conn:
            return self.append_rows(conn, [(table, content)])[0]

    # -- convenience writers ---------------------------------------------------------------

    def ensure_names(self, conn: Connection, *, sources: set[str] = frozenset(),
                     contributors: set[str] = frozenset()) -> None:
        """Append ``sources`` / ``contributors`` rows for names not yet in the ledger. The chain
        head is locked first, so two writers adding the same new name add it once."""
        self._lock_head(conn)
        rows: list[tuple[str, dict[str, Any]]] = []
        for table, names in (("sources", sources), ("contributors", contributors)):
            names = {n for n in names if n is not None}
            if not names:
                continue
            t = self.tables[table]
            known = set(conn.execute(sa.select(t.c.name).where(t.c.name.in_(sorted(names)))).scalars())
            rows += [(table, {"name": n}) for n in sorted(names - known)]
        if rows:
            self.append_rows(conn, rows)

    def record_decision(self, kind: str, subject: str, *, actor: str | None = None,
                        reason: str | None = None, ref_id: int | None = None) -> dict[str, Any]:
        """Append a ``decisions`` row (``kind`` one of :data:`DECISION_KINDS`)."""
        if kind not in DECISION_KINDS:
            raise LedgerError(f"decision kind must be one of {', '.join(DECISION_KINDS)}; got {kind!r}")
        if not subject:
            raise LedgerError("a decision needs a subject (e.g. contributor:NAME or model:ID)")
        return self.append("decisions", kind=kind, subject=subject, actor=actor or _actor(),
                           reason=reason, ref_id=ref_id)

    def record_run(self, run_id: str, *, scenario: Any = None, config: Any = None,
                   code_commit: str | None = None, environment: Any = None, seed: int | None = None,
                   snapshot_root: str | None = None) -> dict[str, Any]:
        """Append a run manifest (JSON-able ``scenario``, ``config`` and ``environment``)."""
        return self.append("runs", run_id=run_id, snapshot_root=snapshot_root,
                           scenario_json=None if scenario is None else canonical_json(scenario),
                           config_json=None if config is None else canonical_json(config),
                           code_commit=code_commit,
                           environment_json=None if environment is None else canonical_json(environment),
                           seed=None if seed is None else int(seed))

    def record_event(self, run_id: str | None, kind: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Append an ``events`` row."""
        return self.append("events", run_id=run_id, kind=kind, payload_json=canonical_json(dict(payload)))

    def record_scan(self, detector: str, scores: Any, *, snapshot_id: int | None = None,
                    run_id: str | None = None) -> dict[str, Any]:
        """Append a ``scans`` row: ``scores`` (one per sample, in snapshot order) as JSON."""
        return self.append("scans", snapshot_id=snapshot_id, run_id=run_id, detector=detector,
                           scores_json=canonical_json(list(scores)))

    # -- reading ---------------------------------------------------------------------------

    def rows(self, table: str, *, limit: int | None = None, where: Any = None,
             newest_first: bool = False) -> list[dict[str, Any]]:
        """Rows of a chained table in chain order (or newest first), as dicts."""
        t = self.tables[table]
        q = sa.select(t).order_by(t.c.seq.desc() if newest_first else t.c.seq)
        if where is not None:
            q = q.where(where)
        if limit is not None:
            q = q.limit(limit)
        with self.read() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def log(self, limit: int = 20) -> list[dict[str, Any]]:
        """The last ``limit`` chained rows of every table, newest first: ``seq``, table, id,
        created, a one-line summary and the row hash."""
        entries = []
        with self.read() as conn:
            for table, cols in CHAINED_TABLES.items():
                t = self.tables[table]
                for r in conn.execute(sa.select(t).order_by(t.c.seq.desc()).limit(limit)):
                    m = dict(r._mapping)
                    entries.append({"seq": m["seq"], "table": table, "id": m["id"], "created": m.get("created"),
                                    "summary": _summary(table, m), "row_hash": m["row_hash"]})
        entries.sort(key=lambda e: e["seq"], reverse=True)
        return entries[:limit]

    def snapshot(self, name_or_id: str | int) -> dict[str, Any]:
        """The snapshot row named ``name_or_id`` (the latest of that name), or with that id."""
        t = self.tables["snapshots"]
        with self.read() as conn:
            row = conn.execute(sa.select(t).where(t.c.name == str(name_or_id)).order_by(t.c.seq.desc())
                               .limit(1)).first()
            if row is None and str(name_or_id).isdigit():
                row = conn.execute(sa.select(t).where(t.c.id == int(name_or_id))).first()
        if row is None:
            known = [r["name"] for r in self.rows("snapshots", limit=5, newest_first=True)]
            hint = f"; known: {', '.join(known)}" if known else "; the ledger holds no snapshot yet"
            raise LedgerError(f"no snapshot named {name_or_id!r} in ledger {self.url}{hint}")
        return dict(row._mapping)

    def snapshot_for_file(self, sha256: str) -> dict[str, Any] | None:
        """The latest snapshot ingested from a file with this sha256, or None."""
        t = self.tables["snapshots"]
        rows = self.rows("snapshots", where=t.c.input_sha256 == sha256, limit=1, newest_first=True)
        return rows[0] if rows else None

    def head(self) -> tuple[int, str]:
        """``(seq, hash)`` of the chain's last row (``(-1, GENESIS)`` when empty)."""
        head = self.tables["chain_head"]
        with self.read() as conn:
            row = conn.execute(sa.select(head.c.seq, head.c.hash).where(head.c.id == 1)).one()
        return int(row.seq), str(row.hash)

    # -- verification ----------------------------------------------------------------------

    def verify(self, *, expect_head: str | None = None) -> VerifyReport:
        """Walk the chain and every snapshot's samples; report the first problem.

        Parameters
        ----------
        expect_head : str, optional
            A head hash recorded earlier somewhere safe; the chain must contain it (a rewritten
            chain would not).
        """
        import heapq

        n_rows = 0
        problem: Problem | None = None
        n_snapshots = n_samples = 0
        with self.read() as conn:
            head_seq, head_hash = (lambda r: (int(r.seq), str(r.hash)))(
                conn.execute(sa.select(self.tables["chain_head"]).where(self.tables["chain_head"].c.id == 1)).one())
            cursors = []
            for table, cols in CHAINED_TABLES.items():
                t = self.tables[table]
                res = conn.execution_options(yield_per=2000).execute(sa.select(t).order_by(t.c.seq))
                cursors.append(_tagged(res, table))
            expected_seq, prev, prev_where = 0, GENESIS, None
            seen_expected = expect_head is None
            for seq, table, m in heapq.merge(*cursors, key=lambda x: x[0]):
                n_rows += 1
                content = {c: m.get(c) for c in CHAINED_TABLES[table] if c in m}
                own_ok = row_hash(m["prev_hash"], table, content) == m["row_hash"]
                if seq > expected_seq:
                    problem = Problem(table, seq, m["id"], f"seq {expected_seq} is missing (a row was deleted"
                                      f"{' after ' + prev_where if prev_where else ''})")
                elif seq < expected_seq:
                    problem = Problem(table, seq, m["id"], f"seq {seq} appears twice")
                elif not own_ok:
                    problem = Problem(table, seq, m["id"], "hash mismatch: the row's content was changed "
                                      "after it was written")
                elif m["prev_hash"] != prev:
                    problem = Problem(table, seq, m["id"], "out of order: its prev_hash is not the hash of "
                                      "the row before it (rows were reordered or replaced)")
                if problem is not None:
                    break
                if m["row_hash"] == expect_head:
                    seen_expected = True
                prev, prev_where = m["row_hash"], f"{table} row id {m['id']}"
                expected_seq += 1
            if problem is None and expected_seq - 1 != head_seq:
                if expected_seq - 1 < head_seq:
                    problem = Problem("chain_head", expected_seq, None,
                                      f"seq {expected_seq}..{head_seq} missing: the head says the chain ends at "
                                      f"seq {head_seq} but the last row is seq {expected_seq - 1} (rows were deleted)")
                else:
                    problem = Problem("chain_head", head_seq, None, f"the head says the chain ends at seq "
                                      f"{head_seq} but rows run to seq {expected_seq - 1} (head rewound)")
            elif problem is None and prev != head_hash:
                problem = Problem("chain_head", head_seq, None, "the head's hash is not the last row's hash")
            if problem is None and not seen_expected:
                problem = Problem("chain_head", head_seq, None, f"the expected head {expect_head[:16]}... is "
                                  "not in the chain (it was rewritten or is another ledger)")
            if problem is None:
                n_snapshots, n_samples, problem = self._verify_samples(conn)
        return VerifyReport(ok=problem is None, n_rows=n_rows, n_snapshots=n_snapshots, n_samples=n_samples,
                            head_seq=head_seq if head_seq >= 0 else None, head_hash=head_hash, problem=problem)

    def _verify_samples(self, conn: Connection) -> tuple[int, int, Problem | None]:
        snaps = self.tables["snapshots"]
        samples = self.tables["snapshot_samples"]
        n_snap = n_samples = 0
        for snap in conn.execute(sa.select(snaps).order_by(snaps.c.seq)).all():
            n_snap += 1
            builder = MerkleBuilder()
            expected = 0
            res = conn.execution_options(yield_per=20000).execute(
                sa.select(samples.c.idx, samples.c.content_hash, samples.c.label, samples.c.source,
                          samples.c.contributor, samples.c.time)
                .where(samples.c.ingest_id == snap.ingest_id).order_by(samples.c.idx))
            where = f"snapshot {snap.name!r}"
            for idx, ch, label, source, contributor, time in res:
                if idx != expected:
                    res.close()
                    what = (f"sample index {expected} of {where} is missing (deleted)" if idx > expected
                            else f"sample index {idx} of {where} appears twice")
                    return n_snap, n_samples, Problem("snapshot_samples", snap.seq, snap.id, what)
                builder.add(sample_leaf(idx, ch, _label_value(label), source, contributor, time))
                expected += 1
                n_samples += 1
            if expected != snap.n_samples:
                return n_snap, n_samples, Problem("snapshot_samples", snap.seq, snap.id,
                                                  f"{where} has {expected} sample rows but was ingested with "
                                                  f"{snap.n_samples} (rows were deleted or added)")
            if builder.root() != snap.merkle_root:
                return n_snap, n_samples, Problem("snapshot_samples", snap.seq, snap.id,
                                                  f"Merkle root of {where} differs from the one recorded: a "
                                                  "sample's hash, label, source, contributor or time was changed")
        return n_snap, n_samples, None


def _tagged(result: Any, table: str) -> Iterator[tuple[int, str, dict[str, Any]]]:
    for r in result:
        yield int(r.seq), table, dict(r._mapping)


def _label_value(label: str | None) -> Any:
    """Labels are stored as text; the leaf hashes the stored text."""
    return label


def _actor() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in this environment
        return "unknown"


def _summary(table: str, m: Mapping[str, Any]) -> str:
    if table == "snapshots":
        return f"snapshot {m['name']} ({m['n_samples']} samples, root {str(m['merkle_root'])[:12]})"
    if table == "decisions":
        return f"{m['kind']} {m['subject']} by {m['actor']}" + (f": {m['reason']}" if m.get("reason") else "")
    if table == "models":
        return f"model {m['path']} (weights {str(m['weights_sha256'])[:12]})"
    if table == "runs":
        return f"run {m['run_id']}" + (f" seed {m['seed']}" if m.get("seed") is not None else "")
    if table == "events":
        return f"event {m['kind']} of run {m['run_id']}"
    if table == "scans":
        return f"scan by {m['detector']}"
    return f"{table[:-1]} {m.get('name')}"


def _first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    return lines[0] if lines else type(exc).__name__


def _sqlite_engine(url) -> Engine:
    engine = sa.create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S, "check_same_thread": False},
                              poolclass=sa.pool.StaticPool if url.database in (None, "", ":memory:") else None)
    in_memory = url.database in (None, "", ":memory:")

    @sa_event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record) -> None:  # pragma: no cover - exercised through every test
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        if not in_memory:
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @sa_event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("poisonlab_write") else "BEGIN")

    return engine


def loads(text: str | None) -> Any:
    """A JSON column's value (None stays None)."""
    return None if text is None else json.loads(text)
