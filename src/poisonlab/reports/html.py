"""A self-contained HTML report of any run record.

One file, no network: the CSS is inline, every plot and thumbnail is a PNG data URI, there is no
script, and a Content-Security-Policy forbids the page to load anything else. The report reads
a record and draws it; the numbers, distributions, ROC points, thumbnails and triggers all come
from the record (the run layer computes them: :mod:`poisonlab.runs.report_data`).

What it shows, first what a reviewer asks first:

* ``run``: the verdict and why (ASR of the poisoned model beside the clean model's on the same
  triggered inputs, accuracy, what the defences caught); poisoned, clean and retrained models;
  the planted trigger; the scan's detectors (precision, recall, AUROC, score distributions, ROC
  curves), the most suspicious samples with the detectors that flagged them, per class;
  Neural Cleanse's anomaly index and reversed triggers beside the planted one; STRIP; details.
* ``grid``: ASR, clean accuracy and the clean model's ASR against the swept rate, one panel per
  attack; quarantine recall per detector; every cell in a table.
* ``reproduction``: PASS or MISS and why, the paper's claim beside the measured numbers, the
  rate sweep, per seed.
* ``scan`` (``poisonlab scan-data --report``): the quarantine, detectors, distributions, ROC,
  samples, per class, retraining.
* ``model_scan`` (``poisonlab scan-model --report``): the verdict, anomaly index per class,
  reversed triggers, file safety, repair.
* ``gate`` (``poisonlab gate --report``): released or blocked, a table of the policy's checks
  (pass, fail, skipped, with what was measured and the threshold), the backdoor probes, and each
  check's measured values.

Every number shown from the record carries ``data-key`` (its JSON pointer in the record) and
``data-value`` (the raw value), so a test can check the page against the record.

Examples
--------
>>> record = {"kind": "run", "scenario": {"name": "demo <1>"},
...           "results": {"train": {"model": {"clean_accuracy": 0.975}}}}
>>> page = build_html(record)
>>> "demo &lt;1&gt;" in page and 'data-key="/results/train/model/clean_accuracy"' in page
True
"""

from __future__ import annotations

import base64
import json
import math
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from ..exceptions import DataError
from .fmt import _finite, num, pct, seconds

#: Record kinds with a dedicated layout (others get a generic page).
KINDS = ("run", "grid", "reproduction", "scan", "model_scan", "gate")
#: The generator tag a report carries (``<meta name="generator">``).
GENERATOR = "poisonlab report"


# --- reading -----------------------------------------------------------------------------------

def read_record(path: str | os.PathLike) -> tuple[dict[str, Any], Path]:
    """The run record at ``path`` (a JSON file, or a folder holding ``record.json``) and the
    file it came from. Raises :class:`~poisonlab.exceptions.DataError` with one line when it is
    missing, not JSON, or not a run record."""
    path = Path(path)
    file = path / "record.json" if path.is_dir() else path
    if not file.exists():
        where = f"{path} holds no record.json" if path.is_dir() else f"{path} does not exist"
        raise DataError(f"no run record: {where}")
    try:
        record = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{file} is not a JSON run record ({exc})") from exc
    except OSError as exc:
        raise DataError(f"cannot read {file}: {exc.strerror or exc}") from exc
    if not isinstance(record, dict) or not isinstance(record.get("results"), (dict, list)) or "kind" not in record:
        if isinstance(record, dict) and "measured" in record and "id" in record:  # an old reproduction file
            record = {**record, "kind": "reproduction",
                      "results": {"measured": record["measured"], "passed": record.get("passed"),
                                  "verdict": record.get("verdict")}}
        else:
            raise DataError(f"{file} is not a run record (it needs 'kind' and 'results'; "
                            f"records come from poisonlab run, reproduce, scan-data --report ...)")
    return record, file


# --- formatting --------------------------------------------------------------------------------

_RATE_WORDS = ("accuracy", "asr", "rate", "recall", "precision", "tpr", "fpr", "far", "frr", "error",
               "drop", "success")


def _is_rate(key: str) -> bool:
    k = key.lower()
    return any(w in k for w in _RATE_WORDS) and "seconds" not in k and "index" not in k


def pointer(*parts: Any) -> str:
    """A JSON pointer (RFC 6901) to a value of the record: ``pointer("results", "train") ==
    "/results/train"``."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def resolve(record: Any, ptr: str) -> Any:
    """The value at JSON pointer ``ptr`` of ``record`` (KeyError/IndexError when absent)."""
    node = record
    for raw in ptr.split("/")[1:]:
        part = raw.replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def _get(d: Any, *path: Any, default: Any = None) -> Any:
    for p in path:
        if isinstance(d, dict) and p in d:
            d = d[p]
        elif isinstance(d, list) and isinstance(p, int) and -len(d) <= p < len(d):
            d = d[p]
        else:
            return default
    return d


# --- view pieces (plain dicts the template renders) ----------------------------------------------

def V(value: Any, ptr: str | None = None, fmt: str | Callable[[Any], str] = "pct") -> dict[str, Any]:
    """A number from the record: shown formatted, tagged with its pointer and raw value."""
    f = {"pct": pct, "num": num, "int": num, "seconds": seconds}.get(fmt, fmt) if isinstance(fmt, str) else fmt
    raw = value if _finite(value) or isinstance(value, bool) else None
    return {"text": f(value), "key": ptr, "raw": json.dumps(raw), "num": True}


def T(text: Any, cls: str | None = None) -> dict[str, Any]:
    """Text (escaped by the template), optionally with a CSS class (``chip bad`` ...)."""
    return {"text": "" if text is None else str(text), "cls": cls}


def _png_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _size(png: bytes) -> tuple[int, int]:
    """Width and height of a PNG (from its IHDR chunk)."""
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def figure(png: bytes, alt: str, caption: str | None = None) -> dict[str, Any]:
    """A plot, shown at its size in inches (96 CSS pixels an inch; the PNG has 1.5x that)."""
    from .plots import DPI

    w, h = _size(png)
    scale = DPI / 96
    return {"type": "figure", "src": _png_uri(png), "alt": alt, "caption": caption,
            "width": round(w / scale), "height": round(h / scale)}


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]], *, caption: str | None = None,
          numeric: Iterable[int] = (), cls: str | None = None) -> dict[str, Any]:
    numeric = set(numeric)
    cells = [[c if isinstance(c, dict) else T(c) for c in row] for row in rows]
    if len(columns) <= 3:
        cls = f"{cls} narrow" if cls else "narrow"
    return {"type": "table", "columns": list(columns), "rows": cells, "caption": caption,
            "numeric": numeric, "cls": cls}


def para(text: str, cls: str | None = None) -> dict[str, Any]:
    return {"type": "para", "text": text, "cls": cls}


def kv(pairs: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    def cell(v: Any) -> dict[str, Any]:
        return v if isinstance(v, dict) else T(("yes" if v else "no") if isinstance(v, bool) else v)

    return {"type": "kv", "pairs": [(k, cell(v)) for k, v in pairs if v is not None]}


def pre(text: str, summary: str) -> dict[str, Any]:
    return {"type": "pre", "text": text, "summary": summary}


def section(id: str, title: str, blocks: list[dict[str, Any]], lead: str | None = None) -> dict[str, Any]:
    return {"id": id, "title": title, "lead": lead, "blocks": [b for b in blocks if b]}


def card(label: str, value: dict[str, Any] | str, sub: Any = None, tone: str | None = None) -> dict[str, Any]:
    return {"label": label, "value": value if isinstance(value, dict) else T(value), "sub": sub, "tone": tone}


def _sub(*parts: Any) -> list[dict[str, Any]]:
    """A line mixing words and numbers: str -> text, dict -> a number."""
    return [p if isinstance(p, dict) else T(p) for p in parts if p is not None]


# --- pictures ------------------------------------------------------------------------------------

def _thumb(preview: Mapping[str, Any] | None, alt: str) -> dict[str, Any] | None:
    """A gallery tile's content from a stored preview (picture, text snippet or table row)."""
    if not preview:
        return None
    kind = preview.get("kind")
    if kind in ("image", "spectrogram") and preview.get("uint8_b64"):
        from .images import preview_png

        png = preview_png(preview)
        w, h = _size(png)
        return {"kind": "img", "src": _png_uri(png), "alt": alt, "width": w, "height": h,
                "spectrogram": kind == "spectrogram"}
    if kind == "text":
        more = preview.get("length", 0) > len(preview.get("text", ""))
        return {"kind": "text", "text": preview.get("text", "") + ("…" if more else ""),
                "length": preview.get("length")}
    if kind == "row":
        rows = list(zip(preview.get("columns", []), preview.get("values", []), preview.get("z", [])))
        return {"kind": "row", "rows": [(c, num(v), f"{z:+.1f}") for c, v, z in rows],
                "n_columns": preview.get("n_columns")}
    return None


