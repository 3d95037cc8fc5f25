"""The artifact store on an S3 API server (moto's server on loopback, spoken to by s3fs over HTTP,
exactly as a MinIO/Ceph/AWS endpoint would be): round trips, tamper detection, and a registry whose
artifacts live in the bucket."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from secmlops.errors import StoreError
from secmlops.policy import evaluate_gate
from secmlops.store.artifacts import FsspecStore, open_store
from secmlops.store.db import open_database
from secmlops.store.registry import Registry
from tests.store.conftest import GOOD_FACTS, KeySigner, make_model


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    moto_server = pytest.importorskip("moto.server", reason="moto (test extra) is not installed")
    pytest.importorskip("s3fs", reason="s3fs (test extra) is not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    import s3fs

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": s3_endpoint}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    s3fs.S3FileSystem.clear_instance_cache()
    # A fresh bucket per test: id() of a fixture object can repeat once the last one is freed.
    name = f"secmlops-{uuid.uuid4().hex}"
    s3fs.S3FileSystem().mkdir(name)
    return f"s3://{name}/artifacts"


def test_round_trip_and_idempotence(bucket: str, tmp_path: Path) -> None:
    store = open_store(bucket)
    assert isinstance(store, FsspecStore)
    digest = store.put_bytes(b"weights")
    src = tmp_path / "f"
    src.write_bytes(b"weights")
    assert store.put_file(src) == digest
    assert store.has(digest) and store.read_bytes(digest) == b"weights"
    store.copy_to(digest, tmp_path / "copy")
    assert (tmp_path / "copy").read_bytes() == b"weights"
    with pytest.raises(StoreError, match="not in the store"):
        store.read_bytes("b" * 64)


def test_object_edited_in_the_bucket_is_refused(bucket: str, tmp_path: Path) -> None:
    store = open_store(bucket)
    assert isinstance(store, FsspecStore)
    digest = store.put_bytes(b"original")
    store.fs.pipe_file(store._key(digest), b"tampered")  # someone with bucket access edits it
    with pytest.raises(StoreError, match="modified"):
        store.read_bytes(digest)
    with pytest.raises(StoreError):
        store.copy_to(digest, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_registry_with_artifacts_in_s3(bucket: str, tmp_path: Path) -> None:
    signer = KeySigner()
    engine = open_database(f"sqlite:///{tmp_path / 'meta.db'}")
    reg = Registry(open_store(bucket), engine, verifier=signer.verify, gate=evaluate_gate)
    model = make_model(tmp_path / "m", b"v1")
    info = reg.push(model, "fraud", signer.sign(model), "alice", facts=GOOD_FACTS)
    reg.promote("fraud", str(info.version), "production", "bob", approver="carol")
    reg.pull("fraud", "production", tmp_path / "pulled", "dave")
    assert (tmp_path / "pulled" / "weights.bin").read_bytes() == b"v1"
