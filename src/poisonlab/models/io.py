"""Saving and loading trained models: safetensors weights plus a JSON model card.

A saved model is two files side by side:

``model.safetensors``
    The state dict's tensors in the safetensors format, which holds no code: loading one never
    unpickles anything (a pickle-based ``.pt`` file can run code when loaded; see
    :mod:`poisonlab.defenses.model.file_safety` for scanning those).
``model.card.json``
    The model card (:class:`ModelCard`): the architecture and the data shape it was built for,
    the training configuration, the training data's sha256 and sample count, the metrics, the
    weights' fingerprint (:func:`weights_sha256`), the poisonlab version and the creation time.
    The card is named ``<stem>.card.json`` (not ``<stem>.json``) so that it never overwrites a
    user's own ``<stem>.json`` beside the weights (:func:`card_path`).

Both files are written atomically (weights first, then the card). Loading checks the weights
against the card's fingerprint, so weights replaced after saving (or a crash between the two
writes) are refused rather than silently paired with the wrong card.

Examples
--------
>>> import tempfile, pathlib, numpy as np
>>> from poisonlab.models import ModelSpec, TorchClassifier, TrainConfig, model_factory
>>> from poisonlab.models import load_classifier, save_model
>>> X = np.random.default_rng(0).normal(size=(40, 4)).astype("float32"); y = (X[:, 0] > 0).astype(int)
>>> clf = TorchClassifier(model_factory("mlp", "tabular", hidden=(8,)), config=TrainConfig(epochs=2)).fit(X, y)
>>> path = pathlib.Path(tempfile.mkdtemp()) / "model.safetensors"
>>> card = save_model(clf.module_, path, architecture="mlp", spec=ModelSpec((4,), 2),
...                   architecture_kwargs={"hidden": [8]}, n_samples=len(X),
...                   metrics={"clean_accuracy": float((clf.predict(X) == y).mean())})
>>> sorted(p.name for p in path.parent.iterdir())
['model.card.json', 'model.safetensors']
>>> again = load_classifier(path)
>>> bool((again.predict_proba(X) == clf.predict_proba(X)).all())
True
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import os
import re
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from .._files import atomic_write_bytes, atomic_write_text
from ..exceptions import ChecksumError, DataError, InvalidParameterError
from .architectures import ARCHITECTURES, ModelSpec

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

    from .adapters import TorchClassifier

#: The version of the model card format this module writes and reads.
CARD_VERSION = 1

#: The suffix of weights files; anything else is refused.
WEIGHTS_SUFFIX = ".safetensors"

#: What follows a weights file's stem in its model card's name.
CARD_SUFFIX = ".card.json"

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


# --- fingerprint -------------------------------------------------------------------------------

def weights_sha256(module: Any) -> str:
    """A stable fingerprint of a model's weights: sha256 over its state dict.

    Tensors are taken in sorted key order; each contributes its key, dtype and shape, then the
    raw bytes of its contiguous CPU copy. Equal weights give equal fingerprints in any process
    and whatever the order the module registered its parameters in; it does not depend on how
    (or whether) the weights were serialised. Run records use it to name a model.

    Parameters
    ----------
    module : nn.Module or mapping of str to Tensor
        A module (its ``state_dict()``) or a state dict.

    Returns
    -------
    str
        64 hexadecimal digits.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> a = nn.Linear(3, 2)
    >>> b = nn.Linear(3, 2); _ = b.load_state_dict(a.state_dict())
    >>> weights_sha256(a) == weights_sha256(b) == weights_sha256(a.state_dict())
    True
    >>> with torch.no_grad():
    ...     b.bias[0] += 1.0
    >>> weights_sha256(a) == weights_sha256(b)
    False
    """
    import torch
    from torch import nn

    if isinstance(module, nn.Module):
        state = module.state_dict()
    elif isinstance(module, Mapping):
        state = module
    else:
        raise InvalidParameterError(f"module must be an nn.Module or a state dict; got {type(module).__name__}")
    h = hashlib.sha256()
    for key in sorted(state):
        t = state[key]
        if not isinstance(t, torch.Tensor):
            raise InvalidParameterError(f"state dict entry {key!r} is a {type(t).__name__}, not a tensor")
        t = t.detach().to("cpu").contiguous()
        h.update(f"{key}\0{str(t.dtype).removeprefix('torch.')}\0{list(t.shape)}\0".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


# --- the model card ----------------------------------------------------------------------------

@dataclass(frozen=True)
class ModelCard:
    """What a saved model is and where it came from (the JSON beside its weights).

    Attributes
    ----------
    architecture : str
        A name of :data:`~poisonlab.models.ARCHITECTURES`, or the name a user's factory goes by.
    input_shape : tuple of int
        One sample's shape (``(C, H, W)``, ``(d,)``, ``(max_length,)`` token ids, ...).
    n_classes : int
    weights_sha256 : str
        :func:`weights_sha256` of the saved weights; checked when loading.
    vocab_size : int or None
        Text models: the vocabulary's size (ids 0 and 1 are padding and unknown).
    modality : str or None
        "image", "text", "tabular" or "audio" when known.
    class_names : tuple of str or None
        One name per class index.
    architecture_kwargs : dict
        Keyword arguments the architecture was built with (``{"hidden": [64]}``).
    train_config : dict or None
        The :class:`~poisonlab.models.TrainConfig` as a dict.
    data_sha256 : str or None
        sha256 of the training data (a file's digest or a snapshot hash).
    n_samples : int or None
        Number of training samples.
    metrics : dict of str to float or None
        Measured quality: ``clean_accuracy``, ``attack_success_rate`` (when the data carried a
        poison mask), ... (None where a value was not finite).
    vocabulary : dict or None
        Text models: the fitted :class:`~poisonlab.models.text.Vocabulary`
        (:meth:`~poisonlab.models.text.Vocabulary.to_dict`), so the texts map to the same ids.
    poisonlab_version : str
    created : str
        ISO 8601 time of saving, UTC.
    extra : dict
        Anything else JSON-serialisable the caller wants kept (a run id, the attack).
    card_version : int
        The card format's version (:data:`CARD_VERSION`).

    Examples
    --------
    >>> card = ModelCard(architecture="mlp", input_shape=(4,), n_classes=2, weights_sha256="0" * 64)
    >>> ModelCard.from_dict(card.to_dict()) == card
    True
    >>> card.spec
    ModelSpec(input_shape=(4,), n_classes=2, vocab_size=None)
    """

    architecture: str
    input_shape: tuple[int, ...]
    n_classes: int
    weights_sha256: str
    vocab_size: int | None = None
    modality: str | None = None
    class_names: tuple[str, ...] | None = None
    architecture_kwargs: dict[str, Any] = field(default_factory=dict)
    train_config: dict[str, Any] | None = None
    data_sha256: str | None = None
    n_samples: int | None = None
    metrics: dict[str, float | None] = field(default_factory=dict)
    vocabulary: dict[str, Any] | None = None
    poisonlab_version: str = ""
    created: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    card_version: int = CARD_VERSION

    @property
    def spec(self) -> ModelSpec:
        """The :class:`~poisonlab.models.ModelSpec` the architecture is built for."""
        return ModelSpec(tuple(self.input_shape), self.n_classes, self.vocab_size)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict, ``card_version`` first."""
        out: dict[str, Any] = {"card_version": self.card_version}
        for f in fields(self):
            if f.name == "card_version":
                continue
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ModelCard":
        """Rebuild a card from :meth:`to_dict`'s output; DataError naming the first bad field.

        Keys this version does not know are ignored (a newer writer's optional fields); a
        ``card_version`` other than :data:`CARD_VERSION` is refused.
        """
        if not isinstance(data, Mapping):
            raise DataError(f"a model card must be a JSON object; got {type(data).__name__}")
        version = data.get("card_version")
        if version != CARD_VERSION:
            raise DataError(f"model card version {version!r} is not supported (this poisonlab reads "
                            f"version {CARD_VERSION})")
        for name in ("architecture", "input_shape", "n_classes", "weights_sha256"):
            if name not in data:
                raise DataError(f"model card field {name!r} is missing")
        _field_check(isinstance(data["architecture"], str) and data["architecture"], "architecture",
                     "a non-empty str", data["architecture"])
        shape = data["input_shape"]
        _field_check(isinstance(shape, (list, tuple)) and shape and all(_is_int(d, 1) for d in shape),
                     "input_shape", "a list of positive ints", shape)
        _field_check(_is_int(data["n_classes"], 1), "n_classes", "an int >= 1", data["n_classes"])
        _field_check(isinstance(data["weights_sha256"], str) and _SHA256.match(data["weights_sha256"]),
                     "weights_sha256", "64 lowercase hex digits", data["weights_sha256"])
        get = data.get
        _field_check(get("vocab_size") is None or _is_int(get("vocab_size"), 2), "vocab_size",
                     "an int >= 2 or null", get("vocab_size"))
        for name in ("modality", "poisonlab_version", "created"):
            _field_check(get(name) is None or isinstance(get(name), str), name, "a str", get(name))
        names = get("class_names")
        _field_check(names is None or (isinstance(names, (list, tuple)) and len(names) == data["n_classes"]
                                       and all(isinstance(c, str) for c in names)),
                     "class_names", f"a list of {data['n_classes']} str or null", names)
        for name in ("architecture_kwargs", "metrics", "extra"):
            _field_check(get(name) is None or isinstance(get(name), dict), name, "an object", get(name))
        for name in ("train_config", "vocabulary"):
            _field_check(get(name) is None or isinstance(get(name), dict), name, "an object or null", get(name))
        _field_check(get("data_sha256") is None or (isinstance(get("data_sha256"), str)
                                                    and _SHA256.match(get("data_sha256"))),
                     "data_sha256", "64 lowercase hex digits or null", get("data_sha256"))
        _field_check(get("n_samples") is None or _is_int(get("n_samples"), 0), "n_samples",
                     "an int >= 0 or null", get("n_samples"))
        metrics = get("metrics") or {}
        for k, v in metrics.items():
            _field_check(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)),
                         f"metrics.{k}", "a number or null", v)
        return cls(
            architecture=data["architecture"], input_shape=tuple(int(d) for d in shape),
            n_classes=int(data["n_classes"]), weights_sha256=data["weights_sha256"],
            vocab_size=get("vocab_size"), modality=get("modality"),
            class_names=None if names is None else tuple(names),
            architecture_kwargs=dict(get("architecture_kwargs") or {}),
            train_config=None if get("train_config") is None else dict(get("train_config")),
            data_sha256=get("data_sha256"), n_samples=get("n_samples"),
            metrics={str(k): (None if v is None else float(v)) for k, v in metrics.items()},
            vocabulary=None if get("vocabulary") is None else dict(get("vocabulary")),
            poisonlab_version=get("poisonlab_version") or "", created=get("created") or "",
            extra=dict(get("extra") or {}),
        )


