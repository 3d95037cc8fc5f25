"""The offline OSV database: import of the PyPI dump into SQLite, PEP 440 range evaluation, alias
merging and severities.

The store is one SQLite file (``osv.sqlite3``) in ``$SECMLOPS_DB`` or ``~/.cache/secmlops/osv/``,
indexed by PEP 503 package name. An import builds a new file beside the old one and renames it
over the old one only when every record was read, so a damaged download never replaces a good
database.
"""

from __future__ import annotations

import enum
import hashlib
import json
import os
import re
import sqlite3
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_version
from packaging.version import InvalidVersion, Version

from secmlops.errors import DatabaseError
from secmlops.findings import Severity
from secmlops.scan.deps.cvss import rating, score_vector, text_rating
from secmlops.scan.deps.inventory import normalize

DB_FILE = "osv.sqlite3"
OSV_DUMP_URL = "https://osv-vulnerabilities.storage.googleapis.com/PyPI/all.zip"
SCHEMA = "1"
_MAX_RECORD_BYTES = 32 * 2**20
_UPDATE_HINT = "run: secmlops db update  (or: secmlops db update --from PyPI-all.zip)"
# Only what matching, severities and messages need is kept; details and references are large.
_KEPT = ("id", "aliases", "summary", "severity", "database_specific", "withdrawn", "modified")


def default_db_dir() -> Path:
    """$SECMLOPS_DB, else ~/.cache/secmlops/osv."""
    env = os.environ.get("SECMLOPS_DB")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "secmlops" / "osv"


@dataclass(frozen=True, slots=True)
class DbInfo:
    """What an import recorded about the database."""

    path: Path
    imported_at: datetime
    source: str
    source_sha256: str
    records: int
    packages: int

    def age_days(self, now: datetime | None = None) -> float:
        return ((now or datetime.now(UTC)) - self.imported_at).total_seconds() / 86400


# ----------------------------------------------------------------------------- import


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _records(archive: zipfile.ZipFile) -> Iterator[tuple[str, dict[str, Any]]]:
    for info in archive.infolist():
        if info.is_dir() or not info.filename.endswith(".json"):
            continue
        if info.file_size > _MAX_RECORD_BYTES:
            raise DatabaseError(
                f"{info.filename}: record is implausibly large ({info.file_size} B)"
            )
        try:
            record = json.loads(archive.read(info))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DatabaseError(f"{info.filename}: not a valid JSON record ({exc})") from None
        if not isinstance(record, dict) or not isinstance(record.get("id"), str):
            raise DatabaseError(f"{info.filename}: not an OSV record (no string 'id')")
        if not isinstance(record.get("affected", []), list):
            raise DatabaseError(f"{info.filename}: 'affected' is not a list")
        yield info.filename, record


def _pypi_affected(record: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        a
        for a in record.get("affected", [])
        if isinstance(a, dict)
        and isinstance(a.get("package"), dict)
        and a["package"].get("ecosystem") == "PyPI"
        and isinstance(a["package"].get("name"), str)
    ]


