"""`secmlops scan models` without typer (secmlops.cli.scan_models) reads every command line the
typer command reads, the same way, and hands everything else to typer."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from secmlops.cli.scan_models import FLAG_OPTIONS, VALUED_OPTIONS, ScanModelsArgs, parse
from tests.cli import run_cli

EVIL = b"\x80\x04\x8c\x02os\x8c\x06system\x93\x8c\x04true\x85R."


def _typer_command() -> Any:
    import typer.main

    import secmlops.cli.main  # noqa: F401 - registers the commands
    from secmlops.cli.app import scan_app

    group = typer.main.get_group(scan_app)
    return group.get_command(None, "models")  # type: ignore[arg-type]


def test_the_fast_reader_knows_exactly_the_typer_commands_options_and_defaults() -> None:
    command = _typer_command()
    options = {p.name: p for p in command.params if p.param_type_name == "option"}
    spellings = {s: p.name for p in options.values() for s in [*p.opts, *p.secondary_opts]}
    assert spellings == {**VALUED_OPTIONS, **FLAG_OPTIONS}
    assert {s for s, n in spellings.items() if options[n].is_flag} == set(FLAG_OPTIONS)
    defaults = ScanModelsArgs()
    for name, param in options.items():
        assert getattr(defaults, name) == param.default, name
    (paths,) = [p for p in command.params if p.param_type_name == "argument"]
    assert paths.required and paths.nargs == -1


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["m.pkl"], ScanModelsArgs([Path("m.pkl")])),
        (
            ["a", "-f", "json", "--output=o.json", "-q", "b", "--allow", "x.y:new", "--allow=z:ref",
             "--jobs", "3", "--fail-on", "critical", "--config", "c.toml", "--explain",
             "--follow-symlinks"],
            ScanModelsArgs([Path("a"), Path("b")], "json", Path("o.json"), "critical", True,
                           Path("c.toml"), ["x.y:new", "z:ref"], True, True, 3),
        ),
    ],
)  # fmt: skip
def test_plain_command_lines_are_read(argv: list[str], expected: ScanModelsArgs) -> None:
    assert parse(argv) == expected


@pytest.mark.parametrize(
    "argv",
    [
        [], ["--help"], ["m", "-h"], ["m", "--"], ["--", "-m"], ["m", "-qj2"], ["m", "-j2"],
        ["m", "--jobs", "-1"], ["m", "--jobs", "x"], ["m", "--format"], ["m", "-o", "-q"],
        ["m", "--format", "json", "-f", "sarif"], ["m", "--quiet=yes"], ["m", "--no-such"],
        ["-"], [""], ["m", "--format="],
    ],
)  # fmt: skip
def test_anything_else_goes_to_typer(argv: list[str]) -> None:
    assert parse(argv) is None


def _typer_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    code = "import sys; from secmlops.cli.main import main; sys.argv[0] = 'secmlops'; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"},
        timeout=120,
    )


def _report(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    data["summary"].pop("seconds", None)
    return data


@pytest.mark.parametrize(
    "extra",
    [[], ["--fail-on", "critical"], ["--allow", "os.system:call"], ["-j", "1", "--explain"]],
)
def test_fast_and_typer_paths_give_the_same_report_and_exit_code(
    tmp_path: Path, extra: list[str]
) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "evil.pkl").write_bytes(EVIL)
    (folder / "ok.pkl").write_bytes(pickle.dumps({"w": [1.0]}))
    fast = run_cli("scan", "models", "models", "-q", "-o", "fast.json", *extra, cwd=tmp_path)
    slow = _typer_cli("scan", "models", "models", "-q", "-o", "slow.json", *extra, cwd=tmp_path)
    assert fast.returncode == slow.returncode
    assert fast.returncode in (0, 1)
    assert _report(tmp_path / "fast.json") == _report(tmp_path / "slow.json")


def test_errors_read_the_same_on_both_paths(tmp_path: Path) -> None:
    for args in (["nothing-here"], ["m.pkl", "--format", "xml"]):
        (tmp_path / "m.pkl").write_bytes(pickle.dumps(1))
        fast = run_cli("scan", "models", *args, cwd=tmp_path)
        slow = _typer_cli("scan", "models", *args, cwd=tmp_path)
        assert (fast.returncode, fast.stderr) == (slow.returncode, slow.stderr) == (2, slow.stderr)
        assert slow.stderr.startswith("error: ") and "Traceback" not in fast.stderr


def test_the_fast_path_loads_no_cli_framework(tmp_path: Path) -> None:
    (tmp_path / "m.pkl").write_bytes(pickle.dumps(1))
    code = (
        "import sys\n"
        "sys.argv = ['secmlops', 'scan', 'models', 'm.pkl', '-q', '-f', 'json']\n"
        "from secmlops.cli.entry import main\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    code = exc.code\n"
        "print(code, sorted(m for m in ('typer', 'click', 'rich') if m in sys.modules),"
        " file=sys.stderr)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert done.stderr.strip() == "0 []"
    assert json.loads(done.stdout)["summary"]["files_scanned"] == 1


def test_an_empty_folder_is_not_silently_clean(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "README").write_text("no model here")
    for runner in (run_cli, _typer_cli):
        done = runner("scan", "models", "empty", "--format", "json", cwd=tmp_path)
        assert done.returncode == 0 and json.loads(done.stdout)["summary"]["files_scanned"] == 0
        assert done.stderr == "warning: no files were found to scan under the given path(s)\n"
        assert runner("scan", "models", "empty", "-q", cwd=tmp_path).stderr == ""
        # a folder of files that are not models was scanned: the summary says so, no warning
        assert runner("scan", "models", "notes", cwd=tmp_path).stderr == ""
