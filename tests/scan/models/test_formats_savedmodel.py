"""TensorFlow SavedModel / GraphDef protobufs, built with a tiny encoder (TensorFlow not needed)."""

from __future__ import annotations

import base64
import contextlib
import json
import marshal
import tempfile
from collections.abc import Iterable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secmlops.errors import ScanError
from secmlops.findings import Location, Report, Severity
from secmlops.scan.models import ModelScanSettings, scan_paths
from secmlops.scan.models.engine import Blob, ScanContext
from secmlops.scan.models.formats.savedmodel import SavedModelScanner, probe

DANGEROUS = "MODEL-TF-DANGEROUS-OP"
FILE_ACCESS = "MODEL-TF-FILE-ACCESS"
CUSTOM = "MODEL-TF-CUSTOM-OP"
ASSET = "MODEL-TF-ASSET-PATH"
LAMBDA = "MODEL-KERAS-LAMBDA"

# -- a minimal protobuf encoder --------------------------------------------------------------


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number: int, payload: bytes | int) -> bytes:
    if isinstance(payload, int):
        return varint(number << 3) + varint(payload)
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def text(number: int, value: str) -> bytes:
    return field(number, value.encode())


def attr_s(value: str) -> bytes:
    return field(2, value.encode())


def attr_list_s(values: Iterable[str]) -> bytes:
    return field(1, b"".join(field(2, v.encode()) for v in values))


def attr_type(dtype: int) -> bytes:
    return field(6, dtype)


def attr_string_tensor(values: Iterable[str]) -> bytes:
    tensor = field(1, 7) + field(2, b"") + b"".join(field(8, v.encode()) for v in values)
    return field(8, tensor)


def node(name: str, op: str, inputs: Iterable[str] = (), **attrs: bytes) -> bytes:
    out = text(1, name) + text(2, op) + b"".join(text(3, i) for i in inputs)
    for key, value in attrs.items():
        out += field(5, text(1, key) + field(2, value))
    return out


def const(name: str, *values: str) -> bytes:
    return node(name, "Const", value=attr_string_tensor(values), dtype=attr_type(7))


def function(name: str, nodes: Iterable[bytes]) -> bytes:
    return field(1, text(1, name)) + b"".join(field(3, n) for n in nodes)


def graph(nodes: Iterable[bytes], functions: Iterable[bytes] = ()) -> bytes:
    library = b"".join(field(1, f) for f in functions)
    out = b"".join(field(1, n) for n in nodes)
    if library:
        out += field(2, library)
    return out + field(4, field(1, 1808))  # versions { producer: 1808 }


def meta_info(ops: Iterable[str]) -> bytes:
    op_list = b"".join(field(1, text(1, op)) for op in ops)
    return field(2, op_list) + text(4, "serve") + text(5, "2.16.1") + text(6, "v2.16.1-0-g")


def saved_model(
    graph_def: bytes,
    ops: Iterable[str] = ("Const", "NoOp"),
    assets: Iterable[str] = (),
    object_graph: bytes = b"",
) -> bytes:
    meta = field(1, meta_info(ops)) + field(2, graph_def)
    for i, filename in enumerate(assets):
        meta += field(6, field(1, text(1, f"asset_path_initializer_{i}:0")) + text(2, filename))
    if object_graph:
        meta += field(7, object_graph)
    return field(1, 1) + field(2, meta)


