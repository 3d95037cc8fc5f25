"""`scan workflows` and `scan infra`: CI workflow risks and infrastructure-as-code checks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import typer

from secmlops.cli.app import scan_app
from secmlops.cli.options import ConfigOpt, FailOnOpt, FormatOpt, OutputOpt, QuietOpt
from secmlops.cli.output import emit, gate, progress_bar, report_setup
from secmlops.findings import Report

ExplainOpt = typer.Option(False, "--explain", help="Text output: show how to fix each finding.")
Progress = Callable[[str, int, int], None] | None


def _run(
    label: str,
    check: Callable[[Progress], Report],
    fmt: str | None,
    output: Path | None,
    fail_on: str | None,
    quiet: bool,
    config: Path | None,
    explain: bool,
) -> NoReturn:
    """Both commands: configuration, the check under a progress bar, the report, the gate."""
    _, threshold, form = report_setup(config, fail_on, fmt, output)
    with progress_bar(label, quiet) as progress:
        report = check(progress)
    emit([report], form, output, explain=explain)
    raise typer.Exit(gate([report], threshold))


@scan_app.command("workflows")
def scan_workflows(
    paths: list[Path] = typer.Argument(
        None, help="Repositories (their .github/workflows/*.yml) or workflow files. Default: ."
    ),
    fmt: str | None = FormatOpt,
    output: Path | None = OutputOpt,
    fail_on: str | None = FailOnOpt,
    quiet: bool = QuietOpt,
    config: Path | None = ConfigOpt,
    explain: bool = ExplainOpt,
) -> None:
    """Check GitHub Actions workflows for risks of the Ultralytics kind.

    Privileged triggers that run pull-request code, attacker-controlled ${{ }} contexts in
    scripts, actions not pinned to a commit SHA, poisonable caches in release jobs, long-lived
    publishing tokens and over-broad token permissions. Malformed workflow YAML exits 2.
    """
    from secmlops.scan.deps.workflows import scan_workflows as check

    targets = paths or [Path()]
    _run(
        "workflows",
        lambda progress: check(targets, progress),
        fmt, output, fail_on, quiet, config, explain,
    )  # fmt: skip


@scan_app.command("infra")
def scan_infra(
    paths: list[Path] = typer.Argument(
        None,
        help="Folders (scanned recursively) or files: Kubernetes YAML, Dockerfiles, .tf. Default: .",
    ),
    fmt: str | None = FormatOpt,
    output: Path | None = OutputOpt,
    fail_on: str | None = FailOnOpt,
    quiet: bool = QuietOpt,
    config: Path | None = ConfigOpt,
    explain: bool = ExplainOpt,
    checkov: bool = typer.Option(
        False,
        "--checkov",
        help="Also run checkov (the optional iac extra) and add its failed checks as IAC-CHECKOV-* "
        "findings; exit 2 if it is not installed.",
    ),
) -> None:
    """Check Kubernetes manifests, Dockerfiles and Terraform with built-in rules for ML platforms.

    Files are recognised by content where possible (a Dockerfile by its first FROM, a manifest by
    apiVersion and kind). Files that are recognised but cannot be parsed exit 2.
    """
    from secmlops.scan.infra import scan_infra as check

    targets = paths or [Path()]
    _run(
        "infra",
        lambda progress: check(targets, progress, checkov=checkov),
        fmt, output, fail_on, quiet, config, explain,
    )  # fmt: skip
