"""Data: the ``Dataset`` container and loaders for real formats.

``load_dataset(name, root)`` is the one entry point the CLI uses; each loader is also public.
Where datasets live: ``root`` (``--data-dir``) or the ``POISONLAB_DATA_DIR`` environment
variable; ``digits`` (scikit-learn) needs neither.
"""

from __future__ import annotations

from typing import Any, Callable

from ..exceptions import InvalidParameterError
from .arrays import npz_member, open_npz, read_features, read_image_folder, read_npz
from .audio import load_fsdd, log_mel_spectrogram, mfcc, read_wav
from .builtin import load_digits
from .cifar import load_cifar10
from .dataset import Dataset, Splits
from .idx import load_fashion_mnist, load_mnist, read_idx
from .paths import ENV_VAR, data_root
from .tabular import TabularEncoder, load_adult, load_german_credit, read_csv
from .text import load_sms_spam, load_sst2, read_text_folder, read_text_tsv

#: Built-in dataset names -> (loader, needs files, modality).
DATASETS: dict[str, tuple[Callable[..., Splits], bool, str]] = {
    "digits": (load_digits, False, "image"),
    "mnist": (load_mnist, True, "image"),
    "fashion-mnist": (load_fashion_mnist, True, "image"),
    "cifar10": (load_cifar10, True, "image"),
    "sms-spam": (load_sms_spam, True, "text"),
    "sst2": (load_sst2, True, "text"),
    "adult": (load_adult, True, "tabular"),
    "german-credit": (load_german_credit, True, "tabular"),
    "fsdd": (load_fsdd, True, "audio"),
}


def load_dataset(name: str, root: Any = None, **kwargs: Any) -> Splits:
    """Load a built-in dataset by name (see ``DATASETS``) from ``root`` (or $POISONLAB_DATA_DIR)."""
    if name not in DATASETS:
        raise InvalidParameterError(f"unknown dataset {name!r}; available: {sorted(DATASETS)}")
    loader, needs_files, _ = DATASETS[name]
    return loader(root, **kwargs) if needs_files else loader(**kwargs)


__all__ = [
    "DATASETS", "Dataset", "ENV_VAR", "Splits", "TabularEncoder", "data_root", "load_adult",
    "load_cifar10", "load_dataset", "load_digits", "load_fashion_mnist", "load_fsdd",
    "load_german_credit", "load_mnist", "load_sms_spam", "load_sst2", "log_mel_spectrogram", "mfcc",
    "npz_member", "open_npz", "read_csv", "read_features", "read_idx", "read_image_folder", "read_npz",
    "read_text_folder", "read_text_tsv",
    "read_wav",
]