def _build(zip_path: Path, target: Path, source: str) -> DbInfo:
    digest = _sha256(zip_path)
    imported_at = datetime.now(UTC)
    packages: set[str] = set()
    count = 0
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DatabaseError(f"{zip_path}: not a readable zip archive ({exc})") from None
    with archive, closing(sqlite3.connect(target)) as db:
        db.executescript(
            "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
            "CREATE TABLE vulns (id TEXT PRIMARY KEY, record TEXT NOT NULL);"
            "CREATE TABLE affects (package TEXT NOT NULL, id TEXT NOT NULL);"
        )
        try:
            for _, record in _records(archive):
                affected = _pypi_affected(record)
                if not affected:
                    continue
                kept = {k: record[k] for k in _KEPT if k in record}
                kept["affected"] = affected
                db.execute(
                    "INSERT OR REPLACE INTO vulns VALUES (?, ?)",
                    (record["id"], json.dumps(kept, separators=(",", ":"))),
                )
                names = {normalize(a["package"]["name"]) for a in affected}
                db.executemany(
                    "INSERT INTO affects VALUES (?, ?)", [(n, record["id"]) for n in names]
                )
                packages |= names
                count += 1
        except (zipfile.BadZipFile, OSError, EOFError, zipfile.LargeZipFile) as exc:
            raise DatabaseError(f"{zip_path}: damaged archive ({exc})") from None
        if count == 0:
            raise DatabaseError(f"{zip_path}: no PyPI OSV records in the archive")
        db.execute("CREATE INDEX affects_package ON affects (package)")
        meta = {
            "schema": SCHEMA,
            "imported_at": imported_at.isoformat(),
            "source": source,
            "source_sha256": digest,
            "records": str(count),
            "packages": str(len(packages)),
        }
        db.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
        db.commit()
    return DbInfo(target, imported_at, source, digest, count, len(packages))


def import_zip(zip_path: Path, db_dir: Path | None = None, source: str | None = None) -> DbInfo:
    """Import an OSV zip dump (PyPI all.zip) atomically; the previous database survives errors."""
    directory = db_dir or default_db_dir()
    if not zip_path.is_file():
        raise DatabaseError(f"{zip_path}: no such file", hint="give the path of PyPI all.zip")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".osv-", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise DatabaseError(f"cannot write the database in {directory}: {exc.strerror}") from None
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()  # sqlite creates it afresh
    try:
        info = _build(zip_path, tmp, source or str(zip_path.resolve()))
        final = directory / DB_FILE
        os.replace(tmp, final)
    except DatabaseError as exc:
        exc.hint = exc.hint or "the previous database (if any) was kept unchanged"
        raise
    except sqlite3.Error as exc:
        raise DatabaseError(f"cannot write the database: {exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return DbInfo(final, info.imported_at, info.source, info.source_sha256, info.records,
                  info.packages)  # fmt: skip


def fetch(db_dir: Path | None = None, url: str = OSV_DUMP_URL, timeout: float = 15.0) -> DbInfo:
    """Download the OSV PyPI dump and import it. Fails fast and clearly without a network."""
    if not url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
        raise DatabaseError(f"refusing to download from {url}", hint="use an https:// URL")
    directory = db_dir or default_db_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".download-", suffix=".zip", dir=directory)
    except OSError as exc:
        raise DatabaseError(f"cannot write the database in {directory}: {exc.strerror}") from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310
            for block in iter(lambda: resp.read(1 << 20), b""):
                out.write(block)
        return import_zip(tmp, directory, source=url)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DatabaseError(
            f"cannot download {url}: {reason}",
            hint="without a network, download PyPI/all.zip elsewhere and run "
            "secmlops db update --from all.zip",
        ) from None
    finally:
        tmp.unlink(missing_ok=True)


# ----------------------------------------------------------------------------- queries


class OsvDatabase:
    """A read-only handle on the imported database."""

    def __init__(self, db_dir: Path | None = None) -> None:
        directory = db_dir or default_db_dir()
        self.path = directory / DB_FILE
        if not self.path.is_file():
            raise DatabaseError(f"no vulnerability database at {self.path}", hint=_UPDATE_HINT)
        try:
            self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
            meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
            self.info = DbInfo(
                self.path,
                datetime.fromisoformat(meta["imported_at"]),
                meta["source"],
                meta["source_sha256"],
                int(meta["records"]),
                int(meta["packages"]),
            )
        except (sqlite3.Error, KeyError, ValueError) as exc:
            raise DatabaseError(
                f"{self.path}: damaged database ({exc})", hint=_UPDATE_HINT
            ) from None
        self._cache: dict[str, list[dict[str, Any]]] = {}
        self._compiled: dict[str, list[CompiledRecord]] = {}

    def close(self) -> None:
        self._db.close()

    def records(self, key: str) -> list[dict[str, Any]]:
        """Every record naming the (normalised) package, withdrawn ones included."""
        if key not in self._cache:
            try:
                rows = self._db.execute(
                    "SELECT v.record FROM affects a JOIN vulns v ON v.id = a.id "
                    "WHERE a.package = ? ORDER BY v.id",
                    (key,),
                ).fetchall()
                self._cache[key] = [json.loads(r[0]) for r in rows]
            except (sqlite3.Error, json.JSONDecodeError) as exc:
                raise DatabaseError(
                    f"{self.path}: damaged database ({exc})", hint=_UPDATE_HINT
                ) from None
        return self._cache[key]

    def compiled(self, key: str) -> list[CompiledRecord]:
        """The package's records prepared for evaluation (parsed once per scan)."""
        if key not in self._compiled:
            self._compiled[key] = [CompiledRecord.of(r, key) for r in self.records(key)]
        return self._compiled[key]