def _is_int(value: Any, low: int) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= low


def _field_check(ok: Any, name: str, must: str, got: Any) -> None:
    if not ok:
        shown = repr(got)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise DataError(f"model card field {name!r} must be {must}; got {shown}")


def card_path(path: str | os.PathLike) -> Path:
    """Where the model card of the weights file ``path`` lives: ``<stem>.card.json`` beside it.

    Examples
    --------
    >>> card_path("runs/model.safetensors").as_posix()
    'runs/model.card.json'
    """
    path = Path(path)
    return path.with_name(path.stem + CARD_SUFFIX)


def read_card(path: str | os.PathLike) -> ModelCard | None:
    """The model card beside the weights file ``path``, or None when there is none.

    Raises DataError (one line, naming the card's file) for a card that is not valid JSON or
    whose fields are wrong.
    """
    cpath = card_path(_check_suffix(path))
    if not cpath.exists():
        return None
    if cpath.is_dir():
        raise DataError(f"model card {cpath} is a directory, not a JSON file")
    try:
        data = json.loads(cpath.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"model card {cpath} is not valid JSON ({exc.msg} at line {exc.lineno}, "
                        f"column {exc.colno})") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read model card {cpath}: {_one_line(exc)}") from exc
    try:
        return ModelCard.from_dict(data)
    except DataError as exc:
        raise DataError(f"model card {cpath}: {exc}") from exc


