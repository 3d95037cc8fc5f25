"""Git history: every line ever added in any commit of any ref, scanned once, with commit and line.

One `git log -p --all` stream is read (no checkout, no per-commit process); for each commit and
file the added lines are joined and scanned together, so multi-line secrets (PEM keys) are found
and each finding maps back to the line number it had in that commit.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from secmlops.errors import ScanError
from secmlops.findings import Location, Report, ScanFailure
from secmlops.scan.secrets.detectors import scan_text

_HUNK = re.compile(rb"^@@ -\d+(?:,\d+)? \+(\d+)(?:,\d+)? @@")
_COMMIT_MARK = b"\x00commit "


@dataclass(slots=True)
class _Added:
    """The lines one commit added to one file, with their line numbers in that commit."""

    commit: str
    path: str
    lines: list[str] = field(default_factory=list)
    numbers: list[int] = field(default_factory=list)


def _git(repo: Path) -> str:
    git = shutil.which("git")
    if git is None:
        raise ScanError("--history needs git, which is not installed", hint="install git")
    probe = subprocess.run(  # noqa: S603 - fixed arguments, git found on PATH
        [git, "-C", str(repo), "rev-parse", "--git-dir"],
        capture_output=True,
        check=False,
        timeout=30,
    )
    if probe.returncode != 0:
        raise ScanError(
            f"{repo} is not a git repository",
            hint="run --history on the repository root, or drop --history",
        )
    return git


def _unquote(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace")
    if text.startswith('"') and text.endswith('"'):
        # git C-quotes unusual names; the common escapes are enough for display
        text = text[1:-1].encode("latin-1", "backslashreplace").decode("unicode_escape", "replace")
    return text[2:] if text.startswith(("a/", "b/")) else text


def _parse(stream: Iterator[bytes]) -> Iterator[_Added]:
    commit = ""
    current: _Added | None = None
    number = 0
    for raw in stream:
        line = raw.rstrip(b"\n")
        if line.startswith(_COMMIT_MARK):
            if current is not None and current.lines:
                yield current
            current = None
            commit = line[len(_COMMIT_MARK) :].decode("ascii", "replace").strip()
        elif line.startswith(b"+++ "):
            if current is not None and current.lines:
                yield current
            target = line[4:]
            current = None if target == b"/dev/null" else _Added(commit, _unquote(target))
        elif line.startswith(b"@@"):
            m = _HUNK.match(line)
            number = int(m.group(1)) if m else 0
        elif current is not None and line.startswith(b"+"):
            current.lines.append(line[1:].decode("utf-8", "replace"))
            current.numbers.append(number)
            number += 1
        elif line.startswith(b" "):
            number += 1
    if current is not None and current.lines:
        yield current


def scan_history(
    repo: Path,
    report: Report,
    progress: Callable[[str, int, int], None] | None = None,
    *,
    timeout: float = 3600.0,
) -> int:
    """Scan every commit reachable from any ref of `repo`; returns the number of commits seen."""
    git = _git(repo)
    cmd = [
        git,
        "-C",
        str(repo),
        "-c",
        "core.quotepath=off",
        "log",
        "--all",
        "-p",
        "--unified=0",
        "--no-color",
        "--no-ext-diff",
        "--no-textconv",
        "--format=%x00commit %H",
    ]
    commits: set[str] = set()
    # stderr goes to a file: a full pipe nobody reads would stall git
    with (
        tempfile.TemporaryFile() as errors,
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errors) as proc,  # noqa: S603
    ):
        assert proc.stdout is not None
        for added in _parse(iter(proc.stdout.readline, b"")):
            commits.add(added.commit)
            text = "\n".join(added.lines)
            base = Location(path=added.path, commit=added.commit)
            for finding in scan_text(text, base):
                index = (finding.location.line or 1) - 1
                line = added.numbers[index] if index < len(added.numbers) else None
                report.add(replace(finding, location=replace(finding.location, line=line)))
            report.bytes_scanned += len(text)
            if progress is not None:
                progress(f"{added.commit[:12]} {added.path}", len(commits), len(commits))
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
        errors.seek(0)
        stderr = errors.read()
    if proc.returncode != 0:
        message = stderr.decode("utf-8", "replace").strip().splitlines()
        report.errors.append(
            ScanFailure(
                Location(path=str(repo)),
                f"git log failed: {message[-1] if message else proc.returncode}",
            )
        )
    return len(commits)
