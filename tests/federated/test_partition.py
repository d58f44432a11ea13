"""Client partitions: sizes, coverage, label skew, classes per client, seeds, bad inputs."""

import numpy as np
import pytest

from poisonlab.exceptions import AssumptionError, DataError, InvalidParameterError
from poisonlab.federated import dirichlet, iid, partition_clients, shards

Y = np.repeat(np.arange(10), 100)          # 1000 samples, 10 balanced classes


def _covers_once(parts, n):
    allidx = np.concatenate(parts)
    return len(allidx) == n and np.array_equal(np.sort(allidx), np.arange(n))


def test_iid_sizes_differ_by_at_most_one_and_cover_every_sample_once():
    parts = iid(Y, 7, random_state=0)
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1 and sum(sizes) == 1000
    assert _covers_once(parts, 1000)
    assert all(np.all(np.diff(p) > 0) and p.dtype == np.int64 for p in parts)


def test_iid_is_close_to_the_global_label_distribution():
    parts = iid(Y, 5, random_state=1)
    for p in parts:
        frac = np.bincount(Y[p], minlength=10) / len(p)
        assert np.abs(frac - 0.1).max() < 0.06


def _max_class_fraction(parts):
    return np.mean([np.bincount(Y[p], minlength=10).max() / len(p) for p in parts])


def test_dirichlet_small_alpha_skews_labels_and_large_alpha_does_not():
    skewed = dirichlet(Y, 10, alpha=0.1, random_state=0)
    flat = dirichlet(Y, 10, alpha=100.0, random_state=0)
    assert _covers_once(skewed, 1000) and _covers_once(flat, 1000)
    assert _max_class_fraction(skewed) > 0.5
    assert _max_class_fraction(flat) < 0.25


def test_dirichlet_respects_min_size():
    parts = dirichlet(Y, 20, alpha=0.3, min_size=10, random_state=3)
    assert min(len(p) for p in parts) >= 10


def test_dirichlet_gives_up_after_max_tries_with_a_clear_error():
    y = np.repeat(np.arange(2), 25)
    with pytest.raises(AssumptionError, match="max_tries|draws.*min_size"):
        dirichlet(y, 10, alpha=0.01, min_size=5, max_tries=5, random_state=0)


@pytest.mark.parametrize("c", [1, 2, 3])
def test_shards_give_every_client_exactly_c_classes(c):
    parts = shards(Y, 20, classes_per_client=c, random_state=0)
    assert all(len(np.unique(Y[p])) == c for p in parts)
    held = np.concatenate([np.unique(Y[p]) for p in parts])
    counts = np.bincount(held, minlength=10)
    assert counts.max() - counts.min() <= 1          # classes dealt evenly
    assert _covers_once(parts, 1000)


def test_shards_one_digit_each_for_ten_clients():
    parts = partition_clients(Y, 10, "shards", classes_per_client=1, random_state=4)
    assert sorted(int(np.unique(Y[p])[0]) for p in parts) == list(range(10))
    assert all(len(p) == 100 for p in parts)


def test_shards_with_fewer_slots_than_classes_leave_classes_out():
    parts = shards(Y, 3, classes_per_client=2, random_state=0)
    assert sum(len(p) for p in parts) == 600
    assert all(len(np.unique(Y[p])) == 2 for p in parts)


@pytest.mark.parametrize("scheme", ["iid", "dirichlet", "shards"])
def test_same_seed_same_partition_other_seed_other_partition(scheme):
    a = partition_clients(Y, 8, scheme, random_state=11)
    b = partition_clients(Y, 8, scheme, random_state=11)
    c = partition_clients(Y, 8, scheme, random_state=12)
    assert all(np.array_equal(p, q) for p, q in zip(a, b))
    assert not all(np.array_equal(p, q) for p, q in zip(a, c))
    g1 = partition_clients(Y, 8, scheme, random_state=np.random.default_rng(5))
    g2 = partition_clients(Y, 8, scheme, random_state=np.random.default_rng(5))
    assert all(np.array_equal(p, q) for p, q in zip(g1, g2))


def test_labels_are_not_modified():
    y = Y.copy()
    y.flags.writeable = False
    partition_clients(y, 4, "dirichlet", random_state=0)
    assert np.array_equal(y, Y)


@pytest.mark.parametrize("n_clients", [0, -1, 1.5, True])
def test_bad_client_counts_are_refused(n_clients):
    with pytest.raises(InvalidParameterError, match="n_clients"):
        partition_clients(Y, n_clients)


def test_more_clients_than_samples_is_refused():
    with pytest.raises(InvalidParameterError, match="n_clients must be at most the 5 samples"):
        partition_clients(np.arange(5) % 2, 6)


def test_a_class_too_small_for_its_holders_is_refused():
    y = np.array([0] * 50 + [1] * 2)
    with pytest.raises(DataError, match="class 1 has 2 samples"):
        shards(y, 6, classes_per_client=1, random_state=0)


def test_bad_scheme_and_parameters_are_refused():
    with pytest.raises(InvalidParameterError, match="scheme"):
        partition_clients(Y, 4, "random")
    with pytest.raises(InvalidParameterError, match="alpha"):
        partition_clients(Y, 4, "dirichlet", alpha=0.0)
    with pytest.raises(InvalidParameterError, match="classes_per_client"):
        partition_clients(Y, 4, "shards", classes_per_client=11)
    with pytest.raises(DataError):
        partition_clients(np.array([], dtype=int), 1)
