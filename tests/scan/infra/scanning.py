"""What the infra and workflow rule tests share: write a file, scan, pick a rule's findings."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path

from secmlops.findings import Finding, Report


def scan_text(
    check: Callable[[Sequence[Path]], Report], root: Path, relative: str, text: str
) -> Report:
    """Write `text` (dedented) to root/relative and run `check` over root."""
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return check([root])


def hits(report: Report, rule_id: str) -> list[Finding]:
    """The findings of one rule; the report must have no failures."""
    assert not report.errors, report.errors
    return [f for f in report.findings if f.rule_id == rule_id]
