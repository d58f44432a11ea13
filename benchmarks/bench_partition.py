"""Deep Partition Aggregation, k = 1200 on MNIST: our batched ensemble beside ART 1.20.1's
DeepPartitionEnsemble, same base learner, same partitions, one run.

Setting: all 60,000 MNIST training digits, sha256 content hash -> 1200 partitions (~50 digits
each); base learner = a linear head (512 -> 10) on fixed Gabor features (R16's base model),
Adam lr 0.02, batch 16, 40 epochs. The features are computed once and given to both tools as
their input, so both train the same head on the same inputs (ART would otherwise recompute the
filter bank inside every base model). Ours trains all 1200 heads
(:func:`poisonlab.models.ensemble.train_many`, 200 models per stacked chunk: the default of
``train_many`` and of the ``dpa`` trainer; the weights do not depend on the chunking); ART's ``DeepPartitionEnsemble.fit`` trains its
base models one after the other (PyTorchClassifier.fit each), so it is timed on the first
``--art-partitions`` partitions (same hash, same samples) and its time per partition is scaled to
1200 (ART's cost is linear in the number of partitions: one independent fit each). One torch
thread for both.

    .venv/bin/python benchmarks/bench_partition.py [--art-partitions 60]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from common import data_dir, environment, write_json

K = 1200
EPOCHS, LR, BATCH = 40, 0.02, 16


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--art-partitions", type=int, default=60)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    import torch
    from torch import nn

    torch.set_num_threads(args.threads)
    from poisonlab.data import load_mnist
    from poisonlab.defenses.training.partition import _apply_features, content_hash_partitions
    from poisonlab.models import TrainConfig
    from poisonlab.models.ensemble import GaborFeatures, members_from_groups, train_many

    splits = load_mnist(data_dir())
    X, y = splits.train.X, splits.train.y
    Xt, yt = splits.test.X[:2000], splits.test.y[:2000]
    res: dict = {"setting": __doc__.split("\n\n")[1], "k": K, "epochs": EPOCHS, "lr": LR, "batch_size": BATCH,
                 "threads": args.threads}
    t = time.perf_counter()
    parts = content_hash_partitions(X, K)
    res["hash_seconds"] = time.perf_counter() - t
    t = time.perf_counter()
    feats = GaborFeatures()
    F, Ft = _apply_features(feats, X), _apply_features(feats, Xt)
    res["feature_seconds"] = time.perf_counter() - t
    members = members_from_groups(parts, K)

    def head(spec=None):
        return nn.Linear(F.shape[1], 10)

    # --- ours: all 1200 -------------------------------------------------------------------------
    cfg = TrainConfig(epochs=EPOCHS, lr=LR, batch_size=BATCH, optimizer="adam", seed=0)
    t = time.perf_counter()
    stack = train_many(head, F, y, members, config=cfg, n_classes=10)  # default chunks, as dpa
    ours_s = time.perf_counter() - t
    votes = stack.votes(Ft)
    base_acc_ours = (votes == yt[None, :]).mean(axis=1)
    res["ours"] = {"models": K, "models_per_chunk": 200, "train_seconds": ours_s, "seconds_per_model": ours_s / K,
                   "mean_base_accuracy_2000_test": float(base_acc_ours.mean())}
    print(f"ours: {K} models in {ours_s:.1f} s", file=sys.stderr, flush=True)
    write_json("partition.json", {**res, "environment": environment(), "partial": True})

    # --- ART: the first N partitions, same samples, same head -----------------------------------
    from art.estimators.classification import PyTorchClassifier
    from art.estimators.classification.deep_partition_ensemble import DeepPartitionEnsemble

    N = args.art_partitions
    keep = np.flatnonzero(parts < N)
    torch.manual_seed(0)
    model = head()
    base = PyTorchClassifier(model=model, loss=nn.CrossEntropyLoss(), optimizer=torch.optim.Adam(model.parameters(), lr=LR),
                             input_shape=(F.shape[1],), nb_classes=10)
    lookup = dict(zip(map(bytes, (F[i].tobytes() for i in keep)), parts[keep]))
    t = time.perf_counter()
    art = DeepPartitionEnsemble(base, hash_function=lambda row: int(lookup[row.tobytes()]), ensemble_size=N,
                                channels_first=True)
    build_s = time.perf_counter() - t
    onehot = np.eye(10, dtype=np.float32)[y[keep]]
    t = time.perf_counter()
    art.fit(F[keep], onehot, batch_size=BATCH, nb_epochs=EPOCHS)
    art_s = time.perf_counter() - t
    art_votes = np.stack([c.predict(Ft).argmax(1) for c in art.classifiers])
    base_acc_art = (art_votes == yt[None, :]).mean(axis=1)
    per_model = (art_s + build_s) / N
    res["art"] = {"models_timed": N, "fit_seconds": art_s, "build_seconds": build_s,
                  "seconds_per_model": per_model, "estimated_seconds_for_1200": per_model * K,
                  "mean_base_accuracy_2000_test": float(base_acc_art.mean()),
                  "scaling": f"(fit + build time of {N} partitions) / {N} x {K}"}
    res["ours_same_partitions_base_accuracy"] = float(base_acc_ours[:N].mean())
    res["speedup_ours_over_art"] = res["art"]["estimated_seconds_for_1200"] / ours_s
    res["ours_within_10_minutes"] = ours_s <= 600
    res["environment"] = environment()
    res["command"] = " ".join(["benchmarks/bench_partition.py", *sys.argv[1:]])
    path = write_json("partition.json", res)
    print("| tool | models trained | seconds | s / model | est. s for 1200 | mean base acc |\n|---|---|---|---|---|---|")
    print(f"| poisonlab train_many | {K} | {ours_s:.1f} | {ours_s / K:.4f} | {ours_s:.1f} | {base_acc_ours.mean():.3f} |")
    print(f"| ART DeepPartitionEnsemble | {N} | {art_s + build_s:.1f} | {per_model:.4f} | {per_model * K:.1f} | "
          f"{base_acc_art.mean():.3f} |")
    print(f"\nspeed-up {res['speedup_ours_over_art']:.1f}x; features {res['feature_seconds']:.1f} s and hash "
          f"{res['hash_seconds']:.1f} s (shared, not in either time); wrote {path}")


if __name__ == "__main__":
    main()
