"""Content-addressed artifact store: every blob is stored under its SHA-256 and never overwritten.

The default is a folder (`.secmlops/store/`); any fsspec URL (`s3://bucket/prefix` with s3fs
installed, `memory://` in tests) works the same way. Local writes go to a temporary file that is
fsynced and renamed, so a crash leaves either the whole blob or nothing; object stores make each PUT
atomic themselves. Reads re-hash the bytes: a blob edited on disk is an error, not a silent swap.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from secmlops.errors import StoreError

CHUNK = 1 << 20
_DIGEST = re.compile(r"^[0-9a-f]{64}$")


def check_digest(digest: str) -> str:
    """Accept `sha256:<hex>` or `<hex>`; return the bare lowercase hex or raise."""
    bare = digest.removeprefix("sha256:").lower()
    if not _DIGEST.match(bare):
        raise StoreError(f"{digest!r} is not a SHA-256 digest", hint="use sha256:<64 hex digits>")
    return bare


class ArtifactStore(Protocol):
    def put_file(self, path: Path) -> str: ...
    def put_bytes(self, data: bytes) -> str: ...
    def has(self, digest: str) -> bool: ...
    def read_bytes(self, digest: str, *, max_bytes: int = ...) -> bytes: ...
    def copy_to(self, digest: str, dest: Path) -> None: ...


def _hash_stream(stream: BinaryIO, sink: BinaryIO | None = None) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    while chunk := stream.read(CHUNK):
        h.update(chunk)
        size += len(chunk)
        if sink is not None:
            sink.write(chunk)
    return h.hexdigest(), size


@dataclass(frozen=True, slots=True)
class LocalStore:
    """A folder: `<root>/sha256/<first two hex>/<digest>`."""

    root: Path

    def _path(self, digest: str) -> Path:
        bare = check_digest(digest)
        return self.root / "sha256" / bare[:2] / bare

    def put_file(self, path: Path) -> str:
        try:
            with path.open("rb") as src:
                return self._put_stream(src)
        except OSError as exc:
            raise StoreError(f"cannot store {path}: {exc.strerror or exc}") from exc

    def put_bytes(self, data: bytes) -> str:
        import io

        return self._put_stream(io.BytesIO(data))

    def _put_stream(self, src: BinaryIO) -> str:
        tmp_dir = self.root / "tmp"
        try:
            tmp_dir.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(dir=tmp_dir, prefix="put-")
        except OSError as exc:
            raise StoreError(
                f"cannot write to the store {self.root}: {exc.strerror or exc}"
            ) from exc
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as sink:
                digest, _ = _hash_stream(src, sink)
                sink.flush()
                os.fsync(sink.fileno())
            final = self._path(digest)
            if final.exists():
                tmp.unlink()
                return digest
            final.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(tmp, 0o444)
            tmp.replace(final)
            _fsync_dir(final.parent)
            return digest
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise StoreError(
                f"cannot write to the store {self.root}: {exc.strerror or exc}"
            ) from exc

    def has(self, digest: str) -> bool:
        return self._path(digest).is_file()

    def _open_verified(self, digest: str) -> Path:
        path = self._path(digest)
        if not path.is_file():
            raise StoreError(f"sha256:{check_digest(digest)} is not in the store {self.root}")
        with path.open("rb") as f:
            actual, _ = _hash_stream(f)
        if actual != check_digest(digest):
            raise StoreError(
                f"store object {path} was modified: its content hashes to sha256:{actual}",
                hint="the store is tampered or corrupt; restore it from a backup",
            )
        return path

    def read_bytes(self, digest: str, *, max_bytes: int = 64 << 20) -> bytes:
        path = self._open_verified(digest)
        if path.stat().st_size > max_bytes:
            raise StoreError(f"store object sha256:{digest} is larger than {max_bytes} bytes")
        return path.read_bytes()

    def copy_to(self, digest: str, dest: Path) -> None:
        """Write the blob to DEST atomically, verifying its digest on the way."""
        src = self._path(digest)
        if not src.is_file():
            raise StoreError(f"sha256:{check_digest(digest)} is not in the store {self.root}")
        with src.open("rb") as f:
            _write_verified(f, dest, check_digest(digest))

    def iter_digests(self) -> Iterator[str]:
        base = self.root / "sha256"
        if base.is_dir():
            for path in sorted(base.glob("*/*")):
                if _DIGEST.match(path.name):
                    yield path.name


def _write_verified(src: BinaryIO, dest: Path, digest: str) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as sink:
            actual, _ = _hash_stream(src, sink)
            sink.flush()
            os.fsync(sink.fileno())
        if actual != digest:
            raise StoreError(
                f"store object sha256:{digest} was modified (content hashes to sha256:{actual})",
                hint="nothing was written; the store is tampered or corrupt",
            )
        tmp.replace(dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True, slots=True)
class FsspecStore:
    """Any fsspec filesystem URL; object stores give atomic PUTs, so no rename is needed."""

    url: str
    fs: Any

    def _key(self, digest: str) -> str:
        bare = check_digest(digest)
        return f"{self.url.rstrip('/')}/sha256/{bare[:2]}/{bare}"

    def put_file(self, path: Path) -> str:
        try:
            with path.open("rb") as f:
                digest, _ = _hash_stream(f)
            if not self.has(digest):
                self.fs.put_file(str(path), self._key(digest))
        except OSError as exc:
            raise StoreError(f"cannot store {path}: {exc}") from exc
        return digest

    def put_bytes(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        if not self.has(digest):
            try:
                self.fs.pipe_file(self._key(digest), data)
            except OSError as exc:
                raise StoreError(f"cannot write to {self.url}: {exc}") from exc
        return digest

    def has(self, digest: str) -> bool:
        return bool(self.fs.exists(self._key(digest)))

    def read_bytes(self, digest: str, *, max_bytes: int = 64 << 20) -> bytes:
        key = self._key(digest)
        try:
            if self.fs.size(key) > max_bytes:
                raise StoreError(f"store object sha256:{digest} is larger than {max_bytes} bytes")
            data: bytes = self.fs.cat_file(key)
        except FileNotFoundError as exc:
            raise StoreError(
                f"sha256:{check_digest(digest)} is not in the store {self.url}"
            ) from exc
        if hashlib.sha256(data).hexdigest() != check_digest(digest):
            raise StoreError(f"store object {key} was modified")
        return data

    def copy_to(self, digest: str, dest: Path) -> None:
        try:
            with self.fs.open(self._key(digest), "rb") as f:
                _write_verified(f, dest, check_digest(digest))
        except FileNotFoundError as exc:
            raise StoreError(
                f"sha256:{check_digest(digest)} is not in the store {self.url}"
            ) from exc


def open_store(location: str | Path) -> ArtifactStore:
    """A folder path, or an fsspec URL such as s3://bucket/prefix (needs the protocol's package)."""
    text = str(location)
    if "://" not in text or text.startswith("file://"):
        return LocalStore(Path(text.removeprefix("file://")))
    import fsspec

    protocol = text.split("://", 1)[0]
    try:
        fs = fsspec.filesystem(protocol)
    except (ImportError, ValueError) as exc:
        raise StoreError(
            f"no filesystem for {protocol}:// ({exc})",
            hint="install the fsspec backend, e.g. pip install s3fs for s3://",
        ) from exc
    return FsspecStore(text, fs)
