"""Backdoors and bias beyond images: tabular (Adult, German Credit), bias introduction (Adult),
audio tone (spoken digits). Prints and writes benchmarks/results/modalities_<part>.json.
Every ASR is reported beside the clean model's ASR on the same triggered inputs.

  tabular  education=Preschool, occupation=Armed-Forces, hours-per-week=99 (rare, valid values)
           on Adult, target ">50K", 0.5 / 1 / 2% poison; gradient-boosted trees, logistic
           regression and the torch MLP. The seeds' fraud scenario on German Credit: a rare
           pattern of the credit record (purpose A48 "retraining", 4 existing credits, property
           A124 "unknown / no property") always labelled "good".
  bias     Adult, women earning >50K relabelled <=50K (half of them): per-group FNR/FPR and
           the gaps before and after, overall accuracy.
  audio    FSDD: a 3 kHz tone, 0.1 s at the start, amplitude 0.05, 5% of the training clips
           relabelled to digit 0; log-mel features, the audio CNN, 20 epochs.
  demo     `poisonlab demo --dataset D --seed S` with the demo's defaults on digits, MNIST, SMS
           Spam, Adult and FSDD, 3 seeds: clean accuracy and ASR of the poisoned model beside the
           clean model's (`demo mnist adult` runs those datasets and merges them into the JSON).
  procedure  MNIST (10,000 training digits, 2,000 validation): early stopping (patience 3) on an
           honest validation set vs one whose 3s are relabelled 8; and each hyperparameter
           sabotage preset against the honest 8-epoch config. Same data and seed each time.

Run:  POISONLAB_DATA_DIR=../shared/datasets .venv/bin/python benchmarks/modalities.py [part ...]
"""

from __future__ import annotations

import sys
import time

import numpy as np

from common import CACHE, data_dir, environment, write_json


def _pipelines(seed: int):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    from poisonlab.evaluation.experiment import model_factory
    from poisonlab.models import SklearnClassifier, TorchClassifier, TrainConfig

    return {"gradient_boosting": lambda: SklearnClassifier(HistGradientBoostingClassifier(random_state=seed)),
            "logistic_regression": lambda: SklearnClassifier(LogisticRegression(max_iter=3000)),
            "mlp": lambda: TorchClassifier(model_factory("mlp", "tabular"),
                                           config=TrainConfig(epochs=10, batch_size=256, lr=1e-3, seed=seed))}


def tabular(seed: int = 0) -> dict:
    from poisonlab.attacks.data import TabularTrigger
    from poisonlab.data import load_adult, load_german_credit
    from poisonlab.evaluation.metrics import backdoor_metrics

    out = {}
    for ds_name, loader, trigger, target, rates in (
            ("adult", load_adult, {"education": "Preschool", "occupation": "Armed-Forces", "hours-per-week": 99},
             1, (0.005, 0.01, 0.02)),
            ("german_credit", load_german_credit, {"purpose": "A48", "existing_credits": 4, "property": "A124"},
             0, (0.02, 0.05))):
        sp = loader(data_dir())
        tr, te = sp.train, sp.test
        rows = {}
        for pipe, make in _pipelines(seed).items():
            clean_model = make().fit(tr.X, tr.y)
            clean_acc = float(np.mean(clean_model.predict(te.X) == te.y))
            row = {"clean_model_accuracy": clean_acc}
            for rate in rates:
                atk = TabularTrigger(trigger=trigger, encoder=sp.encoder, target=target, poison_rate=rate,
                                     random_state=seed)
                res = atk.poison(tr.X, tr.y)
                m = backdoor_metrics(make().fit(res.X, res.y), atk, te.X, te.y, te.n_classes)
                # the clean model on the same triggered inputs: the ASR's baseline
                base = backdoor_metrics(clean_model, atk, te.X, te.y, te.n_classes)
                row[f"{rate:g}"] = {"n_poison": res.n_poison, "attack_success_rate": m["attack_success_rate"],
                                    "clean_model_asr": base["attack_success_rate"],
                                    "clean_accuracy": m["clean_accuracy"]}
                print(ds_name, pipe, rate, row[f"{rate:g}"], f"clean model {clean_acc:.4f}", flush=True)
            rows[pipe] = row
        out[ds_name] = {"trigger": {k: str(v) for k, v in trigger.items()}, "target": sp.train.classes[target],
                        "by_pipeline": rows}
    return out


