"""`secmlops scan secrets` through the real command line: exit codes, formats, redaction."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from secmlops.cli.main import app
from tests.cli import run_cli as run
from tests.scan.secrets import fakes


@pytest.fixture
def leaky(tmp_path: Path) -> tuple[Path, list[str]]:
    rng = random.Random(21)
    secrets = [fakes.github_token(rng), fakes.anthropic_key(rng), fakes.password(rng)]
    (tmp_path / "settings.py").write_text(
        f"GH = '{secrets[0]}'\nCLAUDE = '{secrets[1]}'\ndb_password = '{secrets[2]}'\n"
    )
    return tmp_path, secrets


def test_json_in_a_subprocess_and_sarif(leaky: tuple[Path, list[str]], tmp_path: Path) -> None:
    folder, secrets = leaky
    result = run("scan", "secrets", str(folder), "--format", "json")
    assert result.returncode == 1, result.stderr
    doc = json.loads(result.stdout)
    assert sorted(f["rule_id"] for f in doc["findings"]) == [
        "SECRET-ANTHROPIC-KEY",
        "SECRET-GENERIC-ASSIGNMENT",
        "SECRET-GITHUB-TOKEN",
    ]
    sarif_out = tmp_path / "out.sarif"
    result = CliRunner().invoke(app, ["scan", "secrets", str(folder), "-o", str(sarif_out), "-q"])
    assert result.exit_code == 1
    sarif = json.loads(sarif_out.read_text())
    rule_ids = {r["ruleId"] for r in sarif["runs"][0]["results"]}
    assert "SECRET-GITHUB-TOKEN" in rule_ids
    for text in (result.output, json.dumps(doc), sarif_out.read_text()):
        for secret in secrets:
            assert secret not in text and secret[4:] not in text


def test_text_output_redacts_and_fail_on(leaky: tuple[Path, list[str]]) -> None:
    folder, secrets = leaky
    runner = CliRunner()
    result = runner.invoke(app, ["scan", "secrets", str(folder), "--format", "text", "--explain"])
    assert result.exit_code == 1
    assert "SECRET-GITHUB-TOKEN" in result.output
    for secret in secrets:
        assert secret not in result.output
    passing = runner.invoke(
        app, ["scan", "secrets", str(folder), "-f", "json", "--fail-on", "critical"]
    )
    assert passing.exit_code == 1  # the GitHub token is critical
    folder.joinpath("settings.py").write_text("x = 1\n")
    clean = runner.invoke(app, ["scan", "secrets", str(folder), "-f", "json"])
    assert clean.exit_code == 0 and json.loads(clean.output)["findings"] == []


def test_write_then_use_baseline(leaky: tuple[Path, list[str]], tmp_path: Path) -> None:
    folder, secrets = leaky
    base = tmp_path / "base" / "secrets-baseline.json"
    runner = CliRunner()
    first = runner.invoke(
        app, ["scan", "secrets", str(folder), "-f", "json", "-q", "--write-baseline", str(base)]
    )
    assert first.exit_code == 1
    assert not any(s in base.read_text() for s in secrets)
    second = runner.invoke(
        app, ["scan", "secrets", str(folder), "-f", "json", "--baseline", str(base)]
    )
    assert second.exit_code == 0, second.output
    assert json.loads(second.output)["findings"] == []


def test_bad_baseline_is_one_line_and_exit_2(leaky: tuple[Path, list[str]], tmp_path: Path) -> None:
    folder, _ = leaky
    bad = tmp_path / "bad.json"
    bad.write_text("{broken")
    result = run("scan", "secrets", str(folder), "--baseline", str(bad))
    assert result.returncode == 2
    assert "not valid JSON" in result.stderr and "Traceback" not in result.stderr


def test_history_outside_a_repository_is_exit_2(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("hello\n")
    result = CliRunner().invoke(app, ["scan", "secrets", str(tmp_path), "--history"])
    assert result.exit_code != 0
    assert "not a git repository" in str(result.exception)
