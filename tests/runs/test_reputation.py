"""Contributor reputation on a user's file: honest contributors trusted, a coordinated group that
relabels one class found as one group and rejected, decisions recorded in the ledger."""

import numpy as np
import pytest

from poisonlab.exceptions import DataError
from poisonlab.runs.reputation import assess_contributors, assess_file, read_contributors, record_assessment
from tests.cli.cli_helpers import assert_one_line_error, poisonlab
from tests.monitoring._digits_models import digits, saved


def _contributed(tmp_path, n_sybils=4):
    """digits' test split as 9 honest contributors' data plus ``n_sybils`` accounts that each
    send 12 images of a 1 labelled 7 (the seeds' coordinated mislabelling)."""
    d = digits().test
    rng = np.random.default_rng(0)
    honest = rng.permutation(np.flatnonzero(d.y != 1))[:270]
    ones = np.flatnonzero(d.y == 1)[:12 * n_sybils]
    X = np.concatenate([d.X[honest], d.X[ones]])
    y = np.concatenate([d.y[honest], np.full(len(ones), 7)])
    who = np.array([f"user{i % 9}" for i in range(len(honest))] + [f"new{i // 12}" for i in range(len(ones))])
    path = tmp_path / "contributions.npz"
    np.savez(path, X=X, y=y, contributor=who, classes=np.array([str(c) for c in range(10)]))
    return path, who


def test_a_coordinated_group_is_found_as_one_group_and_rejected_honest_users_are_trusted(tmp_path):
    path, who = _contributed(tmp_path)
    res = assess_file(path, saved(tmp_path, "clean"))
    assert res.groups == [["new0", "new1", "new2", "new3"]]
    assert {res.status[f"new{i}"] for i in range(4)} == {"rejected"}
    assert {res.status[f"user{i}"] for i in range(9)} == {"trusted"}
    assert set(res.dropped.tolist()) == set(np.flatnonzero(np.char.startswith(who, "new")).tolist())
    n, url = record_assessment(str(tmp_path / "ledger.db"), res)
    assert n == 4 and url.endswith("ledger.db")


def test_a_new_contributor_with_too_few_verified_samples_is_held():
    labels = np.array([0, 1, 2, 0, 1])
    res = assess_contributors(labels, ["old"] * 4 + ["newbie"], labels, n_classes=3, trusted=["old"])
    assert res.status == {"newbie": "quarantined", "old": "trusted"}
    assert res.held.tolist() == [4]


def test_a_missing_or_misshapen_contributor_column_is_one_line(tmp_path):
    np.savez(tmp_path / "a.npz", X=np.zeros((3, 2)), y=np.zeros(3, int))
    with pytest.raises(DataError, match="holds no 'contributor' array"):
        read_contributors(tmp_path / "a.npz", 3)
    np.savez(tmp_path / "b.npz", X=np.zeros((3, 2)), y=np.zeros(3, int), contributor=np.array(["a", "b"]))
    with pytest.raises(DataError, match="must be a 1-D array of 3 names"):
        read_contributors(tmp_path / "b.npz", 3)


def test_the_command_prints_the_group_records_decisions_and_exits_3(tmp_path):
    path, _ = _contributed(tmp_path)
    led = tmp_path / "ledger.db"
    out = poisonlab("data", "reputation", path, "--model", saved(tmp_path, "clean"), "--record", "--ledger", led,
                    "--json", tmp_path / "rep.json")
    assert out.code == 3, out.output
    assert "sybil-like group of 4: new0, new1, new2, new3" in out.stdout
    assert "4 decisions recorded" in out.stdout and (tmp_path / "rep.json").is_file()
    assert poisonlab("ledger", "verify", "--ledger", led).code == 0
    bad = poisonlab("data", "reputation", tmp_path / "missing.npz", "--model", saved(tmp_path, "clean"))
    assert_one_line_error(bad, contains="does not exist")


def test_a_batch_missing_some_classes_takes_its_classes_from_the_trusted_models_card(tmp_path):
    d = digits().test
    keep = d.y < 5
    np.savez(tmp_path / "half.npz", X=d.X[keep], y=d.y[keep], contributor=np.array(["u"] * int(keep.sum())))
    res = assess_file(tmp_path / "half.npz", saved(tmp_path, "clean"))
    assert res.status == {"u": "trusted"}
