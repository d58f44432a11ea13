"""Users' own arrays and images: ``.npz`` files and folders of images by class."""

from __future__ import annotations

import os
import zipfile
import zlib
from pathlib import Path
from tokenize import TokenError

import numpy as np

from .._validation import check_labels
from ..exceptions import DataError
from .dataset import MODALITIES, Dataset

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def read_npz(path: str | os.PathLike, *, x_key: str = "X", y_key: str = "y",
             modality: str = "image", classes: tuple[str, ...] | None = None) -> Dataset:
    """A ``.npz`` with inputs ``x_key`` and integer labels ``y_key`` (optionally ``ids``,
    ``classes``). Pickled object arrays are refused (``allow_pickle=False``)."""
    path = Path(path)
    if modality not in MODALITIES:
        raise DataError(f"modality must be one of {MODALITIES}; got {modality!r}")
    inferred = classes is None
    with open_npz(path) as z:
        keys = set(z.files)
        if x_key not in keys or y_key not in keys:
            raise DataError(f"{path} must hold arrays {x_key!r} and {y_key!r}; found {sorted(keys)}")
        X, y = npz_member(z, x_key, path), npz_member(z, y_key, path)
        ids = npz_member(z, "ids", path) if "ids" in keys else None
        if classes is None and "classes" in keys:
            names = npz_member(z, "classes", path)
            if names.ndim != 1 or names.dtype.kind not in "USiu":
                raise DataError(f"{path}: 'classes' must be a 1-D array of class names; got "
                                f"{names.dtype} of shape {names.shape}")
            classes, inferred = tuple(names.astype(str).tolist()), False
    if X.ndim == 0 or y.ndim != 1:
        raise DataError(f"{path}: {x_key} must have one row per sample and {y_key} must be 1-D; got "
                        f"shapes {X.shape} and {y.shape}")
    if len(X) != len(y):
        raise DataError(f"{path}: {x_key} has {len(X)} samples but {y_key} has {len(y)} labels")
    if X.dtype.kind not in "biufU":
        raise DataError(f"{path}: {x_key} must hold numbers (or texts as a unicode array); got dtype {X.dtype}")
    y = check_labels(y, len(X), name=f"{path}: {y_key}")
    if inferred:
        n_classes = int(np.max(y)) + 1 if len(y) else 0
        missing = np.flatnonzero(np.bincount(y, minlength=n_classes) == 0)
        if len(missing):
            raise DataError(f"{path}: labels run up to {n_classes - 1} but class(es) "
                            f"{_ranges(missing)} have no sample: labels out of range? Relabel to "
                            f"0..K-1, or store the class names under 'classes'")
        classes = tuple(str(i) for i in range(n_classes))
    if ids is None:
        ids = np.array([f"{path.stem}:{i}" for i in range(len(y))])
    if X.dtype.kind == "U":  # texts are stored as a unicode array (never as pickled objects)
        X, modality = X.astype(object), "text"
    return Dataset(X=X, y=y, classes=classes, modality=modality, ids=ids, name=path.stem)


