"""The steps of one run (one grid cell): load, poison, train, scan, retrain, inspect, monitor.

:func:`run_cell` executes a concrete single-seed :class:`~poisonlab.runs.scenario.Scenario` and
returns its results as JSON-friendly data: metrics, and sha256 fingerprints of everything a
reproducibility check compares (poison mask, scores, model weights). It is a plain top-level
function of plain data, so every backend (in-process, a process pool, Ray) runs the same code.

Seeding: the cell's seed seeds everything the scenario leaves unseeded -- the attacks'
``random_state``, the training ``seed``, the detectors' ``random_state`` -- so one number
reproduces the cell. Thread counts are fixed for the duration of the cell (torch and BLAS), since
floating-point reductions depend on them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..data.dataset import Dataset, Splits
from ..exceptions import InvalidParameterError
from .cache import Cache
from .events import Event, StepFinished, StepStarted, training_callback
from .record import jsonable, sha256_array
from .scenario import Scenario

Emit = Callable[[Event], None]


# --- data ------------------------------------------------------------------------------------

def load_splits(spec: dict[str, Any], *, data_dir: str | Path | None = None) -> Splits:
    """The train/test splits a scenario's ``dataset`` names (a built-in one or a user's file),
    the training split cut to its first ``train_size`` samples when given."""
    splits = _load_splits(spec, data_dir)
    n = spec.get("train_size")
    if n is not None:
        if n > len(splits.train):
            raise InvalidParameterError(f"dataset.train_size={n} but the training split has only "
                                        f"{len(splits.train)} samples")
        train = splits.train.subset(np.arange(n))
        raw = train.info.get("raw")
        if raw is not None and len(raw) == len(splits.train):  # per-row raw columns follow the cut
            train = dataclasses.replace(train, info={**train.info, "raw": np.asarray(raw)[:n]})
        splits = dataclasses.replace(splits, train=train)
    return splits


def _load_splits(spec: dict[str, Any], data_dir: str | Path | None) -> Splits:
    from .. import data as D

    params = dict(spec.get("params") or {})
    if spec.get("name"):
        root = spec.get("data_dir") or data_dir
        entry_modality = D.DATASETS[spec["name"]][2]
        if entry_modality == "audio":
            params.setdefault("features", "waveform")  # audio triggers mix into waveforms
        return D.load_dataset(spec["name"], root, **params)
    path = Path(spec["path"])
    if path.is_dir():
        has_text = any(p.suffix == ".txt" for p in path.rglob("*.txt"))
        full = D.read_text_folder(path) if has_text else D.read_image_folder(path, **params)
    elif path.suffix.lower() == ".csv":
        return D.read_csv(path, test_fraction=spec.get("test_fraction", 0.25),
                          split_seed=spec.get("split_seed", 0), **params)
    else:
        kw = {"modality": spec["modality"]} if spec.get("modality") else {}
        full = D.read_npz(path, **kw, **params)
    return split_dataset(full, spec.get("test_fraction", 0.25), spec.get("split_seed", 0))


def split_dataset(ds: Dataset, test_fraction: float, seed: int) -> Splits:
    """A stratified train/test split of a user's single file."""
    from ..data.dataset import stratified_split

    tr, te = stratified_split(ds.y, test_fraction, seed)
    return Splits(train=ds.subset(tr), test=ds.subset(te))


def dataset_fingerprint(ds: Dataset) -> dict[str, Any]:
    return {"n": len(ds), "X_sha256": sha256_array(ds.X), "y_sha256": sha256_array(ds.y)}


# --- models ----------------------------------------------------------------------------------

def default_architecture(model: dict[str, Any], modality: str, X: Any) -> str | None:
    """The architecture a scenario's model resolves to (None for a user callable)."""
    if model.get("callable"):
        return None
    if model.get("architecture"):
        return model["architecture"]
    from ..models.architectures import default_architecture_for

    # by modality and input: raw waveforms get audio-wave-cnn (it computes its own log-mel)
    return default_architecture_for(modality, X)


