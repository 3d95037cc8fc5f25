"""Monitoring and privacy commands: `monitor drift`, `monitor profile`, `scan poisoning`, and
`data budget init|spend|show`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from secmlops.cli.app import data_app, monitor_app, scan_app
from secmlops.cli.options import ConfigOpt, FailOnOpt, FormatOpt, OutputOpt, QuietOpt
from secmlops.cli.output import emit, gate, report_setup
from secmlops.errors import DataError, UsageError
from secmlops.findings import Location, Report, ScanFailure

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_LEDGERS = Path(".secmlops/privacy")
EncodingOpt = typer.Option(
    None, "--encoding", help="Text encoding of CSV/JSON Lines files (default: UTF-8)."
)

budget_app = typer.Typer(
    help="Differential-privacy budget ledger per data set (epsilon/delta caps, verified spends).",
    no_args_is_help=True,
)
data_app.add_typer(budget_app, name="budget")


def _say(quiet: bool, text: str) -> None:
    if not quiet:
        Console(stderr=True, highlight=False).print(text)


def _write_text(path: Path, text: str) -> None:
    """Write a whole file or nothing (temporary file, then rename)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from exc


def _read_data(path: Path, encoding: str | None) -> pd.DataFrame:
    """One table, or every table of a folder stacked (they must share their columns)."""
    import pandas as pd

    from secmlops.scan.data.tables import iter_tables

    frames = [frame for _, frame in iter_tables(path, encoding=encoding)]
    if not frames:
        raise DataError(f"{path}: no table files found")
    if len(frames) == 1:
        return frames[0]
    columns = list(frames[0].columns)
    if any(list(f.columns) != columns for f in frames[1:]):
        raise DataError(
            f"{path}: the tables in this folder do not share their columns",
            hint="point at one file, or a folder of tables with one schema",
        )
    return pd.concat(frames, ignore_index=True)


