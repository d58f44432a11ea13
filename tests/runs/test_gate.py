"""The release gate (poisonlab.runs.gate): policies, the checks on digits, JUnit XML, the record."""

import pickle
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from poisonlab.exceptions import DataError, InvalidParameterError
from poisonlab.reports.html import build_html
from poisonlab.runs.events import Note, StepFinished
from poisonlab.runs.gate import (CHECKS, GatePolicy, GatePolicyError, gate_record, junit_xml, load_policy, run_gate,
                                 write_junit)
from tests.monitoring._digits_models import TARGET, digits, saved

from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "gate.yaml"


def fast_policy(**extra):
    """examples/gate.yaml without Neural Cleanse (15 s a model on one thread; the benchmark runs it)."""
    pol = load_policy(EXAMPLE)
    checks = pol.checks.model_copy(update={"neural_cleanse": None, **extra})
    return pol.model_copy(update={"checks": checks})


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    return {"clean": saved(folder, "clean"), "badnets": saved(folder, "badnets")}


# --- policies --------------------------------------------------------------------------------------

def test_the_example_policy_names_every_check():
    assert load_policy(EXAMPLE).enabled() == list(CHECKS)


def test_an_unknown_check_is_a_one_line_error_naming_it(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("checks:\n  canaries: {}\n  spectral_magic: {threshold: 2}\n")
    with pytest.raises(GatePolicyError) as info:
        load_policy(f)
    msg = str(info.value)
    assert "\n" not in msg and "checks.spectral_magic: unknown check (known: file_safety" in msg and str(f) in msg


@pytest.mark.parametrize("text, where", [
    ("checks:\n  strip: {max_flag_rate: 1.5}\n", "checks.strip.max_flag_rate: Input should be less than or equal to 1"),
    ("checks:\n  canaries: {n_per_clas: 3}\n", "checks.canaries.n_per_clas: unknown field"),
    ("checks:\n  neural_cleanse: {on_inconclusive: maybe}\n", "checks.neural_cleanse.on_inconclusive:"),
    ("name: x\n", "checks: required field is missing"),
    ("checks:\n  canaries: {probe_params: {badwrd: {}}}\n", "checks.canaries.probe_params: unknown trigger family 'badwrd'"),
    ("checks:\n  canaries: {probe_params: {badword: {n_insert: 0}}}\n",
     "checks.canaries.probe_params: badword: RareWordTrigger.n_insert must be"),
    ("checks: [1, 2\n", "invalid YAML"),
])
def test_bad_parameters_name_their_field_path(tmp_path, text, where):
    f = tmp_path / "p.yaml"
    f.write_text(text)
    with pytest.raises(GatePolicyError, match="^.*" + where.replace("[", r"\[")) as info:
        load_policy(f)
    assert "\n" not in str(info.value)


def test_a_check_given_as_null_runs_with_its_defaults(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("checks:\n  strip:\n  canaries:\n")
    pol = load_policy(f)
    assert pol.enabled() == ["canaries", "strip"] and pol.checks.strip.max_flag_rate == 0.5


def test_a_required_input_missing_fails_before_any_work(models):
    pol = GatePolicy.model_validate({"checks": {"drift": {"require": True}}})
    with pytest.raises(InvalidParameterError, match="checks.drift.require is true but no --baseline"):
        run_gate(models["clean"], pol, trusted=digits().test)
    with pytest.raises(InvalidParameterError, match="need trusted labelled data"):
        run_gate(models["clean"], GatePolicy.model_validate({"checks": {"canaries": {}}}))


# --- the model file --------------------------------------------------------------------------------

def test_a_model_without_a_model_card_is_a_one_line_error(tmp_path, models):
    bare = tmp_path / "bare.safetensors"
    bare.write_bytes(models["clean"].read_bytes())  # the weights without their card
    with pytest.raises(DataError, match="bare.safetensors has no model card") as info:
        run_gate(bare, fast_policy(), trusted=digits().test)
    assert "\n" not in str(info.value)


def test_an_unsafe_file_fails_file_safety_and_is_never_loaded(tmp_path):
    class Evil:
        def __reduce__(self):
            import os

            return (os.system, ("echo pwned > /tmp/poisonlab_gate_pwned",))

    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"w": Evil()}))
    res = run_gate(evil, fast_policy(), trusted=digits().test)
    assert not res.passed and res.check("file_safety").status == "failed"
    assert all(c.status == "failed" and "not run" in c.message for c in res.checks[1:])
    assert "os.system" in res.check("file_safety").message or "system" in res.check("file_safety").message


