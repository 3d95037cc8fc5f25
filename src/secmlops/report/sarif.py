"""SARIF 2.1.0 output: one run per Report, shaped for GitHub code scanning.

Output is deterministic: the same reports give byte-identical text (results and rules are
sorted, nothing time-dependent is written).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from secmlops.findings import Finding, Location, Report, Rule, ScanFailure, Severity

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA_URI = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
TOOL_NAME = "secmlops"
# The project publishes no homepage yet; the package index page is derived from the
# distribution name and is the one address that will exist once it is released.
INFORMATION_URI = "https://pypi.org/project/secmlops/"
# Versioned so a future change of what is hashed can ship as /v2 without colliding.
FINGERPRINT_KEY = "secmlopsFindingHash/v1"

LEVELS = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}
# GitHub reads `security-severity` as a CVSS-like score (critical >= 9.0, high 7.0-8.9,
# medium 4.0-6.9, low 0.1-3.9); it must be a string holding the number.
SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
    Severity.INFO: "0.0",
}

# Characters of a path that may stay literal in a URI path (RFC 3986 pchar minus ':').
# ':' is escaped so a first segment such as "c:x" is never read as a URI scheme; '!' stays
# literal because archive members are written `path!/member`.
_URI_SAFE = "/!$&'()*+,;=@"


def render_sarif(reports: Sequence[Report], tool_version: str) -> str:
    """Render reports as one SARIF 2.1.0 log with one run per report (per layer)."""
    log = {
        "$schema": SARIF_SCHEMA_URI,
        "version": SARIF_VERSION,
        "runs": [_run(report, tool_version) for report in reports],
    }
    return json.dumps(log, indent=2, ensure_ascii=False) + "\n"


def _run(report: Report, tool_version: str) -> dict[str, Any]:
    findings = sorted(report.findings, key=_finding_order)
    rules = _rules(report, findings)
    index = {rule.rule_id: i for i, rule in enumerate(rules)}
    failures = sorted(report.errors, key=lambda e: (_location_order(e.location), e.message))
    invocation: dict[str, Any] = {"executionSuccessful": not report.errors}
    if failures:
        invocation["toolExecutionNotifications"] = [_notification(e) for e in failures]
    return {
        "tool": {
            "driver": {
                "name": TOOL_NAME,
                "version": tool_version,
                "informationUri": INFORMATION_URI,
                "rules": [_rule(rule) for rule in rules],
            }
        },
        # GitHub rejects a file holding several runs of one tool in the same category, and
        # the upload action only fills in a category where a run has none: each layer needs
        # its own. The trailing '/' marks the whole id as the category (no per-run part).
        "automationDetails": {"id": f"{TOOL_NAME}/{report.kind}/"},
        "invocations": [invocation],
        "results": [_result(f, index[f.rule_id]) for f in findings],
        "properties": {
            "layer": report.kind,
            "filesScanned": report.files_scanned,
            "filesSkipped": report.files_skipped,
            "bytesScanned": report.bytes_scanned,
        },
    }


def _rules(report: Report, findings: Iterable[Finding]) -> list[Rule]:
    """Every rule the report declares, plus one built from the finding for any it does not."""
    rules = {rule.rule_id: rule for rule in report.rules.values()}
    for f in findings:
        if f.rule_id not in rules:
            rules[f.rule_id] = Rule(f.rule_id, f.severity, f.title, "", f.fix, f.controls)
    return [rules[rule_id] for rule_id in sorted(rules)]


def _rule(rule: Rule) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": rule.rule_id,
        "name": _rule_name(rule.rule_id),
        "shortDescription": {"text": rule.title},
    }
    if rule.rationale:
        out["fullDescription"] = {"text": rule.rationale}
    if rule.fix:
        out["help"] = {"text": rule.fix}
    out["defaultConfiguration"] = {"level": LEVELS[rule.severity]}
    out["properties"] = {
        # GitHub files a result as a security alert, and uses security-severity, only when
        # its rule carries the "security" tag; the control ids follow it.
        "tags": list(dict.fromkeys(("security", *rule.controls))),
        "security-severity": SECURITY_SEVERITY[rule.severity],
    }
    return out


def _rule_name(rule_id: str) -> str:
    """One-identifier rule name, as SARIF asks: MODEL-PICKLE-EXEC -> ModelPickleExec."""
    return "".join(part.capitalize() for part in re.split(r"[^0-9A-Za-z]+", rule_id) if part)


def _result(finding: Finding, rule_index: int) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "severity": finding.severity.label,
        "evidence": _jsonable(dict(finding.evidence)),
    }
    if finding.location.rows is not None:
        # SARIF has no notion of table rows; keep them so nothing the scanner said is lost.
        properties["rows"] = list(finding.location.rows)
    out: dict[str, Any] = {
        "ruleId": finding.rule_id,
        "ruleIndex": rule_index,
        "level": LEVELS[finding.severity],
        "message": {"text": finding.message or finding.title},
    }
    location = _location(finding.location)
    if location:
        out["locations"] = [location]
    out["partialFingerprints"] = {FINGERPRINT_KEY: fingerprint(finding)}
    out["properties"] = properties
    return out


def _notification(failure: ScanFailure) -> dict[str, Any]:
    out: dict[str, Any] = {"level": "error", "message": {"text": failure.message}}
    location = _location(failure.location)
    if location:
        out["locations"] = [location]
    return out


def artifact_uri(location: Location) -> str | None:
    """The artifactLocation.uri of a location: `path`, or `path!/member` inside archives."""
    if location.path is None and location.member is None:
        return None
    parts = [p for p in (location.path, location.member) if p]
    return quote("!/".join(parts), safe=_URI_SAFE)


def _location(location: Location) -> dict[str, Any]:
    """A SARIF location object; empty when the Location carries nothing SARIF can show.

    A location without a path gets no physicalLocation: SARIF allows that, but GitHub code
    scanning rejects a whole upload if any result lacks one, so scanners should always set
    a path (the lockfile of a package, the file of a git-history finding).
    """
    out: dict[str, Any] = {}
    uri = artifact_uri(location)
    if uri is not None:
        physical: dict[str, Any] = {"artifactLocation": {"uri": uri}}
        region: dict[str, Any] = {}
        if location.line is not None and location.line >= 1:
            region["startLine"] = location.line
        if location.offset is not None and location.offset >= 0:
            region["byteOffset"] = location.offset
        if region:
            physical["region"] = region
        out["physicalLocation"] = physical
    logical: list[dict[str, Any]] = []
    if location.column is not None:
        # A data column is a named field of the dataset's record type, which is what SARIF's
        # "member" (a data member of a type) describes. "property", "element" and
        # "attribute" are reserved for JSON/XML document structure, "variable" for program
        # variables.
        logical.append({"name": location.column, "kind": "member"})
    if location.package:
        # "module" is SARIF's kind for a unit of shipped code (a DLL, a Python module); a
        # distribution pinned as name==version is the closest fit in the well-known list.
        logical.append({"name": location.package, "kind": "module"})
    if location.commit:
        # None of the well-known kinds describes a revision; the spec allows another
        # string when none fits. run.versionControlProvenance is per run and needs a
        # repository URI we do not have, so the commit stays with the result.
        logical.append({"name": location.commit, "kind": "commit"})
    if logical:
        out["logicalLocations"] = logical
    return out


def fingerprint(finding: Finding) -> str:
    """A stable identity for code scanning: rule id, location and evidence, never the message.

    Messages are prose and get reworded; the evidence holds the facts that identify the
    finding, so two runs over the same input match even across a reworded message.
    """
    identity = {
        "rule": finding.rule_id,
        "location": finding.location.to_dict(),
        "evidence": _jsonable(dict(finding.evidence)),
    }
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _jsonable(value: Any) -> Any:
    """Evidence as plain JSON, the same on every run (sets sorted, bytes as hex).

    Evidence is a free-form dict; without this a set would hash in a random order and a
    bytes value or a NaN would make the whole log unrenderable or invalid JSON.
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        items = [_jsonable(v) for v in value]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value)


def _location_order(location: Location) -> tuple[Any, ...]:
    return (
        location.path or "",
        location.member or "",
        -1 if location.line is None else location.line,
        -1 if location.offset is None else location.offset,
        location.column or "",
        location.package or "",
        location.commit or "",
        location.rows or (),
    )


def _finding_order(finding: Finding) -> tuple[Any, ...]:
    """Worst first, then by place: a total order, so input order never shows in the output."""
    return (
        -finding.severity,
        finding.location.path or "",
        finding.location.member or "",
        finding.rule_id,
        _location_order(finding.location),
        finding.message,
        fingerprint(finding),
    )
