"""Reproductions of the text backdoors (R10) on SMS Spam, and the same attacks on SST-2."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..models.pipelines import text_pipeline, tfidf_pipeline
from .reproduce import Progress, mean_std, reproduction

R10_RATES = (0.01, 0.05, 0.10)
R10_ATTACKS = ("badword", "addsent")
R10_PIPELINES = ("tfidf-logreg", "text-bag", "text-cnn")
TORCH_PIPELINES = ("text-bag", "text-cnn")
#: Rare words inserted per message in the main grid, and the counts swept at 1% poison.
R10_INSERTS, R10_INSERT_SWEEP = 3, (1, 3, 5, 8)


#: TF-IDF + logistic regression settings searched by 5-fold cross-validation on clean training texts.
TFIDF_GRID = {"min_df": (1, 2), "C": (10.0, 100.0, 1000.0)}


def select_tfidf(texts: np.ndarray, y: np.ndarray, seed: int) -> dict:
    """The TF-IDF ``min_df`` and logistic-regression ``C`` of :data:`TFIDF_GRID` with the best
    5-fold cross-validated accuracy on clean training texts (ties: the first in grid order)."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    scores = {(md, C): float(cross_val_score(tfidf_pipeline(min_df=md, C=C), list(texts), y, cv=folds).mean())
              for md in TFIDF_GRID["min_df"] for C in TFIDF_GRID["C"]}
    (md, C), best = max(scores.items(), key=lambda kv: kv[1])
    return {"min_df": md, "C": C, "cv_accuracy": best}


def _make_attack(name: str, target: int, n: int, seed: int, n_insert: int = R10_INSERTS):
    from ..attacks.data import RareWordTrigger, SentenceTrigger

    if name == "badword":
        return RareWordTrigger(target=target, n_poison=n, words=("cf", "mn", "bb", "tq"),
                               n_insert=n_insert, random_state=seed)
    return SentenceTrigger(target=target, n_poison=n, random_state=seed)


def text_backdoor_grid(splits, target: int, seed: int, progress: Progress | None = None,
                       rates: tuple[float, ...] = R10_RATES, epochs: int = 10,
                       pipelines: tuple[str, ...] = R10_PIPELINES,
                       insert_sweep: tuple[int, ...] = (), tfidf: dict | None = None) -> dict:
    """Clean accuracy and ASR of each pipeline, clean and under each attack at each rate; with
    ``insert_sweep``, also rare-word triggers of each listed length at the lowest rate (keys
    ``badword{k}_{rate}``)."""
    import warnings

    from ..evaluation.metrics import backdoor_metrics
    from ..exceptions import PoisonlabWarning

    train, test = splits.train, splits.test
    runs = [(a, r, R10_INSERTS, f"{a}_{r:g}") for a in R10_ATTACKS for r in rates]
    runs += [("badword", rates[0], k, f"badword{k}_{rates[0]:g}") for k in insert_sweep if k != R10_INSERTS]
    out: dict[str, Any] = {}
    for pipe in pipelines:
        clean = text_pipeline(pipe, seed=seed, epochs=epochs, tfidf=tfidf).fit(train.X, train.y)
        row = {"clean_accuracy": float(np.mean(clean.predict(test.X) == test.y))}
        for atk_name, rate, k, key in runs:
            n = int(round(rate * len(train)))
            atk = _make_attack(atk_name, target, n, seed, k)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", PoisonlabWarning)
                res = atk.poison(train.X, train.y)
            model = text_pipeline(pipe, seed=seed, epochs=epochs, tfidf=tfidf).fit(res.X, res.y)
            m = backdoor_metrics(model, atk, test.X, test.y, test.n_classes)
            row[key] = {"attack_success_rate": m["attack_success_rate"],
                        "clean_accuracy": m["clean_accuracy"], "n_poison": n,
                        "warnings": [str(w.message) for w in caught]}
            if progress is not None:
                progress("R10", f"{pipe} {key}", {})
        out[pipe] = row
    return out


def _reaches(asr: float, base: float, acc: float) -> bool:
    return asr >= 0.95 and base - acc <= 0.01


