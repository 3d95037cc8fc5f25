from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from secmlops.errors import StoreError
from secmlops.store.artifacts import LocalStore, check_digest, open_store


def test_put_is_content_addressed_and_idempotent(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "s")
    d1 = store.put_bytes(b"hello")
    assert d1 == hashlib.sha256(b"hello").hexdigest()
    assert store.put_bytes(b"hello") == d1
    assert store.read_bytes(d1) == b"hello"
    assert store.has(f"sha256:{d1}")
    assert list(store.iter_digests()) == [d1]
    assert not list((tmp_path / "s" / "tmp").iterdir())


def test_tampered_object_is_refused_and_nothing_written(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "s")
    digest = store.put_bytes(b"model bytes")
    obj = tmp_path / "s" / "sha256" / digest[:2] / digest
    obj.chmod(0o644)
    obj.write_bytes(b"evil bytes!")
    with pytest.raises(StoreError, match="modified"):
        store.read_bytes(digest)
    dest = tmp_path / "out" / "m.bin"
    with pytest.raises(StoreError, match="modified"):
        store.copy_to(digest, dest)
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []


def test_bad_digests_and_missing_objects(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "s")
    for bad in ("", "abc", "sha256:" + "g" * 64, "../" + "a" * 61):
        with pytest.raises(StoreError, match="not a SHA-256"):
            check_digest(bad)
    with pytest.raises(StoreError, match="not in the store"):
        store.read_bytes("a" * 64)
    with pytest.raises(StoreError, match="cannot store"):
        store.put_file(tmp_path / "missing")


def test_fsspec_backend_round_trip(tmp_path: Path) -> None:
    store = open_store("memory://secmlops-test")
    digest = store.put_bytes(b"abc")
    src = tmp_path / "f"
    src.write_bytes(b"abc")
    assert store.put_file(src) == digest
    assert store.read_bytes(digest) == b"abc"
    store.copy_to(digest, tmp_path / "copy")
    assert (tmp_path / "copy").read_bytes() == b"abc"


def test_unknown_protocol_is_clear(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no filesystem"):
        open_store("nosuchproto://bucket")
