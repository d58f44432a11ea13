"""The quarantine policy: new contributors are held until verified, rejected ones lose what they
sent, and every change of state is a ledger-ready decision."""

import numpy as np
import pytest

from poisonlab.exceptions import DataError, InvalidParameterError
from poisonlab.provenance.quarantine import Quarantine, QuarantinePolicy, decisions_for_ledger
from poisonlab.provenance.reputation import ReputationBook


def _round(book, q, r, who, n, *, agree=True, start=0):
    ids = [who] * n
    labels = np.zeros(n, dtype=int)
    book.update(ids, labels, labels if agree else labels + 1, round=r)
    return q.step(ids, np.arange(start, start + n), book, round=r)


def test_a_new_contributor_is_held_until_min_verified_then_released_with_everything_held():
    book = ReputationBook(n_classes=2)
    q = Quarantine(QuarantinePolicy(min_verified=10, min_reputation=0.6))
    r1 = _round(book, q, 1, "new", 4, start=0)
    r2 = _round(book, q, 2, "new", 4, start=4)
    assert r1.admitted.size == 0 and r1.held.tolist() == [0, 1, 2, 3]
    assert r2.admitted.size == 0 and q.held_["new"] == list(range(8)) and q.n_held == 8
    assert r2.status["new"] == "quarantined"
    r3 = _round(book, q, 3, "new", 4, start=8)  # 12 verified, lower bound 0.05^(1/13) = 0.79
    assert sorted(r3.admitted.tolist()) == list(range(12))
    assert r3.released.tolist() == list(range(8)) and r3.held.size == 0 and q.n_held == 0
    assert r3.status["new"] == "trusted"
    (release,) = [d for d in r3.decisions if d["kind"] == "release"]
    assert release["subject"] == "new" and release["samples"] == list(range(8))
    r4 = _round(book, q, 4, "new", 2, start=12)  # trusted now: admitted at once
    assert r4.admitted.tolist() == [12, 13] and not r4.decisions


def test_a_vouched_contributor_is_admitted_at_once():
    book = ReputationBook(n_classes=2)
    q = Quarantine(trusted=["seed"])
    r = _round(book, q, 0, "seed", 3)
    assert r.admitted.tolist() == [0, 1, 2] and r.held.size == 0


def test_a_contributor_that_keeps_disagreeing_is_rejected_and_loses_what_was_held():
    book = ReputationBook(n_classes=2)
    q = Quarantine(QuarantinePolicy(min_verified=5, reject_below=0.5, reject_sybils=False))
    r1 = _round(book, q, 1, "bad", 1, agree=False, start=0)  # Beta(1, 2): upper bound 0.78, held
    assert r1.held.tolist() == [0]
    r2 = _round(book, q, 2, "bad", 4, agree=False, start=1)  # Beta(1, 6): upper bound 0.39 < 0.5
    assert r2.status["bad"] == "rejected" and sorted(r2.dropped.tolist()) == [0, 1, 2, 3, 4]
    assert r2.admitted.size == 0 and "bad" not in q.held_
    (reject,) = [d for d in r2.decisions if d["kind"] == "reject"]
    assert reject["samples"] == [0] and "reputation" in reject["reason"]
    r3 = _round(book, q, 3, "bad", 20, agree=True, start=5)  # rejection is final
    assert r3.admitted.size == 0 and r3.dropped.size == 20


def test_a_trusted_contributor_whose_reputation_falls_goes_back_to_quarantine():
    book = ReputationBook(n_classes=2)
    q = Quarantine(QuarantinePolicy(min_verified=5, min_reputation=0.6, reject_below=0.0))
    assert _round(book, q, 1, "c", 10, start=0).status["c"] == "trusted"
    r = _round(book, q, 2, "c", 10, agree=False, start=10)  # Beta(11, 11): lower bound 0.33
    assert r.status["c"] == "quarantined" and r.held.tolist() == list(range(10, 20))
    assert [d["kind"] for d in r.decisions] == ["quarantine", "quarantine"]


def test_sybil_groups_are_rejected_together():
    book = ReputationBook(n_classes=2)
    q = Quarantine(QuarantinePolicy(min_verified=5))
    ids = ["g1"] * 3 + ["g2"] * 3 + ["h"] * 3
    labels = np.array([0, 0, 0, 0, 0, 0, 1, 1, 0])
    pred = np.array([1, 1, 1, 1, 1, 1, 1, 1, 0])
    book.update(ids, labels, pred, round=1)
    r = q.step(ids, np.arange(9), book, round=1)
    assert r.status["g1"] == r.status["g2"] == "rejected" and r.status["h"] == "quarantined"
    reasons = {d["subject"]: d["reason"] for d in r.decisions if d["kind"] == "reject"}
    assert set(reasons) == {"g1", "g2"} and all("sybil-like group of 2" in v for v in reasons.values())


def test_decisions_are_plain_dicts_for_the_ledger():
    book = ReputationBook(n_classes=2)
    q = Quarantine(QuarantinePolicy(min_verified=3))
    r = _round(book, q, 1, "x", 2)
    out = decisions_for_ledger(r)
    assert out == [{"kind": "quarantine", "subject": "x", "reason": out[0]["reason"], "samples": [0, 1]}]
    assert all(type(s) is int for s in out[0]["samples"])
    assert out[0]["samples"] is not r.decisions[0]["samples"]


@pytest.mark.parametrize("kwargs, text", [
    ({"min_verified": -1}, "min_verified"),
    ({"min_reputation": 1.5}, "min_reputation"),
    ({"reject_below": 0.8, "min_reputation": 0.6}, "reject_below"),
    ({"reject_sybils": "yes"}, "reject_sybils"),
    ({"sybil_min_disagreement": 0.0}, "sybil_min_disagreement"),
])
def test_bad_policies_are_refused_in_one_line(kwargs, text):
    with pytest.raises(InvalidParameterError, match=text) as info:
        QuarantinePolicy(**kwargs)
    assert "\n" not in str(info.value)


def test_sample_ids_must_match_the_contributors():
    book = ReputationBook(n_classes=2)
    with pytest.raises(DataError, match="sample_ids"):
        Quarantine().step(["a", "b"], [1], book)