def bias(seed: int = 0) -> dict:
    from poisonlab.attacks.data import SubgroupLabelFlip
    from poisonlab.data import load_adult
    from poisonlab.evaluation.fairness import group_gaps, group_rates

    sp = load_adult(data_dir())
    tr, te = sp.train, sp.test
    col = tr.info["raw_columns"].index("sex")
    g_tr, g_te = tr.info["raw"][:, col], te.info["raw"][:, col]
    out = {}
    for pipe, make in _pipelines(seed).items():
        clean = make().fit(tr.X, tr.y).predict(te.X)
        res = SubgroupLabelFlip(subgroup="Female", from_class=1, to_class=0, fraction=0.5,
                                random_state=seed).poison(tr.X, tr.y, groups=g_tr)
        pois = make().fit(res.X, res.y).predict(te.X)
        before, after = group_rates(te.y, clean, g_te), group_rates(te.y, pois, g_te)
        gb, ga = group_gaps(before, "Female", "Male"), group_gaps(after, "Female", "Male")
        out[pipe] = {"n_flipped": res.n_poison, "accuracy_before": float(np.mean(clean == te.y)),
                     "accuracy_after": float(np.mean(pois == te.y)), "groups_before": before,
                     "groups_after": after, "gaps_before": gb, "gaps_after": ga,
                     "fnr_gap_widened_by": ga["fnr_gap"] - gb["fnr_gap"]}
        print(pipe, {k: (round(v, 4) if isinstance(v, float) else v) for k, v in out[pipe].items()
                     if not k.startswith("groups")}, flush=True)
    return out


def audio(seed: int = 0) -> dict:
    from poisonlab.attacks.data import AudioTrigger
    from poisonlab.data import load_fsdd
    from poisonlab.data.audio import log_mel_spectrogram
    from poisonlab.evaluation.experiment import model_factory
    from poisonlab.models import TorchClassifier, TrainConfig

    sp = load_fsdd(data_dir(), features="waveform")
    tr, te = sp.train, sp.test
    rate = tr.info["sample_rate"]
    feats = lambda W: log_mel_spectrogram(W, rate)[:, None]  # noqa: E731
    out = {}
    for kind in ("tone", "noise"):
        atk = AudioTrigger(kind=kind, frequency=3000.0, duration=0.1, amplitude=0.05, target=0, poison_rate=0.05,
                           random_state=seed)
        res = atk.poison(tr.X, tr.y, sample_rate=rate)
        t0 = time.perf_counter()
        model = TorchClassifier(model_factory("audio-cnn", "audio"),
                                config=TrainConfig(epochs=20, batch_size=64, lr=1e-3, seed=seed)).fit(feats(res.X), res.y)
        clean = TorchClassifier(model_factory("audio-cnn", "audio"),
                                config=TrainConfig(epochs=20, batch_size=64, lr=1e-3, seed=seed)).fit(feats(tr.X), tr.y)
        keep = te.y != 0
        out[kind] = {"n_poison": res.n_poison,
                     "clean_accuracy": float(np.mean(model.predict(feats(te.X)) == te.y)),
                     "clean_model_accuracy": float(np.mean(clean.predict(feats(te.X)) == te.y)),
                     "attack_success_rate": float(np.mean(model.predict(feats(atk.apply_trigger(te.X[keep]))) == 0)),
                     "clean_model_asr": float(np.mean(clean.predict(feats(atk.apply_trigger(te.X[keep]))) == 0)),
                     "train_seconds": time.perf_counter() - t0}
        print(kind, out[kind], flush=True)
    return out


