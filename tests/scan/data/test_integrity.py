"""Snapshots and verification: every change named, links and `..` refused, manifests canonical."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from secmlops.errors import DataError, StoreError
from secmlops.scan.data.integrity import (
    Manifest,
    merkle_root,
    normalise_path,
    parse_manifest,
    snapshot,
    verify,
)
from secmlops.store.artifacts import LocalStore

CHUNK = 1024


def _dataset(root: Path) -> Path:
    (root / "train").mkdir(parents=True)
    (root / "train" / "a.csv").write_text("x,y\n1,2\n")
    (root / "train" / "b.csv").write_text("x,y\n3,4\n")
    (root / "labels.json").write_text('{"0": "cat"}')
    (root / "big.bin").write_bytes(os.urandom(CHUNK * 3 + 100))
    return root


def _rules(findings: list) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    return sorted((f.rule_id, Path(f.location.path).name) for f in findings)


def test_manifest_lists_sorted_posix_paths_with_sha256(tmp_path: Path) -> None:
    root = _dataset(tmp_path / "ds")
    manifest = snapshot(root, chunk_size=CHUNK)
    assert [f.path for f in manifest.files] == ["big.bin", "labels.json", "train/a.csv",
                                                "train/b.csv"]  # fmt: skip
    a = manifest.files[2]
    assert a.sha256 == hashlib.sha256(b"x,y\n1,2\n").hexdigest() and a.size == 8
    assert a.chunks == () and a.merkle_root is None
    big = manifest.files[0]
    assert big.sha256 == hashlib.sha256((root / "big.bin").read_bytes()).hexdigest()
    assert len(big.chunks) == 4 and big.merkle_root == merkle_root(big.chunks)


def test_manifest_is_deterministic_and_canonical(tmp_path: Path) -> None:
    root = _dataset(tmp_path / "ds")
    first = snapshot(root, chunk_size=CHUNK).to_bytes()
    second = snapshot(root, chunk_size=CHUNK, jobs=1).to_bytes()
    assert first == second
    data = json.loads(first)
    assert first == json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    # the same content in another folder, written in another order, gives the same digest
    other = tmp_path / "copy"
    (other / "train").mkdir(parents=True)
    for rel in ("train/b.csv", "labels.json", "big.bin", "train/a.csv"):
        (other / rel).write_bytes((root / rel).read_bytes())
    assert snapshot(other, chunk_size=CHUNK).to_bytes() == first


def test_merkle_root_rfc6962_shape() -> None:
    d = [hashlib.sha256(bytes([i])).hexdigest() for i in range(3)]
    leaf = [hashlib.sha256(b"\x00" + bytes.fromhex(x)).digest() for x in d]
    left = hashlib.sha256(b"\x01" + leaf[0] + leaf[1]).digest()
    assert merkle_root(d) == hashlib.sha256(b"\x01" + left + leaf[2]).hexdigest()
    assert merkle_root(d[:1]) == leaf[0].hex()


def test_clean_dataset_verifies(tmp_path: Path) -> None:
    root = _dataset(tmp_path / "ds")
    assert verify(root, snapshot(root, chunk_size=CHUNK)) == []


def test_every_single_byte_change_is_detected_and_named(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    root.mkdir()
    original = b"id,label\n1,cat\n2,dog\n"
    (root / "data.csv").write_bytes(original)
    (root / "other.csv").write_bytes(b"a\n1\n")
    manifest = snapshot(root)
    for i in range(len(original)):
        changed = bytearray(original)
        changed[i] ^= 0x01
        (root / "data.csv").write_bytes(bytes(changed))
        findings = verify(root, manifest)
        assert _rules(findings) == [("DATA-INTEGRITY-MODIFIED", "data.csv")], i
    (root / "data.csv").write_bytes(original + b"3,eel\n")  # appended bytes
    assert _rules(verify(root, manifest)) == [("DATA-INTEGRITY-MODIFIED", "data.csv")]


def test_changed_chunk_of_a_large_file_is_located(tmp_path: Path) -> None:
    root = _dataset(tmp_path / "ds")
    manifest = snapshot(root, chunk_size=CHUNK)
    data = bytearray((root / "big.bin").read_bytes())
    data[CHUNK * 2 + 7] ^= 0xFF
    (root / "big.bin").write_bytes(bytes(data))
    (finding,) = verify(root, manifest)
    assert finding.rule_id == "DATA-INTEGRITY-MODIFIED"
    assert finding.evidence["changed_byte_ranges"] == [[CHUNK * 2, CHUNK * 3]]


def test_added_removed_and_renamed_files(tmp_path: Path) -> None:
    root = _dataset(tmp_path / "ds")
    manifest = snapshot(root, chunk_size=CHUNK)
    (root / "train" / "c.csv").write_text("injected\n")
    (root / "labels.json").unlink()
    (root / "train" / "b.csv").rename(root / "train" / "b_renamed.csv")
    findings = verify(root, manifest)
    assert _rules(findings) == [
        ("DATA-INTEGRITY-ADDED", "c.csv"),
        ("DATA-INTEGRITY-REMOVED", "labels.json"),
        ("DATA-INTEGRITY-RENAMED", "b_renamed.csv"),
    ]
    renamed = next(f for f in findings if f.rule_id == "DATA-INTEGRITY-RENAMED")
    assert renamed.evidence["old_path"] == "train/b.csv"


def test_single_file_dataset(tmp_path: Path) -> None:
    path = tmp_path / "one.parquet"
    path.write_bytes(b"PAR1....PAR1")
    manifest = snapshot(path)
    assert [f.path for f in manifest.files] == ["one.parquet"]
    assert verify(path, manifest) == []
    path.write_bytes(b"PAR1...!PAR1")
    assert _rules(verify(path, manifest)) == [("DATA-INTEGRITY-MODIFIED", "one.parquet")]


def test_symlinks_are_refused(tmp_path: Path) -> None:
    root = _dataset(tmp_path / "ds")
    outside = tmp_path / "secret.txt"
    outside.write_text("not part of the data set")
    (root / "link.csv").symlink_to(outside)
    with pytest.raises(DataError, match="symbolic links"):
        snapshot(root)
    (root / "link.csv").unlink()
    (root / "dirlink").symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(DataError, match="dirlink"):
        snapshot(root)
    (root / "dirlink").unlink()
    manifest = snapshot(root)
    (root / "link.csv").symlink_to(outside)
    assert _rules(verify(root, manifest)) == [("DATA-INTEGRITY-UNSAFE-PATH", "link.csv")]
    with pytest.raises(DataError, match="symbolic links"):
        snapshot(root / "link.csv")


@pytest.mark.parametrize(
    "bad", ["../etc/passwd", "a/../../b", "/abs", "a//b", "./a", "a\\b", "C:x", "", "a/."]
)
def test_dot_dot_and_unsafe_paths_are_refused(bad: str) -> None:
    with pytest.raises(DataError, match="unsafe path"):
        normalise_path(bad)


def test_manifest_with_dot_dot_path_is_refused(tmp_path: Path) -> None:
    root = _dataset(tmp_path / "ds")
    data = json.loads(snapshot(root, chunk_size=CHUNK).to_bytes())
    data["files"][1]["path"] = "../labels.json"
    data["files"].sort(key=lambda f: f["path"])
    forged = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    with pytest.raises(DataError, match="unsafe path"):
        parse_manifest(forged)


def test_tampered_manifests_are_clear_errors(tmp_path: Path) -> None:
    root = _dataset(tmp_path / "ds")
    manifest = snapshot(root, chunk_size=CHUNK)
    good = manifest.to_bytes()
    assert parse_manifest(good, manifest.digest) == manifest
    assert parse_manifest(good + b"\n") == manifest

    flipped = good.replace(manifest.files[2].sha256.encode(), b"0" * 64)
    with pytest.raises(DataError, match="digest mismatch"):
        parse_manifest(flipped, manifest.digest)

    pretty = json.dumps(json.loads(good), indent=2).encode()
    with pytest.raises(DataError, match="canonical"):
        parse_manifest(pretty)

    data = json.loads(good)
    data["files"][0]["chunks"][1] = "f" * 64  # a forged chunk without a new Merkle root
    with pytest.raises(DataError, match="Merkle root"):
        parse_manifest(json.dumps(data, sort_keys=True, separators=(",", ":")).encode())

    data = json.loads(good)
    data["files"][2]["size"] = 9
    with pytest.raises(DataError, match="total_bytes"):
        parse_manifest(json.dumps(data, sort_keys=True, separators=(",", ":")).encode())

    for garbage in (b"", b"\xff\xfe", b"[]", b'{"type": "x"}', good[: len(good) // 2]):
        with pytest.raises(DataError):
            parse_manifest(garbage)


def test_manifest_round_trips_through_the_store(tmp_path: Path) -> None:
    # The CLI stores manifests in the content-addressed store (store.artifacts), which re-checks
    # every object's digest on read.
    root = _dataset(tmp_path / "ds")
    manifest = snapshot(root, chunk_size=CHUNK)
    store = LocalStore(tmp_path / "store")
    assert store.put_bytes(manifest.to_bytes()) == manifest.digest
    assert parse_manifest(store.read_bytes(manifest.digest), manifest.digest) == manifest
    path = tmp_path / "store" / "sha256" / manifest.digest[:2] / manifest.digest
    path.chmod(0o644)
    path.write_bytes(path.read_bytes().replace(b"train", b"TRAIN"))
    with pytest.raises(StoreError, match="modified"):
        store.read_bytes(manifest.digest)


def test_empty_folder_and_missing_path(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no files"):
        snapshot(tmp_path / "empty")
    with pytest.raises(DataError, match="no such"):
        snapshot(tmp_path / "missing")


def test_store_folder_inside_the_dataset_is_not_hashed(tmp_path: Path) -> None:
    root = _dataset(tmp_path / "ds")
    manifest = snapshot(root, chunk_size=CHUNK)
    LocalStore(root / ".secmlops" / "store").put_bytes(manifest.to_bytes())
    assert snapshot(root, chunk_size=CHUNK) == manifest
    assert isinstance(manifest, Manifest)
