"""Small reference models, one per modality.

Each model names its parts so that defenses can reach them by name (forward hooks, never
``nn.Sequential`` slicing): ``embedding`` is the penultimate representation (what spectral
signatures and activation clustering read), ``classifier`` the last layer, ``conv1..convK`` the
convolutions (fine-pruning prunes the last one).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from ..exceptions import InvalidParameterError


class MLP(nn.Module):
    """Flatten -> [Linear -> ReLU] x len(hidden) -> Linear."""

    feature_layer = "embedding"

    def __init__(self, input_dim: int, n_classes: int, hidden: Sequence[int] = (256, 128),
                 dropout: float = 0.0) -> None:
        super().__init__()
        if not hidden:
            raise InvalidParameterError("hidden must list at least one layer width")
        layers: list[nn.Module] = [nn.Flatten()]
        width = input_dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = h
        self.embedding = nn.Sequential(*layers)
        self.classifier = nn.Linear(width, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embedding(x))


class ConvNet(nn.Module):
    """``len(widths)`` blocks of Conv -> ReLU -> MaxPool(2), then Linear -> ReLU -> Linear.

    With ``widths=(32, 64)``, ``kernel_size=3``, ``padding=0`` this is the 2-conv + 2-dense MNIST
    network of the STRIP paper's setting (Gao et al. 2019, Table 1). Works for any ``(C, H, W)``.
    """

    feature_layer = "embedding"

    def __init__(self, input_shape: Sequence[int], n_classes: int, widths: Sequence[int] = (32, 64),
                 kernel_size: int = 3, padding: int | str = "same", hidden: int = 128,
                 dropout: float = 0.0) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise InvalidParameterError(f"input_shape must be (C, H, W); got {tuple(input_shape)}")
        c = input_shape[0]
        pad = kernel_size // 2 if padding == "same" else int(padding)
        self.n_conv = len(widths)
        for i, w in enumerate(widths, 1):
            setattr(self, f"conv{i}", nn.Conv2d(c, w, kernel_size, padding=pad))
            c = w
        self.pool = nn.MaxPool2d(2)
        try:
            with torch.no_grad():
                n_flat = self._conv_features(torch.zeros(1, *input_shape)).numel()
        except RuntimeError:
            n_flat = 0
        if n_flat == 0:
            raise InvalidParameterError(f"input_shape {tuple(input_shape)} is too small for {len(widths)} conv blocks")
        head: list[nn.Module] = [nn.Flatten(), nn.Linear(n_flat, hidden), nn.ReLU()]
        if dropout:
            head.append(nn.Dropout(dropout))
        self.embedding = nn.Sequential(*head)
        self.classifier = nn.Linear(hidden, n_classes)

    def _conv_features(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(1, self.n_conv + 1):
            x = self.pool(torch.relu(getattr(self, f"conv{i}")(x)))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embedding(self._conv_features(x)))


class LogMel(nn.Module):
    """``log(mel_filterbank @ |STFT|^2 + eps)`` of raw waveforms ``(N, T)`` -> ``(N, 1, n_mels,
    frames)``, the same numbers as :func:`poisonlab.data.audio.log_mel_spectrogram` (Hann window,
    no centre padding), computed in torch so a model can take waveforms and an audio trigger
    mixed into the waveform reaches it unchanged."""

    def __init__(self, sample_rate: int = 8000, n_fft: int = 256, hop: int = 80, n_mels: int = 32,
                 eps: float = 1e-6) -> None:
        super().__init__()
        from ..data.audio import mel_filterbank

        self.n_fft, self.hop, self.eps = n_fft, hop, eps
        self.register_buffer("window", torch.tensor(np.hanning(n_fft), dtype=torch.float32))
        self.register_buffer("filters", torch.tensor(mel_filterbank(sample_rate, n_fft, n_mels), dtype=torch.float32))

    def frames(self, n_samples: int) -> int:
        return (n_samples - self.n_fft) // self.hop + 1

    def forward(self, waves: torch.Tensor) -> torch.Tensor:
        frames = waves.unfold(1, self.n_fft, self.hop) * self.window      # (N, frames, n_fft)
        power = torch.fft.rfft(frames, dim=-1).abs() ** 2                   # (N, frames, bins)
        return torch.log(torch.einsum("mf,ntf->nmt", self.filters, power) + self.eps)[:, None]


class WaveConvNet(ConvNet):
    """:class:`LogMel` front end, then a :class:`ConvNet` on the spectrogram: an audio model that
    takes raw waveforms ``(N, T)``, so waveform triggers are tested end to end."""

    def __init__(self, n_samples: int, n_classes: int, sample_rate: int = 8000, n_mels: int = 32,
                 **conv) -> None:
        front = LogMel(sample_rate, n_mels=n_mels)
        if n_samples < front.n_fft:
            raise InvalidParameterError(f"waveforms of {n_samples} samples are shorter than the "
                                        f"{front.n_fft}-sample STFT window")
        super().__init__((1, n_mels, front.frames(n_samples)), n_classes, **conv)
        self.front = front

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(self.front(x))


class TextBag(nn.Module):
    """Mean of word embeddings (EmbeddingBag, padding excluded) -> Linear -> ReLU -> Linear.

    The fastText-style baseline (Joulin et al. 2017) over token ids from
    :class:`~poisonlab.models.text.Vocabulary`; id 0 is padding.
    """

    feature_layer = "embedding"

    def __init__(self, vocab_size: int, n_classes: int, embed_dim: int = 64, hidden: int = 64) -> None:
        super().__init__()
        self.bag = nn.EmbeddingBag(vocab_size, embed_dim, mode="mean", padding_idx=0)
        self.embedding = nn.Sequential(nn.Linear(embed_dim, hidden), nn.ReLU())
        self.classifier = nn.Linear(hidden, n_classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embedding(self.bag(ids)))


class TextCNN(nn.Module):
    """Word embeddings -> parallel 1-D convolutions (widths 3, 4, 5) -> ReLU -> max over time ->
    Linear -> ReLU -> Linear: the CNN for sentence classification of Kim (2014).

    Max-over-time pooling reads each n-gram filter's strongest match wherever it occurs, so one
    word carries the same weight in a short or a long text (a mean of embeddings dilutes it by the
    text's length). Padding (id 0) is masked out of the pooling.
    """

    feature_layer = "embedding"

    def __init__(self, vocab_size: int, n_classes: int, embed_dim: int = 64, filters: int = 64,
                 widths: Sequence[int] = (3, 4, 5), hidden: int = 64) -> None:
        super().__init__()
        self.words = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.ngram = nn.ModuleList(nn.Conv1d(embed_dim, filters, w, padding=w // 2) for w in widths)
        self.embedding = nn.Sequential(nn.Linear(filters * len(widths), hidden), nn.ReLU())
        self.classifier = nn.Linear(hidden, n_classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.words(ids).transpose(1, 2)                       # (B, E, T)
        pad = (ids == 0).unsqueeze(1)                              # (B, 1, T)
        pooled = []
        for conv in self.ngram:
            h = torch.relu(conv(x))[..., : ids.shape[1]]           # even widths give T + 1
            pooled.append(h.masked_fill(pad, 0.0).amax(dim=2))     # ReLU >= 0: masked = 0 is neutral
        return self.classifier(self.embedding(torch.cat(pooled, dim=1)))


@dataclass(frozen=True)
class ModelSpec:
    """What a model factory needs to know about the data."""

    input_shape: tuple[int, ...]
    n_classes: int
    vocab_size: int | None = None


def _conv(**defaults):
    """A ConvNet preset; keyword arguments given to ``build_model`` override the defaults."""
    return lambda s, **kw: ConvNet(s.input_shape, s.n_classes, **{**defaults, **kw})


#: Named architectures. Values build a module from a ModelSpec (and overriding keywords).
ARCHITECTURES = {
    "mlp": lambda s, **kw: MLP(int(np.prod(s.input_shape)), s.n_classes, **kw),
    "cnn": _conv(),
    # R1: 2 conv (32, 64; 5x5, valid) + 2 dense (128, 10), the STRIP paper's MNIST setting.
    # 5x5 valid convolutions map 28 -> 24 -> 12 -> 8 -> 4 and every input pixel stays in view.
    # (3x3 valid ones map 28 -> 26 -> 13 -> 11 -> 5: the last pooling floors away the border,
    # so input rows and columns 26-27 -- most of a bottom-right trigger -- are never seen.)
    "strip-mnist-cnn": _conv(widths=(32, 64), kernel_size=5, padding=0, hidden=128),
    "cifar-cnn": _conv(widths=(32, 64, 128), hidden=256),
    "audio-cnn": _conv(widths=(16, 32, 64), hidden=128),
    # raw 8 kHz waveforms (N, T) -> log-mel inside the model -> audio-cnn
    "audio-wave-cnn": lambda s, **kw: WaveConvNet(int(np.prod(s.input_shape)), s.n_classes,
                                                  **{"widths": (16, 32, 64), "hidden": 128, **kw}),
    "text-bag": lambda s, **kw: TextBag(s.vocab_size, s.n_classes, **kw),
    "text-cnn": lambda s, **kw: TextCNN(s.vocab_size, s.n_classes, **kw),
}

#: The architecture each modality uses when the user names none (audio: for spectrograms; raw
#: waveforms get "audio-wave-cnn", see :func:`default_architecture_for`).
DEFAULT_ARCHITECTURE = {"image": "cnn", "tabular": "mlp", "audio": "audio-cnn", "text": "text-bag"}


def default_architecture_for(modality: str, X: Any = None) -> str:
    """The reference architecture for data of ``modality`` shaped like ``X``.

    :data:`DEFAULT_ARCHITECTURE`, except that audio given as raw waveforms ``(N, T)`` -- what
    audio triggers poison -- gets ``"audio-wave-cnn"``, which computes its own log-mel
    spectrogram; spectrograms ``(N, 1, n_mels, frames)`` get ``"audio-cnn"``.

    >>> import numpy as np
    >>> default_architecture_for("audio", np.zeros((4, 8000))), default_architecture_for("audio")
    ('audio-wave-cnn', 'audio-cnn')
    """
    if modality not in DEFAULT_ARCHITECTURE:
        raise InvalidParameterError(f"modality must be one of {sorted(DEFAULT_ARCHITECTURE)} to pick "
                                    f"a default architecture; got {modality!r}")
    if modality == "audio" and X is not None and np.ndim(X) == 2:
        return "audio-wave-cnn"
    return DEFAULT_ARCHITECTURE[modality]


def build_model(name: str, spec: ModelSpec, **kwargs) -> nn.Module:
    """Build a named architecture for ``spec`` (weights are initialised when training starts)."""
    if name not in ARCHITECTURES:
        raise InvalidParameterError(f"unknown architecture {name!r}; available: {sorted(ARCHITECTURES)}")
    if name.startswith("text-") and not spec.vocab_size:
        raise InvalidParameterError(f"architecture {name!r} needs a vocabulary (text input)")
    return ARCHITECTURES[name](spec, **kwargs)


def model_factory(architecture: str | None, modality: str, **kwargs: Any) -> Callable[[ModelSpec], nn.Module]:
    """A factory ``ModelSpec -> nn.Module`` for a named architecture.

    Parameters
    ----------
    architecture : str or None
        A name of :data:`ARCHITECTURES`; None takes the modality's default
        (:data:`DEFAULT_ARCHITECTURE`).
    modality : {"image", "tabular", "audio", "text"}
        Used only when ``architecture`` is None.
    **kwargs
        Keyword arguments of the architecture (``hidden=...``, ``widths=...``), given to
        :func:`build_model`.

    Returns
    -------
    callable
        ``factory(spec) -> nn.Module``, what :class:`~poisonlab.models.TorchClassifier` takes;
        a :func:`functools.partial` of :func:`build_model`, so it pickles (process pools).

    Examples
    --------
    >>> from poisonlab.models import ModelSpec, model_factory
    >>> factory = model_factory(None, "tabular", hidden=(16,))
    >>> type(factory(ModelSpec((4,), 3))).__name__
    'MLP'
    """
    if not architecture:
        if modality not in DEFAULT_ARCHITECTURE:
            raise InvalidParameterError(f"modality must be one of {sorted(DEFAULT_ARCHITECTURE)} to pick "
                                        f"a default architecture; got {modality!r}")
        architecture = DEFAULT_ARCHITECTURE[modality]
    if architecture not in ARCHITECTURES:
        raise InvalidParameterError(f"unknown architecture {architecture!r}; available: {sorted(ARCHITECTURES)}")
    return partial(build_model, architecture, **kwargs)
