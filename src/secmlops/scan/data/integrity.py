"""Data set snapshots: a canonical manifest of SHA-256 digests, and verification against it.

The manifest lists every regular file under the data set root by its normalised relative POSIX
path (Unicode NFC, sorted), with its size and SHA-256; files larger than one chunk also carry
per-chunk digests rolled up into an RFC 6962 Merkle root, so a verification names the byte
ranges that changed. The manifest is serialised canonically (sorted keys, no whitespace, UTF-8;
RFC 8785 for this subset of JSON), so its SHA-256 — the data set digest — is the same on every
machine and every run. Symbolic links, special files and `..` are refused: the bytes hashed are
the bytes under the root, nothing else.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import unicodedata
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from secmlops.errors import DataError, first_problem
from secmlops.findings import Finding, Location, Rule
from secmlops.scan.data import rules

MANIFEST_TYPE = "secmlops.dataset-manifest"
MANIFEST_VERSION = 1
DEFAULT_CHUNK_SIZE = 64 * 2**20
_READ_BLOCK = 2**20
_HEX64 = re.compile(r"[0-9a-f]{64}")
# The store directory of secmlops itself is never part of a data set snapshotted in place.
_SKIP_AT_ROOT = frozenset({".secmlops"})


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One file of a data set: relative POSIX path, size, SHA-256 and, if large, its chunks."""

    path: str
    size: int
    sha256: str
    chunks: tuple[str, ...] = ()
    merkle_root: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "sha256": self.sha256, "size": self.size}
        if self.chunks:
            out["chunks"] = list(self.chunks)
            out["merkle_root"] = self.merkle_root
        return out


@dataclass(frozen=True, slots=True)
class Manifest:
    """The canonical description of a data set's bytes."""

    files: tuple[FileEntry, ...]
    chunk_size: int = DEFAULT_CHUNK_SIZE

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        return {
            "algorithm": "sha256",
            "chunk_size": self.chunk_size,
            "file_count": len(self.files),
            "files": [f.to_dict() for f in self.files],
            "total_bytes": self.total_bytes,
            "type": MANIFEST_TYPE,
            "version": MANIFEST_VERSION,
        }

    def to_bytes(self) -> bytes:
        """The canonical serialisation whose SHA-256 is the data set digest."""
        return canonical_json(self.to_dict())

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.to_bytes()).hexdigest()


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no insignificant whitespace, UTF-8 (strings and integers only here)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def merkle_root(leaves: Sequence[str]) -> str:
    """RFC 6962 Merkle tree hash over chunk digests (leaf 0x00 || d, node 0x01 || l || r)."""
    if not leaves:
        return hashlib.sha256(b"").hexdigest()

    def tree(items: Sequence[bytes]) -> bytes:
        if len(items) == 1:
            return hashlib.sha256(b"\x00" + items[0]).digest()
        split = 1 << ((len(items) - 1).bit_length() - 1)  # largest power of two below n
        return hashlib.sha256(b"\x01" + tree(items[:split]) + tree(items[split:])).digest()

    return tree([bytes.fromhex(d) for d in leaves]).hex()


def normalise_path(relative: str) -> str:
    """A manifest path: NFC, POSIX separators; refuses absolute paths, `..`, `.` and empties."""
    text = unicodedata.normalize("NFC", relative)
    parts = text.split("/")
    if (
        not text
        or text.startswith("/")
        or "\\" in text
        or "\x00" in text
        or re.match(r"^[A-Za-z]:", text)
        or any(p in ("", ".", "..") for p in parts)
    ):
        raise DataError(
            f"unsafe path {relative!r} in a data set manifest",
            hint="manifest paths are relative, use '/', and never contain '..' or '.'",
        )
    return text


@dataclass(frozen=True, slots=True)
class _Walk:
    files: dict[str, Path]  # normalised relative path -> real path
    unsafe: tuple[str, ...]  # symbolic links and special files (relative paths)


def _walk(root: Path) -> _Walk:
    if root.is_symlink():
        return _Walk({}, (root.name,))
    if root.is_file():
        return _Walk({normalise_path(root.name): root}, ())
    if not root.is_dir():
        raise DataError(f"{root}: no such file or folder")
    files: dict[str, Path] = {}
    unsafe: list[str] = []

    def fail(exc: OSError) -> None:
        raise DataError(f"cannot read {exc.filename}: {exc.strerror}")

    for current, dirs, names in os.walk(root, onerror=fail):
        here = Path(current)
        if here == root:
            dirs[:] = [d for d in dirs if d not in _SKIP_AT_ROOT]
        for name in [*dirs, *names]:
            full = here / name
            relative = full.relative_to(root).as_posix()
            mode = full.lstat().st_mode
            if stat.S_ISLNK(mode) or not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                unsafe.append(relative)
                continue
            if stat.S_ISREG(mode):
                key = normalise_path(relative)
                if key in files:
                    raise DataError(
                        f"{root}: two files have the same normalised name {key!r}",
                        hint="rename one of them (they differ only in Unicode normalisation)",
                    )
                files[key] = full
        dirs[:] = [d for d in dirs if not (here / d).is_symlink()]
    return _Walk(files, tuple(sorted(unsafe)))


