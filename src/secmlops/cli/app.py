"""The Typer applications every command module attaches to (kept apart so modules import no cycle).

Commands are loaded lazily: each group knows which module defines each of its commands
(`_COMMAND_MODULES`) and imports it only when that command is asked for. `secmlops scan models`
therefore imports the model scanner and nothing of the signing, serving or data stacks, which
keeps start-up (paid on every CI call) small; `--help` still lists everything.
"""

from __future__ import annotations

import importlib
from typing import Any

import typer
from typer.core import TyperGroup

from secmlops import __version__

# group name -> command name -> module in secmlops.cli that registers it. A test checks this table
# against the commands the modules really register, so a new command cannot be left out.
_COMMAND_MODULES: dict[str, dict[str, str]] = {
    "secmlops": {
        "convert": "main",
        "demo": "main",
        "rules": "main",
        "attest": "attest_cmds",
        "bom": "attest_cmds",
        "verify-attestation": "attest_cmds",
        "pipeline": "pipeline_cmds",
        "lineage": "registry_cmds",
        "report": "registry_cmds",
        "serve": "serve_cmds",
        "token": "serve_cmds",
        "keygen": "sign_cmds",
        "sign": "sign_cmds",
        "verify": "sign_cmds",
    },
    "scan": {
        "all": "main",
        "models": "main",
        "data": "data_cmds",
        "deps": "deps_cmds",
        "infra": "infra_cmds",
        "workflows": "infra_cmds",
        "poisoning": "monitor_cmds",
        "pii": "pii_cmds",
        "secrets": "secrets_cmds",
    },
    "data": {
        "infer-schema": "data_cmds",
        "snapshot": "data_cmds",
        "verify": "data_cmds",
        "anonymize": "pii_cmds",
        "detokenize": "pii_cmds",
        "budget": "monitor_cmds",
    },
    "monitor": {"drift": "monitor_cmds", "profile": "monitor_cmds"},
    "db": {"status": "deps_cmds", "update": "deps_cmds"},
    "policy": {"eval": "policy_cmds", "test": "policy_cmds"},
    "registry": {
        name: "registry_cmds" for name in ("list", "promote", "pull", "push", "rollback", "show")
    },
    "audit": {"checkpoint": "registry_cmds", "verify": "registry_cmds"},
}


def load_all_commands() -> None:
    """Import every command module (for `--help` listings and the completeness test)."""
    for module in {m for table in _COMMAND_MODULES.values() for m in table.values()}:
        importlib.import_module(f"secmlops.cli.{module}")


class LazyGroup(TyperGroup):
    """A group whose commands are built from their module on first use."""

    def _lazy(self) -> dict[str, str]:
        return _COMMAND_MODULES.get(self.name or "", {})

    def list_commands(self, ctx: Any) -> list[str]:
        return sorted(set(self.commands) | set(self._lazy()))

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        module = self._lazy().get(cmd_name)
        if cmd_name not in self.commands and module is not None:
            importlib.import_module(f"secmlops.cli.{module}")
            # Build the group once per imported module and keep every command it now has, so a
            # listing (`--help`) does not rebuild the whole group for each of its commands.
            for name, built in typer.main.get_group(_OWNERS[self.name or ""]).commands.items():
                self.commands.setdefault(name, built)
        return self.commands.get(cmd_name)


class _ScanGroup(LazyGroup):
    """`secmlops scan [PATH]` runs every layer: anything that is not a layer name means `scan all`."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.list_commands(ctx) and args[0] not in ("--help", "-h")):
            args = ["all", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    name="secmlops",
    cls=LazyGroup,
    help="Secure machine-learning pipelines end to end. Exit codes: 0 clean, 1 findings at or "
    "above --fail-on, 2 a check could not complete or the command was used wrongly.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"secmlops {__version__}")
        raise typer.Exit(0)


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """secmlops: scan, sign, gate and serve ML models safely."""


def _group(name: str, help: str, cls: type[TyperGroup] = LazyGroup, **kwargs: Any) -> typer.Typer:
    sub = typer.Typer(name=name, cls=cls, help=help, **kwargs)
    app.add_typer(sub, name=name)
    return sub


scan_app = _group(
    "scan",
    "Read-only checks. `secmlops scan [PATH]` runs every layer; each layer is a subcommand.",
    cls=_ScanGroup,
)
data_app = _group(
    "data", "Data sets: schemas, snapshots, anonymisation, privacy budgets.", no_args_is_help=True
)
monitor_app = _group("monitor", "Production monitoring: drift and abuse.", no_args_is_help=True)
db_app = _group("db", "The offline vulnerability database (OSV).", no_args_is_help=True)
policy_app = _group(
    "policy", "Policy-as-code gates (Rego): evaluate and test.", no_args_is_help=True
)
registry_app = _group(
    "registry",
    "Model registry: immutable signed versions, aliases, gated promotion.",
    no_args_is_help=True,
)
audit_app = _group("audit", "The tamper-evident audit log.", no_args_is_help=True)

_OWNERS: dict[str, typer.Typer] = {
    "secmlops": app,
    "scan": scan_app,
    "data": data_app,
    "monitor": monitor_app,
    "db": db_app,
    "policy": policy_app,
    "registry": registry_app,
    "audit": audit_app,
}
