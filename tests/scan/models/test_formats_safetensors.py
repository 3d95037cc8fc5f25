"""safetensors: lying headers are caught, real files pass, broken files fail closed."""

from __future__ import annotations

import contextlib
import json
import struct
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors import safe_open
from safetensors.numpy import save_file

from secmlops.errors import ScanError
from secmlops.findings import Location, Report, Severity
from secmlops.scan.models import ModelScanSettings, scan_paths
from secmlops.scan.models.engine import Blob, ScanContext
from secmlops.scan.models.formats.safetensors_file import SafetensorsScanner

HEADER = "MODEL-SAFETENSORS-HEADER"
OFFSETS = "MODEL-SAFETENSORS-OFFSETS"
LAYOUT = "MODEL-SAFETENSORS-LAYOUT"


def raw_file(path: Path, header: dict[str, Any] | str, data: bytes = b"") -> Path:
    """A safetensors file written by hand: the header is taken as given, lies included."""
    text = header if isinstance(header, str) else json.dumps(header)
    encoded = text.encode("utf-8")
    encoded += b" " * (-len(encoded) % 8)
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + data)
    return path


def found(path: Path) -> dict[str, Severity]:
    report = scan_paths([path])
    assert not report.errors, report.errors
    return {f.rule_id: f.severity for f in report.findings}


def loader_accepts(path: Path) -> bool:
    try:
        with safe_open(str(path), "np") as f:
            for key in f.keys():  # noqa: SIM118 - safe_open is not a mapping
                try:
                    f.get_tensor(key)
                except Exception as exc:
                    # The header is valid, NumPy just has no such dtype (F4, F6_*: sub-byte
                    # floats): a framework with the dtype loads it, so the format accepts it.
                    if "numpy" not in str(exc) and "Dtype not understood" not in str(exc):
                        raise
    except Exception:  # the loader raises several types
        return False
    return True


# -- benign files made the ordinary way ------------------------------------------------------


def test_numpy_save_file_is_clean(tmp_path: Path) -> None:
    tensors: dict[str, np.ndarray[Any, Any]] = {
        "embed.weight": np.random.default_rng(0).standard_normal((16, 8)).astype(np.float32),
        "ids": np.arange(7, dtype=np.int64),
        "half": np.ones((3, 5), np.float16),
        "mask": np.array([True, False, True]),
        "bytes": np.arange(9, dtype=np.uint8),
        "empty": np.zeros((0, 4), np.float32),
        "scalar": np.array(3.5, np.float64),
    }
    path = tmp_path / "model.safetensors"
    save_file(tensors, str(path), metadata={"format": "np", "source": "unit test"})
    assert found(path) == {}