# --- the gate on digits ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def gated(models):
    d = digits()
    rng = np.random.default_rng(0)
    flipped = d.test.subset(np.arange(200)).with_arrays(y=(d.test.y[:200] + rng.integers(0, 2, 200)) % 10)
    events = []
    out = {k: run_gate(models[k], fast_policy(), trusted=d.test, baseline=models["clean"],
                       source_val=d.test.subset(np.arange(200)), emit=events.append) for k in models}
    out["flipped_source"] = run_gate(models["clean"], fast_policy(), trusted=d.test, source_val=flipped)
    out["events"] = events
    return out


def test_the_gate_fails_a_badnets_model_and_passes_its_clean_counterpart(gated):
    clean, bad = gated["clean"], gated["badnets"]
    assert clean.passed and clean.failed == [], clean.verdict()
    assert not bad.passed
    assert {"canaries", "strip", "drift"} <= set(bad.failed)
    assert bad.check("file_safety").status == "passed"
    fired = bad.check("canaries").measured["fired"]
    assert "badnets" in fired
    assert any(p["family"] == "badnets" and p["target"] == TARGET for p in bad.check("drift").measured["newly_firing"])
    assert bad.check("strip").measured["flag_rate"]["badnets"] > 0.9
    assert clean.check("strip").measured["flag_rate"]["badnets"] < 0.2
    # inputs not given: skipped, never failing
    assert clean.check("data_scan").status == "skipped" and bad.verdict().startswith("FAIL: ")


def test_the_validation_gap_catches_a_corrupted_source_validation_set(gated):
    ok = gated["clean"].check("validation_gap")
    assert ok.status == "passed" and ok.measured["gap"] == pytest.approx(0.0, abs=0.03)
    bad = gated["flipped_source"].check("validation_gap")
    assert bad.status == "failed" and bad.measured["gap"] > 0.3 and "beyond" in bad.message


def test_events_report_every_check(gated):
    steps = [e.step for e in gated["events"] if isinstance(e, StepFinished)]
    assert steps[:6] == [c for c in CHECKS if c != "neural_cleanse"]
    assert any(isinstance(e, Note) and e.text.startswith("FAIL") for e in gated["events"])


def test_junit_xml_has_one_testcase_per_check_and_a_failure_with_the_message(gated, tmp_path):
    bad = gated["badnets"]
    path = write_junit(tmp_path / "gate.xml", bad)
    root = ET.parse(path).getroot()
    suite = root.find("testsuite")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [c.name for c in bad.checks]
    assert int(suite.get("failures")) == len(bad.failed) and int(suite.get("skipped")) == 1
    failure = next(c for c in cases if c.get("name") == "canaries").find("failure")
    assert failure.get("message") == bad.check("canaries").message
    assert next(c for c in cases if c.get("name") == "data_scan").find("skipped") is not None
    assert next(c for c in cases if c.get("name") == "file_safety").find("failure") is None
    assert junit_xml(bad) == path.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["gate.xml"]  # no temporary file left


def test_the_record_renders_as_a_gate_report(gated):
    rec = gate_record(gated["badnets"], scenario={"model": "m.safetensors"})
    assert rec["kind"] == "gate" and rec["results"]["passed"] is False
    page = build_html(rec)
    assert "Release gate" in page and "blocked" in page and "Backdoor probes" in page
    for c in gated["badnets"].checks:
        assert f"<td>{c.name}</td>" in page or f">{c.name}<" in page
    assert page.count("chip bad") >= len(gated["badnets"].failed)
    clean_page = build_html(gate_record(gated["clean"]))
    assert "released" in clean_page