# --- saving ------------------------------------------------------------------------------------

def save_model(module: "nn.Module", path: str | os.PathLike, *, architecture: str, spec: ModelSpec,
               config: Any = None, data_sha256: str | None = None, n_samples: int | None = None,
               metrics: Mapping[str, Any] | None = None, extra: Mapping[str, Any] | None = None,
               modality: str | None = None, class_names: Sequence[str] | None = None,
               architecture_kwargs: Mapping[str, Any] | None = None,
               vocabulary: Any = None) -> ModelCard:
    """Save a torch model's weights as safetensors and its model card beside them.

    Parameters
    ----------
    module : nn.Module
        The trained model; its ``state_dict()`` is saved (copied to CPU).
    path : str or PathLike
        The weights file; must end in ``.safetensors``. The card goes to :func:`card_path`
        (``<stem>.card.json``). Both are written atomically; missing folders are created, and
        existing files are replaced.
    architecture : str
        The architecture's name. For a name of :data:`~poisonlab.models.ARCHITECTURES` the
        module is checked against it (with ``spec`` and ``architecture_kwargs``) before anything
        is written, so a card that could not be loaded is never written.
    spec : ModelSpec
        The input shape, class count and vocabulary size the model was built for.
    config : TrainConfig or dict, optional
        The training configuration, stored as a dict.
    data_sha256 : str, optional
        sha256 (64 hex digits) of the training data.
    n_samples : int, optional
        Number of training samples.
    metrics : mapping of str to float, optional
        ``clean_accuracy``, ``attack_success_rate``, ...; non-finite values are stored as null.
    extra : mapping, optional
        More JSON-serialisable facts to keep.
    modality : {"image", "text", "tabular", "audio"}, optional
    class_names : sequence of str, optional
        One per class.
    architecture_kwargs : mapping, optional
        Keyword arguments the architecture was built with (JSON-serialisable), used again when
        loading.
    vocabulary : Vocabulary, optional
        A text model's fitted vocabulary; stored in the card so :func:`load_classifier` maps
        texts to the same ids.

    Returns
    -------
    ModelCard
        The card written.

    Examples
    --------
    See the module's example (:mod:`poisonlab.models.io`).
    """
    import torch
    from safetensors.torch import save as st_save
    from torch import nn

    from .. import __version__
    from .text import Vocabulary

    if not isinstance(module, nn.Module):
        raise InvalidParameterError(f"module must be a torch nn.Module; got {type(module).__name__}")
    path = _check_suffix(path)
    if path.is_dir():
        raise InvalidParameterError(f"path {path} is a directory; give the .safetensors file to write")
    if not isinstance(architecture, str) or not architecture:
        raise InvalidParameterError(f"architecture must be a non-empty str; got {architecture!r}")
    if not isinstance(spec, ModelSpec):
        raise InvalidParameterError(f"spec must be a ModelSpec; got {type(spec).__name__}")
    if config is not None and not isinstance(config, Mapping):
        if not hasattr(config, "to_dict"):
            raise InvalidParameterError(f"config must be a TrainConfig or a dict; got {type(config).__name__}")
        config = config.to_dict()
    if data_sha256 is not None and not (isinstance(data_sha256, str) and _SHA256.match(data_sha256)):
        raise InvalidParameterError(f"data_sha256 must be 64 lowercase hex digits; got {data_sha256!r}")
    if n_samples is not None and not _is_int(n_samples, 0):
        raise InvalidParameterError(f"n_samples must be an int >= 0; got {n_samples!r}")
    if class_names is not None:
        class_names = tuple(str(c) for c in class_names)
        if len(class_names) != spec.n_classes:
            raise InvalidParameterError(f"class_names must name the {spec.n_classes} classes; got {len(class_names)}")
    vocab = None
    if vocabulary is not None:
        if not isinstance(vocabulary, Vocabulary):
            raise InvalidParameterError(f"vocabulary must be a fitted Vocabulary; got {type(vocabulary).__name__}")
        vocab = vocabulary.to_dict()
        if spec.vocab_size is not None and vocabulary.vocab_size != spec.vocab_size:
            raise InvalidParameterError(f"vocabulary has {vocabulary.vocab_size} ids but spec.vocab_size "
                                        f"is {spec.vocab_size}")
    clean_metrics = {}
    for k, v in dict(metrics or {}).items():
        if v is not None and (isinstance(v, bool) or not isinstance(v, numbers.Real)):
            raise InvalidParameterError(f"metrics[{k!r}] must be a number; got {v!r}")
        clean_metrics[str(k)] = None if v is None or not math.isfinite(float(v)) else float(v)
    arch_kwargs = _jsonable(dict(architecture_kwargs or {}), "architecture_kwargs")
    extra = _jsonable(dict(extra or {}), "extra")
    config = None if config is None else _jsonable(dict(config), "config")

    state = {}
    for key, t in module.state_dict().items():
        if not isinstance(t, torch.Tensor):
            raise InvalidParameterError(f"state dict entry {key!r} is a {type(t).__name__}; only tensors "
                                        f"can be saved as safetensors")
        state[key] = t.detach().to("cpu").contiguous().clone()  # clone: no shared storage
    if architecture in ARCHITECTURES:
        reference = _build(architecture, spec, arch_kwargs)
        problem = _mismatch(reference.state_dict(), state)
        if problem:
            raise InvalidParameterError(f"module does not fit architecture {architecture!r} for {spec}: {problem}")

    card = ModelCard(
        architecture=architecture, input_shape=tuple(int(d) for d in spec.input_shape),
        n_classes=int(spec.n_classes), weights_sha256=weights_sha256(state),
        vocab_size=None if spec.vocab_size is None else int(spec.vocab_size), modality=modality,
        class_names=class_names, architecture_kwargs=arch_kwargs, train_config=config,
        data_sha256=data_sha256, n_samples=None if n_samples is None else int(n_samples),
        metrics=clean_metrics, vocabulary=vocab, poisonlab_version=__version__,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"), extra=extra,
    )
    atomic_write_bytes(path, st_save(state, metadata={"format": "pt"}))
    atomic_write_text(card_path(path), json.dumps(card.to_dict(), indent=2, allow_nan=False) + "\n")
    return card