# ----------------------------------------------------------------------------- evaluation


class Verdict(enum.Enum):
    AFFECTED = "affected"
    UNAFFECTED = "unaffected"
    UNKNOWN = "unknown"


def parse_version(text: str) -> Version | None:
    try:
        return Version(text)
    except (InvalidVersion, TypeError):
        return None


_Event = tuple[Version | None, str]  # None: introduced "0", before every version


@dataclass(frozen=True, slots=True)
class _Range:
    """One ECOSYSTEM range, parsed once: events in order and limits; invalid -> unknown."""

    events: tuple[_Event, ...]
    limits: tuple[Version, ...]
    valid: bool

    @classmethod
    def parse(cls, events: Iterable[Any]) -> _Range:
        ordered: list[_Event] = []
        limits: list[Version] = []
        for event in events:
            if not isinstance(event, dict) or len(event) != 1:
                return cls((), (), False)
            kind, value = next(iter(event.items()))
            if not isinstance(value, str):
                return cls((), (), False)
            if kind == "introduced" and value == "0":
                ordered.append((None, kind))
                continue
            if kind == "limit" and value == "*":
                continue
            parsed = parse_version(value)
            if parsed is None or kind not in ("introduced", "fixed", "last_affected", "limit"):
                return cls((), (), False)
            if kind == "limit":
                limits.append(parsed)
            else:
                ordered.append((parsed, kind))
        ordered.sort(key=lambda e: (e[0] is not None, e[0] or _ZERO))
        return cls(tuple(ordered), tuple(limits), True)

    def contains(self, version: Version) -> bool:
        """The OSV schema's evaluation: walk the sorted events, the last one that applies wins."""
        if self.limits and not any(version < limit for limit in self.limits):
            return False
        affected = False
        for at, kind in self.events:
            if kind == "introduced" and (at is None or version >= at):
                affected = True
            elif (kind == "fixed" and at is not None and version >= at) or (
                kind == "last_affected" and at is not None and version > at
            ):
                affected = False
        return affected


_ZERO = Version("0")
# Already in PEP 440 normal form (no leading zeros, epoch, separators or upper case): most listed
# versions are, and skipping their parse makes evaluation of long version lists cheap.
_NORMAL = re.compile(
    r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*((a|b|rc)(0|[1-9][0-9]*))?(\.post(0|[1-9][0-9]*))?"
    r"(\.dev(0|[1-9][0-9]*))?(\+[a-z0-9]+(\.[a-z0-9]+)*)?"
)


_TRAILING_ZEROS = re.compile(r"^([0-9]+(?:\.[0-9]+)*?)(?:\.0)+(?=$|[a-z+]|\.[a-z])")


def _canonical_version(text: str) -> str | None:
    """A string equal for exactly the versions PEP 440 calls equal (1.0 == 1.0.0 == 1.00)."""
    if _NORMAL.fullmatch(text):
        return _TRAILING_ZEROS.sub(r"\1", text)
    parsed = parse_version(text)
    return canonicalize_version(parsed) if parsed is not None else None


