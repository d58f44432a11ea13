"""Plots as PNG bytes (matplotlib, Agg backend; nothing is shown or written here).

Every plot draws numbers a record already holds: nothing is measured here. Colours come from
the Okabe-Ito palette (distinguishable with every common colour-vision deficiency), and every
series also differs by marker or line style, so no plot relies on colour alone.
"""

from __future__ import annotations

import io
from contextlib import contextmanager
from typing import Any, Mapping, Sequence

from .fmt import pct

#: Okabe & Ito (2008): a palette safe for colour-blind readers.
PALETTE = {"blue": "#0072B2", "vermillion": "#D55E00", "green": "#009E73", "orange": "#E69F00",
           "sky": "#56B4E9", "purple": "#CC79A7", "yellow": "#F0E442", "black": "#000000"}
#: Series colours in order (yellow left out: too light on white).
CYCLE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
MARKERS = ("o", "s", "^", "D", "v", "P", "X")
LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1)), (0, (1, 1)))
#: Clean and poisoned samples / models, everywhere.
CLEAN, POISON = PALETTE["blue"], PALETTE["vermillion"]
#: Resolution of the report's figures (2x for sharp text on high-density screens).
DPI = 144


def figure_png(fig, dpi: float | str = "figure") -> bytes:
    """A matplotlib figure as PNG bytes (at ``dpi``, by default the figure's own); the figure
    is closed."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()


@contextmanager
def _style():
    """The report's look: small, quiet axes; the palette as the colour cycle."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from cycler import cycler

    rc = {"font.size": 9, "axes.titlesize": 10, "axes.titleweight": "bold", "axes.labelsize": 9,
          "axes.spines.top": False, "axes.spines.right": False, "axes.edgecolor": "#555555",
          "axes.grid": True, "grid.color": "#dddddd", "grid.linewidth": 0.6, "axes.axisbelow": True,
          "legend.frameon": False, "legend.fontsize": 8, "xtick.color": "#333333",
          "ytick.color": "#333333", "axes.prop_cycle": cycler(color=CYCLE), "figure.dpi": DPI,
          "savefig.dpi": DPI, "figure.facecolor": "white", "svg.fonttype": "none"}
    with plt.rc_context(rc):
        yield plt


def _pct_axis(ax, axis: str = "y") -> None:
    from matplotlib.ticker import PercentFormatter

    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(PercentFormatter(1.0, decimals=0))