def benign_graph() -> bytes:
    """The shape of a TF2 `tf.saved_model.save` export: variables, a signature, the saver."""
    body = [
        node("x", "_Arg"),
        node("MatMul/ReadVariableOp", "ReadVariableOp", ["matmul_readvariableop_resource"]),
        node("MatMul", "MatMul", ["x", "MatMul/ReadVariableOp:value:0"]),
        node("BiasAdd", "BiasAdd", ["MatMul:product:0", "bias"]),
        node("Relu", "Relu", ["BiasAdd:output:0"]),
        node("Identity", "Identity", ["Relu:activations:0"]),
    ]
    saver = [
        node("saver_filename", "Placeholder", dtype=attr_type(7)),
        const("Const", "_temp_2bd8c5a0/part"),
        node("StringJoin", "StringJoin", ["saver_filename", "Const"]),
        const("num_shards", "1"),
        node("ShardedFilename", "ShardedFilename", ["StringJoin", "shard", "num_shards"]),
        const("SaveV2/tensor_names", "layer-0/kernel/.ATTRIBUTES/VARIABLE_VALUE"),
        const("SaveV2/shape_and_slices", ""),
        node(
            "SaveV2",
            "SaveV2",
            ["ShardedFilename", "SaveV2/tensor_names", "SaveV2/shape_and_slices", "var"],
        ),
        node(
            "MergeV2Checkpoints",
            "MergeV2Checkpoints",
            ["ShardedFilename", "saver_filename", "^SaveV2"],
        ),
        node(
            "RestoreV2",
            "RestoreV2",
            ["saver_filename", "SaveV2/tensor_names", "SaveV2/shape_and_slices"],
        ),
        node("DisableCopyOnRead", "DisableCopyOnRead", ["var"]),
    ]
    top = [
        node("var", "VarHandleOp", shared_name=attr_s("dense/kernel")),
        node("serving_default_x", "Placeholder", dtype=attr_type(1)),
        node("StatefulPartitionedCall", "StatefulPartitionedCall", ["serving_default_x", "var"]),
        node("NoOp", "NoOp"),
    ]
    functions = [
        function("__inference_serving_default_123", body),
        function("__inference_saver_456", saver),
    ]
    call = node("call", "__inference_serving_default_123", ["serving_default_x"])
    return graph([*top, call], functions)


def write(tmp_path: Path, data: bytes, name: str = "saved_model.pb") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def found(path: Path) -> dict[str, Severity]:
    report = scan_paths([path])
    assert not report.errors, report.errors
    return {f.rule_id: f.severity for f in report.findings}


def with_node(*extra: bytes, in_function: bool = False) -> bytes:
    if in_function:
        return saved_model(graph([node("NoOp", "NoOp")], [function("__inference_f_1", extra)]))
    return saved_model(graph([node("NoOp", "NoOp"), *extra]))


# -- benign ---------------------------------------------------------------------------------


