"""One picture of the R6 explorations' poisons: 12 per variant, one row each.

Reads the .npy files that explore_label_consistent.py and
explore_label_consistent_interpolation.py leave under benchmarks/results/explore_label_consistent/
(16 poisons of each variant, trigger included) and writes docs/results/R6-poisons.png, so a
reader can judge what no metric here can: whether a poison still looks like a 7.

Run:  .venv/bin/python benchmarks/plot_label_consistent_poisons.py
"""

from __future__ import annotations

import numpy as np

from common import RESULTS, ROOT

PER_ROW = 12


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from poisonlab.reports import atomic_write_bytes
    from poisonlab.reports.plots import figure_png

    files = sorted((RESULTS / "explore_label_consistent").glob("*.npy"))
    if not files:
        raise SystemExit("no poisons saved yet: run the two explore_label_consistent scripts first")
    fig, axes = plt.subplots(len(files), 1, figsize=(PER_ROW * 0.7, len(files) * 0.85))
    for ax, path in zip(np.atleast_1d(axes), files):
        P = np.load(path)[:PER_ROW, 0]
        ax.imshow(np.concatenate(list(P), axis=1), cmap="gray", vmin=0, vmax=1)
        ax.set_title(path.stem.replace("_", " "), fontsize=8, loc="left", pad=2)
        ax.axis("off")
    fig.tight_layout(h_pad=0.3)
    out = ROOT / "docs" / "results" / "R6-poisons.png"
    atomic_write_bytes(out, figure_png(fig, dpi=110))
    print(out)


if __name__ == "__main__":
    main()
