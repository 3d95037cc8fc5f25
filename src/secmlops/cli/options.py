"""The options every checking command shares (`--format`, `--output`, `--fail-on`, `--quiet`,
`--config`), declared once for typer. What they do is in `secmlops.cli.output`, which does not
load typer (so `secmlops.cli.fast` can use it)."""

from __future__ import annotations

import typer

FormatOpt = typer.Option(
    None, "--format", "-f", help="Output format: text (default on a terminal), json or sarif."
)
OutputOpt = typer.Option(
    None, "--output", "-o", help="Write the report to this file instead of stdout."
)
FailOnOpt = typer.Option(
    None,
    "--fail-on",
    help="Exit 1 when a finding is at or above this severity: info, low, medium, high (default), critical.",
)
QuietOpt = typer.Option(False, "--quiet", "-q", help="No progress bar and no summary on stderr.")
ConfigOpt = typer.Option(
    None, "--config", help="Configuration file (default: ./secmlops.toml or pyproject.toml)."
)
