"""The model-scan engine: byte sources, format scanners, recursion into containers, limits.

A `Blob` is anything whose bytes could be loaded by a framework: a file on disk or a member of an
archive. Every registered `FormatScanner` whose `sniff` accepts the blob's bytes scans it; several
may (a pickle with a zip appended is both). Formats are decided from bytes, never from names.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import stat
import struct
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from secmlops.errors import ScanError
from secmlops.findings import Finding, Location, Report, ScanFailure
from secmlops.scan.models import rules
from secmlops.scan.models.allowlist import Allowlist, load_allowlist

HEAD_SIZE = 64 * 1024
TAIL_SIZE = (
    66 * 1024
)  # a zip end-of-central-directory record may sit 64 KiB + 22 bytes from the end
SPOOL_IN_MEMORY = 16 * 2**20
CHILD_IN_MEMORY = 1 * 2**20  # extracted members up to this size are kept as bytes

# Extensions that frameworks load: a file so named that no scanner recognises is suspicious.
MODEL_SUFFIXES = frozenset(
    {
        ".pkl", ".pickle", ".pck", ".pcl", ".pt", ".pth", ".bin", ".ckpt", ".joblib", ".jbl",
        ".npy", ".npz", ".h5", ".hdf5", ".keras", ".pb", ".onnx", ".gguf", ".ggml",
        ".safetensors", ".model", ".mar", ".dill", ".sav", ".tar", ".zip", ".7z", ".gz",
        ".bz2", ".xz", ".tgz", ".torchscript", ".ptl", ".msgpack", ".tflite",
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds that keep hostile containers from exhausting time, memory or disk."""

    max_depth: int = 6
    max_ratio: float = 250.0  # expanded / compressed, per member and overall
    max_expanded_bytes: int = 64 * 2**30  # everything extracted from one top-level file
    max_members: int = 100_000
    max_pickle_ops: int = 50_000_000


@dataclass(frozen=True, slots=True)
class ModelScanSettings:
    """What a model scan may treat as safe and how far it may go."""

    allowlist: Allowlist = field(default_factory=load_allowlist)
    limits: Limits = field(default_factory=Limits)
    follow_symlinks: bool = False


@dataclass(slots=True)
class Blob:
    """Bytes under scan: a file on disk or an extracted archive member."""

    location: Location
    size: int
    depth: int
    name: str
    _open: Callable[[], IO[bytes]]
    _head: bytes | None = None
    _tail: bytes | None = None
    allowlist: Allowlist | None = None  # a loader-specific verdict (TorchScript archive members)
    memo: dict[str, Any] = field(default_factory=dict)  # work a sniffer did that scan can reuse

    def open(self) -> IO[bytes]:
        """A fresh seekable binary stream over the whole blob."""
        return self._open()

    @property
    def head(self) -> bytes:
        if self._head is None:
            with self.open() as f:
                self._head = f.read(HEAD_SIZE)
        return self._head

    @property
    def tail(self) -> bytes:
        if self._tail is None:
            if self.size <= HEAD_SIZE:
                self._tail = self.head
            else:
                with self.open() as f:
                    f.seek(max(0, self.size - TAIL_SIZE))
                    self._tail = f.read()
        return self._tail

    @classmethod
    def from_path(cls, path: Path | str, display: str, size: int | None = None) -> Blob:
        """A top-level file; `size` is its stat size when the caller already has it."""
        name = os.path.basename(path)
        if size is None:
            size = os.stat(path).st_size
        if size <= HEAD_SIZE:
            # Small files (most of a model folder's pickles) are read once and kept.
            with open(path, "rb", buffering=0) as f:
                data = f.readall()
            return cls(Location(path=display), len(data), 0, name, lambda: io.BytesIO(data))
        return cls(Location(path=display), size, 0, name, lambda: open(path, "rb"))

    @classmethod
    def from_bytes(cls, data: bytes, location: Location, depth: int, name: str) -> Blob:
        return cls(location, len(data), depth, name, lambda: io.BytesIO(data))


class SliceFile(io.RawIOBase):
    """A read-only, seekable window onto part of another file (stored members need no copy)."""

    def __init__(self, opener: Callable[[], IO[bytes]], start: int, length: int) -> None:
        self._f = opener()
        self._start = start
        self._length = length
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._length}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        want = min(len(buffer), self._length - self._pos)
        if want <= 0:
            return 0
        self._f.seek(self._start + self._pos)
        data = self._f.read(want)
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def close(self) -> None:
        self._f.close()
        super().close()


