"""Scenarios: what to run, named by registry name and parameters, loaded from YAML or JSON.

A :class:`Scenario` names the dataset (a built-in one or a user's file), the model (a reference
architecture or a user's ``module:callable``), the attacks, the defenses by stage, the metrics,
the seeds, and optionally a sweep (attack x detector x parameter values x seed). Everything is
checked when the file is loaded, before any work: an unknown name, a bad parameter value, a
wrong type or a missing file fails with the field's path, e.g.::

    attacks[0].params.poison_rate: must be in (0, 1]; got 1.5

:func:`expand` turns a scenario with a sweep into its cells, one concrete single-seed scenario
each; :func:`config_hash` is the key the grid cache stores a cell under.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import itertools
import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..exceptions import InvalidParameterError, PoisonlabError

#: The steps a runner knows, in the order it runs them.
STEPS = ("poison", "train", "federate", "retraining", "scan", "retrain", "defend", "inspect", "monitor")
#: Metrics a run can report.
METRICS = ("clean_accuracy", "attack_success_rate", "clean_model_asr", "detection",
           "per_class_accuracy")
#: Defense stages a scenario accepts, and the registry kind behind each.
DEFENSE_STAGES = {"data": "detector", "model": "detector", "inference": "detector",
                  "training": "trainer"}
#: Which stage each detector entry must declare.
_STAGE_OF_STEP = {"data": "scan", "model": "inspect", "inference": "monitor"}


class ScenarioError(InvalidParameterError):
    """A scenario file names something unknown, gives a bad value, or cannot be read."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _registry():
    from .. import registry

    return registry


