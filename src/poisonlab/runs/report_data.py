"""What a report shows of samples, scores and triggers, in a compact, size-bounded form.

Run records keep sha256 fingerprints of per-sample arrays, not the arrays. A reviewer's report
needs to *see* some of them: how each detector's scores spread over clean and poisoned samples,
its ROC curve, the most suspicious samples themselves, the reversed and the planted triggers.
This module reduces them to small JSON-friendly summaries, here in the run layer, so that
:mod:`poisonlab.reports` only reads and draws:

* :func:`score_distribution` -- a histogram (clean and poison counts when the ground truth is
  known) and the lowest flagged score;
* :func:`roc_curve` -- at most ``max_points`` (FPR, TPR) points;
* :func:`sample_preview` -- one input as a small picture (images; audio as a log-mel
  spectrogram), a text snippet, or a table row's most unusual columns;
* :func:`top_samples` -- the ``k <= 24`` most suspicious samples, with who flagged them;
* :func:`trigger_previews` / :func:`planted_trigger` -- Neural Cleanse's reversed triggers and
  an attack's own trigger stamped on a clean input.

Every summary is bounded whatever the data's size: pictures are downscaled to at most
``MAX_SIDE`` pixels a side and stored as base64 ``uint8``; texts are cut to ``MAX_TEXT``
characters; histograms have ``bins`` bins; ROC curves ``max_points`` points.

Examples
--------
>>> import numpy as np
>>> scores = np.array([0.1, 0.2, 0.9, 0.8])
>>> mask = np.array([False, False, True, True])
>>> roc_curve(scores, mask)["tpr"]
[0.0, 0.5, 1.0, 1.0, 1.0]
>>> d = score_distribution(scores, scores > 0.5, mask, bins=2)
>>> d["counts"], d["lowest_flagged"]
({'clean': [2, 0], 'poison': [0, 2]}, 0.8)
"""

from __future__ import annotations

import base64
from typing import Any, Mapping, Sequence

import numpy as np

#: Most samples :func:`top_samples` keeps.
MAX_TOP = 24
#: Longest side of a stored picture (larger ones are downscaled).
MAX_SIDE = 64
#: Characters of a text kept.
MAX_TEXT = 280
#: Columns of a table row kept (the most unusual ones).
MAX_COLUMNS = 8
#: Histogram bins and ROC points by default.
BINS = 30
ROC_POINTS = 101


def _round(values: Any, digits: int = 6) -> list[float]:
    """Floats with ``digits`` significant digits (compact, stable JSON)."""
    return [float(f"{v:.{digits}g}") for v in np.asarray(values, dtype=np.float64).ravel()]


# --- scores ------------------------------------------------------------------------------------