def slice_blob(parent: Blob, member: str, start: int, length: int) -> Blob:
    location = parent.location.child(member)
    name = member.rsplit("/", 1)[-1] or member

    def opener() -> IO[bytes]:
        return io.BufferedReader(SliceFile(parent.open, start, length), 1 << 20)

    return Blob(location, length, parent.depth + 1, name, opener)


class NotThisFormat(Exception):
    """Raised by a scanner whose sniff matched bytes that turn out not to be its format at all
    (no reader of that format would load them): the blob counts as unrecognised."""


class FormatScanner(Protocol):
    """One model format. Register implementations in `secmlops.scan.models.formats`."""

    name: str

    def sniff(self, blob: Blob) -> bool:
        """Whether a framework could load these bytes as this format (look at head/tail only)."""

    def scan(self, blob: Blob, ctx: ScanContext) -> None:
        """Report findings through `ctx`; raise `ScanError` when the blob cannot be checked."""


class ExpansionBudget:
    """Bytes that may still be extracted from one top-level file (zip-bomb guard)."""

    def __init__(self, limit: int) -> None:
        self.remaining = limit

    def take(self, n: int) -> bool:
        self.remaining -= n
        return self.remaining >= 0


class ScanContext:
    """Passed to every scanner: where findings go, how to recurse, and the settings."""

    def __init__(
        self,
        report: Report,
        settings: ModelScanSettings,
        scanners: Sequence[FormatScanner],
        workdir: Path | None = None,
    ) -> None:
        self.report = report
        self.settings = settings
        self.scanners = scanners
        self._workdir = workdir  # None: a private folder, made when first needed
        self._own_workdir = False
        self.budget = ExpansionBudget(settings.limits.max_expanded_bytes)
        self.seen: set[bytes] = set()  # digests of the nested content already scanned

    def next_file(self) -> None:
        """Fresh limits for the next top-level file."""
        self.budget = ExpansionBudget(self.settings.limits.max_expanded_bytes)
        self.seen.clear()

    @property
    def workdir(self) -> Path:
        """Where extracted members too large for memory are written (removed by `close`)."""
        if self._workdir is None:
            # Made on demand: most scans never need one, and a folder costs ~0.3 ms a batch.
            self._workdir = Path(tempfile.mkdtemp(prefix="secmlops-scan-"))
            self._own_workdir = True
        return self._workdir

    def close(self) -> None:
        """Remove the private work folder, if one was made."""
        if self._own_workdir and self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
        self._workdir, self._own_workdir = None, False

    @property
    def allowlist(self) -> Allowlist:
        return self.settings.allowlist

    @property
    def limits(self) -> Limits:
        return self.settings.limits

    def emit(self, finding: Finding) -> None:
        self.report.add(finding)

    def fail(self, location: Location, message: str) -> None:
        """The blob could not be fully checked: an error finding and a failure (exit 2)."""
        self.report.add(rules.SCAN_INCOMPLETE.finding(location, message))
        self.incomplete(location, message)

    def incomplete(self, location: Location, message: str) -> None:
        """Record that content was not checked (exit 2) where a finding already says why."""
        self.report.errors.append(ScanFailure(location, message))

    def spool(self) -> IO[bytes]:
        """A temporary byte buffer that moves to disk past a few MiB (for extracted members).

        On disk it is an unnamed file (gone when closed), so it needs no work folder of ours.
        """
        return tempfile.SpooledTemporaryFile(
            max_size=SPOOL_IN_MEMORY,
            mode="w+b",
            dir=None if self._workdir is None else str(self._workdir),
        )

    def child_blob(self, parent: Blob, member: str, data: IO[bytes] | bytes) -> Blob:
        """A blob for an extracted member. `data` is consumed (bytes or a rewound spool)."""
        location = parent.location.child(member)
        name = member.rsplit("/", 1)[-1] or member
        if isinstance(data, bytes):
            return Blob.from_bytes(data, location, parent.depth + 1, name)
        data.seek(0, os.SEEK_END)
        size = data.tell()
        if size <= CHILD_IN_MEMORY:
            # Small members (most of them) stay in memory: no temporary file to create and read.
            data.seek(0)
            content = data.read()
            data.close()
            return Blob.from_bytes(content, location, parent.depth + 1, name)
        fd, tmp = tempfile.mkstemp(dir=self.workdir)
        with os.fdopen(fd, "wb") as out:
            data.seek(0)
            shutil.copyfileobj(data, out, 1 << 20)
        data.close()
        path = Path(tmp)
        return Blob(location, size, parent.depth + 1, name, lambda: open(path, "rb"))

    def scan_child(self, blob: Blob) -> None:
        """Scan an extracted member like a file, within the depth limit."""
        if blob.depth > self.limits.max_depth:
            self.emit(
                rules.ARCHIVE_DEPTH.finding(
                    blob.location,
                    f"nested {blob.depth} containers deep (limit {self.limits.max_depth}); "
                    "the content below this level was not scanned",
                    {"depth": blob.depth, "limit": self.limits.max_depth},
                )
            )
            self.incomplete(blob.location, "nesting limit reached")
            return
        if blob.size <= CHILD_IN_MEMORY and blob.allowlist is None:
            # The same bytes nested again (a pickle that loads one payload 64 times at every
            # level, zip entries that all point at one member) get the same verdict: scanning
            # each copy would cost (copies ** depth). Its first place is where it is reported.
            if blob.size <= HEAD_SIZE:
                content = blob.head  # the whole blob, kept for the sniffers: one read
            else:
                with blob.open() as f:
                    content = f.read()
            key = hashlib.blake2b(content, digest_size=16).digest()
            key += os.path.splitext(blob.name)[1].lower().encode()  # the name can matter too
            if key in self.seen:
                return
            self.seen.add(key)
        scan_blob(blob, self)


