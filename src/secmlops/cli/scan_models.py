"""`secmlops scan models`: the command's work, and a reader of its command line that needs no CLI
framework.

The model scan runs on every CI job and every model pull, often on one file, where loading typer
and click (~75 ms with what they import) would be a third of the run. `secmlops.cli.entry` hands
an ordinary `scan models` command line to `parse` and runs `run` directly; anything `parse` does
not fully understand (`--help`, an unknown or malformed option, a bad value) goes to the typer
command in `secmlops.cli.main`, which declares the same options and calls the same `run`, so
help, error messages and behaviour are typer's own. `tests/cli/test_fast_scan_models.py` checks
that both read every command line alike.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from secmlops.cli.output import emit, gate, progress_bar, report_setup

# Option spellings of the typer command, by the parameter they set.
VALUED_OPTIONS = {
    "--format": "fmt", "-f": "fmt", "--output": "output", "-o": "output",
    "--fail-on": "fail_on", "--config": "config", "--allow": "allow", "--jobs": "jobs", "-j": "jobs",
}  # fmt: skip
FLAG_OPTIONS = {
    "--quiet": "quiet", "-q": "quiet", "--follow-symlinks": "follow_symlinks",
    "--explain": "explain",
}  # fmt: skip


@dataclass(slots=True)
class ScanModelsArgs:
    """The command's parameters, with the typer command's defaults."""

    paths: list[Path] = field(default_factory=list)
    fmt: str | None = None
    output: Path | None = None
    fail_on: str | None = None
    quiet: bool = False
    config: Path | None = None
    allow: list[str] = field(default_factory=list)
    follow_symlinks: bool = False
    explain: bool = False
    jobs: int = 0


def parse(argv: list[str]) -> ScanModelsArgs | None:
    """ARGV (after `scan models`) as parameters; None for anything but a plain, valid command
    line, which the typer command then reads (and explains, if it is wrong)."""
    args = ScanModelsArgs()
    seen: set[str] = set()
    words = iter(argv)
    for word in words:
        if not word or word == "-":
            return None
        if not word.startswith("-"):
            args.paths.append(Path(word))
            continue
        name, eq, value = word.partition("=") if word.startswith("--") else (word, "", "")
        if name in FLAG_OPTIONS and not eq:
            setattr(args, FLAG_OPTIONS[name], True)
            continue
        target = VALUED_OPTIONS.get(name)
        if target is None:
            return None  # --help, --, clustered short options, unknown options
        if not eq:
            value = next(words, "")
        if not value or value.startswith("-"):
            return None
        if target == "allow":
            args.allow.append(value)
            continue
        if target in seen:
            return None  # repeated: let click apply its own rule
        seen.add(target)
        if target == "jobs":
            if not value.isdigit():
                return None
            args.jobs = int(value)
        elif target in ("output", "config"):
            setattr(args, target, Path(value))
        else:
            setattr(args, target, value)
    return args if args.paths else None


def run(args: ScanModelsArgs) -> int:
    """Scan, write the report, and return the exit code (0 / 1 / 2)."""
    from secmlops.scan.models import scan_paths

    cfg, threshold, form = report_setup(args.config, args.fail_on, args.fmt, args.output)
    settings = model_settings(cfg, args.allow, args.follow_symlinks)
    with progress_bar("scanning", args.quiet) as progress:
        report = scan_paths(args.paths, settings, progress, jobs=args.jobs or (os.cpu_count() or 1))
    emit([report], form, args.output, explain=args.explain)
    if report.files_scanned == 0 and not args.quiet:
        # Still exit 0 (nothing found is not a finding), but a CI job pointed at the wrong or an
        # empty folder must not read as a clean scan of its models.
        sys.stderr.write("warning: no files were found to scan under the given path(s)\n")
    return gate([report], threshold)


def model_settings(cfg: Any, allow: list[str], follow_symlinks: bool) -> Any:
    """Model-scan settings from the configuration plus command-line allowlist entries."""
    from secmlops.scan.models import Limits, ModelScanSettings
    from secmlops.scan.models.allowlist import load_allowlist

    m = cfg.models
    return ModelScanSettings(
        allowlist=load_allowlist().with_user_entries([*m.allow, *allow]),
        limits=Limits(
            m.max_depth, m.max_ratio, m.max_expanded_bytes, m.max_members, m.max_pickle_ops
        ),
        follow_symlinks=follow_symlinks,
    )
