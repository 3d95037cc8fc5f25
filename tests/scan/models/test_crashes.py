"""Random, truncated and hostile bytes: never a crash, never a hang, never silently clean."""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import pytest
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


def _evil_zip(method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        for name, data in (("archive/data.pkl", EVIL), ("archive/data/0", b"\x00" * 64)):
            z.writestr(zipfile.ZipInfo(name, (2026, 1, 1, 0, 0, 0)), data, method)  # same bytes
    return buf.getvalue()


def _reaches_the_payload(data: bytes) -> bool:
    """Would Python's zip reader still hand the malicious member to a loader?"""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            return any(b"system" in z.read(name) for name in z.namelist())
    except Exception:
        return False


def _never_clean(tmp: Path, data: bytes, *, strict: bool = False) -> None:
    """Never a crash; and while the malicious pickle can still be read out of the archive (or
    STRICT: a reader more lenient than Python's might read it), the verdict is 'found it' (1) or
    'could not check it' (2), never clean."""
    target = tmp / "mutated.pt"
    target.write_bytes(data)
    verdict = scan_paths([target]).exit_code(Severity.HIGH)
    assert verdict in ((1, 2) if strict or _reaches_the_payload(data) else (0, 1, 2))


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    method=st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]),
    edits=st.lists(
        st.tuples(st.integers(min_value=0), st.integers(0, 255)), min_size=1, max_size=4
    ),
)
def test_zips_with_mutated_bytes_never_crash_nor_pass(
    tmp_path: Path, method: int, edits: list[tuple[int, int]]
) -> None:
    data = bytearray(_evil_zip(method))
    for position, value in edits:
        data[position % len(data)] = value
    _never_clean(tmp_path, bytes(data))


def _patch_headers(data: bytes, offset: int, value: bytes) -> bytes:
    """Write VALUE at OFFSET of every local (PK\x03\x04) and central (PK\x01\x02) header."""
    out = bytearray(data)
    for magic, shift in ((b"PK\x03\x04", 0), (b"PK\x01\x02", 2)):
        at = out.find(magic)
        while at != -1:
            # central headers carry "version made by" first: their later fields sit 2 bytes on
            field = at + offset + (shift if offset >= 4 else 0)
            out[field : field + len(value)] = value
            at = out.find(magic, at + 4)
    return bytes(out)


# Fields whose values the standard library's zip reader refuses with other exceptions than
# BadZipFile (found by coverage-guided fuzzing): NotImplementedError for a version or method it
# does not know, OverflowError for an offset past 2**63, zlib.error for a corrupt deflate stream.
HEADER_EDITS = {
    "version needed 8.0": (4, b"\x50\x00"),
    "version needed 25.3": (4, b"\xfd\x00"),
    "compression method 99 (AES)": (8, b"\x63\x00"),
    "compression method 12 (bzip2)": (8, b"\x0c\x00"),
    "compression method 14 (LZMA)": (8, b"\x0e\x00"),
    "encrypted flag": (6, b"\x01\x00"),
}


@pytest.mark.parametrize("edit", HEADER_EDITS, ids=list(HEADER_EDITS))
def test_zip_headers_the_reader_refuses_are_reported_not_raised(tmp_path: Path, edit: str) -> None:
    offset, value = HEADER_EDITS[edit]
    _never_clean(tmp_path, _patch_headers(_evil_zip(), offset, value), strict=True)


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


def test_npy_header_with_an_unhashable_key_is_malformed(tmp_path: Path) -> None:
    header = b"{[1]: 2, 'descr': '<f8', 'fortran_order': False, 'shape': (1,), }"
    header += b" " * (-(10 + len(header) + 1) % 64) + b"\n"
    target = tmp_path / "bad.npy"
    target.write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + bytes(8))
    report = scan_paths([target])
    assert {f.rule_id for f in report.findings} >= {"MODEL-NUMPY-MALFORMED"}
    assert [e.message for e in report.errors] == [".npy header does not parse"]


def test_a_stray_zip_signature_does_not_hide_an_unknown_model_file(tmp_path: Path) -> None:
    target = tmp_path / "weights.npy"  # 20 bytes no reader loads, with "PK\x05\x06" inside
    target.write_bytes(b"PPK\x03p`e\x93\x94pyPK\x05\x06\x00\x00\x00\x00\x00\x00")
    assert [f.rule_id for f in scan_paths([target]).findings] == ["MODEL-FORMAT-UNKNOWN"]


def test_a_stream_of_many_tiny_pickles_fails_closed(tmp_path: Path) -> None:
    target = tmp_path / "many.pkl"
    target.write_bytes(b"N." * 200_000)  # every one loadable by a loader calling load() in a loop
    report = scan_paths([target])
    assert report.exit_code(Severity.HIGH) == 2
    assert "consecutive pickles" in report.errors[0].message


def test_empty_and_tiny_files(tmp_path: Path) -> None:
    for i, data in enumerate(
        [b"", b".", b"\x80", b"\x80\x05", b"PK", b"\x93NUMPY", b"GGUF", b"\x1f\x8b"]
    ):
        (tmp_path / f"f{i}.pt").write_bytes(data)
    report = scan_paths([tmp_path])
    assert report.files_scanned == 8
