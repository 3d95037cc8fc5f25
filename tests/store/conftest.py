"""A real detached-signature verifier for registry tests (the CLI wires the OpenSSF format)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
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


def _postgres_bin() -> Path | None:
    import glob
    import shutil

    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(versions[-1]).parent if versions else None


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL server on loopback (Debian's package; `.ci/run` installs it)."""
    import os
    import shutil
    import socket
    import subprocess
    import tempfile

    bindir = _postgres_bin()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    pytest.importorskip("psycopg", reason="the postgres extra (psycopg) is not installed")
    # Directly under /tmp, not in pytest's root-only folder: the server may run as another user.
    data = Path(tempfile.mkdtemp(prefix="secmlops-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root: run the server as `postgres`
        import pwd

        user = pwd.getpwnam("postgres")
        os.chown(data, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run = {"check": True, "capture_output": True, "timeout": 120}
    subprocess.run([*prefix, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U",
                    "secmlops", "--no-sync"], **run)  # type: ignore[call-overload]  # fmt: skip
    options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-w",
                    "-l", str(data / "log"), "start"], **run)  # type: ignore[call-overload]  # fmt: skip
    try:
        yield f"postgresql+psycopg://secmlops@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate",
                        "stop"], capture_output=True, timeout=60)  # fmt: skip
        shutil.rmtree(data, ignore_errors=True)
