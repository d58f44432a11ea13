"""The release gate: a run over a policy file that decides whether a model may ship.

A **policy** (:class:`GatePolicy`, a YAML or JSON file) names the checks to run, each with its
thresholds; every field is validated when the file is read, so an unknown check or a bad value
is a one-line error naming its path (``checks.strip.max_flag_rate: ...``) before any work.
:func:`run_gate` then runs, in this order:

``file_safety``
    The weights file holds no code (:func:`~poisonlab.defenses.model.scan_model_file`); an
    unsafe file fails the gate and nothing else runs on it. The model must carry a model card.
``canaries``
    A canary suite (:mod:`poisonlab.monitoring.canaries`): accuracy on trusted canaries at
    least ``min_accuracy``; no backdoor probe fires (``fire_rate``).
``strip``
    STRIP (:class:`~poisonlab.defenses.inference.STRIP`) fitted on trusted clean inputs, then run
    on each probe's triggered canaries: fails when a trigger family's inputs are flagged (low
    entropy under superimposition) more often than ``max_flag_rate``.
``neural_cleanse``
    Trigger reverse-engineering (images only): fails when a class's anomaly index exceeds
    ``max_anomaly_index`` and its mask is 1.3x smaller than every other class's (the
    detector's ``min_gap``), or when the optimisation is inconclusive and ``on_inconclusive``
    is "fail".
``drift``
    Against a baseline model (the last released version): prediction flip rate, per class,
    KS tests of confidences, probes that newly fire (:mod:`poisonlab.monitoring.drift`).
``validation_gap``
    Accuracy on the trusted validation set minus that on a validation set derived from the
    training source: fails when the absolute gap exceeds ``max_gap`` (a tampered or poisoned
    source validation set disagrees with the trusted one).
``data_scan``
    A data scan (:func:`~poisonlab.runs.scan.scan`) of the training data, with the gated
    model's features: fails when it quarantines more than ``max_quarantine_fraction``.

A check whose input is missing (no baseline, no source validation set, no training data) or
whose method does not apply (Neural Cleanse on text) is **skipped** (reported, never failing the
gate) unless its ``require`` is true, which makes the missing input an error before any work.
A check that raises while running is an **error** and fails the gate. Every check takes
``blocking`` (default true): a non-blocking check that fails is reported as **warned** (in the
table, the report and the JUnit file) and does not block the release.

Threat model: the model may come from a poisoned pipeline (data, procedure) or be a tampered
file; the gate holds trusted held-out data, the released baseline and the policy. Each check
sees one kind of evidence; see each check's limits in ``docs/gate.md``.

:func:`run_gate` writes nothing; :func:`gate_record` makes the run record the HTML report
renders (kind ``"gate"``) and :func:`junit_xml` the JUnit XML a CI system shows (one testcase
per check), which :func:`write_junit` writes atomically.
"""

from __future__ import annotations

import os
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..data.dataset import Dataset
from ..exceptions import DataError, InvalidParameterError, PoisonlabError
from .events import Event, Note, StepFinished, StepStarted, ignore

Emit = Callable[[Event], None]

#: The label of this workflow's events.
LABEL = "gate"
#: Checks in the order :func:`run_gate` runs them.
CHECKS = ("file_safety", "canaries", "strip", "neural_cleanse", "drift", "validation_gap", "data_scan")
#: Status of a check.
PASSED, FAILED, SKIPPED, ERROR, WARNED = "passed", "failed", "skipped", "error", "warned"
#: Statuses that do not block a release.
RELEASABLE = (PASSED, SKIPPED, WARNED)


class GatePolicyError(InvalidParameterError):
    """A gate policy names an unknown check, gives a bad value, or cannot be read."""


# --- the policy ----------------------------------------------------------------------------------

