"""R17: RONI (Nelson et al. 2008) against the dictionary attack on SMS Spam with multinomial
naive Bayes.

Threat model: the attacker adds spam-labelled messages that hold the victim's 1,000 most common
ham words (:class:`~poisonlab.attacks.data.DictionaryAttack`), 1 / 5 / 10% of the training set;
the defender scores every training message with :class:`~poisonlab.defenses.training.RONI`
(closed-form naive Bayes updates) and trains on what it accepts.
"""

from __future__ import annotations

import numpy as np

from .common import RunContext, mean_std

ID = "R17"
TITLE = "RONI against the dictionary attack on SMS Spam"
SETTING = ("SMS Spam (seeded 80/20 split), CountVectorizer + multinomial naive Bayes (alpha 1); dictionary "
           "attack: spam-labelled messages holding the 1,000 words found in most training ham messages, "
           "1 / 5 / 10% of the training set; RONI with the paper's 5 trials of 20 training and 50 quiz "
           "messages drawn from trusted data (a seeded 10% of the clean training messages: the defender's "
           "vetted corpus; drawing them from the poisoned set itself missed every attack message of one "
           "seed at 10%, whose draws held attack messages), reject above a 0.05 mean quiz-accuracy loss; "
           "detection = attack messages rejected, false positives = clean messages rejected")
PAPER = "1% attack messages make SpamBayes useless; RONI catches dictionary attacks (Nelson et al. 2008)"
TARGET = "attack detection >= 90%, clean false positives <= 5%"
#: Expected CPU minutes per seed on one thread.
MINUTES = 0.5
DATA = ("sms-spam",)

R17_RATES = (0.01, 0.05, 0.10)
R17_WORDS = 1000
R17_THRESHOLD = 0.05
#: Fraction of the clean training messages the defender has vetted (RONI's training/quiz pool).
R17_TRUSTED = 0.10


def nb_pipeline():
    """The victim: word counts + multinomial naive Bayes."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.naive_bayes import MultinomialNB
    from sklearn.pipeline import make_pipeline

    return make_pipeline(CountVectorizer(), MultinomialNB())


def run(seed: int, ctx: RunContext) -> dict:
    import time

    from ..attacks.data import DictionaryAttack
    from ..data import load_sms_spam
    from ..defenses.training import RONI

    s = load_sms_spam(ctx.data_dir, split_seed=seed)
    X, y = np.asarray(s.train.X, dtype=object), s.train.y
    Xt, yt = np.asarray(s.test.X, dtype=object), s.test.y
    clean = nb_pipeline().fit(X, y)
    out = {"clean_accuracy": float(np.mean(clean.predict(Xt) == yt)), "rates": {}}
    for rate in R17_RATES:
        res = DictionaryAttack(poison_rate=rate, n_words=R17_WORDS, random_state=seed).poison(X, y)
        poisoned = nb_pipeline().fit(res.X, res.y)
        t0 = time.perf_counter()
        trusted = np.random.default_rng(seed).choice(len(y), int(R17_TRUSTED * len(y)), replace=False)
        roni = RONI(threshold=R17_THRESHOLD, random_state=seed).fit(
            res.X, res.y, model_factory=nb_pipeline, X_trusted=X[trusted], y_trusted=y[trusted])
        seconds = time.perf_counter() - t0
        m = res.poison_mask
        out["rates"][f"{rate:g}"] = {
            "detection": float(roni.flags_[m].mean()), "false_positive_rate": float(roni.flags_[~m].mean()),
            "accuracy_poisoned": float(np.mean(poisoned.predict(Xt) == yt)),
            "ham_as_spam_poisoned": float(np.mean(poisoned.predict(Xt[yt == 0]) == 1)),
            "accuracy_roni": float(np.mean(roni.predict(Xt) == yt)),
            "min_attack_score": float(roni.scores_[m].min()), "max_clean_score": float(roni.scores_[~m].max()),
            "seconds": seconds, "n_attack": int(m.sum()), "n_train": int(len(m))}
    return out


def summarize(runs: list[dict]) -> dict:
    by = {rate: {k: mean_std([r["rates"][rate][k] for r in runs])
                 for k in ("detection", "false_positive_rate", "accuracy_poisoned", "accuracy_roni", "seconds")}
          for rate in runs[0]["rates"]}
    clean = mean_std([r["clean_accuracy"] for r in runs])
    passed = all(v["detection"]["mean"] >= 0.9 and v["false_positive_rate"]["mean"] <= 0.05 for v in by.values())
    return {"measured": {"clean_accuracy": clean, "by_attack_rate": by, "seeds": len(runs)}, "passed": passed,
            "verdict": "; ".join(f"{float(k):.0%}: detection {v['detection']['mean']:.1%}, FP "
                                 f"{v['false_positive_rate']['mean']:.2%}, accuracy {v['accuracy_poisoned']['mean']:.1%}"
                                 f" -> {v['accuracy_roni']['mean']:.1%} (clean {clean['mean']:.1%})"
                                 for k, v in by.items()) + f" ({len(runs)} seeds)"}
