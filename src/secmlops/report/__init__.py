"""Renderers: text (Rich), JSON and SARIF 2.1.0. `render` picks one by name."""

from __future__ import annotations

from collections.abc import Sequence

from secmlops import __version__
from secmlops.errors import UsageError
from secmlops.findings import Report

FORMATS = ("text", "json", "sarif")


def render(
    reports: Sequence[Report], fmt: str, *, color: bool = False, explain: bool = False
) -> str:
    """Render reports in one of FORMATS."""
    if fmt == "json":
        from secmlops.report.json_report import render_json

        return render_json(reports, __version__)
    if fmt == "sarif":
        from secmlops.report.sarif import render_sarif

        return render_sarif(reports, __version__)
    if fmt == "text":
        from secmlops.report.text import render_text

        return render_text(reports, color=color, explain=explain)
    raise UsageError(f"unknown format {fmt!r}", hint=f"use one of: {', '.join(FORMATS)}")
