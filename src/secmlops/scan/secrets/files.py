"""Scanning files and folders: walking, reading as bytes, binary sniffing, notebooks, workers."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from secmlops.errors import ScanError
from secmlops.findings import Finding, Location, Report, ScanFailure
from secmlops.scan.secrets import rules
from secmlops.scan.secrets.detectors import scan_text

# Folders of tools and dependencies, not of the project: skipped unless named explicitly.
SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "node_modules",
        ".venv",
        "venv",
        "__pycache__",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".tox",
        ".nox",
        ".secmlops",
    }
)
_SNIFF = 8192
# notebook outputs that are pictures or other binary payloads in base64
_BINARY_MIME = ("image/", "audio/", "video/", "application/pdf")


@dataclass(frozen=True, slots=True)
class SecretScanSettings:
    """What to scan and how far."""

    max_file_bytes: int = 50 * 2**20
    exclude: tuple[str, ...] = ()  # glob patterns matched against the displayed path
    follow_symlinks: bool = False


def iter_files(paths: Sequence[Path], settings: SecretScanSettings) -> Iterator[tuple[Path, str]]:
    """Every regular file under `paths` (recursively), with the path to display."""
    for root in paths:
        if root.is_dir():
            for dirpath, dirnames, filenames in os.walk(root, followlinks=settings.follow_symlinks):
                dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
                for name in sorted(filenames):
                    full = Path(dirpath) / name
                    if not _excluded(str(full), settings):
                        yield full, str(full)
        elif not _excluded(str(root), settings):
            yield root, str(root)


def _excluded(display: str, settings: SecretScanSettings) -> bool:
    from fnmatch import fnmatch

    return any(fnmatch(display, pattern) for pattern in settings.exclude)


def decode(data: bytes) -> str:
    """Bytes as text: UTF-8, with undecodable bytes replaced (secrets are ASCII)."""
    return data.decode("utf-8", "replace")


def _notebook_texts(data: bytes) -> Iterator[tuple[str, str]] | None:
    """(member, text) for each cell source and text output; None if this is not notebook JSON."""
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("cells"), list):
        return None
    return _cells(doc["cells"])


def _joined(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(p, str) for p in value):
        return "".join(value)
    return None


def _cells(cells: list[Any]) -> Iterator[tuple[str, str]]:
    for i, cell in enumerate(cells):
        if not isinstance(cell, dict):
            continue
        source = _joined(cell.get("source"))
        if source:
            yield f"cells[{i}]", source
        for j, output in enumerate(cell.get("outputs") or []):
            if not isinstance(output, dict):
                continue
            parts = [_joined(output.get("text")), _joined(output.get("traceback"))]
            data = output.get("data")
            if isinstance(data, dict):
                parts += [
                    _joined(val)
                    for mime, val in data.items()
                    if not str(mime).startswith(_BINARY_MIME)
                ]
            text = "\n".join(p for p in parts if p)
            if text:
                yield f"cells[{i}]/outputs[{j}]", text


def scan_bytes(data: bytes, display: str) -> list[Finding]:
    """Secrets in one file's content: notebooks cell by cell, any other text as a whole."""
    location = Location(path=display)
    if display.endswith(".ipynb"):
        texts = _notebook_texts(data)
        if texts is not None:
            found: list[Finding] = []
            for member, text in texts:
                found.extend(scan_text(text, Location(path=display, member=member)))
            return found
    return scan_text(decode(data), location)


def scan_file(path: Path, display: str, settings: SecretScanSettings, report: Report) -> None:
    """Scan one file into `report`: binary files are skipped, huge and unreadable ones reported."""
    location = Location(path=display)
    try:
        if path.is_symlink() and not settings.follow_symlinks:
            report.files_skipped += 1
            return
        size = path.stat().st_size
        if size > settings.max_file_bytes:
            report.add(
                rules.FILE_SKIPPED.finding(
                    location,
                    f"{size} bytes is over the {settings.max_file_bytes}-byte limit: not scanned",
                    {"bytes": size, "limit": settings.max_file_bytes},
                )
            )
            report.files_skipped += 1
            return
        data = path.read_bytes()
    except OSError as exc:
        report.errors.append(ScanFailure(location, f"could not read: {exc.strerror or exc}"))
        return
    if b"\x00" in data[:_SNIFF] and not display.endswith(".ipynb"):
        report.files_skipped += 1
        return
    report.files_scanned += 1
    report.bytes_scanned += len(data)
    report.extend(scan_bytes(data, display))


def _scan_serial(
    files: Sequence[tuple[Path, str]],
    settings: SecretScanSettings,
    report: Report,
    progress: Callable[[str, int, int], None] | None,
) -> None:
    for done, (path, display) in enumerate(files, start=1):
        scan_file(path, display, settings, report)
        if progress is not None:
            progress(display, done, len(files))


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # the read will fail and be reported


def _batches(
    files: Sequence[tuple[Path, str]], sizes: Sequence[int], jobs: int
) -> list[list[tuple[str, str]]]:
    """Batches of roughly equal bytes, small enough to balance the workers."""
    target = max(256 * 1024, sum(sizes) // (jobs * 16))
    batches: list[list[tuple[str, str]]] = [[]]
    filled = 0
    for (path, display), size in zip(files, sizes, strict=True):
        if filled >= target or len(batches[-1]) >= 2000:
            batches.append([])
            filled = 0
        batches[-1].append((str(path), display))
        filled += size
    return batches


def _scan_parallel(
    files: Sequence[tuple[Path, str]],
    sizes: Sequence[int],
    settings: SecretScanSettings,
    report: Report,
    progress: Callable[[str, int, int], None] | None,
    jobs: int,
) -> None:
    from secmlops.scan.workers import Batch, run_forked

    def scan_batch(batch: Batch) -> Report:
        part = Report(kind="secrets")
        for path, display in batch:
            scan_file(Path(path), display, settings, part)
        return part

    run_forked(_batches(files, sizes, jobs), scan_batch, report, progress, jobs)


_PARALLEL_MIN_BYTES = 8 * 2**20


def scan_tree(
    paths: Sequence[Path],
    settings: SecretScanSettings,
    report: Report,
    progress: Callable[[str, int, int], None] | None = None,
    *,
    jobs: int = 1,
) -> None:
    """Scan files and folders into `report`; many megabytes go to `jobs` forked workers."""
    for target in paths:
        if not target.exists() and not target.is_symlink():
            raise ScanError(f"no such file or folder: {target}")
    started = time.perf_counter()
    files = list(iter_files(paths, settings))
    if jobs > 1 and len(files) >= 2 * jobs and "fork" in multiprocessing.get_all_start_methods():
        sizes = [_size(path) for path, _ in files]
        if sum(sizes) >= _PARALLEL_MIN_BYTES:
            _scan_parallel(files, sizes, settings, report, progress, jobs)
            report.seconds += time.perf_counter() - started
            return
    _scan_serial(files, settings, report, progress)
    report.seconds += time.perf_counter() - started
