"""What the dependency parsers produce: dependencies, index settings and unreadable parts."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from secmlops.findings import Location, ScanFailure

_SEPARATORS = re.compile(r"[-_.]+")
MAX_FILE_BYTES = 20 * 2**20


def normalize(name: str) -> str:
    """PEP 503 normalised project name (the key every index and database uses)."""
    return _SEPARATORS.sub("-", name).lower()


@dataclass(frozen=True, slots=True)
class Dependency:
    """One declared or locked package.

    `version` is set only when exactly one version is selected (``==X``, a lockfile entry, an
    installed distribution); `spec` keeps what was written for messages.
    """

    name: str
    version: str | None
    spec: str
    path: str
    line: int | None
    hashes: tuple[str, ...] = ()
    source: str = "requirements"

    @property
    def key(self) -> str:
        return normalize(self.name)

    def location(self) -> Location:
        package = f"{self.key}=={self.version}" if self.version is not None else self.key
        return Location(path=self.path, line=self.line, package=package)


@dataclass(frozen=True, slots=True)
class IndexSetting:
    """A package-index option found in a requirements, configuration, Docker or CI file.

    kind: ``index-url``, ``extra-index-url``, ``trusted-host`` or ``find-links``.
    """

    kind: str
    value: str
    path: str
    line: int | None


@dataclass(frozen=True, slots=True)
class Problem:
    """A line or entry that could not be parsed (reported as DEPS-MALFORMED)."""

    path: str
    line: int | None
    message: str


@dataclass(slots=True)
class Manifest:
    """Everything one input file (with its includes) declares."""

    path: str
    kind: str
    dependencies: list[Dependency] = field(default_factory=list)
    indexes: list[IndexSetting] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    failures: list[ScanFailure] = field(default_factory=list)
    # Lockfiles and requirement files must pin; a pyproject beside a lockfile need not.
    pins_expected: bool = True
    # Whether a missing hash is worth a finding for this kind of file.
    hashes_expected: bool = True

    def fail(self, path: str, message: str, line: int | None = None) -> None:
        self.failures.append(ScanFailure(Location(path=path, line=line), message))


def read_text(path: Path, manifest: Manifest) -> str | None:
    """The file's text, or None after recording why it cannot be read (fail closed)."""
    display = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            manifest.fail(display, f"file is too large to be a dependency list ({size} bytes)")
            return None
        data = path.read_bytes()
    except OSError as exc:
        manifest.fail(display, f"cannot read: {exc.strerror or exc}")
        return None
    if b"\x00" in data:
        manifest.fail(display, "binary content where a text dependency file was expected")
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        manifest.fail(display, f"not UTF-8 text (byte {exc.start})")
        return None


def line_of(lines: list[str], needle: str, start: int = 0) -> int | None:
    """1-based number of the first line at or after `start` (0-based) containing `needle`."""
    for i in range(start, len(lines)):
        if needle in lines[i]:
            return i + 1
    return None