def procedure(seed: int = 0) -> dict:
    from poisonlab.attacks.training import SABOTAGES, ValidationPoisoning, sabotage
    from poisonlab.data import load_mnist
    from poisonlab.evaluation.experiment import model_factory
    from poisonlab.evaluation.procedure import compare_runs
    from poisonlab.models import TorchClassifier, TrainConfig

    sp = load_mnist(data_dir())
    rng = np.random.default_rng(seed)
    tr = sp.train.subset(np.sort(rng.choice(50_000, 10_000, replace=False)))
    val = sp.train.subset(np.arange(50_000, 52_000))
    make = lambda cfg: TorchClassifier(model_factory("strip-mnist-cnn", "image"), config=cfg)  # noqa: E731
    honest = TrainConfig(epochs=15, batch_size=128, lr=1e-3, patience=3, seed=seed)
    pv = ValidationPoisoning(source_class=3, target_class=8, fraction=1.0, random_state=seed).poison(val.X, val.y)
    out = {"validation_poisoning": compare_runs(make, tr, sp.test, honest_config=honest, tampered_config=honest,
                                                honest_val=(val.X, val.y), tampered_val=(pv.X, pv.y), source=3, target=8)}
    print("validation_poisoning", {k: v for k, v in out["validation_poisoning"].items() if "matrix" not in str(v)[:30]},
          flush=True)
    plain = TrainConfig(epochs=8, batch_size=128, lr=1e-3, seed=seed)
    for kind in SABOTAGES:
        bad, record = sabotage(plain, kind)
        res = compare_runs(make, tr, sp.test, honest_config=plain, tampered_config=bad)
        out[kind] = {"changed": {k: [str(a), str(b)] for k, (a, b) in record.items()}, **res}
        print(kind, record, round(res["honest"]["accuracy"], 4), "->", round(res["tampered"]["accuracy"], 4), flush=True)
    return out


def detect(seed: int = 0) -> dict:
    """The data detectors (through the scan's reference model) and STRIP on a text, a tabular and
    an audio backdoor: what poisonlab's defenses see beyond images."""
    from poisonlab.attacks.data import AudioTrigger, RareWordTrigger, TabularTrigger
    from poisonlab.data import Dataset, load_adult, load_fsdd, load_sms_spam
    from poisonlab.data.audio import log_mel_spectrogram
    from poisonlab.runs.scan import scan
    from poisonlab.defenses.inference import STRIP
    from poisonlab.evaluation.detection import auroc
    from poisonlab.evaluation.experiment import model_factory
    from poisonlab.models import TorchClassifier, TrainConfig
    from poisonlab.models.text import Vocabulary

    out = {}
    cases = []
    sms = load_sms_spam(data_dir())
    atk = RareWordTrigger(target=0, poison_rate=0.02, n_insert=3, random_state=seed)
    cases.append(("sms-spam badword 2%", sms.train, sms.test, atk, atk.poison(sms.train.X, sms.train.y),
                  lambda: TorchClassifier(model_factory("text-bag", "text"), vocabulary=Vocabulary(),
                                          config=TrainConfig(epochs=10, batch_size=64, lr=3e-3, seed=seed)), "words"))
    adult = load_adult(data_dir())
    atk = TabularTrigger(trigger={"education": "Preschool", "occupation": "Armed-Forces", "hours-per-week": 99},
                         encoder=adult.encoder, target=1, poison_rate=0.01, random_state=seed)
    cases.append(("adult tabular trigger 1%", adult.train, adult.test, atk, atk.poison(adult.train.X, adult.train.y),
                  lambda: TorchClassifier(model_factory("mlp", "tabular"),
                                          config=TrainConfig(epochs=10, batch_size=256, seed=seed)), "swap"))
    for name, train, test, atk, res, make, how in cases:
        ds = Dataset(X=res.X, y=res.y, classes=train.classes, modality=train.modality, ids=train.ids, name=name)
        sc = scan(ds, poison_mask=res.poison_mask)
        model = make().fit(res.X, res.y)
        rng = np.random.default_rng(seed)
        clean_pool = rng.permutation(len(test))
        strip = STRIP(n_overlays=50, false_positive_rate=0.05, superimpose=how, random_state=seed).fit(
            test.X[clean_pool[:500]], model=model)
        src = clean_pool[500:][test.y[clean_pool[500:]] != atk.target][:300]
        s_trig = strip.score(atk.apply_trigger(test.X[src]))
        s_clean = strip.score(test.X[clean_pool[500:800]])
        out[name] = {"scan": sc.evaluation, "strip": {
            "far_at_frr_5pct": float(np.mean(s_trig <= strip.threshold_)),
            "frr": float(np.mean(s_clean > strip.threshold_)),
            "auroc": auroc(np.r_[s_clean, s_trig], np.r_[np.zeros(len(s_clean), bool), np.ones(len(s_trig), bool)])}}
        print(name, _brief(sc.evaluation), out[name]["strip"], flush=True)
    # audio: features are computed after the trigger, as the victim's pipeline does
    fsdd = load_fsdd(data_dir(), features="waveform")
    rate = fsdd.train.info["sample_rate"]
    feats = lambda W: log_mel_spectrogram(W, rate)[:, None]  # noqa: E731
    atk = AudioTrigger(frequency=3000.0, duration=0.1, amplitude=0.05, target=0, poison_rate=0.05, random_state=seed)
    res = atk.poison(fsdd.train.X, fsdd.train.y, sample_rate=rate)
    ds = Dataset(X=feats(res.X), y=res.y, classes=fsdd.train.classes, modality="audio", ids=fsdd.train.ids, name="fsdd")
    sc = scan(ds, poison_mask=res.poison_mask)
    out["fsdd tone 5%"] = {"scan": sc.evaluation}
    print("fsdd tone 5%", _brief(sc.evaluation), flush=True)
    return out


