"""A real detached-signature verifier for registry tests (the CLI wires the OpenSSF format)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from secmlops.evidence.keys import generate_private_key, sign_bytes, verify_bytes
from secmlops.policy import evaluate_gate
from secmlops.store.artifacts import LocalStore
from secmlops.store.db import open_database
from secmlops.store.registry import Registry, Roles, SignatureFacts, model_files


def digest_list(path: Path) -> bytes:
    files = model_files(path)
    return json.dumps(
        [
            (rel, hashlib.sha256(f.read_bytes()).hexdigest())
            for rel, f in files
            if not rel.endswith(".sig")
        ]
    ).encode()


class KeySigner:
    """Signs the sorted (path, sha256) list of a model with an EC key; verifies the same way."""

    def __init__(self) -> None:
        self.key = generate_private_key()

    def sign(self, path: Path) -> Path:
        sig = (path / "model.sig") if path.is_dir() else path.with_name(path.name + ".sig")
        sig.write_bytes(sign_bytes(self.key, digest_list(path)))
        return sig

    def verify(self, path: Path, signature: Path) -> SignatureFacts:
        ok = verify_bytes(self.key.public_key(), signature.read_bytes(), digest_list(path))
        return SignatureFacts(
            True, ok, "test-key", "" if ok else "signature does not match the files"
        )


GOOD_FACTS = {"metrics": {"accuracy": 0.95}, "model_card": {"completeness": 1.0, "missing": []}}


@pytest.fixture
def signer() -> KeySigner:
    return KeySigner()


def make_registry(root: Path, signer: KeySigner, roles: Roles | None = None) -> Registry:
    engine = open_database(f"sqlite:///{root / 'meta.db'}")
    return Registry(
        LocalStore(root / "store"), engine, verifier=signer.verify, gate=evaluate_gate, roles=roles
    )


def make_model(folder: Path, payload: bytes = b"weights") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text('{"layers": 2}')
    (folder / "weights.bin").write_bytes(payload)
    return folder
