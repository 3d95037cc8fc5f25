"""Secrets in files, notebooks and git history: credential rules, checksums, entropy, baselines.

Public surface: `scan_text` (any string, reused by other layers), `scan_paths` (files, folders and
optionally git history, as a Report), `SecretScanSettings`, and the baseline functions.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

from secmlops.findings import Report
from secmlops.scan.secrets import rules
from secmlops.scan.secrets.baseline import load_baseline, suppress, write_baseline
from secmlops.scan.secrets.detectors import fingerprint, redact, scan_text
from secmlops.scan.secrets.files import SecretScanSettings, scan_tree

__all__ = [
    "SecretScanSettings",
    "fingerprint",
    "load_baseline",
    "redact",
    "scan_paths",
    "scan_text",
    "write_baseline",
]


def scan_paths(
    paths: Sequence[Path | str],
    settings: SecretScanSettings | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    *,
    history: bool = False,
    baseline: frozenset[str] = frozenset(),
    jobs: int = 1,
) -> Report:
    """Scan files and folders (and with `history` every commit of the git repositories named).

    Findings whose fingerprint is in `baseline` are left out; `report.files_skipped` counts
    binary, linked and oversized files (oversized ones are also a SECRET-FILE-NOT-SCANNED finding).
    """
    settings = settings or SecretScanSettings()
    report = Report(kind="secrets", rules=dict(rules.ALL))
    started = time.perf_counter()
    targets = [Path(p) for p in paths]
    scan_tree(targets, settings, report, progress, jobs=jobs)
    if history:
        from secmlops.scan.secrets.history import scan_history

        for target in targets:
            scan_history(target if target.is_dir() else target.parent, report, progress)
    if baseline:
        report.findings, _ = suppress(report.findings, baseline)
    report.findings.sort(
        key=lambda f: (f.location.path or "", f.location.commit or "", f.location.line or 0)
    )
    report.errors.sort(key=lambda e: e.location.path or "")
    report.seconds = time.perf_counter() - started
    return report