@dataclass(frozen=True, slots=True)
class _Entry:
    """One `affected` entry for the package: listed versions and ranges, parsed once."""

    raw: frozenset[str]
    listed: frozenset[str | None]  # PEP 440 normal forms of the listed versions
    ranges: tuple[_Range, ...]
    unbounded: bool


@dataclass(frozen=True, slots=True)
class CompiledRecord:
    """A record prepared for evaluating many versions of one package quickly."""

    record: dict[str, Any]
    withdrawn: bool
    entries: tuple[_Entry, ...]

    @classmethod
    def of(cls, record: dict[str, Any], key: str) -> CompiledRecord:
        entries = []
        for entry in _package_entries(record, key):
            raw = frozenset(v for v in entry.get("versions") or [] if isinstance(v, str))
            listed = frozenset(_canonical_version(v) for v in raw) - {None}
            ranges = tuple(
                _Range.parse(r.get("events") or [])
                for r in entry.get("ranges") or []
                if isinstance(r, dict) and r.get("type") == "ECOSYSTEM"
            )
            unbounded = not entry.get("versions") and not entry.get("ranges")
            entries.append(_Entry(raw, listed, ranges, unbounded))
        return cls(record, bool(record.get("withdrawn")), tuple(entries))

    def verdict(self, version: str, parsed: Version | None) -> Verdict:
        if self.withdrawn:
            return Verdict.UNAFFECTED
        unknown = False
        normal = canonicalize_version(parsed) if parsed is not None else None
        for entry in self.entries:
            if version in entry.raw or (normal is not None and normal in entry.listed):
                return Verdict.AFFECTED
            if entry.unbounded:
                return Verdict.AFFECTED  # no bounds at all: every version (typical of MAL records)
            if parsed is None:
                unknown = True
                continue
            for rng in entry.ranges:
                if not rng.valid:
                    unknown = True
                elif rng.contains(parsed):
                    return Verdict.AFFECTED
        return Verdict.UNKNOWN if unknown else Verdict.UNAFFECTED


def _package_entries(record: dict[str, Any], key: str) -> list[dict[str, Any]]:
    return [a for a in _pypi_affected(record) if normalize(a["package"]["name"]) == key]


def evaluate(record: dict[str, Any], key: str, version: str) -> Verdict:
    """Does the record affect `key`==`version`? Withdrawn records never do; unknown is not clean."""
    return CompiledRecord.of(record, key).verdict(version, parse_version(version))


def fixed_versions(record: dict[str, Any], key: str) -> list[str]:
    """Every `fixed` event of the record's ECOSYSTEM ranges for the package."""
    out: list[str] = []
    for entry in _package_entries(record, key):
        for rng in entry.get("ranges") or []:
            if isinstance(rng, dict) and rng.get("type") == "ECOSYSTEM":
                for event in rng.get("events") or []:
                    if isinstance(event, dict) and isinstance(event.get("fixed"), str):
                        out.append(event["fixed"])
    return out


def is_malicious(record: dict[str, Any]) -> bool:
    return str(record.get("id", "")).startswith("MAL-")


@dataclass(frozen=True, slots=True)
class Rated:
    """A record's severity and what it came from."""

    severity: Severity | None
    score: float | None
    basis: str


def record_rating(record: dict[str, Any]) -> Rated:
    """The severity of one record: CVSS v4 over v3, then the database's own rating."""
    entries = list(record.get("severity") or [])
    for affected in _pypi_affected(record):
        entries += list(affected.get("severity") or [])
    best: dict[str, tuple[float, str]] = {}
    for entry in entries:
        if isinstance(entry, dict) and isinstance(entry.get("score"), str):
            kind = str(entry.get("type", ""))
            score = score_vector(kind, entry["score"])
            if score is not None:
                version = "4" if entry["score"].startswith("CVSS:4") else "3"
                if version not in best or score > best[version][0]:
                    best[version] = (score, entry["score"])
    for version in ("4", "3"):
        if version in best:
            score, vector = best[version]
            return Rated(rating(score), score, vector)
    specific = record.get("database_specific")
    text = specific.get("severity") if isinstance(specific, dict) else None
    sev = text_rating(text)
    return Rated(sev, None, f"database severity {text}" if sev else "unrated")


