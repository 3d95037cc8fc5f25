"""The lazy command table matches what the command modules really register."""

from __future__ import annotations

import subprocess
import sys

import typer

from secmlops.cli import app as app_module


def _registered(typer_app: typer.Typer) -> set[str]:
    names = {info.name for info in typer_app.registered_commands}
    names |= {info.name for info in typer_app.registered_groups}
    return {name for name in names if name}


def test_table_lists_exactly_the_registered_commands() -> None:
    app_module.load_all_commands()
    for group, owner in app_module._OWNERS.items():
        table = set(app_module._COMMAND_MODULES.get(group, {}))
        registered = _registered(owner)
        if owner is app_module.app:
            registered -= set(app_module._OWNERS)  # the groups defined in app.py itself
        assert table == registered, (
            f"{group}: table {sorted(table)} vs modules {sorted(registered)}"
        )


def test_each_command_comes_from_its_module() -> None:
    app_module.load_all_commands()
    for group, table in app_module._COMMAND_MODULES.items():
        owner = app_module._OWNERS[group]
        infos = {i.name: i for i in owner.registered_commands} | {
            g.name: g for g in owner.registered_groups
        }
        for name, module in table.items():
            info = infos[name]
            source = (
                info.callback.__module__
                if hasattr(info, "callback") and info.callback
                else info.typer_instance.registered_commands[0].callback.__module__
            )
            assert source == f"secmlops.cli.{module}", (group, name, source)


def test_scan_models_does_not_load_other_layers() -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from secmlops.cli.main import app\n"
        "r = CliRunner().invoke(app, ['scan', 'models', '--help'])\n"
        "assert r.exit_code == 0, r.output\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('secmlops.cli.'))\n"
        "print(' '.join(loaded))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert "secmlops.cli.main" in out
    for heavy in ("secmlops.cli.sign_cmds", "secmlops.cli.serve_cmds", "secmlops.cli.data_cmds"):
        assert heavy not in out
