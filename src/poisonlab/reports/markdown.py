"""Markdown tables of results."""

from __future__ import annotations

from typing import Any, Iterable


def _fmt(stat: Any) -> str:
    if isinstance(stat, dict) and "mean" in stat:
        s = f"{stat['mean']:.2%}"
        if stat.get("n", 1) > 1:
            s += f" ± {stat['std']:.2%}"
        return s
    return str(stat)


def measured_text(record: dict) -> str:
    """One cell summarising a reproduction's measured numbers."""
    m = record["measured"]
    if "by_setting" in m:
        return "; ".join(f"{k}: " + ", ".join(f"{n} {_fmt(v)}" for n, v in cell.items())
                         for k, cell in m["by_setting"].items())
    if "by_count" in m:
        return "; ".join(f"{k} poisons: spectral {_fmt(v['spectral_recall'])}, SPECTRE {_fmt(v['spectre_recall'])}, "
                         f"AC TPR {_fmt(v['ac_tpr'])} FPR {_fmt(v['ac_fpr'])}, ASR after {_fmt(v['asr_after_spectre'])}"
                         for k, v in m["by_count"].items())
    if "by_rate" in m:
        return "; ".join(f"{r}: ASR {_fmt(v['attack_success_rate'])}, clean {_fmt(v['clean_accuracy'])}"
                         for r, v in m["by_rate"].items())
    return "; ".join(f"{k.replace('_', ' ')} {_fmt(v)}" for k, v in m.items())


def reproduction_table(records: Iterable[dict]) -> str:
    """The paper's number beside the measured one, one row per reproduction."""
    lines = ["| ID | setting | paper | target | measured (mean ± sd over seeds) | seeds | time | verdict |",
             "|---|---|---|---|---|---|---|---|"]
    for r in records:
        verdict = "PASS" if r["passed"] else "MISS"
        lines.append(f"| {r['id']} | {r['title']} | {r['paper']} | {r['target']} | {measured_text(r)} "
                     f"| {r['seeds']} | {r['seconds'] / 60:.1f} min | {verdict}: {r['verdict']} |")
    return "\n".join(lines) + "\n"