def scan_blob(blob: Blob, ctx: ScanContext) -> None:
    """Run every scanner that recognises the blob; flag model-named files nobody recognises."""
    matched = False
    for scanner in ctx.scanners:
        try:
            if not scanner.sniff(blob):
                continue
        except OSError as exc:
            ctx.fail(blob.location, f"could not read: {exc}")
            return
        except Exception as exc:  # a sniffer tripped on hostile bytes: not checked, never clean
            ctx.fail(blob.location, f"{scanner.name}: {_failure(exc)}")
            return
        was, matched = matched, True
        try:
            scanner.scan(blob, ctx)
        except NotThisFormat:
            matched = was  # the sniff was only a hint: the bytes are not this format after all
        except ScanError as exc:
            ctx.fail(blob.location, f"{scanner.name}: {exc.message}")
        except (OSError, EOFError) as exc:
            ctx.fail(blob.location, f"{scanner.name}: could not read: {exc}")
        except Exception as exc:  # never a crash, never "clean": the file is reported unchecked
            ctx.fail(blob.location, f"{scanner.name}: {_failure(exc)}")
    if matched:
        ctx.report.bytes_scanned += blob.size if blob.depth == 0 else 0
        return
    suffix = os.path.splitext(blob.name)[1].lower()
    if suffix in MODEL_SUFFIXES and blob.size > 0:
        ctx.emit(
            rules.FORMAT_UNKNOWN.finding(
                blob.location,
                f"named like a model file ({suffix}) but its bytes match no known model format",
                {"suffix": suffix, "size": blob.size, "head": blob.head[:16].hex()},
            )
        )
    elif blob.depth == 0:
        ctx.report.files_skipped += 1


# What the parsers (ours and the standard library's zip, zlib, struct and archive readers) raise
# on hostile bytes: zipfile raises NotImplementedError for an unknown version or compression
# method and OverflowError for an offset past 2**63, zlib.error for a corrupt deflate stream.
_MALFORMED = (ValueError, IndexError, KeyError, RecursionError, MemoryError, NotImplementedError,
              OverflowError, zlib.error, struct.error, UnicodeError)  # fmt: skip


def _failure(exc: Exception) -> str:
    """Why a file could not be checked, for the report's errors (exit 2)."""
    kind = type(exc)
    name = kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__name__}"
    what = f"{name}: {str(exc)[:200]}"
    if isinstance(exc, _MALFORMED):
        return f"malformed content ({what})"
    # Anything else is a fault of ours that hostile bytes reached: still fail closed, but say so.
    return f"unexpected error while scanning ({what}); the file was not checked"