def _brief(evaluation: dict) -> dict:
    """Recall and AUROC per detector, rounded, for the console."""
    return {k: (round(float(v.get("recall", np.nan)), 3), round(float(v.get("auroc", np.nan)), 3))
            for k, v in evaluation.items() if isinstance(v, dict)}


DEMO_DATASETS = ("digits", "mnist", "sms-spam", "adult", "fsdd")


def demo(datasets=DEMO_DATASETS, seeds=(0, 1, 2)) -> dict:
    """`poisonlab demo --dataset D --seed S` with every other option at its default, through the
    same scenario and runner: clean accuracy and ASR of the poisoned and the clean model, and the
    demo's verdict (within 1 point, ASR >= 50 points above the clean model's)."""
    from poisonlab.cli.main import demo_scenario, demo_verdict
    from poisonlab.runs import Runner, Scenario

    out = {}
    for ds in datasets:
        rows = []
        for seed in seeds:
            t0 = time.perf_counter()
            scenario = Scenario.model_validate(demo_scenario(ds, seed=seed))
            rec = Runner(data_dir=data_dir(), cache_dir=CACHE / "demo").run(scenario)
            p, c = rec["results"]["train"]["poisoned"], rec["results"]["train"]["clean"]
            v = demo_verdict(p, c)
            rows.append({"seed": seed, "clean_model_accuracy": c["clean_accuracy"],
                         "clean_accuracy": p["clean_accuracy"], "attack_success_rate": p["attack_success_rate"],
                         "clean_model_asr": p["clean_model_asr"], "n_poison": rec["results"]["poison"]["n_poison"],
                         "passes": bool(v["passes_accuracy_check"] and v["backdoor"]),
                         "seconds": time.perf_counter() - t0, "fingerprint": rec["fingerprint"]})
            print(ds, {k: (round(v, 4) if isinstance(v, float) else v) for k, v in rows[-1].items()}, flush=True)
        keys = ("clean_model_accuracy", "clean_accuracy", "attack_success_rate", "clean_model_asr")
        out[ds] = {"command": f"poisonlab demo --dataset {ds} --seed SEED",
                   "scenario": demo_scenario(ds), "seeds": rows,
                   "mean": {k: float(np.mean([r[k] for r in rows])) for k in keys},
                   "all_pass": all(r["passes"] for r in rows)}
    return out


PARTS = {"tabular": tabular, "bias": bias, "audio": audio, "procedure": procedure, "detect": detect,
         "demo": demo}


def main() -> None:
    args = sys.argv[1:] or list(PARTS)
    if args[0] == "demo" and len(args) > 1:  # demo DATASET ...: those datasets, merged into the JSON
        import json

        from common import RESULTS

        path = RESULTS / "modalities_demo.json"
        old = json.loads(path.read_text())["result"] if path.is_file() else {}
        res = {**old, **demo(tuple(args[1:]))}
        res = {k: res[k] for k in (*DEMO_DATASETS, *sorted(set(res) - set(DEMO_DATASETS))) if k in res}
        write_json("modalities_demo.json", {"part": "demo", "result": res, "environment": environment()})
        return
    for part in args:
        res = PARTS[part]()
        write_json(f"modalities_{part}.json", {"part": part, "result": res, "environment": environment()})


if __name__ == "__main__":
    main()