def test_torch_save_file_with_exotic_dtypes_is_clean(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file as torch_save

    tensors = {
        "bf16": torch.ones(4, 4, dtype=torch.bfloat16),
        "c64": torch.zeros(3, dtype=torch.complex64),
    }
    if hasattr(torch, "float8_e4m3fn"):
        tensors["fp8"] = torch.zeros(8, dtype=torch.float8_e4m3fn)
    path = tmp_path / "t.safetensors"
    torch_save(tensors, str(path))
    assert found(path) == {}


def test_hand_written_valid_file_is_clean_and_loads(tmp_path: Path) -> None:
    header = {
        "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
        "b": {"dtype": "I16", "shape": [2, 2], "data_offsets": [8, 16]},
        "__metadata__": None,
    }
    path = raw_file(tmp_path / "ok.safetensors", header, bytes(16))
    assert loader_accepts(path)
    assert found(path) == {}


# -- attacks and inconsistencies -------------------------------------------------------------


def test_offsets_past_the_data_are_high(tmp_path: Path) -> None:
    header = {"w": {"dtype": "F32", "shape": [1024], "data_offsets": [0, 4096]}}
    path = raw_file(tmp_path / "oob.safetensors", header, bytes(16))
    assert found(path)[OFFSETS] is Severity.HIGH
    assert not loader_accepts(path)


def test_overlapping_tensors_are_high(tmp_path: Path) -> None:
    header = {
        "a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
        "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]},
    }
    path = raw_file(tmp_path / "overlap.safetensors", header, bytes(24))
    report = scan_paths([path])
    overlap = [f for f in report.findings if f.rule_id == OFFSETS]
    assert overlap and "overlap" in overlap[0].message
    assert not loader_accepts(path)


def test_size_that_does_not_match_shape_is_high(tmp_path: Path) -> None:
    header = {"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 20]}}
    path = raw_file(tmp_path / "size.safetensors", header, bytes(20))
    assert found(path)[OFFSETS] is Severity.HIGH


def test_begin_after_end_is_high(tmp_path: Path) -> None:
    header = {"w": {"dtype": "U8", "shape": [0], "data_offsets": [8, 4]}}
    path = raw_file(tmp_path / "rev.safetensors", header, bytes(8))
    assert OFFSETS in found(path)


def test_duplicate_tensor_names_are_an_inconsistency(tmp_path: Path) -> None:
    entry = '{"dtype": "U8", "shape": [4], "data_offsets": [0, 4]}'
    path = raw_file(tmp_path / "dup.safetensors", f'{{"w": {entry}, "w": {entry}}}', bytes(4))
    report = scan_paths([path])
    dup = next(f for f in report.findings if f.rule_id == HEADER)
    assert dup.severity is Severity.HIGH
    assert dup.evidence["duplicate_keys"] == ["w"]


@pytest.mark.parametrize(
    "entry",
    [
        {"dtype": "F128", "shape": [1], "data_offsets": [0, 16]},
        {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]},
        {"dtype": "F32", "shape": [True], "data_offsets": [0, 4]},
        {"dtype": "F32", "shape": [1.0], "data_offsets": [0, 4]},
        {"dtype": "F32", "shape": [1], "data_offsets": [0]},
        {"dtype": "F32", "shape": [1], "data_offsets": [0, "4"]},
        ["F32", [1], [0, 4]],
    ],
)
def test_malformed_entries_are_reported(tmp_path: Path, entry: Any) -> None:
    path = raw_file(tmp_path / "bad.safetensors", {"w": entry}, bytes(16))
    assert HEADER in found(path)
    assert not loader_accepts(path)


def test_nan_in_header_is_reported(tmp_path: Path) -> None:
    text = '{"w": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]}, "x": NaN}'
    assert HEADER in found(raw_file(tmp_path / "nan.safetensors", text, bytes(4)))


def test_gap_and_trailing_bytes_are_medium(tmp_path: Path) -> None:
    header = {
        "a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]},
        "b": {"dtype": "U8", "shape": [4], "data_offsets": [8, 12]},
    }
    path = raw_file(tmp_path / "gap.safetensors", header, bytes(12) + b"hidden payload")
    report = scan_paths([path])
    layout = [f for f in report.findings if f.rule_id == LAYOUT]
    assert len(layout) == 2 and all(f.severity is Severity.MEDIUM for f in layout)
    assert {f.rule_id for f in report.findings} == {LAYOUT}
    assert not loader_accepts(path)


def test_non_string_metadata_is_medium(tmp_path: Path) -> None:
    header = {"__metadata__": {"n": 1}, "a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}
    path = raw_file(tmp_path / "meta.safetensors", header, b"\x00")
    assert found(path) == {LAYOUT: Severity.MEDIUM}
    assert not loader_accepts(path)


def test_many_problems_are_capped_with_a_summary(tmp_path: Path) -> None:
    header = {f"t{i}": {"dtype": "F32", "shape": [8], "data_offsets": [0, 4]} for i in range(50)}
    report = scan_paths([raw_file(tmp_path / "many.safetensors", header, bytes(4))])
    offsets = [f for f in report.findings if f.rule_id == OFFSETS]
    assert len(offsets) == 21 and "further" in offsets[-1].message


def test_locations_point_into_the_file(tmp_path: Path) -> None:
    header = {"w": {"dtype": "F32", "shape": [1024], "data_offsets": [4, 4100]}}
    path = raw_file(tmp_path / "loc.safetensors", header, bytes(16))
    finding = next(f for f in scan_paths([path]).findings if f.rule_id == OFFSETS)
    header_len = struct.unpack("<Q", path.read_bytes()[:8])[0]
    assert finding.location.offset == 8 + header_len + 4


# -- broken input fails closed ---------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    ['{"w": {"dtype": "U8"', '{"a": 1} trailing', '{"x": "\udcff"}', '{"a": [[[[[[' * 400],
)
def test_unparseable_header_is_an_error(tmp_path: Path, header: str) -> None:
    path = tmp_path / "broken.safetensors"
    encoded = header.encode("utf-8", "surrogatepass")
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + bytes(8))
    report = scan_paths([path])
    assert report.errors and report.exit_code(Severity.HIGH) == 2