def _hash_file(path: Path, chunk_size: int) -> tuple[int, str, tuple[str, ...]]:
    whole = hashlib.sha256()
    chunks: list[str] = []
    chunk = hashlib.sha256()
    in_chunk = 0
    size = 0
    try:
        with path.open("rb") as f:
            while block := f.read(min(_READ_BLOCK, chunk_size - in_chunk)):
                whole.update(block)
                chunk.update(block)
                in_chunk += len(block)
                size += len(block)
                if in_chunk == chunk_size:
                    chunks.append(chunk.hexdigest())
                    chunk, in_chunk = hashlib.sha256(), 0
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    if in_chunk:
        chunks.append(chunk.hexdigest())
    return size, whole.hexdigest(), tuple(chunks) if size > chunk_size else ()


def _entries(files: dict[str, Path], chunk_size: int, jobs: int) -> tuple[FileEntry, ...]:
    names = sorted(files)
    # hashlib releases the GIL on large blocks, so threads hash several files at once.
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        results = list(pool.map(lambda n: _hash_file(files[n], chunk_size), names))
    return tuple(
        FileEntry(name, size, digest, chunks, merkle_root(chunks) if chunks else None)
        for name, (size, digest, chunks) in zip(names, results, strict=True)
    )


def snapshot(
    path: Path, *, chunk_size: int = DEFAULT_CHUNK_SIZE, jobs: int | None = None
) -> Manifest:
    """The manifest of the data set at `path` (a file or a folder); refuses links."""
    if chunk_size < 1024:
        raise DataError(f"chunk size must be at least 1024 bytes, not {chunk_size}")
    walk = _walk(path)
    if walk.unsafe:
        shown = ", ".join(walk.unsafe[:5])
        raise DataError(
            f"{path}: refusing symbolic links or special files: {shown}",
            hint="replace links with the files they point to; a snapshot covers real files only",
        )
    if not walk.files:
        raise DataError(f"{path}: the folder holds no files to snapshot")
    return Manifest(
        _entries(walk.files, chunk_size, jobs or min(8, os.cpu_count() or 1)), chunk_size
    )


def parse_manifest(data: bytes, expected_digest: str | None = None) -> Manifest:
    """Read a manifest and check that it is canonical and self-consistent (tamper evidence)."""
    digest = hashlib.sha256(data).hexdigest()
    if expected_digest is not None and digest != _bare(expected_digest):
        raise DataError(
            f"manifest digest mismatch: expected {_bare(expected_digest)}, got {digest}",
            hint="the manifest was changed after it was recorded; do not trust it",
        )
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"the manifest is not valid JSON: {exc}") from None
    manifest = _manifest_from(raw)
    if manifest.to_bytes() != data.rstrip(b"\n"):
        raise DataError(
            "the manifest is not in canonical form (edited, reformatted or tampered with)",
            hint="use the manifest exactly as `secmlops data snapshot` wrote it",
        )
    return manifest


def _manifest_from(raw: Any) -> Manifest:
    from pydantic import BaseModel, ConfigDict, Field, ValidationError

    class EntrySpec(BaseModel):
        model_config = ConfigDict(extra="forbid", strict=True)
        path: str
        size: int = Field(ge=0)
        sha256: str = Field(pattern=_HEX64.pattern)
        chunks: list[str] | None = None
        merkle_root: str | None = Field(default=None, pattern=_HEX64.pattern)

    class ManifestSpec(BaseModel):
        model_config = ConfigDict(extra="forbid", strict=True)
        type: str
        version: int
        algorithm: str
        chunk_size: int = Field(ge=1024)
        file_count: int
        total_bytes: int
        files: list[EntrySpec]

    try:
        spec = ManifestSpec.model_validate(raw)
    except ValidationError as exc:
        raise DataError(f"invalid manifest: {first_problem(exc)}") from None
    if (spec.type, spec.version, spec.algorithm) != (MANIFEST_TYPE, MANIFEST_VERSION, "sha256"):
        raise DataError(
            f"not a secmlops data set manifest ({spec.type} v{spec.version}, {spec.algorithm})"
        )
    entries = tuple(_entry(e.path, e.size, e.sha256, e.chunks, e.merkle_root, spec.chunk_size)
                    for e in spec.files)  # fmt: skip
    paths = [e.path for e in entries]
    if paths != sorted(set(paths)):
        raise DataError("invalid manifest: paths are not sorted and unique")
    manifest = Manifest(entries, spec.chunk_size)
    if spec.file_count != len(entries) or spec.total_bytes != manifest.total_bytes:
        raise DataError("invalid manifest: file_count or total_bytes does not match the files")
    return manifest


