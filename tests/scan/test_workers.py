"""The forked worker pool: every batch is merged once, and a worker that raises or dies makes its
batch's files fail closed instead of hanging the scan, crashing it or passing them as clean."""

from __future__ import annotations

import os

import pytest

from secmlops.findings import Location, Report, Rule, Severity
from secmlops.scan.workers import Batch, run_forked

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
SEEN = Rule("TEST-SEEN", Severity.HIGH, "seen", "the worker read the file", "none")


def _batches(n: int, size: int = 3) -> list[Batch]:
    return [[(f"f{b}-{i}", f"f{b}-{i}") for i in range(size)] for b in range(n)]


def _scan(batch: Batch) -> Report:
    part = Report(kind="test")
    for path, display in batch:
        part.files_scanned += 1
        part.add(SEEN.finding(Location(path=display), f"seen {path}"))
    return part


def _children() -> set[int]:
    """Our child processes that still exist (zombies included)."""
    me = os.getpid()
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == me:
                found.add(int(entry))
    return found


def test_every_batch_is_merged_once_and_workers_are_reaped() -> None:
    before = _children()
    report = Report(kind="test")
    seen: list[tuple[str, int, int]] = []
    run_forked(_batches(20), _scan, report, lambda p, d, t: seen.append((p, d, t)), jobs=3)
    assert report.files_scanned == 60
    assert sorted(f.message for f in report.findings) == sorted(
        f"seen f{b}-{i}" for b in range(20) for i in range(3)
    )
    assert [d for _, d, _ in seen] == list(range(3, 61, 3))
    assert report.errors == []
    assert _children() == before


def test_a_batch_that_raises_fails_closed_and_the_rest_is_scanned() -> None:
    def scan(batch: Batch) -> Report:
        if batch[0][0] == "f4-0":
            raise ValueError("parser tripped")
        return _scan(batch)

    report = Report(kind="test")
    run_forked(_batches(10), scan, report, None, jobs=2)
    assert report.files_scanned == 27
    failed = sorted(e.location.path or "" for e in report.errors)
    assert failed == ["f4-0", "f4-1", "f4-2"]
    assert all("ValueError: parser tripped" in e.message for e in report.errors)


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_worker_that_dies_does_not_hang_or_pass_files_as_clean(jobs: int) -> None:
    before = _children()

    def scan(batch: Batch) -> Report:
        if batch[0][0] in ("f2-0", "f7-0"):
            os._exit(3)  # as a crash in native code would
        return _scan(batch)

    report = Report(kind="test")
    run_forked(_batches(10), scan, report, None, jobs=jobs)
    assert report.files_scanned == 24  # the 8 other batches, by replacement workers if needed
    failed = sorted(e.location.path or "" for e in report.errors)
    assert failed == ["f2-0", "f2-1", "f2-2", "f7-0", "f7-1", "f7-2"]
    assert all("worker process died" in e.message for e in report.errors)
    assert all(f.severity == Severity.HIGH for f in report.findings)
    assert _children() == before
