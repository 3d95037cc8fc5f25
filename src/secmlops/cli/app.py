"""The Typer applications every command module attaches to (kept apart so modules import no cycle)."""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup


class _ScanGroup(TyperGroup):
    """`secmlops scan [PATH]` runs every layer: anything that is not a layer name means `scan all`."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h")):
            args = ["all", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    name="secmlops",
    help="Secure machine-learning pipelines end to end. Exit codes: 0 clean, 1 findings at or "
    "above --fail-on, 2 a check could not complete or the command was used wrongly.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
scan_app = typer.Typer(
    cls=_ScanGroup,
    help="Read-only checks. `secmlops scan [PATH]` runs every layer; each layer is a subcommand.",
)
app.add_typer(scan_app, name="scan")
data_app = typer.Typer(
    help="Data sets: schemas, snapshots, anonymisation, privacy budgets.", no_args_is_help=True
)
app.add_typer(data_app, name="data")
monitor_app = typer.Typer(help="Production monitoring: drift and abuse.", no_args_is_help=True)
app.add_typer(monitor_app, name="monitor")
db_app = typer.Typer(help="The offline vulnerability database (OSV).", no_args_is_help=True)
app.add_typer(db_app, name="db")
policy_app = typer.Typer(
    help="Policy-as-code gates (Rego): evaluate and test.", no_args_is_help=True
)
app.add_typer(policy_app, name="policy")
registry_app = typer.Typer(
    help="Model registry: immutable signed versions, aliases, gated promotion.",
    no_args_is_help=True,
)
app.add_typer(registry_app, name="registry")
audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
