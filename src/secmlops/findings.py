"""The one result type of every check: Finding, with its Severity and Location, and the Report."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from secmlops.errors import UsageError


class Severity(enum.IntEnum):
    """Ordered severities: aggregates take the max."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(s.label for s in cls)
            raise UsageError(f"unknown severity {text!r}", hint=f"use one of: {names}") from None

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class Location:
    """Where a finding is. Only the fields that apply are set.

    `member` is the chain of archive members, outermost first, joined with ``!/``
    (``outer.zip!/inner.tar!/data.pkl`` is path ``outer.zip`` member ``inner.tar!/data.pkl``).
    """

    path: str | None = None
    line: int | None = None
    member: str | None = None
    offset: int | None = None
    column: str | None = None
    rows: tuple[int, ...] | None = None
    commit: str | None = None
    package: str | None = None

    def child(self, member: str) -> Location:
        """The location of `member` inside the archive at this location."""
        chain = f"{self.member}!/{member}" if self.member else member
        return Location(path=self.path, member=chain)

    def at_offset(self, offset: int) -> Location:
        return Location(path=self.path, member=self.member, offset=offset)

    def display(self) -> str:
        text = self.path or ""
        if self.member:
            text += f"!/{self.member}"
        if self.line is not None:
            text += f":{self.line}"
        if self.offset is not None:
            text += f" @ byte {self.offset}"
        if self.column is not None:
            text += f" [column {self.column}]"
        if self.package:
            text = f"{text} ({self.package})" if text else self.package
        if self.commit:
            text += f" (commit {self.commit[:12]})"
        return text

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Location:
        rows = data.get("rows")
        return cls(**{**data, "rows": tuple(rows)} if rows is not None else dict(data))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.__slots__:
            value = getattr(self, name)
            if value is not None:
                out[name] = list(value) if isinstance(value, tuple) else value
        return out


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True, slots=True)
class Finding:
    """One observation of one rule at one location."""

    rule_id: str
    severity: Severity
    title: str
    message: str
    location: Location
    evidence: Mapping[str, Any] = field(default_factory=lambda: _frozen(None))
    controls: tuple[str, ...] = ()
    fix: str = ""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Finding:
        """The inverse of to_dict (used to merge results of worker processes)."""
        return cls(
            rule_id=data["rule_id"],
            severity=Severity.parse(data["severity"]),
            title=data["title"],
            message=data["message"],
            location=Location.from_dict(data["location"]),
            evidence=_frozen(data.get("evidence")),
            controls=tuple(data.get("controls", ())),
            fix=data.get("fix", ""),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "severity": self.severity.label,
            "title": self.title,
            "message": self.message,
            "location": self.location.to_dict(),
            "evidence": dict(self.evidence),
            "controls": list(self.controls),
            "fix": self.fix,
        }


@dataclass(frozen=True, slots=True)
class Rule:
    """A stable rule: its id never changes; its findings share title, fix and controls."""

    rule_id: str
    severity: Severity
    title: str
    rationale: str
    fix: str
    controls: tuple[str, ...] = ()

    def finding(
        self,
        location: Location,
        message: str,
        evidence: Mapping[str, Any] | None = None,
        severity: Severity | None = None,
    ) -> Finding:
        return Finding(
            rule_id=self.rule_id,
            severity=self.severity if severity is None else severity,
            title=self.title,
            message=message,
            location=location,
            evidence=_frozen(evidence),
            controls=self.controls,
            fix=self.fix,
        )


@dataclass(frozen=True, slots=True)
class ScanFailure:
    """A target that could not be checked. Fail closed: the exit code becomes 2."""

    location: Location
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"location": self.location.to_dict(), "message": self.message}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScanFailure:
        return cls(Location.from_dict(data["location"]), data["message"])


@dataclass(slots=True)
class Report:
    """What one run of checks found. Mutable while the checks run, then rendered."""

    kind: str
    findings: list[Finding] = field(default_factory=list)
    errors: list[ScanFailure] = field(default_factory=list)
    files_scanned: int = 0
    files_skipped: int = 0
    bytes_scanned: int = 0
    seconds: float = 0.0
    rules: dict[str, Rule] = field(default_factory=dict)

    def add(self, finding: Finding) -> None:
        self.findings.append(finding)

    def extend(self, findings: Iterable[Finding]) -> None:
        self.findings.extend(findings)

    def max_severity(self) -> Severity | None:
        return max((f.severity for f in self.findings), default=None)

    def counts(self) -> dict[str, int]:
        counts = {s.label: 0 for s in Severity}
        for f in self.findings:
            counts[f.severity.label] += 1
        return counts

    def exit_code(self, fail_on: Severity) -> int:
        """0 clean below `fail_on`, 1 findings at or above it, 2 a check could not complete."""
        if self.errors:
            return 2
        top = self.max_severity()
        return 1 if top is not None and top >= fail_on else 0

    def sorted_findings(self) -> list[Finding]:
        return sorted(
            self.findings,
            key=lambda f: (-f.severity, f.location.path or "", f.location.member or "", f.rule_id),
        )