def rate_sweep_png(record: dict) -> bytes:
    """ASR and clean accuracy against poison rate (R2), mean ± sd over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_rate = record["measured"]["by_rate"]
    rates = [float(r) * 100 for r in by_rate]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    for key, label, marker in (("attack_success_rate", "attack success rate", "o"),
                               ("clean_accuracy", "clean accuracy", "s")):
        mean = [v[key]["mean"] * 100 for v in by_rate.values()]
        std = [v[key]["std"] * 100 for v in by_rate.values()]
        ax.errorbar(rates, mean, yerr=std, marker=marker, capsize=3, label=label)
    ax.set_xscale("log")
    ax.set_xticks(rates, [f"{r:g}%" for r in rates])
    ax.set_xlabel("poisoned fraction of the training set")
    ax.set_ylabel("%")
    ax.set_ylim(0, 101)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title(f"{record['id']}: {record['title']} ({record['seeds']} seed(s))")
    fig.tight_layout()
    return figure_png(fig)


# --- the HTML report's figures ---------------------------------------------------------------

def model_bars_png(models: Sequence[Mapping[str, Any]]) -> bytes:
    """Clean accuracy and ASR of each model side by side (grouped bars, values printed).

    ``models``: ``{"label", "clean_accuracy", "attack_success_rate"}`` (None where unknown).
    """
    import numpy as np

    with _style() as plt:
        fig, ax = plt.subplots(figsize=(7.2, 2.8))
        x = np.arange(len(models))
        width = 0.38
        series = (("clean_accuracy", "clean accuracy", CLEAN, ""),
                  ("attack_success_rate", "attack success rate", POISON, "//"))
        for k, (key, label, colour, hatch) in enumerate(series):
            vals = [m.get(key) for m in models]
            pos = x + (k - 0.5) * width
            heights = [v if v is not None else 0.0 for v in vals]
            bars = ax.bar(pos, heights, width, label=label, color=colour, hatch=hatch,
                          edgecolor="white", linewidth=0.5)
            for b, v in zip(bars, vals):
                ax.annotate(pct(v), (b.get_x() + b.get_width() / 2, b.get_height()),
                            xytext=(0, 2), textcoords="offset points", ha="center", va="bottom", fontsize=7.5)
        ax.set_xticks(x, [m["label"] for m in models])
        ax.set_ylim(0, 1.15)
        ax.set_yticks([0, 0.25, 0.5, 0.75, 1.0])
        _pct_axis(ax)
        ax.grid(axis="x", visible=False)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)
        fig.tight_layout()
        return figure_png(fig)


def score_histograms_png(dists: Mapping[str, Mapping[str, Any]], *, columns: int = 3) -> bytes:
    """One panel per detector: its score histogram, clean and poisoned samples apart when the
    ground truth is known (each as a share of its own group, so that a few poisons show beside
    many clean samples), and the lowest flagged score as a dotted line.

    ``dists``: name -> :func:`poisonlab.runs.report_data.score_distribution` output.
    """
    import numpy as np

    names = list(dists)
    n = len(names)
    cols = min(columns, n)
    rows = -(-n // cols)
    with _style() as plt:
        fig, axes = plt.subplots(rows, cols, figsize=(3.3 * cols, 2.35 * rows), squeeze=False)
        for ax, name in zip(axes.ravel(), names):
            d = dists[name]
            edges = np.asarray(d["edges"], dtype=float)
            counts = d["counts"]
            series = [("clean", "clean", CLEAN, "-"), ("poison", "poisoned", POISON, "--"),
                      ("all", "all samples", CLEAN, "-")]
            for key, label, colour, ls in series:
                if key not in counts:
                    continue
                c = np.asarray(counts[key], dtype=float)
                share = c / c.sum() if c.sum() else c  # each group's own share: 67 poisons stay visible beside 1,280 clean
                ax.stairs(share, edges, fill=True, alpha=0.28, color=colour)
                ax.stairs(share, edges, color=colour, linestyle=ls, linewidth=1.3, label=f"{label} ({int(c.sum()):,})")
            if d.get("lowest_flagged") is not None:
                ax.axvline(d["lowest_flagged"], color="#333333", linestyle=":", linewidth=1.2,
                           label="flagged from here")
            _pct_axis(ax)
            if d.get("scale") == "log":  # log-spaced bins of a long-tailed score
                positive = edges[edges > 0]
                ax.set_xscale("symlog", linthresh=float(positive[0]) if len(positive) else 1.0)
            ax.set_title(name, loc="left")
            ax.set_xlabel("score (higher = more suspicious)")
            ax.set_ylabel("share of the group")
        for ax in axes.ravel()[n:]:
            ax.set_visible(False)
        handles, labels = axes.ravel()[0].get_legend_handles_labels()
        labels = [lab.split(" (")[0] for lab in labels]  # counts differ per panel only by non-finite scores
        fig.legend(handles, labels, loc="lower center", ncol=len(handles), bbox_to_anchor=(0.5, 0.0))
        fig.tight_layout(rect=(0, 0.35 / fig.get_figheight(), 1, 1))
        return figure_png(fig)


def roc_png(curves: Mapping[str, Mapping[str, Any]], aurocs: Mapping[str, Any] | None = None) -> bytes:
    """ROC curves of several detectors on one plot (colour, line style and marker per
    detector), chance as a grey diagonal. ``curves``: name -> ``{"fpr", "tpr"}``."""
    with _style() as plt:
        fig, ax = plt.subplots(figsize=(4.6, 4.0))
        ax.plot([0, 1], [0, 1], color="#999999", linewidth=0.8, linestyle=":", label="chance")
        for k, (name, c) in enumerate(curves.items()):
            au = (aurocs or {}).get(name)
            label = f"{name} (AUROC {au:.3f})" if isinstance(au, (int, float)) else name
            every = max(1, len(c["fpr"]) // 8)
            ax.plot(c["fpr"], c["tpr"], color=CYCLE[k % len(CYCLE)], linestyle=LINESTYLES[k % len(LINESTYLES)],
                    marker=MARKERS[k % len(MARKERS)], markevery=every, markersize=4, linewidth=1.5,
                    label=label)
        ax.set_xlim(-0.01, 1.01)
        ax.set_ylim(-0.01, 1.02)
        _pct_axis(ax, "x")
        _pct_axis(ax, "y")
        ax.set_xlabel("clean samples flagged (false-positive rate)")
        ax.set_ylabel("poisons flagged (true-positive rate)")
        ax.legend(loc="lower right", fontsize=7)
        fig.tight_layout()
        return figure_png(fig)


def sweep_png(panels: Mapping[str, Mapping[str, Any]], *, xlabel: str = "poison rate",
              ylabel: str | None = None, log_x: bool = True) -> bytes:
    """Line plots against a swept value, one panel per attack.

    ``panels``: title -> ``{"x": [...], "x_labels": [...] (optional), "series": {label: {"mean":
    [...], "std": [...] or None, "points": [(x, y), ...] (each seed, optional)}}}``. Values are
    fractions (shown as %).
    """
    import numpy as np

    styles = {"attack success rate": (POISON, "o", "-"), "clean accuracy": (CLEAN, "s", "-"),
              "clean model's ASR": (PALETTE["orange"], "^", "--"),
              "ASR after retraining": (PALETTE["green"], "D", "-.")}
    spare = (PALETTE["green"], PALETTE["purple"], PALETTE["sky"], PALETTE["black"])  # not used above
    spare_markers = ("D", "P", "X", "v")
    titles = list(panels)
    cols = min(3, len(titles))
    rows = -(-len(titles) // cols)
    with _style() as plt:
        fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols + 0.4, 2.9 * rows + 0.8), squeeze=False)
        handles = {}
        for ax, title in zip(axes.ravel(), titles):
            p = panels[title]
            x = np.asarray(p["x"], dtype=float)
            extra = [lab for lab in p["series"] if lab not in styles]
            for k, (label, s) in enumerate(p["series"].items()):
                j = extra.index(label) if label in extra else 0
                fallback = (spare[j % len(spare)], spare_markers[j % len(spare_markers)],
                            LINESTYLES[(j + 1) % len(LINESTYLES)]) if label.startswith("ASR after") else \
                    (CYCLE[k % len(CYCLE)], MARKERS[k % len(MARKERS)], LINESTYLES[k % len(LINESTYLES)])
                colour, marker, ls = styles.get(label, fallback)
                mean = np.asarray([np.nan if v is None else v for v in s["mean"]], dtype=float)
                std = s.get("std")
                if std is not None and any(v for v in std if v):
                    sd = np.asarray([0 if v is None else v for v in std], dtype=float)
                    ax.fill_between(x, mean - sd, mean + sd, color=colour, alpha=0.15, linewidth=0)
                h, = ax.plot(x, mean, color=colour, marker=marker, linestyle=ls, linewidth=1.6, markersize=5)
                for px, py in s.get("points") or ():
                    ax.plot([px], [py], color=colour, marker=marker, markersize=3, alpha=0.45, linestyle="none")
                handles[label] = h
            if log_x and len(x) and (x > 0).all() and x.max() / x.min() > 4:
                ax.set_xscale("log")
            ax.set_xticks(x, p.get("x_labels") or [f"{v:g}" for v in x])
            ax.minorticks_off()
            ax.set_ylim(-0.02, 1.05)
            _pct_axis(ax)
            ax.set_title(title, loc="left")
            ax.set_xlabel(xlabel)
            if ylabel:
                ax.set_ylabel(ylabel)
        for ax in axes.ravel()[len(titles):]:
            ax.set_visible(False)
        ncol = max(1, min(len(handles), 3 if cols < 3 else 4))
        legend_rows = -(-len(handles) // ncol)
        height = fig.get_figheight()
        fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=ncol, bbox_to_anchor=(0.5, 0.0))
        fig.tight_layout(rect=(0, min(0.45, (0.22 * legend_rows + 0.1) / height), 1, 1))
        return figure_png(fig)


def anomaly_index_png(index: Sequence[float], flagged: Sequence[int], classes: Sequence[str],
                      threshold: float = 2.0) -> bytes:
    """Neural Cleanse's anomaly index per class as bars; flagged classes hatched in vermillion,
    the threshold as a dashed line."""
    import numpy as np

    with _style() as plt:
        fig, ax = plt.subplots(figsize=(max(4.0, 0.42 * len(index) + 1.5), 2.6))
        x = np.arange(len(index))
        colours = [POISON if c in flagged else CLEAN for c in range(len(index))]
        hatches = ["//" if c in flagged else "" for c in range(len(index))]
        vals = [0.0 if v is None else float(v) for v in index]
        for xi, v, col, h in zip(x, vals, colours, hatches):
            ax.bar(xi, v, 0.7, color=col, hatch=h, edgecolor="white", linewidth=0.5)
        ax.axhline(threshold, color="#333333", linestyle="--", linewidth=1)
        ax.annotate(f"flagged above {threshold:g}", (len(index) - 0.5, threshold), xytext=(0, 3),
                    textcoords="offset points", ha="right", va="bottom", fontsize=7.5)
        ax.axhline(0, color="#555555", linewidth=0.6)
        ax.set_xticks(x, [str(c) for c in classes])
        ax.set_xlabel("class")
        ax.set_ylabel("anomaly index")
        ax.grid(axis="x", visible=False)
        fig.tight_layout()
        return figure_png(fig)


def heatmap_png(rows: Sequence[str], cols: Sequence[str], values: Sequence[Sequence[float | None]], *,
                xlabel: str = "attack", ylabel: str = "aggregator", label: str = "accuracy") -> bytes:
    """A rows x columns grid of rates (e.g. aggregator x attack accuracy), each cell annotated with
    its value; a missing value is left blank. One sequential colour scale from 0 to 100%."""
    import numpy as np

    data = np.array([[np.nan if v is None else float(v) for v in row] for row in values], dtype=float)
    with _style() as plt:
        fig, ax = plt.subplots(figsize=(1.2 * len(cols) + 2.4, 0.48 * len(rows) + 1.4))
        im = ax.imshow(data, vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto")
        for i in range(len(rows)):
            for j in range(len(cols)):
                if np.isfinite(data[i, j]):
                    ax.text(j, i, pct(data[i, j]), ha="center", va="center", fontsize=8,
                            color="black" if data[i, j] > 0.6 else "white")
        ax.set_xticks(range(len(cols)), [str(c) for c in cols])
        ax.set_yticks(range(len(rows)), [str(r) for r in rows])
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(False)
        bar = fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
        bar.set_label(label)
        _pct_axis(bar.ax)
        fig.tight_layout()
        return figure_png(fig)


def probe_bars_png(families: Sequence[str], series: Mapping[str, Sequence[float | None]],
                   thresholds: Mapping[str, float | None] | None = None) -> bytes:
    """One row per trigger family, one bar per measure (e.g. canaries moved to one class, STRIP
    flag rate), values printed; each measure's blocking threshold as a dashed line of its colour.

    ``series``: measure label -> one value per family (None where not measured).
    """
    import numpy as np

    colours = (POISON, CLEAN, PALETTE["orange"], PALETTE["green"])
    thresholds = thresholds or {}
    with _style() as plt:
        k = max(len(series), 1)
        fig, ax = plt.subplots(figsize=(7.2, 0.5 + 0.32 * k * max(len(families), 1)))
        y = np.arange(len(families))
        height = 0.8 / k
        for j, (label, vals) in enumerate(series.items()):
            pos = y + (j - (k - 1) / 2) * height
            bars = ax.barh(pos, [v if v is not None else 0.0 for v in vals], height, label=label,
                           color=colours[j % len(colours)], edgecolor="white", linewidth=0.5)
            for b, v in zip(bars, vals):
                ax.annotate(pct(v) if v is not None else "n/a", (b.get_width(), b.get_y() + b.get_height() / 2),
                            xytext=(3, 0), textcoords="offset points", va="center", fontsize=7.5)
            t = thresholds.get(label)
            if t is not None:
                ax.axvline(t, color=colours[j % len(colours)], linestyle="--", linewidth=1)
        ax.set_yticks(y, list(families))
        ax.invert_yaxis()
        ax.set_xlim(0, 1.15)
        ax.set_xticks([0, 0.25, 0.5, 0.75, 1.0])
        _pct_axis(ax, "x")
        ax.grid(axis="y", visible=False)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12 - 0.1 / max(len(families), 1)), ncol=k)
        fig.tight_layout()
        return figure_png(fig)