def _jsonable(obj: dict, name: str) -> dict:
    """``obj`` after a JSON round trip (tuples become lists), or a one-line error naming it."""
    try:
        return json.loads(json.dumps(obj, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(f"{name} must be JSON-serialisable: {_one_line(exc)}") from exc


# --- loading -----------------------------------------------------------------------------------

def load_model(path: str | os.PathLike, *, architecture: str | Callable[[ModelSpec], "nn.Module"] | None = None,
               spec: ModelSpec | None = None) -> tuple["nn.Module", ModelCard | None]:
    """Load a model saved by :func:`save_model` (or any safetensors state dict).

    Parameters
    ----------
    path : str or PathLike
        A ``.safetensors`` file. Nothing is ever unpickled.
    architecture : str or callable, optional
        A name of :data:`~poisonlab.models.ARCHITECTURES` or a factory ``ModelSpec -> nn.Module``
        (a user's own model). Default: the card's architecture (with the card's
        ``architecture_kwargs``).
    spec : ModelSpec, optional
        Default: the card's.

    Returns
    -------
    module : nn.Module
        Built with :func:`~poisonlab.models.build_model` (or the factory), weights loaded,
        in eval mode.
    card : ModelCard or None
        The card beside the weights, None when there is none (then ``architecture`` and
        ``spec`` are required).

    Raises
    ------
    InvalidParameterError
        The path does not end in ``.safetensors``; no card and no ``architecture``/``spec``.
    DataError
        The file is missing, a directory, not a valid (or a truncated) safetensors file, its
        weights do not fit the architecture (the first mismatching key is named), or the card
        is not valid JSON.
    ChecksumError
        The weights differ from the card's ``weights_sha256`` (changed after saving).

    Examples
    --------
    See the module's example (:mod:`poisonlab.models.io`).
    """
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load as st_load

    path = _check_suffix(path)
    if path.is_dir():
        raise DataError(f"{path} is a directory, not a safetensors file")
    if not path.is_file():
        raise DataError(f"model file {path} does not exist")
    card = read_card(path)
    spec_given = spec is not None
    if architecture is None and card is None:
        raise InvalidParameterError(f"{path} has no model card ({card_path(path).name}); pass architecture= and spec=")
    if spec is None:
        if card is None:
            raise InvalidParameterError(f"{path} has no model card ({card_path(path).name}); pass spec=")
        spec = card.spec
    if not isinstance(spec, ModelSpec):
        raise InvalidParameterError(f"spec must be a ModelSpec; got {type(spec).__name__}")
    name = card.architecture if architecture is None else architecture
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {_one_line(exc)}") from exc
    try:
        state = st_load(data)
    except SafetensorError as exc:
        raise DataError(f"{path} is not a valid safetensors file (corrupt or truncated): {_one_line(exc)}") from exc
    if callable(name):
        with torch.random.fork_rng(devices=[]):
            module = name(spec)
        if not isinstance(module, torch.nn.Module):
            raise InvalidParameterError(f"architecture factory returned a {type(module).__name__}, not an nn.Module")
        label = getattr(name, "__name__", type(name).__name__)
    else:
        kwargs = card.architecture_kwargs if card is not None and card.architecture == name else {}
        try:
            module = _build(name, spec, kwargs)
        except (InvalidParameterError, ValueError, RuntimeError, TypeError) as exc:
            if architecture is not None and spec_given:
                raise
            # the architecture, its arguments or the input shape came from the card: the card is wrong
            raise DataError(f"model card {card_path(path)} describes a model poisonlab cannot build: "
                            f"{_one_line(exc)}") from exc
        label = name
    problem = _mismatch(module.state_dict(), state)
    if problem:
        raise DataError(f"weights in {path} do not fit architecture {label!r}: {problem}")
    module.load_state_dict(state, strict=True)
    module.eval()
    if card is not None:
        got = weights_sha256(state)
        if got != card.weights_sha256:
            raise ChecksumError(f"weights in {path} have sha256 {got[:12]}... but their model card says "
                                f"{card.weights_sha256[:12]}...: the file changed after it was saved")
    return module, card


def load_classifier(path: str | os.PathLike, *, architecture: str | Callable | None = None,
                    spec: ModelSpec | None = None, vocabulary: Any = None) -> "TorchClassifier":
    """Load a saved model ready to query: :func:`load_model` then
    :meth:`TorchClassifier.from_trained <poisonlab.models.TorchClassifier.from_trained>`.

    ``vocabulary`` (a fitted :class:`~poisonlab.models.text.Vocabulary`) defaults to the one in
    the card, for text models; without one, a text model takes token ids.

    Examples
    --------
    See the module's example (:mod:`poisonlab.models.io`).
    """
    from .adapters import TorchClassifier
    from .text import Vocabulary

    module, card = load_model(path, architecture=architecture, spec=spec)
    if vocabulary is None and card is not None and card.vocabulary is not None:
        try:
            vocabulary = Vocabulary.from_dict(card.vocabulary)
        except DataError as exc:
            raise DataError(f"model card {card_path(path)}: {exc}") from exc
    if vocabulary is not None and not isinstance(vocabulary, Vocabulary):
        raise InvalidParameterError(f"vocabulary must be a fitted Vocabulary; got {type(vocabulary).__name__}")
    n_classes = spec.n_classes if spec is not None else card.n_classes
    return TorchClassifier.from_trained(module, n_classes=n_classes, vocabulary=vocabulary)


# --- helpers -----------------------------------------------------------------------------------

def _check_suffix(path: str | os.PathLike) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidParameterError(f"path must be a str or PathLike; got {type(path).__name__}")
    path = Path(path)
    if path.suffix != WEIGHTS_SUFFIX:
        raise InvalidParameterError(f"path must end in {WEIGHTS_SUFFIX} (weights are kept as safetensors "
                                    f"only); got {path.name!r}")
    return path


def _build(name: str, spec: ModelSpec, kwargs: Mapping[str, Any]) -> "nn.Module":
    import torch

    from .architectures import build_model

    # Construction draws initial weights: keep that off the caller's global RNG.
    with torch.random.fork_rng(devices=[]):
        try:
            return build_model(name, spec, **kwargs)
        except TypeError as exc:
            raise InvalidParameterError(f"architecture {name!r} does not take these arguments "
                                        f"{sorted(kwargs)}: {_one_line(exc)}") from exc


def _mismatch(expected: Mapping[str, Any], got: Mapping[str, Any]) -> str | None:
    """The first key where two state dicts differ in presence, shape or dtype: the model's keys
    in its own order, then keys only in the weights, sorted."""
    for key in [*expected, *sorted(set(got) - set(expected))]:
        if key not in got:
            return f"{key!r} is missing from the weights"
        if key not in expected:
            return f"{key!r} is not a weight of the model"
        e, g = expected[key], got[key]
        if tuple(e.shape) != tuple(g.shape):
            return f"{key!r} has shape {tuple(g.shape)} in the weights, {tuple(e.shape)} in the model"
        if e.dtype != g.dtype:
            return f"{key!r} is {g.dtype} in the weights, {e.dtype} in the model"
    return None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
