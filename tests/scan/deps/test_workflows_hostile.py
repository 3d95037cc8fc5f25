"""Broken and hostile workflow files: a clear failure (exit 2 material), never clean, never a crash."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secmlops.errors import ScanError
from secmlops.scan.deps.workflows import scan_workflows


def workflows(tmp_path: Path) -> Path:
    folder = tmp_path / ".github" / "workflows"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def billion_laughs(levels: int = 9) -> str:
    text = 'on: push\njobs:\n  a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for n in range(1, levels + 1):
        text += f"  a{n}: &a{n} [" + ",".join([f"*a{n - 1}"] * 9) + "]\n"
    return text


def test_malformed_yaml_is_a_failure_with_path_and_line(tmp_path: Path) -> None:
    (workflows(tmp_path) / "ci.yml").write_text("on: push\njobs:\n  a: [unclosed\n")
    report = scan_workflows([tmp_path])
    assert report.errors
    assert report.errors[0].location.path.endswith("ci.yml")  # type: ignore[union-attr]
    assert "malformed YAML" in report.errors[0].message and "line" in report.errors[0].message
    assert report.findings == []


def test_billion_laughs_is_refused_quickly(tmp_path: Path) -> None:
    (workflows(tmp_path) / "bomb.yml").write_text(billion_laughs())
    report = scan_workflows([tmp_path])
    assert len(report.errors) == 1
    assert "alias bomb" in report.errors[0].message


def test_recursive_alias_is_refused(tmp_path: Path) -> None:
    (workflows(tmp_path) / "loop.yml").write_text("on: push\njobs: &j\n  a: *j\n")
    report = scan_workflows([tmp_path])
    assert report.errors and "refers to itself" in report.errors[0].message


def test_deep_nesting_is_refused(tmp_path: Path) -> None:
    (workflows(tmp_path) / "deep.yml").write_text("on: push\njobs: " + "[" * 3000 + "]" * 3000)
    report = scan_workflows([tmp_path])
    assert report.errors and "nested more than 100 levels" in report.errors[0].message


def test_deep_block_nesting_is_refused(tmp_path: Path) -> None:
    text = "on: push\njobs:\n" + "".join(" " * i + "a:\n" for i in range(2, 1600, 2))
    (workflows(tmp_path) / "deep.yml").write_text(text)
    report = scan_workflows([tmp_path])
    assert report.errors and "nested too deeply" in report.errors[0].message


def test_binary_and_non_utf8_files_fail(tmp_path: Path) -> None:
    folder = workflows(tmp_path)
    (folder / "bin.yml").write_bytes(b"\x7fELF\x00\x00\x01")
    (folder / "latin.yml").write_bytes("on: push\nname: caf\xe9\n".encode("latin-1"))
    report = scan_workflows([tmp_path])
    messages = sorted(e.message for e in report.errors)
    assert len(messages) == 2
    assert "binary" in messages[0] and "UTF-8" in messages[1]


def test_empty_and_non_workflow_yaml_are_skipped_not_failed(tmp_path: Path) -> None:
    folder = workflows(tmp_path)
    (folder / "empty.yml").write_text("")
    (folder / "dependabot-like.yml").write_text("version: 2\nupdates: []\n")
    (tmp_path / "config.yml").write_text("jobs: {}\non: push\n")  # not under .github/workflows
    report = scan_workflows([tmp_path])
    assert report.errors == [] and report.findings == []
    assert report.files_scanned == 0 and report.files_skipped == 2


def test_explicit_file_anywhere_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text("on: push\njobs:\n  a:\n    steps: [{run: 'echo ${{ github.head_ref }}'}]\n")
    report = scan_workflows([path])
    assert report.files_scanned == 1
    assert any(f.rule_id == "WORKFLOW-INJECTION" for f in report.findings)


def test_missing_path_is_a_usage_level_error(tmp_path: Path) -> None:
    with pytest.raises(ScanError, match="no such file"):
        scan_workflows([tmp_path / "nope"])


def test_python_tags_are_read_as_data_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    (workflows(tmp_path) / "tag.yml").write_text(
        "on: push\njobs:\n  a: !!python/object/apply:os.system ['touch " + str(marker) + "']\n"
    )
    report = scan_workflows([tmp_path])
    assert not marker.exists()
    assert report.errors == []


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=400) | st.text(alphabet="onjbs:-[]{}&*!|>\n \"'$", max_size=300))
def test_arbitrary_input_never_crashes(tmp_path: Path, data: bytes | str) -> None:
    path = tmp_path / "fuzz.yml"
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    report = scan_workflows([path])
    assert report.files_scanned + report.files_skipped + len(report.errors) == 1
