"""in-toto attestations: Statement v1 in a DSSE envelope, signed with secmlops keys.

The small library API the pipeline chains into lineage:
`make_statement` → `sign_envelope` → (store) → `verify_envelope` → `VerifiedStatement`.
Predicates: SLSA provenance v1 for a training run, secmlops scan results, evaluation metrics.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from secmlops.errors import EvidenceError, SignatureError
from secmlops.evidence import attest_rules
from secmlops.evidence.dsse import (
    INTOTO_PAYLOAD_TYPE,
    Envelope,
    parse_envelope,
    sign_envelope_bytes,
    verify_envelope_signatures,
)
from secmlops.evidence.keys import PrivateKey, PublicKey
from secmlops.findings import Finding, Location, Report, ScanFailure

if TYPE_CHECKING:
    from secmlops.evidence.packages import Package

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
# v0.1 statements have the same subject shape; accepted when reading, never written.
_READABLE_STATEMENT_TYPES = (STATEMENT_TYPE, "https://in-toto.io/Statement/v0.1")
SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"
SCAN_PREDICATE_V1 = "https://secmlops.dev/attestation/scan/v1"
METRICS_PREDICATE_V1 = "https://secmlops.dev/attestation/metrics/v1"
DEFAULT_BUILD_TYPE = "https://secmlops.dev/buildtypes/training/v1"
DEFAULT_BUILDER_ID = "https://secmlops.dev/builder/cli"
# Digest algorithms a subject may name that we can recompute (sha256 is what we write).
_DIGESTS = ("sha256", "sha384", "sha512")
_CHUNK = 1024 * 1024
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True, slots=True)
class Subject:
    """One artifact a statement is about: a name and its digests (algorithm → lowercase hex)."""

    name: str
    digest: Mapping[str, str]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "digest": dict(self.digest)}


@dataclass(frozen=True, slots=True)
class VerifiedStatement:
    """A statement whose envelope verified with a trusted key (only then is it returned)."""

    predicate_type: str
    subjects: tuple[Subject, ...]
    predicate: Mapping[str, Any]
    keyids: tuple[str, ...]
    payload: bytes = field(repr=False)  # the exact signed bytes (their digest names the statement)


# ---- files and digests ---------------------------------------------------------------------


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in chunks (models do not fit in memory)."""
    h = hashlib.new(algorithm)
    try:
        with path.open("rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
    except OSError as exc:
        raise EvidenceError(f"cannot read {path}: {exc.strerror or exc}") from None
    return h.hexdigest()


def read_text_file(path: Path, what: str, max_bytes: int) -> str:
    """A small UTF-8 input file (card, lockfile); EvidenceError saying what is wrong with it."""
    try:
        if path.stat().st_size > max_bytes:
            raise EvidenceError(f"{what} {path} is larger than {max_bytes} bytes")
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise EvidenceError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise EvidenceError(f"{what} {path} is not UTF-8 text") from None


def artifact_files(path: Path) -> Iterator[tuple[Path, str]]:
    """(file, subject name) for a file or every file of a folder, sorted by name; no symlinks.

    A file's name is its base name; a folder's files are ``<folder name>/<relative path>``, so
    names do not depend on the directory the command ran in.
    """
    if path.is_symlink():
        raise EvidenceError(f"{path} is a symbolic link", hint="give the real file or folder")
    if path.is_file():
        yield path, path.name
        return
    if not path.is_dir():
        raise EvidenceError(f"no such file or folder: {path}")
    root_name = path.resolve().name
    found: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(path):
        for entry in [*dirnames, *filenames]:
            full = Path(dirpath) / entry
            if full.is_symlink():
                raise EvidenceError(
                    f"{full} is a symbolic link", hint="artifacts must not point outside"
                )
        found += [
            ((Path(dirpath) / f).relative_to(path).as_posix(), Path(dirpath) / f) for f in filenames
        ]
    for rel, full in sorted(found):
        yield full, f"{root_name}/{rel}"


def subjects_for(paths: Sequence[Path], progress: Progress | None = None) -> list[Subject]:
    """SHA-256 subjects for files and folders (one subject per file).

    `progress(path, done, total)` is called after each file is hashed.
    """
    files = [entry for path in paths for entry in artifact_files(path)]
    subjects = []
    for done, (file, name) in enumerate(files, 1):
        subjects.append(Subject(name, MappingProxyType({"sha256": file_digest(file)})))
        if progress is not None:
            progress(str(file), done, len(files))
    if not subjects:
        raise EvidenceError("no files to attest", hint="the folders given are empty")
    names = [s.name for s in subjects]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise EvidenceError(f"two subjects are both named {dup!r}", hint="give each file once")
    return subjects


def file_descriptors(path: Path, role: str) -> list[dict[str, Any]]:
    """SLSA ResourceDescriptors (name, sha256) of a file or of every file of a folder."""
    return [
        {"name": name, "digest": {"sha256": file_digest(file)}, "annotations": {"role": role}}
        for file, name in artifact_files(path)
    ]


def package_descriptor(package: Package) -> dict[str, Any]:
    """A resolved package as a ResourceDescriptor: its purl, and distribution hashes if pinned."""
    out: dict[str, Any] = {"uri": package.purl, "name": package.name}
    sha256 = [h.split(":", 1)[1] for h in package.hashes if h.startswith("sha256:")]
    if len(sha256) == 1:
        out["digest"] = {"sha256": sha256[0]}
    elif sha256:  # one hash per wheel/sdist: which file was installed is not recorded
        out["annotations"] = {"acceptedSha256": sorted(sha256)}
    return out


def git_descriptor(repo: Path) -> dict[str, Any] | None:
    """The code commit of `repo` (None outside a git work tree or without git)."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(  # noqa: S603 - fixed argv, no shell
                ["git", "-C", str(repo), *args],  # noqa: S607 - git from PATH, as a user runs it
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "--verify", "HEAD")
    if not commit:
        return None
    remote = git("config", "--get", "remote.origin.url")
    status = git("status", "--porcelain", "--untracked-files=no")
    descriptor: dict[str, Any] = {
        "uri": f"git+{remote}@{commit}" if remote else f"git+file:{repo.resolve().as_posix()}",
        "digest": {"gitCommit": commit},
        "name": "source",
    }
    if status:  # built from uncommitted changes: the commit alone does not describe the code
        descriptor["annotations"] = {"dirty": True}
    return descriptor


# ---- statements and envelopes --------------------------------------------------------------


def make_statement(
    subjects: Sequence[Subject], predicate_type: str, predicate: Mapping[str, Any]
) -> dict[str, Any]:
    """An in-toto Statement v1."""
    if not subjects:
        raise EvidenceError("a statement needs at least one subject")
    if not predicate_type:
        raise EvidenceError("a statement needs a predicate type")
    return {
        "_type": STATEMENT_TYPE,
        "subject": [s.to_dict() for s in subjects],
        "predicateType": predicate_type,
        "predicate": dict(predicate),
    }


def canonical_json(value: Any) -> bytes:
    """Deterministic JSON bytes: sorted keys, no spaces, UTF-8."""
    try:
        return json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode("utf-8")  # a file name that is not valid UTF-8 fails here, not later
    except (TypeError, ValueError) as exc:
        raise EvidenceError(f"the statement cannot be written as JSON: {exc}") from None


def sign_envelope(statement: Mapping[str, Any], key: PrivateKey) -> dict[str, Any]:
    """Sign a statement into a DSSE envelope (JSON-ready dict)."""
    payload = canonical_json(statement)
    return sign_envelope_bytes(INTOTO_PAYLOAD_TYPE, payload, key).to_dict()


def open_envelope(
    envelope: Envelope | Mapping[str, Any] | bytes | str,
    keys: PublicKey | Sequence[PublicKey],
) -> VerifiedStatement:
    """Check the signature, then read the statement. Signature first: nothing unsigned is parsed."""
    env = envelope if isinstance(envelope, Envelope) else parse_envelope(envelope)
    trusted = list(keys) if isinstance(keys, Sequence) else [keys]
    keyids = verify_envelope_signatures(env, trusted)
    if env.payload_type != INTOTO_PAYLOAD_TYPE:
        raise EvidenceError(
            f"payload type is {env.payload_type!r}, not an in-toto statement "
            f"({INTOTO_PAYLOAD_TYPE})"
        )
    return _parse_statement(env.payload, keyids)


def _parse_statement(payload: bytes, keyids: tuple[str, ...]) -> VerifiedStatement:
    try:
        doc = json.loads(payload)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise EvidenceError(f"the signed payload is not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise EvidenceError("the signed payload is not a JSON object")
    if doc.get("_type") not in _READABLE_STATEMENT_TYPES:
        raise EvidenceError(f"not an in-toto statement (_type {doc.get('_type')!r})")
    predicate_type = doc.get("predicateType")
    if not isinstance(predicate_type, str) or not predicate_type:
        raise EvidenceError("the statement has no predicateType")
    predicate = doc.get("predicate", {})
    if not isinstance(predicate, dict):
        raise EvidenceError("the statement's predicate is not an object")
    raw_subjects = doc.get("subject")
    if not isinstance(raw_subjects, list) or not raw_subjects:
        raise EvidenceError("the statement has no subjects")
    subjects: list[Subject] = []
    for i, s in enumerate(raw_subjects):
        digest = s.get("digest") if isinstance(s, dict) else None
        name = s.get("name", "") if isinstance(s, dict) else None
        if (
            not isinstance(name, str)
            or not isinstance(digest, dict)
            or not digest
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in digest.items())
        ):
            raise EvidenceError(f"subject {i} is not {{name, digest: {{algorithm: hex}}}}")
        subjects.append(Subject(name, MappingProxyType({k: v.lower() for k, v in digest.items()})))
    return VerifiedStatement(
        predicate_type, tuple(subjects), MappingProxyType(predicate), keyids, payload
    )


@dataclass(frozen=True, slots=True)
class SubjectProblem:
    """A given artifact that does not match the statement's subjects."""

    path: str
    kind: str  # "changed", "missing" or "not-attested"
    message: str
    expected: str = ""
    actual: str = ""


def subject_problems(statement: VerifiedStatement, paths: Sequence[Path]) -> list[SubjectProblem]:
    """Compare files on disk with the statement's subjects; name each one that differs.

    Files are matched by subject name first, then by digest (a renamed but unchanged file is
    the attested artifact). Files of a folder that the statement lists but the folder lacks are
    reported as missing.
    """
    by_name = {s.name: s for s in statement.subjects}
    problems: list[SubjectProblem] = []
    for path in paths:
        seen: set[str] = set()
        for file, name in artifact_files(path):
            seen.add(name)
            subject = by_name.get(name)
            if subject is not None:
                alg = next((a for a in _DIGESTS if a in subject.digest), None)
                if alg is None:
                    problems.append(
                        SubjectProblem(
                            str(file),
                            "changed",
                            f"{file}: subject {name!r} has no digest secmlops can check "
                            f"({', '.join(subject.digest)})",
                        )
                    )
                    continue
                actual = file_digest(file, alg)
                if actual != subject.digest[alg]:
                    problems.append(
                        SubjectProblem(
                            str(file),
                            "changed",
                            f"{file} differs from the attested subject {name!r}",
                            f"{alg}:{subject.digest[alg]}",
                            f"{alg}:{actual}",
                        )
                    )
                continue
            actual = file_digest(file)
            if not any(s.digest.get("sha256") == actual for s in statement.subjects):
                problems.append(
                    SubjectProblem(
                        str(file),
                        "not-attested",
                        f"{file} (sha256:{actual[:16]}…) is not a subject of the attestation",
                        actual=f"sha256:{actual}",
                    )
                )
        if path.is_dir():
            prefix = path.resolve().name + "/"
            for name in sorted(by_name):
                if name.startswith(prefix) and name not in seen:
                    problems.append(
                        SubjectProblem(
                            str(path / name[len(prefix) :]),
                            "missing",
                            f"attested file {name!r} is missing from {path}",
                        )
                    )
    return problems


def verify_envelope(
    envelope: Envelope | Mapping[str, Any] | bytes | str,
    public_key: PublicKey | Sequence[PublicKey],
    *,
    subjects: Sequence[Path] = (),
    predicate_type: str | None = None,
) -> VerifiedStatement:
    """Verify signature, predicate type and (if given) subject files; raise on the first failure."""
    statement = open_envelope(envelope, public_key)
    if predicate_type is not None and statement.predicate_type != predicate_type:
        raise EvidenceError(
            f"predicate type is {statement.predicate_type!r}, expected {predicate_type!r}"
        )
    problems = subject_problems(statement, subjects)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise EvidenceError(problems[0].message + more)
    return statement


def check_attestation(
    attestation: Path,
    keys: Sequence[PublicKey],
    subjects: Sequence[Path] = (),
    predicate_type: str | None = None,
) -> tuple[Report, VerifiedStatement | None]:
    """Verification as a Report: failed checks are findings, unreadable input an error."""
    started = time.perf_counter()
    report = Report(kind="attestation", rules=dict(attest_rules.ALL))
    where = Location(path=str(attestation))
    try:
        raw = attestation.read_bytes()
    except OSError as exc:
        report.errors.append(ScanFailure(where, f"cannot read: {exc.strerror or exc}"))
        return report, None
    report.files_scanned, report.bytes_scanned = 1, len(raw)
    try:
        statement = open_envelope(raw, keys)
    except SignatureError as exc:
        report.add(attest_rules.SIGNATURE_INVALID.finding(where, exc.message))
        return report, None
    except EvidenceError as exc:
        report.errors.append(ScanFailure(where, exc.message))
        return report, None
    if predicate_type is not None and statement.predicate_type != predicate_type:
        report.add(
            attest_rules.PREDICATE_TYPE.finding(
                where,
                f"predicate type is {statement.predicate_type!r}, expected {predicate_type!r}",
                {"actual": statement.predicate_type, "expected": predicate_type},
            )
        )
    try:
        problems = subject_problems(statement, subjects)
    except EvidenceError as exc:
        report.errors.append(ScanFailure(where, exc.message))
        return report, statement
    report.extend(_subject_finding(p) for p in problems)
    report.seconds = time.perf_counter() - started
    return report, statement


def _subject_finding(problem: SubjectProblem) -> Finding:
    evidence = {"kind": problem.kind}
    if problem.expected:
        evidence["expected"] = problem.expected
    if problem.actual:
        evidence["actual"] = problem.actual
    return attest_rules.SUBJECT_MISMATCH.finding(
        Location(path=problem.path), problem.message, evidence
    )


# ---- predicates ----------------------------------------------------------------------------


def _timestamp(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise EvidenceError(f"timestamp {moment.isoformat()} has no time zone")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def provenance_predicate(
    *,
    resolved_dependencies: Sequence[Mapping[str, Any]],
    external_parameters: Mapping[str, Any] | None = None,
    internal_parameters: Mapping[str, Any] | None = None,
    build_type: str = DEFAULT_BUILD_TYPE,
    builder_id: str = DEFAULT_BUILDER_ID,
    invocation_id: str | None = None,
    started_on: datetime | None = None,
    finished_on: datetime | None = None,
) -> dict[str, Any]:
    """SLSA provenance v1 for a training run; run metadata appears only when it is known."""
    for dep in resolved_dependencies:
        if not any(k in dep for k in ("uri", "digest", "content")):
            raise EvidenceError(f"resolved dependency {dict(dep)} has no uri, digest or content")
    if started_on and finished_on and finished_on < started_on:
        raise EvidenceError("the run finished before it started")
    build_definition: dict[str, Any] = {
        "buildType": build_type,
        "externalParameters": dict(external_parameters or {}),
    }
    if internal_parameters:
        build_definition["internalParameters"] = dict(internal_parameters)
    build_definition["resolvedDependencies"] = [dict(d) for d in resolved_dependencies]
    metadata: dict[str, str] = {}
    if invocation_id:
        metadata["invocationId"] = invocation_id
    if started_on:
        metadata["startedOn"] = _timestamp(started_on)
    if finished_on:
        metadata["finishedOn"] = _timestamp(finished_on)
    run_details: dict[str, Any] = {"builder": {"id": builder_id}}
    if metadata:
        run_details["metadata"] = metadata
    return {"buildDefinition": build_definition, "runDetails": run_details}


def scan_predicate(report: Mapping[str, Any], report_sha256: str | None = None) -> dict[str, Any]:
    """A secmlops scan result: its summary, rule counts and a digest over every finding."""
    if report.get("tool") != "secmlops":
        raise EvidenceError('not a secmlops JSON report (no "tool": "secmlops")')
    findings, errors, summary = report.get("findings"), report.get("errors"), report.get("summary")
    if not isinstance(findings, list) or not isinstance(errors, list):
        raise EvidenceError("the report has no findings/errors lists")
    if not isinstance(summary, dict):
        raise EvidenceError("the report has no summary")
    rule_counts: dict[str, int] = {}
    for f in findings:
        if not isinstance(f, dict) or not isinstance(f.get("rule_id"), str):
            raise EvidenceError("a finding of the report has no rule_id")
        rule_counts[f["rule_id"]] = rule_counts.get(f["rule_id"], 0) + 1
    predicate: dict[str, Any] = {
        "scanner": {"name": "secmlops", "version": str(report.get("version", ""))},
        "summary": dict(summary),
        "ruleCounts": dict(sorted(rule_counts.items())),
        "findingsDigest": {
            "sha256": hashlib.sha256(
                canonical_json({"findings": findings, "errors": errors})
            ).hexdigest()
        },
        # Errors mean parts could not be checked: a consumer must not read this as "clean".
        "complete": not errors,
    }
    if report_sha256:
        predicate["reportDigest"] = {"sha256": report_sha256}
    return predicate


def metrics_predicate(
    metrics: Mapping[str, Any],
    *,
    datasets: Sequence[Mapping[str, Any]] = (),
    evaluated_on: datetime | None = None,
) -> dict[str, Any]:
    """Evaluation metrics (name → finite number) and the evaluation data by digest."""
    if not metrics:
        raise EvidenceError(
            "no metrics given", hint="use --metrics FILE.json or --metric NAME=VALUE"
        )
    clean: dict[str, float | int] = {}
    for name, value in metrics.items():
        if not isinstance(name, str) or not name.strip():
            raise EvidenceError(f"metric name {name!r} is empty")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise EvidenceError(f"metric {name!r} is {type(value).__name__}, not a number")
        if not math.isfinite(value):
            raise EvidenceError(f"metric {name!r} is not finite ({value})")
        clean[name] = value
    predicate: dict[str, Any] = {"metrics": dict(sorted(clean.items()))}
    if datasets:
        predicate["datasets"] = [dict(d) for d in datasets]
    if evaluated_on:
        predicate["evaluatedOn"] = _timestamp(evaluated_on)
    return predicate
