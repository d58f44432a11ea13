"""Plots as PNG bytes (matplotlib, Agg backend; nothing is shown or written here)."""

from __future__ import annotations

import io


def figure_png(fig, dpi: float | str = "figure") -> bytes:
    """A matplotlib figure as PNG bytes (at ``dpi``, by default the figure's own); the figure
    is closed."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()


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
