"""`secmlops scan workflows` and `scan infra` through the real command line in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.test_cli import run  # the same subprocess runner as the models CLI tests


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    wf = tmp_path / ".github" / "workflows"
    wf.mkdir(parents=True)
    (wf / "triage.yml").write_text(
        "on: issues\npermissions: {}\njobs:\n  t:\n    runs-on: x\n    steps:\n"
        '      - run: echo "${{ github.event.issue.title }}"\n'
    )
    (tmp_path / "Dockerfile").write_text("FROM python:3.11-slim\nUSER 1000\n")
    return tmp_path


def test_workflows_json_and_exit_1(repo: Path) -> None:
    result = run("scan", "workflows", str(repo), "--format", "json")
    assert result.returncode == 1, result.stderr
    doc = json.loads(result.stdout)
    assert doc["tool"] == "secmlops"
    [finding] = doc["findings"]
    assert finding["rule_id"] == "WORKFLOW-INJECTION"
    assert finding["location"] == {"path": str(repo / ".github/workflows/triage.yml"), "line": 7}


def test_workflows_default_path_and_fail_on(repo: Path) -> None:
    result = run("scan", "workflows", "--fail-on", "critical", "-q", cwd=repo)
    assert result.returncode == 0, result.stderr
    assert "WORKFLOW-INJECTION" in result.stdout


def test_malformed_workflow_exits_2(repo: Path) -> None:
    (repo / ".github" / "workflows" / "bad.yml").write_text("on: [push\n")
    result = run("scan", "workflows", str(repo), "-f", "json")
    assert result.returncode == 2
    assert json.loads(result.stdout)["errors"][0]["location"]["path"].endswith("bad.yml")


def test_infra_sarif_output_file(repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "infra.sarif"
    result = run("scan", "infra", str(repo), "--output", str(out))
    assert result.returncode == 0, result.stderr  # only a low finding (tag without digest)
    sarif = json.loads(out.read_text())
    [res] = sarif["runs"][0]["results"]
    assert res["ruleId"] == "INFRA-DOCKER-BASE-NO-DIGEST"
    assert res["locations"][0]["physicalLocation"]["region"]["startLine"] == 1


def test_infra_checkov_missing_is_exit_2_with_builtin_findings(repo: Path) -> None:
    env_path = str(Path(sys.executable).parent)  # the project venv has no checkov
    result = subprocess.run(
        [sys.executable, "-m", "secmlops", "scan", "infra", str(repo), "--checkov", "-f", "json"],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": env_path},
        timeout=120,
    )
    assert result.returncode == 2
    doc = json.loads(result.stdout)
    assert [f["rule_id"] for f in doc["findings"]] == ["INFRA-DOCKER-BASE-NO-DIGEST"]
    assert "checkov is not installed" in doc["errors"][0]["message"]


@pytest.mark.parametrize(
    "args",
    [("scan", "infra", "/no/such/dir"), ("scan", "workflows", ".", "--format", "xml")],
)
def test_usage_errors_are_one_line(args: tuple[str, ...], tmp_path: Path) -> None:
    result = run(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
