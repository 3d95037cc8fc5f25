"""The stable JSON report (documented in docs/json-report.md)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from secmlops.findings import Report, Severity


def report_dict(reports: Sequence[Report], version: str) -> dict[str, Any]:
    findings = [f.to_dict() for r in reports for f in r.sorted_findings()]
    errors = [e.to_dict() for r in reports for e in r.errors]
    counts = {s.label: 0 for s in Severity}
    for r in reports:
        for label, n in r.counts().items():
            counts[label] += n
    return {
        "tool": "secmlops",
        "version": version,
        "findings": findings,
        "errors": errors,
        "summary": {
            "layers": [r.kind for r in reports],
            "counts": counts,
            "findings": len(findings),
            "errors": len(errors),
            "files_scanned": sum(r.files_scanned for r in reports),
            "files_skipped": sum(r.files_skipped for r in reports),
            "bytes_scanned": sum(r.bytes_scanned for r in reports),
            "seconds": round(sum(r.seconds for r in reports), 3),
        },
    }


def render_json(reports: Sequence[Report], version: str) -> str:
    return json.dumps(report_dict(reports, version), indent=2, sort_keys=False) + "\n"
