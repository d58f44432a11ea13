"""Sign a released model and verify it before use, with OpenSSF ``model-signing`` (offline,
key-based: an elliptic-curve key pair in PEM files; no Sigstore, no network).

What is signed is a manifest of sha256 digests of the model's files: a single weights file, or
every file of a model folder (weights, model card, tokenizer ...). Verification recomputes the
manifest and checks the signature with the public key: changed weights, a changed card inside a
signed folder, a file added or removed, or a signature made with another key all fail.

Threat model: an attacker who can replace files between the release gate and deployment (a
model registry, an artifact store) but does not hold the private key. Limits: signing a single
weights file does not cover the model card beside it (sign the folder to cover both); the
signature says who released the file, not that the model is free of backdoors -- that is what
the gate checked before signing.

:func:`sign_model` returns the signature's bytes (the caller writes them: the command line
through its output guard, atomically); :func:`verify_model` raises
:class:`SignatureError` with one line when verification fails.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..exceptions import DataError, PoisonlabError


class SignatureError(PoisonlabError):
    """A model does not match its signature, or the signature or key cannot be used."""


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _check_path(path: Path, what: str) -> None:
    if not path.exists():
        raise DataError(f"{what} {path} does not exist")


def _signer(private_key: Path, password: str | None):
    """model-signing's signing configuration for an elliptic-curve private key (PEM)."""
    from model_signing import signing

    try:
        return signing.Config().use_elliptic_key_signer(private_key=private_key, password=password)
    except Exception as exc:  # noqa: BLE001 - cryptography raises several types for a bad key
        raise SignatureError(f"cannot use {private_key} as an elliptic-curve private key (PEM): "
                             f"{_first_line(exc)}") from exc


def check_private_key(private_key: str | os.PathLike, *, password: str | None = None) -> None:
    """Refuse, before any work, a private key :func:`sign_model` could not use (missing, not
    PEM, not elliptic-curve): a command that signs at its end must not fail there after
    writing its other outputs."""
    private_key = Path(private_key)
    _check_path(private_key, "private key")
    _signer(private_key, password)


def sign_model(model_path: str | os.PathLike, private_key: str | os.PathLike, *,
               password: str | None = None) -> bytes:
    """Sign ``model_path`` (a file or a folder) with an elliptic-curve private key (PEM).

    Returns
    -------
    bytes
        The signature (a Sigstore bundle in JSON), to store beside the model.

    Raises
    ------
    SignatureError
        The key cannot be read or is not an elliptic-curve private key.
    DataError
        The model or the key does not exist.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from cryptography.hazmat.primitives import serialization
    >>> from cryptography.hazmat.primitives.asymmetric import ec
    >>> d = pathlib.Path(tempfile.mkdtemp()); key = ec.generate_private_key(ec.SECP256R1())
    >>> _ = (d / "k.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
    ...     serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    >>> _ = (d / "k.pub").write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
    ...     serialization.PublicFormat.SubjectPublicKeyInfo))
    >>> _ = (d / "m.bin").write_bytes(b"weights")
    >>> _ = (d / "m.sig").write_bytes(sign_model(d / "m.bin", d / "k.pem"))
    >>> verify_model(d / "m.bin", d / "m.sig", d / "k.pub")
    >>> _ = (d / "m.bin").write_bytes(b"tampered")
    >>> verify_model(d / "m.bin", d / "m.sig", d / "k.pub")
    Traceback (most recent call last):
    ...
    poisonlab.runs.signing.SignatureError: m.bin does not match its signature m.sig: ...
    """
    model_path, private_key = Path(model_path), Path(private_key)
    _check_path(model_path, "model")
    _check_path(private_key, "private key")
    with tempfile.TemporaryDirectory(prefix="poisonlab-sign-") as tmp:
        out = Path(tmp) / "model.sig"
        config = _signer(private_key, password)
        try:
            config.sign(model_path, out)
        except OSError as exc:
            raise DataError(f"cannot read {model_path} to sign it: {exc.strerror or exc}") from exc
        return out.read_bytes()


def verify_model(model_path: str | os.PathLike, signature_path: str | os.PathLike,
                 public_key: str | os.PathLike) -> None:
    """Check that ``model_path`` matches the signature in ``signature_path`` made with the
    private key of ``public_key`` (PEM); return None, or raise :class:`SignatureError`."""
    from model_signing import verifying

    model_path, signature_path, public_key = Path(model_path), Path(signature_path), Path(public_key)
    _check_path(model_path, "model")
    _check_path(signature_path, "signature")
    _check_path(public_key, "public key")
    try:
        config = verifying.Config().use_elliptic_key_verifier(public_key=public_key)
    except Exception as exc:  # noqa: BLE001
        raise SignatureError(f"cannot use {public_key} as an elliptic-curve public key (PEM): "
                             f"{_first_line(exc)}") from exc
    try:
        config.verify(model_path, signature_path)
    except Exception as exc:  # noqa: BLE001 - model_signing raises ValueError and crypto errors alike
        raise SignatureError(f"{model_path.name} does not match its signature {signature_path.name}: "
                             f"{_first_line(exc) or type(exc).__name__}") from exc
