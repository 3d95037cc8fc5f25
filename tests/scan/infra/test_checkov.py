"""The checkov bridge: output conversion (from a captured-shape fixture), a stand-in checkov
executable for the subprocess path, and the clear failure when checkov is not installed."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from secmlops.errors import ScanError
from secmlops.findings import Location, Severity
from secmlops.scan.infra import checkov as bridge
from secmlops.scan.infra import scan_infra

FIXTURE = Path(__file__).parent / "fixtures" / "checkov_output.json"


def fixture_text(root: Path) -> str:
    return FIXTURE.read_text().replace("ROOT", str(root))


def test_failed_checks_become_findings(tmp_path: Path) -> None:
    result = bridge.convert_checkov_output(fixture_text(tmp_path), tmp_path)
    by_id = {f.rule_id: f for f in result.findings}
    assert set(by_id) == {
        "IAC-CHECKOV-CKV-AWS-20",
        "IAC-CHECKOV-CKV2-AWS-62",
        "IAC-CHECKOV-CKV-DOCKER-3",
    }
    acl = by_id["IAC-CHECKOV-CKV-AWS-20"]
    assert acl.severity is Severity.MEDIUM  # open-source checkov has no severity
    assert acl.location.path == str(tmp_path / "main.tf") and acl.location.line == 1
    assert acl.evidence["check_id"] == "CKV_AWS_20"
    assert "prismacloud" in acl.fix
    assert by_id["IAC-CHECKOV-CKV2-AWS-62"].severity is Severity.LOW
    assert by_id["IAC-CHECKOV-CKV-DOCKER-3"].location.line is None  # 0 means "whole file"
    assert [e.location.path for e in result.errors] == [f"{tmp_path}/broken.tf"]
    assert set(result.rules) == set(by_id)


def test_bare_summary_means_nothing_found() -> None:
    summary = '{"passed": 0, "failed": 0, "skipped": 0, "parsing_errors": 0, "resource_count": 0}'
    result = bridge.convert_checkov_output(summary)
    assert result.findings == () and result.errors == ()


@pytest.mark.parametrize("text", ["", "not json", "[1, 2]", '"a string"'])
def test_garbage_output_is_an_error(text: str) -> None:
    with pytest.raises(ScanError, match="checkov"):
        bridge.convert_checkov_output(text)


def fake_checkov(tmp_path: Path, body: str) -> Path:
    """A stand-in `checkov` executable that prints a fixed answer."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "checkov"
    exe.write_text(f"#!{sys.executable}\n{body}\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return bin_dir


def test_run_checkov_through_a_subprocess(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "main.tf").write_text(
        'resource "aws_s3_bucket" "models" {\n  acl = "public-read"\n}\n'
    )
    answer = fixture_text(project)
    args_file = tmp_path / "args.json"
    bin_dir = fake_checkov(
        tmp_path,
        "import json, sys\n"
        f"open({str(args_file)!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
        f"sys.stdout.write({answer!r})\n",
    )
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    report = scan_infra([project], checkov=True)
    args = json.loads(args_file.read_text())
    assert args[:2] == ["-d", str(project)] and "--skip-download" in args
    ids = {f.rule_id for f in report.findings}
    assert "IAC-CHECKOV-CKV-AWS-20" in ids and "INFRA-TF-BUCKET-PUBLIC" in ids  # both engines
    assert "IAC-CHECKOV-CKV-AWS-20" in report.rules
    assert [e.message for e in report.errors] == ["checkov could not parse this file"]


def test_checkov_crash_is_a_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = fake_checkov(tmp_path, "import sys\nsys.stderr.write('boom\\n')\nsys.exit(3)")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(ScanError, match=r"exit 3.*boom"):
        bridge.run_checkov([tmp_path])


def test_missing_checkov_keeps_builtin_findings_and_fails_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bridge, "checkov_command", lambda: None)
    (tmp_path / "Dockerfile").write_text("FROM ubuntu\n")
    report = scan_infra([tmp_path], checkov=True)
    assert {f.rule_id for f in report.findings} >= {"INFRA-DOCKER-ROOT"}
    assert len(report.errors) == 1
    assert "checkov is not installed" in report.errors[0].message
    assert "secmlops[iac]" in report.errors[0].message


def test_output_captured_from_real_checkov(tmp_path: Path) -> None:
    """checkov 3.3.30 `-d DIR -o json --soft-fail` on a Dockerfile, a .tf and a broken .tf
    (code blocks and most passed checks trimmed to keep the fixture small)."""
    text = (FIXTURE.parent / "checkov_captured.json").read_text().replace("ROOT", str(tmp_path))
    result = bridge.convert_checkov_output(text, tmp_path)
    assert len(result.findings) == 17
    by_id = {f.evidence["check_id"]: f for f in result.findings}
    assert by_id["CKV_AWS_20"].location == Location(path=str(tmp_path / "main.tf"), line=1)
    assert by_id["CKV_DOCKER_4"].location.line == 8
    assert {f.evidence["check_type"] for f in result.findings} == {"dockerfile", "terraform"}
    assert [e.location.path for e in result.errors] == [str(tmp_path / "broken.tf")]
