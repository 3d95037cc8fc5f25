"""`secmlops` entry point."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import typer

from secmlops.cli.app import app, scan_app
from secmlops.cli.options import ConfigOpt, FailOnOpt, FormatOpt, OutputOpt, QuietOpt
from secmlops.cli.output import choose_format, emit, gate, print_error, progress_bar, report_setup
from secmlops.errors import Error
from secmlops.findings import Report


@scan_app.command("models")
def scan_models(
    paths: list[Path] = typer.Argument(..., help="Model files or folders (scanned recursively)."),
    fmt: str | None = FormatOpt,
    output: Path | None = OutputOpt,
    fail_on: str | None = FailOnOpt,
    quiet: bool = QuietOpt,
    config: Path | None = ConfigOpt,
    allow: list[str] = typer.Option(
        [],
        "--allow",
        help='Also allow a global, as "module.name:use" (use: ref, new, call). Repeatable.',
    ),
    follow_symlinks: bool = typer.Option(False, "--follow-symlinks", help="Follow symbolic links."),
    explain: bool = typer.Option(
        False, "--explain", help="Text output: show how to fix each finding."
    ),
    jobs: int = typer.Option(
        0,
        "--jobs",
        "-j",
        min=0,
        help="Worker processes for folders of many files (0: one per core).",
    ),
) -> None:
    """Scan model files of every format for code execution and scanner evasions.

    The format is decided from the bytes, never from the file name; pickles are analysed without
    running them; archives are opened recursively within size, ratio and depth limits.
    """
    # (An ordinary command line never gets here: secmlops.cli.entry runs it without typer.)
    from secmlops.cli.scan_models import ScanModelsArgs, run

    raise typer.Exit(
        run(
            ScanModelsArgs(
                list(paths), fmt, output, fail_on, quiet, config, list(allow), follow_symlinks,
                explain, jobs,
            )
        )
    )  # fmt: skip


LAYERS = ("models", "deps", "workflows", "secrets", "infra", "data")


@scan_app.command("all")
def scan_all(
    paths: list[Path] = typer.Argument(None, help="Repository folders or files (default: .)."),
    fmt: str | None = FormatOpt,
    output: Path | None = OutputOpt,
    fail_on: str | None = FailOnOpt,
    quiet: bool = QuietOpt,
    config: Path | None = ConfigOpt,
    layers: str = typer.Option(
        ",".join(LAYERS), "--layers", help="Comma-separated layers to run (default: all)."
    ),
    db: Path | None = typer.Option(
        None, "--db", help="Offline OSV database folder for the deps layer (default: the cache)."
    ),
    history: bool = typer.Option(False, "--history", help="Secrets: also scan every git commit."),
) -> None:
    """Run every layer over a repository and write one report (one SARIF run per layer).

    `secmlops scan PATH` is the same command. A layer that cannot complete (e.g. no vulnerability
    database) makes the exit code 2: nothing is reported clean that was not checked.
    """
    from secmlops.errors import UsageError

    chosen = [layer.strip() for layer in layers.split(",") if layer.strip()]
    unknown = sorted(set(chosen) - set(LAYERS))
    if unknown:
        raise UsageError(f"unknown layer {unknown[0]!r}", hint=f"layers: {', '.join(LAYERS)}")
    targets = paths or [Path(".")]
    for target in targets:
        if not target.exists():
            raise UsageError(f"no such file or folder: {target}")
    cfg, threshold, form = report_setup(config, fail_on, fmt, output)
    reports = []
    with progress_bar("scanning", quiet) as progress:
        for layer in chosen:
            reports.append(_run_layer(layer, targets, cfg, progress, db=db, history=history))
    emit(reports, form, output)
    raise typer.Exit(gate(reports, threshold))


def _run_layer(
    layer: str,
    targets: list[Path],
    cfg: Any,
    progress: Any,
    *,
    db: Path | None,
    history: bool,
) -> Report:
    """One layer's Report; imports stay inside so `scan models` never loads pandas."""
    if layer == "models":
        from secmlops.cli.scan_models import model_settings
        from secmlops.scan.models import scan_paths

        settings = model_settings(cfg, [], follow_symlinks=False)
        return scan_paths(targets, settings, progress, jobs=os.cpu_count() or 1)
    if layer == "deps":
        from secmlops.scan.deps.engine import DepsSettings, scan_deps

        return scan_deps(targets, DepsSettings(db_dir=db), progress).report
    if layer == "workflows":
        from secmlops.scan.deps.workflows import scan_workflows

        return scan_workflows(targets, progress)
    if layer == "secrets":
        from secmlops.scan.secrets import scan_paths as scan_secret_paths

        return scan_secret_paths(targets, progress=progress, history=history)
    if layer == "infra":
        from secmlops.scan.infra import scan_infra

        return scan_infra(targets, progress)
    from secmlops.scan.data.engine import DataScanSettings, scan_data
    from secmlops.scan.data.tables import TABLE_SUFFIXES, table_files

    # In a repository, only unambiguous table files are data (requirements.txt and package.json
    # are not); without any, this layer has nothing to check (not an error). Files that look like
    # tables but cannot be read still are errors.
    strict = TABLE_SUFFIXES - {".txt", ".json"}
    with_tables = [
        f for t in targets
        for f in (table_files(t) if t.is_dir() else [t] if t.is_file() else [])
        if f.suffix.lower() in strict
    ]  # fmt: skip
    if not with_tables:
        return Report(kind="data")
    return scan_data(with_tables, DataScanSettings(), progress)


