"""Published digests of the real datasets, and streaming verification.

A loader verifies every file it knows a published digest for, before parsing it, and refuses a
mismatch: a corrupt, truncated or substituted file never reaches a model.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ..exceptions import ChecksumError, DataError

#: SHA-256 of the canonical published files, by file name.
SHA256 = {
    # MNIST (LeCun & Cortes)
    "train-images-idx3-ubyte.gz": {
        "mnist": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "fashion-mnist": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    },
    "train-labels-idx1-ubyte.gz": {
        "mnist": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "fashion-mnist": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    },
    "t10k-images-idx3-ubyte.gz": {
        "mnist": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "fashion-mnist": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
    },
    "t10k-labels-idx1-ubyte.gz": {
        "mnist": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        "fashion-mnist": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    },
    "SMSSpamCollection": {"sms-spam": "7d039a24a6083ed9ef0f806ebad56bbb976e3aeb8de05669173bfdc4996c239d"},
    "smsspamcollection.zip": {"sms-spam": "1587ea43e58e82b14ff1f5425c88e17f8496bfcdb67a583dbff9eefaf9963ce3"},
    "train.tsv": {"sst2": "48eac26399f8456935f81dd9e3a745c1430adb6c62e233ccfe22db4a0d15d1d1"},
    "dev.tsv": {"sst2": "54a9c12c77e402fc14d6a66a506f24d999f596b0176eb777c972cccc2f9cc4b0"},
    "adult.data": {"adult": "5b00264637dbfec36bdeaab5676b0b309ff9eb788d63554ca0a249491c86603d"},
    "adult.test": {"adult": "a2a9044bc167a35b2361efbabec64e89d69ce82d9790d2980119aac5fd7e9c05"},
    "german.data": {"german-credit": "b21f3d81db8071257d5ff1deaeba1fd4303b62712e6fcc9715c7a86202cb5871"},
}

#: MD5 of CIFAR-10 files as published (python batches: torchvision; binary: the tarball members).
MD5 = {
    "cifar10": {
        "data_batch_1": "c99cafc152244af753f735de768cd75f",
        "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
        "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
        "data_batch_4": "634d18415352ddfa80567beed471001a",
        "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
        "test_batch": "40351d587109b95175f43aff81a1287e",
        "data_batch_1.bin": "5dd7e06a14cb22eb9f671a540d1b7c25",
        "data_batch_2.bin": "5ea93a67294ea407fff1d09f752e9692",
        "data_batch_3.bin": "942cd6a4bcdd0dd3c604fbe906cb4421",
        "data_batch_4.bin": "ae636b3ba5c66a11e91e8cb52e771fcb",
        "data_batch_5.bin": "53f37980c15c3d472c316c40844f3f0d",
        "test_batch.bin": "803d5f7f4d78ea53de84dbe85f74fb6d",
    }
}


def file_digest(path: str | Path, algorithm: str = "sha256", chunk: int = 1 << 20) -> str:
    """Hex digest of a file, read in chunks (constant memory)."""
    h = hashlib.new(algorithm)
    try:
        with open(path, "rb") as fh:
            while block := fh.read(chunk):
                h.update(block)
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    return h.hexdigest()


def expected_digest(dataset: str, filename: str) -> tuple[str, str] | None:
    """``(algorithm, hexdigest)`` published for ``filename`` of ``dataset``, or None if unknown."""
    if filename in SHA256 and dataset in SHA256[filename]:
        return "sha256", SHA256[filename][dataset]
    if filename in MD5.get(dataset, {}):
        return "md5", MD5[dataset][filename]
    return None


def verify(path: str | Path, dataset: str, *, required: bool = False) -> bool:
    """Check ``path`` against its published digest; return whether a digest was known.

    Raises ChecksumError on a mismatch. With ``required=True`` a file with no known digest is
    refused too.
    """
    path = Path(path)
    known = expected_digest(dataset, path.name)
    if known is None:
        if required:
            raise ChecksumError(f"no published checksum is known for {path.name} of {dataset}")
        return False
    algorithm, want = known
    got = file_digest(path, algorithm)
    if got != want:
        raise ChecksumError(
            f"{path} does not match the published {algorithm} of {dataset}/{path.name}: expected "
            f"{want}, got {got}. The file is corrupt, truncated or a different file; fetch it again "
            f"(or pass verify=False if you changed it on purpose)"
        )
    return True
