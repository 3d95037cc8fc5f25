"""Data commands: `scan data`, and `data infer-schema`, `data snapshot`, `data verify`."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console

from secmlops.cli.app import data_app, scan_app
from secmlops.cli.options import ConfigOpt, FailOnOpt, FormatOpt, OutputOpt, QuietOpt
from secmlops.cli.output import emit, gate, progress_bar, report_setup
from secmlops.errors import UsageError

DEFAULT_STORE = Path(".secmlops/store")

EncodingOpt = typer.Option(
    None, "--encoding", help="Text encoding of CSV/JSON Lines files (default: UTF-8, BOM allowed)."
)
MaxColumnsOpt = typer.Option(
    10_000, "--max-columns", min=1, help="Refuse tables with more columns (header bombs)."
)
MaxRowsOpt = typer.Option(
    None,
    "--max-rows",
    min=1,
    help="Read at most this many rows per file (default 50,000,000); more is a DATA-READ-PARTIAL finding.",
)
StoreOpt = typer.Option(
    DEFAULT_STORE,
    "--store",
    help="Content-addressed store for manifests (default .secmlops/store).",
)


def _say(quiet: bool, text: str) -> None:
    if not quiet:
        Console(stderr=True, highlight=False).print(text)


@scan_app.command("data")
def scan_data_cmd(
    paths: list[Path] = typer.Argument(..., help="Table files or folders of them."),
    schema: Path | None = typer.Option(None, "--schema", help="YAML schema to validate against."),
    reference: Path | None = typer.Option(
        None, "--reference", help="Trusted reference table for checks that compare."
    ),
    label: str | None = typer.Option(
        None, "--label", help="Label column: enables the poisoning checks."
    ),
    no_pii: bool = typer.Option(False, "--no-pii", help="Skip the personal-data checks."),
    encoding: str | None = EncodingOpt,
    max_columns: int = MaxColumnsOpt,
    max_rows: int | None = MaxRowsOpt,
    fmt: str | None = FormatOpt,
    output: Path | None = OutputOpt,
    fail_on: str | None = FailOnOpt,
    quiet: bool = QuietOpt,
    config: Path | None = ConfigOpt,
) -> None:
    """Check CSV, Parquet, JSON Lines and Arrow tables: schema, PII and poisoning.

    The format is decided from the bytes. A file that cannot be read is an error (exit 2).
    """
    from secmlops.scan.data.engine import DataScanSettings, scan_data
    from secmlops.scan.data.schema import load_schema
    from secmlops.scan.data.tables import read_table

    cfg, threshold, form = report_setup(config, fail_on, fmt, output)
    settings = DataScanSettings(
        schema=load_schema(schema) if schema is not None else None,
        reference=(
            read_table(reference, encoding=encoding, max_columns=max_columns)
            if reference is not None
            else None
        ),
        label=label,
        pii=not no_pii,
        encoding=encoding,
        max_columns=max_columns,
        max_rows=max_rows,
        layers=cfg.layers,  # [pii] and [poisoning] thresholds of secmlops.toml
    )
    with progress_bar("checking data", quiet) as progress:
        report = scan_data(paths, settings, progress)
    emit([report], form, output)
    raise typer.Exit(gate([report], threshold))


@data_app.command("infer-schema")
def infer_schema_cmd(
    path: Path = typer.Argument(..., help="A trusted table file or folder of them."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write the schema here (default: stdout)."
    ),
    tolerance: float = typer.Option(
        0.1, "--tolerance", min=0.0, help="Mean/std/quantile ranges: +/- this many std devs."
    ),
    statistics: bool = typer.Option(
        True, "--statistics/--no-statistics", help="Write statistical expectations."
    ),
    encoding: str | None = EncodingOpt,
    max_columns: int = MaxColumnsOpt,
    max_rows: int | None = MaxRowsOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Write a starting schema (YAML) from a trusted data set; review it before gating on it."""
    import pandas as pd

    from secmlops.scan.data.infer import infer_schema
    from secmlops.scan.data.tables import iter_tables

    frames = [
        frame
        for _, frame in iter_tables(
            path, encoding=encoding, max_columns=max_columns, max_rows=max_rows
        )
    ]
    if not frames:
        raise UsageError(f"{path}: no table files found")
    frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    schema = infer_schema(
        frame,
        tolerance=tolerance,
        statistics=statistics,
        description=f"inferred from {path.name} ({len(frame)} rows)",
    )
    text = schema.to_yaml()
    if output is None:
        typer.echo(text, nl=False)
    else:
        _write(output, text.encode())
        _say(quiet, f"wrote {output} ({len(schema.columns)} columns)")
    raise typer.Exit(0)


