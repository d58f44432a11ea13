"""The HTML report builder (poisonlab.reports.html), without a browser: every section of every
record kind, numbers tagged with where they come from in the record, pictures inline, user text
escaped, nothing external."""

import base64
import functools
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from poisonlab.data.dataset import Dataset
from poisonlab.exceptions import DataError
from poisonlab.reports.fmt import num, pct, seconds
from poisonlab.reports.html import build_html, pointer, read_record, resolve
from poisonlab.runs import report_data

REPO = Path(__file__).resolve().parents[2]
EVIL = "<script>alert(1)</script>"


# --- synthetic records (real evidence code on small fake data) ----------------------------------

def _scan_parts(modality="image", n=60, classes=("zero", "one", "two"), seed=0):
    rng = np.random.default_rng(seed)
    if modality == "image":
        X = rng.uniform(0, 1, size=(n, 1, 8, 8)).astype(np.float32)
    elif modality == "text":
        X = np.array([f"message {i} " + "word " * (i % 90) for i in range(n)], dtype=object)
    elif modality == "tabular":
        X = rng.normal(size=(n, 5))
    else:
        X = rng.normal(size=(n, 800)).astype(np.float32)
    y = np.arange(n) % len(classes)
    ds = Dataset(X=X, y=y, classes=classes, modality=modality, ids=[f"s{i}" for i in range(n)], name="fake",
                 feature_names=tuple(f"col{j}" for j in range(5)) if modality == "tabular" else None,
                 info={"sample_rate": 8000} if modality == "audio" else {})
    mask = np.zeros(n, dtype=bool)
    mask[:6] = True
    scores = {"spectral": rng.normal(size=n) + 3 * mask, "knn_label": rng.normal(size=n) + mask}
    flags = {k: v > np.quantile(v, 0.9) for k, v in scores.items()}
    combined = scores["spectral"] + scores["knn_label"]
    order = np.argsort(-combined, kind="stable")
    quarantine = np.zeros(n, dtype=bool)
    quarantine[order[:6]] = True
    result = SimpleNamespace(scores=scores, flags=flags, combined=combined, order=order, quarantine=quarantine)
    return ds, result, mask


def _evaluation(result, mask):
    from poisonlab.evaluation.detection import detection_report

    ev = {k: detection_report(result.scores[k], result.flags[k], mask) for k in result.scores}
    ev["combined (quarantine)"] = detection_report(result.combined, result.quarantine, mask)
    return json.loads(json.dumps(ev))


def run_record():
    from poisonlab.attacks.data import BadNets

    ds, result, mask = _scan_parts()
    atk = BadNets(poison_rate=0.1, target=0, random_state=0)
    atk.poison(ds.X, ds.y)
    rng = np.random.default_rng(1)
    masks, patterns = rng.uniform(size=(3, 8, 8)), rng.uniform(size=(3, 1, 8, 8))
    return {
        "record_version": 1, "kind": "run", "created": "2026-01-01T00:00:00Z", "fingerprint": "ab" * 32,
        "scenario": {"name": "demo " + EVIL, "description": "a test run", "dataset": {"name": "digits"},
                     "attacks": [{"name": "badnets", "params": {"poison_rate": 0.1, "target": 0}}], "seeds": [0]},
        "results": {
            "data": {"test": {"n": 450}},
            "poison": {"attacks": [{"attack": "badnets", "n_poison": 6, "target": 0}], "n_poison": 6, "n_train": 60,
                       "triggers": [report_data.planted_trigger(atk, ds.X, "image")]},
            "train": {"poisoned": {"clean_accuracy": 0.9733, "attack_success_rate": 0.9975, "clean_model_asr": 0.0044,
                                   "epochs_run": 30, "per_class_accuracy": [0.9, 0.95, 1.0]},
                      "clean": {"clean_accuracy": 0.9811, "attack_success_rate": 0.0044, "epochs_run": 30,
                                "per_class_accuracy": [0.91, 0.96, 1.0]}},
            "scan": {"detectors": ["spectral", "knn_label"], "n_quarantined": 6,
                     "n_flagged": {k: int(v.sum()) for k, v in result.flags.items()},
                     "representation": {"source": "model", "layer": "penultimate", "dim": 128},
                     "evaluation": _evaluation(result, mask),
                     "evidence": json.loads(json.dumps(report_data.scan_evidence(ds, result, mask)))},
            "retrain": {"n_removed": 6, "clean_accuracy": 0.9689, "attack_success_rate": 0.0123, "epochs_run": 30},
            "inspect": {"neural_cleanse": {"scores": [2.6, -0.5, 0.1], "flagged": [0], "verdict": "backdoor suspected",
                                           "target_flagged": True,
                                           "triggers": report_data.trigger_previews(masks, patterns)}},
            "monitor": {"strip": {"threshold": 0.8, "frr": 0.05, "far": 0.02}},
        },
        "timings": {"total": 12.5, "steps": {"train": 10.0, "scan": 0.5}},
        "artifacts": [], "environment": {"git": {"commit": "c" * 40, "dirty": True}, "versions": {"numpy": "2"},
                                         "argv": ["poisonlab", "run", "x.yaml"], "threads": 1},
    }


