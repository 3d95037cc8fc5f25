"""`secmlops scan deps` and `secmlops db update|status`: twice through the real command line in a
subprocess (exit codes, stdout documents), the rest in process with Typer's runner (faster).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from secmlops.cli.main import app
from secmlops.scan.deps.osv import import_zip
from tests.cli import run_cli
from tests.scan.deps.osv_fixtures import STANDARD, write_zip

HASH = "--hash=sha256:" + "a" * 64


def run(*args: str, db: Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, cwd=cwd, env={"SECMLOPS_DB": str(db)})


def invoke(*args: str, db: Path) -> tuple[int, str, str]:
    """The command in process: (exit code, stdout, stderr)."""
    result = CliRunner().invoke(app, list(args), env={"SECMLOPS_DB": str(db), "NO_COLOR": "1"})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def db(tmp_path: Path) -> Path:
    target = tmp_path / "db"
    import_zip(write_zip(tmp_path / "all.zip", STANDARD), target)
    return target


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "proj"
    folder.mkdir()
    (folder / "requirements.txt").write_text(
        f"requests==2.28.0 {HASH}\ntorchtriton==3.0.0 {HASH}\nnot valid!!\n"
    )
    return folder


def test_findings_exit_1_with_stable_json(db: Path, project: Path) -> None:
    result = run("scan", "deps", str(project), "-f", "json", db=db)
    assert result.returncode == 1, result.stderr
    doc = json.loads(result.stdout)
    rules = sorted(f["rule_id"] for f in doc["findings"])
    assert rules == [
        "DEPS-COMPROMISED",
        "DEPS-MALFORMED",
        "DEPS-MALICIOUS",
        "DEPS-VULN",
        "DEPS-VULN",
    ]
    vuln = next(f for f in doc["findings"] if "CVE-2023-32681" in f["message"])
    assert vuln["location"]["package"] == "requests==2.28.0"
    assert vuln["location"]["line"] == 1 and vuln["location"]["path"].endswith("requirements.txt")
    bad = next(f for f in doc["findings"] if f["rule_id"] == "DEPS-MALFORMED")
    assert bad["location"]["line"] == 3


def test_sarif_and_fail_on(db: Path, project: Path) -> None:
    (project / "requirements.txt").write_text(f"requests==2.28.0 {HASH}\n")
    assert invoke("scan", "deps", str(project), "-f", "json", db=db)[0] == 0  # medium < high
    code, out, _ = invoke("scan", "deps", str(project), "-f", "sarif", "--fail-on", "medium", db=db)
    assert code == 1
    sarif = json.loads(out)
    results = sarif["runs"][0]["results"]
    assert {r["ruleId"] for r in results} == {"DEPS-VULN"}
    region = results[0]["locations"][0]["physicalLocation"]["region"]
    assert region["startLine"] == 1


def test_fix_prints_a_diff_to_stderr_beside_json(db: Path, project: Path) -> None:
    (project / "requirements.txt").write_text(f"requests==2.28.0 {HASH}\n")
    _, out, err = invoke("scan", "deps", str(project), "-f", "json", "--fix", db=db)
    json.loads(out)  # stdout stays a JSON document
    assert "+requests==2.32.0" in err
    assert (project / "requirements.txt").read_text().startswith("requests==2.28.0")


def test_missing_database_exits_2(tmp_path: Path, project: Path) -> None:
    code, out, _ = invoke("scan", "deps", str(project), "-f", "json", db=tmp_path / "none")
    assert code == 2
    doc = json.loads(out)
    assert doc["errors"] and "DEPS-DB-MISSING" in {f["rule_id"] for f in doc["findings"]}


def test_db_update_with_corrupt_zip_is_one_line_error(db: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"not a zip")
    result = run("db", "update", "--from", str(bad), db=db)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "not a readable zip" in result.stderr
    assert "kept" in result.stderr
    code, out, _ = invoke("db", "status", db=db)
    assert code == 0 and "records:       7" in out


def test_db_update_imports_and_reports(tmp_path: Path) -> None:
    zip_path = write_zip(tmp_path / "all.zip", STANDARD)
    code, _, err = invoke("db", "update", "--from", str(zip_path), db=tmp_path / "new")
    assert code == 0 and "imported 7 records" in err
