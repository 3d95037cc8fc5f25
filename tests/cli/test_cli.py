"""The real command line in a subprocess: exit codes, formats, errors without tracebacks."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from tests.cli import run_cli as run

EVIL = b"\x80\x04\x8c\x02os\x8c\x06system\x93\x8c\x04true\x85R."


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "good.pkl").write_bytes(pickle.dumps({"w": [1.0]}, protocol=4))
    (tmp_path / "README.md").write_text("# not a model\n")
    return tmp_path


def test_clean_folder_exits_0(folder: Path) -> None:
    result = run("scan", "models", str(folder), "--format", "json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["tool"] == "secmlops"
    assert doc["findings"] == [] and doc["errors"] == []
    assert doc["summary"]["files_scanned"] == 2
    assert set(doc["summary"]["counts"]) == {"info", "low", "medium", "high", "critical"}


def test_malicious_file_exits_1_with_stable_json(folder: Path) -> None:
    (folder / "evil.bin").write_bytes(EVIL)
    result = run("scan", "models", str(folder), "-f", "json")
    assert result.returncode == 1
    finding = json.loads(result.stdout)["findings"][0]
    assert set(finding) == {
        "rule_id",
        "severity",
        "title",
        "message",
        "location",
        "evidence",
        "controls",
        "fix",
    }
    assert finding["rule_id"] == "MODEL-PICKLE-EXEC"
    assert finding["severity"] == "critical"
    assert finding["location"]["path"].endswith("evil.bin")
    assert finding["location"]["offset"] == 14


def test_fail_on_threshold(folder: Path) -> None:
    (folder / "x.pt").write_bytes(b"not a model at all, but named like one")
    assert run("scan", "models", str(folder)).returncode == 0  # medium < high
    assert run("scan", "models", str(folder), "--fail-on", "medium").returncode == 1


def test_unscannable_input_exits_2(tmp_path: Path) -> None:
    (tmp_path / "cut.zip").write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    result = run("scan", "models", str(tmp_path), "-f", "json")
    assert result.returncode == 2
    assert json.loads(result.stdout)["errors"]


def test_missing_path_is_one_line_error(tmp_path: Path) -> None:
    result = run("scan", "models", str(tmp_path / "nope"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "no such file or folder" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("scan", "models"),
        ("scan", "models", ".", "--format", "xml"),
        ("scan", "models", ".", "--fail-on", "huge"),
        ("scan", "models", ".", "--allow", "no-use-given"),
        ("bogus",),
    ],
)
def test_usage_errors_exit_2_without_traceback(args: tuple[str, ...], tmp_path: Path) -> None:
    result = run(*args, cwd=tmp_path)
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr


def test_bad_config_is_a_clear_error(folder: Path) -> None:
    (folder / "secmlops.toml").write_text("[models]\nmax_depth = -3\n")
    result = run("scan", "models", ".", cwd=folder)
    assert result.returncode == 2
    assert "max_depth" in result.stderr and "Traceback" not in result.stderr


def test_config_allow_entry(folder: Path) -> None:
    data = b"\x80\x04\x8c\x05mypkg\x8c\x05Thing\x93)\x81."
    (folder / "custom.pkl").write_bytes(data)
    assert run("scan", "models", ".", cwd=folder).returncode == 1
    (folder / "pyproject.toml").write_text('[tool.secmlops.models]\nallow = ["mypkg.Thing:new"]\n')
    assert run("scan", "models", ".", cwd=folder).returncode == 0


def test_output_file_and_sarif(folder: Path) -> None:
    (folder / "evil.bin").write_bytes(EVIL)
    out = folder / "out" / "report.sarif"
    result = run("scan", "models", str(folder), "--format", "sarif", "--output", str(out))
    assert result.returncode == 1
    doc = json.loads(out.read_text())
    assert doc["version"] == "2.1.0"
    assert doc["runs"][0]["results"][0]["ruleId"] == "MODEL-PICKLE-EXEC"


def test_text_output_names_rule_and_location(folder: Path) -> None:
    (folder / "evil.bin").write_bytes(EVIL)
    result = run("scan", "models", str(folder), "--explain")
    assert result.returncode == 1
    assert (
        "MODEL-PICKLE-EXEC" in result.stdout
        and "evil.bin" in result.stdout
        and "fix:" in result.stdout
    )


def test_help_documents_flags() -> None:
    result = run("scan", "models", "--help")
    assert result.returncode == 0
    for flag in ("--format", "--output", "--fail-on", "--quiet", "--allow", "--follow-symlinks"):
        assert flag in result.stdout


def test_demo_catches_every_attack_and_passes_every_real_model() -> None:
    result = run("demo", "--models")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WRONG" not in result.stdout
    assert "Every attack was caught" in result.stdout


def test_convert_writes_safetensors_and_refuses_flagged_files(tmp_path: Path) -> None:
    import torch
    from safetensors.numpy import load_file

    torch.save({"w": torch.arange(6.0).reshape(2, 3)}, tmp_path / "m.pt")
    result = run("convert", str(tmp_path / "m.pt"), "--to", "safetensors")
    assert result.returncode == 0, result.stderr
    assert load_file(str(tmp_path / "m.safetensors"))["w"].tolist() == [[0, 1, 2], [3, 4, 5]]
    (tmp_path / "evil.pt").write_bytes(EVIL)
    refused = run("convert", str(tmp_path / "evil.pt"), "-o", str(tmp_path / "evil.safetensors"))
    assert refused.returncode == 2
    assert "MODEL-PICKLE-EXEC" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not (tmp_path / "evil.safetensors").exists()
    assert run("convert", str(tmp_path / "m.pt"), "--to", "onnx").returncode == 2
