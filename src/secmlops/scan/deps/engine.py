"""`scan deps`: find the dependency files of a project, read them, and check every package against
the offline OSV database, the compromised-release list, popular names and the index settings.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path

from secmlops.errors import DatabaseError, UsageError
from secmlops.findings import Finding, Location, Report, ScanFailure, Severity
from secmlops.scan.deps import rules
from secmlops.scan.deps.fix import Upgrade
from secmlops.scan.deps.inventory import Dependency, Manifest
from secmlops.scan.deps.lockfiles import (
    current_environment,
    parse_pipfile_lock,
    parse_poetry_lock,
    parse_pylock,
    parse_pyproject,
    parse_uv_lock,
    parse_uv_toml,
)
from secmlops.scan.deps.malicious import (
    compromised,
    parse_install_commands,
    parse_pip_conf,
    typosquat_index,
)
from secmlops.scan.deps.osv import (
    Advisory,
    OsvDatabase,
    check,
    default_db_dir,
    is_malicious,
    smallest_fix,
)
from secmlops.scan.deps.requirements import parse_requirements

Progress = Callable[[str, int, int], None]
_SKIP_DIRS = {
    ".git", ".hg", ".svn", ".venv", "venv", "env", "node_modules", "__pycache__", "site-packages",
    ".tox", ".nox", ".mypy_cache", ".ruff_cache", ".pytest_cache", "build", "dist", ".eggs",
}  # fmt: skip
_LOCKFILES = ("poetry.lock", "uv.lock", "pylock.toml", "Pipfile.lock")


@dataclass(frozen=True, slots=True)
class DepsSettings:
    """What `scan deps` checks and against what."""

    db_dir: Path | None = None
    max_db_age_days: float = 7.0
    stale_severity: Severity = Severity.HIGH
    environment: bool = False
    private_names: frozenset[str] = frozenset()


@dataclass(slots=True)
class DepsResult:
    """The report, plus the upgrades --fix proposes."""

    report: Report
    upgrades: list[Upgrade] = field(default_factory=list)


def classify(path: Path) -> str | None:
    """The kind of dependency file `path` is, by its name (None: not one)."""
    name = path.name
    parent = path.parent.name
    if name == "pyproject.toml":
        return "pyproject"
    if name in _LOCKFILES or fnmatch(name, "pylock.*.toml"):
        return "pylock.toml" if name.startswith("pylock") else name
    if name == "uv.toml":
        return "uv.toml"
    if name in ("pip.conf", "pip.ini"):
        return "pip.conf"
    if (
        name in ("Dockerfile", "Containerfile")
        or fnmatch(name, "Dockerfile.*")
        or name.endswith(".dockerfile")
    ):
        return "Dockerfile"
    if name == ".gitlab-ci.yml" or (
        parent == "workflows"
        and path.parent.parent.name == ".github"
        and name.endswith((".yml", ".yaml"))
    ):
        return "ci"
    if name.endswith((".txt", ".in")) and (
        "requirements" in name or "constraints" in name or parent == "requirements"
    ):
        return "requirements"
    return None


def discover(root: Path) -> list[tuple[Path, str]]:
    """Dependency files under `root` (a folder), sorted; vendored and virtual-env trees skipped."""
    found: list[tuple[Path, str]] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(
            d
            for d in dirs
            if d not in _SKIP_DIRS and (d == ".github" or d == "workflows" or not d.startswith("."))
        )
        for name in sorted(files):
            path = Path(folder) / name
            kind = classify(path)
            if kind is not None:
                found.append((path, kind))
    return found


def read_manifest(path: Path, kind: str) -> Manifest:
    """Parse one file of a known kind."""
    if kind == "pyproject":
        locked = any((path.parent / lock).is_file() for lock in _LOCKFILES)
        return parse_pyproject(path, locked)
    parsers: dict[str, Callable[[Path], Manifest]] = {
        "requirements": parse_requirements,
        "poetry.lock": parse_poetry_lock,
        "uv.lock": parse_uv_lock,
        "pylock.toml": parse_pylock,
        "Pipfile.lock": parse_pipfile_lock,
        "uv.toml": parse_uv_toml,
        "pip.conf": parse_pip_conf,
        "Dockerfile": lambda p: parse_install_commands(p, "Dockerfile"),
        "ci": lambda p: parse_install_commands(p, "CI"),
    }
    return parsers[kind](path)


class _Checker:
    def __init__(self, settings: DepsSettings, report: Report) -> None:
        self.settings = settings
        self.report = report
        self.upgrades: list[Upgrade] = []
        self._db: OsvDatabase | None = None
        self._db_failed = False
        self.extra_index = False

    def database(self) -> OsvDatabase | None:
        """The database, opened on first need; missing or damaged fails the scan closed."""
        if self._db is not None or self._db_failed:
            return self._db
        try:
            self._db = OsvDatabase(self.settings.db_dir)
        except DatabaseError as exc:
            self._db_failed = True
            where = Location(path=str(self.settings.db_dir or default_db_dir()))
            message = f"{exc.message} ({exc.hint})" if exc.hint else exc.message
            self.report.add(rules.DB_MISSING.finding(where, message))
            self.report.errors.append(ScanFailure(where, f"vulnerabilities not checked: {message}"))
            return None
        age = self._db.info.age_days()
        if age > self.settings.max_db_age_days:
            self.report.add(
                rules.DB_STALE.finding(
                    Location(path=str(self._db.path)),
                    f"the vulnerability database was imported {age:.1f} days ago "
                    f"(limit {self.settings.max_db_age_days:g})",
                    {"imported_at": self._db.info.imported_at.isoformat(), "age_days": round(age, 2),
                     "source_sha256": self._db.info.source_sha256},
                    severity=self.settings.stale_severity,
                )
            )  # fmt: skip
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()

    def manifest(self, m: Manifest) -> None:
        self.report.errors.extend(m.failures)
        for problem in m.problems:
            self.report.add(
                rules.MALFORMED.finding(
                    Location(path=problem.path, line=problem.line), problem.message
                )
            )
        self._indexes(m)
        for dep in m.dependencies:
            self.dependency(dep, m)
        checkable = [d for d in m.dependencies if d.source != "url"]
        missing = [d for d in checkable if not d.hashes]
        if m.hashes_expected and missing:
            self.report.add(
                rules.NO_HASHES.finding(
                    Location(path=m.path),
                    f"{len(missing)} of {len(checkable)} requirements have no hash "
                    f"(first: {missing[0].name})",
                    {"without_hash": len(missing), "total": len(checkable)},
                )
            )

    def _indexes(self, m: Manifest) -> None:
        for setting in m.indexes:
            where = Location(path=setting.path, line=setting.line)
            if setting.kind == "extra-index-url":
                self.extra_index = True
                self.report.add(
                    rules.EXTRA_INDEX.finding(where, f"extra index {setting.value} ({m.kind})",
                                              {"url": setting.value})
                )  # fmt: skip
            if setting.kind == "trusted-host":
                self.report.add(
                    rules.TRUSTED_HOST.finding(where, f"TLS verification off for {setting.value}",
                                               {"host": setting.value})
                )  # fmt: skip
            if setting.value.lower().startswith("http://"):
                self.report.add(
                    rules.HTTP_INDEX.finding(where, f"{setting.kind} {setting.value} is plain HTTP",
                                             {"url": setting.value})
                )  # fmt: skip

    def dependency(self, dep: Dependency, m: Manifest) -> None:
        where = dep.location()
        release = compromised(dep.key, dep.version)
        if release is not None:
            self.report.add(
                rules.COMPROMISED.finding(
                    where,
                    f"{dep.key}=={dep.version} is a compromised release ({release.date}): "
                    f"{release.summary}",
                    {"reference": release.reference, "versions": list(release.versions)},
                )
            )
        if dep.source != "url":
            squat = typosquat_index().target_of(dep.key)
            if squat is not None and not self._established(dep.key):
                target, how = squat
                self.report.add(
                    rules.TYPOSQUAT.finding(
                        where, f"{dep.key} imitates the popular package {target} ({how})",
                        {"popular": target, "difference": how},
                    )
                )  # fmt: skip
        if dep.key in self.settings.private_names:
            self.report.add(
                rules.CONFUSION.finding(
                    where,
                    f"{dep.key} is an internal package name"
                    + (" and an extra index is configured: a public upload of the same name "
                       "would be installed instead" if self.extra_index else
                       ": make sure it can only come from the private index"),
                    {"extra_index_configured": self.extra_index},
                    severity=None if self.extra_index else Severity.MEDIUM,
                )
            )  # fmt: skip
        if dep.version is None:
            if m.pins_expected:
                what = "a direct URL or path" if dep.source == "url" else f"'{dep.spec or 'any'}'"
                self.report.add(
                    rules.UNPINNED.finding(
                        where, f"{dep.name} is not pinned to one version ({what})",
                        {"specifier": dep.spec},
                    )
                )  # fmt: skip
            self._unpinned_malicious(dep)
            return
        self._vulnerabilities(dep)

    def _established(self, key: str) -> bool:
        """A project with vulnerability advisories (not malware reports) has a real history."""
        db = self.database()
        return db is not None and any(not is_malicious(r) for r in db.records(key))

    def _unpinned_malicious(self, dep: Dependency) -> None:
        db = self.database()
        if db is None:
            return
        bad = [r for r in db.records(dep.key) if is_malicious(r) and not r.get("withdrawn")]
        if bad:
            ids = ", ".join(sorted(r["id"] for r in bad))
            self.report.add(
                rules.MALICIOUS.finding(
                    dep.location(),
                    f"{dep.key} has malicious-package reports ({ids}); whichever version is "
                    "installed cannot be vouched for",
                    {"ids": sorted(r["id"] for r in bad)},
                )
            )

    def _vulnerabilities(self, dep: Dependency) -> None:
        db = self.database()
        if db is None or dep.version is None:
            return
        result = check(db, dep.key, dep.version)
        where = dep.location()
        for adv in result.affected:
            if adv.malicious:
                self.report.add(
                    rules.MALICIOUS.finding(where, f"{dep.key}=={dep.version}: {adv.primary} "
                                            f"{adv.summary}".rstrip(), _evidence(adv))
                )  # fmt: skip
        vulns = [a for a in result.affected if not a.malicious]
        fix = None
        if vulns:
            fix = smallest_fix(db.compiled(dep.key), dep.key, dep.version)
            if fix is not None:
                self.upgrades.append(Upgrade(dep, fix))
        for adv in vulns:
            evidence = {**_evidence(adv), "fix_version": fix}
            fixed = f"; fixed in {', '.join(adv.fixed)}" if adv.fixed else "; no fixed version"
            self.report.add(
                rules.VULN.finding(
                    where,
                    f"{dep.key}=={dep.version}: {adv.primary}"
                    + (f" ({', '.join(adv.ids[1:])})" if len(adv.ids) > 1 else "")
                    + (f" {adv.summary}" if adv.summary else "")
                    + fixed,
                    evidence,
                    severity=adv.severity or Severity.HIGH,
                )
            )
        if result.unknown:
            ids = [a.primary for a in result.unknown]
            self.report.add(
                rules.VERSION_UNKNOWN.finding(
                    where,
                    f"{dep.key}=={dep.version} cannot be evaluated against {', '.join(ids)} "
                    "(not a PEP 440 version, or an advisory range that is not)",
                    {"ids": ids},
                )
            )


def _evidence(adv: Advisory) -> dict[str, object]:
    return {
        "id": adv.primary,
        "aliases": list(adv.ids[1:]),
        "fixed_versions": list(adv.fixed),
        "cvss_score": adv.score,
        "severity_basis": adv.basis,
    }


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen: set[tuple[str, Location, str]] = set()
    out = []
    for f in findings:
        key = (f.rule_id, f.location, f.message)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


def scan_deps(
    paths: Sequence[Path], settings: DepsSettings, progress: Progress | None = None
) -> DepsResult:
    """Scan dependency files (folders are searched) and, with settings.environment, this Python."""
    started = time.perf_counter()
    report = Report(kind="deps", rules=dict(rules.ALL))
    targets: list[tuple[Path, str]] = []
    for path in paths:
        if path.is_dir():
            targets += discover(path)
        elif path.is_file():
            targets.append((path, classify(path) or "requirements"))
        else:
            raise UsageError(f"{path}: no such file or folder")
    manifests: list[Manifest] = []
    for done, (path, kind) in enumerate(targets, start=1):
        manifests.append(read_manifest(path, kind))
        report.files_scanned += 1
        with contextlib.suppress(OSError):
            report.bytes_scanned += path.stat().st_size
        if progress is not None:
            progress(str(path), done, len(targets))
    if settings.environment:
        manifests.append(current_environment())
    checker = _Checker(settings, report)
    # Index settings first: whether an extra index exists decides how confusion is rated.
    checker.extra_index = any(s.kind == "extra-index-url" for m in manifests for s in m.indexes)
    try:
        for m in manifests:
            checker.manifest(m)
    finally:
        checker.close()
    report.findings = _dedupe(report.findings)
    report.seconds = time.perf_counter() - started
    unique = {(u.dependency.path, u.dependency.line, u.dependency.key): u for u in checker.upgrades}
    return DepsResult(report, list(unique.values()))
