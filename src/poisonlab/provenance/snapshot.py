"""Ingest a dataset file into the ledger as a snapshot, streaming, all or nothing.

:func:`ingest_snapshot` reads the input in chunks -- a ``.npz`` member by member straight out of
the zip archive (compressed or not), a ``.npy`` memory-mapped, a CSV row by row -- hashes every
sample (:func:`~poisonlab.provenance.hashing.row_hashes`), writes the sample rows in batches
(``executemany``) and builds the Merkle root incrementally, so memory stays bounded by ``chunk``
whatever the number of samples.

All or nothing: the sample rows are written under a staging id (an ``ingests`` row) in short
transactions, so concurrent ingests interleave; they become part of a snapshot only when the
chained ``snapshots`` row naming that staging id and the Merkle root is committed, in one final
transaction. A process killed before that leaves no snapshot (its staged rows belong to no
snapshot; :func:`unfinished_ingests` lists them and :func:`purge_unfinished` removes them) and
never touches a committed one. A failed ingest (bad file, file changed) removes its staged rows.

The input must not change while it is read: its size, modification time and sha256 are taken
before and after; any difference is a :class:`~poisonlab.exceptions.DataError` and nothing is
recorded.

Inputs
------
``.npz``
    Arrays ``X`` (one row per sample; numbers, or texts as a unicode array) and ``y`` (labels);
    optional per-sample ``source`` and ``contributor`` (unicode arrays). Object arrays refused.
``.npy``
    The samples; the labels come from ``labels=`` (another ``.npy``).
``.csv``
    A header row; the ``label`` column (``label_column``) is the label, optional ``source`` and
    ``contributor`` columns give per-sample provenance (an empty cell: the default), and the
    other fields, joined by the unit separator, are the sample's text content.

Threat model: the ledger proves which bytes, labels and contributors a snapshot held when it was
ingested; it cannot tell whether they were honest then. Diff two snapshots
(:mod:`~poisonlab.provenance.diff`) to see what a contributor changed.
"""

from __future__ import annotations

import csv
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import sqlalchemy as sa

from .._files import check_input
from ..exceptions import DataError, InvalidParameterError
from .hashing import MerkleBuilder, canonical_json, near_hashes, row_hashes, sample_hash
from .ledger import Ledger, sample_leaf, utcnow

__all__ = ["ingest_snapshot", "iter_chunks", "Chunk", "unfinished_ingests", "purge_unfinished",
           "file_state"]

DEFAULT_CHUNK = 50_000


@dataclass
class Chunk:
    """Samples ``start .. start + len(labels)`` of the input."""

    start: int
    content: list[str]            # content hashes
    near: list[str | None]        # near-duplicate keys
    labels: list[str]
    sources: list[str] | None
    contributors: list[str] | None
    spec: dict[str, Any] | None   # dtype and shape of one sample, when arrays


def file_state(path: Path) -> tuple[int, int, str]:
    """``(size, mtime_ns, sha256)`` of ``path``."""
    from ..data.checksums import file_digest

    st = os.stat(path)
    return st.st_size, st.st_mtime_ns, file_digest(path)


def _labels_text(y: np.ndarray, where: str) -> list[str]:
    if y.dtype.kind in "iub":
        return [str(v) for v in y.astype(np.int64).tolist()]
    if y.dtype.kind == "U":
        return [str(v) for v in y.tolist()]
    if y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
        return [str(int(v)) for v in y.tolist()]
    raise DataError(f"{where}: labels must be integers or strings; got dtype {y.dtype}")


