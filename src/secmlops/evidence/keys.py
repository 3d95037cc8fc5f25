"""Signing keys on disk: generation, loading (optionally passphrase-protected), fingerprints.

Keys are PEM files. Elliptic-curve keys (P-256 by default, P-384) are what the OpenSSF
model-signing format accepts; signatures and attestations made by secmlops use the same files.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from secmlops.errors import SignatureError

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

_CURVES: dict[str, ec.EllipticCurve] = {"p256": ec.SECP256R1(), "p384": ec.SECP384R1()}


def generate_private_key(curve: str = "p256") -> PrivateKey:
    if curve == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if curve not in _CURVES:
        raise SignatureError(f"unknown key type {curve!r}", hint="use p256, p384 or ed25519")
    return ec.generate_private_key(_CURVES[curve])


def public_key_path(private_path: Path) -> Path:
    """Where `write_key_pair` puts the public half: beside the private key, with `.pub` added."""
    return private_path.with_name(private_path.name + ".pub")


def write_key_pair(key: PrivateKey, private_path: Path, passphrase: bytes | None = None) -> Path:
    """Write PRIVATE (mode 0600, created exclusively) and PRIVATE.pub; return the public path."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    public_path = public_key_path(private_path)
    try:
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise SignatureError(
            f"{private_path} already exists", hint="choose another path; keys are never overwritten"
        ) from exc
    except OSError as exc:
        raise SignatureError(f"cannot create {private_path}: {exc.strerror}") from exc
    with os.fdopen(fd, "wb") as out:
        out.write(private_pem)
    public_path.write_bytes(public_pem(key.public_key()))
    return public_path


def public_pem(key: PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_private_key(path: Path, passphrase: bytes | None = None) -> PrivateKey:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SignatureError(f"cannot read private key {path}: {exc.strerror}") from exc
    try:
        key = serialization.load_pem_private_key(data, password=passphrase or None)
    except TypeError as exc:  # encrypted without a passphrase, or a passphrase for a plain key
        raise SignatureError(
            f"private key {path}: {exc}", hint="pass --passphrase-env NAME for encrypted keys"
        ) from exc
    except ValueError as exc:
        raise SignatureError(
            f"private key {path} cannot be loaded (wrong passphrase or not a PEM private key)"
        ) from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        raise SignatureError(
            f"private key {path} is {type(key).__name__}; use an EC or Ed25519 key"
        )
    return key


def load_public_key(path: Path) -> PublicKey:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SignatureError(f"cannot read public key {path}: {exc.strerror}") from exc
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise SignatureError(f"public key {path} is not a PEM public key") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey):
        raise SignatureError(f"public key {path} is {type(key).__name__}; use an EC or Ed25519 key")
    return key


def key_id(key: PublicKey) -> str:
    """SHA-256 of the DER SubjectPublicKeyInfo, hex: a stable name for a key."""
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def sign_bytes(key: PrivateKey, data: bytes) -> bytes:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    return key.sign(data, ec.ECDSA(_hash_for(key.curve)))


def verify_bytes(key: PublicKey, signature: bytes, data: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature

    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, data)
        else:
            key.verify(signature, data, ec.ECDSA(_hash_for(key.curve)))
    except InvalidSignature:
        return False
    return True


def _hash_for(curve: ec.EllipticCurve) -> hashes.HashAlgorithm:
    return hashes.SHA384() if curve.key_size >= 384 else hashes.SHA256()
