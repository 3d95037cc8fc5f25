"""ONNX: external-data paths that leave the folder, custom-domain operators in every graph."""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper
from onnx.external_data_helper import set_external_data

from secmlops.errors import ScanError
from secmlops.findings import Location, Report, Severity
from secmlops.scan.models import ModelScanSettings, scan_paths
from secmlops.scan.models.engine import Blob, ScanContext
from secmlops.scan.models.formats.onnx_file import OnnxScanner, looks_like_onnx

EXTERNAL = "MODEL-ONNX-EXTERNAL-DATA-PATH"
CUSTOM = "MODEL-ONNX-CUSTOM-OP"


def _io(name: str) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, [2])


def model(
    nodes: list[onnx.NodeProto],
    initializers: Sequence[onnx.TensorProto] = (),
    functions: Sequence[onnx.FunctionProto] = (),
    extra_opsets: Sequence[tuple[str, int]] = (),
) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", [_io("x")], [_io("y")], initializer=list(initializers))
    opsets = [helper.make_opsetid("", 17), *(helper.make_opsetid(d, v) for d, v in extra_opsets)]
    return helper.make_model(graph, opset_imports=opsets, functions=list(functions))


def weight(name: str = "w") -> onnx.TensorProto:
    return numpy_helper.from_array(np.array([1.0, 2.0], np.float32), name)


def external_weight(location: str, name: str = "w") -> onnx.TensorProto:
    tensor = weight(name)
    set_external_data(tensor, location=location, offset=0, length=8)
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    return tensor


def save(tmp_path: Path, m: onnx.ModelProto, name: str = "model.onnx") -> Path:
    path = tmp_path / name
    path.write_bytes(m.SerializeToString())
    return path


def found(path: Path) -> dict[str, Severity]:
    report = scan_paths([path])
    assert not report.errors, report.errors
    return {f.rule_id: f.severity for f in report.findings}


def _if_node(then_nodes: list[onnx.NodeProto]) -> onnx.NodeProto:
    then_graph = helper.make_graph(then_nodes, "then", [], [_io("t")])
    else_graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["e"])], "else", [], [_io("e")]
    )
    return helper.make_node("If", ["c"], ["y"], then_branch=then_graph, else_branch=else_graph)


# -- benign ---------------------------------------------------------------------------------


def test_standard_model_with_subgraphs_and_contrib_ops_is_clean(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Add", ["x", "w"], ["a"]),
        helper.make_node("FusedMatMul", ["a", "a"], ["b"], domain="com.microsoft"),
        helper.make_node("Constant", [], ["c"], value=numpy_helper.from_array(np.array(True))),
        _if_node([helper.make_node("Relu", ["b"], ["t"])]),
    ]
    m = model(nodes, [weight()], extra_opsets=[("com.microsoft", 1)])
    onnx.checker.check_model(m)
    assert found(save(tmp_path, m)) == {}


def test_onnx_save_with_external_data_is_clean(tmp_path: Path) -> None:
    big = numpy_helper.from_array(np.ones((64, 64), np.float32), "w")
    m = model([helper.make_node("Add", ["x", "w"], ["y"])], [big])
    path = tmp_path / "model.onnx"
    onnx.save_model(
        m, str(path), save_as_external_data=True, location="model.onnx.data", size_threshold=0
    )
    assert (tmp_path / "model.onnx.data").exists()
    assert found(tmp_path) == {}


def test_local_function_calls_are_not_custom_ops(tmp_path: Path) -> None:
    fn = helper.make_function(
        "pkg.local",
        "Twice",
        ["a"],
        ["b"],
        [helper.make_node("Add", ["a", "a"], ["b"])],
        [helper.make_opsetid("", 17)],
    )
    m = model(
        [helper.make_node("Twice", ["x"], ["y"], domain="pkg.local")],
        functions=[fn],
        extra_opsets=[("pkg.local", 1)],
    )
    assert found(save(tmp_path, m)) == {}


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_model_exported_by_torch_is_clean(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU())
    path = tmp_path / "torch.onnx"
    try:
        torch.onnx.export(net, (torch.zeros(1, 4),), str(path), dynamo=False)
    except Exception as exc:  # exporter needs optional packages
        pytest.skip(f"torch.onnx.export unavailable: {exc}")
    assert found(path) == {}


# -- external data ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "location",
    [
        "/etc/passwd",
        "../../secrets.bin",
        "sub/../../x.bin",
        "C:\\Windows\\win.ini",
        "\\\\host\\share\\x",
        "~/.ssh/id_rsa",
    ],
)
def test_external_data_outside_the_folder_is_high(tmp_path: Path, location: str) -> None:
    m = model([helper.make_node("Add", ["x", "w"], ["y"])], [external_weight(location)])
    report = scan_paths([save(tmp_path, m)])
    hit = next(f for f in report.findings if f.rule_id == EXTERNAL)
    assert hit.severity is Severity.HIGH and hit.evidence["location"] == location


def test_external_data_through_a_symlink_is_high(tmp_path: Path) -> None:
    os.symlink("/etc", tmp_path / "conf")
    m = model([helper.make_node("Add", ["x", "w"], ["y"])], [external_weight("conf/hostname")])
    report = scan_paths([save(tmp_path, m)])
    hit = next(f for f in report.findings if f.rule_id == EXTERNAL)
    assert "outside the model's folder" in hit.evidence["problem"]