class _NpyStream:
    """Rows of one ``.npy`` stream (a zip member or a file), read ``n`` at a time."""

    def __init__(self, fh: Any, where: str) -> None:
        self.fh, self.where = fh, where
        try:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
            raise DataError(f"{where} is not a readable .npy array: {exc}") from exc
        if dtype.hasobject:
            raise DataError(f"{where} holds Python objects (an object array); object arrays are never "
                            f"unpickled: store numbers, or texts as a unicode array")
        if fortran and len(shape) > 1:
            raise DataError(f"{where} is stored in Fortran order; save it in C order (np.ascontiguousarray)")
        if len(shape) == 0:
            raise DataError(f"{where} is a scalar; give one row per sample")
        self.shape, self.dtype = tuple(shape), dtype
        self.row_bytes = int(dtype.itemsize * int(np.prod(shape[1:], dtype=np.int64)))
        self.done = 0

    def __len__(self) -> int:
        return self.shape[0]

    def read(self, n: int) -> np.ndarray:
        n = min(n, self.shape[0] - self.done)
        want = n * self.row_bytes
        buf = bytearray()
        while len(buf) < want:
            block = self.fh.read(want - len(buf))
            if not block:
                raise DataError(f"{self.where} is truncated: expected {self.shape[0]} rows, got "
                                f"{self.done + len(buf) // max(self.row_bytes, 1)}")
            buf += block
        self.done += n
        return np.frombuffer(bytes(buf), dtype=self.dtype).reshape((n, *self.shape[1:]))


def _spec(dtype: np.dtype, shape: tuple[int, ...]) -> dict[str, Any]:
    return {"dtype": dtype.str, "shape": list(shape[1:])}


def _chunk(start: int, X: np.ndarray, y: np.ndarray, src: np.ndarray | None, con: np.ndarray | None,
           where: str) -> Chunk:
    return Chunk(start=start, content=row_hashes(X), near=near_hashes(X), labels=_labels_text(y, where),
                 sources=None if src is None else [str(v) for v in src.tolist()],
                 contributors=None if con is None else [str(v) for v in con.tolist()],
                 spec=_spec(X.dtype, (len(X), *X.shape[1:])))