def make_classifier(model: dict[str, Any], modality: str, X: Any, seed: int):
    """An unfitted classifier for the scenario's model: a reference architecture or the user's
    callable (an ``nn.Module`` factory taking a ModelSpec, or a scikit-learn estimator)."""
    from ..models.adapters import SklearnClassifier, TorchClassifier
    from ..models.architectures import build_model
    from ..models.training import TrainConfig

    train = {"seed": seed, **(model.get("train") or {})}
    config = TrainConfig(**train)
    vocabulary = None
    if modality == "text":
        from ..models.text import Vocabulary

        vocabulary = Vocabulary()
    if model.get("callable"):
        from .scenario import resolve_callable

        fn = resolve_callable(model["callable"])
        params = model.get("params") or {}
        probe = _call_user_factory(fn, None, params)
        if probe is not None and hasattr(probe, "fit") and not _is_module(probe):
            return SklearnClassifier(probe)
        return TorchClassifier(lambda spec: _call_user_factory(fn, spec, params), config=config,
                               vocabulary=vocabulary)
    name = default_architecture(model, modality, X)
    params = model.get("params") or {}
    return TorchClassifier(lambda spec: build_model(name, spec, **params), config=config,
                           vocabulary=vocabulary)


def _is_module(obj: Any) -> bool:
    from torch import nn

    return isinstance(obj, nn.Module)


def _call_user_factory(fn, spec, params):
    """Call a user's model callable: with the ModelSpec when it takes one, else with none.
    ``spec=None`` probes what it returns without building a torch model that needs a spec."""
    import inspect

    try:
        n_args = len([p for p in inspect.signature(fn).parameters.values()
                      if p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_ONLY,
                                                                              p.POSITIONAL_OR_KEYWORD)])
    except (TypeError, ValueError):
        n_args = 0
    if n_args == 0:
        return fn(**params)
    return None if spec is None else fn(spec, **params)


# --- one cell --------------------------------------------------------------------------------

@dataclass
class CellContext:
    """What one cell keeps between its steps (never shared between cells)."""

    scenario: Scenario
    seed: int
    splits: Splits
    cache: Cache
    emit: Emit
    train_X: Any = None
    train_y: Any = None
    poison_mask: np.ndarray | None = None
    attacks: list[Any] = field(default_factory=list)
    attack_facts: list[dict[str, Any]] = field(default_factory=list)
    models: dict[str, Any] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    quarantine: np.ndarray | None = None


def _seeded(params: dict[str, Any], cls: type, seed: int) -> dict[str, Any]:
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
    names = cls._param_names() if hasattr(cls, "_param_names") else []
    if "random_state" in names and "random_state" not in params:
        params["random_state"] = seed
    return params


@contextlib.contextmanager
def fixed_threads(n: int):
    """torch and BLAS thread counts fixed to ``n`` inside, restored after."""
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        torch.set_num_threads(before)


def run_cell(cell: Scenario | dict[str, Any], *, cache_dir: str | Path | None = None,
             data_dir: str | Path | None = None, emit: Emit | None = None) -> dict[str, Any]:
    """Run one concrete single-seed scenario; return ``{"results": ..., "timings": ...}``."""
    scenario = cell if isinstance(cell, Scenario) else Scenario.model_validate(cell)
    with fixed_threads(scenario.threads):
        ctx = execute_cell(scenario, cache_dir=cache_dir, data_dir=data_dir, emit=emit)
    return {"name": scenario.name, "seed": ctx.seed, "results": jsonable(ctx.results),
            "timings": ctx.timings}


def execute_cell(cell: Scenario, *, cache_dir: str | Path | None = None,
                 data_dir: str | Path | None = None, emit: Emit | None = None,
                 steps: tuple[str, ...] | None = None) -> CellContext:
    """Run ``steps`` (default: the scenario's) of one cell and return its context: the splits,
    the fitted attacks, the poison mask and the trained classifiers (``ctx.models["poisoned"]``,
    ``["clean"]``, ...) besides the results. Reproductions that inspect a model (R11-R14 use
    R1's) call this with ``steps=("poison", "train")`` and the same ``cache_dir``: the models
    then come from the cache instead of being trained again. The caller fixes the thread count
    (:func:`fixed_threads`); :func:`run_cell` does."""
    if len(cell.seeds) != 1 or cell.sweep is not None:
        raise InvalidParameterError("a cell has a single seed and no sweep (see expand)")
    emit = emit or (lambda e: None)
    t0 = time.perf_counter()
    splits = load_splits(cell.dataset.model_dump(), data_dir=data_dir)
    ctx = CellContext(scenario=cell, seed=cell.seeds[0], splits=splits, cache=Cache(cache_dir), emit=emit,
                      train_X=splits.train.X, train_y=splits.train.y)
    ctx.timings["load"] = time.perf_counter() - t0
    ctx.results["data"] = {"train": dataset_fingerprint(splits.train),
                           "test": dataset_fingerprint(splits.test),
                           "modality": splits.train.modality, "n_classes": splits.train.n_classes}
    for step in steps or cell.steps_to_run():
        emit(StepStarted(label=cell.name, step=step))
        s0 = time.perf_counter()
        STEP_FUNCTIONS[step](ctx)
        ctx.timings[step] = time.perf_counter() - s0
        emit(StepFinished(label=cell.name, step=step, seconds=ctx.timings[step],
                          summary=_headline(ctx.results.get(step))))
    return ctx


