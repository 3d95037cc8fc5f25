"""Baselines: a JSON file of accepted findings (by fingerprint) that later scans suppress.

The fingerprint is a hash of rule id and secret, so a baselined secret stays suppressed when lines
move or the file is renamed, and a new secret in the same place is still reported. The file holds
only fingerprints and redacted previews, never a secret.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from secmlops.errors import UsageError
from secmlops.findings import Finding

BASELINE_KIND = "secmlops-secrets-baseline"
BASELINE_VERSION = 1


def load_baseline(path: Path) -> frozenset[str]:
    """The fingerprints in a baseline file; a missing or malformed file is a usage error."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageError(
            f"cannot read baseline {path}: {exc.strerror or exc}",
            hint="create one with --write-baseline FILE",
        ) from exc
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise UsageError(
            f"baseline {path} is not valid JSON: {exc}",
            hint="regenerate it with --write-baseline FILE",
        ) from exc
    if not isinstance(doc, dict) or doc.get("kind") != BASELINE_KIND:
        raise UsageError(
            f"{path} is not a secmlops secrets baseline (kind must be {BASELINE_KIND!r})",
            hint="regenerate it with --write-baseline FILE",
        )
    if doc.get("version") != BASELINE_VERSION:
        raise UsageError(f"baseline {path} has unsupported version {doc.get('version')!r}")
    entries = doc.get("findings")
    if not isinstance(entries, list) or not all(
        isinstance(e, dict) and isinstance(e.get("fingerprint"), str) for e in entries
    ):
        raise UsageError(
            f"baseline {path}: 'findings' must be a list of objects with a fingerprint"
        )
    return frozenset(e["fingerprint"] for e in entries)


def baseline_document(findings: Iterable[Finding]) -> dict[str, Any]:
    """The baseline of these findings (one entry per fingerprint, first location kept)."""
    entries: dict[str, dict[str, Any]] = {}
    for f in findings:
        fp = f.evidence.get("fingerprint")
        if isinstance(fp, str) and fp not in entries:
            entries[fp] = {
                "fingerprint": fp,
                "rule_id": f.rule_id,
                "location": f.location.to_dict(),
                "secret": f.evidence.get("secret"),
            }
    ordered = sorted(entries.values(), key=lambda e: (e["rule_id"], e["fingerprint"]))
    return {"kind": BASELINE_KIND, "version": BASELINE_VERSION, "findings": ordered}


def write_baseline(path: Path, findings: Iterable[Finding]) -> int:
    """Write the baseline of `findings` to `path`; returns how many entries it holds."""
    doc = baseline_document(findings)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        raise UsageError(f"cannot write baseline {path}: {exc.strerror or exc}") from exc
    return len(doc["findings"])


def suppress(findings: list[Finding], known: frozenset[str]) -> tuple[list[Finding], int]:
    """Findings not in the baseline, and how many were suppressed."""
    kept = [f for f in findings if f.evidence.get("fingerprint") not in known]
    return kept, len(findings) - len(kept)
