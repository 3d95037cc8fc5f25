"""Human-readable output with Rich: one block per finding, worst first."""

from __future__ import annotations

import io
from collections.abc import Sequence

from rich.console import Console
from rich.text import Text

from secmlops.findings import Report, Severity

STYLES = {
    Severity.CRITICAL: "bold white on red",
    Severity.HIGH: "bold red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.INFO: "dim",
}


def render_text(
    reports: Sequence[Report], *, color: bool = False, explain: bool = False, width: int = 100
) -> str:
    buf = io.StringIO()
    console = Console(
        file=buf,
        force_terminal=color,
        no_color=not color,
        width=width,
        highlight=False,
        soft_wrap=True,
    )
    for report in reports:
        for f in report.sorted_findings():
            line = Text()
            line.append(f" {f.severity.label.upper():8} ", style=STYLES[f.severity])
            line.append(f" {f.rule_id}  ", style="bold")
            line.append(f.location.display())
            console.print(line)
            console.print(f"    {f.message}")
            if explain and f.fix:
                console.print(Text(f"    fix: {f.fix}", style="green"))
        for error in report.errors:
            console.print(
                Text(f" ERROR     {error.location.display()}: {error.message}", style="bold red")
            )
        counts = ", ".join(f"{n} {label}" for label, n in reversed(report.counts().items()) if n)
        console.print(
            Text(
                f"{report.kind}: {report.files_scanned} files scanned, {report.files_skipped} skipped"
                f"{' (not model files)' if report.kind == 'models' else ''}; "
                f"{counts or 'no findings'}; {len(report.errors)} errors; "
                f"{report.seconds:.2f}s",
                style="bold",
            )
        )
    return buf.getvalue()
