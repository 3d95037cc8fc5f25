"""Resolved Python packages: from the running environment or a lockfile, with purls.

Used by provenance attestations (resolved dependencies) and by the AI-BOM (library components
and their dependency graph). Lockfiles read: pinned requirements (`name==version`, `--hash`),
poetry.lock and uv.lock.
"""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.markers import UndefinedComparison, UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from secmlops.errors import EvidenceError
from secmlops.evidence.attest import read_text_file

_MAX_LOCKFILE_BYTES = 32 * 2**20


@dataclass(frozen=True, slots=True)
class Package:
    """One resolved package. `requires` are canonical names of its direct dependencies."""

    name: str  # canonical (PEP 503)
    version: str
    requires: tuple[str, ...] = ()
    hashes: tuple[str, ...] = ()  # "sha256:<hex>" of distribution files, where a lockfile has them
    source: str = ""  # "environment" or the lockfile name

    @property
    def purl(self) -> str:
        return purl_for(self.name, self.version)


def purl_for(name: str, version: str) -> str:
    """pkg:pypi/<normalised name>@<version> (the purl spec lowercases PyPI names, '_' → '-')."""
    from packageurl import PackageURL

    return str(PackageURL(type="pypi", name=canonicalize_name(name), version=version))


def installed_packages() -> list[Package]:
    """Every distribution importable in this interpreter, with requirements that apply here."""
    found: dict[str, Package] = {}
    for dist in importlib.metadata.distributions():
        raw_name, version = dist.metadata["Name"], dist.metadata["Version"]
        if not raw_name or not version:
            continue  # a broken .dist-info without metadata
        name = canonicalize_name(raw_name)
        requires = sorted(
            {
                canonicalize_name(r.name)
                for r in _parse_requirements(dist.requires or ())
                if _applies(r)
            }
        )
        found.setdefault(name, Package(name, version, tuple(requires), source="environment"))
    names = set(found)
    # Only edges to packages that are installed: an unmet requirement is not a resolved dependency.
    return [
        Package(p.name, p.version, tuple(r for r in p.requires if r in names), source=p.source)
        for p in sorted(found.values(), key=lambda p: p.name)
    ]


def _applies(requirement: Requirement) -> bool:
    """Whether a requirement holds here without extras (python_version, platform markers)."""
    if requirement.marker is None:
        return True
    try:
        return requirement.marker.evaluate({"extra": ""})
    except (UndefinedComparison, UndefinedEnvironmentName):
        return False


def _parse_requirements(lines: Iterable[str]) -> Iterable[Requirement]:
    for line in lines:
        try:
            yield Requirement(line)
        except InvalidRequirement:
            continue  # one malformed entry in third-party metadata must not hide the others


def lockfile_packages(path: Path) -> list[Package]:
    """Packages pinned by a lockfile: *.lock (poetry, uv) is TOML, anything else requirements."""
    text = read_text_file(path, "lockfile", _MAX_LOCKFILE_BYTES)
    if path.name in ("poetry.lock", "uv.lock") or path.suffix == ".lock":
        return _toml_lock(path, text)
    return _requirements(path, text)


def _requirements(path: Path, text: str) -> list[Package]:
    packages: dict[str, Package] = {}
    # Joined continuation lines: `pip-compile --generate-hashes` puts each --hash on its own line.
    logical = re.sub(r"\\\r?\n", " ", text)
    for number, line in enumerate(logical.splitlines(), 1):
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-"):
            continue  # options (-r, -c, --index-url) pin nothing themselves
        spec, *options = line.split(" --")
        hashes = tuple(o.split("=", 1)[1].strip() for o in options if o.strip().startswith("hash="))
        try:
            req = Requirement(spec.strip())
        except InvalidRequirement as exc:
            raise EvidenceError(f"{path}:{number}: not a requirement ({exc})") from None
        pins = [s for s in req.specifier if s.operator in ("==", "===") and "*" not in s.version]
        if not pins:
            raise EvidenceError(
                f"{path}:{number}: {req.name} is not pinned ({req.specifier or 'no version'})",
                hint="a lockfile pins every package as name==version (pip-compile, uv pip compile)",
            )
        name = canonicalize_name(req.name)
        packages[name] = Package(name, pins[0].version, hashes=hashes, source=path.name)
    return sorted(packages.values(), key=lambda p: p.name)


def _toml_lock(path: Path, text: str) -> list[Package]:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise EvidenceError(f"{path}: not TOML ({exc})") from None
    entries = doc.get("package", [])
    if not isinstance(entries, list):
        raise EvidenceError(f"{path}: [[package]] is not a list of tables")
    packages: dict[str, Package] = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise EvidenceError(f"{path}: package entry {i} is not a table")
        name, version = entry.get("name"), entry.get("version")
        if not isinstance(name, str) or not isinstance(version, str):
            continue  # uv.lock: the editable project itself may have no version
        canonical = canonicalize_name(name)
        packages[canonical] = Package(
            canonical,
            version,
            tuple(sorted(_lock_dependencies(entry))),
            tuple(sorted(_lock_hashes(entry))),
            path.name,
        )
    names = set(packages)
    return [
        Package(p.name, p.version, tuple(r for r in p.requires if r in names), p.hashes, p.source)
        for p in sorted(packages.values(), key=lambda p: p.name)
    ]


def _lock_dependencies(entry: dict[str, Any]) -> set[str]:
    deps = entry.get("dependencies", {})
    if isinstance(deps, dict):  # poetry.lock: {name = "spec"}
        return {canonicalize_name(n) for n in deps}
    if isinstance(deps, list):  # uv.lock: [{name = "..."}]
        return {
            canonicalize_name(d["name"])
            for d in deps
            if isinstance(d, dict) and isinstance(d.get("name"), str)
        }
    return set()


def _lock_hashes(entry: dict[str, Any]) -> set[str]:
    items: list[Any] = [entry.get("sdist")]  # uv.lock
    for key in ("files", "wheels"):  # poetry.lock, uv.lock
        listed = entry.get(key)
        items += listed if isinstance(listed, list) else []
    return {
        item["hash"]
        for item in items
        if isinstance(item, dict) and isinstance(item.get("hash"), str)
    }
