"""Small OSV records and zip dumps built in the tests (nothing is downloaded)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any


def record(
    vuln_id: str,
    package: str,
    events: list[dict[str, str]] | None = None,
    *,
    versions: list[str] | None = None,
    aliases: list[str] | None = None,
    severity: list[dict[str, str]] | None = None,
    database_severity: str | None = None,
    withdrawn: str | None = None,
    summary: str = "",
) -> dict[str, Any]:
    affected: dict[str, Any] = {"package": {"ecosystem": "PyPI", "name": package}}
    if events is not None:
        affected["ranges"] = [{"type": "ECOSYSTEM", "events": events}]
    if versions is not None:
        affected["versions"] = versions
    out: dict[str, Any] = {
        "schema_version": "1.6.0",
        "id": vuln_id,
        "modified": "2024-01-01T00:00:00Z",
        "published": "2024-01-01T00:00:00Z",
        "aliases": aliases or [],
        "summary": summary or f"{vuln_id} in {package}",
        "affected": [affected],
    }
    if severity:
        out["severity"] = severity
    if database_severity:
        out["database_specific"] = {"severity": database_severity}
    if withdrawn:
        out["withdrawn"] = withdrawn
    return out


def write_zip(
    path: Path, records: list[dict[str, Any]], extra: dict[str, bytes] | None = None
) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for r in records:
            z.writestr(f"{r['id']}.json", json.dumps(r))
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return path


STANDARD = [
    record(
        "PYSEC-2023-74",
        "requests",
        [{"introduced": "2.3.0"}, {"fixed": "2.31.0"}],
        aliases=["CVE-2023-32681", "GHSA-j8r2-6x86-q33q"],
        summary="Proxy-Authorization header leak",
    ),
    record(
        "GHSA-j8r2-6x86-q33q",
        "requests",
        [{"introduced": "2.3.0"}, {"fixed": "2.31.0"}],
        aliases=["CVE-2023-32681"],
        severity=[{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:C/C:H/I:N/A:N"}],
    ),
    record(
        "GHSA-9wx4-h78v-vm56",
        "requests",
        [{"introduced": "0"}, {"fixed": "2.32.0"}],
        aliases=["CVE-2024-35195"],
        database_severity="MODERATE",
    ),
    record(
        "PYSEC-2021-1",
        "jinja2",
        [{"introduced": "0"}, {"fixed": "2.11.3"}],
        severity=[{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"}],
    ),
    record(
        "MAL-2022-7426",
        "torchtriton",
        versions=["3.0.0"],
        summary="Malicious code in torchtriton (PyPI)",
    ),
    record("MAL-2024-1", "evilpkg", [{"introduced": "0"}], summary="Malicious code in evilpkg"),
    record(
        "PYSEC-2020-9",
        "oldpkg",
        [{"introduced": "0"}, {"fixed": "1.0"}],
        withdrawn="2021-01-01T00:00:00Z",
    ),
]