def test_external_data_in_attribute_tensors_and_subgraphs_is_found(tmp_path: Path) -> None:
    const = helper.make_node(
        "Constant", [], ["k"], value=external_weight("/proc/self/environ", "k")
    )
    m = model([_if_node([const, helper.make_node("Identity", ["k"], ["t"])])])
    assert found(save(tmp_path, m)) == {EXTERNAL: Severity.HIGH}


def test_external_data_in_an_archive_member_is_found(tmp_path: Path) -> None:
    m = model([helper.make_node("Add", ["x", "w"], ["y"])], [external_weight("../outside.bin")])
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("bundle/model.onnx", m.SerializeToString())
    (tmp_path / "bundle.zip").write_bytes(buf.getvalue())
    report = scan_paths([tmp_path / "bundle.zip"])
    hit = next(f for f in report.findings if f.rule_id == EXTERNAL)
    assert hit.location.member == "bundle/model.onnx"


def test_external_data_without_location_is_medium(tmp_path: Path) -> None:
    tensor = weight()
    tensor.data_location = TensorProto.EXTERNAL
    tensor.ClearField("raw_data")
    m = model([helper.make_node("Add", ["x", "w"], ["y"])], [tensor])
    assert found(save(tmp_path, m)) == {EXTERNAL: Severity.MEDIUM}


# -- custom operators ------------------------------------------------------------------------


def test_custom_domain_in_the_main_graph_is_medium(tmp_path: Path) -> None:
    m = model(
        [helper.make_node("Frobnicate", ["x"], ["y"], domain="acme.ops")],
        extra_opsets=[("acme.ops", 1)],
    )
    report = scan_paths([save(tmp_path, m)])
    hit = next(f for f in report.findings if f.rule_id == CUSTOM)
    assert hit.severity is Severity.MEDIUM
    assert hit.evidence["domain"] == "acme.ops" and hit.evidence["op_types"] == ["Frobnicate"]


def test_custom_op_hidden_in_if_loop_and_function_bodies(tmp_path: Path) -> None:
    body = helper.make_graph(
        [helper.make_node("Hidden", ["x"], ["o"], domain="deep.ops")], "body", [], [_io("o")]
    )
    loop = helper.make_node("Loop", ["n", "c"], ["l"], body=body)
    fn = helper.make_function(
        "fn.local",
        "Wrap",
        ["a"],
        ["b"],
        [helper.make_node("InFunction", ["a"], ["b"], domain="fn.ops")],
        [helper.make_opsetid("fn.ops", 1)],
    )
    nodes = [
        _if_node([helper.make_node("InIf", ["x"], ["t"], domain="if.ops")]),
        loop,
        helper.make_node("Wrap", ["x"], ["z"], domain="fn.local"),
    ]
    report = scan_paths([save(tmp_path, model(nodes, functions=[fn]))])
    domains = {f.evidence["domain"] for f in report.findings if f.rule_id == CUSTOM}
    assert domains == {"if.ops", "deep.ops", "fn.ops"}


def test_python_callback_op_is_high(tmp_path: Path) -> None:
    m = model(
        [helper.make_node("PyOp", ["x"], ["y"], domain="ai.onnx.contrib")],
        extra_opsets=[("ai.onnx.contrib", 1)],
    )
    assert found(save(tmp_path, m)) == {CUSTOM: Severity.HIGH}


# -- sniffing and broken input ---------------------------------------------------------------


def test_sniff_needs_onnx_structure() -> None:
    data = model([helper.make_node("Relu", ["x"], ["y"])]).SerializeToString()
    assert looks_like_onnx(data, len(data))
    assert not looks_like_onnx(b"\x08\x07" + b"\x00" * 30, 32)
    assert not looks_like_onnx(b"PK\x03\x04" + bytes(40), 44)
    assert not looks_like_onnx(data[:20], 20)  # graph runs past the end


def test_truncated_model_is_never_clean(tmp_path: Path) -> None:
    data = model([helper.make_node("Add", ["x", "w"], ["y"])], [weight()]).SerializeToString()
    for cut in (3, 10, len(data) // 2, len(data) - 1):
        path = tmp_path / "model.onnx"
        path.write_bytes(data[:cut])
        report = scan_paths([path])
        assert report.errors or any(f.severity >= Severity.MEDIUM for f in report.findings), cut


def test_garbage_graph_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"\x08\x07\x3a\x06\xff\xff\xff\xff\xff\xff")
    report = scan_paths([path])
    assert report.errors or any(f.severity >= Severity.MEDIUM for f in report.findings)


def _scan_directly(data: bytes) -> None:
    report = Report(kind="models")
    with tempfile.TemporaryDirectory() as tmp:
        ctx = ScanContext(report, ModelScanSettings(), (OnnxScanner(),), Path(tmp))
        blob = Blob.from_bytes(data, Location(path="fuzz.onnx"), 0, "fuzz.onnx")
        scanner = OnnxScanner()
        if scanner.sniff(blob):
            with contextlib.suppress(ScanError):
                scanner.scan(blob, ctx)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_random_graph_bytes_only_ever_raise_scan_error(body: bytes) -> None:
    length = (
        len(body).to_bytes(1, "little")
        if len(body) < 128
        else bytes([0x80 | (len(body) & 0x7F), len(body) >> 7])
    )
    _scan_directly(b"\x08\x08\x3a" + length + body)
