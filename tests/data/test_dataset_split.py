"""Dataset.split: group splits keep every group on one side; without groups, stratified."""

import numpy as np
import pytest

from poisonlab import DataError, InvalidParameterError
from poisonlab.data import Dataset, Splits, load_fsdd
from poisonlab.data.dataset import stratified_split


def _dataset(n=120, n_groups=8, seed=0):
    rng = np.random.default_rng(seed)
    groups = np.array([f"g{i}" for i in rng.integers(0, n_groups, n)])
    groups[:n_groups] = [f"g{i}" for i in range(n_groups)]  # every group present
    return Dataset(X=rng.normal(size=(n, 3)), y=np.arange(n) % 3, classes=("a", "b", "c"),
                   modality="tabular", ids=[f"s{i:03d}" for i in range(n)], name="toy",
                   metadata={"contributor": groups, "source": np.full(n, "web")}, info={"origin": "test"})


def test_groups_land_wholly_on_one_side_and_nothing_is_lost():
    ds = _dataset()
    train, test = ds.split(by="contributor", test_fraction=0.25, random_state=3)
    tr_groups, te_groups = set(train.metadata["contributor"]), set(test.metadata["contributor"])
    assert tr_groups.isdisjoint(te_groups) and tr_groups | te_groups == set(ds.metadata["contributor"])
    assert len(te_groups) == 2  # ceil(0.25 * 8) groups
    assert sorted([*train.ids, *test.ids]) == sorted(ds.ids)
    assert test.info["split"] == {"by": "contributor", "test_fraction": 0.25,
                                  "test_groups": sorted(te_groups), "side": "test"}
    assert train.info["origin"] == "test" and train.info["split"]["side"] == "train"
    # samples keep their inputs, labels and metadata
    pos = {sid: i for i, sid in enumerate(ds.ids)}
    rows = [pos[s] for s in test.ids]
    assert np.array_equal(test.X, ds.X[rows]) and np.array_equal(test.y, ds.y[rows])
    assert np.array_equal(test.metadata["contributor"], ds.metadata["contributor"][rows])


def test_same_random_state_same_split_and_others_differ():
    ds = _dataset()
    a = ds.split(by="contributor", test_fraction=0.5, random_state=1)
    b = ds.split(by="contributor", test_fraction=0.5, random_state=1)
    assert isinstance(a, Splits) and np.array_equal(a.test.ids, b.test.ids)
    tests = {tuple(ds.split(by="contributor", test_fraction=0.5, random_state=s).test.info["split"]["test_groups"])
             for s in range(10)}
    assert len(tests) > 1
    g1 = ds.split(by="contributor", random_state=np.random.default_rng(5))
    g2 = ds.split(by="contributor", random_state=np.random.default_rng(5))
    assert np.array_equal(g1.test.ids, g2.test.ids)


def test_groups_given_as_an_array():
    ds = _dataset(n=30)
    labels = np.arange(30) // 10  # three groups of ten
    train, test = ds.split(by=labels, test_fraction=0.3, random_state=0)
    assert len(test) == 10 and len(train) == 20
    assert len(set(labels[np.isin(ds.ids, test.ids)])) == 1
    assert test.info["split"]["by"] == "<array>"


def test_without_groups_it_is_the_stratified_split():
    ds = _dataset()
    train, test = ds.split(test_fraction=0.25, random_state=7)
    tr, te = stratified_split(ds.y, 0.25, 7)
    assert np.array_equal(train.ids, ds.ids[tr]) and np.array_equal(test.ids, ds.ids[te])
    assert test.class_counts().tolist() == [10, 10, 10]
    assert test.info["split"]["by"] is None


@pytest.mark.parametrize("kwargs, err, msg", [
    ({"by": "speaker"}, DataError, r"unknown metadata column 'speaker'; available: \['contributor', 'source'\]"),
    ({"by": "source"}, DataError, "needs at least 2 groups; 'source' has 1"),
    ({"by": np.zeros(5)}, DataError, r"one group label per sample \(120\); got shape \(5,\)"),
    ({"by": "contributor", "test_fraction": 0.99}, DataError, "puts every group of 'contributor' in the test set"),
    ({"by": "contributor", "test_fraction": 1.5}, InvalidParameterError, r"test_fraction must be in \(0.0, 1.0\); got 1.5"),
    ({"test_fraction": 0.0}, InvalidParameterError, "test_fraction must be in"),
    ({"by": "contributor", "random_state": "x"}, InvalidParameterError, "random_state must be None"),
])
def test_bad_arguments_give_one_line_errors(kwargs, err, msg):
    with pytest.raises(err, match=msg) as info:
        _dataset().split(**kwargs)
    assert "\n" not in str(info.value)


def test_stratified_split_of_a_singleton_class_is_a_data_error():
    ds = Dataset(X=np.zeros((5, 1)), y=[0, 0, 0, 0, 1], classes=("a", "b"), modality="tabular",
                 ids=list("abcde"))
    with pytest.raises(DataError, match="cannot split the dataset stratified by class") as info:
        ds.split(test_fraction=0.4, random_state=0)
    assert "\n" not in str(info.value)


def test_fsdd_by_speaker(data_dir):
    """FSDD's speaker is its ``contributor`` column: a split by it holds whole speakers out."""
    train = load_fsdd(data_dir).train
    a, b = train.split(by="contributor", test_fraction=0.2, random_state=0)
    assert len(set(b.metadata["contributor"])) == 2 and len(b) == 2 * 450
    assert set(a.metadata["contributor"]).isdisjoint(b.metadata["contributor"])
