"""What every checking command shares: output format, destination, gate and progress."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from secmlops.config import Config, load_config
from secmlops.errors import Error, UsageError
from secmlops.findings import Report, Severity
from secmlops.report import FORMATS, render


def report_setup(
    config: Path | None, fail_on: str | None, fmt: str | None, output: Path | None
) -> tuple[Config, Severity, str]:
    """What a checking command starts from: the configuration in force, the --fail-on threshold
    (the flag, else the file's) and the report format (the flag, else from --output's suffix)."""
    cfg = load_config(config)
    return cfg, Severity.parse(fail_on or cfg.fail_on), choose_format(fmt, output)


def choose_format(fmt: str | None, output: Path | None) -> str:
    if fmt is None:
        return (
            "text"
            if output is None or output.suffix not in (".json", ".sarif")
            else output.suffix[1:]
        )
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}", hint=f"use one of: {', '.join(FORMATS)}")
    return fmt


def emit(
    reports: Sequence[Report], fmt: str, output: Path | None, *, explain: bool = False
) -> None:
    color = output is None and sys.stdout.isatty()
    write_output(render(reports, fmt, color=color, explain=explain), output)


def write_output(text: str, output: Path | None) -> None:
    """TEXT to stdout, or atomically to OUTPUT (a temporary file renamed over it)."""
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        tmp = output.with_name(output.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(output)
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror or exc}") from exc


def print_error(exc: Error) -> None:
    """A user error as one line (and its hint) on stderr, never a traceback."""
    from rich.console import Console

    err = Console(stderr=True, highlight=False)
    # soft_wrap: one line whatever the terminal's width (scripts grep it; the contract says one)
    err.print(f"[bold red]error:[/] {exc.message}", soft_wrap=True)
    if exc.hint:
        err.print(f"hint: {exc.hint}", soft_wrap=True)


def gate(reports: Sequence[Report], fail_on: Severity) -> int:
    """0 / 1 / 2 as the architecture defines; the worst over all reports."""
    return max((r.exit_code(fail_on) for r in reports), default=0)


@contextmanager
def progress_bar(label: str, quiet: bool) -> Iterator[Callable[[str, int, int], None] | None]:
    """A Rich progress bar on an interactive stderr only; yields the callback or None."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    # rich is imported only when a bar is drawn: machine-readable runs never pay for it.
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    console = Console(stderr=True)
    with Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("", total=None)

        def update(path: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, description=Path(path).name[-40:])

        yield update
