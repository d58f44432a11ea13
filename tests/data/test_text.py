"""Text loaders: real SMS Spam and SST-2 counts, the zip and the TSV, folders, and bad input."""

import shutil

import numpy as np
import pytest

from poisonlab import DataError
from poisonlab.data import load_sms_spam, load_sst2, read_text_folder, read_text_tsv


def test_text_real(data_dir):
    sms = load_sms_spam(data_dir)
    counts = sms.train.class_counts() + sms.test.class_counts()
    assert counts.tolist() == [4827, 747] and sms.train.classes == ("ham", "spam")
    sst = load_sst2(data_dir)
    assert sst.train.class_counts().tolist() == [29780, 37569]
    assert sst.test.class_counts().tolist() == [428, 444]


def test_text_loaders_bad_input(tmp_path):
    f = tmp_path / "t.tsv"
    f.write_bytes(b"sentence\tlabel\ngood film\t1\n\xff\xfe bad\t0\n")
    with pytest.raises(DataError, match="not valid UTF-8 \\(line 3"):
        read_text_tsv(f)
    f.write_text("sentence\tlabel\ngood\t1\n \t0\n")
    with pytest.raises(DataError, match="empty text"):
        read_text_tsv(f)
    f.write_text("sentence\tlabel\ngood\t1\nbad\t7\n")
    with pytest.raises(DataError, match="label '7' is not one of"):
        read_text_tsv(f, classes=("neg", "pos"))
    sms = tmp_path / "sms"
    sms.mkdir()
    (sms / "SMSSpamCollection").write_text("ham\thi\nspamm\tbuy\n")
    with pytest.raises(DataError, match="line 2"):
        load_sms_spam(sms, verify=False)
    z = tmp_path / "z"
    z.mkdir()
    (z / "smsspamcollection.zip").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(DataError, match="not a readable SMS Spam zip"):
        load_sms_spam(z, verify=False)


def test_sms_zip_equals_tsv(data_dir, tmp_path):
    shutil.copy(data_dir / "sms-spam-collection" / "smsspamcollection.zip", tmp_path)
    a, b = load_sms_spam(tmp_path), load_sms_spam(data_dir)
    assert np.array_equal(a.train.X, b.train.X) and np.array_equal(a.train.y, b.train.y)


def test_text_folder_and_empty_class(tmp_path):
    for cls, texts in (("neg", ["bad", "awful"]), ("pos", ["great"])):
        (tmp_path / cls).mkdir()
        for i, t in enumerate(texts):
            (tmp_path / cls / f"{i}.txt").write_text(t)
    ds = read_text_folder(tmp_path)
    assert ds.class_counts().tolist() == [2, 1] and ds.ids[2] == "pos/0.txt"
    (tmp_path / "zzz").mkdir()
    with pytest.raises(DataError, match="empty class"):
        read_text_folder(tmp_path)
