"""RONI beside ART 1.20.1's RONIDefense on R17's setting (SMS Spam, CountVectorizer + multinomial
naive Bayes, dictionary attack), in one run, on the same inputs.

ART retrains a full model per candidate (sequentially, growing its trusted set with every
accepted sample), so it runs on a stratified subset of the poisoned training set: ``--subset``
messages including every attack message. poisonlab's RONI runs on the same subset (the speed
ratio compares equal work) and on the full training set. Both use accuracy on quiz data;
ART in its uncalibrated form (``eps``: calibrated RONI retrains per calibration sample per
candidate, far slower still).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_roni.py [--rate 0.01] [--subset 600]

Writes benchmarks/results/roni.json (commit, versions, command via common.environment()).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import data_dir, environment, write_json  # noqa: E402


def detection(flags: np.ndarray, mask: np.ndarray) -> dict:
    return {"detection": float(flags[mask].mean()), "false_positive_rate": float(flags[~mask].mean()),
            "n_flagged": int(flags.sum())}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=0.01)
    ap.add_argument("--subset", type=int, default=600)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--art-eps", type=float, default=0.05)
    args = ap.parse_args(argv)

    import scipy.sparse as sp
    from art.defences.detector.poison import RONIDefense
    from art.estimators.classification.scikitlearn import SklearnClassifier as ARTSklearn
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.naive_bayes import MultinomialNB

    from poisonlab.attacks.data import DictionaryAttack
    from poisonlab.data import load_sms_spam
    from poisonlab.defenses.training import RONI

    s = load_sms_spam(data_dir(), split_seed=args.seed)
    X, y = np.asarray(s.train.X, dtype=object), s.train.y
    res = DictionaryAttack(poison_rate=args.rate, n_words=1000, random_state=args.seed).poison(X, y)
    vec = CountVectorizer().fit(res.X)
    C = vec.transform(res.X).astype(np.float64)            # counts, shared by both tools
    mask = res.poison_mask
    rng = np.random.default_rng(args.seed)
    clean_idx = np.flatnonzero(~mask)
    take = np.sort(np.r_[np.flatnonzero(mask), rng.choice(clean_idx, args.subset - mask.sum(), replace=False)])
    Cs, ys, ms = C[take], res.y[take], mask[take]

    out = {"setting": {"rate": args.rate, "n_train": int(len(mask)), "n_attack": int(mask.sum()),
                       "subset": int(len(take)), "features": int(C.shape[1]), "seed": args.seed,
                       "art_eps": args.art_eps, "ours_threshold": 0.05}}
    # ours, on the subset and on everything
    t0 = time.perf_counter()
    ours = RONI(threshold=0.05, random_state=args.seed).fit(Cs, ys, model_factory=MultinomialNB)
    t_ours = time.perf_counter() - t0
    out["ours_subset"] = {"seconds": t_ours, **detection(ours.flags_, ms)}
    t0 = time.perf_counter()
    full = RONI(threshold=0.05, random_state=args.seed).fit(C, res.y, model_factory=MultinomialNB)
    out["ours_full"] = {"seconds": time.perf_counter() - t0, **detection(full.flags_, mask)}
    print("ours", out["ours_subset"], out["ours_full"], flush=True)
    # ART: dense arrays and one-hot labels, as its API takes them; trusted data = 20 clean-class draws
    Xd = Cs.toarray()
    Y = np.eye(2)[ys]
    np.random.seed(args.seed)                               # ART draws its quiz set from numpy's global RNG
    trusted = rng.choice(np.flatnonzero(~ms), 20, replace=False)
    clf = ARTSklearn(MultinomialNB())
    clf.fit(Xd, Y)
    # perf_func="accuracy" fails in ART 1.20.1 (it compares one-hot labels with probabilities):
    # the same accuracy, on argmaxes, as a callable
    def accuracy(y_true, y_prob):
        return float(np.mean(np.argmax(y_true, axis=1) == np.argmax(y_prob, axis=1)))

    art = RONIDefense(clf, Xd, Y, Xd[trusted], Y[trusted], perf_func=accuracy, calibrated=False, eps=args.art_eps)
    t0 = time.perf_counter()
    _, is_clean = art.detect_poison()
    t_art = time.perf_counter() - t0
    art_flags = np.asarray(is_clean) == 0
    out["art_subset"] = {"seconds": t_art, **detection(art_flags, ms)}
    out["speedup_subset"] = t_art / t_ours
    out["equal_or_better_detection"] = bool(out["ours_subset"]["detection"] >= out["art_subset"]["detection"]
                                            and out["ours_subset"]["false_positive_rate"]
                                            <= out["art_subset"]["false_positive_rate"])
    out["environment"] = environment()
    print(out, flush=True)
    write_json("roni.json", out)
    return out


if __name__ == "__main__":
    main()