def iter_chunks(path: str | os.PathLike, *, chunk: int = DEFAULT_CHUNK, labels: str | os.PathLike | None = None,
                label_column: str = "label") -> Iterator[Chunk]:
    """The input's samples, hashed, ``chunk`` at a time (see the module docstring for formats)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        yield from _npz_chunks(path, chunk)
    elif suffix == ".npy":
        yield from _npy_chunks(path, chunk, labels)
    elif suffix in (".csv", ".tsv"):
        yield from _csv_chunks(path, chunk, label_column, "\t" if suffix == ".tsv" else ",")
    else:
        raise DataError(f"{path}: cannot snapshot a {suffix or 'suffix-less'} file; give .npz, .npy "
                        f"(with labels) or .csv")


def _npz_chunks(path: Path, chunk: int) -> Iterator[Chunk]:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{path} is not a readable .npz file (not a zip archive: corrupt, truncated or "
                        f"another format)") from exc
    with zf:
        names = {n[:-4] for n in zf.namelist() if n.endswith(".npy")}
        if "X" not in names or "y" not in names:
            raise DataError(f"{path} must hold arrays 'X' and 'y'; found {sorted(names)}")
        streams = {}
        try:
            for key in ("X", "y", "source", "contributor"):
                if key in names:
                    streams[key] = _NpyStream(zf.open(f"{key}.npy"), f"{path}: {key!r}")
            n = len(streams["X"])
            for key, s in streams.items():
                if len(s) != n or (key != "X" and len(s.shape) != 1):
                    raise DataError(f"{path}: {key!r} must be 1-D with one entry per sample ({n}); got "
                                    f"shape {s.shape}")
            for key in ("source", "contributor"):
                if key in streams and streams[key].dtype.kind != "U":
                    raise DataError(f"{path}: {key!r} must be a unicode array of names; got {streams[key].dtype}")
            if streams["X"].dtype.kind not in "biufU":
                raise DataError(f"{path}: 'X' must hold numbers or texts; got dtype {streams['X'].dtype}")
            for start in range(0, n, chunk):
                parts = {k: s.read(chunk) for k, s in streams.items()}
                yield _chunk(start, parts["X"], parts["y"], parts.get("source"), parts.get("contributor"),
                             f"{path}: 'y'")
        except (zipfile.BadZipFile, EOFError, OSError) as exc:
            raise DataError(f"{path} is damaged (corrupt or truncated): {exc}") from exc
        finally:
            for s in streams.values():
                s.fh.close()


def _npy(path: Path, what: str) -> np.ndarray:
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        raise DataError(f"{what} {path} holds Python objects or is not a .npy array: {exc}") from exc
    except (OSError, EOFError) as exc:
        raise DataError(f"{what} {path} is not a readable .npy array: {exc}") from exc
    if not isinstance(arr, np.ndarray) or arr.ndim == 0:
        raise DataError(f"{what} {path} must be an array with one row per sample")
    return arr


def _npy_chunks(path: Path, chunk: int, labels: str | os.PathLike | None) -> Iterator[Chunk]:
    if labels is None:
        raise DataError(f"{path} is a .npy of samples; give their labels too (labels=... / --labels LABELS.npy)")
    labels = check_input(labels, "--labels")
    X, y = _npy(path, "samples"), _npy(Path(labels), "labels")
    if y.ndim != 1 or len(y) != len(X):
        raise DataError(f"labels {labels} must be 1-D with one label per sample ({len(X)}); got shape {y.shape}")
    if X.dtype.kind not in "biufU":
        raise DataError(f"{path} must hold numbers or texts; got dtype {X.dtype}")
    for start in range(0, len(X), chunk):
        yield _chunk(start, np.asarray(X[start:start + chunk]), np.asarray(y[start:start + chunk]), None,
                     None, f"labels {labels}")


def _csv_chunks(path: Path, chunk: int, label_column: str, delimiter: str) -> Iterator[Chunk]:
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            raise DataError(f"{path} is empty; give a header row and one row per sample") from None
        except (UnicodeDecodeError, csv.Error) as exc:
            raise DataError(f"{path}: cannot read the header: {exc}") from exc
        if label_column not in header:
            raise DataError(f"{path} has no {label_column!r} column; columns: {', '.join(header)}")
        li = header.index(label_column)
        si = header.index("source") if "source" in header else None
        ci = header.index("contributor") if "contributor" in header else None
        content_cols = [i for i in range(len(header)) if i not in (li, si, ci)]
        if not content_cols:
            raise DataError(f"{path} has no content column beside {label_column!r}, source and contributor")

        def flush(start: int, rows: list[list[str]]) -> Chunk:
            # one column: its text, hashed as a text sample is; several: their JSON list, so no
            # field's content can pass for a separator (a joined string would be ambiguous)
            texts = ([r[content_cols[0]] for r in rows] if len(content_cols) == 1 else
                     [json.dumps([r[i] for i in content_cols], ensure_ascii=False, separators=(",", ":"))
                      for r in rows])
            return Chunk(start=start, content=[sample_hash(t) for t in texts], near=[None] * len(rows),
                         labels=[r[li] for r in rows],
                         sources=None if si is None else [r[si] for r in rows],
                         contributors=None if ci is None else [r[ci] for r in rows],
                         spec={"dtype": "text", "shape": [], "columns": [header[i] for i in content_cols]})

        rows: list[list[str]] = []
        start = 0
        try:
            for line_no, row in enumerate(reader, start=2):
                if len(row) != len(header):
                    raise DataError(f"{path}, line {line_no}: {len(row)} fields, the header has {len(header)}")
                rows.append(row)
                if len(rows) == chunk:
                    yield flush(start, rows)
                    start += len(rows)
                    rows = []
        except (UnicodeDecodeError, csv.Error) as exc:
            raise DataError(f"{path}: cannot read row {start + len(rows) + 1}: {exc}") from exc
        if rows:
            yield flush(start, rows)


def ingest_snapshot(ledger: Ledger, path: str | os.PathLike, *, source: str, contributor: str,
                    name: str | None = None, time: str | None = None, chunk: int = DEFAULT_CHUNK,
                    labels: str | os.PathLike | None = None, label_column: str = "label",
                    on_progress: Any = None) -> dict[str, Any]:
    """Record the samples of ``path`` as a snapshot; return its ``snapshots`` row.

    Parameters
    ----------
    ledger : Ledger
    path : path
        ``.npz``, ``.npy`` (with ``labels``) or ``.csv`` (see the module docstring).
    source, contributor : str
        Recorded for every sample without its own ``source`` / ``contributor`` entry.
    name : str, optional
        The snapshot's name (default: the file's stem). Names may repeat; lookups by name take
        the latest.
    time : str, optional
        ISO 8601 time recorded with the snapshot and its samples (default: now, UTC).
    chunk : int, default=50000
        Samples read, hashed and written per batch (bounds memory).
    labels : path, optional
        The labels of a ``.npy`` input.
    on_progress : callable, optional
        Called with the number of samples written so far after every batch.

    Returns
    -------
    dict
        The snapshot row (``id``, ``name``, ``n_samples``, ``merkle_root``, ``seq``, ...).

    Raises
    ------
    DataError
        Unreadable input, or the file changed while it was read (nothing is recorded).
    """
    if not isinstance(chunk, int) or isinstance(chunk, bool) or chunk < 1:
        raise InvalidParameterError(f"chunk must be an int >= 1; got {chunk!r}")
    for what, value in (("source", source), ("contributor", contributor)):
        if not isinstance(value, str) or not value.strip():
            raise InvalidParameterError(f"{what} must be a non-empty name; got {value!r}")
    path = check_input(path, "INPUT")
    if labels is not None and path.suffix.lower() != ".npy":
        raise InvalidParameterError(f"labels are given separately only for a .npy input; {path.name} "
                                    f"holds its own (its y array or label column)")
    name = name or path.stem
    time = time or utcnow()
    before = file_state(path)
    if labels is not None:
        labels_before = file_state(Path(labels))
    ing = ledger.tables["ingests"]
    samples = ledger.tables["snapshot_samples"]
    with ledger.write() as conn:
        ingest_id = int(conn.execute(ing.insert().values(
            name=name, input_path=str(path), source=source, contributor=contributor, started=utcnow(),
            pid=os.getpid())).inserted_primary_key[0])
    merkle = MerkleBuilder()
    sources: set[str] = {source}
    contributors: set[str] = {contributor}
    spec = None
    n = 0
    try:
        for ch in iter_chunks(path, chunk=chunk, labels=labels, label_column=label_column):
            spec = spec or ch.spec
            # a sample's own source / contributor, where given (an empty entry means the default)
            srcs = [x or source for x in ch.sources] if ch.sources else [source] * len(ch.labels)
            cons = [x or contributor for x in ch.contributors] if ch.contributors else [contributor] * len(ch.labels)
            if ch.sources:
                sources.update(srcs)
            if ch.contributors:
                contributors.update(cons)
            rows = []
            add = merkle.add
            for j, (chash, near, label, s, c) in enumerate(zip(ch.content, ch.near, ch.labels, srcs, cons)):
                idx = ch.start + j
                add(sample_leaf(idx, chash, label, s, c, time))
                rows.append((ingest_id, idx, chash, near, label, s, c, time))
            _insert_samples(ledger, samples, rows)
            n += len(rows)
            if on_progress is not None:
                on_progress(n)
        after = file_state(path)
        if after != before:
            raise DataError(f"{path} changed while it was read (size, modification time or sha256 "
                            f"differ before and after); nothing was recorded: snapshot it again once "
                            f"it is no longer being written")
        if labels is not None and file_state(Path(labels)) != labels_before:
            raise DataError(f"labels {labels} changed while they were read; nothing was recorded")
        meta = {"format": path.suffix.lower().lstrip("."), "chunk": chunk}
        if labels is not None:
            meta["labels_path"], meta["labels_sha256"] = str(labels), labels_before[2]
        with ledger.write() as conn:
            # the staged rows must all still be there: purge_unfinished run by someone else while
            # this ingest was going would otherwise leave a snapshot whose samples are gone
            staged = conn.execute(sa.select(sa.func.count()).select_from(samples)
                                  .where(samples.c.ingest_id == ingest_id)).scalar_one()
            alive = conn.execute(sa.select(ing.c.id).where(ing.c.id == ingest_id)).first()
            if alive is None or staged != n:
                raise DataError(f"the staged samples of this snapshot of {path} were removed while it ran "
                                f"({staged} of {n} left; was 'purge_unfinished' run meanwhile?); nothing "
                                f"was recorded: snapshot it again")
            ledger.ensure_names(conn, sources=sources, contributors=contributors)
            row = ledger.append_rows(conn, [("snapshots", {
                "name": name, "ingest_id": ingest_id, "n_samples": n, "merkle_root": merkle.root(),
                "input_path": str(path), "input_sha256": before[2], "source": source,
                "contributor": contributor, "created": time, "meta_json": canonical_json(meta),
                "sample_spec": None if spec is None else json.dumps(spec, sort_keys=True)})])[0]
        return row
    except BaseException:
        try:
            with ledger.write() as conn:
                conn.execute(samples.delete().where(samples.c.ingest_id == ingest_id))
                conn.execute(ing.delete().where(ing.c.id == ingest_id))
        except Exception:  # noqa: BLE001 - best effort; the staged rows are invisible anyway
            pass
        raise


SAMPLE_COLUMNS = ("ingest_id", "idx", "content_hash", "near_hash", "label", "source", "contributor", "time")


def _insert_samples(ledger: Ledger, table: sa.Table, rows: list[tuple]) -> None:
    """One transaction per batch; PostgreSQL through COPY (an order of magnitude faster than
    INSERT for a million rows), SQLite through executemany."""
    if not rows:
        return
    with ledger.write() as conn:
        if ledger.dialect == "postgresql":
            cur = conn.connection.driver_connection.cursor()
            with cur.copy(f"COPY snapshot_samples ({', '.join(SAMPLE_COLUMNS)}) FROM STDIN") as copy:
                for r in rows:
                    copy.write_row(r)
        else:
            conn.exec_driver_sql(f"INSERT INTO snapshot_samples ({', '.join(SAMPLE_COLUMNS)}) VALUES "
                                 f"({', '.join('?' * len(SAMPLE_COLUMNS))})", rows)


def unfinished_ingests(ledger: Ledger) -> list[dict[str, Any]]:
    """Ingests that never became a snapshot (killed, or still running): their staged rows are
    part of no snapshot and no verification."""
    ing, snaps = ledger.tables["ingests"], ledger.tables["snapshots"]
    with ledger.read() as conn:
        q = sa.select(ing).where(~ing.c.id.in_(sa.select(snaps.c.ingest_id).where(snaps.c.ingest_id.is_not(None))))
        return [dict(r._mapping) for r in conn.execute(q.order_by(ing.c.id))]


def purge_unfinished(ledger: Ledger, ingest_ids: list[int]) -> int:
    """Delete the staged rows of the given unfinished ingests (never a committed snapshot's);
    returns how many sample rows went. An ingest still running when its rows are purged refuses
    to commit its snapshot (it counts its staged rows in the committing transaction)."""
    ing, samples, snaps = ledger.tables["ingests"], ledger.tables["snapshot_samples"], ledger.tables["snapshots"]
    with ledger.write() as conn:
        committed = set(conn.execute(sa.select(snaps.c.ingest_id).where(snaps.c.ingest_id.in_(ingest_ids))).scalars())
        ids = [i for i in ingest_ids if i not in committed]
        if not ids:
            return 0
        n = conn.execute(samples.delete().where(samples.c.ingest_id.in_(ids))).rowcount
        conn.execute(ing.delete().where(ing.c.id.in_(ids)))
        return int(n or 0)