def grid_record():
    cells = []
    for attack in ("badnets", "blended"):
        for rate in (0.02, 0.1):
            for seed in (0, 1):
                asr = min(1.0, rate * 9 + 0.01 * seed)
                cells.append({"name": f"g {attack} spectral poison_rate={rate} seed={seed}", "cell": "0" * 64,
                              "seed": seed, "results": {
                                  "poison": {"attacks": [{"attack": attack, "n_poison": int(rate * 1000)}]},
                                  "train": {"poisoned": {"clean_accuracy": 0.95 - rate / 10, "attack_success_rate": asr,
                                                         "clean_model_asr": 0.01},
                                            "clean": {"clean_accuracy": 0.96, "attack_success_rate": 0.01}},
                                  "scan": {"detectors": ["spectral"], "evaluation": {"combined (quarantine)": {
                                      "recall": 0.5 + rate, "precision": 0.4, "auroc": 0.8}}},
                                  "retrain": {"attack_success_rate": asr / 4, "clean_accuracy": 0.94}}})
    return {"record_version": 1, "kind": "grid", "n_cells": len(cells), "n_cached": 2,
            "scenario": {"name": "grid", "seeds": [0, 1], "sweep": {"params": {"attacks[0].params.poison_rate": [0.02, 0.1]}}},
            "results": {"cells": cells}, "timings": {"total": 3.0}, "environment": {}}


def scan_record(modality="image"):
    from poisonlab.runs.scan import scan_record as make

    ds, result, mask = _scan_parts(modality, classes=("cat", EVIL, "dog"))
    result.to_dict = lambda top: {"detectors": list(result.scores), "contamination": 0.1, "representation": {},
                                  "seconds": {}, "n_quarantined": int(result.quarantine.sum()), "top": [],
                                  "class_reports": {"knn_label": {0: {"share_flagged": 0.1, "verdict": EVIL}}},
                                  "evaluation": _evaluation(result, mask),
                                  "retrain": {"n_removed": 6, "n_kept": 54,
                                              "before": {"clean_accuracy": 0.97, "attack_success_rate": 0.99},
                                              "after": {"clean_accuracy": 0.96, "attack_success_rate": 0.02}}}
    result.seconds = {"spectral": 0.1}
    return make(ds, result, poison_mask=mask, top=12, scenario={"command": "scan-data", "dataset": "fake"})


def model_scan_record(flagged=(1,)):
    from poisonlab.runs.model_scan import model_scan_record as make

    rng = np.random.default_rng(0)
    det = SimpleNamespace(masks_=rng.uniform(size=(3, 8, 8)), patterns_=rng.uniform(size=(3, 1, 8, 8)))
    report = {"model": "/x/model.safetensors", "dataset": "digits",
              "file_safety": {"safe": True, "format": "safetensors"},
              "l1_norms": [12.0, 3.1, 11.5], "anomaly_index": [0.4, 3.2, 0.1], "flagged_classes": list(flagged),
              "reached_threshold": [True, True, False], "verdict": "backdoor suspected: class(es) [1]"}
    return make(report, detector=det, classes=("a", "b", "c"), scenario={"command": "scan-model"})


def reproduction_record():
    rec, _ = read_record(REPO / "docs" / "results" / "R2.json")
    return rec


RECORDS = {"run": run_record, "grid": grid_record, "scan": scan_record, "model_scan": model_scan_record,
           "reproduction": reproduction_record}
SECTIONS = {"run": {"verdict", "models", "poison", "scan", "inspect", "monitor", "details"},
            "grid": {"verdict", "sweep", "cells", "details"},
            "scan": {"verdict", "scan", "retrain", "details"},
            "model_scan": {"verdict", "classes", "triggers", "file", "details"},
            "reproduction": {"verdict", "claim", "measured", "details"}}


# --- a small HTML reader ----------------------------------------------------------------------------

class Page(HTMLParser):
    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.tags, self.sections, self.images, self.numbers, self._num = [], set(), [], [], None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "section":
            self.sections.add(a.get("id"))
        if tag == "img":
            self.images.append(a)
        if tag == "span" and "data-value" in a:
            self._num = {"key": a.get("data-key"), "raw": a["data-value"], "text": ""}

    def handle_data(self, data):
        if self._num is not None:
            self._num["text"] += data

    def handle_endtag(self, tag):
        if tag == "span" and self._num is not None:
            self.numbers.append(self._num)
            self._num = None


@functools.lru_cache(maxsize=None)
def _render(kind):
    record = RECORDS[kind]()
    text = build_html(record)
    return record, text, Page(text)


# --- tests ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", sorted(RECORDS))
def test_every_section_of_each_kind(kind):
    record, text, page = _render(kind)
    assert SECTIONS[kind] <= page.sections, SECTIONS[kind] - page.sections
    assert text.startswith("<!DOCTYPE html>")
    assert f'<meta name="poisonlab-record-kind" content="{kind}">' in text