def _entry(
    path: str, size: int, digest: str, chunks: list[str] | None, root: str | None, chunk: int
) -> FileEntry:
    if normalise_path(path) != path:
        raise DataError(f"invalid manifest: path {path!r} is not normalised (NFC)")
    expected = -(-size // chunk) if size > chunk else 0
    found = tuple(chunks or ())
    if len(found) != expected or any(not _HEX64.fullmatch(c) for c in found):
        raise DataError(f"invalid manifest: {path}: wrong chunk digests for {size} bytes")
    if found and root != merkle_root(found):
        raise DataError(
            f"invalid manifest: {path}: the Merkle root does not match its chunk digests",
            hint="the manifest was tampered with or damaged",
        )
    if not found and root is not None:
        raise DataError(f"invalid manifest: {path}: a Merkle root without chunks")
    return FileEntry(path, size, digest, found, root)


def _bare(digest: str) -> str:
    text = digest.strip().lower().removeprefix("sha256:")
    if not _HEX64.fullmatch(text):
        raise DataError(
            f"not a SHA-256 digest: {digest!r}", hint="64 hex digits, sha256: prefix optional"
        )
    return text


def verify(path: Path, manifest: Manifest, *, jobs: int | None = None) -> list[Finding]:
    """Compare the data set at `path` with `manifest`: one finding per difference."""
    walk = _walk(path)
    findings = [
        rules.INTEGRITY_UNSAFE_PATH.finding(
            Location(path=_join(name, path)),
            f"{name} is a symbolic link or special file; it is not verified",
        )
        for name in walk.unsafe
    ]
    expected = {e.path: e for e in manifest.files}
    present = {n: p for n, p in walk.files.items() if n in expected}
    actual = {e.path: e for e in _entries(present, manifest.chunk_size, jobs or 4)}
    added = {n: p for n, p in walk.files.items() if n not in expected}
    added_entries = {e.path: e for e in _entries(added, manifest.chunk_size, jobs or 4)}
    removed = [n for n in expected if n not in walk.files]
    by_digest: dict[tuple[str, int], list[str]] = {}
    for name, entry in added_entries.items():
        by_digest.setdefault((entry.sha256, entry.size), []).append(name)
    for name in removed:
        old = expected[name]
        candidates = by_digest.get((old.sha256, old.size))
        if candidates:
            new = candidates.pop(0)
            del added_entries[new]
            findings.append(
                rules.INTEGRITY_RENAMED.finding(
                    Location(path=_join(new, path)),
                    f"{name} was renamed to {new} (identical bytes)",
                    {"old_path": name, "new_path": new, "sha256": old.sha256},
                )
            )
        else:
            findings.append(
                _one_file(rules.INTEGRITY_REMOVED, old, path, "is in the snapshot but missing")
            )
    findings += [
        _one_file(rules.INTEGRITY_ADDED, entry, path, "is not in the snapshot")
        for entry in added_entries.values()
    ]
    for name, entry in actual.items():
        old = expected[name]
        if (entry.sha256, entry.size) != (old.sha256, old.size):
            findings.append(_modified(_join(name, path), old, entry, manifest.chunk_size))
    return sorted(findings, key=lambda f: (f.location.path or "", f.rule_id))


def _one_file(rule: Rule, entry: FileEntry, root: Path, what: str) -> Finding:
    return rule.finding(
        Location(path=_join(entry.path, root)),
        f"{entry.path} {what}",
        {"sha256": entry.sha256, "size": entry.size},
    )


def _modified(where: str, old: FileEntry, new: FileEntry, chunk_size: int) -> Finding:
    evidence: dict[str, Any] = {
        "expected_sha256": old.sha256,
        "actual_sha256": new.sha256,
        "expected_size": old.size,
        "actual_size": new.size,
    }
    detail = f"{old.size} -> {new.size} bytes" if old.size != new.size else f"{new.size} bytes"
    if old.chunks or new.chunks:
        changed = _changed_chunks(old.chunks, new.chunks)
        evidence["changed_byte_ranges"] = [
            [i * chunk_size, min((i + 1) * chunk_size, max(old.size, new.size))]
            for i in changed[:20]
        ]
        detail += f", {len(changed)} changed chunk(s) of {chunk_size} bytes"
    return rules.INTEGRITY_MODIFIED.finding(
        Location(path=where),
        f"{where}: content differs from the snapshot ({detail})",
        evidence,
    )


def _changed_chunks(old: Iterable[str], new: Iterable[str]) -> list[int]:
    a, b = list(old), list(new)
    return [i for i in range(max(len(a), len(b))) if i >= len(a) or i >= len(b) or a[i] != b[i]]


def _join(name: str, root: Path) -> str:
    """The displayed path of a manifest entry (beside the file for a single-file data set)."""
    return (root / name if root.is_dir() else root.parent / name).as_posix()