@app.command("convert")
def convert(
    path: Path = typer.Argument(..., help="A PyTorch checkpoint (zip or legacy format)."),
    to: str = typer.Option("safetensors", "--to", help="Target format (only safetensors)."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Destination (default: PATH with .safetensors)."
    ),
    max_gb: float = typer.Option(
        64.0, "--max-gb", help="Refuse checkpoints whose tensors exceed this size."
    ),
    quiet: bool = QuietOpt,
) -> None:
    """Convert a PyTorch checkpoint to safetensors without torch and without running its pickle.

    Files the scanner flags (high or critical, or unscannable) are refused with the findings.
    """
    from secmlops.errors import UsageError

    if to != "safetensors":
        raise UsageError(f"cannot convert to {to!r}", hint="only --to safetensors is supported")
    from secmlops.scan.models.convert import convert_to_safetensors

    out = output or path.with_suffix(".safetensors")
    result = convert_to_safetensors(path, out, max_bytes=int(max_gb * 2**30))
    from rich.console import Console

    err = Console(stderr=True, highlight=False)
    for warning in result.warnings:  # shown even with --quiet: each says what was changed
        err.print(f"warning: {warning}", soft_wrap=True, markup=False)
    if not quiet:
        err.print(
            f"wrote {out} ({len(result.tensor_names)} tensors, {result.bytes_written} bytes, "
            f"{result.seconds:.2f}s)"
        )
    raise typer.Exit(0)


@app.command("demo")
def demo(
    keep: Path | None = typer.Option(
        None, "--keep", help="Write the example project here and keep it."
    ),
    models: bool = typer.Option(
        False, "--models", help="Instead: scan a folder of real and trojaned model files."
    ),
    fmt: str | None = FormatOpt,
) -> None:
    """Run the example pipeline end to end (data checks, training, signing, BOM, gates, registry,
    auditor's report), then replay attacks against it and show each one stopped. Exit 0 when
    the clean run passed and every attack was blocked."""
    if models:
        from secmlops.cli.demo import run_demo

        raise typer.Exit(run_demo(keep, choose_format(fmt, None)))
    import tempfile

    from rich.console import Console

    from secmlops.errors import UsageError
    from secmlops.pipeline.demo import run_demo as run_pipeline_demo

    console = Console(highlight=False, soft_wrap=True)
    if keep is not None:
        if keep.exists() and any(keep.iterdir()):
            raise UsageError(f"{keep} is not empty", hint="give --keep a new or empty folder")
        raise typer.Exit(run_pipeline_demo(keep, console.print))
    with tempfile.TemporaryDirectory(prefix="secmlops-demo-") as tmp:
        raise typer.Exit(run_pipeline_demo(Path(tmp), console.print))


@app.command("rules")
def list_rules(
    markdown: bool = typer.Option(False, "--markdown", help="Print the docs/rules.md table."),
) -> None:
    """List every rule id with its default severity and title."""
    from secmlops.report.rules_doc import rules_markdown, rules_table

    typer.echo(rules_markdown() if markdown else rules_table(), nl=False)


def main() -> None:
    """Console entry point: user errors are one line plus a hint, exit code 2."""
    try:
        app()  # standalone: usage errors exit 2 with a usage line, Exit carries our codes
    except Error as exc:
        print_error(exc)
        sys.exit(2)
