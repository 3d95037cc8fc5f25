"""Finding configuration files under a folder and reading them as bounded, decoded text."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from secmlops.errors import ScanError
from secmlops.findings import Location, ScanFailure

# Folders that hold other people's code or generated state, never the project's configuration.
SKIP_DIRS = frozenset(
    {".git", ".hg", ".svn", "node_modules", ".venv", "venv", "__pycache__", ".terraform", ".tox",
     ".mypy_cache", ".pytest_cache", ".ruff_cache", "site-packages"}
)  # fmt: skip

# Configuration files are small; anything larger is refused rather than read into memory.
MAX_TEXT_BYTES = 20 * 2**20


def require_paths(paths: Sequence[Path]) -> None:
    """Raise a one-line error for a target that does not exist."""
    for target in paths:
        if not target.exists() and not target.is_symlink():
            raise ScanError(f"no such file or folder: {target}")


def walk_files(paths: Sequence[Path]) -> Iterator[Path]:
    """Every regular file under `paths`, recursively, in a stable order; symlinks are not followed."""
    for root in paths:
        if not root.is_dir() or root.is_symlink():
            yield root
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
            for name in sorted(filenames):
                yield Path(dirpath) / name


def read_text(path: Path, max_bytes: int = MAX_TEXT_BYTES) -> str:
    """The file as UTF-8 text; ScanError when it is unreadable, too large, binary or not UTF-8."""
    try:
        if path.is_symlink():
            raise ScanError("symbolic link not followed")
        size = path.stat().st_size
        if size > max_bytes:
            raise ScanError(f"file is {size:,} bytes, more than the {max_bytes:,} bytes allowed")
        data = path.read_bytes()
    except OSError as exc:
        raise ScanError(f"could not read: {exc.strerror or exc}") from None
    if b"\x00" in data:
        raise ScanError("binary content (NUL bytes) where a text configuration file was expected")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ScanError(f"not UTF-8 text (byte {exc.start})") from None


def scan_failure(location: Location, exc: ScanError) -> ScanFailure:
    """The failure a ScanError stands for, its hint kept (the report has no separate field)."""
    return ScanFailure(location, f"{exc.message} ({exc.hint})" if exc.hint else exc.message)
