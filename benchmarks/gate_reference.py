"""The release gate with ``examples/gate.yaml`` on backdoored models and their clean counterparts.

For each data set, models are trained through the library (``runs.train.train_reference``),
saved with their model cards, and gated with the example policy:

* digits (sklearn, 8x8): BadNets, Blended, WaNet, and a clean model;
* MNIST (first 10,000 training images, 2,000 test images as the trusted set), when
  ``../shared/datasets/mnist`` is present: BadNets, Blended, WaNet, clean;
* SMS Spam (text), when present: a rare-word trigger (BadWord, spam -> ham), clean.

The trusted data is the test split; the baseline ("the last released version") is a clean
model of another seed; the source-derived validation set is the last 20% of the model's own
training source (poisoned for the backdoored models), held out from its training; the data scan
gets the training data the model saw. The attackers draw their own random triggers (seed 1);
the gate's probes draw theirs from the policy's seed (0).

Prints a table and writes ``benchmarks/results/gate_reference.json`` with the environment.
Run: ``.venv/bin/python benchmarks/gate_reference.py`` (one torch thread).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import CACHE, ROOT, data_dir, environment, write_json  # noqa: E402

POLICY = ROOT / "examples" / "gate.yaml"
SEED_ATTACK = 1


def _train(train, test, folder: Path, name: str, *, epochs: int, lr: float, seed: int = 0):
    """Train (or reuse the cached copy in ``folder``: same name, same training data's sha256)."""
    from poisonlab.models import ModelSpec, TrainConfig, save_model
    from poisonlab.models.io import load_classifier, read_card
    from poisonlab.runs.train import _data_sha256, train_reference

    config = TrainConfig(epochs=epochs, lr=lr, batch_size=64, seed=seed)
    path = folder / f"{name}.safetensors"
    if path.is_file():
        card = read_card(path)
        if card is not None and card.data_sha256 == _data_sha256(train) and card.train_config == config.to_dict():
            return path, SimpleNamespace(classifier=load_classifier(path), metrics=dict(card.metrics or {}),
                                         cached=True)
    res = train_reference(train, test, config=config)
    vocab = getattr(res.classifier, "vocabulary_", None)
    if vocab is not None:
        spec = ModelSpec(tuple(vocab.transform(train.X[:1]).shape[1:]), train.n_classes, vocab.vocab_size)
    else:
        spec = ModelSpec(tuple(train.X.shape[1:]), train.n_classes)
    save_model(res.classifier.module_, path, architecture=res.architecture, spec=spec, config=config.to_dict(),
               data_sha256=res.data_sha256, n_samples=res.n_samples, metrics=res.metrics,
               modality=train.modality, class_names=list(train.classes), vocabulary=vocab)
    return path, res


def _asr(clf, atk, test) -> float:
    wanted = atk.target_labels(test.y)
    keep = np.flatnonzero(test.y != wanted)
    return float(np.mean(clf.predict(atk.apply_trigger(test.X[keep])) == wanted[keep]))


def bench(name: str, train_all, test, attacks: dict, *, epochs: int, lr: float, folder: Path) -> list[dict]:
    from poisonlab.runs.gate import load_policy, run_gate

    policy = load_policy(POLICY)
    n = len(train_all)
    cut = int(0.8 * n)
    rows = []
    base_path, _ = _train(train_all.subset(np.arange(cut)), test, folder, f"{name}-baseline", epochs=epochs, lr=lr,
                          seed=1)
    variants = {"clean": None, **attacks}
    for label, atk in variants.items():
        t0 = time.perf_counter()
        source = train_all
        if atk is not None:
            res = atk.poison(train_all.X, train_all.y)
            source = train_all.with_arrays(X=res.X, y=res.y)
        fit_part = source.subset(np.arange(cut))
        val_part = source.subset(np.arange(cut, n))
        path, trained = _train(fit_part, test, folder, f"{name}-{label}", epochs=epochs, lr=lr)
        t_train = time.perf_counter() - t0
        asr = _asr(trained.classifier, atk, test) if atk is not None else None
        t0 = time.perf_counter()
        gate = run_gate(path, policy, trusted=test, baseline=base_path, source_val=val_part, train=fit_part)
        t_gate = time.perf_counter() - t0
        expected = "fail" if atk is not None else "pass"
        got = "pass" if gate.passed else "fail"
        row = {"dataset": name, "model": label, "clean_accuracy": trained.metrics.get("clean_accuracy"),
               "attack_success_rate": asr, "expected": expected, "gate": got, "correct": expected == got,
               "failed_checks": gate.failed, "warned_checks": gate.warned, "verdict": gate.verdict(),
               "checks": {c.name: {"status": c.status, "message": c.message, "measured": c.measured,
                                   "seconds": c.seconds} for c in gate.checks},
               "train_seconds": round(t_train, 1), "gate_seconds": round(t_gate, 1)}
        rows.append(row)
        print(f"{name:8s} {label:8s} acc {row['clean_accuracy']:.3f} ASR "
              f"{'-' if asr is None else f'{asr:.3f}'} gate {got.upper():4s} (expected {expected}) "
              f"failed={gate.failed} warned={gate.warned} [{t_train:.0f}s train, {t_gate:.0f}s gate]", flush=True)
    return rows


def main() -> None:
    import torch

    from poisonlab.attacks.data import BadNets, Blended, RareWordTrigger, WaNet
    from poisonlab.data import load_dataset, load_digits

    torch.set_num_threads(1)
    t_start = time.perf_counter()
    rows: list[dict] = []
    skipped = {}
    # trained models are cached under benchmarks/.cache/gate_reference (reused when the training
    # data and configuration match), so the gate can be rerun without retraining
    folder = CACHE / "gate_reference"
    folder.mkdir(parents=True, exist_ok=True)

    def image_attacks(target: int) -> dict:
        return {"badnets": BadNets(target=target, poison_rate=0.1, value=1.0, random_state=SEED_ATTACK),
                "blended": Blended(target=target, poison_rate=0.1, random_state=SEED_ATTACK),
                "wanet": WaNet(target=target, poison_rate=0.1, random_state=SEED_ATTACK)}

    d = load_digits()
    rows += bench("digits", d.train, d.test, image_attacks(3), epochs=25, lr=3e-3, folder=folder)
    root = data_dir()
    if (root / "mnist").is_dir():
        m = load_dataset("mnist", root)
        train = m.train.subset(np.arange(10000))
        test = m.test.subset(np.arange(2000))
        rows += bench("mnist", train, test, image_attacks(7), epochs=3, lr=3e-3, folder=folder)
    else:
        skipped["mnist"] = f"not found under {root}"
    if (root / "sms-spam-collection").is_dir():
        s = load_dataset("sms-spam", root)
        atk = {"badword": RareWordTrigger(target=0, poison_rate=0.03, n_insert=3, random_state=SEED_ATTACK)}
        rows += bench("sms-spam", s.train, s.test, atk, epochs=10, lr=3e-3, folder=folder)
    else:
        skipped["sms-spam"] = f"not found under {root}"
    n_ok = sum(r["correct"] for r in rows)
    print()
    print("| dataset | model | clean acc | ASR | gate | expected | failed checks | warned (non-blocking) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        asr = "—" if r["attack_success_rate"] is None else f"{r['attack_success_rate']:.1%}"
        print(f"| {r['dataset']} | {r['model']} | {r['clean_accuracy']:.1%} | {asr} | {r['gate']} | "
              f"{r['expected']} | {', '.join(r['failed_checks']) or '—'} | {', '.join(r['warned_checks']) or '—'} |")
    print(f"\n{n_ok} of {len(rows)} models decided as expected; {time.perf_counter() - t_start:.0f} s in all")
    write_json("gate_reference.json", {
        "benchmark": "gate_reference", "policy": str(POLICY.relative_to(ROOT)), "rows": rows,
        "n_correct": n_ok, "n_models": len(rows), "skipped": skipped,
        "seconds": round(time.perf_counter() - t_start, 1), "environment": environment()})


if __name__ == "__main__":
    main()
