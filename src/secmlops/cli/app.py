"""The Typer applications every command module attaches to (kept apart so modules import no cycle)."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="secmlops",
    help="Secure machine-learning pipelines end to end. Exit codes: 0 clean, 1 findings at or "
    "above --fail-on, 2 a check could not complete or the command was used wrongly.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
scan_app = typer.Typer(help="Read-only checks. Each layer is a subcommand.", no_args_is_help=True)
app.add_typer(scan_app, name="scan")
data_app = typer.Typer(
    help="Data sets: schemas, snapshots, anonymisation, privacy budgets.", no_args_is_help=True
)
app.add_typer(data_app, name="data")
monitor_app = typer.Typer(help="Production monitoring: drift and abuse.", no_args_is_help=True)
app.add_typer(monitor_app, name="monitor")
db_app = typer.Typer(help="The offline vulnerability database (OSV).", no_args_is_help=True)
app.add_typer(db_app, name="db")
