"""Git history: a secret added and then removed is still found, with its commit and line."""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest

from secmlops.errors import ScanError
from secmlops.findings import Report
from secmlops.scan.secrets import scan_paths
from secmlops.scan.secrets.history import scan_history
from tests.scan.secrets import fakes

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def git(repo: Path, *args: str) -> str:
    env_args = [
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@example.invalid",
        "-c",
        "commit.gpgsign=false",
    ]
    done = subprocess.run(
        ["git", "-C", str(repo), *env_args, *args], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_removed_secret_is_found_in_history_with_commit(tmp_path: Path) -> None:
    rng = random.Random(5)
    token, key = fakes.github_token(rng), fakes.private_key_pem("ec")
    git(tmp_path, "init", "-q")
    (tmp_path / "app.py").write_text("import os\n\nprint('hi')\n")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-q", "-m", "first")
    (tmp_path / "app.py").write_text(f"import os\n\nTOKEN = '{token}'\nprint('hi')\n")
    (tmp_path / "deploy.pem").write_text(key)
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-q", "-m", "oops")
    leaked = git(tmp_path, "rev-parse", "HEAD")
    (tmp_path / "app.py").write_text("import os\n\nTOKEN = os.environ['TOKEN']\nprint('hi')\n")
    (tmp_path / "deploy.pem").unlink()
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-q", "-m", "remove")

    assert scan_paths([tmp_path]).findings == []  # the working tree is clean now
    report = scan_paths([tmp_path], history=True)
    found = sorted(
        (f.rule_id, f.location.path, f.location.line, f.location.commit) for f in report.findings
    )
    assert found == [
        ("SECRET-GITHUB-TOKEN", "app.py", 3, leaked),
        ("SECRET-PRIVATE-KEY", "deploy.pem", 1, leaked),
    ]
    assert not report.errors


def test_history_of_a_folder_that_is_not_a_repository(tmp_path: Path) -> None:
    with pytest.raises(ScanError, match="not a git repository"):
        scan_history(tmp_path, Report(kind="secrets"))


def test_empty_repository_has_no_commits_and_no_error(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    report = Report(kind="secrets")
    assert scan_history(tmp_path, report) == 0
    assert report.findings == []
