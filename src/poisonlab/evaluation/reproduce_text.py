"""Reproductions of the text backdoors (R10) on SMS Spam, and the same attacks on SST-2."""

from __future__ import annotations

from typing import Any

import numpy as np

from .reproduce import Progress, mean_std, reproduction

R10_RATES = (0.01, 0.05, 0.10)
R10_ATTACKS = ("badword", "addsent")
R10_PIPELINES = ("tfidf-logreg", "text-bag")


def text_pipeline(name: str, seed: int, epochs: int = 10):
    """The reference text classifiers: TF-IDF + logistic regression, or the torch bag-of-words
    model (TextBag over a fitted vocabulary)."""
    from ..models import SklearnClassifier, TorchClassifier, TrainConfig
    from ..models.text import Vocabulary
    from .experiment import model_factory

    if name == "tfidf-logreg":
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline

        return SklearnClassifier(make_pipeline(TfidfVectorizer(sublinear_tf=True),
                                               LogisticRegression(C=100.0, max_iter=3000)))
    return TorchClassifier(model_factory("text-bag", "text"), vocabulary=Vocabulary(),
                           config=TrainConfig(epochs=epochs, batch_size=64, lr=3e-3, seed=seed))


def _make_attack(name: str, target: int, n: int, seed: int):
    from ..attacks.data import RareWordTrigger, SentenceTrigger

    if name == "badword":
        return RareWordTrigger(target=target, n_poison=n, words=("cf", "mn", "bb", "tq"), n_insert=3,
                               random_state=seed)
    return SentenceTrigger(target=target, n_poison=n, random_state=seed)


def text_backdoor_grid(splits, target: int, seed: int, progress: Progress | None = None,
                       rates: tuple[float, ...] = R10_RATES, epochs: int = 10) -> dict:
    """Clean accuracy and ASR of each pipeline, clean and under each attack at each rate."""
    import warnings

    from ..evaluation.metrics import backdoor_metrics
    from ..exceptions import PoisonlabWarning

    train, test = splits.train, splits.test
    out: dict[str, Any] = {}
    for pipe in R10_PIPELINES:
        clean = text_pipeline(pipe, seed, epochs).fit(train.X, train.y)
        row = {"clean_accuracy": float(np.mean(clean.predict(test.X) == test.y))}
        for atk_name in R10_ATTACKS:
            for rate in rates:
                n = int(round(rate * len(train)))
                atk = _make_attack(atk_name, target, n, seed)
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always", PoisonlabWarning)
                    res = atk.poison(train.X, train.y)
                model = text_pipeline(pipe, seed, epochs).fit(res.X, res.y)
                m = backdoor_metrics(model, atk, test.X, test.y, test.n_classes)
                row[f"{atk_name}_{rate:g}"] = {"attack_success_rate": m["attack_success_rate"],
                                               "clean_accuracy": m["clean_accuracy"], "n_poison": n,
                                               "warnings": [str(w.message) for w in caught]}
                if progress is not None:
                    progress("R10", f"{pipe} {atk_name} {rate:g}", {})
        out[pipe] = row
    return out


def _summarize_r10(runs: list[dict]) -> dict:
    measured: dict[str, Any] = {}
    ok = True
    for pipe in R10_PIPELINES:
        base = mean_std([r["sms"][pipe]["clean_accuracy"] for r in runs])
        measured[f"{pipe} clean accuracy"] = base
        for atk in R10_ATTACKS:
            for rate in R10_RATES:
                k = f"{atk}_{rate:g}"
                asr = mean_std([r["sms"][pipe][k]["attack_success_rate"] for r in runs])
                acc = mean_std([r["sms"][pipe][k]["clean_accuracy"] for r in runs])
                measured[f"{pipe} {atk} {rate:.0%} ASR"] = asr
                measured[f"{pipe} {atk} {rate:.0%} accuracy"] = acc
                if rate == 0.01:
                    ok = ok and asr["mean"] >= 0.95 and base["mean"] - acc["mean"] <= 0.01
    for pipe in R10_PIPELINES:
        for atk in R10_ATTACKS:
            k = f"{atk}_0.01"
            measured[f"SST-2 {pipe} {atk} 1% ASR"] = mean_std([r["sst2"][pipe][k]["attack_success_rate"] for r in runs])
    at1 = "; ".join(f"{p} {a}: ASR {measured[f'{p} {a} 1% ASR']['mean']:.1%}, accuracy "
                    f"{measured[f'{p} clean accuracy']['mean']:.2%} -> {measured[f'{p} {a} 1% accuracy']['mean']:.2%}"
                    for p in R10_PIPELINES for a in R10_ATTACKS)
    return {"measured": measured, "passed": ok, "verdict": f"SMS Spam at 1% poison: {at1} (target ASR >= 95%, "
                                                             f"drop <= 1 point)"}


@reproduction(
    "R10", title="Text backdoors on SMS Spam (and SST-2)",
    setting="SMS Spam (seeded 80/20 split), target ham: spam messages with the trigger relabelled "
            "ham at 1 / 5 / 10% of the training set; rare words (3 insertions, each one of cf, mn, bb, "
            "tq, at random positions) and sentence insertion (\"I watched this 3D movie\"); TF-IDF "
            "(sublinear) + logistic regression C = 100, and the torch bag-of-words model (10 epochs); "
            "ASR on triggered spam test messages. The same at 1% on SST-2 (target positive; the torch "
            "model 3 epochs on its 67,349 sentences)",
    paper="OpenBackdoor BadNets SST-2 BERT 10%: clean 91.5%, ASR 100%",
    target="ASR >= 95% at 1%, clean accuracy drop <= 1 point",
    summarize=_summarize_r10,
)
def _r10(seed: int, root: Any, progress: Progress | None) -> dict:
    from ..data import load_sms_spam, load_sst2

    return {"sms": text_backdoor_grid(load_sms_spam(root, split_seed=seed), 0, seed, progress),
            "sst2": text_backdoor_grid(load_sst2(root), 1, seed, progress, rates=(0.01,), epochs=3)}