def _headline(result: Any) -> dict[str, Any]:
    if not isinstance(result, dict):
        return {}
    return {k: v for k, v in result.items() if isinstance(v, (int, float, str, bool))}


# --- steps -----------------------------------------------------------------------------------

def step_poison(ctx: CellContext) -> None:
    from .. import registry

    X, y = ctx.train_X, ctx.train_y
    mask = np.zeros(len(y), dtype=bool)
    out = []
    for comp in ctx.scenario.attacks:
        cls = registry.get("attack", comp.name)
        params = _seeded(comp.params, cls, ctx.seed)
        if "encoder" in cls._param_names() and "encoder" not in params and getattr(ctx.splits, "encoder", None):
            params["encoder"] = ctx.splits.encoder  # triggers in raw column names and units
        atk = cls(**params)
        needs, facts = _attack_needs(ctx, atk)
        rate = ctx.splits.train.info.get("sample_rate")
        if "sample_rate" in cls._param_names() and rate is not None:
            needs["sample_rate"] = int(rate)  # the attack refuses audio at another rate
        res = atk.poison(X, y, **needs)
        X, y = res.X, res.y
        mask = np.concatenate([mask, np.ones(len(y) - len(mask), dtype=bool)]) | res.poison_mask
        ctx.attacks.append(atk)
        ctx.attack_facts.append(facts)
        out.append({"attack": comp.name, "n_poison": res.n_poison, "target": res.target,
                    "poison_mask_sha256": sha256_array(res.poison_mask),
                    "info": {k: v for k, v in res.info.items() if k != "attack"}, **facts})
    ctx.train_X, ctx.train_y, ctx.poison_mask = X, y, mask
    ctx.results["poison"] = {"attacks": out, "n_poison": int(mask.sum()), "n_train": int(len(y)),
                             "poison_mask_sha256": sha256_array(mask),
                             "poisoned_data_sha256": sha256_array(X)}
    # what a report shows of each attack's trigger: a clean test input before and after it
    from .report_data import planted_trigger

    test = ctx.splits.test
    ctx.results["poison"]["triggers"] = [
        planted_trigger(atk, test.X, test.modality, feature_names=test.feature_names,
                        sample_rate=test.info.get("sample_rate")) for atk in ctx.attacks]


