"""Snapshot diffs: added, removed and relabelled samples by contributor and class, the label
shift statistics (hand-computed), near-duplicates that changed label, unknown names."""

import numpy as np
import pytest

from poisonlab.provenance.diff import diff_snapshots, label_shift
from poisonlab.provenance.ledger import Ledger, LedgerError
from poisonlab.provenance.snapshot import ingest_snapshot


@pytest.fixture
def two_snapshots(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5)).astype(np.float32)
    y = np.arange(200) % 2
    np.savez(tmp_path / "before.npz", X=X, y=y)
    # after: samples 0..9 relabelled by eve; 10..14 removed; 3 new samples by eve (class 1);
    # sample 15 nudged by 1e-4 and relabelled (a near-duplicate that changed label)
    X2, y2 = X.copy(), y.copy()
    y2[:10] = 1 - y2[:10]
    X2[15] += 1e-4
    y2[15] = 1 - y2[15]
    keep = np.r_[0:10, 15:200]
    X2 = np.concatenate([X2[keep], rng.normal(size=(3, 5)).astype(np.float32) + 10])
    y2 = np.concatenate([y2[keep], [1, 1, 1]])
    contributor = np.array(["bob"] * len(y2))
    contributor[:10] = "eve"
    contributor[10] = "eve"  # the nudged sample (index 15 before, 10 after)
    contributor[-3:] = "eve"
    np.savez(tmp_path / "after.npz", X=X2, y=y2, contributor=contributor)
    ledger = Ledger.open(tmp_path / "l.db")
    ingest_snapshot(ledger, tmp_path / "before.npz", source="web", contributor="bob")
    ingest_snapshot(ledger, tmp_path / "after.npz", source="web", contributor="bob")
    yield ledger, X, y, X2, y2
    ledger.close()


def test_diff_counts_every_change_by_contributor_and_class(two_snapshots):
    ledger, X, y, X2, y2 = two_snapshots
    d = diff_snapshots(ledger, "before", "after")
    assert d.n_relabelled == 10 and d.relabelled_by_contributor == {"eve": 10}
    assert d.relabelled_by_class == {"0->1": 5, "1->0": 5}
    # removed: 10..14 and the original of the nudged 15; added: the nudged 15 and 3 new ones
    assert d.n_removed == 6 and d.removed_by_contributor == {"bob": 6}
    assert d.removed_by_class == {"0": 3, "1": 3}
    assert d.n_added == 4 and d.added_by_contributor == {"eve": 4} and d.added_by_class == {"0": 1, "1": 3}
    assert d.n_unchanged == 200 - 16
    assert d.n_unchanged + d.n_relabelled + d.n_added == len(y2)
    nd = d.near_duplicates
    assert nd["n_changed_label"] == 1 and nd["by_contributor"] == {"eve": 1}
    assert nd["examples"][0]["index_a"] == 15 and nd["examples"][0]["index_b"] == 10


def test_label_shift_matches_hand_computed_values(two_snapshots):
    ledger, X, y, X2, y2 = two_snapshots
    d = diff_snapshots(ledger, "before", "after", near_duplicates=False)
    s = d.label_shift
    pa1, pb1 = np.mean(y == 1), np.mean(y2 == 1)
    assert s["tvd"] == pytest.approx(abs(pa1 - pb1))
    # Pearson chi-square by hand on the 2 x 2 table
    table = np.array([[np.sum(y == 0), np.sum(y == 1)], [np.sum(y2 == 0), np.sum(y2 == 1)]], float)
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / table.sum()
    assert s["chi2"] == pytest.approx(((table - expected) ** 2 / expected).sum())
    assert s["dof"] == 1 and 0 <= s["p_value"] <= 1
    assert d.near_duplicates == {}


def test_label_shift_edge_cases():
    s = label_shift({"0": 10}, {"0": 5})
    assert s["tvd"] == 0 and s["p_value"] == 1.0
    s = label_shift({"0": 10, "1": 0}, {"0": 0, "1": 10})
    assert s["tvd"] == 1.0 and s["p_value"] < 1e-3


def test_identical_snapshots_differ_in_nothing(two_snapshots, tmp_path):
    ledger, *_ = two_snapshots
    ingest_snapshot(ledger, tmp_path / "before.npz", source="web", contributor="bob", name="again")
    d = diff_snapshots(ledger, "before", "again")
    assert (d.n_added, d.n_removed, d.n_relabelled, d.n_unchanged) == (0, 0, 0, 200)
    assert d.label_shift["tvd"] == 0


def test_snapshots_by_id_and_unknown_names(two_snapshots):
    ledger, *_ = two_snapshots
    a, b = ledger.snapshot("before")["id"], ledger.snapshot("after")["id"]
    assert diff_snapshots(ledger, str(a), b).n_relabelled == 10
    with pytest.raises(LedgerError, match="no snapshot named 'nope'.*known: after, before"):
        diff_snapshots(ledger, "nope", "after")
