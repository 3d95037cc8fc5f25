"""`scan pii`, `data anonymize` and `data detokenize` through the real command line."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from secmlops.cli.main import app
from secmlops.errors import DataError
from tests.cli import run_cli

CSV = (
    "id,email,card,notes\n"
    "1,john.doe@example.com,4539 5787 6362 1486,call (415) 555-2671\n"
    "2,jane@corp.org,5500 0000 0000 0004,fine\n"
    "3,bob@site.net,371449635398431,ok\n"
)
KEYS = {"SECMLOPS_HASH_KEY": "h" * 24, "SECMLOPS_VAULT_KEY": "v" * 24}


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, env=env)


def invoke(*args: str, **env: str) -> tuple[int, str, BaseException | None]:
    """In process (fast): the exit code, stdout and a domain error main() would print."""
    result = CliRunner().invoke(app, list(args), env={"NO_COLUMNS": "1", **env})
    error = result.exception if not isinstance(result.exception, SystemExit) else None
    return result.exit_code, result.stdout, error


@pytest.fixture
def table(tmp_path: Path) -> Path:
    path = tmp_path / "people.csv"
    path.write_text(CSV)
    return path


def test_scan_pii_json_and_sarif(table: Path, tmp_path: Path) -> None:
    result = run("scan", "pii", str(table), "-f", "json")
    assert result.returncode == 1, result.stderr
    doc = json.loads(result.stdout)
    columns = {f["location"].get("column"): f for f in doc["findings"]}
    assert columns["card"]["rule_id"] == "PII-COLUMN"
    assert columns["card"]["evidence"]["entity"] == "CARD"
    assert columns["notes"]["rule_id"] == "PII-PHONE"
    assert "john.doe" not in result.stdout and "6362" not in result.stdout
    code, _, _ = invoke("scan", "pii", str(table), "--output", str(tmp_path / "r.sarif"))
    assert code == 1
    assert "PII-COLUMN" in (tmp_path / "r.sarif").read_text()


def test_scan_pii_clean_and_broken(tmp_path: Path) -> None:
    (tmp_path / "clean.csv").write_text("a,b\n1,x\n2,y\n")
    assert invoke("scan", "pii", str(tmp_path / "clean.csv"), "-f", "json")[0] == 0
    (tmp_path / "cut.parquet").write_bytes(b"PAR1" + b"\x00" * 30)
    code, stdout, _ = invoke("scan", "pii", str(tmp_path), "-f", "json")
    assert code == 2
    errors = json.loads(stdout)["errors"]
    assert [e["location"]["path"].endswith("cut.parquet") for e in errors] == [True]
    assert invoke("scan", "pii", str(tmp_path), "--region", "XX")[2] is not None


def test_anonymize_tokenize_and_detokenize(table: Path, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("entities:\n  EMAIL: hash\n  CARD: tokenize\n  PHONE: {operator: mask}\n")
    out = tmp_path / "anon.csv"
    vault = tmp_path / "vault.json"
    args = ["data", "anonymize", str(table), "--out", str(out), "--policy", str(policy)]
    code, stdout, error = invoke(*args, "--vault", str(vault), "-f", "json", **KEYS)
    assert code == 0, error
    summary = json.loads(stdout)
    assert {c["column"] for c in summary["columns"]} == {"email", "card", "notes"}
    written = out.read_text()
    for value in ("john.doe@example.com", "4539 5787 6362 1486", "(415) 555-2671"):
        assert value not in written
    assert "(***) ***-2671" in written
    assert table.read_text() == CSV  # the input is untouched
    manifest = json.loads(Path(summary["manifest"]).read_text())
    assert manifest["files"][0]["path"] == "anon.csv"

    back = tmp_path / "back.csv"
    detokenize = ["data", "detokenize", str(out), "--out", str(back), "--vault", str(vault)]
    assert invoke(*detokenize, **KEYS)[0] == 0
    assert "4539 5787 6362 1486" in back.read_text()
    _, _, error = invoke(*detokenize, SECMLOPS_VAULT_KEY="w" * 24)
    assert isinstance(error, DataError) and "wrong vault key" in error.message


def test_anonymize_refuses_to_write_the_input(table: Path) -> None:
    result = run("data", "anonymize", str(table), "--out", str(table))
    assert result.returncode == 2
    assert "refusing" in result.stderr and "Traceback" not in result.stderr
    assert table.read_text() == CSV


def test_pii_thresholds_come_from_the_config_file(tmp_path: Path) -> None:
    notes = tmp_path / "notes.csv"
    notes.write_text(
        "notes\n" + "".join(f"ssn 536-22-12{i:02d} on file\n" for i in range(3)) + "fine\n" * 20
    )
    config = tmp_path / "secmlops.toml"
    config.write_text("[pii]\nmax_cell_findings = 1\nregion = 'DE'\n")
    for command in (["scan", "pii"], ["scan", "data"]):
        default = invoke(*command, str(notes), "-f", "json")
        assert [f["rule_id"] for f in json.loads(default[1])["findings"]] == ["PII-SSN"] * 3
        code, out, _ = invoke(*command, str(notes), "-f", "json", "--config", str(config))
        found = json.loads(out)["findings"]
        assert [f["location"]["rows"] for f in found] == [[0], [1, 2]], command  # 1 + summary
    config.write_text("[pii]\nmax_cell_findings = 'many'\n")
    code, _, error = invoke("scan", "pii", str(notes), "--config", str(config))
    assert code != 0 and error is not None and "max_cell_findings" in str(error)
