"""Users' own arrays and images: ``.npz`` files and folders of images by class."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

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
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = set(z.files)
            if x_key not in keys or y_key not in keys:
                raise DataError(f"{path} must hold arrays {x_key!r} and {y_key!r}; found {sorted(keys)}")
            X, y = z[x_key], z[y_key]
            ids = z["ids"] if "ids" in keys else None
            if classes is None and "classes" in keys:
                classes = tuple(z["classes"].astype(str).tolist())
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise DataError(f"{path} is not a readable .npz file (corrupt or truncated): {exc}") from exc
    except ValueError as exc:
        raise DataError(f"{path}: {exc} (object arrays are never unpickled)") from exc
    if len(X) != len(y):
        raise DataError(f"{path}: {x_key} has {len(X)} samples but {y_key} has {len(y)} labels")
    if np.issubdtype(np.asarray(y).dtype, np.integer) and len(y) and np.min(y) < 0:
        raise DataError(f"{path}: labels must be non-negative class indices")
    if classes is None:
        classes = tuple(str(i) for i in range(int(np.max(y)) + 1 if len(y) else 0))
    if ids is None:
        ids = np.array([f"{path.stem}:{i}" for i in range(len(y))])
    if X.dtype.kind == "U":  # texts are stored as a unicode array (never as pickled objects)
        X, modality = X.astype(object), "text"
    return Dataset(X=X, y=y, classes=classes, modality=modality, ids=ids, name=path.stem)


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
            arrays.append(arr[None] if grayscale else arr.transpose(2, 0, 1))
            labels.append(ci)
            ids.append(f"{cname}/{f.name}")
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise DataError(f"images in {path} have different sizes {sorted(shapes)[:3]}...; pass size=(H, W)")
    return Dataset(X=np.stack(arrays), y=np.array(labels), classes=classes, modality="image",
                   ids=np.array(ids), name=path.name)
