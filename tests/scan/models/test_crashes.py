"""Random, truncated and hostile bytes: never a crash, never a hang, never silently clean."""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secmlops.findings import Severity
from secmlops.scan.models import scan_paths

EVIL = pickle.dumps({"w": 1}, protocol=2)[:-1] + b"\x8c\x02os\x8c\x06system\x93\x8c\x04true\x85R."
OPCODES = st.sampled_from(list(b"()0123FIJKLMNPQRSTUVXabcdeghijlopqrstu}]G.BC\x80\x81\x82\x83\x84\x85\x86\x87\x88\x89\x8a\x8b\x8c\x8d\x8e\x8f\x90\x91\x92\x93\x94\x95\x96\x97\x98"))  # fmt: skip
NAMES = [
    ".pkl",
    ".pt",
    ".bin",
    ".zip",
    ".npy",
    ".gz",
    ".7z",
    ".txt",
    ".safetensors",
    ".onnx",
    ".gguf",
    ".h5",
    ".keras",
]


def _scan_bytes(tmp: Path, data: bytes, suffix: str) -> None:
    target = tmp / f"sample{suffix}"
    target.write_bytes(data)
    report = scan_paths([target])
    # The contract: a report, with every failure recorded (exit 2) rather than raised.
    assert report.exit_code(Severity.HIGH) in (0, 1, 2)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=2048), suffix=st.sampled_from(NAMES))
def test_random_bytes_never_crash(tmp_path: Path, data: bytes, suffix: str) -> None:
    _scan_bytes(tmp_path, data, suffix)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=st.lists(OPCODES, max_size=200), tail=st.binary(max_size=64))
def test_random_opcode_soup_never_crashes(tmp_path: Path, ops: list[int], tail: bytes) -> None:
    _scan_bytes(tmp_path, bytes(ops) + tail, ".pkl")


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(prefix=st.binary(max_size=300), cut=st.integers(min_value=0, max_value=200))
def test_mutated_zips_never_crash(tmp_path: Path, prefix: bytes, cut: int) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("archive/data.pkl", EVIL)
        z.writestr("archive/data/0", b"\x00" * 64)
    whole = buf.getvalue()
    _scan_bytes(tmp_path, (prefix + whole)[: len(prefix) + len(whole) - cut], ".pt")


def test_every_truncation_of_a_malicious_pickle_is_flagged_or_harmless(tmp_path: Path) -> None:
    # Any prefix that still reaches the REDUCE of os.system must be reported.
    reduce_at = EVIL.rindex(b"R")
    for end in range(reduce_at + 1, len(EVIL) + 1):
        target = tmp_path / "cut.pkl"
        target.write_bytes(EVIL[:end])
        report = scan_paths([target])
        assert any(f.rule_id == "MODEL-PICKLE-EXEC" for f in report.findings), end


def test_deeply_nested_marks_and_lists(tmp_path: Path) -> None:
    data = b"\x80\x04" + b"(" * 200_000 + b"]" * 200_000 + b"."
    target = tmp_path / "deep.pkl"
    target.write_bytes(data)
    report = scan_paths([target])
    assert report.exit_code(Severity.HIGH) in (0, 1)


def test_empty_and_tiny_files(tmp_path: Path) -> None:
    for i, data in enumerate(
        [b"", b".", b"\x80", b"\x80\x05", b"PK", b"\x93NUMPY", b"GGUF", b"\x1f\x8b"]
    ):
        (tmp_path / f"f{i}.pt").write_bytes(data)
    report = scan_paths([tmp_path])
    assert report.files_scanned == 8
