"""``poisonlab gate``, ``canary``, ``drift``, ``sign`` and ``verify-signature`` as a shell runs them."""

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from tests.cli.cli_helpers import poisonlab
from tests.monitoring._digits_models import saved

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "gate.yaml"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    return {"clean": saved(folder, "clean"), "badnets": saved(folder, "badnets")}


@pytest.fixture(scope="module")
def policy(tmp_path_factory):
    """examples/gate.yaml without Neural Cleanse (slow on one thread; benchmarks/gate_reference.py runs it)."""
    data = yaml.safe_load(EXAMPLE.read_text())
    del data["checks"]["neural_cleanse"]
    path = tmp_path_factory.mktemp("policy") / "gate.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    folder = tmp_path_factory.mktemp("keys")
    out = {}
    for name in ("release", "other"):
        key = ec.generate_private_key(ec.SECP256R1())
        (folder / f"{name}.pem").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        (folder / f"{name}.pub").write_bytes(key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        out[name] = (folder / f"{name}.pem", folder / f"{name}.pub")
    return out


def test_the_gate_passes_a_clean_model_writes_its_outputs_and_signs_it(tmp_path, models, policy, keys):
    out = poisonlab("gate", models["clean"], "--policy", policy, "--dataset", "digits",
                    "--baseline", models["clean"], "--junit", tmp_path / "gate.xml",
                    "--report", tmp_path / "gate.html", "--record", tmp_path / "record.json",
                    "--sign", keys["release"][0], "--signature", tmp_path / "model.sig")
    assert out.code == 0, out.output
    assert "gate: PASS" in out.stdout
    root = ET.parse(tmp_path / "gate.xml").getroot()
    assert root.find("testsuite").get("failures") == "0"
    assert json.loads((tmp_path / "record.json").read_text())["kind"] == "gate"
    assert "released" in (tmp_path / "gate.html").read_text()
    ok = poisonlab("verify-signature", models["clean"], "--key", keys["release"][1],
                   "--signature", tmp_path / "model.sig")
    assert ok.code == 0 and "signature: OK" in ok.stdout


def test_the_gate_fails_a_backdoored_model_with_exit_1_and_still_writes_junit(tmp_path, models, policy, keys):
    out = poisonlab("gate", models["badnets"], "--policy", policy, "--dataset", "digits",
                    "--junit", tmp_path / "gate.xml", "--sign", keys["release"][0],
                    "--signature", tmp_path / "model.sig")
    assert out.code == 1, out.output
    assert "gate: FAIL" in out.stdout and "canaries" in out.stdout and "error:" not in out.stderr
    failures = [c.get("name") for c in ET.parse(tmp_path / "gate.xml").getroot().iter("testcase")
                if c.find("failure") is not None]
    assert "canaries" in failures and "strip" in failures
    assert not (tmp_path / "model.sig").exists()  # a blocked model is not signed


def test_a_policy_with_an_unknown_check_is_one_error_line_and_exit_2(tmp_path, models):
    bad = tmp_path / "p.yaml"
    bad.write_text("checks:\n  canaries: {}\n  magic: {}\n")
    out = poisonlab("gate", models["clean"], "--policy", bad, "--dataset", "digits", "--junit", tmp_path / "j.xml")
    assert out.code == 2
    assert out.error_lines() == [f"error: {bad}: checks.magic: unknown check (known: file_safety, canaries, "
                                 f"strip, neural_cleanse, drift, validation_gap, data_scan)"]
    assert not (tmp_path / "j.xml").exists()


def test_a_model_without_a_card_is_one_error_line_and_exit_2(tmp_path, models, policy):
    bare = tmp_path / "bare.safetensors"
    bare.write_bytes(models["clean"].read_bytes())
    out = poisonlab("gate", bare, "--policy", policy, "--dataset", "digits")
    assert out.code == 2 and len(out.error_lines()) == 1
    assert out.error_lines()[0].startswith("error: bare.safetensors has no model card")


def test_canary_build_then_run(tmp_path, models):
    built = poisonlab("canary", "build", "--dataset", "digits", "--out", tmp_path / "suite", "--n-per-class", "10")
    assert built.code == 0, built.output
    assert "100 canaries" in built.stdout and "badnets" in built.stdout
    bad = poisonlab("canary", "run", models["badnets"], "--suite", tmp_path / "suite", "--out", tmp_path / "r.json")
    assert bad.code == 3 and "FAIL" in bad.stdout and "FIRES" in bad.stdout
    assert json.loads((tmp_path / "r.json").read_text())["passed"] is False
    clean = poisonlab("canary", "run", models["clean"], "--suite", tmp_path / "suite")
    assert clean.code == 0 and "PASS" in clean.stdout
    again = poisonlab("canary", "build", "--dataset", "digits", "--out", tmp_path / "suite")
    assert again.code == 2 and "--force" in again.stderr


def test_drift_exits_3_when_a_probe_newly_fires(tmp_path, models):
    out = poisonlab("drift", models["clean"], models["badnets"], "--dataset", "digits", "--out", tmp_path / "d.json")
    assert out.code == 3, out.output
    assert "newly fires" in out.stdout and "badnets" in out.stdout
    same = poisonlab("drift", models["clean"], models["clean"], "--dataset", "digits")
    assert same.code == 0 and "overall flip rate 0.0%" in same.stdout
    assert json.loads((tmp_path / "d.json").read_text())["newly_firing"]


def test_sign_and_verify_detect_tampered_weights_and_another_key(tmp_path, models, keys):
    model = tmp_path / "m.safetensors"
    model.write_bytes(models["clean"].read_bytes())
    out = poisonlab("sign", model, "--key", keys["release"][0])
    assert out.code == 0 and (tmp_path / "m.safetensors.sig").is_file()
    assert poisonlab("verify-signature", model, "--key", keys["release"][1]).code == 0
    wrong = poisonlab("verify-signature", model, "--key", keys["other"][1])
    assert wrong.code == 1 and "signature: FAILED" in wrong.stderr
    data = bytearray(model.read_bytes())
    data[-1] ^= 1  # one bit of the weights
    model.write_bytes(bytes(data))
    tampered = poisonlab("verify-signature", model, "--key", keys["release"][1])
    assert tampered.code == 1 and "does not match its signature" in tampered.stderr
    missing = poisonlab("verify-signature", tmp_path / "nope.safetensors", "--key", keys["release"][1])
    assert missing.code == 2


def test_signing_a_folder_covers_the_model_card(tmp_path, models, keys):
    import shutil

    from poisonlab.models.io import card_path

    folder = tmp_path / "release"
    folder.mkdir()
    shutil.copy(models["clean"], folder / "model.safetensors")
    shutil.copy(card_path(models["clean"]), folder / "model.card.json")
    assert poisonlab("sign", folder, "--key", keys["release"][0], "--signature", tmp_path / "r.sig").code == 0
    verify = ("verify-signature", folder, "--key", keys["release"][1], "--signature", tmp_path / "r.sig")
    assert poisonlab(*verify).code == 0
    card = json.loads((folder / "model.card.json").read_text())
    card["metrics"] = {"clean_accuracy": 1.0}
    (folder / "model.card.json").write_text(json.dumps(card))
    assert poisonlab(*verify).code == 1


def test_the_gate_with_a_ledger_compares_with_the_released_model_and_rollback_finds_the_last_passed(
        tmp_path, models, policy):
    """The release loop: a clean model passes and is promoted; a backdoored one is gated against
    the released version (drift) and blocked; rollback goes back to the last model that passed."""
    ledger = tmp_path / "ledger.db"
    first = poisonlab("gate", models["clean"], "--policy", policy, "--dataset", "digits", "--ledger", ledger)
    assert first.code == 0, first.output
    assert "gate verdict recorded for model 1" in first.stdout
    assert poisonlab("model", "promote", "1", "--ledger", ledger).code == 0
    second = poisonlab("gate", models["badnets"], "--policy", policy, "--dataset", "digits", "--ledger", ledger,
                       "--junit", tmp_path / "gate.xml")
    assert second.code == 1, second.output
    assert "drift baseline: the released model" in second.stdout
    drift = next(c for c in ET.parse(tmp_path / "gate.xml").getroot().iter("testcase") if c.get("name") == "drift")
    assert drift.find("skipped") is None  # compared with the released model, not skipped
    # someone promotes the blocked model anyway; rollback puts back the one the gate passed
    assert poisonlab("model", "promote", "2", "--ledger", ledger).code == 0
    back = poisonlab("model", "rollback", "--ledger", ledger)
    assert back.code == 0, back.output
    from poisonlab.provenance.ledger import Ledger
    from poisonlab.provenance.models import list_models

    with Ledger.open(ledger) as led:
        rows = list_models(led)
    assert [(r["id"], r["gate"]) for r in rows] == [(1, True), (2, False)]
    assert [r["id"] for r in rows if r["production"]] == [1]
    assert poisonlab("ledger", "verify", "--ledger", ledger).code == 0


def test_a_bad_signing_key_is_refused_before_any_check_runs_or_anything_is_written(tmp_path, models, policy):
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    out = poisonlab("gate", models["clean"], "--policy", policy, "--dataset", "digits", "--junit", tmp_path / "g.xml",
                    "--sign", bad, "--signature", tmp_path / "m.sig", "--ledger", tmp_path / "ledger.db")
    assert out.code == 2 and "elliptic-curve private key" in out.stderr, out.output
    assert not (tmp_path / "g.xml").exists() and not (tmp_path / "m.sig").exists()
    assert not (tmp_path / "ledger.db").exists()