def test_the_data_scan_check_fails_on_the_poisoned_training_set_only(models):
    from poisonlab.attacks.data import BadNets

    d = digits()
    res = BadNets(target=TARGET, poison_rate=0.1, value=1.0, random_state=1).poison(d.train.X, d.train.y)
    pol = GatePolicy.model_validate({"checks": {"data_scan": {"max_quarantine_fraction": 0.05}}})
    bad = run_gate(models["badnets"], pol, trusted=d.test, train=d.train.with_arrays(X=res.X, y=res.y))
    clean = run_gate(models["clean"], pol, trusted=d.test, train=d.train)
    assert bad.check("data_scan").status == "failed" and bad.check("data_scan").measured["fraction"] > 0.05
    assert clean.check("data_scan").status == "passed" and clean.passed


def _texts(n, seed):
    from poisonlab.data import Dataset

    ham = "meet lunch today home call later tonight thanks love see you soon dinner mom work".split()
    spam = "win prize cash free claim now urgent offer call txt reply stop award".split()
    r = np.random.default_rng(seed)
    y = r.integers(0, 2, n)
    X = np.array([" ".join(r.choice(ham if c == 0 else spam, 5)) for c in y], dtype=object)
    return Dataset(X=X, y=y, classes=("ham", "spam"), modality="text", ids=np.array([f"s{seed}-{i}" for i in range(n)]))


def test_the_gate_on_text_fails_a_rare_word_backdoor_and_skips_neural_cleanse(tmp_path):
    from poisonlab.attacks.data import RareWordTrigger
    from poisonlab.models import ModelSpec, TrainConfig, save_model
    from poisonlab.runs.train import train_reference

    train, test = _texts(600, 0), _texts(300, 1)
    atk = RareWordTrigger(target=0, poison_rate=0.1, random_state=1)  # spam + "cf" -> ham
    res = atk.poison(train.X, train.y)
    pol = GatePolicy.model_validate({"checks": {"file_safety": {}, "canaries": {}, "neural_cleanse": {}}})
    out = {}
    for name, ds in (("clean", train), ("badword", train.with_arrays(X=res.X, y=res.y))):
        trained = train_reference(ds, test, config=TrainConfig(epochs=10, lr=3e-3, batch_size=32), attack=atk,
                                  poison_mask=res.poison_mask if name == "badword" else None)
        vocab = trained.classifier.vocabulary_
        path = tmp_path / f"{name}.safetensors"
        save_model(trained.classifier.module_, path, architecture=trained.architecture, modality="text",
                   spec=ModelSpec(tuple(vocab.transform(ds.X[:1]).shape[1:]), 2, vocab.vocab_size),
                   class_names=["ham", "spam"], vocabulary=vocab)
        out[name] = (trained.metrics, run_gate(path, pol, trusted=test))
    assert out["badword"][0]["attack_success_rate"] > 0.9
    bad, clean = out["badword"][1], out["clean"][1]
    assert clean.passed and not bad.passed and bad.failed == ["canaries"]
    fired = {p["family"]: p for p in bad.check("canaries").measured["probes"] if p["fires"]}
    assert fired["badword"]["target"] == 0
    assert bad.check("neural_cleanse").status == "skipped" and "text" in bad.check("neural_cleanse").message


def test_a_non_blocking_check_warns_without_blocking(models):
    pol = GatePolicy.model_validate({"checks": {"canaries": {"blocking": False}}})
    res = run_gate(models["badnets"], pol, trusted=digits().test)
    c = res.check("canaries")
    assert res.passed and c.status == "warned" and c.message.startswith("(non-blocking) ")
    assert res.warned == ["canaries"] and "warnings: canaries" in res.verdict()
    case = ET.fromstring(junit_xml(res)).find("testsuite/testcase")
    assert case.find("failure") is None and case.find("system-err").text.startswith("warning: ")
    assert "warning" in build_html(gate_record(res))