def test_header_that_is_not_an_object_is_never_clean(tmp_path: Path) -> None:
    path = raw_file(tmp_path / "list.safetensors", "[1, 2, 3]", bytes(8))
    report = scan_paths([path])
    assert report.errors or any(f.severity >= Severity.MEDIUM for f in report.findings)


def test_truncated_file_is_never_clean(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    save_file({"w": np.ones((64, 64), np.float32)}, str(path))
    data = path.read_bytes()
    for cut in (4, 12, 40, len(data) // 2, len(data) - 1):
        path.write_bytes(data[:cut])
        report = scan_paths([path])
        assert report.errors or any(f.severity >= Severity.MEDIUM for f in report.findings), cut


def _scan_directly(data: bytes) -> Report:
    report = Report(kind="models")
    with tempfile.TemporaryDirectory() as tmp:
        ctx = ScanContext(report, ModelScanSettings(), (SafetensorsScanner(),), Path(tmp))
        blob = Blob.from_bytes(data, Location(path="fuzz.safetensors"), 0, "fuzz.safetensors")
        scanner = SafetensorsScanner()
        if scanner.sniff(blob):
            with contextlib.suppress(ScanError):
                scanner.scan(blob, ctx)
    return report


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200), st.integers(min_value=2, max_value=400))
def test_random_headers_only_ever_raise_scan_error(body: bytes, declared: int) -> None:
    _scan_directly(struct.pack("<Q", declared) + b"{" + body)


_DTYPES = ["U8", "F16", "F32", "F64", "BOOL", "F4", "F6_E2M3", "XX"]


@st.composite
def _headers(draw: st.DrawFn) -> tuple[dict[str, Any], int]:
    count = draw(st.integers(min_value=0, max_value=3))
    header: dict[str, Any] = {}
    for i in range(count):
        header[f"t{i}"] = {
            "dtype": draw(st.sampled_from(_DTYPES)),
            "shape": draw(st.lists(st.integers(min_value=0, max_value=6), max_size=3)),
            "data_offsets": sorted(draw(st.lists(st.integers(0, 40), min_size=2, max_size=2)))
            if draw(st.booleans())
            else draw(st.lists(st.integers(0, 40), min_size=2, max_size=2)),
        }
    if draw(st.booleans()):
        header["__metadata__"] = draw(
            st.one_of(
                st.none(),
                st.dictionaries(
                    st.text(max_size=3), st.one_of(st.text(max_size=3), st.integers()), max_size=2
                ),
            )
        )
    return header, draw(st.integers(min_value=0, max_value=48))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_headers())
def test_findings_agree_with_the_reference_loader(case: tuple[dict[str, Any], int]) -> None:
    """Whatever the reference loader rejects gets a finding; whatever it accepts gets none."""
    header, data_len = case
    with tempfile.TemporaryDirectory() as tmp:
        path = raw_file(Path(tmp) / "case.safetensors", header, bytes(data_len))
        report = scan_paths([path])
        assert not report.errors
        if loader_accepts(path):
            assert report.findings == [], (header, data_len, report.findings)
        else:
            assert report.findings, (header, data_len)