@monitor_app.command("profile")
def monitor_profile(
    data: Path = typer.Argument(..., help="A table file (CSV, Parquet, JSON Lines, Arrow)."),
    out: Path = typer.Option(..., "--output", "-o", help="Where to write the profile JSON."),
    encoding: str | None = EncodingOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Write a drift profile of trusted reference data: quantiles and category counts, no rows.

    Categories seen fewer than 10 times are pooled and the minimum and maximum are not stored,
    so no individual value reaches monitoring.
    """
    from secmlops.scan.data.drift_profile import build_profile

    started = time.perf_counter()
    profile = build_profile(_read_data(data, encoding))
    _write_text(out, profile.to_json() + "\n")
    _say(
        quiet,
        f"wrote {out} ({len(profile.columns)} columns, {profile.rows} rows, "
        f"{time.perf_counter() - started:.2f}s)",
    )


@monitor_app.command("drift")
def monitor_drift(
    reference: Path = typer.Option(
        ...,
        "--reference",
        "-r",
        help="Reference: a table, or a profile JSON from `monitor profile`.",
    ),
    current: Path = typer.Option(..., "--current", "-c", help="Current data: a table or folder."),
    profile: bool = typer.Option(
        False, "--profile", help="The reference is a stored profile (otherwise decided from bytes)."
    ),
    html: Path | None = typer.Option(
        None, "--html", help="Also write an HTML report with a plot per drifted feature."
    ),
    # Thresholds: the flag, else [drift] of secmlops.toml, else the default in the help.
    wasserstein: float | None = typer.Option(
        None, "--wasserstein", min=0, help="Normalised Wasserstein threshold (std units; 0.05)."
    ),
    psi: float | None = typer.Option(
        None, "--psi", min=0, help="PSI threshold, numbers and categories (0.2)."
    ),
    js: float | None = typer.Option(
        None, "--js", min=0, help="Jensen-Shannon distance threshold (0.05)."
    ),
    missing: float | None = typer.Option(
        None, "--missing", min=0, help="Missing-share change threshold (0.05)."
    ),
    alpha: float | None = typer.Option(
        None, "--alpha", min=0, max=1, help="Benjamini-Hochberg FDR of the confirming tests (0.01)."
    ),
    sample_cap: int | None = typer.Option(
        None, "--sample-cap", min=10, help="Sample size at which p-values are computed (10000)."
    ),
    dataset_share: float | None = typer.Option(
        None,
        "--dataset-share",
        min=0,
        max=1,
        help="Share of drifted features = data-set drift (0.3).",
    ),
    encoding: str | None = EncodingOpt,
    fmt: str | None = FormatOpt,
    output: Path | None = OutputOpt,
    fail_on: str | None = FailOnOpt,
    quiet: bool = QuietOpt,
    config: Path | None = ConfigOpt,
) -> None:
    """Compare current data with a reference: effect sizes gate, BH-corrected tests confirm.

    Exit 1 when a finding reaches --fail-on (default high: data-set drift or a schema break;
    use --fail-on medium to fail on any drifted feature).
    """
    from secmlops.scan.data import stats_rules
    from secmlops.scan.data.drift import DriftThresholds, compare, render_html
    from secmlops.scan.data.drift_profile import Profile, is_profile_file, load_profile

    cfg, threshold, form = report_setup(config, fail_on, fmt, output)
    thresholds = cfg.layer_settings(
        "drift",
        DriftThresholds,
        wasserstein=wasserstein,
        psi=psi,
        jensen_shannon=js,
        missing=missing,
        alpha=alpha,
        sample_cap=sample_cap,
        dataset_share=dataset_share,
    )
    started = time.perf_counter()
    ref: Profile | pd.DataFrame
    if profile or is_profile_file(reference):
        ref = load_profile(reference)
    else:
        ref = _read_data(reference, encoding)
    cur = _read_data(current, encoding)
    result = compare(ref, cur, thresholds)
    report = Report(kind="drift", rules=dict(stats_rules.ALL))
    report.extend(result.findings(Location(path=str(current))))
    report.files_scanned = 1
    report.seconds = time.perf_counter() - started
    if html is not None:
        _write_text(html, render_html(result))
    emit([report], form, output)
    _say(
        quiet or form != "text",
        f"{len(result.drifted)} of {len(result.features)} features drifted "
        f"({result.share:.0%}); {len(cur)} rows in {report.seconds:.2f}s",
    )
    raise typer.Exit(gate([report], threshold))


@scan_app.command("poisoning")
def scan_poisoning_cmd(
    path: Path = typer.Argument(..., help="A labelled training table, or a folder of them."),
    label: str = typer.Option(..., "--label", "-l", help="The label (target) column."),
    reference: Path | None = typer.Option(
        None, "--reference", help="A trusted earlier table, for the class-balance check."
    ),
    checks: list[str] = typer.Option(
        [], "--check", help="Run only these checks: label, cluster, duplicate, balance, trigger."
    ),
    encoding: str | None = EncodingOpt,
    fmt: str | None = FormatOpt,
    output: Path | None = OutputOpt,
    fail_on: str | None = FailOnOpt,
    quiet: bool = QuietOpt,
    config: Path | None = ConfigOpt,
) -> None:
    """Look for poisoning: label issues, injected clusters, duplicates, balance shift, triggers.

    Every finding lists suspicious row positions (0-based) with a score for review. A table that
    cannot be checked (unreadable, no label column, one class, too few rows) is an error (exit 2).
    """
    from secmlops.scan.data import stats_rules
    from secmlops.scan.data.poisoning import CHECKS, PoisonSettings, scan_poisoning
    from secmlops.scan.data.tables import load_table, table_files

    cfg, threshold, form = report_setup(config, fail_on, fmt, output)
    settings = cfg.layer_settings("poisoning", PoisonSettings)  # [poisoning] of secmlops.toml
    started = time.perf_counter()
    ref = _read_data(reference, encoding) if reference is not None else None
    report = Report(kind="poisoning", rules=dict(stats_rules.ALL))
    for file in table_files(path):
        where = Location(path=str(file))
        try:
            frame = load_table(file, encoding=encoding).frame
            report.extend(
                scan_poisoning(
                    frame,
                    label=label,
                    reference=ref,
                    location=where,
                    checks=checks or CHECKS,
                    settings=settings,
                )
            )
        except DataError as exc:
            report.errors.append(ScanFailure(where, exc.message))
            continue
        report.files_scanned += 1
    if not report.files_scanned and not report.errors:
        report.errors.append(ScanFailure(Location(path=str(path)), "no table files found"))
    report.seconds = time.perf_counter() - started
    emit([report], form, output)
    raise typer.Exit(gate([report], threshold))


StoreOpt = typer.Option(
    DEFAULT_LEDGERS, "--store", help="Folder of the ledgers (default .secmlops/privacy)."
)


@budget_app.command("init")
def budget_init(
    dataset: str = typer.Argument(..., help="Data set name (letters, digits, . _ -)."),
    epsilon: float = typer.Option(..., "--epsilon", help="Total epsilon cap."),
    delta: float = typer.Option(..., "--delta", help="Total delta cap."),
    rows: int | None = typer.Option(
        None, "--rows", help="Rows in the data set (checks delta < 1/N)."
    ),
    store: Path = StoreOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Create the privacy ledger of a data set with its epsilon and delta caps."""
    from secmlops.privacy.ledger import init_ledger, ledger_findings, ledger_path

    path = ledger_path(store, dataset)
    ledger = init_ledger(path, dataset, epsilon, delta, rows)
    _say(quiet, f"created {path}: epsilon cap {epsilon:g}, delta cap {delta:g}")
    for finding in ledger_findings(ledger, Location(path=str(path)))[1:]:
        _say(quiet, f"warning: {finding.rule_id}: {finding.message}")


@budget_app.command("spend")
def budget_spend(
    dataset: str = typer.Argument(..., help="Data set name."),
    mechanism: str = typer.Option(
        ..., "--mechanism", "-m", help="gaussian, laplace, dpsgd (subsampled Gaussian) or custom."
    ),
    noise_multiplier: float | None = typer.Option(
        None, "--noise-multiplier", help="Noise scale over sensitivity (sigma, or Laplace b)."
    ),
    sampling_rate: float | None = typer.Option(
        None, "--sampling-rate", help="DP-SGD: Poisson sampling rate (batch size / N)."
    ),
    steps: int = typer.Option(1, "--steps", help="Compositions: releases, or DP-SGD steps."),
    delta: float = typer.Option(0.0, "--delta", help="Delta of this release."),
    epsilon: float | None = typer.Option(
        None, "--epsilon", help="Claimed epsilon (checked against the recomputed one)."
    ),
    note: str = typer.Option("", "--note", help="What was released (free text)."),
    store: Path = StoreOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Record a release; refused when it exceeds a cap or understates epsilon (exit 2)."""
    from secmlops.privacy.ledger import MECHANISMS, Mechanism, ledger_findings, ledger_path, spend

    if mechanism not in MECHANISMS:
        raise UsageError(
            f"unknown mechanism {mechanism!r}", hint=f"use one of: {', '.join(MECHANISMS)}"
        )
    path = ledger_path(store, dataset)
    mech = Mechanism(mechanism, noise_multiplier, sampling_rate, steps)  # type: ignore[arg-type]
    ledger, entry = spend(path, mech, delta, claimed_epsilon=epsilon, note=note)
    _say(
        quiet,
        f"recorded epsilon {entry.epsilon:.4g}, delta {entry.delta:.3g} ({entry.accountant}); "
        f"spent {ledger.spent_epsilon:.4g} of {ledger.epsilon_cap:g}",
    )
    for finding in ledger_findings(ledger, Location(path=str(path)))[1:]:
        _say(quiet, f"warning: {finding.rule_id}: {finding.message}")


@budget_app.command("show")
def budget_show(
    dataset: str = typer.Argument(..., help="Data set name."),
    store: Path = StoreOpt,
    fmt: str | None = FormatOpt,
    output: Path | None = OutputOpt,
    fail_on: str | None = FailOnOpt,
    quiet: bool = QuietOpt,
    config: Path | None = ConfigOpt,
) -> None:
    """Show spent and remaining budget with warnings (epsilon > 10, delta >= 1/N, unverified)."""
    from secmlops.privacy.ledger import ledger_findings, ledger_path, load_ledger
    from secmlops.scan.data import stats_rules

    _, threshold, form = report_setup(config, fail_on, fmt, output)
    path = ledger_path(store, dataset)
    ledger = load_ledger(path)
    report = Report(kind="privacy", rules=dict(stats_rules.ALL))
    report.extend(ledger_findings(ledger, Location(path=str(path))))
    report.files_scanned = 1
    if form == "text" and not quiet:
        err = Console(stderr=True, highlight=False)
        for i, e in enumerate(ledger.entries):
            err.print(
                f"{i:3d} {e.time} {e.mechanism:8} eps {e.epsilon:<10.4g} delta {e.delta:<9.3g} "
                f"{e.accountant} {e.note}"
            )
    emit([report], form, output)
    raise typer.Exit(gate([report], threshold))