def score_distribution(scores: Any, flags: Any = None, poison_mask: Any = None, *,
                       bins: int = BINS) -> dict[str, Any]:
    """A histogram of one detector's scores.

    Returns ``{"edges": [bins + 1], "counts": {"clean": [...], "poison": [...]}}`` when
    ``poison_mask`` is given (``{"all": [...]}`` otherwise), ``scale`` ("linear", or "log" when
    99% of the scores sit in the lowest fifth of a non-negative range: the edges are then
    log-spaced, zeros in the first bin), ``n`` and ``n_nonfinite`` (scores left out), and
    ``lowest_flagged``: the smallest score among the flagged samples (flags are
    ``scores > threshold``, so the threshold lies just below it), None when nothing is flagged.
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    finite = np.isfinite(s)
    vals = s[finite]
    scale = "linear"
    if len(vals) == 0:
        edges = np.array([0.0, 1.0])
    else:
        lo, hi = float(vals.min()), float(vals.max())
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        edges = np.linspace(lo, hi, bins + 1)
        positive = vals[vals > 0]
        heavy = np.quantile(vals, 0.99) - lo < 0.2 * (hi - lo)  # 99% of the scores in the lowest fifth
        if heavy and lo >= 0 and len(positive) and positive.min() < hi:
            # a long tail (e.g. SPECTRE's QUE scores): log-spaced bins, zeros in the first one
            start = float(positive.min())
            edges = np.r_[lo, np.geomspace(start, hi, bins)] if lo < start else np.geomspace(start, hi, bins + 1)
            edges = np.unique(edges)
            scale = "log"

    def hist(x: np.ndarray) -> list[int]:
        return np.histogram(x, bins=edges)[0].astype(int).tolist()

    out: dict[str, Any] = {"n": int(len(s)), "n_nonfinite": int((~finite).sum()), "edges": _round(edges, 8),
                           "scale": scale}
    if poison_mask is not None:
        pm = np.asarray(poison_mask, dtype=bool).ravel()
        out["counts"] = {"clean": hist(s[finite & ~pm]), "poison": hist(s[finite & pm])}
    else:
        out["counts"] = {"all": hist(vals)}
    lowest = None
    if flags is not None:
        f = np.asarray(flags, dtype=bool).ravel() & finite
        if f.any():
            lowest = _round([s[f].min()])[0]
        out["n_flagged"] = int(np.asarray(flags, dtype=bool).sum())
    out["lowest_flagged"] = lowest
    return out


def roc_curve(scores: Any, poison_mask: Any, *, max_points: int = ROC_POINTS) -> dict[str, Any] | None:
    """The ROC curve of ``scores`` against the ground truth, as at most ``max_points`` points
    from (0, 0) to (1, 1) (one per distinct score, evenly thinned); None when one of the two
    groups is empty. Non-finite scores rank last."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    s = np.where(np.isfinite(s), s, -np.inf)
    pm = np.asarray(poison_mask, dtype=bool).ravel()
    n_pos, n_neg = int(pm.sum()), int((~pm).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(-s, kind="stable")
    s_sorted, p_sorted = s[order], pm[order]
    tp, fp = np.cumsum(p_sorted), np.cumsum(~p_sorted)
    last = np.r_[np.flatnonzero(np.diff(s_sorted) != 0), len(s) - 1]  # end of each tie group
    tpr = np.r_[0.0, tp[last] / n_pos]
    fpr = np.r_[0.0, fp[last] / n_neg]
    if len(tpr) > max_points:
        keep = np.unique(np.round(np.linspace(0, len(tpr) - 1, max_points)).astype(int))
        tpr, fpr = tpr[keep], fpr[keep]
    return {"fpr": _round(fpr, 4), "tpr": _round(tpr, 4), "n_poison": n_pos, "n_clean": n_neg}


# --- samples -----------------------------------------------------------------------------------

def _picture(arr: np.ndarray, kind: str = "image", *, normalise: bool = False) -> dict[str, Any]:
    """``(H, W)`` or ``(H, W, C)`` floats as ``{"kind", "shape": [H, W, C], "uint8_b64"}``:
    values in [0, 1] kept (clipped) unless ``normalise`` or they leave [0, 1], then min-max
    scaled; downscaled so that no side exceeds :data:`MAX_SIDE`."""
    a = np.asarray(arr, dtype=np.float64)
    if a.ndim == 2:
        a = a[:, :, None]
    a = np.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0)
    if normalise or a.min() < 0 or a.max() > 1:
        span = a.max() - a.min()
        a = (a - a.min()) / span if span > 0 else np.zeros_like(a)
    u8 = np.round(np.clip(a, 0, 1) * 255).astype(np.uint8)
    h, w, c = u8.shape
    if max(h, w) > MAX_SIDE:
        from PIL import Image

        scale = MAX_SIDE / max(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        img = Image.fromarray(u8[:, :, 0] if c == 1 else u8).resize(size, Image.BILINEAR)
        u8 = np.asarray(img, dtype=np.uint8)
        if u8.ndim == 2:
            u8 = u8[:, :, None]
    return {"kind": kind, "shape": list(u8.shape), "uint8_b64": base64.b64encode(u8.tobytes()).decode("ascii")}


def _chw_to_hwc(x: np.ndarray) -> np.ndarray:
    """Images are stored ``(C, H, W)``; pictures are ``(H, W, C)``."""
    x = np.asarray(x)
    return x.transpose(1, 2, 0) if x.ndim == 3 else x


def sample_preview(X: Any, i: int, modality: str, *, feature_names: Sequence[str] | None = None,
                   sample_rate: int | None = None, column_center: np.ndarray | None = None,
                   column_scale: np.ndarray | None = None) -> dict[str, Any]:
    """Input ``X[i]`` in a form a report can show.

    image: ``{"kind": "image", "shape": [H, W, C], "uint8_b64"}`` (pixels in [0, 1] kept, else
    min-max scaled); audio: ``{"kind": "spectrogram", ...}`` (a feature map ``(1, mels,
    frames)`` as it is, a waveform as its log-mel spectrogram; row 0 = lowest band);
    text: ``{"kind": "text", "text", "length"}`` (the first :data:`MAX_TEXT` characters);
    tabular: ``{"kind": "row", "columns", "values", "z"}``, the :data:`MAX_COLUMNS` columns
    farthest from ``column_center`` in units of ``column_scale`` (robust z-scores).
    """
    x = X[i]
    if modality == "text":
        text = str(x)
        return {"kind": "text", "text": text[:MAX_TEXT], "length": len(text)}
    if modality == "tabular":
        row = np.asarray(x, dtype=np.float64).ravel()
        names = list(feature_names) if feature_names is not None and len(feature_names) == len(row) else \
            [f"x{j}" for j in range(len(row))]
        if column_center is None or column_scale is None:
            z = np.zeros_like(row)
        else:
            z = (row - column_center) / np.where(column_scale > 0, column_scale, 1.0)
        keep = np.argsort(-np.abs(z), kind="stable")[:MAX_COLUMNS]
        return {"kind": "row", "columns": [str(names[j]) for j in keep], "values": _round(row[keep]),
                "z": _round(z[keep], 3), "n_columns": int(len(row))}
    arr = np.asarray(x, dtype=np.float64)
    if modality == "audio":
        if arr.ndim == 1:  # a waveform
            from ..data.audio import log_mel_spectrogram

            arr = log_mel_spectrogram(arr[None].astype(np.float32), int(sample_rate or 8000))[0]
        arr = arr.reshape(arr.shape[-2], arr.shape[-1])
        return _picture(arr, "spectrogram", normalise=True)
    return _picture(_chw_to_hwc(arr), "image")


def _column_stats(X: Any, modality: str) -> tuple[np.ndarray | None, np.ndarray | None]:
    if modality != "tabular":
        return None, None
    A = np.asarray(X, dtype=np.float64)
    center = np.median(A, axis=0)
    scale = 1.4826 * np.median(np.abs(A - center), axis=0)
    std = A.std(axis=0)
    return center, np.where(scale > 0, scale, std)


def top_samples(dataset: Any, order: Sequence[int], flags: Mapping[str, Any], combined: Any, *,
                k: int = 12, poison_mask: Any = None, reasons: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """The ``k`` (at most :data:`MAX_TOP`) first samples of ``order`` with their previews.

    Each: ``rank``, ``index``, ``id``, ``label``, ``label_name``, ``score`` (``combined``),
    ``flagged_by`` (names of the detectors whose flags hold it), ``why`` (their ``reasons``),
    ``poison`` (the ground truth, or None), ``preview`` (:func:`sample_preview`).
    """
    k = int(min(max(k, 0), MAX_TOP))
    modality = dataset.modality
    center, scale = _column_stats(dataset.X, modality)
    pm = None if poison_mask is None else np.asarray(poison_mask, dtype=bool)
    combined = np.asarray(combined, dtype=np.float64)
    rows = []
    for rank, i in enumerate(list(order)[:k], 1):
        i = int(i)
        label = int(dataset.y[i])
        by = [name for name, f in flags.items() if bool(np.asarray(f)[i])]
        rows.append({
            "rank": rank, "index": i, "id": str(dataset.ids[i]), "label": label,
            "label_name": str(dataset.classes[label]) if label < len(dataset.classes) else str(label),
            "score": _round([combined[i]])[0] if np.isfinite(combined[i]) else None,
            "flagged_by": by, "why": [(reasons or {}).get(n, n) for n in by],
            "poison": None if pm is None else bool(pm[i]),
            "preview": sample_preview(dataset.X, i, modality, feature_names=dataset.feature_names,
                                      sample_rate=dataset.info.get("sample_rate"),
                                      column_center=center, column_scale=scale),
        })
    return rows


def scan_evidence(dataset: Any, result: Any, poison_mask: Any = None, *, k: int = 12,
                  bins: int = BINS, max_points: int = ROC_POINTS) -> dict[str, Any]:
    """Everything a report shows of a data scan (a :class:`~poisonlab.runs.scan.ScanResult`
    of ``dataset``): per detector (and for the combined ranking) the score distribution and,
    with ``poison_mask``, the ROC curve; per class the samples, poisons, quarantined and
    flagged counts; and the ``k`` most suspicious samples."""
    from .scan import REASONS

    pm = None if poison_mask is None else np.asarray(poison_mask, dtype=bool)
    detectors: dict[str, Any] = {}
    items = list(result.scores.items())
    items.append(("combined (quarantine)", result.combined))
    for name, scores in items:
        flags = result.flags.get(name) if name in result.flags else result.quarantine
        entry = {"distribution": score_distribution(scores, flags, pm, bins=bins)}
        if pm is not None:
            entry["roc"] = roc_curve(scores, pm, max_points=max_points)
        detectors[name] = entry
    y = np.asarray(dataset.y)
    per_class = []
    for c in range(len(dataset.classes)):
        in_c = y == c
        row = {"class": c, "name": str(dataset.classes[c]), "n": int(in_c.sum()),
               "n_quarantined": int((np.asarray(result.quarantine, dtype=bool) & in_c).sum()),
               "n_flagged": {name: int((np.asarray(f, dtype=bool) & in_c).sum()) for name, f in result.flags.items()}}
        if pm is not None:
            row["n_poison"] = int((pm & in_c).sum())
            row["n_poison_quarantined"] = int((pm & in_c & np.asarray(result.quarantine, dtype=bool)).sum())
        per_class.append(row)
    return {"detectors": detectors, "ground_truth": pm is not None, "n_samples": int(len(dataset)),
            "n_poison": None if pm is None else int(pm.sum()), "per_class": per_class,
            "top": top_samples(dataset, result.order, result.flags, result.combined, k=k, poison_mask=pm,
                               reasons=REASONS)}


# --- triggers ----------------------------------------------------------------------------------

def trigger_previews(masks: Any, patterns: Any) -> list[dict[str, Any]]:
    """Neural Cleanse's reversed trigger of every class: ``{"class", "trigger"}`` (``mask *
    pattern``, min-max scaled like :func:`poisonlab.reports.images.trigger_png`), ``"mask"``
    (in [0, 1]) and ``"l1"`` (the mask's L1 norm)."""
    masks, patterns = np.asarray(masks, dtype=np.float64), np.asarray(patterns, dtype=np.float64)
    out = []
    for c in range(len(masks)):
        m, p = masks[c], patterns[c]
        img = m[None] * p if p.ndim == 3 else m * p
        out.append({"class": c, "trigger": _picture(_chw_to_hwc(img), "image", normalise=True),
                    "mask": _picture(m, "image"), "l1": _round([np.abs(m).sum()])[0]})
    return out


def planted_trigger(attack: Any, X: Any, modality: str, *, feature_names: Sequence[str] | None = None,
                    sample_rate: int | None = None) -> dict[str, Any] | None:
    """An attack's trigger as a reviewer sees it: the first input of ``X`` before and after
    ``attack.apply_trigger`` (images and audio also the absolute difference, min-max scaled);
    None for attacks without a trigger."""
    if not hasattr(attack, "apply_trigger") or len(X) == 0:
        return None
    clean = X[:1]
    triggered = attack.apply_trigger(clean)
    kw = {"feature_names": feature_names, "sample_rate": sample_rate}
    out = {"clean": sample_preview(clean, 0, modality, **kw),
           "triggered": sample_preview(triggered, 0, modality, **kw)}
    if modality == "image":
        diff = np.abs(np.asarray(triggered[0], dtype=np.float64) - np.asarray(clean[0], dtype=np.float64))
        out["difference"] = _picture(_chw_to_hwc(diff), "image", normalise=True)
    elif modality == "tabular":
        a, b = np.asarray(clean[0], dtype=np.float64), np.asarray(triggered[0], dtype=np.float64)
        changed = np.flatnonzero(~np.isclose(a, b))[:MAX_COLUMNS]
        names = list(feature_names) if feature_names is not None and len(feature_names) == len(a) else \
            [f"x{j}" for j in range(len(a))]
        out["changed"] = [{"column": str(names[j]), "clean": _round([a[j]])[0], "triggered": _round([b[j]])[0]}
                          for j in changed]
    return out


# --- sweeps ------------------------------------------------------------------------------------

def mean_std_by(xs: Sequence[Any], ys: Sequence[Any]) -> dict[str, list]:
    """Group ``ys`` by ``xs`` (None values of ``ys`` left out): ``{"x": sorted distinct x,
    "mean", "std" (population), "n"}`` -- a sweep's line over seeds.

    >>> mean_std_by([0.1, 0.05, 0.1], [0.5, 0.2, 0.7])
    {'x': [0.05, 0.1], 'mean': [0.2, 0.6], 'std': [0.0, 0.1], 'n': [1, 2]}
    """
    groups: dict[Any, list[float]] = {}
    for x, y in zip(xs, ys):
        groups.setdefault(x, [])
        if y is not None:
            groups[x].append(float(y))
    keys = sorted(groups)
    out: dict[str, list] = {"x": keys, "mean": [], "std": [], "n": []}
    for k in keys:
        v = np.asarray(groups[k], dtype=np.float64)
        out["mean"].append(_round([v.mean()])[0] if len(v) else None)
        out["std"].append(_round([v.std()])[0] if len(v) else None)
        out["n"].append(int(len(v)))
    return out
