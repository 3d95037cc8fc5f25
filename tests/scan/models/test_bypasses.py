"""The adversarial suite: every published technique is caught, every benign twin passes.

The samples are real (see test_samples_execute.py, which proves each one executes); here they are
only scanned. A malicious sample counts as caught when the scan has a finding at high or above or
an error (fail closed); a benign one passes when it has no finding at medium or above and no error.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from secmlops.findings import Report, Severity
from secmlops.scan.models import scan_paths
from tests.scan.models.samples import BENIGN, MALICIOUS, Sample, write_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("corpus")
    return write_corpus(root / "files", root / "marker-never-created")


def caught(report: Report) -> bool:
    return bool(report.errors) or any(f.severity >= Severity.HIGH for f in report.findings)


def describe(report: Report) -> str:
    return (
        "; ".join(f"{f.severity.label} {f.rule_id}: {f.message}" for f in report.findings)
        or "no findings"
    )


@pytest.mark.parametrize("sample", MALICIOUS, ids=lambda s: s.name)
def test_malicious_sample_is_caught(corpus: dict[str, Path], sample: Sample) -> None:
    report = scan_paths([corpus[sample.name]])
    assert caught(report), f"{sample.family} / {sample.source}: {describe(report)}"


@pytest.mark.parametrize("sample", BENIGN, ids=lambda s: s.name)
def test_benign_twin_passes(corpus: dict[str, Path], sample: Sample) -> None:
    report = scan_paths([corpus[sample.name]])
    if sample.expect_error:
        # Deliberately broken benign files: fail closed, but never as code execution.
        assert not [f for f in report.findings if f.rule_id == "MODEL-PICKLE-EXEC"], describe(
            report
        )
        return
    bad = [f for f in report.findings if f.severity >= Severity.MEDIUM]
    assert not bad and not report.errors, describe(report) + f" errors={report.errors}"


def test_every_malicious_sample_has_a_benign_twin() -> None:
    names = {s.name for s in BENIGN}
    missing = [s.name for s in MALICIOUS if s.twin is not None and s.twin not in names]
    assert not missing