class _Check(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _GateCheck(_Check):
    #: False: a failure is reported as "warned" (shown, in the JUnit file too) but does not block.
    blocking: bool = True


class FileSafetyCheck(_GateCheck):
    """No parameters: an unsafe file fails."""


class CanariesCheck(_GateCheck):
    n_per_class: int = Field(20, ge=1)
    seed: int = Field(0, ge=0)
    min_accuracy: float = Field(0.9, ge=0.0, le=1.0)
    fire_rate: float = Field(0.5, gt=0.0, le=1.0)
    probe_params: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @field_validator("probe_params")
    @classmethod
    def _known_families(cls, v: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Every family is a registered trigger family and its parameters are valid for it."""
        from .. import registry
        from ..monitoring.canaries import trigger_families

        known = sorted({f for m in registry.MODALITIES for f in trigger_families(m)})
        for name, params in v.items():
            if name not in known:
                raise ValueError(f"unknown trigger family {name!r}; known: {', '.join(known)}")
            try:
                registry.get("attack", name)(**params)._validate_params()
            except (TypeError, PoisonlabError) as exc:
                raise ValueError(f"{name}: {_first_line(exc)}") from None
        return v


class StripCheck(_GateCheck):
    n_clean: int = Field(200, ge=10)
    n_overlays: int = Field(50, ge=2)
    false_positive_rate: float = Field(0.05, gt=0.0, lt=1.0)
    max_flag_rate: float = Field(0.5, ge=0.0, le=1.0)
    seed: int = Field(0, ge=0)


class NeuralCleanseCheck(_GateCheck):
    n_clean: int = Field(200, ge=10)
    epochs: int = Field(100, ge=1)
    max_anomaly_index: float = Field(2.0, gt=0.0)
    on_inconclusive: Literal["fail", "pass"] = "fail"
    seed: int = Field(0, ge=0)


class DriftCheck(_GateCheck):
    max_flip_rate: float = Field(0.1, ge=0.0, le=1.0)
    max_class_flip_rate: float = Field(0.3, ge=0.0, le=1.0)
    alpha: float = Field(0.01, gt=0.0, lt=1.0)
    fail_on_ks: bool = False
    max_ks_statistic: float | None = Field(None, gt=0.0, le=1.0)
    fail_on_new_probes: bool = True
    n_reference: int = Field(500, ge=0)
    require: bool = False


class ValidationGapCheck(_GateCheck):
    max_gap: float = Field(0.05, ge=0.0, le=1.0)
    require: bool = False


class DataScanCheck(_GateCheck):
    max_quarantine_fraction: float = Field(0.05, ge=0.0, le=1.0)
    detectors: list[str] | None = None
    max_samples: int = Field(5000, ge=10)
    require: bool = False


class Checks(_Check):
    file_safety: FileSafetyCheck | None = None
    canaries: CanariesCheck | None = None
    strip: StripCheck | None = None
    neural_cleanse: NeuralCleanseCheck | None = None
    drift: DriftCheck | None = None
    validation_gap: ValidationGapCheck | None = None
    data_scan: DataScanCheck | None = None


class GatePolicy(_Check):
    """A release policy: its ``name`` and the ``checks`` to run with their thresholds. A check
    given as ``{}`` runs with its defaults (:func:`load_policy` also reads an empty YAML entry,
    ``strip:``, so); a check left out does not run.

    Examples
    --------
    >>> GatePolicy.model_validate({"checks": {"canaries": {"min_accuracy": 0.95}}}).enabled()
    ['canaries']
    >>> GatePolicy.model_validate({"checks": {"cnaries": {}}})
    Traceback (most recent call last):
    ...
    poisonlab.runs.gate.GatePolicyError: checks.cnaries: unknown check (known: file_safety, canaries, strip, neural_cleanse, drift, validation_gap, data_scan)
    """

    name: str = "release gate"
    checks: Checks

    @classmethod
    def model_validate(cls, obj: Any, **kw: Any) -> "GatePolicy":  # type: ignore[override]
        try:
            return super().model_validate(obj, **kw)
        except ValidationError as exc:
            raise GatePolicyError(_policy_errors(exc)) from None

    def enabled(self) -> list[str]:
        """The checks the policy runs, in run order."""
        return [c for c in CHECKS if getattr(self.checks, c) is not None]


def _policy_errors(exc: ValidationError) -> str:
    from .scenario import _format_errors

    lines = []
    for err in exc.errors():
        loc = err["loc"]
        if err["type"] == "extra_forbidden" and len(loc) == 2 and loc[0] == "checks":
            lines.append(f"checks.{loc[1]}: unknown check (known: {', '.join(CHECKS)})")
    if lines:
        return "; ".join(lines)
    return _format_errors(exc)


def load_policy(path: str | os.PathLike) -> GatePolicy:
    """Read and validate a policy from a ``.yaml``/``.yml`` or ``.json`` file (one-line
    :class:`GatePolicyError` naming the field for anything wrong)."""
    from .scenario import ScenarioError, parse_scenario_text

    path = Path(path)
    if not path.is_file():
        raise GatePolicyError(f"{path}: no such policy file" if not path.exists() else f"{path} is not a file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise GatePolicyError(f"{path} cannot be read: {exc}") from exc
    try:
        data = parse_scenario_text(text, path.suffix.lower(), source=str(path))
    except ScenarioError as exc:
        raise GatePolicyError(str(exc).replace("a scenario", "a policy")) from None
    # ``strip:`` with nothing after it (YAML null) runs the check with its defaults
    checks = data.get("checks")
    if isinstance(checks, dict):
        data["checks"] = {k: ({} if v is None else v) for k, v in checks.items()}
    try:
        return GatePolicy.model_validate(data)
    except GatePolicyError as exc:
        raise GatePolicyError(f"{path}: {exc}") from None


# --- results -------------------------------------------------------------------------------------

@dataclass
class CheckResult:
    """One check's outcome.

    Attributes
    ----------
    name : str
    status : {"passed", "failed", "skipped", "error"}
    message : str
        One sentence: what was measured against what.
    measured : dict
        The numbers the decision used (JSON-friendly).
    threshold : dict
        The policy's thresholds for this check.
    seconds : float
    """

    name: str
    status: str
    message: str
    measured: dict[str, Any] = field(default_factory=dict)
    threshold: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def passed(self) -> bool | None:
        """True passed, False failed, errored or warned (a non-blocking failure), None skipped."""
        return None if self.status == SKIPPED else self.status == PASSED

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "passed": self.passed, "message": self.message,
                "measured": self.measured, "threshold": self.threshold, "seconds": self.seconds}


@dataclass
class GateResult:
    """What :func:`run_gate` decided.

    Attributes
    ----------
    passed : bool
        No check failed or errored (skipped checks do not count).
    checks : list of CheckResult
        In run order.
    model : str
    policy : GatePolicy
    info : dict
        The model card's summary, the trusted data, the baseline.
    seconds : float
    """

    passed: bool
    checks: list[CheckResult]
    model: str
    policy: GatePolicy
    info: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def check(self, name: str) -> CheckResult:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def failed(self) -> list[str]:
        return [c.name for c in self.checks if c.status in (FAILED, ERROR)]

    @property
    def warned(self) -> list[str]:
        return [c.name for c in self.checks if c.status == WARNED]

    def verdict(self) -> str:
        n = len([c for c in self.checks if c.status != SKIPPED])
        warned = f"; warnings: {', '.join(self.warned)}" if self.warned else ""
        if self.passed:
            return f"PASS: {n - len(self.warned)} of {n} check(s) passed" + (
                f" ({len(self.checks) - n} skipped)" if len(self.checks) > n else "") + warned
        return f"FAIL: {', '.join(self.failed)} ({len(self.failed)} of {n} check(s)){warned}"

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "verdict": self.verdict(), "model": self.model,
                "policy": self.policy.model_dump(), "checks": [c.to_dict() for c in self.checks],
                "info": self.info}


# --- the checks (each returns a CheckResult; they share a context) -------------------------------

@dataclass
class _Context:
    policy: GatePolicy
    model_path: Path
    trusted: Dataset | None
    classifier: Any = None
    checked: Any = None
    suite: Any = None
    canary_result: Any = None
    baseline: Any = None
    source_val: Dataset | None = None
    train: Dataset | None = None
    emit: Emit = ignore


def _round(x: Any) -> Any:
    if isinstance(x, float):
        return float(f"{x:.6g}") if np.isfinite(x) else None
    return x


def _suite(ctx: _Context) -> Any:
    from ..monitoring.canaries import build_canary_suite, trigger_families

    if ctx.suite is None:
        p = ctx.policy.checks.canaries or CanariesCheck()
        probe_params = {k: v for k, v in p.probe_params.items()
                        if k in trigger_families(ctx.trusted.modality)}  # a policy may cover several modalities
        ctx.suite = build_canary_suite(ctx.trusted, n_per_class=p.n_per_class, seed=p.seed,
                                       fire_rate=p.fire_rate, min_accuracy=p.min_accuracy,
                                       probe_params=probe_params)
    return ctx.suite


def _canaries_result(ctx: _Context) -> Any:
    from ..monitoring.canaries import run_canaries

    if ctx.canary_result is None:
        p = ctx.policy.checks.canaries or CanariesCheck()
        ctx.canary_result = run_canaries(ctx.classifier, _suite(ctx), fire_rate=p.fire_rate,
                                         min_accuracy=p.min_accuracy)
    return ctx.canary_result


def _check_canaries(ctx: _Context, p: CanariesCheck) -> CheckResult:
    res = _canaries_result(ctx)
    suite = _suite(ctx)
    measured = {"accuracy": _round(res.accuracy), "n_canaries": len(suite),
                "probes": [{"family": q.family, "target": q.target, "rate": _round(q.rate), "fires": q.fires}
                           for q in res.probes],
                "fired": [q.family for q in res.fired], "skipped_families": dict(suite.skipped)}
    return CheckResult("canaries", PASSED if res.passed else FAILED, res.message(), measured,
                       {"min_accuracy": p.min_accuracy, "fire_rate": p.fire_rate})


def _check_strip(ctx: _Context, p: StripCheck) -> CheckResult:
    from ..defenses.inference import STRIP

    suite = _suite(ctx)
    if not suite.probes:
        return CheckResult("strip", SKIPPED, f"no trigger family to probe {suite.modality} data with",
                           threshold={"max_flag_rate": p.max_flag_rate})
    clean = ctx.trusted.X[:p.n_clean]
    det = STRIP(n_overlays=p.n_overlays, false_positive_rate=p.false_positive_rate,
                random_state=p.seed).fit(clean, model=ctx.classifier)
    rates = {q.family: float(np.mean(det.flag(q.X))) for q in suite.probes}
    clean_rate = float(np.mean(det.flag(suite.X)))
    worst = max(rates, key=rates.get)
    bad = [f for f, r in rates.items() if r > p.max_flag_rate]
    measured = {"flag_rate": {f: _round(r) for f, r in rates.items()}, "canary_flag_rate": _round(clean_rate),
                "threshold_entropy_score": _round(float(det.threshold_)), "n_clean": int(len(clean))}
    if bad:
        msg = "STRIP flags triggered inputs of " + ", ".join(f"{f} ({rates[f]:.0%})" for f in bad) + \
              f" above {p.max_flag_rate:.0%}: their superimpositions keep a low entropy"
    else:
        msg = f"no trigger family's inputs flagged above {p.max_flag_rate:.0%} (highest: {worst} {rates[worst]:.0%}; " \
              f"untriggered canaries {clean_rate:.0%})"
    return CheckResult("strip", FAILED if bad else PASSED, msg, measured,
                       {"max_flag_rate": p.max_flag_rate, "false_positive_rate": p.false_positive_rate})


def _check_neural_cleanse(ctx: _Context, p: NeuralCleanseCheck) -> CheckResult:
    import warnings

    from ..defenses.model import NeuralCleanse
    from .events import training_callback

    thr = {"max_anomaly_index": p.max_anomaly_index, "on_inconclusive": p.on_inconclusive}
    if ctx.trusted.modality != "image":
        return CheckResult("neural_cleanse", SKIPPED, f"Neural Cleanse reverse-engineers image triggers; "
                           f"this model takes {ctx.trusted.modality}", threshold=thr)
    with warnings.catch_warnings():  # inconclusive runs are reported in the result
        warnings.simplefilter("ignore")
        nc = NeuralCleanse(epochs=p.epochs, random_state=p.seed).fit(
            ctx.trusted.X[:p.n_clean], model=ctx.classifier,
            callback=training_callback(ctx.emit, "neural cleanse"))
    index = np.asarray(nc.anomaly_index_, dtype=float)
    conclusive = bool(getattr(nc, "conclusive_", True))
    # the detector's rule at the policy's index threshold: index above it and a mask min_gap
    # times smaller than every other class's
    outlying = index > p.max_anomaly_index
    flagged = np.flatnonzero(outlying & (nc.gap_ > nc.min_gap)).tolist()
    measured = {"anomaly_index": [_round(float(v)) for v in index],
                "mask_gap": [_round(float(v)) for v in nc.gap_], "min_gap": nc.min_gap,
                "l1_norms": [_round(float(v)) for v in nc.l1_norms_],
                "max_anomaly_index": _round(float(np.nanmax(index))), "flagged_classes": flagged,
                "conclusive": conclusive}
    if not conclusive:
        status = FAILED if p.on_inconclusive == "fail" else PASSED
        return CheckResult("neural_cleanse", status, f"inconclusive (policy: {p.on_inconclusive}): "
                           f"{_first_line(getattr(nc, 'warning_', '') or 'not converged')}", measured, thr)
    if flagged:
        return CheckResult("neural_cleanse", FAILED, f"class(es) {flagged} need an abnormally small trigger "
                           f"(anomaly index {max(index[flagged]):.2f} > {p.max_anomaly_index})", measured, thr)
    if outlying.any():
        c = int(np.argmax(index))
        return CheckResult("neural_cleanse", PASSED, f"class {c}'s anomaly index {index[c]:.2f} > "
                           f"{p.max_anomaly_index}, but its mask is only {nc.gap_[c]:.2f}x smaller than the "
                           f"next class's (a backdoor needs > {nc.min_gap}x)", measured, thr)
    return CheckResult("neural_cleanse", PASSED, f"largest anomaly index {np.nanmax(index):.2f} <= "
                       f"{p.max_anomaly_index}", measured, thr)


def _check_drift(ctx: _Context, p: DriftCheck) -> CheckResult:
    from ..monitoring.drift import drift_between

    thr = {"max_flip_rate": p.max_flip_rate, "max_class_flip_rate": p.max_class_flip_rate, "alpha": p.alpha,
           "fail_on_ks": p.fail_on_ks, "max_ks_statistic": p.max_ks_statistic,
           "fail_on_new_probes": p.fail_on_new_probes}
    if ctx.baseline is None:
        return CheckResult("drift", SKIPPED, "no baseline model given (--baseline): nothing to compare with",
                           threshold=thr)
    n_ref = min(p.n_reference, len(ctx.trusted))
    res, _, _ = drift_between(ctx.baseline, ctx.classifier, _suite(ctx),
                              X_ref=ctx.trusted.X[-n_ref:] if n_ref else None,
                              y_ref=ctx.trusted.y[-n_ref:] if n_ref else None, alpha=p.alpha)
    d = res.to_dict()
    worst_class = float(np.nanmax(res.class_flip_rates)) if np.isfinite(res.class_flip_rates).any() else 0.0
    measured = {"flip_rate": _round(res.flip_rate), "max_class_flip_rate": _round(worst_class),
                "class_flip_rates": [_round(v) for v in d["class_flip_rates"]], "ks": d["ks"],
                "ks_shifted_classes": [c for c, k in enumerate(d["ks_per_class"] or []) if k and k["shifted"]],
                "newly_firing": d["newly_firing"], "n": res.n}
    why = []
    if res.flip_rate > p.max_flip_rate:
        why.append(f"flip rate {res.flip_rate:.1%} > {p.max_flip_rate:.0%}")
    if worst_class > p.max_class_flip_rate:
        why.append(f"a class flips {worst_class:.1%} > {p.max_class_flip_rate:.0%}")
    if p.fail_on_new_probes and res.newly_firing:
        why.append("newly firing probes: " + ", ".join(f"{q['family']} -> {q['target']}" for q in res.newly_firing))
    if p.fail_on_ks and res.ks and res.ks["shifted"]:
        why.append(f"confidences shifted (KS D={res.ks['statistic']:.3f}, p={res.ks['p_value']:.2g} < {p.alpha})")
    if p.max_ks_statistic is not None and res.ks and res.ks["statistic"] > p.max_ks_statistic:
        why.append(f"confidence distribution moved (KS D={res.ks['statistic']:.3f} > {p.max_ks_statistic})")
    ks = f"; KS D={res.ks['statistic']:.3f}, p={res.ks['p_value']:.2g}" if res.ks else ""
    msg = "; ".join(why) if why else f"flip rate {res.flip_rate:.1%}, worst class {worst_class:.1%}, " \
                                     f"no newly firing probe{ks}"
    return CheckResult("drift", FAILED if why else PASSED, msg, measured, thr)


def _accuracy(clf: Any, ds: Dataset) -> float:
    return float(np.mean(clf.predict(ds.X) == ds.y))


def _check_validation_gap(ctx: _Context, p: ValidationGapCheck) -> CheckResult:
    thr = {"max_gap": p.max_gap}
    if ctx.source_val is None:
        return CheckResult("validation_gap", SKIPPED, "no source-derived validation set given", threshold=thr)
    a_trusted, a_source = _accuracy(ctx.classifier, ctx.trusted), _accuracy(ctx.classifier, ctx.source_val)
    gap = a_trusted - a_source
    measured = {"trusted_accuracy": _round(a_trusted), "source_accuracy": _round(a_source), "gap": _round(gap),
                "n_trusted": len(ctx.trusted), "n_source": len(ctx.source_val)}
    ok = abs(gap) <= p.max_gap
    msg = f"accuracy {a_trusted:.1%} on trusted vs {a_source:.1%} on source validation: gap {gap:+.1%} " \
          f"{'within' if ok else 'beyond'} ±{p.max_gap:.0%}"
    return CheckResult("validation_gap", PASSED if ok else FAILED, msg, measured, thr)


def _check_data_scan(ctx: _Context, p: DataScanCheck) -> CheckResult:
    from .scan import DEFAULT_DETECTORS, scan

    thr = {"max_quarantine_fraction": p.max_quarantine_fraction}
    if ctx.train is None:
        return CheckResult("data_scan", SKIPPED, "no training data given to scan", threshold=thr)
    ds = ctx.train if len(ctx.train) <= p.max_samples else ctx.train.subset(np.arange(p.max_samples))
    res = scan(ds, model=ctx.classifier, detectors=p.detectors or DEFAULT_DETECTORS, random_state=0,
               emit=ctx.emit)
    frac = float(np.mean(res.quarantine))
    measured = {"quarantined": int(res.quarantine.sum()), "n_scanned": len(ds), "fraction": _round(frac),
                "verdict": res.verdict, "families": res.families}
    ok = frac <= p.max_quarantine_fraction
    msg = f"the scan quarantines {int(res.quarantine.sum())} of {len(ds)} samples ({frac:.1%}), " \
          f"{'within' if ok else 'above'} {p.max_quarantine_fraction:.0%}"
    return CheckResult("data_scan", PASSED if ok else FAILED, msg, measured, thr)


_RUNNERS = {"canaries": _check_canaries, "strip": _check_strip, "neural_cleanse": _check_neural_cleanse,
            "drift": _check_drift, "validation_gap": _check_validation_gap, "data_scan": _check_data_scan}


def _first_line(text: Any) -> str:
    lines = str(text).strip().splitlines()
    return lines[0] if lines else ""


# --- the workflow --------------------------------------------------------------------------------

def check_inputs(policy: GatePolicy, *, trusted: Dataset | None, baseline: Any = None, source_val: Any = None,
                 train: Any = None) -> None:
    """Refuse, before any work, a policy whose required inputs are missing."""
    needs_data = [c for c in policy.enabled() if c != "file_safety"]
    if needs_data and trusted is None:
        raise InvalidParameterError(f"checks {needs_data} need trusted labelled data (--dataset or --data)")
    for name, given, option in (("drift", baseline, "--baseline"), ("validation_gap", source_val, "--source-val"),
                                ("data_scan", train, "--train")):
        p = getattr(policy.checks, name)
        if p is not None and p.require and given is None:
            raise InvalidParameterError(f"checks.{name}.require is true but no {option} was given")


def _load_gated(path: Path, trusted: Dataset | None) -> Any:
    """The model under the gate (checked), its classifier; a model without a card is refused."""
    from ..models.adapters import TorchClassifier
    from ..models.architectures import ModelSpec
    from ..models.io import card_path, read_card
    from .model_scan import load_checked_model

    if path.suffix != ".safetensors" or read_card(path) is None:
        raise DataError(f"{path.name} has no model card ({card_path(path).name} beside safetensors weights): "
                        f"the gate releases only models saved with poisonlab (train, save_model) so that "
                        f"their architecture and training data are known")
    spec = None
    if trusted is not None:
        spec = ModelSpec(tuple(np.shape(trusted.X)[1:]), trusted.n_classes)
    checked = load_checked_model(path, spec=spec)  # refuses a card made for other data
    card = checked.card
    vocabulary = None
    if card.vocabulary is not None:
        from ..models.text import Vocabulary

        vocabulary = Vocabulary.from_dict(card.vocabulary)
    clf = TorchClassifier.from_trained(checked.module, n_classes=card.n_classes, vocabulary=vocabulary)
    return checked, clf


def load_baseline(path: str | os.PathLike, trusted: Dataset | None) -> Any:
    """The baseline model (file-safety scanned, card required) as a classifier."""
    return _load_gated(Path(path), trusted)[1]


def run_gate(model_path: str | os.PathLike, policy: GatePolicy, *, trusted: Dataset | None = None,
             baseline: str | os.PathLike | Any = None, source_val: Dataset | None = None,
             train: Dataset | None = None, suite: Any = None, emit: Emit | None = None) -> GateResult:
    """Run ``policy``'s checks on the model in ``model_path``.

    Parameters
    ----------
    model_path : path
        ``.safetensors`` weights with their model card (other files fail ``file_safety`` when
        unsafe, and are refused otherwise: the gate needs the card).
    policy : GatePolicy
        From :func:`load_policy` or ``GatePolicy.model_validate``.
    trusted : Dataset, optional
        Trusted held-out labelled data (required by every check but ``file_safety``): canaries,
        STRIP's clean inputs, Neural Cleanse's inputs, the drift reference set, the trusted side
        of the validation gap.
    baseline : path or classifier, optional
        The last released model (``drift``).
    source_val : Dataset, optional
        A validation set derived from the training source (``validation_gap``).
    train : Dataset, optional
        The training data or snapshot (``data_scan``).
    suite : CanarySuite, optional
        A prepared canary suite (default: built from ``trusted`` with the policy's ``canaries``
        parameters).
    emit : callable, optional
        Receives ``StepStarted``/``StepFinished`` per check (label "gate", step = check name,
        summary = status) and a ``Note`` with the verdict.

    Returns
    -------
    GateResult

    Raises
    ------
    InvalidParameterError
        A required input is missing (before any work).
    DataError
        The model has no model card, or its card disagrees with the trusted data.
    """
    from ..defenses.model import scan_model_file

    emit = emit or ignore
    t_start = time.perf_counter()
    check_inputs(policy, trusted=trusted, baseline=baseline, source_val=source_val, train=train)
    path = Path(model_path)
    if not path.is_file():
        raise DataError(f"model file {path} does not exist" if not path.exists() else f"{path} is not a file")
    enabled = policy.enabled()
    results: list[CheckResult] = []
    info: dict[str, Any] = {"trusted": trusted.summary() if trusted is not None else None}

    def record(res: CheckResult, t0: float) -> None:
        res.seconds = round(time.perf_counter() - t0, 3)
        results.append(res)
        emit(StepFinished(label=LABEL, step=res.name, seconds=res.seconds,
                          summary={"status": res.status, "message": res.message}))

    # file safety first: an unsafe file is never loaded
    t0 = time.perf_counter()
    report = scan_model_file(path)
    if "file_safety" in enabled:
        emit(StepStarted(label=LABEL, step="file_safety"))
        record(CheckResult("file_safety", PASSED if report.safe else FAILED, report.summary(),
                           {"safe": bool(report.safe), "format": report.format}), t0)
    if not report.safe:
        for name in enabled:
            if name != "file_safety":
                results.append(CheckResult(name, FAILED, "not run: the model file is unsafe and was not loaded"))
        return _finish(results, path, policy, info, t_start, emit)
    checked, clf = _load_gated(path, trusted)
    card = checked.card
    info["model_card"] = {"architecture": card.architecture, "n_classes": card.n_classes,
                          "data_sha256": card.data_sha256, "weights_sha256": card.weights_sha256,
                          "metrics": card.metrics, "modality": card.modality}
    ctx = _Context(policy=policy, model_path=path, trusted=trusted, classifier=clf, checked=checked, suite=suite,
                   source_val=source_val, train=train, emit=emit)
    if baseline is not None:
        ctx.baseline = load_baseline(baseline, trusted) if isinstance(baseline, (str, os.PathLike)) else baseline
        info["baseline"] = os.fspath(baseline) if isinstance(baseline, (str, os.PathLike)) else type(baseline).__name__
    for name in enabled:
        if name == "file_safety":
            continue
        emit(StepStarted(label=LABEL, step=name))
        t0 = time.perf_counter()
        try:
            res = _RUNNERS[name](ctx, getattr(policy.checks, name))
        except PoisonlabError as exc:  # a method refusing this model or data: the check errors
            res = CheckResult(name, ERROR, f"{type(exc).__name__}: {_first_line(exc)}")
        except Exception as exc:  # noqa: BLE001 - a crash inside one check blocks the release, visibly
            res = CheckResult(name, ERROR, f"unexpected {type(exc).__name__} (a poisonlab bug, please "
                                           f"report it): {_first_line(exc)}")
        if res.status == FAILED and not getattr(policy.checks, name).blocking:
            res.status = WARNED
            res.message = f"(non-blocking) {res.message}"
        record(res, t0)
    if ctx.suite is not None:
        info["canary_suite"] = ctx.suite.summary()
    return _finish(results, path, policy, info, t_start, emit)


def _finish(results: list[CheckResult], path: Path, policy: GatePolicy, info: dict[str, Any], t0: float,
            emit: Emit) -> GateResult:
    passed = all(r.status in RELEASABLE for r in results)
    res = GateResult(passed=passed, checks=results, model=os.fspath(path), policy=policy, info=info,
                     seconds=round(time.perf_counter() - t0, 3))
    emit(Note(label=LABEL, text=res.verdict()))
    return res


# --- outputs: record, JUnit XML --------------------------------------------------------------------

def gate_record(result: GateResult, *, scenario: dict[str, Any] | None = None,
                data_files: Any = ()) -> dict[str, Any]:
    """The run record (kind ``"gate"``) of a gate run, for ``poisonlab report`` and archives."""
    from .record import jsonable, make_record

    results = jsonable(result.to_dict())
    timings = {c.name: c.seconds for c in result.checks}
    timings["total"] = result.seconds
    return make_record(kind="gate", scenario=jsonable(scenario or {"model": result.model}), results=results,
                       timings=timings, data_files=[p for p in data_files if p is not None])


def junit_xml(result: GateResult, *, suite_name: str | None = None) -> str:
    """JUnit XML of a gate run: one ``<testcase>`` per check (classname ``poisonlab.gate``),
    a ``<failure>`` with the check's message when it failed, ``<error>`` when it raised,
    ``<skipped>`` when skipped; the measured values in ``<system-out>``."""
    import json

    name = suite_name or f"poisonlab gate: {result.policy.name}"
    n_fail = sum(c.status == FAILED for c in result.checks)
    n_err = sum(c.status == ERROR for c in result.checks)
    n_skip = sum(c.status == SKIPPED for c in result.checks)
    attrs = {"name": name, "tests": str(len(result.checks)), "failures": str(n_fail), "errors": str(n_err),
             "skipped": str(n_skip), "time": f"{result.seconds:.3f}"}
    root = ET.Element("testsuites", attrs)
    suite = ET.SubElement(root, "testsuite", attrs)
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", {"name": "model", "value": result.model})
    ET.SubElement(props, "property", {"name": "verdict", "value": result.verdict()})
    for c in result.checks:
        case = ET.SubElement(suite, "testcase", {"classname": "poisonlab.gate", "name": c.name,
                                                 "time": f"{c.seconds:.3f}"})
        if c.status == FAILED:
            ET.SubElement(case, "failure", {"message": c.message, "type": "GateCheckFailed"}).text = c.message
        elif c.status == ERROR:
            ET.SubElement(case, "error", {"message": c.message, "type": "GateCheckError"}).text = c.message
        elif c.status == SKIPPED:
            ET.SubElement(case, "skipped", {"message": c.message})
        elif c.status == WARNED:  # a passing testcase that says why it would have failed
            ET.SubElement(case, "system-err").text = f"warning: {c.message}"
        from .record import jsonable

        ET.SubElement(case, "system-out").text = json.dumps(
            {"measured": jsonable(c.measured), "threshold": jsonable(c.threshold)}, sort_keys=True)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(path: str | os.PathLike, result: GateResult) -> Path:
    """Write :func:`junit_xml` of ``result`` to ``path`` atomically; return the path."""
    from .._files import atomic_write_text

    return atomic_write_text(path, junit_xml(result))
