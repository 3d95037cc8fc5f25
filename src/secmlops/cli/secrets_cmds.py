"""`secmlops scan secrets`: credentials in files, notebooks and git history."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.console import Console

from secmlops.cli.app import scan_app
from secmlops.cli.options import ConfigOpt, FailOnOpt, FormatOpt, OutputOpt, QuietOpt
from secmlops.cli.output import emit, gate, progress_bar, report_setup


@scan_app.command("secrets")
def scan_secrets_cmd(
    paths: list[Path] = typer.Argument(
        None, help="Files or folders (scanned recursively; default: the current folder)."
    ),
    fmt: str | None = FormatOpt,
    output: Path | None = OutputOpt,
    fail_on: str | None = FailOnOpt,
    quiet: bool = QuietOpt,
    config: Path | None = ConfigOpt,
    history: bool = typer.Option(
        False, "--history", help="Also scan every commit of the git repository (all refs)."
    ),
    baseline: Path | None = typer.Option(
        None, "--baseline", help="Suppress the findings recorded in this baseline file."
    ),
    write_baseline: Path | None = typer.Option(
        None,
        "--write-baseline",
        help="Record the current findings (fingerprints only) as a baseline file.",
    ),
    exclude: list[str] = typer.Option(
        [], "--exclude", help="Skip paths matching this glob (repeatable)."
    ),
    max_file_mb: float = typer.Option(
        50.0, "--max-file-mb", min=0.001, help="Files larger than this are reported, not read."
    ),
    jobs: int = typer.Option(
        0,
        "--jobs",
        "-j",
        min=0,
        help="Worker processes for large trees (0: one per core, 1: no workers).",
    ),
    explain: bool = typer.Option(
        False, "--explain", help="Text output: show how to fix each finding."
    ),
) -> None:
    """Find credentials: cloud, code hosting, AI APIs, payments, private keys, tokens, passwords.

    Tokens are checked by checksum or decoding where the format allows; examples are ignored.

    Secrets are never printed: findings show the first characters, the length, a fingerprint.
    """
    from secmlops.scan.secrets import (
        SecretScanSettings,
        load_baseline,
        scan_paths,
    )
    from secmlops.scan.secrets import write_baseline as save_baseline

    _, threshold, form = report_setup(config, fail_on, fmt, output)
    known = load_baseline(baseline) if baseline is not None else frozenset()
    settings = SecretScanSettings(
        max_file_bytes=int(max_file_mb * 2**20),
        exclude=tuple(exclude),
    )
    targets = list(paths) if paths else [Path(".")]
    with progress_bar("scanning for secrets", quiet) as progress:
        report = scan_paths(
            targets,
            settings,
            progress,
            history=history,
            baseline=known,
            jobs=jobs or (os.cpu_count() or 1),
        )
    if write_baseline is not None:
        count = save_baseline(write_baseline, report.findings)
        if not quiet:
            Console(stderr=True).print(f"wrote baseline {write_baseline} ({count} entries)")
    emit([report], form, output, explain=explain)
    raise typer.Exit(gate([report], threshold))