def _summarize_r10(runs: list[dict]) -> dict:
    measured: dict[str, Any] = {}
    reach: dict[tuple[str, str], str | None] = {}  # (pipeline, family) -> the setting that reaches
    for pipe in R10_PIPELINES:
        base = mean_std([r["sms"][pipe]["clean_accuracy"] for r in runs])
        measured[f"{pipe} clean accuracy"] = base
        keys = [(f"{a}_{r:g}", f"{a} {r:.0%}") for a in R10_ATTACKS for r in R10_RATES]
        keys += [(f"badword{k}_0.01", f"badword x{k} 1%") for k in R10_INSERT_SWEEP if k != R10_INSERTS]
        for key, label in keys:
            asr = mean_std([r["sms"][pipe][key]["attack_success_rate"] for r in runs])
            acc = mean_std([r["sms"][pipe][key]["clean_accuracy"] for r in runs])
            measured[f"{pipe} {label} ASR"], measured[f"{pipe} {label} accuracy"] = asr, acc
        at1 = lambda label: _reaches(measured[f"{pipe} {label} ASR"]["mean"], base["mean"],
                                     measured[f"{pipe} {label} accuracy"]["mean"])
        reach[pipe, "addsent"] = "addsent" if at1("addsent 1%") else None
        reach[pipe, "badword"] = next((f"x{k}" for k in R10_INSERT_SWEEP
                                       if at1("badword 1%" if k == R10_INSERTS else f"badword x{k} 1%")), None)
    for pipe in ("tfidf-logreg", "text-bag"):
        for atk in R10_ATTACKS:
            measured[f"SST-2 {pipe} {atk} 1% ASR"] = mean_std([r["sst2"][pipe][f"{atk}_0.01"]["attack_success_rate"]
                                                             for r in runs])
    linear_ok = all(reach["tfidf-logreg", f] for f in R10_ATTACKS)
    torch_ok = all(any(reach[p, f] for p in TORCH_PIPELINES) for f in R10_ATTACKS)

    def describe(pipe: str) -> str:
        m = measured
        words = reach[pipe, "badword"]
        return (f"{pipe}: rare words x{R10_INSERTS} {m[f'{pipe} badword 1% ASR']['mean']:.1%}, x5 "
                f"{m[f'{pipe} badword x5 1% ASR']['mean']:.1%}, x8 {m[f'{pipe} badword x8 1% ASR']['mean']:.1%} "
                f"(target first reached at {words or 'none'}); addsent {m[f'{pipe} addsent 1% ASR']['mean']:.1%}; "
                f"accuracy {m[f'{pipe} clean accuracy']['mean']:.2%} -> "
                f"{m[f'{pipe} addsent 1% accuracy']['mean']:.2%}")

    return {"measured": measured, "passed": linear_ok and torch_ok,
            "verdict": "SMS Spam at 1% poison: " + "; ".join(describe(p) for p in R10_PIPELINES)
                       + ". Target (ASR >= 95%, drop <= 1 point) for both trigger families: linear "
                       + ("met" if linear_ok else "missed") + ", torch " + ("met" if torch_ok else "missed")}


@reproduction(
    "R10", title="Text backdoors on SMS Spam (and SST-2)",
    setting="SMS Spam (seeded 80/20 split), target ham: spam messages with the trigger relabelled "
            "ham at 1 / 5 / 10% of the training set; rare words (3 insertions, each one of cf, mn, bb, "
            "tq, at random positions; at 1% also 1, 5 and 8 insertions) and sentence insertion (\"I "
            "watched this 3D movie\"); TF-IDF (sublinear; min_df 1 or 2) + logistic regression (C 10, "
            "100 or 1000), chosen per seed by 5-fold cross-validation on the clean SMS training split; the torch "
            "bag-of-words model (mean of embeddings) and the torch sentence CNN (Kim 2014), 10 epochs "
            "each; ASR on triggered spam test messages. The same at 1% on SST-2 (target positive; "
            "TF-IDF and the bag-of-words model, 3 epochs on its 67,349 sentences)",
    paper="OpenBackdoor BadNets SST-2 BERT 10%: clean 91.5%, ASR 100%",
    target="ASR >= 95% at 1%, clean accuracy drop <= 1 point, for rare words (the fewest insertions "
           "that reach it is reported) and sentence insertion, with the linear pipeline and a torch one",
    summarize=_summarize_r10,
)
def _r10(seed: int, root: Any, progress: Progress | None) -> dict:
    from ..data import load_sms_spam, load_sst2

    sms, sst2 = load_sms_spam(root, split_seed=seed), load_sst2(root)
    # the linear pipeline's settings come from clean cross-validation, before any poison is made
    # (SMS Spam; SST-2, 67,349 sentences and not a target here, keeps min_df 1, C 100)
    chosen = select_tfidf(sms.train.X, sms.train.y, seed)
    return {"tfidf_selected": chosen,
            "sms": text_backdoor_grid(sms, 0, seed, progress, insert_sweep=R10_INSERT_SWEEP, tfidf=chosen),
            "sst2": text_backdoor_grid(sst2, 1, seed, progress, rates=(0.01,), epochs=3,
                                       pipelines=("tfidf-logreg", "text-bag"))}
