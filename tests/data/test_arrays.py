"""Array and image-folder readers: npz without pickle, image folders, and damaged files."""

import numpy as np
import pytest

from poisonlab import DataError
from poisonlab.data import read_image_folder, read_npz


def test_npz_and_pickle_refusal(tmp_path):
    f = tmp_path / "d.npz"
    np.savez(f, X=np.zeros((4, 1, 3, 3)), y=np.array([0, 1, 0, 1]))
    ds = read_npz(f)
    assert ds.classes == ("0", "1") and len(ds) == 4
    np.savez(f, X=np.array([object(), object()], dtype=object), y=np.array([0, 1]))
    with pytest.raises(DataError, match="never unpickled"):
        read_npz(f)
    f.write_bytes(f.read_bytes()[:30])
    with pytest.raises(DataError, match="corrupt or truncated"):
        read_npz(f)
    np.savez(f, X=np.zeros((3, 2)), y=np.array([0, 1]))
    with pytest.raises(DataError, match="3 samples but y has 2"):
        read_npz(f)


def test_image_folder(tmp_path):
    from PIL import Image

    for cls in ("cat", "dog"):
        (tmp_path / cls).mkdir()
        for i in range(2):
            Image.fromarray(np.full((5, 6, 3), 40 * i, np.uint8)).save(tmp_path / cls / f"{i}.png")
    ds = read_image_folder(tmp_path)
    assert ds.X.shape == (4, 3, 5, 6) and ds.classes == ("cat", "dog")
    (tmp_path / "dog" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="not a readable image"):
        read_image_folder(tmp_path)