class open_npz:
    """``with open_npz(path) as z``: ``np.load`` of a ``.npz`` that never unpickles, whose every
    failure (missing, a folder, not a zip archive, corrupt, truncated) is a one-line
    ``DataError`` naming the file; read members with :func:`_member`."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def __enter__(self):
        path = self.path
        if path.is_dir():
            raise DataError(f"{path} is a folder; give a .npz file")
        if not path.exists():
            raise DataError(f"{path} does not exist")
        if not path.is_file():
            raise DataError(f"{path} is not a regular file; give a .npz file")
        try:
            if not zipfile.is_zipfile(path):
                raise DataError(f"{path} is not a readable .npz file: not a zip archive (corrupt or "
                                f"truncated, or another format)")
            self._z = np.load(path, allow_pickle=False)
        except DataError:
            raise
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError, KeyError,
                NotImplementedError, RuntimeError) as exc:
            raise DataError(f"{path} is not a readable .npz file (corrupt or truncated): "
                            f"{_first_line(exc)}") from exc
        if not hasattr(self._z, "files"):
            raise DataError(f"{path} holds a single array, not a .npz archive of named arrays")
        return self._z

    def __exit__(self, *exc_info) -> None:
        self._z.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def npz_member(z, key: str, path: Path) -> np.ndarray:
    """Array ``key`` of an open ``.npz``; object arrays and damaged members are DataErrors."""
    try:
        return z[key]
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "pickled" in str(exc):
            raise DataError(f"{path}: {key!r} holds Python objects (an object array), and object arrays "
                            f"are never unpickled; save numbers, or texts as a unicode array "
                            f"(np.array(texts, dtype=str))") from exc
        raise DataError(f"{path}: {key!r} is damaged: {_first_line(exc)}") from exc
    except (zipfile.BadZipFile, EOFError, OSError, KeyError, NotImplementedError, RuntimeError,
            MemoryError, OverflowError, TypeError, zlib.error, SyntaxError, TokenError) as exc:
        raise DataError(f"{path}: {key!r} is damaged (corrupt or truncated): {_first_line(exc)}") from exc


def _ranges(values: np.ndarray) -> str:
    """``[2, 3, 4, 9]`` -> ``"2..4, 9"`` (at most the first five runs)."""
    runs: list[list[int]] = []
    for v in values.tolist():
        if runs and v == runs[-1][1] + 1:
            runs[-1][1] = v
        else:
            runs.append([v, v])
    shown = [f"{a}..{b}" if b > a else f"{a}" for a, b in runs[:5]]
    return ", ".join(shown) + (", ..." if len(runs) > 5 else "")


def read_features(path: str | os.PathLike, *, n_samples: int | None = None) -> np.ndarray:
    """Precomputed features: a 2-D numeric ``.npy`` (memory-mapped, never unpickled), one row per
    sample (``n_samples`` rows when given), finite."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path} is a folder; give a .npy file of features")
    if not path.exists():
        raise DataError(f"features file {path} does not exist")
    if not path.is_file():
        raise DataError(f"features file {path} is not a regular file; give a .npy file")
    fmt = np.lib.format
    try:
        with open(path, "rb") as fh:
            if fh.read(6) != b"\x93NUMPY":
                raise DataError(f"{path} is not a .npy file (no NumPy header): save the features with "
                                f"np.save(path, features)")
            fh.seek(0)
            version = fmt.read_magic(fh)
            read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            _, _, dtype = read_header(fh)
        if dtype.hasobject:
            raise DataError(f"{path} holds Python objects (an object array), and object arrays are never "
                            f"unpickled; save numbers: np.save(path, features.astype(np.float32))")
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except DataError:
        raise
    except ValueError as exc:
        raise DataError(f"{path} is not a readable .npy file (corrupt or truncated): {_first_line(exc)}") from exc
    except (EOFError, OSError, OverflowError, TypeError, SyntaxError, MemoryError, TokenError) as exc:
        # numpy parses the header with Python's tokenizer: damaged headers raise its errors
        raise DataError(f"{path} is not a readable .npy file (corrupt or truncated): {_first_line(exc)}") from exc
    if arr.dtype.kind not in "biuf":
        raise DataError(f"{path}: features must be numbers; got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise DataError(f"{path}: features must be 2-D (one row per sample); got shape {arr.shape}")
    if n_samples is not None and len(arr) != n_samples:
        raise DataError(f"{path} has {len(arr)} rows but the data has {n_samples} samples")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise DataError(f"{path}: features hold NaN or infinite values")
    return arr


def read_image_folder(path: str | os.PathLike, *, size: tuple[int, int] | None = None,
                      grayscale: bool = False) -> Dataset:
    """A folder with one sub-folder per class of image files -> ``(N, C, H, W)`` float32 in [0, 1].

    All images must share one size unless ``size=(H, W)`` is given to resize them.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_dir():
        raise DataError(f"{path} is not a folder")
    classes = tuple(sorted(p.name for p in path.iterdir() if p.is_dir()))
    if len(classes) < 2:
        raise DataError(f"{path} must hold at least two class sub-folders; found {list(classes)}")
    arrays, labels, ids = [], [], []
    for ci, cname in enumerate(classes):
        files = sorted(f for f in (path / cname).iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DataError(f"class folder {path / cname} holds no images (empty class)")
        for f in files:
            try:
                with Image.open(f) as im:
                    im = im.convert("L" if grayscale else "RGB")
                    if size is not None:
                        im = im.resize((size[1], size[0]))
                    arr = np.asarray(im, dtype=np.float32) / 255.0
            except (UnidentifiedImageError, OSError) as exc:
                raise DataError(f"{f} is not a readable image: {exc}") from exc
            except Exception as exc:  # noqa: BLE001 - Pillow's decoders raise ValueError, SyntaxError, ...
                raise DataError(f"{f} is not a readable image (damaged): "
                                f"{_first_line(exc)}") from exc
            arrays.append(arr[None] if grayscale else arr.transpose(2, 0, 1))
            labels.append(ci)
            ids.append(f"{cname}/{f.name}")
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise DataError(f"images in {path} have different sizes {sorted(shapes)[:3]}...; pass size=(H, W)")
    return Dataset(X=np.stack(arrays), y=np.array(labels), classes=classes, modality="image",
                   ids=np.array(ids), name=path.name)