def iter_files(paths: Sequence[Path], follow_symlinks: bool) -> Iterator[str]:
    """Every file under `paths` (recursively), as the path shown in the report."""
    for root in paths:
        if root.is_symlink() and not follow_symlinks:
            yield str(root)
            continue
        if root.is_dir():
            for dirpath, dirnames, filenames in os.walk(root, followlinks=follow_symlinks):
                dirnames.sort()
                for fname in sorted(filenames):
                    yield os.path.join(dirpath, fname)
        else:
            yield str(root)


def scan_paths(
    paths: Sequence[Path | str],
    settings: ModelScanSettings | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    *,
    jobs: int = 1,
) -> Report:
    """Scan model files and folders (recursively) and return the report.

    `progress(path, done, total)` is called after each top-level file (or batch, with jobs > 1).
    `jobs` > 1 scans files in that many forked worker processes (results come back as JSON).
    """
    settings = settings or ModelScanSettings()
    report = Report(kind="models", rules=dict(rules.ALL))
    started = time.perf_counter()
    targets = [Path(p) for p in paths]
    for target in targets:
        if not target.exists() and not target.is_symlink():
            raise ScanError(f"no such file or folder: {target}")
    files = list(iter_files(targets, settings.follow_symlinks))
    if jobs > 1 and len(files) >= 4 * jobs and _can_fork():
        _scan_parallel(files, settings, report, progress, jobs)
    else:
        _scan_files(files, settings, report, progress)
    report.errors.sort(key=lambda e: (e.location.path or "", e.location.member or ""))
    report.seconds = time.perf_counter() - started
    return report


def _scan_files(
    files: Sequence[str],
    settings: ModelScanSettings,
    report: Report,
    progress: Callable[[str, int, int], None] | None,
    total: int | None = None,
) -> None:
    from secmlops.scan.models.formats import SCANNERS

    ctx = ScanContext(report, settings, SCANNERS)
    try:
        for done, path in enumerate(files, start=1):
            ctx.next_file()
            st = _stat(path, settings.follow_symlinks)
            if st is None:
                report.files_skipped += 1  # vanished, or a dangling link being followed
            elif stat.S_ISLNK(st.st_mode):
                target = os.readlink(path)
                report.add(
                    rules.SYMLINK.finding(
                        Location(path=path),
                        f"symbolic link to {target!r} was not followed",
                        {"target": target},
                    )
                )
            elif not stat.S_ISREG(st.st_mode):
                report.files_skipped += 1
            else:
                try:
                    blob = Blob.from_path(path, path, st.st_size)
                    report.files_scanned += 1
                    scan_blob(blob, ctx)
                except OSError as exc:
                    ctx.fail(Location(path=path), f"could not read: {exc.strerror or exc}")
            if progress is not None:
                progress(path, done, total or len(files))
    finally:
        ctx.close()


def _stat(path: str, follow_symlinks: bool) -> os.stat_result | None:
    """One stat per file: the link itself unless links are followed (None: nothing there)."""
    try:
        st = os.lstat(path)
        if follow_symlinks and stat.S_ISLNK(st.st_mode):
            st = os.stat(path)
    except OSError:
        return None
    return st


def _can_fork() -> bool:
    import multiprocessing

    return "fork" in multiprocessing.get_all_start_methods()


def _scan_parallel(
    files: Sequence[str],
    settings: ModelScanSettings,
    report: Report,
    progress: Callable[[str, int, int], None] | None,
    jobs: int,
) -> None:
    import secmlops.scan.models.formats  # noqa: F401 - imported once, before the workers fork
    from secmlops.scan.workers import Batch, run_forked

    def scan_batch(batch: Batch) -> Report:
        part = Report(kind="models")
        _scan_files([path for path, _ in batch], settings, part, None)
        return part

    # Small batches: the last ones, which may keep one worker busy while the others idle, are
    # short; a batch costs well under a millisecond of hand-off.
    size = max(1, min(16, len(files) // (jobs * 4)))
    batches = [[(p, p) for p in files[i : i + size]] for i in range(0, len(files), size)]
    run_forked(batches, scan_batch, report, progress, jobs)
