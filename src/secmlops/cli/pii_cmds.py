"""PII commands: `scan pii`, `data anonymize`, `data detokenize`."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from secmlops.cli.app import data_app, scan_app
from secmlops.cli.data_cmds import EncodingOpt
from secmlops.cli.options import ConfigOpt, FailOnOpt, FormatOpt, OutputOpt, QuietOpt
from secmlops.cli.output import emit, gate, progress_bar, report_setup
from secmlops.config import load_config
from secmlops.errors import DataError, ScanError, UsageError
from secmlops.findings import Location, Report, ScanFailure

if TYPE_CHECKING:
    from secmlops.config import Config
    from secmlops.scan.data.pii import PiiSettings

REGION_ENV = "SECMLOPS_PII_REGION"

RegionOpt = typer.Option(
    None,
    "--region",
    help=f"Region for phone numbers without +country (default ${REGION_ENV} or US).",
)


def _settings(region: str | None, cfg: Config) -> PiiSettings:
    """[pii] of secmlops.toml, the region from the flag, then $SECMLOPS_PII_REGION, then the file."""
    import phonenumbers

    from secmlops.scan.data.pii import PiiSettings

    configured = cfg.layers.get("pii", {}).get("region")
    code = str(region or os.environ.get(REGION_ENV) or configured or "US").upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise UsageError(f"unknown phone region {code!r}", hint="use a two-letter code such as US")
    return cfg.layer_settings("pii", PiiSettings, region=code)


def _say(quiet: bool, text: str) -> None:
    if not quiet:
        Console(stderr=True, highlight=False).print(text)


@scan_app.command("pii")
def scan_pii(
    paths: list[Path] = typer.Argument(
        ..., help="Table files (CSV, Parquet, JSONL, Arrow) or folders."
    ),
    region: str | None = RegionOpt,
    sample_rows: int | None = typer.Option(
        None, "--sample-rows", min=1, help="Scan a random sample of this many rows per table."
    ),
    encoding: str | None = EncodingOpt,
    fmt: str | None = FormatOpt,
    output: Path | None = OutputOpt,
    fail_on: str | None = FailOnOpt,
    quiet: bool = QuietOpt,
    config: Path | None = ConfigOpt,
    explain: bool = typer.Option(False, "--explain", help="Text output: show how to fix."),
) -> None:
    """Find personal data in tables: column verdicts (PII-COLUMN) and cell findings.

    E-mail, phone, payment card, SSN, IBAN, IP, date of birth (in context), passport / licence
    numbers (in context) and credentials. Person names and addresses need an NER model: they
    are only reported (info) when a column header names them.
    """
    from secmlops.scan.data import pii_rules
    from secmlops.scan.data.pii import scan_frame_pii
    from secmlops.scan.data.tables import load_table, table_files

    cfg, threshold, form = report_setup(config, fail_on, fmt, output)
    settings = _settings(region, cfg)
    for path in paths:
        if not path.exists():
            raise UsageError(f"{path}: no such file or folder")
    report = Report(kind="pii", rules=dict(pii_rules.ALL))
    started = time.perf_counter()
    with progress_bar("scanning", quiet) as progress:
        files: list[Path] = []
        for path in paths:
            try:
                files.extend(table_files(path))
            except DataError as exc:
                report.errors.append(ScanFailure(Location(path=str(path)), exc.message))
        for done, file in enumerate(files, 1):
            where = Location(path=str(file))
            try:
                table = load_table(file, encoding=encoding)
                report.extend(
                    scan_frame_pii(table.frame, where, sample_rows=sample_rows, settings=settings)
                )
            except (DataError, ScanError) as exc:
                report.errors.append(ScanFailure(where, exc.message))
                continue
            if table.truncated:
                report.errors.append(
                    ScanFailure(where, f"only the first {table.rows:,} rows were read and scanned")
                )
            report.files_scanned += 1
            report.bytes_scanned += file.stat().st_size
            if progress is not None:
                progress(str(file), done, len(files))
    report.seconds = time.perf_counter() - started
    emit([report], form, output, explain=explain)
    raise typer.Exit(gate([report], threshold))


@data_app.command("anonymize")
def data_anonymize(
    path: Path = typer.Argument(..., help="The table to anonymise (never changed)."),
    out: Path = typer.Option(..., "--out", help="Where to write the anonymised table."),
    policy: Path | None = typer.Option(
        None, "--policy", help="YAML/JSON policy: operator per entity and per column."
    ),
    vault: Path | None = typer.Option(
        None, "--vault", help="Token vault file (needed when the policy tokenises)."
    ),
    region: str | None = RegionOpt,
    encoding: str | None = EncodingOpt,
    fmt: str = typer.Option("text", "--format", "-f", help="Summary format: text or json."),
    quiet: bool = QuietOpt,
    config: Path | None = ConfigOpt,
) -> None:
    """Write an anonymised copy of a table in the same format, with its own snapshot manifest.

    Operators: redact (default), mask, hash (HMAC-SHA256, key in $SECMLOPS_HASH_KEY), tokenize
    (format-preserving, reversible with the vault and $SECMLOPS_VAULT_KEY), generalize, keep.
    """
    from secmlops.privacy.anonymize import (
        Policy,
        anonymize_frame,
        check_distinct,
        load_policy,
        write_manifest,
        write_table,
    )
    from secmlops.privacy.vault import Vault, key_from_env
    from secmlops.scan.data.tables import load_table

    if fmt not in ("text", "json"):
        raise UsageError(f"unknown format {fmt!r}", hint="use text or json")
    if not path.is_file():
        raise UsageError(f"{path}: no such file", hint="anonymize takes one table file")
    check_distinct(path, out)
    rules = load_policy(policy) if policy is not None else Policy()
    settings = _settings(region, load_config(config))
    token_vault = None
    if rules.needs("tokenize"):
        if vault is None:
            raise UsageError(
                "the policy tokenises values: pass --vault FILE",
                hint="the vault holds the encrypted originals; keep it apart from the data",
            )
        for other in (path, out):
            if vault.resolve() == other.resolve():
                raise UsageError(f"--vault must not be {other}")
        token_vault = Vault.open(vault, key_from_env())
    started = time.perf_counter()
    table = load_table(path, encoding=encoding, allow_empty=True)
    if table.truncated:
        raise DataError(
            f"{path}: the table has more rows than can be read at once",
            hint="split the file; a partial copy would not be anonymised completely",
        )
    with progress_bar("anonymising", quiet) as progress:
        frame, changes = anonymize_frame(
            table.frame, rules, vault=token_vault, settings=settings, progress=progress
        )
    write_table(frame, out, table.format)
    if token_vault is not None:
        token_vault.save()
    manifest, digest = write_manifest(
        out,
        {
            "source_format": table.format,
            "rows": len(frame),
            "columns": [c.to_dict() for c in changes],
        },
    )
    seconds = time.perf_counter() - started
    if fmt == "json":
        doc = {
            "input": str(path),
            "output": str(out),
            "manifest": str(manifest),
            "sha256": digest,
            "rows": len(frame),
            "seconds": round(seconds, 3),
            "columns": [c.to_dict() for c in changes],
        }
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    else:
        for c in changes:
            what = "/".join(c.entities) or "named in the policy"
            _say(quiet, f"{c.column}: {c.operator} ({c.how}, {what}) — {c.cells:,} cells")
        if not changes:
            _say(quiet, "no personal data found: the copy equals the input")
        _say(quiet, f"wrote {out} ({len(frame):,} rows, {seconds:.2f}s); manifest {manifest}")
    raise typer.Exit(0)


@data_app.command("detokenize")
def data_detokenize(
    path: Path = typer.Argument(..., help="A table written by `data anonymize` with tokens."),
    out: Path = typer.Option(..., "--out", help="Where to write the restored table."),
    vault: Path = typer.Option(..., "--vault", help="The vault the tokens were written to."),
    encoding: str | None = EncodingOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Turn tokens back into the original values (needs the vault and $SECMLOPS_VAULT_KEY)."""
    from secmlops.privacy.anonymize import check_distinct, detokenize_frame, write_table
    from secmlops.privacy.vault import Vault, key_from_env
    from secmlops.scan.data.tables import load_table

    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    check_distinct(path, out)
    opened = Vault.open(vault, key_from_env(), create=False)
    table = load_table(path, encoding=encoding, allow_empty=True)
    frame, restored = detokenize_frame(table.frame, opened)
    write_table(frame, out, table.format)
    _say(quiet, f"restored {restored:,} cells; wrote {out}")
    raise typer.Exit(0)
