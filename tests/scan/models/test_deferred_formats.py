"""Formats loaded on first need: the cheap first-bytes test must accept every blob the real scanner
accepts (else a file of that format would pass unscanned), and scanning other formats must not
load them. The format tests (test_formats_*.py) also run every crafted file through the same
registry, so a test that is too strict fails there too."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from secmlops.findings import Location
from secmlops.scan.models.engine import Blob
from secmlops.scan.models.formats import SCANNERS, Deferred

DEFERRED = [s for s in SCANNERS if isinstance(s, Deferred)]
MAGICS = [b"GGUF", b"\x08", b"\x0a", b"\x12", b"\x88\x00", b"PK\x03\x04", b"\x89HDF\r\n\x1a\n"]


def _blob(data: bytes, name: str = "m", depth: int = 1) -> Blob:
    return Blob.from_bytes(data, Location(path="x"), depth, name)


def test_each_deferred_scanner_is_the_format_it_names() -> None:
    assert {s.name for s in DEFERRED} == {
        "skops", "safetensors", "gguf", "onnx", "keras", "hdf5", "tensorflow",
    }  # fmt: skip
    for deferred in DEFERRED:
        assert deferred.load().name == deferred.name


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from([b"", *MAGICS]),
    st.binary(max_size=600),
    st.sampled_from(["m", "schema.json", "model.safetensors"]),
)
def test_the_first_bytes_test_accepts_whatever_the_scanner_accepts(
    prefix: bytes, rest: bytes, name: str
) -> None:
    blob = _blob(prefix + rest, name)
    for deferred in DEFERRED:
        if deferred.load().sniff(blob):
            assert deferred.could_be(blob), (deferred.name, blob.head[:16])


def test_real_files_of_each_format_pass_the_first_bytes_test(tmp_path: Path) -> None:
    import h5py
    import numpy as np
    import onnx
    from onnx import TensorProto, helper
    from safetensors.numpy import save

    files: dict[str, bytes] = {"safetensors": save({"w": np.zeros((2, 3), np.float32)})}
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    files["onnx"] = helper.make_model(graph).SerializeToString()
    onnx.checker.check_model(onnx.load_from_string(files["onnx"]))
    with h5py.File(tmp_path / "w.h5", "w", userblock_size=512) as h5:
        h5["w"] = np.arange(4)
    files["hdf5"] = (tmp_path / "w.h5").read_bytes()  # the signature after a 512-byte user block
    for name, data in files.items():
        deferred = next(d for d in DEFERRED if d.name == name)
        blob = _blob(data)
        assert deferred.load().sniff(blob), name
        assert deferred.could_be(blob), name


def _run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    return done.stdout.strip()


def test_scanning_pickles_loads_no_deferred_module_and_the_rules_are_all_known(
    tmp_path: Path,
) -> None:
    (tmp_path / "a.pkl").write_bytes(pickle.dumps({"w": [1.0, 2.0]}))
    (tmp_path / "b.pkl").write_bytes(pickle.dumps([1, 2, 3], protocol=2))
    out = _run(
        "import sys\n"
        "from secmlops.scan.models import scan_paths\n"
        f"report = scan_paths([{str(tmp_path)!r}], jobs=1)\n"
        "assert report.files_scanned == 2 and not report.findings, report\n"
        "print(sorted(m.rsplit('.', 1)[-1] for m in sys.modules\n"
        "             if m.startswith('secmlops.scan.models.formats.')))\n"
        "print(sorted(r for r in report.rules if r.startswith(('MODEL-GGUF', 'MODEL-ONNX'))))"
    )
    loaded, rules = out.splitlines()
    for module in ("gguf", "savedmodel", "onnx_file", "keras", "hdf5", "safetensors_file"):
        assert f"'{module}'" not in loaded
    assert "'pickle_file'" in loaded
    assert rules == str(  # the catalogue names the deferred formats' rules all the same
        [
            "MODEL-GGUF-MALFORMED", "MODEL-GGUF-TEMPLATE-INJECTION", "MODEL-GGUF-TEMPLATE-INVALID",
            "MODEL-ONNX-CUSTOM-OP", "MODEL-ONNX-EXTERNAL-DATA-PATH",
        ]
    )  # fmt: skip


def test_a_file_of_a_deferred_format_is_still_scanned(tmp_path: Path) -> None:
    from secmlops.scan.models import scan_paths

    (tmp_path / "model.gguf").write_bytes(b"GGUF\x03\x00\x00\x00" + b"\xff" * 8)  # truncated
    report = scan_paths([tmp_path], jobs=1)
    assert report.errors or any(f.rule_id.startswith("MODEL-GGUF") for f in report.findings)
