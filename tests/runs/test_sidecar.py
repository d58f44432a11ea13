"""Poisoned data files and their sidecars (poisonlab.runs.sidecar)."""

import hashlib
import json

import numpy as np
import pytest

from poisonlab.attacks.data import BadNets
from poisonlab.data import Dataset, load_digits
from poisonlab.exceptions import DataError, InvalidParameterError
from poisonlab.runs.sidecar import (
    SIDECAR_FORMAT,
    attack_from_sidecar,
    check_output,
    read_poisoned,
    read_sidecar,
    sidecar_path,
    write_poisoned,
)


@pytest.fixture(scope="module")
def digits():
    return load_digits()


@pytest.fixture
def poisoned(digits):
    atk = BadNets(target=2, poison_rate=0.05, value=1.0, random_state=4)
    return atk, atk.poison(digits.train.X, digits.train.y)


def test_sidecar_name_never_collides_with_the_users_json():
    assert sidecar_path("runs/p.npz").as_posix() == "runs/p.poison.json"
    assert sidecar_path("p.v2.npz").name == "p.v2.poison.json"


def test_write_then_read_round_trips_data_mask_and_attack(tmp_path, digits, poisoned):
    atk, res = poisoned
    out = tmp_path / "p.npz"
    data_path, side = write_poisoned(out, digits.train, res, atk, "digits")
    assert (data_path, side) == (out, tmp_path / "p.poison.json")
    meta = json.loads(side.read_text())
    assert meta["format"] == SIDECAR_FORMAT and meta["attack"] == "badnets" and meta["source"] == "digits"
    assert meta["n_poison"] == res.n_poison and meta["target"] == 2 and meta["params"]["random_state"] == 4
    assert meta["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    back = read_poisoned(out)
    assert np.array_equal(back.dataset.X, res.X) and np.array_equal(back.dataset.y, res.y)
    assert np.array_equal(back.poison_mask, res.poison_mask) and back.sidecar_path == side
    assert np.array_equal(back.dataset.ids, digits.train.ids) and back.dataset.classes == digits.train.classes
    rebuilt, test = attack_from_sidecar(back.sidecar)
    assert rebuilt.get_params() == atk.get_params() and len(test) == len(digits.test)
    assert np.array_equal(rebuilt.apply_trigger(test.X[:5]), atk.apply_trigger(test.X[:5]))


def test_texts_are_stored_as_unicode_and_injected_samples_get_ids(tmp_path):
    texts = np.array(["win a prize now", "see you at lunch", "call me later", "free entry"] * 5, dtype=object)
    ds = Dataset(X=texts, y=np.array([1, 0, 0, 1] * 5), classes=("ham", "spam"), modality="text",
                 ids=np.array([f"t:{i}" for i in range(20)]), name="t")
    from poisonlab import registry

    atk = registry.create("attack", "badword", n_poison=3, target=1, random_state=0)
    res = atk.poison(ds.X, ds.y)
    write_poisoned(tmp_path / "t.npz", ds, res, atk, tmp_path / "texts.npz")
    with np.load(tmp_path / "t.npz", allow_pickle=False) as z:
        assert z["X"].dtype.kind == "U"
    back = read_poisoned(tmp_path / "t.npz")
    assert back.dataset.modality == "text" and back.dataset.classes == ("ham", "spam")
    rebuilt, test = attack_from_sidecar(back.sidecar)
    assert test is None and rebuilt.get_params() == atk.get_params()
    # an attack that appends samples: they get ids of their own
    from poisonlab.base import PoisonResult

    mask = np.r_[np.zeros(20, bool), True, True]
    grown = PoisonResult(X=np.r_[texts, ["cf a", "cf b"]], y=np.r_[ds.y, 1, 1], poison_mask=mask,
                         indices=np.flatnonzero(mask), target=1)
    write_poisoned(tmp_path / "g.npz", ds, grown, atk, "texts")
    ids = read_poisoned(tmp_path / "g.npz").dataset.ids
    assert list(ids[-3:]) == ["t:19", "injected-0", "injected-1"]


def test_outputs_that_would_overwrite_are_refused(tmp_path, digits, poisoned):
    atk, res = poisoned
    src = tmp_path / "in.npz"
    src.write_bytes(b"user data")
    with pytest.raises(InvalidParameterError, match="never overwrites your data"):
        check_output(src, source=src, force=True)
    with pytest.raises(InvalidParameterError, match="must end in .npz"):
        check_output(tmp_path / "p.csv")
    with pytest.raises(DataError, match="exists; pass force=True"):
        write_poisoned(src, digits.train, res, atk, "digits")
    assert src.read_bytes() == b"user data"
    # a file of the user's where the sidecar would go is never replaced without force
    mine = tmp_path / "q.poison.json"
    mine.write_text('{"mine": true}')
    with pytest.raises(DataError, match="not a poisonlab sidecar"):
        write_poisoned(tmp_path / "q.npz", digits.train, res, atk, "digits")
    assert not (tmp_path / "q.npz").exists() and mine.read_text() == '{"mine": true}'
    # a sidecar of ours whose data file is gone is simply replaced; force replaces everything
    write_poisoned(tmp_path / "r.npz", digits.train, res, atk, "digits")
    (tmp_path / "r.npz").unlink()
    write_poisoned(tmp_path / "r.npz", digits.train, res, atk, "digits")
    write_poisoned(tmp_path / "q.npz", digits.train, res, atk, "digits", force=True)
    assert json.loads(mine.read_text())["attack"] == "badnets"


def test_a_users_own_json_beside_the_data_is_left_alone(tmp_path, digits, poisoned):
    atk, res = poisoned
    user = tmp_path / "p.json"
    user.write_text('{"experiment": "mine"}')
    write_poisoned(tmp_path / "p.npz", digits.train, res, atk, "digits")
    assert user.read_text() == '{"experiment": "mine"}'
    assert read_poisoned(tmp_path / "p.npz").sidecar["attack"] == "badnets"
    # without our sidecar, a <stem>.json that is not one (or not JSON at all) is ignored
    sidecar_path(tmp_path / "p.npz").unlink()
    assert read_sidecar(tmp_path / "p.npz") == (None, None)
    user.write_text("not json at all")
    assert read_poisoned(tmp_path / "p.npz").sidecar is None


def test_legacy_stem_json_sidecars_are_still_read(tmp_path, digits, poisoned):
    atk, res = poisoned
    write_poisoned(tmp_path / "p.npz", digits.train, res, atk, "digits")
    meta = json.loads(sidecar_path(tmp_path / "p.npz").read_text())
    sidecar_path(tmp_path / "p.npz").unlink()
    legacy = {"attack": "badnets", "params": {**meta["params"], "pattern": "<array>"}, "source": "digits",
              "n_samples": meta["n_samples"], "n_poison": meta["n_poison"], "target": 2, "info": {}}
    (tmp_path / "p.json").write_text(json.dumps(legacy))
    back = read_poisoned(tmp_path / "p.npz")
    assert back.sidecar_path == tmp_path / "p.json"
    rebuilt, test = attack_from_sidecar(back.sidecar)
    assert rebuilt.target == 2 and test is not None


@pytest.mark.parametrize("text, match", [
    ("{\"attack\": \"badnets\",", "is not a valid sidecar: .* at line 1"),
    ("[1, 2]", "is not a poisonlab sidecar"),
    ("\xff\xfe", "is not a valid sidecar"),
])
def test_a_corrupt_sidecar_is_a_one_line_data_error(tmp_path, digits, poisoned, text, match):
    atk, res = poisoned
    write_poisoned(tmp_path / "p.npz", digits.train, res, atk, "digits")
    side = sidecar_path(tmp_path / "p.npz")
    side.write_bytes(text.encode("latin-1"))
    with pytest.raises(DataError, match=match) as info:
        read_poisoned(tmp_path / "p.npz")
    assert "\n" not in str(info.value)


def test_a_sidecar_naming_a_bad_attack_is_a_data_error():
    with pytest.raises(DataError, match="cannot rebuild: unknown attack 'nope'"):
        attack_from_sidecar({"attack": "nope", "params": {}, "source": "digits"}, where="x.poison.json")
    with pytest.raises(DataError, match="x.poison.json.*'attack' must be"):
        attack_from_sidecar({"attack": 3, "params": {}, "source": "digits"}, where="x.poison.json")
    with pytest.raises(DataError, match="cannot rebuild.*valid parameters"):
        attack_from_sidecar({"attack": "badnets", "params": {"colour": 1}, "source": "x"}, where="x.poison.json")
