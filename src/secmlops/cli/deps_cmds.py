"""`secmlops scan deps` and `secmlops db update|status`: dependencies and the offline OSV database."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console

from secmlops.cli.app import db_app, scan_app
from secmlops.cli.options import ConfigOpt, FailOnOpt, FormatOpt, OutputOpt, QuietOpt
from secmlops.cli.output import emit, gate, progress_bar, report_setup
from secmlops.findings import Severity

DbOpt = typer.Option(
    None, "--db", help="Database folder (default: $SECMLOPS_DB or ~/.cache/secmlops/osv)."
)


@scan_app.command("deps")
def scan_deps_cmd(
    paths: list[Path] = typer.Argument(
        None, help="Dependency files or project folders (default: the current folder)."
    ),
    fmt: str | None = FormatOpt,
    output: Path | None = OutputOpt,
    fail_on: str | None = FailOnOpt,
    quiet: bool = QuietOpt,
    config: Path | None = ConfigOpt,
    env: bool = typer.Option(False, "--env", help="Also check the running Python environment."),
    db: Path | None = DbOpt,
    max_db_age: float = typer.Option(
        7.0, "--max-db-age", min=0, help="Days after which the database counts as stale."
    ),
    stale_severity: str = typer.Option(
        "high", "--stale-severity", help="Severity of the stale-database finding."
    ),
    private_packages: Path | None = typer.Option(
        None, "--private-packages", help="File listing internal package names, one a line."
    ),
    private_index: Path | None = typer.Option(
        None,
        "--private-index",
        help="Local PEP 503 simple-index folder whose project names are internal.",
    ),
    fix: bool = typer.Option(
        False, "--fix", help="Print the minimal upgrade set as a unified diff (never applied)."
    ),
    explain: bool = typer.Option(
        False, "--explain", help="Text output: show how to fix each finding."
    ),
) -> None:
    """Check requirements, pyproject and lockfiles for vulnerable, malicious, typosquatted,
    unpinned and unhashed packages and risky index settings, offline.

    Vulnerabilities come from the OSV database imported with `secmlops db update`; a missing
    database fails the scan (exit 2), a stale one is a finding.
    """
    from secmlops.scan.deps.engine import DepsSettings, scan_deps
    from secmlops.scan.deps.fix import upgrade_diff
    from secmlops.scan.deps.malicious import load_private_names

    _, threshold, form = report_setup(config, fail_on, fmt, output)
    targets = list(paths) if paths else ([] if env else [Path.cwd()])
    settings = DepsSettings(
        db_dir=db,
        max_db_age_days=max_db_age,
        stale_severity=Severity.parse(stale_severity),
        environment=env,
        private_names=load_private_names(private_packages, private_index),
    )
    with progress_bar("scanning", quiet) as progress:
        result = scan_deps(targets, settings, progress)
    emit([result.report], form, output, explain=explain)
    if fix:
        diff = upgrade_diff(result.upgrades) or "# no upgrade proposed\n"
        # The diff must not corrupt a JSON/SARIF document written to stdout.
        stream = sys.stdout if form == "text" and output is None else sys.stderr
        stream.write(diff)
    raise typer.Exit(gate([result.report], threshold))


@db_app.command("update")
def db_update(
    source: Path | None = typer.Option(
        None, "--from", help="Import this OSV zip (PyPI all.zip) instead of downloading it."
    ),
    db: Path | None = DbOpt,
    url: str = typer.Option(
        "https://osv-vulnerabilities.storage.googleapis.com/PyPI/all.zip",
        "--url",
        help="Where to download the OSV PyPI dump from.",
    ),
    timeout: float = typer.Option(15.0, "--timeout", min=0.1, help="Network timeout (seconds)."),
    quiet: bool = QuietOpt,
) -> None:
    """Import (--from) or download the OSV PyPI dump into the offline database, atomically."""
    from secmlops.scan.deps.osv import fetch, import_zip

    info = import_zip(source, db) if source is not None else fetch(db, url, timeout)
    if not quiet:
        Console(stderr=True, highlight=False).print(
            f"imported {info.records} records for {info.packages} packages into {info.path} "
            f"(source sha256 {info.source_sha256[:16]}…)"
        )
    raise typer.Exit(0)


@db_app.command("status")
def db_status(db: Path | None = DbOpt) -> None:
    """Show where the database is, when it was imported and from what."""
    from secmlops.scan.deps.osv import OsvDatabase

    handle = OsvDatabase(db)
    info = handle.info
    handle.close()
    typer.echo(
        f"path:          {info.path}\n"
        f"imported at:   {info.imported_at.isoformat()} ({info.age_days():.1f} days ago)\n"
        f"source:        {info.source}\n"
        f"source sha256: {info.source_sha256}\n"
        f"records:       {info.records} ({info.packages} packages)"
    )
    raise typer.Exit(0)