@pytest.mark.parametrize("kind", sorted(RECORDS))
def test_numbers_carry_their_place_in_the_record(kind):
    record, _, page = _render(kind)
    keyed = [n for n in page.numbers if n["key"]]
    assert len(keyed) >= 3
    for n in keyed:
        value = resolve(record, n["key"])
        assert json.loads(n["raw"]) == (value if value is None or np.isfinite(value) else None), n
        if n["text"].endswith("%"):
            assert n["text"] == pct(value), n
        elif isinstance(value, (int, float)):
            assert n["text"] in (num(value), seconds(value)), n


@pytest.mark.parametrize("kind", sorted(RECORDS))
def test_self_contained(kind):
    _, text, page = _render(kind)
    assert page.images, "every kind has at least one plot or picture"
    for img in page.images:
        assert img["src"].startswith("data:image/png;base64,")
        png = base64.b64decode(img["src"].split(",", 1)[1])
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        assert int(img["width"]) > 0 and int(img["height"]) > 0 and img.get("alt")
    assert not [t for t, a in page.tags if t in ("script", "link", "iframe", "object", "embed")]
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", text)
    assert "default-src 'none'" in text  # the CSP forbids loading anything else


def test_run_headline_has_what_a_reviewer_asks_first():
    record, text, page = _render("run")
    head = text[text.index('id="verdict"'):text.index('id="models"')]
    res = record["results"]
    for ptr in ("/results/train/poisoned/attack_success_rate", "/results/train/poisoned/clean_model_asr",
                "/results/train/poisoned/clean_accuracy", "/results/train/clean/clean_accuracy",
                "/results/retrain/attack_success_rate",
                "/results/scan/evaluation/combined (quarantine)/recall"):
        assert f'data-key="{ptr}"' in head, ptr
    assert pct(res["train"]["poisoned"]["attack_success_rate"]) == "99.75%" and "99.75%" in head
    assert "backdoor suspected" in head and "the attack&#39;s target is among them" in head
    # samples: thumbnails with who flagged them and the ground truth
    assert "most suspicious samples" in text and "flagged by" in text and "planted poison" in text
    assert "Reversed triggers beside the planted one" in text and "planted trigger" in text


def test_user_text_is_escaped():
    record = run_record()
    record["results"]["scan"]["detectors"].append(EVIL)
    record["results"]["inspect"][EVIL] = {"scores": [0.0], "flagged": [], "verdict": EVIL}
    text = build_html(record)
    assert "<script" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    for rec in (scan_record("text"), scan_record("tabular")):
        rec["results"]["evidence"]["top"][0]["preview"] = {"kind": "text", "text": '<img src=x onerror="alert(1)">',
                                                           "length": 30}
        text = build_html(rec)
        assert "<script" not in text and "<img src=x" not in text and "&lt;img src=x" in text


@pytest.mark.parametrize("modality", ["image", "text", "tabular", "audio"])
def test_scan_samples_shown_by_modality(modality):
    rec = scan_record(modality)
    top = rec["results"]["evidence"]["top"]
    assert 1 <= len(top) <= report_data.MAX_TOP
    text = build_html(rec)
    page = Page(text)
    expected = {"image": 'class="snippet"' not in text, "audio": 'class="spectrogram"' in text,
                "text": 'class="snippet"' in text, "tabular": 'class="row-preview"' in text}
    assert expected[modality]
    n_pictures = len([i for i in page.images if i["alt"].startswith("sample ")])
    assert n_pictures == (len(top) if modality in ("image", "audio") else 0)


def test_model_scan_unsafe_file_is_a_refusal():
    from poisonlab.runs.model_scan import model_scan_record as make

    rec = make({"model": "m.pt", "file_safety": {"safe": False, "format": "pickle", "findings": [EVIL]},
                "verdict": "refused: unsafe file"}, scenario={})
    text = build_html(rec)
    assert 'class="headline bad"' in text and "refused: unsafe file" in text and "<script" not in text


def test_read_record(tmp_path):
    rec = grid_record()
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "record.json").write_text(json.dumps(rec))
    assert read_record(tmp_path / "run")[0] == rec
    assert read_record(tmp_path / "run" / "record.json")[1] == tmp_path / "run" / "record.json"
    with pytest.raises(DataError, match="holds no record.json"):
        read_record(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        read_record(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_bytes(b"\x00\xffnot json")
    with pytest.raises(DataError, match="not a JSON run record"):
        read_record(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text('{"a": 1}')
    with pytest.raises(DataError, match="not a run record"):
        read_record(tmp_path / "other.json")
    old = read_record(REPO / "docs" / "results" / "R1.json")[0]  # suite files from before records
    assert old["kind"] == "reproduction" and old["results"]["passed"] is True


def test_pointer_round_trip():
    rec = {"a/b": {"c~d": [1, {"e": 2}]}}
    assert resolve(rec, pointer("a/b", "c~d", 1, "e")) == 2
