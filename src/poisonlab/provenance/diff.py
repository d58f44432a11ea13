"""What changed between two snapshots: added, removed and relabelled samples, by contributor and
class; the shift of the label distribution; near-duplicates that changed label.

:func:`diff_snapshots` streams: it walks both snapshots' sample rows ordered by content hash
(two database cursors, merge-joined here), so memory does not grow with the snapshots' size --
except for the near-duplicate check, which keeps the removed and added samples' near keys up to
``max_near`` of each (a poisoner's edits are a small fraction; past the cap the check stops and
says so).

Definitions
-----------
Samples are matched by content hash (:func:`~poisonlab.provenance.hashing.sample_hash`). For one
content hash present ``m`` times in A and ``n`` times in B, labels present on both sides are
*unchanged*; the remaining A and B labels are paired in sorted order as *relabelled* (same bytes,
another label); what is left over is *removed* (only in A) or *added* (only in B). Added and
relabelled samples are counted by B's contributor, removed ones by A's.

Label shift: per-class proportions of A and B, their **total variation distance**
``TVD = 1/2 * sum_k |p_k - q_k|`` (0 = same distribution, 1 = disjoint) and **Pearson's
chi-square test of homogeneity** on the 2 x K table of counts (scipy's ``chi2_contingency``,
classes absent from both dropped); with a million samples tiny shifts are "significant", so
read the TVD for the size and the p-value only for whether it can be noise.

Near-duplicates that changed label: a removed sample and an added sample whose values agree to
``decimals`` places (the same :func:`~poisonlab.provenance.hashing.near_hash`) but whose labels
differ -- a sample nudged and relabelled, the shape of a clean-label or label-flip poison hiding
from the exact-hash diff. Numeric samples only; values either side of a rounding boundary are
missed (the key is a rounding, not a distance).

Threat model: a contributor who edits, relabels, adds or withdraws samples between two
snapshots. Limits: a diff sees what changed, not whether the change is malicious.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator

import sqlalchemy as sa

from .ledger import Ledger

__all__ = ["diff_snapshots", "SnapshotDiff", "label_shift"]


@dataclass
class SnapshotDiff:
    """The result of :func:`diff_snapshots` (JSON-able through :meth:`to_dict`)."""

    a: dict[str, Any]
    b: dict[str, Any]
    n_unchanged: int = 0
    n_added: int = 0
    n_removed: int = 0
    n_relabelled: int = 0
    added_by_contributor: dict[str, int] = field(default_factory=dict)
    removed_by_contributor: dict[str, int] = field(default_factory=dict)
    relabelled_by_contributor: dict[str, int] = field(default_factory=dict)
    added_by_class: dict[str, int] = field(default_factory=dict)
    removed_by_class: dict[str, int] = field(default_factory=dict)
    relabelled_by_class: dict[str, int] = field(default_factory=dict)  # "old->new": count
    label_shift: dict[str, Any] = field(default_factory=dict)
    near_duplicates: dict[str, Any] = field(default_factory=dict)
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def label_shift(counts_a: dict[str, int], counts_b: dict[str, int]) -> dict[str, Any]:
    """Per-class proportions, total variation distance and a chi-square homogeneity test.

    Examples
    --------
    >>> s = label_shift({"0": 50, "1": 50}, {"0": 25, "1": 75})
    >>> s["tvd"], s["proportions_b"]["1"]
    (0.25, 0.75)
    """
    classes = sorted(set(counts_a) | set(counts_b), key=_class_key)
    na, nb = sum(counts_a.values()), sum(counts_b.values())
    pa = {k: (counts_a.get(k, 0) / na if na else 0.0) for k in classes}
    pb = {k: (counts_b.get(k, 0) / nb if nb else 0.0) for k in classes}
    tvd = 0.5 * sum(abs(pa[k] - pb[k]) for k in classes)
    out: dict[str, Any] = {"classes": classes, "counts_a": {k: counts_a.get(k, 0) for k in classes},
                           "counts_b": {k: counts_b.get(k, 0) for k in classes},
                           "proportions_a": pa, "proportions_b": pb, "tvd": tvd,
                           "statistic": "total variation distance; Pearson chi-square test of homogeneity"}
    kept = [k for k in classes if counts_a.get(k, 0) + counts_b.get(k, 0) > 0]
    if len(kept) >= 2 and na and nb:
        from scipy.stats import chi2_contingency

        res = chi2_contingency([[counts_a.get(k, 0) for k in kept], [counts_b.get(k, 0) for k in kept]],
                               correction=False)
        out.update(chi2=float(res[0]), dof=int(res[2]), p_value=float(res[1]))
    else:
        out.update(chi2=0.0, dof=0, p_value=1.0)
    return out


def _class_key(k: str) -> tuple:
    return (0, int(k), "") if k.lstrip("-").isdigit() else (1, 0, k)


def _groups(result: Any) -> Iterator[tuple[str, list[tuple]]]:
    """Rows (content_hash, label, contributor, idx, near_hash) grouped by content hash."""
    current, rows = None, []
    for r in result:
        if r[0] != current:
            if rows:
                yield current, rows
            current, rows = r[0], []
        rows.append(r)
    if rows:
        yield current, rows


def diff_snapshots(ledger: Ledger, a: str | int, b: str | int, *, near_duplicates: bool = True,
                   decimals: int = 2, max_near: int = 100_000, max_examples: int = 20) -> SnapshotDiff:
    """Compare snapshot ``a`` (before) with ``b`` (after), streaming.

    Parameters
    ----------
    ledger : Ledger
    a, b : str or int
        Snapshot names (the latest of that name) or ids.
    near_duplicates : bool, default=True
        Also look for near-duplicates that changed label (see the module docstring). The key
        precision (``decimals``) is fixed at ingest (2 places).
    max_near : int, default=100000
        At most this many removed and added samples are kept for the near-duplicate check.
    max_examples : int, default=20
        Example rows kept per kind of change.

    Raises
    ------
    LedgerError
        An unknown snapshot name or id.
    """
    sa_row, sb_row = ledger.snapshot(a), ledger.snapshot(b)
    out = SnapshotDiff(a=_brief(sa_row), b=_brief(sb_row))
    samples = ledger.tables["snapshot_samples"]
    added_c, removed_c, relab_c = Counter(), Counter(), Counter()
    added_k, removed_k, relab_k = Counter(), Counter(), Counter()
    examples: dict[str, list[dict[str, Any]]] = {"added": [], "removed": [], "relabelled": []}
    removed_near: dict[str, tuple] = {}
    added_near: list[tuple] = []

    # byte order on both backends (PostgreSQL's default collation may differ from Python's <)
    key = samples.c.content_hash.collate("C") if ledger.dialect == "postgresql" else samples.c.content_hash

    def query(ingest_id: int):
        return (sa.select(samples.c.content_hash, samples.c.label, samples.c.contributor, samples.c.idx,
                          samples.c.near_hash)
                .where(samples.c.ingest_id == ingest_id)
                .order_by(key, samples.c.idx))

    def example(kind: str, item: dict[str, Any]) -> None:
        if len(examples[kind]) < max_examples:
            examples[kind].append(item)

    def changed(h: str, rows_a: list[tuple], rows_b: list[tuple]) -> None:
        la = Counter(r[1] for r in rows_a)
        lb = Counter(r[1] for r in rows_b)
        same = la & lb
        out.n_unchanged += sum(same.values())
        left_a = sorted((la - same).elements())
        left_b = sorted((lb - same).elements())
        pick_a, pick_b = _picker(rows_a), _picker(rows_b)
        for old, new in zip(left_a, left_b):
            ra_, rb_ = pick_a(old), pick_b(new)
            out.n_relabelled += 1
            relab_c[rb_[2]] += 1
            relab_k[f"{old}->{new}"] += 1
            example("relabelled", {"content_hash": h, "index_a": ra_[3], "index_b": rb_[3], "label_a": old,
                                   "label_b": new, "contributor": rb_[2]})
        for old in left_a[len(left_b):]:
            r = pick_a(old)
            out.n_removed += 1
            removed_c[r[2]] += 1
            removed_k[old] += 1
            example("removed", {"content_hash": h, "index": r[3], "label": old, "contributor": r[2]})
            if near_duplicates and r[4] is not None:
                if len(removed_near) < max_near:
                    removed_near.setdefault(r[4], r)
                else:
                    flags["near_truncated"] = True
        for new in left_b[len(left_a):]:
            r = pick_b(new)
            out.n_added += 1
            added_c[r[2]] += 1
            added_k[new] += 1
            example("added", {"content_hash": h, "index": r[3], "label": new, "contributor": r[2]})
            if near_duplicates and r[4] is not None:
                if len(added_near) < max_near:
                    added_near.append(r)
                else:
                    flags["near_truncated"] = True

    flags = {"near_truncated": False}
    with ledger.read() as conn:
        conn = conn.execution_options(yield_per=20000)
        ga = _groups(conn.execute(query(sa_row["ingest_id"])))
        gb = _groups(conn.execute(query(sb_row["ingest_id"])))
        a_, b_ = next(ga, None), next(gb, None)
        unchanged = 0
        while a_ is not None or b_ is not None:  # merge join on the content hash
            if b_ is None or (a_ is not None and a_[0] < b_[0]):
                changed(a_[0], a_[1], [])
                a_ = next(ga, None)
            elif a_ is None or b_[0] < a_[0]:
                changed(b_[0], [], b_[1])
                b_ = next(gb, None)
            else:
                rows_a, rows_b = a_[1], b_[1]
                if len(rows_a) == 1 and len(rows_b) == 1 and rows_a[0][1] == rows_b[0][1]:
                    unchanged += 1  # the common case, without the bookkeeping
                else:
                    changed(a_[0], rows_a, rows_b)
                a_, b_ = next(ga, None), next(gb, None)
        out.n_unchanged += unchanged
        counts = {}
        for key, row in (("a", sa_row), ("b", sb_row)):
            q = (sa.select(samples.c.label, sa.func.count()).where(samples.c.ingest_id == row["ingest_id"])
                 .group_by(samples.c.label))
            counts[key] = {str(lbl): int(n) for lbl, n in conn.execute(q)}
    out.added_by_contributor, out.removed_by_contributor = dict(added_c), dict(removed_c)
    out.relabelled_by_contributor = dict(relab_c)
    out.added_by_class, out.removed_by_class = _sorted(added_k), _sorted(removed_k)
    out.relabelled_by_class = dict(sorted(relab_k.items()))
    out.label_shift = label_shift(counts["a"], counts["b"])
    if near_duplicates:
        pairs = []
        n_pairs = 0
        by_contributor: Counter = Counter()
        for r in added_near:
            old = removed_near.get(r[4])
            if old is not None and old[1] != r[1]:
                n_pairs += 1
                by_contributor[r[2]] += 1
                if len(pairs) < max_examples:
                    pairs.append({"index_a": old[3], "index_b": r[3], "label_a": old[1], "label_b": r[1],
                                  "contributor": r[2], "content_hash_a": old[0], "content_hash_b": r[0]})
        out.near_duplicates = {"method": f"values rounded to {decimals} decimal places, sha256 of the rounding; "
                                         "a removed and an added sample with the same key and different labels",
                               "n_changed_label": n_pairs, "by_contributor": dict(by_contributor),
                               "examples": pairs, "truncated": flags["near_truncated"], "max_near": max_near}
    out.examples = examples
    return out


def _picker(rows: list[tuple]):
    used = [False] * len(rows)

    def pick(label: str) -> tuple:
        for i, r in enumerate(rows):
            if not used[i] and r[1] == label:
                used[i] = True
                return r
        raise AssertionError("unreachable: label counted but not found")  # pragma: no cover

    return pick


def _sorted(c: Counter) -> dict[str, int]:
    return {k: c[k] for k in sorted(c, key=_class_key)}


def _brief(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in ("id", "name", "n_samples", "merkle_root", "created", "seq")}
