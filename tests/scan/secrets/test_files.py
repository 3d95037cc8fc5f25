"""Files and folders: notebooks, binaries, encodings, huge and unreadable files, workers."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from secmlops.errors import ScanError
from secmlops.scan.secrets import SecretScanSettings, scan_paths
from secmlops.scan.secrets import files as files_mod
from tests.scan.secrets import fakes


@pytest.fixture
def rng() -> random.Random:
    return random.Random(11)


def test_folder_scan_reports_path_and_line(tmp_path: Path, rng: random.Random) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text(
        f'import os\n\nHF = "{fakes.huggingface_token(rng)}"\n'
    )
    (tmp_path / "README.md").write_text("nothing here\n")
    report = scan_paths([tmp_path])
    assert [
        (f.rule_id, Path(f.location.path or "").name, f.location.line) for f in report.findings
    ] == [("SECRET-HUGGINGFACE-TOKEN", "app.py", 3)]
    assert report.files_scanned == 2 and not report.errors


def test_notebook_sources_and_outputs_with_cell_index(tmp_path: Path, rng: random.Random) -> None:
    token, key = fakes.openai_key(rng), fakes.github_token(rng)
    nb = {
        "cells": [
            {"cell_type": "markdown", "source": ["# Analysis\n"], "metadata": {}},
            {"cell_type": "code", "source": ["import os\n", f'client = OpenAI(api_key="{token}")\n'],
             "outputs": [], "metadata": {}, "execution_count": 1},
            {"cell_type": "code", "source": ["!env\n"], "metadata": {}, "execution_count": 2,
             "outputs": [{"output_type": "stream", "name": "stdout", "text": ["PATH=/bin\n", f"GH={key}\n"]},
                         {"output_type": "display_data", "data": {"image/png": "iVBORw0KGgo" * 50}}]},
        ],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5,
    }  # fmt: skip
    path = tmp_path / "explore.ipynb"
    path.write_text(json.dumps(nb, indent=1))
    found = scan_paths([path]).findings
    assert [(f.rule_id, f.location.member, f.location.line) for f in found] == [
        ("SECRET-OPENAI-KEY", "cells[1]", 2),
        ("SECRET-GITHUB-TOKEN", "cells[2]/outputs[0]", 2),
    ]


def test_broken_notebook_is_scanned_as_text(tmp_path: Path, rng: random.Random) -> None:
    path = tmp_path / "broken.ipynb"
    path.write_text('{"cells": [ {"source": "token = \'' + fakes.github_token(rng) + "'")
    assert [f.rule_id for f in scan_paths([path]).findings] == ["SECRET-GITHUB-TOKEN"]


def test_binary_files_are_skipped_but_counted(tmp_path: Path, rng: random.Random) -> None:
    (tmp_path / "model.bin").write_bytes(b"\x00\x01" + fakes.github_token(rng).encode())
    report = scan_paths([tmp_path])
    assert report.findings == [] and report.files_skipped == 1 and report.files_scanned == 0


def test_invalid_utf8_around_a_secret(tmp_path: Path, rng: random.Random) -> None:
    path = tmp_path / "latin.cfg"
    path.write_bytes(
        b"caf\xe9 \xff\xfe\n" + f"key={fakes.stripe_key(rng)}\n".encode() + b"\xc3\x28"
    )
    report = scan_paths([path])
    assert [(f.rule_id, f.location.line) for f in report.findings] == [("SECRET-STRIPE-KEY", 2)]


def test_huge_single_line(tmp_path: Path, rng: random.Random) -> None:
    token = fakes.gitlab_token(rng)
    path = tmp_path / "minified.js"
    path.write_text("var a=1;" * 400_000 + f'var t="{token}";' + "x" * 1_000_000)
    assert [f.rule_id for f in scan_paths([path]).findings] == ["SECRET-GITLAB-TOKEN"]


def test_oversized_file_is_a_finding_not_silence(tmp_path: Path) -> None:
    path = tmp_path / "dump.sql"
    path.write_bytes(b"a" * 5000)
    report = scan_paths([path], SecretScanSettings(max_file_bytes=1000))
    assert [f.rule_id for f in report.findings] == ["SECRET-FILE-NOT-SCANNED"]
    assert report.findings[0].evidence["bytes"] == 5000


def test_read_error_is_an_error_not_clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.env"
    path.write_text("x=1\n")

    def refuse(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", refuse)
    report = scan_paths([path])
    assert [e.message for e in report.errors] == ["could not read: Permission denied"]
    assert report.exit_code(report.max_severity() or 0) == 2  # type: ignore[arg-type]


def test_empty_file_and_missing_path(tmp_path: Path) -> None:
    (tmp_path / "empty.py").write_bytes(b"")
    assert scan_paths([tmp_path]).files_scanned == 1
    with pytest.raises(ScanError, match="no such file"):
        scan_paths([tmp_path / "nope"])


def test_tool_folders_and_excludes_are_skipped(tmp_path: Path, rng: random.Random) -> None:
    for sub in (".git", "node_modules", "fixtures"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "x.env").write_text(f"T={fakes.npm_token(rng)}\n")
    report = scan_paths([tmp_path], SecretScanSettings(exclude=("*/fixtures/*",)))
    assert report.findings == [] and report.files_scanned == 0


def test_parallel_workers_give_the_same_findings(
    tmp_path: Path, rng: random.Random, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(12):
        (tmp_path / f"f{i}.py").write_text(f"x = {i}\ntoken = '{fakes.slack_bot_token(rng)}'\n")
    serial = scan_paths([tmp_path], jobs=1)
    monkeypatch.setattr(files_mod, "_PARALLEL_MIN_BYTES", 0)
    parallel = scan_paths([tmp_path], jobs=2)
    assert len(serial.findings) == 12
    assert [f.to_dict() for f in parallel.findings] == [f.to_dict() for f in serial.findings]
    assert parallel.files_scanned == serial.files_scanned == 12
