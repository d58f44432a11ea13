"""Markdown tables of results."""

from __future__ import annotations

from typing import Any, Iterable


_RATE_WORDS = ("accuracy", "asr", "rate", "recall", "precision", "tpr", "fpr", "far", "frr", "error",
               "drop", "success", "gradient_1_point", "random_", "adversarial_")


def _is_rate(key: str) -> bool:
    key = key.lower()
    return any(w in key for w in _RATE_WORDS) and "seconds" not in key and "index" not in key


def _fmt(stat: Any, key: str = "rate") -> str:
    """A mean (± sd) as a percentage for rates, as a plain number otherwise."""
    if isinstance(stat, dict) and isinstance(stat.get("mean"), (int, float)):
        f = (lambda v: f"{v:.2%}") if _is_rate(key) else (lambda v: f"{v:.3g}")
        s = f(stat["mean"])
        if stat.get("n", 1) > 1:
            s += f" ± {f(stat['std'])}"
        return s
    if isinstance(stat, dict):  # a group of statistics, e.g. by test amplitude
        # members are rates if the group is, except timings (R17's seconds per rate)
        return "{" + ", ".join(f"{k}: {_fmt(v, k if 'seconds' in str(k).lower() else key)}"
                               for k, v in stat.items()) + "}"
    return str(stat)


def measured_text(record: dict) -> str:
    """One cell summarising a reproduction's measured numbers."""
    m = record["measured"]
    if "by_setting" in m:
        return "; ".join(f"{k}: " + ", ".join(f"{n} {_fmt(v, n)}" for n, v in cell.items())
                         for k, cell in m["by_setting"].items())
    if "by_count" in m:
        return "; ".join(f"{k} poisons: " + ", ".join(
            f"{label} {_fmt(v[name], name)}" for name, label in (
                ("spectral_recall", "spectral"), ("spectre_recall", "SPECTRE"), ("ac_tpr", "AC TPR"),
                ("ac_fpr", "FPR"), ("asr_before", "ASR"), ("asr_after_spectre", "ASR after")) if name in v)
            for k, v in m["by_count"].items())
    if "by_rate" in m:
        return "; ".join(f"{r}: ASR {_fmt(v['attack_success_rate'])}, clean {_fmt(v['clean_accuracy'])}"
                         for r, v in m["by_rate"].items())
    return "; ".join(f"{k.replace('_', ' ')} {_fmt(v, k)}" for k, v in m.items())


def reproduction_table(records: Iterable[dict]) -> str:
    """The paper's number beside the measured one, one row per reproduction."""
    lines = ["| ID | setting | paper | target | measured (mean ± sd over seeds) | seeds | time | verdict |",
             "|---|---|---|---|---|---|---|---|"]
    for r in records:
        verdict = "PASS" if r["passed"] else "MISS"
        lines.append(f"| {r['id']} | {r['title']} | {r['paper']} | {r['target']} | {measured_text(r)} "
                     f"| {r['seeds']} | {r['seconds'] / 60:.1f} min | {verdict}: {r['verdict']} |")
    return "\n".join(lines) + "\n"