def _attack_needs(ctx: CellContext, atk: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The keyword extras ``atk.poison`` needs, by the scenario conventions (docs/runs.md), and
    the facts the record keeps about them (which test input is the target, which column the
    groups are).

    - ``model``: the cell's clean model (trained on the clean training split).
    - ``X_val``/``y_val``: the test split (the attacker's validation set).
    - ``target_input``: the first test input of a class other than the attack's own class
      (``base_class``, ``adversarial_class`` or ``target``), that class drawn by the cell's seed.
    - ``groups``: a per-sample column of the training split's metadata (or of a table's raw
      columns, e.g. Adult's ``sex``), chosen by the attack's ``subgroup`` -- ``"column=value"``
      names both; a bare value picks the one column holding it; with no subgroup the dataset
      must have exactly one group column.
    """
    needs: dict[str, Any] = {}
    facts: dict[str, Any] = {}
    for need in atk.needs:
        if need == "model":
            needs["model"] = trained_model(ctx, "clean", ctx.splits.train.X, ctx.splits.train.y).module_
        elif need in ("X_val", "y_val"):
            needs["X_val"], needs["y_val"] = ctx.splits.test.X, ctx.splits.test.y
        elif need == "target_input":
            index = target_input_index(ctx.splits.test.y, _attack_class(atk), ctx.seed)
            needs["target_input"] = ctx.splits.test.X[index]
            facts["target_input"] = {"test_index": index, "true_class": int(ctx.splits.test.y[index]),
                                     "id": str(ctx.splits.test.ids[index])}
        elif need == "groups":
            column, groups = group_column(ctx.splits.train, getattr(atk, "subgroup", None))
            needs["groups"] = groups
            facts["groups"] = {"column": column}
        else:
            raise InvalidParameterError(
                f"attack {type(atk).__name__} needs {need!r}, which scenarios cannot supply yet; "
                f"use the Python API (poison(X, y, {need}=...))")
    return needs, facts


def _attack_class(atk: Any) -> int | None:
    """The class an attack pushes its target towards (None when it names none)."""
    for name in ("base_class", "adversarial_class", "target"):
        value = getattr(atk, name, None)
        if value is not None and not isinstance(value, bool):
            return int(value)
    return None


def target_input_index(y_test: np.ndarray, attack_class: int | None, seed: int) -> int:
    """The scenario convention for targeted attacks: the first test input of a class other than
    ``attack_class``, that class drawn by ``seed`` among the test split's classes.

    >>> target_input_index(np.array([0, 0, 1, 2, 1]), 0, seed=0) in (2, 3)
    True
    """
    classes = np.unique(y_test)
    others = classes[classes != attack_class] if attack_class is not None else classes
    if len(others) == 0:
        raise InvalidParameterError(f"the test split has no input outside class {attack_class} "
                                    f"to serve as the target input")
    chosen = others[np.random.default_rng(seed).integers(len(others))]
    return int(np.flatnonzero(y_test == chosen)[0])


def group_columns(ds: Dataset) -> dict[str, np.ndarray]:
    """Per-sample columns that can serve as groups: the metadata columns and a table's raw
    columns (``info["raw"]``), as strings; constant columns and per-sample identifiers (one
    value per sample) are left out."""
    cols: dict[str, np.ndarray] = {k: np.asarray(v).astype(str) for k, v in ds.metadata.items()}
    raw, names = ds.info.get("raw"), ds.info.get("raw_columns")
    if raw is not None and names is not None and len(raw) == len(ds):
        raw = np.asarray(raw)
        for j, name in enumerate(names):
            cols.setdefault(str(name), raw[:, j].astype(str))
    return {k: v for k, v in cols.items() if 1 < len(np.unique(v)) < len(v)}


def group_column(ds: Dataset, subgroup: Any) -> tuple[str, np.ndarray]:
    """The scenario convention for attacks that need ``groups``: which column, and the groups
    to pass (see :func:`_attack_needs`). Refuses, naming the columns, when it is ambiguous."""
    cols = group_columns(ds)
    if not cols:
        raise InvalidParameterError(f"the attack needs groups, but the dataset {ds.name!r} has no "
                                    f"per-sample group column (metadata or raw table columns); "
                                    f"use the Python API (poison(X, y, groups=...))")
    listing = ", ".join(sorted(cols))
    if isinstance(subgroup, str) and "=" in subgroup:
        name, value = subgroup.split("=", 1)
        if name not in cols:
            raise InvalidParameterError(f"subgroup {subgroup!r}: {name!r} is not a group column of "
                                        f"{ds.name!r}; columns: {listing}")
        # the groups carry "column=value" so that the attack's subgroup names both
        return name, np.char.add(f"{name}=", cols[name]).astype(object)
    if subgroup is None:
        if len(cols) != 1:
            raise InvalidParameterError(f"the attack needs groups and {ds.name!r} has several group "
                                        f"columns ({listing}): name one as subgroup: 'column=value'")
        name = next(iter(cols))
        return name, cols[name]
    holding = [k for k, v in cols.items() if str(subgroup) in set(v.tolist())]
    if len(holding) != 1:
        where = f"several columns ({', '.join(holding)})" if holding else "no column"
        raise InvalidParameterError(f"subgroup {subgroup!r} is a value of {where} of {ds.name!r}: "
                                    f"write subgroup: 'column=value' (columns: {listing})")
    if not isinstance(subgroup, str):
        raise InvalidParameterError(f"subgroup {subgroup!r}: group columns hold strings; write "
                                    f"subgroup: '{holding[0]}={subgroup}'")
    return holding[0], cols[holding[0]]


def trained_model(ctx: CellContext, label: str, X: Any, y: Any):
    """The cell's model trained on ``(X, y)``, kept as ``ctx.models[label]``: from this cell, from
    the model cache (keyed by the dataset, model, seed, threads and the training data's hash), or
    trained now (and cached)."""
    if label in ctx.models:
        return ctx.models[label]
    scenario = ctx.scenario
    clf = make_classifier(scenario.model.model_dump(), ctx.splits.train.modality, X, ctx.seed)
    key_config = {"dataset": scenario.dataset.model_dump(), "model": scenario.model.model_dump(),
                  "seed": ctx.seed, "data_sha256": sha256_array(X), "labels_sha256": sha256_array(y),
                  "threads": scenario.threads}
    key = Cache.key(key_config)
    from ..models.adapters import TorchClassifier

    cached = ctx.cache.get_model(key) if isinstance(clf, TorchClassifier) else None
    if cached is not None:
        state, info = cached
        clf = _restore(clf, X, y, state)
        clf.training_info_ = info
    else:
        t0 = time.perf_counter()
        clf.fit(X, y, callback=training_callback(ctx.emit, f"{scenario.name}: {label} model"))
        info = {"epochs_run": len(clf.history_.train_loss) if hasattr(clf, "history_") else None,
                "train_seconds": time.perf_counter() - t0}
        clf.training_info_ = info
        if isinstance(clf, TorchClassifier):
            ctx.cache.put_model(key, clf.module_.state_dict(), info)
    ctx.models[label] = clf
    return clf


def _restore(clf, X, y, state):
    """Rebuild a TorchClassifier from cached weights (the vocabulary is refitted: deterministic)."""
    from ..models.adapters import TorchClassifier
    from ..models.architectures import ModelSpec

    vocab = None
    if clf.vocabulary is not None:
        vocab = clf.vocabulary.fit(X)
    Xp = vocab.transform(X) if vocab is not None else np.asarray(X)
    spec = ModelSpec(tuple(Xp.shape[1:]), int(np.max(y)) + 1, vocab.vocab_size if vocab is not None else None)
    module = clf.module(spec)
    module.load_state_dict(state)
    return TorchClassifier.from_trained(module, n_classes=spec.n_classes, vocabulary=vocab)


def weights_fingerprint(clf) -> str | None:
    """sha256 of a torch classifier's weights (None for a scikit-learn model)."""
    from ..models.io import weights_sha256

    module = getattr(clf, "module_", None)
    return None if module is None else weights_sha256(module)


def _evaluate(ctx: CellContext, clf) -> dict[str, Any]:
    from ..evaluation.metrics import attack_success_rate, clean_accuracy, per_class_accuracy

    test = ctx.splits.test
    pred = clf.predict(test.X)
    out: dict[str, Any] = {"clean_accuracy": clean_accuracy(test.y, pred)}
    if "per_class_accuracy" in ctx.scenario.metrics:
        out["per_class_accuracy"] = per_class_accuracy(test.y, pred, test.n_classes).tolist()
    for i, atk in enumerate(ctx.attacks):
        if not hasattr(atk, "apply_trigger"):
            continue
        wanted = atk.target_labels(test.y)
        keep = np.flatnonzero(test.y != wanted)
        pred_trig = clf.predict(atk.apply_trigger(test.X[keep]))
        key = "attack_success_rate" if len(ctx.attacks) == 1 else f"attack_success_rate[{i}]"
        out[key] = attack_success_rate(test.y[keep], pred_trig, wanted[keep])
    for i, (atk, facts) in enumerate(zip(ctx.attacks, ctx.attack_facts)):
        if "target_input" in facts:  # targeted attacks: is the target input in the attack's class?
            key = "target_hit" if len(ctx.attacks) == 1 else f"target_hit[{i}]"
            out[key] = bool(pred[facts["target_input"]["test_index"]] == _attack_class(atk))
    out["weights_sha256"] = weights_fingerprint(clf)
    out.update({k: v for k, v in getattr(clf, "training_info_", {}).items() if k == "epochs_run"})
    return out


def step_train(ctx: CellContext) -> None:
    results: dict[str, Any] = {}
    label = "poisoned" if ctx.attacks else "model"
    clf = trained_model(ctx, label, ctx.train_X, ctx.train_y)
    results[label] = _evaluate(ctx, clf)
    if ctx.attacks and ctx.scenario.clean_baseline:
        clean = trained_model(ctx, "clean", ctx.splits.train.X, ctx.splits.train.y)
        results["clean"] = _evaluate(ctx, clean)
        # every ASR beside the clean model's ASR on the same triggered inputs (and a targeted
        # attack's hit beside the clean model's prediction of the same target input)
        for k in list(results["clean"]):
            if k.startswith("attack_success_rate"):
                results[label]["clean_model_" + k.replace("attack_success_rate", "asr")] = results["clean"][k]
            elif k.startswith("target_hit"):
                results[label]["clean_model_" + k] = results["clean"][k]
    ctx.results["train"] = results


def step_federate(ctx: CellContext) -> None:
    """Run the scenario's federation: deal the training split to the clients, poison the
    malicious clients' data with ``attacks`` (seeded per client), let them send the update
    attack's updates, aggregate with the named rule, and record every round's accuracy, backdoor
    accuracy and exclusions (:func:`poisonlab.federated.run_federation`)."""
    from .. import registry
    from ..federated import FederationConfig, partition_clients, poison_clients, run_federation
    from .events import RoundEnded

    scenario, fed = ctx.scenario, ctx.scenario.federation
    train, test = ctx.splits.train, ctx.splits.test
    rng = np.random.default_rng([ctx.seed, 7])
    order = rng.permutation(len(train))
    server_idx, client_pool = np.sort(order[:fed.server_data]), np.sort(order[fed.server_data:])
    parts = partition_clients(train.y[client_pool], fed.clients, fed.partition, alpha=fed.alpha,
                              classes_per_client=fed.classes_per_client, random_state=ctx.seed)
    clients = [(train.X[client_pool[p]], train.y[client_pool[p]]) for p in parts]
    malicious = fed.malicious_ids()
    attack = None
    if scenario.attacks:
        comp = scenario.attacks[0]
        cls = registry.get("attack", comp.name)
        attack = cls(**_seeded(comp.params, cls, ctx.seed))
        clients = poison_clients(clients, malicious, attack)
        ctx.attacks = [attack]
    backdoor_test = None
    if attack is not None and hasattr(attack, "apply_trigger"):
        wanted = attack.target_labels(test.y)
        keep = np.flatnonzero(test.y != wanted)
        backdoor_test = (attack.apply_trigger(test.X[keep]), wanted[keep])
    agg_cls = registry.get("aggregator", fed.aggregator.name)
    aggregator = agg_cls(**_seeded(fed.aggregator.params, agg_cls, ctx.seed))
    update_attack = None
    if fed.attack is not None:
        atk_cls = registry.get("attack", fed.attack.name)
        update_attack = atk_cls(**_seeded(fed.attack.params, atk_cls, ctx.seed))
    factory = trainer_model_factory(scenario.model.model_dump(), train.modality, train.X)
    config = FederationConfig(rounds=fed.rounds, clients_per_round=fed.clients_per_round, mode=fed.mode,
                              local_epochs=fed.local_epochs, batch_size=fed.batch_size, lr=fed.lr,
                              momentum=fed.momentum, server_lr=fed.server_lr, dropout=fed.dropout,
                              eval_every=fed.eval_every)
    server_data = (train.X[server_idx], train.y[server_idx]) if fed.server_data else None

    def on_round(r: Any) -> None:
        ctx.emit(RoundEnded(label=scenario.name, round=r.round, rounds=fed.rounds, accuracy=r.accuracy,
                            backdoor_accuracy=r.backdoor_accuracy, n_selected=len(r.selected),
                            n_malicious=len(r.malicious), n_excluded=int(np.sum(r.excluded)),
                            precision=r.precision, recall=r.recall, seconds=r.seconds))

    result = run_federation(factory, clients, (test.X, test.y), aggregator=aggregator, config=config,
                            malicious=malicious, update_attack=update_attack, backdoor_test=backdoor_test,
                            server_data=server_data, random_state=ctx.seed, on_round=on_round)
    ctx.models["federated"] = result
    out: dict[str, Any] = {"clients": [len(c[1]) for c in clients], "malicious": malicious,
                           **jsonable(result.summary())}
    out["weights_sha256"] = sha256_array(np.asarray(result.params, dtype=np.float32))
    ctx.results["federate"] = out


def step_retraining(ctx: CellContext) -> None:
    """Run the scenario's continuous retraining (:func:`poisonlab.runs.retraining.run_retraining`):
    rounds of honest contributions plus a coordinated group's mislabelled ones, retrained each
    round without the group, without defence, and with reputation + quarantine; one
    ``RetrainingRoundEnded`` event per round and arm."""
    from .events import RetrainingRoundEnded
    from .retraining import run_retraining

    scenario, spec = ctx.scenario, ctx.scenario.retraining
    factory = None
    if scenario.model.callable:
        from .scenario import resolve_callable

        fn, params = resolve_callable(scenario.model.callable), scenario.model.params
        probe = _call_user_factory(fn, None, params)
        if probe is None or not hasattr(probe, "fit") or _is_module(probe):
            raise InvalidParameterError(f"model.callable {scenario.model.callable!r}: retraining needs a "
                                        "scikit-learn classifier factory taking no arguments")
        factory = lambda: _call_user_factory(fn, None, params)  # noqa: E731

    def on_round(arm: str, rec: dict[str, Any]) -> None:
        ctx.emit(RetrainingRoundEnded(label=scenario.name, arm=arm, round=rec["round"], rounds=spec.rounds,
                                      targeted_error=rec["targeted_error"], accuracy=rec["accuracy"],
                                      attack_admitted=rec["attack_admitted"], attack_held=rec.get("attack_held")))

    out = run_retraining(ctx.splits.train, ctx.splits.test, spec.config(), random_state=ctx.seed,
                         model_factory=factory, on_round=on_round)
    out["decisions"] = {"n": len(out["decisions"]),
                        "by_kind": {k: sum(d["kind"] == k for d in out["decisions"])
                                    for k in ("quarantine", "release", "reject")},
                        "items": out["decisions"]}
    ctx.results["retraining"] = out


def _scan_dataset(ctx: CellContext) -> Dataset:
    tr = ctx.splits.train
    n_extra = len(ctx.train_y) - len(tr)
    ids = np.asarray(tr.ids).astype(str)
    if n_extra > 0:
        ids = np.concatenate([ids, [f"injected-{k}" for k in range(n_extra)]])
    return Dataset(X=ctx.train_X, y=ctx.train_y, classes=tr.classes, modality=tr.modality, ids=ids,
                   name=tr.name)


def step_scan(ctx: CellContext) -> None:
    from .scan import scan

    ds = _scan_dataset(ctx)
    model = trained_model(ctx, "poisoned" if ctx.attacks else "model", ctx.train_X, ctx.train_y)
    detectors = [(c.name, c.params) for c in ctx.scenario.defenses.data]
    result = scan(ds, model=model, detectors=detectors, contamination=ctx.scenario.contamination,
                  poison_mask=ctx.poison_mask, emit=ctx.emit, random_state=ctx.seed)
    ctx.quarantine = result.quarantine
    out: dict[str, Any] = {
        "detectors": [name for name, _ in detectors],
        "n_quarantined": int(result.quarantine.sum()),
        "quarantine_sha256": sha256_array(result.quarantine),
        "scores_sha256": {name: sha256_array(np.round(s, 12)) for name, s in result.scores.items()},
        "n_flagged": {name: int(f.sum()) for name, f in result.flags.items()},
        "representation": result.representation,
    }
    if result.evaluation and "detection" in ctx.scenario.metrics:
        out["evaluation"] = {name: {k: v for k, v in m.items() if k != "per_class"}
                             for name, m in result.evaluation.items()}
    # what a report shows: score histograms, ROC curves, the most suspicious samples (bounded)
    from .report_data import scan_evidence

    out["evidence"] = scan_evidence(ds, result, ctx.poison_mask)
    ctx.results["scan"] = out


def step_retrain(ctx: CellContext) -> None:
    keep = ~ctx.quarantine
    clf = trained_model(ctx, "retrained", ctx.train_X[keep], ctx.train_y[keep])
    ctx.results["retrain"] = {"n_removed": int((~keep).sum()), **_evaluate(ctx, clf)}


def trainer_model_factory(model: dict[str, Any], modality: str, X: Any):
    """What a training-stage defense receives as ``model_factory``: ``ModelSpec -> nn.Module`` for
    a reference architecture or a user's torch callable, a zero-argument factory for a user's
    scikit-learn estimator (RONI's naive Bayes)."""
    from ..models.architectures import build_model

    params = model.get("params") or {}
    if model.get("callable"):
        from .scenario import resolve_callable

        fn = resolve_callable(model["callable"])
        probe = _call_user_factory(fn, None, params)
        if probe is not None and hasattr(probe, "fit") and not _is_module(probe):
            return lambda: _call_user_factory(fn, None, params)
        return lambda spec: _call_user_factory(fn, spec, params)
    name = default_architecture(model, modality, X)
    return lambda spec: build_model(name, spec, **params)


#: Radii at which a certified trainer's certified accuracy is reported (insertions/removals or
#: label flips, by the certificate's threat).
CERTIFIED_RADII = (0, 1, 2, 5, 10, 20, 50, 100, 200, 300, 400, 500)


def step_defend(ctx: CellContext) -> None:
    """Train through each training-stage defense (``defenses.training``) on the (poisoned)
    training set: the defended model's clean accuracy and ASR beside the undefended model's, what
    the trainer isolated (precision/recall against the poison), its certificate or privacy spent."""
    from .. import registry
    from ..evaluation.detection import precision_recall_f1
    from ..models.training import TrainConfig

    scenario = ctx.scenario
    model = scenario.model.model_dump()
    factory = trainer_model_factory(model, ctx.splits.train.modality, ctx.train_X)
    test = ctx.splits.test
    out: dict[str, Any] = {}
    for comp in scenario.defenses.training:
        cls = registry.get("trainer", comp.name)
        trainer = cls(**_seeded(comp.params, cls, ctx.seed))
        config = TrainConfig(**{"seed": ctx.seed, **(model.get("train") or {})})
        t0 = time.perf_counter()
        trainer.fit(ctx.train_X, ctx.train_y, model_factory=factory, config=config)
        res: dict[str, Any] = {"train_seconds": time.perf_counter() - t0}
        clf = getattr(trainer, "classifier_", trainer)
        res.update(_evaluate(ctx, clf))
        flags = getattr(trainer, "flags_", None)
        if flags is not None:
            flags = np.asarray(flags, dtype=bool)
            res["n_flagged"] = int(flags.sum())
            res["flags_sha256"] = sha256_array(flags)
            if ctx.poison_mask is not None and ctx.poison_mask.any() and "detection" in scenario.metrics:
                res["detection"] = precision_recall_f1(flags, ctx.poison_mask)
        if hasattr(trainer, "epsilon_"):
            res["epsilon"] = float(trainer.epsilon_)
            res["delta"] = float(getattr(trainer, "delta_", float("nan")))
        if hasattr(trainer, "certify"):
            cert = trainer.certify(test.X)
            acc = cert.certified_accuracy(test.y, CERTIFIED_RADII)
            res["certificate"] = {"threat": cert.threat, "method": cert.method, "n_models": cert.n_models,
                                  "median_radius": cert.median_radius(test.y),
                                  "certified_accuracy": dict(zip(map(str, CERTIFIED_RADII),
                                                                 np.asarray(acc).tolist()))}
        out[comp.name] = res
    ctx.results["defend"] = out


def step_inspect(ctx: CellContext) -> None:
    from .. import registry

    model = trained_model(ctx, "poisoned" if ctx.attacks else "model", ctx.train_X, ctx.train_y)
    test = ctx.splits.test
    out = {}
    for comp in ctx.scenario.defenses.model:
        cls = registry.get("detector", comp.name)
        det = cls(**_seeded(comp.params, cls, ctx.seed))
        det.fit(test.X, model=model)
        target = ctx.attacks[0].target if ctx.attacks and hasattr(ctx.attacks[0], "target") else None
        flagged = np.flatnonzero(det.flags_).tolist()
        out[comp.name] = {"scores": det.scores_.tolist(), "flagged": flagged,
                          "verdict": ("inconclusive" if not getattr(det, "conclusive_", True)
                                     else "backdoor suspected" if flagged else "no backdoor found"),
                          "target_flagged": (target in flagged) if target is not None else None}
        if hasattr(det, "anomaly_index_"):  # Neural Cleanse: the paper's index and the gap test
            out[comp.name]["anomaly_index"] = det.anomaly_index_.tolist()
            out[comp.name]["mask_gap"] = det.gap_.tolist()
            out[comp.name]["min_gap"] = det.min_gap
        if hasattr(det, "masks_"):  # reversed triggers, small, for the report
            from .report_data import trigger_previews

            out[comp.name]["triggers"] = trigger_previews(det.masks_, det.patterns_)
    ctx.results["inspect"] = out


def step_monitor(ctx: CellContext) -> None:
    from .. import registry

    model = trained_model(ctx, "poisoned" if ctx.attacks else "model", ctx.train_X, ctx.train_y)
    test = ctx.splits.test
    rng = np.random.default_rng(ctx.seed)
    order = rng.permutation(len(test))
    half = len(order) // 2
    fit_idx, live_idx = np.sort(order[:half]), np.sort(order[half:])
    out = {}
    for comp in ctx.scenario.defenses.inference:
        cls = registry.get("detector", comp.name)
        det = cls(**_seeded(comp.params, cls, ctx.seed)).fit(test.X[fit_idx], model=model)
        clean_flags = det.flag(test.X[live_idx])
        res = {"threshold": det.threshold_, "frr": float(clean_flags.mean())}
        backdoors = [a for a in ctx.attacks if hasattr(a, "apply_trigger")]
        if backdoors:
            atk = backdoors[0]
            keep = live_idx[test.y[live_idx] != atk.target_labels(test.y[live_idx])]
            trig_flags = det.flag(atk.apply_trigger(test.X[keep]))
            res["far"] = float(1.0 - trig_flags.mean())
        out[comp.name] = res
    ctx.results["monitor"] = out


STEP_FUNCTIONS: dict[str, Callable[[CellContext], None]] = {
    "poison": step_poison, "train": step_train, "federate": step_federate, "retraining": step_retraining, "scan": step_scan, "retrain": step_retrain,
    "defend": step_defend, "inspect": step_inspect, "monitor": step_monitor,
}