class Component(_Strict):
    """One registered object by name, with its constructor parameters."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        # a bare string is shorthand for {name: ...}
        return {"name": value} if isinstance(value, str) else value


def _check_component(comp: Component, kind: str) -> Component:
    """Resolve ``comp.name`` in the registry and check its parameters as the class declares them.

    Errors carry the failing parameter's name so that the caller's path ends in it.
    """
    reg = _registry()
    cls = reg.get(kind, comp.name)  # InvalidParameterError: unknown name, lists the known ones
    names = cls._param_names() if hasattr(cls, "_param_names") else []
    unknown = sorted(set(comp.params) - set(names))
    if unknown:
        raise _ParamError(unknown[0], f"{comp.name} has no parameter {unknown[0]!r}; valid: {names}")
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in comp.params.items()}
    try:
        obj = cls(**params)
        validate = getattr(obj, "_validate_params", None)
        if validate is not None:
            validate()
    except PoisonlabError as exc:
        msg = str(exc)
        hit = next((k for k in sorted(comp.params, key=len, reverse=True) if k in msg), None)
        raise _ParamError(hit, msg) from exc
    return comp


class _ParamError(ValueError):
    """Raised inside validators: ``param`` extends the field path."""

    def __init__(self, param: str | None, message: str) -> None:
        super().__init__(message)
        self.param = param


class DatasetSpec(_Strict):
    """A built-in dataset by ``name``, or a user's file by ``path`` (``.npz``, ``.csv``, a folder
    of images or texts by class). ``params`` go to the loader (``label_column`` for a CSV,
    ``features`` for audio, ...). User files without a test split are split by ``test_fraction``
    (stratified, ``split_seed``). ``train_size`` keeps the first that many training samples (in
    file order: R1 trains on MNIST's first 50,000 and keeps the last 10,000 for validation)."""

    name: str | None = None
    path: str | None = None
    data_dir: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    test_fraction: float = Field(0.25, gt=0.0, lt=1.0)
    split_seed: int = Field(0, ge=0)
    train_size: int | None = Field(None, ge=2)
    modality: Literal["image", "text", "tabular", "audio"] | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_source(self) -> "DatasetSpec":
        if (self.name is None) == (self.path is None):
            raise ValueError("give exactly one of name (a built-in dataset) or path (your file)")
        if self.name is not None:
            _registry().get("dataset", self.name)
        else:
            p = Path(self.path)
            if not p.exists():
                raise _ParamError("path", f"{self.path} does not exist")
            if p.is_file() and p.suffix.lower() not in (".npz", ".csv"):
                raise _ParamError("path", f"{self.path}: give a .npz, a .csv or a folder")
            if p.suffix.lower() == ".csv" and "label_column" not in self.params:
                raise _ParamError("params", "a CSV needs params.label_column (the column of labels)")
        return self


class ModelSpecConfig(_Strict):
    """The model: a reference ``architecture`` (None: the modality's default) or a user's
    ``callable`` ``"package.module:function"`` returning an ``nn.Module`` (called with a
    :class:`~poisonlab.models.architectures.ModelSpec`) or a scikit-learn classifier (called with
    no arguments). ``params`` go to the builder; ``train`` holds :class:`TrainConfig` fields."""

    architecture: str | None = None
    callable: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    train: dict[str, Any] = Field(default_factory=dict)

    @field_validator("architecture")
    @classmethod
    def _known_architecture(cls, v: str | None) -> str | None:
        if v is not None:
            _registry().get("architecture", v)
        return v

    @field_validator("callable")
    @classmethod
    def _importable(cls, v: str | None) -> str | None:
        if v is not None:
            resolve_callable(v)
        return v

    @field_validator("train")
    @classmethod
    def _train_config(cls, v: dict[str, Any]) -> dict[str, Any]:
        from dataclasses import fields

        from ..models.training import TrainConfig

        valid = [f.name for f in fields(TrainConfig)]
        unknown = sorted(set(v) - set(valid))
        if unknown:
            raise _ParamError(unknown[0], f"TrainConfig has no field {unknown[0]!r}; valid: {valid}")
        try:
            TrainConfig(**v).validate()
        except PoisonlabError as exc:
            hit = next((k for k in v if k in str(exc)), None)
            raise _ParamError(hit, str(exc)) from exc
        return v

    @model_validator(mode="after")
    def _one_model(self) -> "ModelSpecConfig":
        if self.architecture is not None and self.callable is not None:
            raise ValueError("give architecture or callable, not both")
        return self


class Defenses(_Strict):
    """Defenses by stage: ``data`` (sample-level detectors, the scan), ``model`` (inspecting the
    trained model), ``inference`` (watching inputs), ``training`` (trainers)."""

    data: list[Component] = Field(default_factory=list)
    model: list[Component] = Field(default_factory=list)
    inference: list[Component] = Field(default_factory=list)
    training: list[Component] = Field(default_factory=list)


class FederationSpec(_Strict):
    """A federated run (the ``federate`` step, :func:`poisonlab.federated.run_federation`): the
    training split is dealt to ``clients`` (``partition``: iid, dirichlet label skew with
    ``alpha``, or ``shards`` of ``classes_per_client`` classes each), ``malicious`` clients (a count: clients 0..m-1, or a
    list of ids) poison their data with the scenario's ``attacks`` and/or replace their update by
    the update ``attack``; the server aggregates with ``aggregator`` for ``rounds`` rounds.
    ``server_data`` samples are held out of the clients' data as the server's trusted root set
    (FLTrust needs it)."""

    clients: int = Field(10, ge=1)
    partition: Literal["iid", "dirichlet", "shards"] = "iid"
    alpha: float = Field(0.5, gt=0.0)
    classes_per_client: int = Field(1, ge=1)
    rounds: int = Field(50, ge=1)
    clients_per_round: int | None = Field(None, ge=1)
    mode: Literal["fedavg", "fedsgd"] = "fedavg"
    local_epochs: int = Field(1, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(0.1, gt=0.0)
    momentum: float = Field(0.0, ge=0.0, lt=1.0)
    server_lr: float = Field(1.0, gt=0.0)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    eval_every: int = Field(1, ge=1)
    malicious: int | list[int] = 0
    aggregator: Component = Field(default_factory=lambda: Component(name="fedavg"))
    attack: Component | None = None
    server_data: int = Field(0, ge=0)

    @field_validator("aggregator")
    @classmethod
    def _aggregator(cls, v: Component) -> Component:
        try:
            return _check_component(v, "aggregator")
        except _ParamError as exc:
            raise _ParamError("params" + (f".{exc.param}" if exc.param else ""), str(exc)) from exc
        except PoisonlabError as exc:
            raise _ParamError("name", str(exc)) from exc

    @field_validator("attack")
    @classmethod
    def _attack(cls, v: Component | None) -> Component | None:
        if v is None:
            return v
        try:
            _check_component(v, "attack")
            _check_stage(v.name, "attack", "federated")
        except _ParamError as exc:
            raise _ParamError("params" + (f".{exc.param}" if exc.param else ""), str(exc)) from exc
        except PoisonlabError as exc:
            raise _ParamError("name", str(exc)) from exc
        return v

    @model_validator(mode="after")
    def _coherent(self) -> "FederationSpec":
        ids = self.malicious_ids()
        if ids and (min(ids) < 0 or max(ids) >= self.clients):
            raise _ParamError("malicious", f"malicious client ids must be in 0..{self.clients - 1}; got {ids}")
        if len(set(ids)) != len(ids):
            raise _ParamError("malicious", f"malicious client ids repeat: {ids}")
        if isinstance(self.malicious, int) and self.malicious >= self.clients:
            raise _ParamError("malicious", f"{self.malicious} malicious of {self.clients} clients leaves no "
                                           "honest client")
        if self.clients_per_round is not None and self.clients_per_round > self.clients:
            raise _ParamError("clients_per_round", f"clients_per_round={self.clients_per_round} > "
                                                   f"clients={self.clients}")
        if self.attack is not None and not ids:
            raise _ParamError("attack", "an update attack needs malicious clients: set federation.malicious")
        needs = getattr(_registry().get("aggregator", self.aggregator.name), "needs", ())
        if "server_update" in needs and self.server_data == 0:
            raise _ParamError("server_data", f"{self.aggregator.name} needs the server's own update on a "
                                             "trusted root set: set federation.server_data (e.g. 100)")
        return self

    def malicious_ids(self) -> list[int]:
        """The malicious clients' ids."""
        if isinstance(self.malicious, int):
            if self.malicious < 0:
                raise _ParamError("malicious", f"must be >= 0; got {self.malicious}")
            return list(range(self.malicious))
        return list(self.malicious)


class _RetrainingChecks(_Strict):
    """Validation shared by the ``retraining`` block: the dataclass's own checks, reported at
    the field they name."""

    @model_validator(mode="after")
    def _valid(self) -> "_RetrainingChecks":
        try:
            self.config()
        except PoisonlabError as exc:
            msg = str(exc)
            names = [f for f in sorted(type(self).model_fields, key=len, reverse=True) if msg.startswith(f)]
            raise _ParamError(names[0] if names else None, msg) from exc
        return self

    def config(self):
        """The :class:`~poisonlab.runs.retraining.RetrainingConfig` of this block."""
        from .retraining import RetrainingConfig

        return RetrainingConfig(**self.model_dump())


def _dataclass_fields(dc: type) -> dict[str, Any]:
    """``name: (type, default)`` of every field of dataclass ``dc``, for ``pydantic.create_model``:
    the parameters are listed once, in the dataclass the library uses."""
    import dataclasses
    import typing

    hints = typing.get_type_hints(dc)
    return {f.name: (hints[f.name], f.default) for f in dataclasses.fields(dc)}


def _retraining_spec() -> type:
    from pydantic import create_model

    from .retraining import RetrainingConfig

    spec = create_model("RetrainingSpec", __base__=_RetrainingChecks, __module__=__name__,
                        **_dataclass_fields(RetrainingConfig))
    spec.__doc__ = """Continuous retraining under attack (the ``retraining`` step,
    :func:`poisonlab.runs.retraining.run_retraining`): ``rounds`` rounds of
    ``honest_contributors`` honest contributions of ``samples_per_contributor`` samples, plus a
    coordinated group of ``group_size`` new accounts mislabelling the targeted kind of input
    (``target_kind`` class or keyword, ``target_class`` labelled ``flip_to``); retrained each
    round without defence, with reputation + quarantine (``min_verified``, ``min_reputation``,
    ``reject_below``, ``reject_sybils``), and without the group (the honest reference)."""
    return spec


RetrainingSpec = _retraining_spec()


class Sweep(_Strict):
    """A grid: every combination of ``attacks`` x ``detectors`` x ``params`` values x the
    scenario's seeds. ``attacks`` replaces the scenario's attack list with one attack per cell;
    ``detectors`` replaces ``defenses.data`` with one detector per cell; ``params`` maps a dotted
    path into the scenario (``attacks[0].params.poison_rate``) to the values it takes."""

    attacks: list[Component] = Field(default_factory=list)
    detectors: list[Component] = Field(default_factory=list)
    params: dict[str, list[Any]] = Field(default_factory=dict)

    @field_validator("params")
    @classmethod
    def _paths(cls, v: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for path, values in v.items():
            _parse_path(path)
            if not values:
                raise _ParamError(path, f"sweep over {path} needs at least one value")
        return v


class Scenario(_Strict):
    """What to run. See the module docstring and ``examples/`` for files.

    Examples
    --------
    >>> s = Scenario.model_validate({"name": "t", "dataset": "digits",
    ...     "attacks": [{"name": "badnets", "params": {"poison_rate": 0.1, "target": 0}}]})
    >>> s.steps_to_run(), s.seeds
    (('poison', 'train'), [0])
    >>> Scenario.model_validate({"dataset": "digits", "attacks": [{"name": "badnets",
    ...     "params": {"poison_rate": 1.5}}]})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    poisonlab.runs.scenario.ScenarioError: attacks[0].params.poison_rate: ...
    """

    version: Literal[1] = 1
    name: str = "run"
    description: str = ""
    dataset: DatasetSpec
    model: ModelSpecConfig = Field(default_factory=ModelSpecConfig)
    attacks: list[Component] = Field(default_factory=list)
    defenses: Defenses = Field(default_factory=Defenses)
    metrics: list[str] = Field(default_factory=lambda: ["clean_accuracy", "attack_success_rate",
                                                        "clean_model_asr", "detection"])
    seeds: list[int] = Field(default_factory=lambda: [0])
    steps: list[str] | None = None
    clean_baseline: bool = True
    retrain: bool = False
    contamination: float = Field(0.05, gt=0.0, le=0.5)
    threads: int = Field(1, ge=1)
    federation: FederationSpec | None = None
    retraining: RetrainingSpec | None = None
    sweep: Sweep | None = None

    @classmethod
    def model_validate(cls, obj: Any, **kw: Any) -> "Scenario":  # type: ignore[override]
        try:
            return super().model_validate(obj, **kw)
        except ValidationError as exc:
            raise ScenarioError(_format_errors(exc)) from None

    @field_validator("attacks")
    @classmethod
    def _attacks(cls, v: list[Component]) -> list[Component]:
        _check_list(v, "attack")
        _refuse_update_attacks(v, "")
        return v

    @field_validator("defenses")
    @classmethod
    def _defenses(cls, v: Defenses) -> Defenses:
        for stage, kind in DEFENSE_STAGES.items():
            _check_list(getattr(v, stage), kind, prefix=stage, stage=stage)
        return v

    @field_validator("metrics")
    @classmethod
    def _metrics(cls, v: list[str]) -> list[str]:
        for i, m in enumerate(v):
            if m not in METRICS:
                raise _ParamError(f"[{i}]", f"unknown metric {m!r}; available: {list(METRICS)}")
        return v

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int]) -> list[int]:
        if not v:
            raise ValueError("give at least one seed")
        if any(s < 0 for s in v) or len(set(v)) != len(v):
            raise ValueError(f"seeds must be distinct non-negative ints; got {v}")
        return v

    @field_validator("steps")
    @classmethod
    def _steps(cls, v: list[str] | None) -> list[str] | None:
        for i, s in enumerate(v or []):
            if s not in STEPS:
                raise _ParamError(f"[{i}]", f"unknown step {s!r}; available: {list(STEPS)}")
        return v

    @field_validator("sweep")
    @classmethod
    def _sweep(cls, v: Sweep | None) -> Sweep | None:
        if v is None:
            return v
        _check_list(v.attacks, "attack", prefix="attacks")
        _refuse_update_attacks(v.attacks, "attacks")
        _check_list(v.detectors, "detector", prefix="detectors", stage="data")
        return v

    @model_validator(mode="after")
    def _coherent(self) -> "Scenario":
        if self.sweep is not None:
            for path, values in self.sweep.params.items():
                for value in values:  # every swept value must make a valid scenario
                    try:
                        Scenario.model_validate(set_path(self.model_dump(exclude={"sweep"}), path, value))
                    except ScenarioError as exc:
                        raise _ParamError(None, f"sweep.params[{path!r}] value {value!r}: {exc}") from None
        if self.federation is not None:
            if any(getattr(self.defenses, st) for st in ("data", "model", "inference", "training")):
                raise _ParamError("defenses", "a federated scenario defends through federation.aggregator; "
                                              "defenses.* apply to a centrally trained model")
            if (self.attacks or (self.sweep and self.sweep.attacks)) and not self.federation.malicious_ids():
                raise _ParamError("federation.malicious", "attacks poison the malicious clients' data: "
                                                          "set federation.malicious")
        if self.retraining is not None and (self.federation is not None or self.attacks
                                            or any(getattr(self.defenses, st) for st in DEFENSE_STAGES)):
            raise _ParamError("retraining", "a retraining scenario attacks through its group and defends "
                                            "with reputation + quarantine: drop federation, attacks and defenses")
        if self.steps is not None and "retraining" in self.steps and self.retraining is None:
            raise _ParamError("steps", "the retraining step needs a retraining block")
        steps = self.steps_to_run()
        if (self.retrain or "retrain" in steps) and not (self.defenses.data or (self.sweep and self.sweep.detectors)):
            raise _ParamError("retrain", "retraining removes what the data defenses flag: name "
                                         "defenses.data (or sweep.detectors)")
        return self

    # -- what runs -----------------------------------------------------------------------------

    def steps_to_run(self) -> tuple[str, ...]:
        """The steps in run order: given, or derived from what the scenario names."""
        if self.steps is not None:
            return tuple(s for s in STEPS if s in self.steps)
        if self.federation is not None:
            return ("federate",)
        if self.retraining is not None:
            return ("retraining",)
        has_attack = bool(self.attacks) or bool(self.sweep and self.sweep.attacks)
        has_data_def = bool(self.defenses.data) or bool(self.sweep and self.sweep.detectors)
        chosen = {"train"}
        if has_attack:
            chosen.add("poison")
        if has_data_def:
            chosen.add("scan")
        if self.retrain and has_data_def:
            chosen.add("retrain")
        if self.defenses.training:
            chosen.add("defend")
        if self.defenses.model:
            chosen.add("inspect")
        if self.defenses.inference:
            chosen.add("monitor")
        return tuple(s for s in STEPS if s in chosen)

    def to_dict(self) -> dict[str, Any]:
        """The resolved scenario as plain JSON data (every default filled in)."""
        return json.loads(self.model_dump_json())


def _check_list(comps: list[Component], kind: str, *, prefix: str = "",
                stage: str | None = None) -> list[Component]:
    """Check each component (and its stage); errors name ``prefix[i].name`` or
    ``prefix[i].params.<param>`` relative to the validated field."""
    for i, comp in enumerate(comps):
        try:
            _check_component(comp, kind)
            if stage is not None:
                _check_stage(comp.name, kind, stage)
        except _ParamError as exc:
            raise _ParamError(f"{prefix}[{i}].params" + (f".{exc.param}" if exc.param else ""),
                              str(exc)) from exc
        except PoisonlabError as exc:
            raise _ParamError(f"{prefix}[{i}].name", str(exc)) from exc
    return comps


def _refuse_update_attacks(comps: list[Component], prefix: str) -> None:
    """``attacks`` poison data; a federated update attack belongs in ``federation.attack``."""
    for i, comp in enumerate(comps):
        if getattr(_registry().get("attack", comp.name), "stage", "data") == "federated":
            raise _ParamError(f"{prefix}[{i}].name", f"{comp.name} is a federated update attack: name it in "
                                                     "federation.attack (attacks poison the training data)")


def _check_stage(name: str, kind: str, stage: str) -> None:
    entries = _registry().entries(kind, stage=stage) if hasattr(_registry(), "entries") else None
    if entries is not None and name not in {e.name for e in entries}:
        raise InvalidParameterError(f"{kind} {name!r} does not work at the {stage} stage; "
                                    f"{stage}-stage {kind}s: {sorted(e.name for e in entries)}")


def _format_errors(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = _join_loc(err["loc"])
        ctx_err = (err.get("ctx") or {}).get("error")
        if isinstance(ctx_err, _ParamError):
            if ctx_err.param:
                loc = _join_loc((*err["loc"], ctx_err.param)) if loc else ctx_err.param
            msg = str(ctx_err)
        else:
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown field"
            elif err["type"] == "missing":
                msg = "required field is missing"
        lines.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(dict.fromkeys(lines))


def _join_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        part = str(part)
        if part.isdigit():
            out += f"[{part}]"
        elif part.startswith("["):
            out += part
        else:
            out += ("." if out else "") + part
    return out


# --- loading -------------------------------------------------------------------------------

def load_scenario(path: str | Path) -> Scenario:
    """Read a scenario from a ``.yaml``/``.yml`` or ``.json`` file, checking every field.

    Relative ``dataset.path`` values are taken relative to the scenario file's folder.
    """
    path = Path(path)
    if not path.is_file():
        raise ScenarioError(f"{path}: no such scenario file" if not path.exists()
                            else f"{path} is not a file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path} cannot be read: {exc}") from exc
    data = parse_scenario_text(text, path.suffix.lower(), source=str(path))
    ds = data.get("dataset") if isinstance(data, dict) else None
    if isinstance(ds, dict) and isinstance(ds.get("path"), str) and not Path(ds["path"]).is_absolute():
        ds["path"] = str((path.parent / ds["path"]).resolve())
    return Scenario.model_validate(data)


def parse_scenario_text(text: str, suffix: str, *, source: str = "<scenario>") -> dict[str, Any]:
    """YAML or JSON text -> a mapping (one-line errors for syntax errors and non-mappings)."""
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ScenarioError(f"{source}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
    elif suffix in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            raise ScenarioError(f"{source}: invalid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    else:
        raise ScenarioError(f"{source}: a scenario file ends in .yaml, .yml or .json")
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: a scenario is a mapping of fields; got {type(data).__name__}")
    return data


def resolve_callable(spec: str):
    """``"package.module:function"`` -> the function (imports the user's module)."""
    mod_name, sep, attr = spec.partition(":")
    if not sep or not mod_name or not attr:
        raise InvalidParameterError(f"callable must look like 'package.module:function'; got {spec!r}")
    try:
        module = importlib.import_module(mod_name)
    except ImportError as exc:
        raise InvalidParameterError(f"cannot import {mod_name!r} for callable {spec!r}: {exc}") from exc
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise InvalidParameterError(f"{mod_name} has no attribute {attr!r} (callable {spec!r})")
        obj = getattr(obj, part)
    if not callable(obj):
        raise InvalidParameterError(f"{spec!r} is not callable")
    return obj


# --- sweeps --------------------------------------------------------------------------------

_PATH_PART = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)((?:\[\d+\])*)")


def _parse_path(path: str) -> list[str | int]:
    parts: list[str | int] = []
    for chunk in path.split("."):
        m = _PATH_PART.fullmatch(chunk)
        if not m:
            raise _ParamError(None, f"cannot parse the sweep path {path!r} (e.g. attacks[0].params.poison_rate)")
        parts.append(m.group(1))
        parts.extend(int(i) for i in re.findall(r"\[(\d+)\]", m.group(2)))
    return parts


def set_path(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``data`` with the dotted ``path`` set to ``value`` (missing dict keys are
    created; list indices must exist)."""
    out = copy.deepcopy(data)
    parts = _parse_path(path)
    node: Any = out
    for i, part in enumerate(parts[:-1]):
        nxt = parts[i + 1]
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                raise ScenarioError(f"sweep path {path!r}: no item {part}")
            node = node[part]
        else:
            if not isinstance(node, dict):
                raise ScenarioError(f"sweep path {path!r}: {part!r} is not a mapping")
            node = node.setdefault(part, [] if isinstance(nxt, int) else {})
    last = parts[-1]
    if isinstance(last, int):
        if not isinstance(node, list) or last >= len(node):
            raise ScenarioError(f"sweep path {path!r}: no item {last}")
        node[last] = value
    else:
        if not isinstance(node, dict):
            raise ScenarioError(f"sweep path {path!r}: cannot set {last!r}")
        node[last] = value
    return out


def expand(scenario: Scenario) -> list[Scenario]:
    """The cells of a scenario: one concrete single-seed scenario (no sweep) per combination of
    sweep attack x sweep detector x swept parameter values x seed, in a stable order (seed
    fastest). A scenario without a sweep gives one cell per seed."""
    base = scenario.to_dict()
    base.pop("sweep", None)
    sweep = scenario.sweep or Sweep()
    attacks = [c.model_dump() for c in sweep.attacks] or [None]
    detectors = [c.model_dump() for c in sweep.detectors] or [None]
    keys = list(sweep.params)
    value_lists = [sweep.params[k] for k in keys]
    cells = []
    for atk, det, values, seed in itertools.product(attacks, detectors, itertools.product(*value_lists),
                                                    scenario.seeds):
        cell = copy.deepcopy(base)
        if atk is not None:
            cell["attacks"] = [atk]
        if det is not None:
            cell["defenses"]["data"] = [det]
        for key, value in zip(keys, values):
            cell = set_path(cell, key, value)
        cell["seeds"] = [seed]
        cell["name"] = cell_name(scenario.name, atk, det, dict(zip(keys, values)), seed)
        cells.append(Scenario.model_validate(cell))
    return cells


def cell_name(name: str, attack: dict | None, detector: dict | None, values: dict, seed: int) -> str:
    parts = [name]
    if attack is not None:
        parts.append(attack["name"])
    if detector is not None:
        parts.append(detector["name"])
    parts += [f"{k.rsplit('.', 1)[-1]}={v['name'] if isinstance(v, dict) and 'name' in v else ('none' if v is None else v)}"
              for k, v in values.items()]
    parts.append(f"seed={seed}")
    return " ".join(parts)


def canonical_json(data: Any) -> str:
    """JSON with sorted keys and no whitespace: the text every hash in the run layer is over."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)


def config_hash(data: Any) -> str:
    """sha256 of :func:`canonical_json` (the key of a grid cell or a cached model)."""
    return hashlib.sha256(canonical_json(data).encode()).hexdigest()