def test_exported_saved_model_layout_is_clean(tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    (model_dir / "variables").mkdir(parents=True)
    (model_dir / "assets").mkdir()
    write(model_dir, saved_model(benign_graph(), assets=["vocab.txt"]))
    fingerprint = (
        field(1, 123456789)
        + field(2, 42)
        + field(3, 7)
        + field(4, 99)
        + field(5, 3)
        + field(6, field(1, 1))
    )
    write(model_dir, fingerprint, "fingerprint.pb")
    (model_dir / "variables" / "variables.index").write_bytes(b"\x00" * 32)
    (model_dir / "assets" / "vocab.txt").write_text("a\nb\n")
    report = scan_paths([model_dir])
    assert report.findings == [] and not report.errors
    assert probe(fingerprint, len(fingerprint)) == "fingerprint"


def test_frozen_graph_def_is_recognised_and_clean(tmp_path: Path) -> None:
    data = graph(
        [node("input", "Placeholder"), node("w", "Const"), node("y", "MatMul", ["input", "w"])]
    )
    assert probe(data, len(data)) == "graph_def"
    assert found(write(tmp_path, data, "frozen.pb")) == {}


def test_benign_keras_metadata_is_clean(tmp_path: Path) -> None:
    meta = {
        "class_name": "Dense",
        "name": "dense",
        "config": {"name": "dense", "units": 3, "activation": "relu"},
    }
    data = field(
        1,
        field(2, 1)
        + text(3, "root.layer-0")
        + text(4, "_tf_keras_layer")
        + text(5, json.dumps(meta)),
    )
    assert probe(data, len(data)) == "keras_metadata"
    assert found(write(tmp_path, data, "keras_metadata.pb")) == {}


def test_other_formats_are_not_claimed() -> None:
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    g = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    data = helper.make_model(g).SerializeToString()
    assert probe(data, len(data)) is None
    for other in (
        b"PK\x03\x04" + bytes(60),
        b"\x80\x04\x95" + bytes(20),
        b"GGUF\x03\x00\x00\x00",
        b"\n\nhello",
    ):
        assert probe(other, len(other)) is None


# -- dangerous ops ---------------------------------------------------------------------------


@pytest.mark.parametrize("in_function", [False, True])
def test_read_file_of_a_literal_path_is_high(tmp_path: Path, in_function: bool) -> None:
    data = with_node(
        const("path", "/etc/passwd"), node("read", "ReadFile", ["path"]), in_function=in_function
    )
    report = scan_paths([write(tmp_path, data)])
    hit = next(f for f in report.findings if f.rule_id == FILE_ACCESS)
    assert hit.severity is Severity.HIGH and hit.evidence["paths"] == ["/etc/passwd"]
    assert hit.location.offset is not None


@pytest.mark.parametrize("op", ["WriteFile", "PyFunc", "PyFuncStateless", "EagerPyFunc"])
def test_code_and_write_ops_are_critical(tmp_path: Path, op: str) -> None:
    data = with_node(node("evil", op, ["a", "b"], token=attr_s("pyfunc_0")), in_function=True)
    assert found(write(tmp_path, data))[DANGEROUS] is Severity.CRITICAL


@pytest.mark.parametrize(
    "extra",
    [
        [node("ls", "MatchingFiles", ["pattern"])],
        [node("w", "CreateSummaryFileWriter", ["writer", "logdir"])],
        [node("w", "WriteScalarSummary", ["writer", "step", "tag", "value"])],
        [node("d", "DebugIdentity", ["x"], debug_urls=attr_list_s(["file:///tmp/dump"]))],
        [node("p", "PrintV2", ["x"], output_stream=attr_s("file:///tmp/leak.txt"))],
        [node("m", "ImmutableConst", memory_region_name=attr_s("/dev/shm/weights"))],
        [node("ds", "TFRecordDataset", ["files"])],
        [
            const("prefix", "/tmp/overwrite/ckpt"),
            node("s", "SaveV2", ["prefix", "names", "slices", "t"]),
        ],
        [const("prefix", "../../outside"), node("r", "RestoreV2", ["prefix", "names", "slices"])],
        [
            const("base", "gs://bucket/x"),
            node("j", "StringJoin", ["base"]),
            node("m", "MergeV2Checkpoints", ["j", "dst"]),
        ],
        [node("svc", "DataServiceDatasetV4", ["id", "mode", "address"])],
    ],
)
def test_file_and_network_ops_are_high(tmp_path: Path, extra: list[bytes]) -> None:
    assert found(write(tmp_path, with_node(*extra))) == {FILE_ACCESS: Severity.HIGH}


def test_debug_op_without_urls_is_fine(tmp_path: Path) -> None:
    assert found(write(tmp_path, with_node(node("d", "DebugIdentity", ["x"])))) == {}


def test_custom_ops_are_medium(tmp_path: Path) -> None:
    data = with_node(
        node("t", "Addons>ImageProjectiveTransformV2", ["x"]), node("s", "SentencepieceOp")
    )
    report = scan_paths([write(tmp_path, data)])
    hit = next(f for f in report.findings if f.rule_id == CUSTOM)
    assert hit.severity is Severity.MEDIUM
    assert hit.evidence["ops"] == ["Addons>ImageProjectiveTransformV2", "SentencepieceOp"]


def test_shell_like_custom_op_is_critical(tmp_path: Path) -> None:
    assert found(write(tmp_path, with_node(node("x", "RunShellCommand", ["cmd"])))) == {
        DANGEROUS: Severity.CRITICAL,
        CUSTOM: Severity.MEDIUM,
    }


def test_frozen_graph_def_with_read_file(tmp_path: Path) -> None:
    data = graph(
        [
            const("p", "/root/.aws/credentials"),
            node("r", "ReadFile", ["p"]),
            node("o", "Identity", ["r"]),
        ]
    )
    assert found(write(tmp_path, data, "frozen_graph.pb")) == {FILE_ACCESS: Severity.HIGH}


@pytest.mark.parametrize("filename", ["../../etc/passwd", "/etc/shadow", "C:\\secrets.txt"])
def test_asset_paths_leaving_the_folder_are_high(tmp_path: Path, filename: str) -> None:
    assert found(write(tmp_path, saved_model(benign_graph(), assets=[filename]))) == {
        ASSET: Severity.HIGH
    }


def _lambda_metadata() -> str:
    code = base64.b64encode(
        marshal.dumps((lambda x: __import__("os").system("id")).__code__)
    ).decode()
    return json.dumps(
        {
            "class_name": "Lambda",
            "name": "lambda",
            "config": {"name": "lambda", "function": [code, None, None], "function_type": "lambda"},
        }
    )


def test_keras_metadata_lambda_is_critical_once(tmp_path: Path) -> None:
    layer = field(
        1,
        field(2, 1)
        + text(3, "root.layer-1")
        + text(4, "_tf_keras_layer")
        + text(5, _lambda_metadata()),
    )
    model = json.loads(_lambda_metadata())
    root = {"class_name": "Sequential", "config": {"layers": [model]}}
    root_node = field(
        1,
        field(2, 0) + text(3, "root") + text(4, "_tf_keras_sequential") + text(5, json.dumps(root)),
    )
    report = scan_paths([write(tmp_path, root_node + layer, "keras_metadata.pb")])
    lambdas = [f for f in report.findings if f.rule_id == LAMBDA]
    assert len(lambdas) == 1 and lambdas[0].severity is Severity.CRITICAL


def test_user_object_metadata_in_the_object_graph_is_checked(tmp_path: Path) -> None:
    user_object = text(1, "_tf_keras_layer") + text(3, _lambda_metadata())
    object_graph = field(1, field(4, user_object))
    assert found(write(tmp_path, saved_model(benign_graph(), object_graph=object_graph))) == {
        LAMBDA: Severity.CRITICAL
    }


# -- broken input ----------------------------------------------------------------------------


def test_truncated_saved_model_is_never_clean(tmp_path: Path) -> None:
    data = saved_model(benign_graph())
    for cut in (5, 40, len(data) // 2, len(data) - 3):
        report = scan_paths([write(tmp_path, data[:cut])])
        assert report.errors or any(f.severity >= Severity.MEDIUM for f in report.findings), cut


def test_malformed_nested_message_is_an_error(tmp_path: Path) -> None:
    bad_node = (
        text(1, "x") + text(2, "ReadFile") + b"\x2a\x05\xff\xff"
    )  # input field runs past the node
    data = saved_model(graph([node("ok", "NoOp")]) + field(1, bad_node))
    report = scan_paths([write(tmp_path, data)])
    assert report.errors and report.exit_code(Severity.HIGH) == 2


def test_invalid_keras_metadata_json_is_an_error(tmp_path: Path) -> None:
    data = field(
        1, field(2, 1) + text(3, "root") + text(4, "_tf_keras_layer") + text(5, "{not json")
    )
    assert scan_paths([write(tmp_path, data, "keras_metadata.pb")]).errors


def _scan_directly(data: bytes) -> None:
    report = Report(kind="models")
    with tempfile.TemporaryDirectory() as tmp:
        ctx = ScanContext(report, ModelScanSettings(), (SavedModelScanner(),), Path(tmp))
        blob = Blob.from_bytes(data, Location(path="fuzz.pb"), 0, "fuzz.pb")
        scanner = SavedModelScanner()
        if scanner.sniff(blob):
            with contextlib.suppress(ScanError):
                scanner.scan(blob, ctx)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_random_bytes_only_ever_raise_scan_error(body: bytes) -> None:
    _scan_directly(body)
    _scan_directly(field(1, 1) + field(2, field(2, field(1, body))))
    _scan_directly(field(1, body))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2000), st.binary(min_size=1, max_size=6))
def test_corrupted_exports_only_ever_raise_scan_error(position: int, junk: bytes) -> None:
    data = bytearray(saved_model(benign_graph()))
    position %= len(data)
    data[position : position + len(junk)] = junk
    _scan_directly(bytes(data))