def _write(output: Path, data: bytes) -> None:
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        tmp = output.with_name(output.name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(output)
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror or exc}") from exc


@data_app.command("snapshot")
def snapshot_cmd(
    path: Path = typer.Argument(..., help="A data file or folder."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Also write the manifest to this file."
    ),
    store: Path = StoreOpt,
    no_store: bool = typer.Option(False, "--no-store", help="Do not write into the store."),
    chunk_mib: int = typer.Option(
        64, "--chunk-mib", min=1, help="Chunk size for per-chunk digests of large files."
    ),
    quiet: bool = QuietOpt,
) -> None:
    """Record the SHA-256 manifest of a data set; prints the data set digest.

    Symbolic links and special files are refused. The manifest is canonical JSON, so the same
    bytes give the same digest on every machine.
    """
    from secmlops.scan.data.integrity import snapshot
    from secmlops.store.artifacts import LocalStore

    started = time.perf_counter()
    manifest = snapshot(path, chunk_size=chunk_mib * 2**20)
    data = manifest.to_bytes()
    if output is not None:
        _write(output, data)
    if no_store:
        where = ""
    else:
        stored = LocalStore(store).put_bytes(data)
        where = f", stored in {store / 'sha256' / stored[:2] / stored}"
    seconds = time.perf_counter() - started
    _say(
        quiet,
        f"{len(manifest.files)} files, {manifest.total_bytes} bytes, {seconds:.2f}s{where}",
    )
    typer.echo(f"sha256:{manifest.digest}")
    raise typer.Exit(0)


@data_app.command("verify")
def verify_cmd(
    path: Path = typer.Argument(..., help="The data file or folder to verify."),
    manifest: Path | None = typer.Option(None, "--manifest", "-m", help="A manifest file."),
    digest: str | None = typer.Option(
        None, "--digest", "-d", help="The data set digest (sha256:...); with --manifest, pins it."
    ),
    store: Path = StoreOpt,
    fmt: str | None = FormatOpt,
    output: Path | None = OutputOpt,
    fail_on: str | None = FailOnOpt,
    quiet: bool = QuietOpt,
    config: Path | None = ConfigOpt,
) -> None:
    """Prove that a data set is byte-identical to a snapshot; name what was added, removed or changed."""
    from secmlops.findings import Report
    from secmlops.scan.data import rules
    from secmlops.scan.data.integrity import parse_manifest, verify
    from secmlops.store.artifacts import LocalStore

    _, threshold, form = report_setup(config, fail_on, fmt, output)
    if manifest is not None:
        try:
            data = manifest.read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot read {manifest}: {exc.strerror or exc}") from exc
    elif digest is not None:
        data = LocalStore(store).read_bytes(digest)
    else:
        raise UsageError("give --manifest FILE or --digest DIGEST")

    started = time.perf_counter()
    expected = parse_manifest(data, digest)
    report = Report(kind="data", rules=dict(rules.ALL))
    report.extend(verify(path, expected))
    report.files_scanned = len(expected.files)
    report.bytes_scanned = expected.total_bytes
    report.seconds = time.perf_counter() - started
    emit([report], form, output)
    if not report.findings:
        _say(quiet, f"{path}: identical to sha256:{expected.digest}")
    raise typer.Exit(gate([report], threshold))