def _trigger_tiles(planted: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Tiles of an attack's trigger: a clean input, the same input triggered, the difference."""
    if not planted:
        return []
    tiles = []
    for key, title in (("clean", "clean input"), ("triggered", "with the trigger"),
                       ("difference", "the trigger (difference)")):
        content = _thumb(planted.get(key), f"planted trigger: {title}")
        if content is not None:
            tiles.append({"content": content, "title": title, "lines": []})
    if planted.get("changed"):
        lines = [f"{c['column']}: {num(c['clean'])} → {num(c['triggered'])}" for c in planted["changed"]]
        tiles.append({"content": None, "title": "columns the trigger sets", "lines": [T(x) for x in lines]})
    return tiles


# --- the record kinds ----------------------------------------------------------------------------

def _class_name(classes: Sequence[str] | None, c: int) -> str:
    return str(classes[c]) if classes is not None and 0 <= c < len(classes) else str(c)


def _models_section(rec: dict[str, Any]) -> dict[str, Any] | None:
    res = rec["results"]
    train = res.get("train") or {}
    if not train and "retrain" not in res:
        return None
    rows, bars = [], []
    labels = {"clean": "clean model", "poisoned": "poisoned model", "model": "model"}
    order = [k for k in ("clean", "poisoned", "model") if k in train] + [k for k in train if k not in labels]
    asr_keys = sorted({k for m in train.values() if isinstance(m, dict) for k in m
                       if k.startswith("attack_success_rate")})
    multi = len(asr_keys) > 1
    for key in order:
        m = train[key]
        base = ("results", "train", key)
        row = [T(labels.get(key, key)), V(m.get("clean_accuracy"), pointer(*base, "clean_accuracy"))]
        for a in asr_keys:
            ck = "clean_model_" + a.replace("attack_success_rate", "asr")
            row += [V(m.get(a), pointer(*base, a)),
                    V(m.get(ck), pointer(*base, ck)) if ck in m else T("—")]
        row.append(V(m.get("epochs_run"), pointer(*base, "epochs_run"), "int") if "epochs_run" in m else T("—"))
        rows.append(row)
        bars.append({"label": labels.get(key, key), "clean_accuracy": m.get("clean_accuracy"),
                     "attack_success_rate": m.get(asr_keys[0]) if asr_keys else None})
    if "retrain" in res:
        m = res["retrain"]
        base = ("results", "retrain")
        row = [T(f"retrained without the {m.get('n_removed', '?')} quarantined"),
               V(m.get("clean_accuracy"), pointer(*base, "clean_accuracy"))]
        for a in asr_keys:
            row += [V(m.get(a), pointer(*base, a)), T("—")]
        row.append(V(m.get("epochs_run"), pointer(*base, "epochs_run"), "int") if "epochs_run" in m else T("—"))
        rows.append(row)
        bars.append({"label": "retrained", "clean_accuracy": m.get("clean_accuracy"),
                     "attack_success_rate": m.get(asr_keys[0]) if asr_keys else None})
    cols = ["model", "clean accuracy"]
    for i, a in enumerate(asr_keys):
        tag = f" (attack {i + 1})" if multi else ""
        cols += [f"attack success rate{tag}", f"clean model's ASR, same inputs{tag}"]
    cols.append("epochs")
    blocks = [table(cols, rows, numeric=range(1, len(cols)))]
    from .plots import model_bars_png

    if asr_keys or len(bars) > 1:
        blocks.append(figure(model_bars_png(bars), "Clean accuracy and attack success rate of each model",
                             "Clean accuracy (solid) and attack success rate (hatched) on the test set; "
                             "ASR is measured on test inputs of other classes, stamped with the trigger."))
    per_class = {k: m.get("per_class_accuracy") for k, m in train.items() if isinstance(m, dict)
                 and m.get("per_class_accuracy")}
    if per_class:
        n = max(len(v) for v in per_class.values())
        prow = [[T(c)] + [V(v[c], pointer("results", "train", k, "per_class_accuracy", c)) if c < len(v) else T("—")
                          for k, v in per_class.items()] for c in range(n)]
        blocks.append(table(["class"] + [labels.get(k, k) for k in per_class], prow,
                            caption="Accuracy per class", numeric=range(1, len(per_class) + 1)))
    n_test = _get(res, "data", "test", "n")
    lead = (f"Measured on the {n_test:,} test inputs." if isinstance(n_test, int) else None)
    return section("models", "Poisoned and clean models", blocks, lead)


def _poison_section(rec: dict[str, Any]) -> dict[str, Any] | None:
    res, sc = rec["results"], rec.get("scenario") or {}
    poison = res.get("poison")
    if not poison:
        return None
    params = {a.get("name"): a.get("params") for a in sc.get("attacks") or [] if isinstance(a, dict)}
    rows = []
    for i, a in enumerate(poison.get("attacks", [])):
        base = ("results", "poison", "attacks", i)
        p = params.get(a.get("attack")) or {}
        shown = ", ".join(f"{k}={v}" for k, v in p.items() if k != "random_state")
        rows.append([T(a.get("attack")), V(a.get("n_poison"), pointer(*base, "n_poison"), "int"),
                     T("—" if a.get("target") is None else a.get("target")), T(shown or "—")])
    blocks = [table(["attack", "poisoned samples", "target class", "parameters"], rows, numeric=[1])]
    for i, planted in enumerate(poison.get("triggers") or []):
        tiles = _trigger_tiles(planted)
        if tiles:
            name = _get(poison, "attacks", i, "attack", default=f"attack {i + 1}")
            blocks.append({"type": "gallery", "title": f"The planted trigger ({name})", "tiles": tiles,
                           "cls": "triggers"})
    n, total = poison.get("n_poison"), poison.get("n_train")
    lead = None
    if isinstance(n, int) and isinstance(total, int) and total:
        lead = f"{n:,} of the {total:,} training samples are poisoned ({pct(n / total)})."
    return section("poison", "The poison", blocks, lead)


def _detection_blocks(evaluation: Mapping[str, Any], evidence: Mapping[str, Any] | None, base: tuple,
                      classes: Sequence[str] | None, class_reports: Mapping[str, Any] | None = None,
                      n_flagged: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """The scan's tables, plots and samples (shared by run and scan records)."""
    from .plots import roc_png, score_histograms_png

    blocks: list[dict[str, Any]] = []
    if evaluation:
        rows = []
        for name, m in evaluation.items():
            b = (*base, "evaluation", name)
            rows.append([T(name), V(m.get("n_flagged"), pointer(*b, "n_flagged"), "int"),
                         V(m.get("precision"), pointer(*b, "precision")), V(m.get("recall"), pointer(*b, "recall")),
                         V(m.get("f1"), pointer(*b, "f1"), "num"), V(m.get("auroc"), pointer(*b, "auroc"), "num"),
                         V(m.get("tpr_at_fpr_1pct"), pointer(*b, "tpr_at_fpr_1pct"))])
        blocks.append(table(["detector", "flagged", "precision", "recall", "F1", "AUROC", "recall at 1% FPR"],
                            rows, numeric=range(1, 7),
                            caption="Against the ground truth (the planted poison mask). The last row is "
                                    "what was quarantined."))
    elif n_flagged:
        rows = [[T(name), V(v, pointer(*base, "n_flagged", name), "int")] for name, v in n_flagged.items()]
        blocks.append(table(["detector", "flagged"], rows, numeric=[1]))
    det = (evidence or {}).get("detectors") or {}
    dists = {k: v["distribution"] for k, v in det.items() if v.get("distribution")}
    if dists:
        blocks.append(figure(score_histograms_png(dists), "Score distribution of each detector",
                             "Scores of every training sample, per detector" +
                             (": planted poisons (dashed, vermillion) against clean samples (solid, blue)"
                              if (evidence or {}).get("ground_truth") else "") +
                             "; the dotted line is the lowest flagged score."))
    rocs = {k: v["roc"] for k, v in det.items() if v.get("roc")}
    if rocs:
        aurocs = {k: _get(evaluation, k, "auroc") for k in rocs}
        blocks.append(figure(roc_png(rocs, aurocs), "ROC curve of each detector",
                             "How many poisons each detector's ranking catches for each fraction of clean "
                             "samples it also flags."))
    top = (evidence or {}).get("top") or []
    if top:
        items = []
        for row in top:
            badges = []
            if row.get("poison") is True:
                badges.append(T("planted poison", "chip bad"))
            elif row.get("poison") is False:
                badges.append(T("clean", "chip good"))
            flagged = row.get("flagged_by") or []
            lines = [T(f"label {row.get('label_name', row.get('label'))}"),
                     T("flagged by " + ", ".join(flagged) if flagged else "flagged by none (ranked high)")]
            items.append({"content": _thumb(row.get("preview"), f"sample {row.get('id')}"),
                          "title": f"#{row['rank']} {row.get('id')}", "badges": badges, "lines": lines,
                          "score": row.get("score"), "tone": "bad" if row.get("poison") else None})
        blocks.append({"type": "gallery", "title": f"The {len(top)} most suspicious samples", "tiles": items,
                       "cls": "samples",
                       "caption": "Ranked by the combined score; each with the detectors that flagged it" +
                                  (" and whether it was planted" if (evidence or {}).get("ground_truth") else "") + "."})
    per_class = (evidence or {}).get("per_class") or []
    if per_class:
        names = list(per_class[0].get("n_flagged", {}))
        gt = "n_poison" in per_class[0]
        rows = []
        for i, r in enumerate(per_class):
            b = (*base, "evidence", "per_class", i)
            row = [T(r.get("name", r.get("class"))), V(r.get("n"), pointer(*b, "n"), "int")]
            if gt:
                row.append(V(r.get("n_poison"), pointer(*b, "n_poison"), "int"))
            row.append(V(r.get("n_quarantined"), pointer(*b, "n_quarantined"), "int"))
            if gt:
                row.append(V(r.get("n_poison_quarantined"), pointer(*b, "n_poison_quarantined"), "int"))
            row += [V(r["n_flagged"].get(n), pointer(*b, "n_flagged", n), "int") for n in names]
            rows.append(row)
        cols = ["class", "samples"] + (["planted"] if gt else []) + ["quarantined"] + \
            (["planted & quarantined"] if gt else []) + [f"flagged: {n}" for n in names]
        blocks.append(table(cols, rows, numeric=range(1, len(cols)), caption="Per class"))
    for name, rep in (class_reports or {}).items():
        if not isinstance(rep, dict) or not rep:
            continue
        keys = sorted({k for v in rep.values() if isinstance(v, dict) for k in v})
        rows = [[T(_class_name(classes, int(c)) if str(c).isdigit() else c)] +
                [V(v.get(k), pointer(*base, "class_reports", name, c, k), "num") if not isinstance(v.get(k), str)
                 else T(v.get(k)) for k in keys] for c, v in rep.items() if isinstance(v, dict)]
        blocks.append(table(["class"] + [k.replace("_", " ") for k in keys], rows, numeric=range(1, len(keys) + 1),
                            caption=f"{name} per class"))
    return blocks


def _features_text(rep: Mapping[str, Any]) -> str:
    """Where the scanned features came from, in words."""
    if not rep:
        return ""
    source = {"model": "the trained model"}.get(rep.get("source"), rep.get("source", "n/a"))
    extra = ", ".join(x for x in (f"layer {rep['layer']}" if rep.get("layer") else None,
                                  f"{rep['dim']:,} dimensions" if isinstance(rep.get("dim"), int) else None) if x)
    return f"Features from {source}" + (f" ({extra})." if extra else ".")


def _scan_section(rec: dict[str, Any]) -> dict[str, Any] | None:
    scan = rec["results"].get("scan")
    if not scan:
        return None
    rep = scan.get("representation") or {}
    lead = (f"Detectors: {', '.join(scan.get('detectors', []))}. " + _features_text(rep)
            + f" Quarantined: {scan.get('n_quarantined', 'n/a')} samples.")
    blocks = _detection_blocks(scan.get("evaluation") or {}, scan.get("evidence"), ("results", "scan"), None,
                               n_flagged=scan.get("n_flagged"))
    return section("scan", "Data scan", blocks, lead)


def _inspect_section(rec: dict[str, Any]) -> dict[str, Any] | None:
    res = rec["results"]
    inspect = res.get("inspect")
    if not inspect:
        return None
    from .plots import anomaly_index_png

    blocks = []
    target = _get(res, "poison", "attacks", 0, "target")
    planted = _get(res, "poison", "triggers", 0)
    for name, r in inspect.items():
        base = ("results", "inspect", name)
        scores = r.get("scores") or []
        flagged = r.get("flagged") or []
        rows = [[T(f"{c} (the attack's target)" if c == target else c), V(s, pointer(*base, "scores", c), "num"),
                 T("flagged", "chip bad") if c in flagged else T("—")] for c, s in enumerate(scores)]
        verdict = r.get("verdict", "")
        blocks.append(para(f"{name}: {verdict}" + (f" (classes {', '.join(map(str, flagged))})" if flagged else "")
                           + (". The attack's target is among them." if r.get("target_flagged") else
                              (". The attack's target is not flagged." if r.get("target_flagged") is False else ".")),
                           "verdict-line " + ("bad" if flagged else "good")))
        if scores:
            blocks.append(figure(anomaly_index_png(scores, flagged, [str(c) for c in range(len(scores))]),
                                 f"{name}: score per class",
                                 "Each class's score: the anomaly index of its reversed trigger (how much "
                                 "smaller than the others' it is)" + _gap_clause(r.get("min_gap"), ", capped where "
                                 "the mask is not {}x smaller than every other class's") + "; a class above 2 "
                                 "is flagged."))
            blocks.append(table(["class", "score (anomaly index, gap-confirmed)", "flagged"], rows, numeric=[1]))
        triggers = r.get("triggers") or []
        if triggers:
            items = []
            if planted and planted.get("difference"):
                items.append({"content": _thumb(planted["difference"], "the planted trigger"),
                              "title": "planted trigger", "badges": [T("ground truth", "chip")], "lines": []})
            for t in triggers:
                c = t.get("class")
                items.append({"content": _thumb(t.get("trigger"), f"reversed trigger of class {c}"),
                              "title": f"class {c}", "tone": "bad" if c in flagged else None,
                              "badges": [T("flagged", "chip bad")] if c in flagged else [],
                              "lines": [_sub("mask L1 ", V(t.get("l1"), None, "num"))]})
            blocks.append({"type": "gallery", "title": "Reversed triggers beside the planted one", "tiles": items,
                           "cls": "triggers",
                           "caption": "Each class's reversed trigger (mask × pattern, scaled to its own range); "
                                      "a backdoor's target needs a small one."})
    return section("inspect", "Model inspection", blocks)


def _monitor_section(rec: dict[str, Any]) -> dict[str, Any] | None:
    mon = rec["results"].get("monitor")
    if not mon:
        return None
    rows = []
    for name, m in mon.items():
        base = ("results", "monitor", name)
        caught = (1 - m["far"]) if _finite(m.get("far")) else None
        rows.append([T(name), V(m.get("threshold"), pointer(*base, "threshold"), "num"),
                     V(m.get("frr"), pointer(*base, "frr")),
                     V(m.get("far"), pointer(*base, "far")) if "far" in m else T("—"),
                     T(pct(caught)) if caught is not None else T("—")])
    return section("monitor", "Monitoring live inputs", [table(
        ["detector", "threshold", "clean inputs flagged (FRR)", "triggered inputs missed (FAR)",
         "triggered inputs caught"], rows, numeric=range(1, 5))],
        "Fitted on half of the test inputs, measured on the other half, clean and triggered.")


def _details_section(rec: dict[str, Any], extra: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    env = rec.get("environment") or {}
    git = env.get("git") or {}
    versions = env.get("versions") or {}
    timings = rec.get("timings") or {}
    blocks = list(extra or [])
    steps = timings.get("steps") if isinstance(timings.get("steps"), dict) else None
    flat = {k: v for k, v in (steps or timings).items() if _finite(v)}
    if _finite(timings.get("total")):
        flat.setdefault("total", timings["total"])
    if flat:
        blocks.append(table(["step", "time"], [[T(k), T(seconds(v))] for k, v in flat.items()], numeric=[1],
                            caption="Timings"))
    blocks.append(kv([
        ("record", f"{rec.get('kind')} (version {rec.get('record_version', 'n/a')}), created {rec.get('created', 'n/a')}"),
        ("fingerprint", rec.get("fingerprint")),
        ("git commit", (git.get("commit") or "n/a") + (" (uncommitted changes)" if git.get("dirty") else "")
         if git else "not run from a checkout"),
        ("command", " ".join(env.get("argv") or []) or rec.get("command")),
        ("platform", env.get("platform")),
        ("threads", env.get("threads")),
        ("versions", ", ".join(f"{k} {v}" for k, v in versions.items()) or None),
    ]))
    if env.get("data_files"):
        blocks.append(table(["data file", "sha256"], [[T(k), T(v, "mono")] for k, v in env["data_files"].items()]))
    if rec.get("artifacts"):
        blocks.append(table(["artifact", "kind", "sha256"],
                            [[T(a.get("path")), T(a.get("kind")), T(a.get("sha256"), "mono")] for a in rec["artifacts"]]))
    if rec.get("scenario") is not None:
        blocks.append(pre(json.dumps(rec["scenario"], indent=2, sort_keys=False, default=str), "The resolved scenario"))
    return section("details", "Run details", blocks)


_ARMS = ("honest", "undefended", "defended")


def _retraining_curves(rec: dict[str, Any]) -> dict[str, dict[str, dict[str, list]]] | None:
    """Per arm, the targeted error and accuracy per round (mean and sd over seeds) that a
    retraining run (``results.retraining.arms``) or R25's seeds (``per_seed[*].curves``) hold."""
    import numpy as np

    arms = _get(rec, "results", "retraining", "arms")
    if isinstance(arms, dict) and all(a in arms for a in _ARMS):
        return {a: {k: {"mean": [r[k] for r in arms[a]], "std": None} for k in ("targeted_error", "accuracy")}
                for a in _ARMS}
    seeds = [s.get("curves") for s in rec.get("per_seed") or []]
    cells = _get(rec, "results", "cells", default=[]) or []
    if not seeds and cells:  # a grid of retraining runs (one per seed): its cells' arms
        cell_arms = [_get(c, "results", "retraining", "arms") for c in cells]
        if all(isinstance(a, dict) and all(k in a for k in _ARMS) for a in cell_arms):
            seeds = [{a: {k: [r[k] for r in arms[a]] for k in ("targeted_error", "accuracy")} for a in _ARMS}
                     for arms in cell_arms]
    if seeds and all(isinstance(c, dict) and all(a in c for a in _ARMS) for c in seeds):
        out = {}
        for a in _ARMS:
            out[a] = {}
            for k in ("targeted_error", "accuracy"):
                v = np.array([c[a][k] for c in seeds], dtype=float)
                out[a][k] = {"mean": v.mean(axis=0).tolist(),
                             "std": v.std(axis=0, ddof=1).tolist() if len(v) > 1 else None}
        return out
    return None


def _retraining_blocks(rec: dict[str, Any]) -> list[dict[str, Any]]:
    """The targeted error and overall accuracy per round of the honest, undefended and defended
    arms (a plot, and for one run the per-round table)."""
    from .plots import sweep_png

    curves = _retraining_curves(rec)
    if curves is None:
        return []
    n = len(curves["honest"]["accuracy"]["mean"])
    x = list(range(n))
    panels = {title: {"x": x, "series": {arm: curves[arm][key] for arm in _ARMS}}
              for title, key in (("targeted error", "targeted_error"), ("overall accuracy", "accuracy"))}
    blocks = [figure(sweep_png(panels, xlabel="round", log_x=False),
                     "targeted error and overall accuracy per retraining round, honest / undefended / defended",
                     "Round 0 is the seed model. Honest: the group never contributes; undefended: everything "
                     "is admitted; defended: reputation + quarantine. Several seeds: mean (band ± one sd).")]
    arms = _get(rec, "results", "retraining", "arms")
    if isinstance(arms, dict):
        base = ("results", "retraining", "arms")
        rows = [[T(str(i))] + [V(arms[a][i][k], pointer(*base, a, i, k)) for k in ("targeted_error", "accuracy")
                               for a in _ARMS]
                + [V(arms["undefended"][i]["attack_admitted"], pointer(*base, "undefended", i, "attack_admitted"), "num"),
                   V(arms["defended"][i]["attack_admitted"], pointer(*base, "defended", i, "attack_admitted"), "num"),
                   V(arms["defended"][i].get("attack_held", 0),  # round 0, the seed model, holds nothing
                     pointer(*base, "defended", i, "attack_held") if "attack_held" in arms["defended"][i] else None,
                     "num")]
                for i in range(n)]
        blocks.append(table(["round", "targeted error honest", "undefended", "defended", "accuracy honest",
                             "undefended", "defended", "group samples admitted (undefended)", "(defended)",
                             "held in quarantine"], rows, numeric=range(1, 10), cls="compact"))
    return blocks


def _retraining_section(rec: dict[str, Any]) -> dict[str, Any] | None:
    blocks = _retraining_blocks(rec)
    return section("retraining", "Continuous retraining", blocks) if blocks else None


def _run_view(rec: dict[str, Any]) -> dict[str, Any]:
    res, sc = rec["results"], rec.get("scenario") or {}
    train = res.get("train") or {}
    poisoned, clean = train.get("poisoned"), train.get("clean")
    model = poisoned or train.get("model") or {}
    mkey = "poisoned" if poisoned else "model"
    asr_key = "attack_success_rate" if "attack_success_rate" in model else next(
        (k for k in model if k.startswith("attack_success_rate")), None)
    cards, why = [], []
    headline = sc.get("name", "run")
    tone = None
    if model:
        acc = V(model.get("clean_accuracy"), pointer("results", "train", mkey, "clean_accuracy"))
        sub = _sub("clean model ", V(clean.get("clean_accuracy"), pointer("results", "train", "clean", "clean_accuracy"))) \
            if clean else None
        cards.append(card("Clean accuracy" + (" (poisoned model)" if poisoned else ""), acc, sub))
    if asr_key:
        cm_key = "clean_model_" + asr_key.replace("attack_success_rate", "asr")
        asr = V(model.get(asr_key), pointer("results", "train", mkey, asr_key))
        cm = V(model.get(cm_key), pointer("results", "train", mkey, cm_key)) if cm_key in model else None
        cards.append(card("Attack success rate", asr, _sub("clean model ", cm, " on the same inputs") if cm else None))
        line = _sub("The poisoned model follows the trigger on ", asr, " of triggered test inputs")
        line += _sub("; the clean model on ", cm, " of the same inputs.") if cm else _sub(".")
        why.append(line)
        if clean and _finite(model.get("clean_accuracy")) and _finite(clean.get("clean_accuracy")):
            diff = (model["clean_accuracy"] - clean["clean_accuracy"]) * 100
            why.append(_sub("Its clean accuracy is ", acc, " against ",
                            V(clean["clean_accuracy"], pointer("results", "train", "clean", "clean_accuracy")),
                            f" for the clean model ({diff:+.1f} points): an ordinary accuracy check "
                            f"{'does not tell them apart' if abs(diff) < 1 else 'shows the difference'}."))
        headline = _sub("ASR ", asr) + (_sub(" (clean model ", cm, ")") if cm else [])
    q = _get(res, "scan", "evaluation", "combined (quarantine)")
    if q:
        base = ("results", "scan", "evaluation", "combined (quarantine)")
        rec_v, prec_v = V(q.get("recall"), pointer(*base, "recall")), V(q.get("precision"), pointer(*base, "precision"))
        cards.append(card("Poisons quarantined", rec_v, _sub("precision ", prec_v)))
        why.append(_sub(f"The data scan quarantined {q.get('n_flagged', 'n/a')} samples: ", rec_v,
                        f" of the {q.get('n_poison', 'n/a')} planted poisons (recall), precision ", prec_v, "."))
    elif res.get("scan"):
        why.append(_sub(f"The data scan quarantined {res['scan'].get('n_quarantined', 'n/a')} samples (no ground truth)."))
    if isinstance(_get(res, "scan", "verdict"), str):  # the scan's own words, when it gives them
        why.append(_sub("The scan says: " + res["scan"]["verdict"]))
    rt = res.get("retrain")
    if rt:
        ra = V(rt.get("clean_accuracy"), pointer("results", "retrain", "clean_accuracy"))
        if asr_key and asr_key in rt:
            rasr = V(rt.get(asr_key), pointer("results", "retrain", asr_key))
            cards.append(card("ASR after retraining", rasr, _sub("clean accuracy ", ra)))
            why.append(_sub(f"Retrained without the {rt.get('n_removed', 'n/a')} quarantined samples: ASR ", rasr,
                            ", clean accuracy ", ra, "."))
            headline = headline + _sub(" → ", rasr, " after quarantine and retraining")
        else:
            why.append(_sub(f"Retrained without the {rt.get('n_removed', 'n/a')} quarantined samples: clean accuracy ", ra, "."))
    for name, r in (res.get("inspect") or {}).items():
        flagged = r.get("flagged") or []
        chip = T(r.get("verdict", ""), "chip bad" if flagged else "chip good")
        text = f"{name}: " + (f"class(es) {', '.join(map(str, flagged))} need an abnormally small trigger" if flagged
                              else "no class needs an abnormally small trigger")
        if r.get("target_flagged") is not None:
            text += "; the attack's target " + ("is" if r["target_flagged"] else "is not") + " among them"
        why.append([chip, T(" " + text + ".")])
        cards.append(card(name.replace("_", " ").title(), T(("class " + ", ".join(map(str, flagged))) if flagged
                                                              else "nothing flagged", "word"),
                          r.get("verdict"), "bad" if flagged else "good"))
    for name, m in (res.get("monitor") or {}).items():
        base = ("results", "monitor", name)
        line = _sub(f"{name}: flags ", V(m.get("frr"), pointer(*base, "frr")), " of clean inputs")
        if "far" in m:
            line += _sub(" and misses ", V(m.get("far"), pointer(*base, "far")), " of triggered ones")
        why.append(line + _sub("."))
    if not isinstance(headline, list):
        headline = _sub(headline)
    sections = [s for s in (_retraining_section(rec), _models_section(rec), _poison_section(rec), _scan_section(rec),
                            _inspect_section(rec), _monitor_section(rec)) if s]
    sections.append(_details_section(rec))
    ds = sc.get("dataset")
    ds_name = ds.get("name") or ds.get("path") if isinstance(ds, dict) else ds
    attacks = ", ".join(a.get("name", "?") for a in sc.get("attacks") or [] if isinstance(a, dict))
    return {"title": sc.get("name", "run"), "subtitle": sc.get("description"),
            "facts": [f for f in (f"dataset {ds_name}" if ds_name else None, f"attack {attacks}" if attacks else None,
                                  f"seed {', '.join(map(str, sc.get('seeds', [])))}" if sc.get("seeds") else None) if f],
            "headline": {"text": headline, "why": why, "cards": cards, "tone": tone}, "sections": sections}


# grid ------------------------------------------------------------------------------------------

def _cell_params(name: str) -> dict[str, str]:
    """The swept values of a grid cell, from its name (``... poison_rate=0.05 seed=0``)."""
    out = {}
    for tok in str(name).split():
        k, sep, v = tok.partition("=")
        if sep and k != "seed":
            out[k] = v
    return out


def _as_float(v: Any) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _heatmap_block(grid: Mapping[str, Mapping[str, Any]], title: str, caption: str) -> dict[str, Any]:
    """A figure of ``{row: {column: rate or {"mean": rate}}}`` as a heat map."""
    from .plots import heatmap_png

    rows = list(grid)
    cols = list(dict.fromkeys(c for r in grid.values() for c in r))
    vals = [[(lambda v: v.get("mean") if isinstance(v, dict) else v)(grid[r].get(c)) for c in cols] for r in rows]
    return figure(heatmap_png(rows, cols, vals), title, caption)


def _federated_grid_view(rec: dict[str, Any]) -> dict[str, Any]:
    """A grid of federated cells: the aggregator x attack accuracy heat map (mean over seeds),
    then every cell's accuracy, backdoor accuracy and exclusion precision / recall."""
    sc = rec.get("scenario") or {}
    cells = _get(rec, "results", "cells", default=[]) or []
    acc: dict[str, dict[str, list[float]]] = {}
    rows = []
    for i, cell in enumerate(cells):
        fed = _get(cell, "results", "federate", default={}) or {}
        p = _cell_params(cell.get("name", ""))
        row_key, col_key = p.get("aggregator", sc.get("name", "run")), p.get("attack", "—")
        if _finite(fed.get("accuracy")):
            acc.setdefault(row_key, {}).setdefault(col_key, []).append(fed["accuracy"])
        base = ("results", "cells", i, "results", "federate")
        rows.append([T(cell.get("name")), V(fed.get("accuracy"), pointer(*base, "accuracy")),
                     V(fed.get("backdoor_accuracy"), pointer(*base, "backdoor_accuracy")),
                     V(fed.get("detection_precision"), pointer(*base, "detection_precision")),
                     V(fed.get("detection_recall"), pointer(*base, "detection_recall"))])
    means = {r: {c: sum(v) / len(v) for c, v in row.items()} for r, row in acc.items()}
    blocks = [_heatmap_block(means, f"{sc.get('name', 'grid')}: final accuracy by aggregator and attack",
                             "Final test accuracy of the global model, mean over seeds.")] if means else []
    table_block = table(["cell", "accuracy", "backdoor accuracy", "exclusion precision", "exclusion recall"], rows,
                        numeric=[1, 2, 3, 4])
    fed_spec = sc.get("federation") or {}
    facts = [f"{len(cells)} cells", f"{fed_spec.get('clients')} clients, {fed_spec.get('rounds')} rounds"]
    return {"title": sc.get("name", "grid"), "subtitle": sc.get("description"), "facts": facts,
            "headline": {"text": _sub(f"{len(cells)} federated cells"), "why": [], "cards": [], "tone": None},
            "sections": [section("heatmap", "Accuracy by aggregator and attack", blocks),
                         section("cells", "Every cell", [table_block]), _details_section(rec)]}


def _retraining_grid_view(rec: dict[str, Any]) -> dict[str, Any]:
    """Continuous retraining over several seeds: the per-round curves (mean, band of one sd) and
    one row per seed with the last round's numbers."""
    cells = _get(rec, "results", "cells", default=[]) or []
    rows = []
    last = []
    for i, cell in enumerate(cells):
        arms = _get(cell, "results", "retraining", "arms")
        n = len(arms["defended"]) - 1
        base = ("results", "cells", i, "results", "retraining", "arms")
        last.append({a: arms[a][n] for a in _ARMS})
        rows.append([T(cell.get("name"))] + [V(arms[a][n]["targeted_error"], pointer(*base, a, n, "targeted_error"))
                                             for a in _ARMS]
                    + [V(arms[a][n]["accuracy"], pointer(*base, a, n, "accuracy")) for a in _ARMS])
    mean = {a: {k: sum(x[a][k] for x in last) / len(last) for k in ("targeted_error", "accuracy")} for a in _ARMS}
    tone = "good" if mean["defended"]["targeted_error"] <= mean["honest"]["targeted_error"] + 0.05 else "bad"
    cards = [card("Targeted error, undefended", T(pct(mean["undefended"]["targeted_error"]), "num"),
                  f"honest run {pct(mean['honest']['targeted_error'])}", "bad"),
             card("Targeted error, defended", T(pct(mean["defended"]["targeted_error"]), "num"),
                  "reputation + quarantine", tone)]
    blocks = _retraining_blocks(rec) + [table(
        ["cell", "targeted error honest", "undefended", "defended", "accuracy honest", "undefended", "defended"],
        rows, numeric=[1, 2, 3, 4, 5, 6])]
    text = (f"Last round, mean over {len(cells)} seed(s): the group's targeted error "
            f"{pct(mean['undefended']['targeted_error'])} without defence, {pct(mean['defended']['targeted_error'])} "
            f"with reputation + quarantine (honest run {pct(mean['honest']['targeted_error'])})")
    return {"title": f"Continuous retraining: {_get(rec, 'scenario', 'name', default='grid')}",
            "subtitle": f"{len(cells)} seed(s)", "facts": [],
            "headline": {"text": _sub(text), "why": [], "cards": cards, "tone": tone},
            "sections": [section("retraining", "Continuous retraining", blocks), _details_section(rec)]}


def _grid_view(rec: dict[str, Any]) -> dict[str, Any]:
    from ..runs.report_data import mean_std_by
    from .plots import sweep_png

    sc = rec.get("scenario") or {}
    cells = _get(rec, "results", "cells", default=[]) or []
    if any(_get(c, "results", "federate") for c in cells):
        return _federated_grid_view(rec)
    if cells and all(_get(c, "results", "retraining") for c in cells):
        return _retraining_grid_view(rec)
    swept = [k.rsplit(".", 1)[-1] for k in (_get(sc, "sweep", "params", default={}) or {})]
    info = []
    for i, cell in enumerate(cells):
        r = cell.get("results") or {}
        model = _get(r, "train", "poisoned") or _get(r, "train", "model") or {}
        info.append({"i": i, "name": cell.get("name"), "seed": cell.get("seed"),
                     "attack": _get(r, "poison", "attacks", 0, "attack", default="—"),
                     "detector": ", ".join(_get(r, "scan", "detectors", default=[]) or []) or "—",
                     "params": _cell_params(cell.get("name", "")), "model": model,
                     "mkey": "poisoned" if _get(r, "train", "poisoned") else "model",
                     "q": _get(r, "scan", "evaluation", "combined (quarantine)") or {},
                     "det_auroc": {d: _get(r, "scan", "evaluation", d, "auroc") for d in _get(r, "scan", "detectors", default=[]) or []},
                     "retrain": r.get("retrain")})
    has_retrain = any(c["retrain"] for c in info)
    has_scan = any(c["q"] for c in info)
    xkey = next((k for k in swept if "rate" in k), None) or next(
        (k for k in swept if all(_as_float(c["params"].get(k)) is not None for c in info)), None)
    blocks_sweep, why = [], []
    seeds_all = sorted({c["seed"] for c in info}, key=str)
    if xkey and info:
        panels, recall_panels = {}, {}
        for attack in dict.fromkeys(c["attack"] for c in info):
            cs = [c for c in info if c["attack"] == attack and _as_float(c["params"].get(xkey)) is not None]
            if not cs:
                continue
            xs = [_as_float(c["params"][xkey]) for c in cs]
            series = {}
            dets_here = list(dict.fromkeys(c["detector"] for c in cs))
            getters = [("attack success rate", None, lambda c: c["model"].get("attack_success_rate")),
                       ("clean accuracy", None, lambda c: c["model"].get("clean_accuracy")),
                       ("clean model's ASR", None, lambda c: c["model"].get("clean_model_asr"))]
            for det in dets_here:  # retraining depends on what each detector quarantined
                label = "ASR after retraining" + (f" ({det})" if len(dets_here) > 1 else "")
                getters.append((label, det, lambda c: _get(c["retrain"], "attack_success_rate")))
            for label, det, getter in getters:
                sel = [(x, c) for x, c in zip(xs, cs) if det is None or c["detector"] == det]
                ys = [getter(c) for _, c in sel]
                if all(y is None for y in ys):
                    continue
                g = mean_std_by([x for x, _ in sel], ys)
                series[label] = {"mean": g["mean"], "std": g["std"],
                                 "points": [(x, y) for (x, _), y in zip(sel, ys) if y is not None]}
            if series:
                g = mean_std_by(xs, xs)
                panels[attack] = {"x": g["x"], "series": series,
                                  "x_labels": [pct(x) if "rate" in xkey else f"{x:g}" for x in g["x"]]}
                asr = series.get("attack success rate")
                if asr:
                    top_x = g["x"][-1]
                    cm = series.get("clean model's ASR")
                    xf = (lambda v: f"{xkey.replace('_', ' ')} {pct(v)}") if "rate" in xkey else \
                        (lambda v: f"{xkey.replace('_', ' ')} {v:g}")
                    why.append(_sub(f"{attack}: ASR {pct(asr['mean'][-1])} at {xf(top_x)}"
                                    + (f" (clean model {pct(cm['mean'][-1])})" if cm else "")
                                    + (f"; {pct(asr['mean'][0])} at {xf(g['x'][0])}" if len(g["x"]) > 1 else "")
                                    + (" (mean over seeds)" if len(seeds_all) > 1 else "") + "."))
            if has_scan:
                rs = {}
                for det in dict.fromkeys(c["detector"] for c in cs):
                    dc = [c for c in cs if c["detector"] == det]
                    ys = [c["q"].get("recall") for c in dc]
                    if any(y is not None for y in ys):
                        g = mean_std_by([_as_float(c["params"][xkey]) for c in dc], ys)
                        rs[det] = {"mean": g["mean"], "std": g["std"]}
                if rs:
                    recall_panels[attack] = {"x": g["x"], "series": rs,
                                             "x_labels": [pct(x) if "rate" in xkey else f"{x:g}" for x in g["x"]]}
        if panels:
            blocks_sweep.append(figure(sweep_png(panels, xlabel=xkey.replace("_", " ")),
                                       f"ASR and clean accuracy against {xkey}, per attack",
                                       "Mean over seeds (band: ± one standard deviation; dots: each seed). "
                                       "The clean model's ASR is measured on the same triggered inputs."))
        if recall_panels:
            blocks_sweep.append(figure(sweep_png(recall_panels, xlabel=xkey.replace("_", " "),
                                                 ylabel="poisons quarantined"),
                                       f"Quarantine recall against {xkey}, per attack and detector",
                                       "Fraction of the planted poisons each cell's scan quarantined (one line per "
                                       "detector; mean over seeds)."))
    rows = []
    for c in info:
        base = ("results", "cells", c["i"], "results")
        row = [T(c["attack"]), T(c["detector"])] + [T(c["params"].get(k, "—")) for k in swept] + [T(c["seed"])]
        row += [V(c["model"].get("clean_accuracy"), pointer(*base, "train", c["mkey"], "clean_accuracy")),
                V(c["model"].get("attack_success_rate"), pointer(*base, "train", c["mkey"], "attack_success_rate")),
                V(c["model"].get("clean_model_asr"), pointer(*base, "train", c["mkey"], "clean_model_asr"))]
        if has_scan:
            qb = (*base, "scan", "evaluation", "combined (quarantine)")
            row += [V(c["q"].get("recall"), pointer(*qb, "recall")), V(c["q"].get("precision"), pointer(*qb, "precision")),
                    V(c["q"].get("auroc"), pointer(*qb, "auroc"), "num")]
        if has_retrain:
            row.append(V(_get(c["retrain"], "attack_success_rate"), pointer(*base, "retrain", "attack_success_rate")))
        rows.append(row)
    cols = ["attack", "detector"] + [k.replace("_", " ") for k in swept] + ["seed", "clean accuracy", "ASR",
                                                                          "clean model's ASR"]
    if has_scan:
        cols += ["quarantine recall", "precision", "AUROC"]
    if has_retrain:
        cols.append("ASR after retraining")
    first_num = 3 + len(swept)
    table_block = table(cols, rows, numeric=range(first_num, len(cols)), cls="compact")
    attacks = list(dict.fromkeys(c["attack"] for c in info))
    dets = [d for d in dict.fromkeys(c["detector"] for c in info) if d != "—"]
    seeds = sc.get("seeds") or sorted({c["seed"] for c in info})
    n_cells = rec.get("n_cells", len(cells))
    desc = " × ".join(x for x in (f"{len(attacks)} attack{'s' * (len(attacks) != 1)}",
                                  f"{len(dets)} detector{'s' * (len(dets) != 1)}" if dets else None,
                                  " × ".join(f"{len(v)} {k.rsplit('.', 1)[-1].replace('_', ' ')}s"
                                             for k, v in (_get(sc, "sweep", "params", default={}) or {}).items()) or None,
                                  f"{len(seeds)} seed{'s' * (len(seeds) != 1)}") if x)
    cards = [card("Cells", V(n_cells, pointer("n_cells"), "int"),
                  _sub(V(rec.get("n_cached"), pointer("n_cached"), "int"), " from the cache") if "n_cached" in rec else None)]
    sections = []
    if blocks_sweep:
        sections.append(section("sweep", f"Against {xkey.replace('_', ' ')}", blocks_sweep))
    sections.append(section("cells", "Every cell", [table_block], f"{len(rows)} cells, in the order they were run."))
    sections.append(_details_section(rec))
    return {"title": sc.get("name", "grid"), "subtitle": sc.get("description"),
            "facts": [f"{n_cells} cells: {desc}"],
            "headline": {"text": _sub(f"{n_cells} cells: {desc}"), "why": why, "cards": cards, "tone": None},
            "sections": sections}


# reproduction ------------------------------------------------------------------------------------

def _stat_cell(stat: Any, ptr: str, key: str) -> dict[str, Any]:
    """A mean (± sd over seeds) from a reproduction's measured numbers."""
    fmt = "pct" if _is_rate(key) else "num"
    if isinstance(stat, dict) and isinstance(stat.get("mean"), (int, float)):
        v = V(stat["mean"], ptr + "/mean", fmt)
        if stat.get("n", 1) > 1 and _finite(stat.get("std")):
            v = dict(v, suffix=f" ± {(pct if fmt == 'pct' else num)(stat['std'])}")
        return v
    if _finite(stat):
        return V(stat, ptr, fmt)
    return T(stat if not isinstance(stat, (dict, list)) else json.dumps(stat))


def _reproduction_view(rec: dict[str, Any]) -> dict[str, Any]:
    from .plots import sweep_png

    measured = rec.get("measured") if "measured" in rec else _get(rec, "results", "measured", default={})
    mroot = "/measured" if "measured" in rec else "/results/measured"
    passed = rec.get("passed", _get(rec, "results", "passed"))
    verdict = rec.get("verdict", _get(rec, "results", "verdict", default=""))
    rid = rec.get("id") or _get(rec, "scenario", "reproduction", default="reproduction")
    cards, blocks_m = [], []
    flat = {k: v for k, v in (measured or {}).items() if not k.startswith("by_")}
    for k, v in list(flat.items())[:6]:
        c = _stat_cell(v, f"{mroot}/{pointer(k)[1:]}", k)
        cards.append(card(k.replace("_", " "), c, (f"mean ± sd over {v['n']} seeds" if isinstance(v, dict) and v.get("n", 1) > 1
                                                   else None)))
    if flat:
        blocks_m.append(table(["measured", "value (mean ± sd over seeds)"],
                              [[T(k.replace("_", " ")), _stat_cell(v, f"{mroot}/{pointer(k)[1:]}", k)] for k, v in flat.items()],
                              numeric=[1]))
    for group in ("by_rate", "by_count", "by_setting"):
        g = (measured or {}).get(group)
        if not isinstance(g, dict) or not g:
            continue
        keys = list(dict.fromkeys(k for v in g.values() if isinstance(v, dict) for k in v))
        rows = [[T(name)] + [_stat_cell(v.get(k), f"{mroot}/{group}/{pointer(name)[1:]}/{pointer(k)[1:]}", k)
                             if isinstance(v, dict) and k in v else T("—") for k in keys] for name, v in g.items()]
        label = {"by_rate": "poison rate", "by_count": "poisons", "by_setting": "setting"}[group]
        if group == "by_rate" and all(_as_float(r) is not None for r in g):
            xs = [_as_float(r) for r in g]
            series = {}
            for key, lab in (("attack_success_rate", "attack success rate"), ("clean_accuracy", "clean accuracy"),
                             ("clean_model_asr", "clean model's ASR")):
                if all(isinstance(v, dict) and isinstance(v.get(key), dict) for v in g.values()):
                    series[lab] = {"mean": [v[key]["mean"] for v in g.values()],
                                   "std": [v[key].get("std") for v in g.values()]}
            if series:
                blocks_m.append(figure(sweep_png({f"{rid}": {"x": xs, "series": series,
                                                              "x_labels": [pct(x) for x in xs]}},
                                                 xlabel="poisoned fraction of the training set"),
                                       f"{rid}: ASR and clean accuracy against poison rate",
                                       "Mean over seeds (band: ± one standard deviation)."))
        blocks_m.append(table([label] + [k.replace("_", " ") for k in keys], rows, numeric=range(1, len(keys) + 1)))
    grid = (measured or {}).get("accuracy")
    if isinstance(grid, dict) and grid and all(isinstance(v, dict) and v and all(isinstance(x, dict) and "mean" in x
                                                                                 for x in v.values())
                                               for v in grid.values()):
        blocks_m.insert(0, _heatmap_block(grid, f"{rid}: final accuracy by aggregator and attack",
                                          "Final test accuracy of the global model, mean over seeds."))
    blocks_m = _retraining_blocks(rec) + blocks_m
    per_seed = rec.get("per_seed") or []
    if per_seed:
        keys = [k for k in dict.fromkeys(k for s in per_seed for k, v in s.items() if _finite(v) or isinstance(v, bool))]
        rows = [[V(s.get(k), pointer("per_seed", i, k), "pct" if _is_rate(k) else ("seconds" if k == "seconds" else "num"))
                 if k in s else T("—") for k in keys] for i, s in enumerate(per_seed)]
        blocks_m.append(table([k.replace("_", " ") for k in keys], rows, numeric=range(len(keys)),
                              caption="Each seed", cls="compact"))
    claim = kv([("paper", rec.get("paper")), ("setting", rec.get("setting")), ("pass rule", rec.get("target")),
                ("seeds", rec.get("seeds")), ("time", seconds(rec.get("seconds")) if rec.get("seconds") else None)])
    tone = "good" if passed is True else ("bad" if passed is False else None)
    status = "PASS" if passed is True else ("MISS" if passed is False else "n/a")
    return {"title": f"{rid}: {rec.get('title', '')}".rstrip(": "), "subtitle": rec.get("setting"),
            "facts": [f"{rec.get('seeds')} seed(s)"] if rec.get("seeds") else [],
            "headline": {"text": [T(status, f"chip {tone or ''} big")] + _sub(" " + str(verdict or "")),
                         "why": [_sub("Pass rule: " + str(rec.get("target")))] if rec.get("target") else [],
                         "cards": cards, "tone": tone},
            "sections": [section("claim", "The claim", [claim]), section("measured", "Measured", blocks_m),
                         _details_section(rec)]}


# scan ------------------------------------------------------------------------------------------

def _scan_view(rec: dict[str, Any]) -> dict[str, Any]:
    res, sc = rec["results"], rec.get("scenario") or {}
    ev = res.get("evidence") or {}
    evaluation = res.get("evaluation") or {}
    classes = res.get("classes")
    n = ev.get("n_samples") or _get(res, "dataset", "n")
    nq = res.get("n_quarantined")
    cards, why = [], []
    cards.append(card("Quarantined", V(nq, "/results/n_quarantined", "int"),
                      f"of {n:,} samples" if isinstance(n, int) else None))
    q = evaluation.get("combined (quarantine)")
    tone = None
    if q:
        base = ("results", "evaluation", "combined (quarantine)")
        rv, pv = V(q.get("recall"), pointer(*base, "recall")), V(q.get("precision"), pointer(*base, "precision"))
        cards.append(card("Poisons quarantined", rv, _sub("precision ", pv)))
        cards.append(card("AUROC of the ranking", V(q.get("auroc"), pointer(*base, "auroc"), "num")))
        why.append(_sub(f"The quarantine holds {q.get('n_flagged', nq)} samples: ", rv,
                        f" of the {q.get('n_poison', 'n/a')} planted poisons, precision ", pv, "."))
    if res.get("verdict"):
        headline = _sub(str(res["verdict"]))
    else:
        headline = _sub(f"Quarantined {nq:,} of {n:,} samples" if isinstance(nq, int) and isinstance(n, int)
                        else "Data scan")
        if q:
            headline += _sub(", ", V(q.get("recall"), pointer("results", "evaluation", "combined (quarantine)", "recall")),
                             " of the planted poisons")
    if not evaluation:
        why.append(_sub("No ground truth: the input carries no poison mask, so the scan's precision and recall "
                        "are unknown; look at the samples below."))
    rt = res.get("retrain") or {}
    if rt.get("before") and rt.get("after"):
        b, a = rt["before"], rt["after"]
        if "attack_success_rate" in b:
            asr_b = V(b.get("attack_success_rate"), "/results/retrain/before/attack_success_rate")
            asr_a = V(a.get("attack_success_rate"), "/results/retrain/after/attack_success_rate")
            cards.append(card("ASR after retraining", asr_a, _sub("before ", asr_b)))
            why.append(_sub(f"Retrained without the {rt.get('n_removed', 'n/a')} quarantined samples: ASR ", asr_b,
                            " → ", asr_a, ", clean accuracy ",
                            V(b.get("clean_accuracy"), "/results/retrain/before/clean_accuracy"), " → ",
                            V(a.get("clean_accuracy"), "/results/retrain/after/clean_accuracy"), "."))
    detectors = res.get("detectors") or []
    rep = res.get("representation") or {}
    lead = (f"Detectors: {', '.join(detectors)}. " + _features_text(rep)
            + (f" Contamination {pct(res['contamination'])}." if _finite(res.get("contamination")) else ""))
    blocks = _detection_blocks(evaluation, ev, ("results",), classes, res.get("class_reports"))
    sections = [section("scan", "Detectors and samples", blocks, lead)]
    if rt.get("before") and rt.get("after"):
        keys = list(dict.fromkeys(k for k in list(rt["before"]) + list(rt["after"]) if _finite(rt["before"].get(k))))
        rows = [[T(label)] + [V(rt[side].get(k), pointer("results", "retrain", side, k)) for k in keys]
                for side, label in (("before", "trained on everything"), ("after", "without the quarantined"))]
        sections.append(section("retrain", "Retraining without the quarantined samples",
                                [table(["model"] + [k.replace("_", " ") for k in keys], rows, numeric=range(1, len(keys) + 1))],
                                f"{rt.get('n_removed', 'n/a')} samples removed, {rt.get('n_kept', 'n/a')} kept."))
    sections.append(_details_section(rec))
    src = sc.get("input") or sc.get("dataset") or "data"
    return {"title": f"Data scan of {src}", "subtitle": None,
            "facts": [f for f in (f"{n:,} samples" if isinstance(n, int) else None,
                                  f"{len(detectors)} detectors" if detectors else None) if f],
            "headline": {"text": headline, "why": why, "cards": cards, "tone": tone}, "sections": sections}


# model scan -------------------------------------------------------------------------------------

def _gap_clause(min_gap: Any, text: str) -> str:
    """``text`` with Neural Cleanse's ``min_gap`` filled in, or nothing when the record has none
    (the paper's rule alone, or a record from before the gap test)."""
    return text.format(f"{min_gap:g}") if isinstance(min_gap, (int, float)) else ""


def _model_scan_view(rec: dict[str, Any]) -> dict[str, Any]:
    from .plots import anomaly_index_png

    res = rec["results"]
    classes = res.get("classes")
    index = res.get("anomaly_index") or []
    norms = res.get("l1_norms") or []
    reached = res.get("reached_threshold") or []
    flagged = res.get("flagged_classes") or []
    fs = res.get("file_safety") or {}
    unsafe = fs.get("safe") is False
    tone = "bad" if flagged or unsafe else "good"
    short = "refused: unsafe file" if unsafe else ("backdoor suspected" if flagged else "no backdoor found")
    cards = [card("Verdict", T(short, "word"),
                  ("class " + ", ".join(_class_name(classes, c) for c in flagged)) if flagged else None, tone)]
    if index:
        top = max(range(len(index)), key=lambda c: index[c] if _finite(index[c]) else -math.inf)
        cards.append(card("Largest anomaly index", V(index[top], pointer("results", "anomaly_index", top), "num"),
                          f"class {_class_name(classes, top)} (flagged above 2"
                          + _gap_clause(res.get("min_gap"), " when its mask is also {}x smaller than every "
                                        "other class's") + ")"))
    if fs:
        cards.append(card("Model file", T("safe to load" if fs.get("safe") else "unsafe", "word"), fs.get("format"),
                          "good" if fs.get("safe") else "bad"))
    why = []
    if norms:
        why.append(_sub("Neural Cleanse reversed a trigger for every class: the smallest mask that sends clean "
                        "inputs to it. A backdoor's target needs a much smaller one than the others."))
    if any(r is False for r in reached):
        why.append(_sub("Classes whose reversal did not reach its attack-success threshold: " +
                        ", ".join(_class_name(classes, c) for c, r in enumerate(reached) if r is False) + "."))
    blocks = []
    if index:
        blocks.append(figure(anomaly_index_png(index, flagged, [_class_name(classes, c) for c in range(len(index))]),
                             "Anomaly index per class", "A class above 2 is flagged" + _gap_clause(
                                 res.get("min_gap"), " when its mask is also {}x smaller than every other "
                                 "class's (the gap test)") + "."))
        gap = res.get("mask_gap") or []
        rows = [[T(_class_name(classes, c)),
                 V(norms[c] if c < len(norms) else None, pointer("results", "l1_norms", c), "num"),
                 V(index[c], pointer("results", "anomaly_index", c), "num"),
                 V(gap[c], pointer("results", "mask_gap", c), "num") if c < len(gap) else T("—"),
                 T("yes" if c < len(reached) and reached[c] else "no"),
                 T("flagged", "chip bad") if c in flagged else T("—")] for c in range(len(index))]
        blocks.append(table(["class", "mask L1 norm", "anomaly index", "x smaller than every other",
                             "reversal reached threshold", "flagged"], rows,
                            numeric=[1, 2, 3], caption="Per class"))
    triggers = res.get("triggers") or []
    sections = [section("classes", "Neural Cleanse per class", blocks)] if blocks else []
    if triggers:
        items = []
        planted = res.get("planted_trigger")
        if planted and planted.get("difference"):
            items.append({"content": _thumb(planted["difference"], "the planted trigger"), "title": "planted trigger",
                          "badges": [T("ground truth", "chip")], "lines": []})
        for t in triggers:
            c = t.get("class")
            items.append({"content": _thumb(t.get("trigger"), f"reversed trigger of class {_class_name(classes, c)}"),
                          "title": f"class {_class_name(classes, c)}", "tone": "bad" if c in flagged else None,
                          "badges": [T("flagged", "chip bad")] if c in flagged else [],
                          "lines": [_sub("mask L1 ", V(t.get("l1"), None, "num"))]})
        sections.append(section("triggers", "Reversed triggers", [{
            "type": "gallery", "tiles": items, "cls": "triggers",
            "caption": "Each class's reversed trigger (mask × pattern, scaled to its own range)."}]))
    if fs:
        findings = fs.get("findings") or fs.get("issues") or []
        fblocks = [kv([(k.replace("_", " "), json.dumps(v) if isinstance(v, (dict, list)) else v)
                       for k, v in fs.items() if k not in ("findings", "issues")])]
        if findings:
            fblocks.append(pre(json.dumps(findings, indent=2), "What the scan of the file found"))
        sections.append(section("file", "File safety", fblocks))
    rep = res.get("repair")
    if rep:
        sections.append(section("repair", "Repair", [kv([(k, json.dumps(v) if isinstance(v, (dict, list)) else v)
                                                          for k, v in rep.items()])]))
    sections.append(_details_section(rec))
    headline = _sub(str(res.get("verdict") or short))
    return {"title": f"Model scan of {Path(str(res.get('model', 'a model'))).name}",
            "subtitle": f"dataset {res.get('dataset')}" if res.get("dataset") else None,
            "facts": [], "headline": {"text": headline, "why": why, "cards": cards, "tone": tone},
            "sections": sections}


# release gate ------------------------------------------------------------------------------------

_GATE_CHIPS = {"passed": ("pass", "chip good"), "failed": ("FAIL", "chip bad"), "error": ("ERROR", "chip bad"),
               "skipped": ("skipped", "chip"), "warned": ("warning", "chip bad")}


def _threshold_text(threshold: Mapping[str, Any] | None) -> str:
    return ", ".join(f"{k} {v}" for k, v in (threshold or {}).items() if v is not None) or "—"


def _gate_view(rec: dict[str, Any]) -> dict[str, Any]:
    res = rec["results"]
    checks = [c for c in (res.get("checks") or []) if isinstance(c, dict)]
    passed = res.get("passed")
    tone = "good" if passed else "bad"
    n_failed = sum(c.get("status") in ("failed", "error") for c in checks)
    n_skipped = sum(c.get("status") == "skipped" for c in checks)
    cards = [card("Verdict", T("released" if passed else "blocked", "word"), res.get("verdict"), tone),
             card("Checks failed", V(n_failed, None, "int"), f"of {len(checks)} ({n_skipped} skipped)",
                  "bad" if n_failed else "good")]
    rows = []
    for i, c in enumerate(checks):
        label, cls = _GATE_CHIPS.get(str(c.get("status")), (str(c.get("status")), "chip"))
        rows.append([T(c.get("name")), T(label, cls), T(c.get("message")), T(_threshold_text(c.get("threshold"))),
                     V(c.get("seconds"), pointer("results", "checks", i, "seconds"), "seconds")])
    sections = [section("checks", "Checks", [table(["check", "result", "what was measured", "threshold", "time"],
                                                   rows, numeric=[4])],
                        "Each check of the policy, in the order it ran. A skipped check lacked its input "
                        "(no baseline, no source validation set, no training data) or does not apply to "
                        "the modality; it does not block the release.")]
    canary = next((c for c in checks if c.get("name") == "canaries"), None)
    probes = _get(canary, "measured", "probes", default=[]) if canary else []
    if probes:
        base = next(i for i, c in enumerate(checks) if c is canary)
        names = _get(res, "info", "canary_suite", "classes")
        prow = [[T(p.get("family")), T(_class_name(names, p.get("target")) if isinstance(p.get("target"), int)
                                       else p.get("target")),
                 V(p.get("rate"), pointer("results", "checks", base, "measured", "probes", j, "rate")),
                 T("fires", "chip bad") if p.get("fires") else T("—")] for j, p in enumerate(probes)]
        from .plots import probe_bars_png

        families = [str(p.get("family")) for p in probes]
        strip = next((c for c in checks if c.get("name") == "strip"), None)
        flag = _get(strip, "measured", "flag_rate", default={}) if strip else {}
        series = {"canaries moved to one class": [p.get("rate") for p in probes]}
        limits = {"canaries moved to one class": _get(canary, "threshold", "fire_rate")}
        if isinstance(flag, dict) and flag:
            series["flagged by STRIP"] = [flag.get(f) for f in families]
            limits["flagged by STRIP"] = _get(strip, "threshold", "max_flag_rate")
        plot = figure(probe_bars_png(families, series, limits), "What each trigger family does to the model",
                      "Per registered trigger family at its default settings, stamped on the canaries of the "
                      "other classes: the share sent to the one class it attracts most, and the share STRIP "
                      "flags; a dashed line is the policy's blocking threshold of the same colour.")
        sections.append(section("probes", "Backdoor probes", [plot, table(
            ["trigger family", "most attracted class", "triggered canaries moved there", "fires"], prow,
            numeric=[2])], "Each registered trigger family at its default settings, stamped on the canaries of "
                           "the other classes."))
    details = [pre(json.dumps({"measured": c.get("measured"), "threshold": c.get("threshold")}, indent=2,
                              default=str), f"{c.get('name')}: measured values") for c in checks]
    card_info = _get(res, "info", "model_card")
    if card_info:
        details.insert(0, kv([(k.replace("_", " "), json.dumps(v) if isinstance(v, (dict, list)) else v)
                              for k, v in card_info.items()]))
    sections.append(section("measured", "Measured values", details))
    sections.append(_details_section(rec))
    policy = _get(res, "policy", "name", default="policy")
    return {"title": f"Release gate: {Path(str(res.get('model', 'a model'))).name}",
            "subtitle": f"policy {policy}", "facts": [f"{len(checks)} checks"],
            "headline": {"text": _sub(str(res.get("verdict") or "")), "why": [], "cards": cards, "tone": tone},
            "sections": sections}


def _generic_view(rec: dict[str, Any]) -> dict[str, Any]:
    return {"title": f"{rec.get('kind', 'record')}", "subtitle": None, "facts": [],
            "headline": {"text": _sub(f"A {rec.get('kind')} record"), "why": [], "cards": [], "tone": None},
            "sections": [section("results", "Results", [pre(json.dumps(rec.get("results"), indent=2, default=str),
                                                            "The results")]), _details_section(rec)]}


VIEWS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "run": _run_view, "grid": _grid_view, "reproduction": _reproduction_view, "scan": _scan_view,
    "model_scan": _model_scan_view, "gate": _gate_view,
}


# --- rendering -----------------------------------------------------------------------------------

def _environment():
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("poisonlab.reports", "templates"),
                             autoescape=True, trim_blocks=True, lstrip_blocks=True,
                             undefined=jinja2.Undefined)
    return env


def build_html(record: Mapping[str, Any], *, source: str | None = None) -> str:
    """The report of ``record`` as one HTML document (a string)."""
    from .. import __version__ as version

    rec = dict(record)
    if not isinstance(rec.get("results"), (dict, list)):
        raise DataError("a run record needs 'results'")
    view = VIEWS.get(str(rec.get("kind")), _generic_view)(rec)
    env = _environment()
    css = env.loader.get_source(env, "report.css")[0]
    return env.get_template("report.html.j2").render(
        page=view, kind=str(rec.get("kind")), css=css, generator=GENERATOR, version=version, source=source,
        fingerprint=rec.get("fingerprint"), created=rec.get("created"))


def write_html(path: str | os.PathLike, record: Mapping[str, Any], *, source: str | None = None) -> Path:
    """Write the report of ``record`` to ``path`` atomically; return the path."""
    from .files import atomic_write_text

    return atomic_write_text(path, build_html(record, source=source))