@dataclass(frozen=True, slots=True)
class Advisory:
    """One vulnerability after alias merging: every id under which it is published."""

    ids: tuple[str, ...]
    summary: str
    severity: Severity | None
    score: float | None
    basis: str
    fixed: tuple[str, ...]
    malicious: bool
    withdrawn_ids: tuple[str, ...] = ()

    @property
    def primary(self) -> str:
        return self.ids[0]


def _id_rank(vuln_id: str) -> tuple[int, str]:
    order = ("MAL-", "GHSA-", "PYSEC-", "CVE-")
    return next((i for i, p in enumerate(order) if vuln_id.startswith(p)), len(order)), vuln_id


def merge(records: list[dict[str, Any]], key: str) -> list[Advisory]:
    """Group records that share an id or alias into one advisory each."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for record in records:
        ids = [record["id"], *[a for a in record.get("aliases") or [] if isinstance(a, str)]]
        for other in ids[1:]:
            parent[find(other)] = find(ids[0])
        find(ids[0])
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault(find(record["id"]), []).append(record)
    out: list[Advisory] = []
    for members in groups.values():
        names = {m["id"] for m in members}
        for m in members:
            names.update(a for a in m.get("aliases") or [] if isinstance(a, str))
        ratings = [record_rating(m) for m in members]
        rated = [r for r in ratings if r.severity is not None]
        top = max(rated, key=lambda r: (r.severity or 0, r.score or 0), default=None)
        fixed = {f for m in members for f in fixed_versions(m, key)}
        malicious = any(is_malicious(m) for m in members)
        summary = next((str(m["summary"]) for m in members if m.get("summary")), "")
        out.append(
            Advisory(
                tuple(sorted(names, key=_id_rank)),
                summary,
                Severity.CRITICAL if malicious else (top.severity if top else None),
                top.score if top else None,
                top.basis if top else "unrated",
                tuple(sorted(fixed, key=lambda v: (parse_version(v) or Version("0"), v))),
                malicious,
            )
        )
    return sorted(out, key=lambda a: _id_rank(a.primary))


@dataclass(frozen=True, slots=True)
class PackageResult:
    """What the database says about one package at one version."""

    affected: list[Advisory]
    unknown: list[Advisory]


def check(db: OsvDatabase, key: str, version: str) -> PackageResult:
    """Merged advisories that affect `key`==`version`, and those that cannot be evaluated."""
    hits: list[dict[str, Any]] = []
    unsure: list[dict[str, Any]] = []
    parsed = parse_version(version)
    for compiled in db.compiled(key):
        verdict = compiled.verdict(version, parsed)
        if verdict is Verdict.AFFECTED:
            hits.append(compiled.record)
        elif verdict is Verdict.UNKNOWN:
            unsure.append(compiled.record)
    affected = merge(hits, key)
    seen = {i for a in affected for i in a.ids}
    unknown = [a for a in merge(unsure, key) if not seen.intersection(a.ids)]
    return PackageResult(affected, unknown)


def smallest_fix(compiled: list[CompiledRecord], key: str, current: str) -> str | None:
    """The lowest version above `current` among the fixed events that no record affects."""
    now = parse_version(current)
    candidates = {f for c in compiled for f in fixed_versions(c.record, key)}
    parsed = (parse_version(c) for c in candidates)
    ordered = sorted(v for v in parsed if v is not None and (now is None or v > now))
    for candidate in ordered:
        text = str(candidate)
        if all(c.verdict(text, candidate) is Verdict.UNAFFECTED for c in compiled):
            return text
    return None
