"""ONNX models: external-data paths and operators from custom domains.

ONNX cannot hold Python, but two features reach outside the file: tensors whose bytes live in
"external data" files named by a path in the model (absolute or `..` paths read arbitrary files,
CVE-2024-27318/CVE-2022-25882), and operators from non-standard domains that need a native custom-op
library at run time. The model is parsed with the `onnx` package without loading external data;
every graph is walked: the main graph, subgraphs of If/Loop/Scan, model-local functions and
training graphs.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from secmlops.errors import ScanError
from secmlops.findings import Severity
from secmlops.scan.models.engine import Blob, ScanContext
from secmlops.scan.models.rules import ONNX_CUSTOM_OP, ONNX_EXTERNAL_DATA

STANDARD_DOMAINS = frozenset(
    {"", "ai.onnx", "ai.onnx.ml", "ai.onnx.preview.training", "com.microsoft"}
)
# Op types that call back into Python (onnxruntime-extensions PyOp, PyTorch's PythonOp).
PYTHON_OPS = re.compile(r"^(Py|Python)(Op|Func|Function|Callback)?$|PyOp|PythonOp|PyFunc", re.I)
# ModelProto fields: number -> wire type (0 varint, 2 length-delimited).
MODEL_FIELDS = {1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2, 26: 2}
MAX_GRAPH_DEPTH = 64
MAX_LISTED = 20
_DRIVE = re.compile(r"^[A-Za-z]:")


def looks_like_onnx(head: bytes, size: int) -> bool:
    """ModelProto from its first fields: ir_version, then known fields up to the graph."""
    if not head.startswith(b"\x08"):
        return False
    pos = 1
    try:
        ir_version, pos = _varint(head, pos)
        if not 1 <= ir_version <= 32:
            return False
        while pos < len(head):
            key, pos = _varint(head, pos)
            field, wire = key >> 3, key & 7
            if MODEL_FIELDS.get(field) != wire:
                return False
            if wire == 0:
                _, pos = _varint(head, pos)
                continue
            length, pos = _varint(head, pos)
            if pos + length > size:
                return False
            if field == 7:
                return True
            pos += length
    except IndexError:
        return False
    return False


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = 0
    for shift in range(0, 70, 7):
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
    raise IndexError("varint too long")


class OnnxScanner:
    """ONNX ModelProto files (any extension)."""

    name = "onnx"

    def sniff(self, blob: Blob) -> bool:
        return looks_like_onnx(blob.head, blob.size)

    def scan(self, blob: Blob, ctx: ScanContext) -> None:
        import onnx

        # (imported by name: the protobuf package ships no type information)
        decode_error: type[Exception] = importlib.import_module(
            "google.protobuf.message"
        ).DecodeError
        with blob.open() as f:
            try:
                model = onnx.load_model(f, load_external_data=False)
            except (
                decode_error,
                ValueError,
                TypeError,
                RuntimeError,
                OSError,
                RecursionError,
            ) as exc:
                raise ScanError(f"not a readable ONNX model: {type(exc).__name__}: {exc}") from exc
        _ModelWalk(blob, ctx).run(model)


class _ModelWalk:
    def __init__(self, blob: Blob, ctx: ScanContext) -> None:
        self.blob = blob
        self.ctx = ctx
        self.local_functions: set[tuple[str, str]] = set()
        self.custom: dict[str, dict[str, list[str]]] = {}  # domain -> op_type -> node names
        self.external: dict[str, list[str]] = {}  # location -> tensor names
        self.external_problems: dict[str, str] = {}

    def run(self, model: Any) -> None:
        self.local_functions = {(f.domain, f.name) for f in model.functions}
        graphs: list[tuple[Any, str, int]] = [(model.graph, "graph", 0)]
        for i, info in enumerate(model.training_info):
            graphs.append((info.initialization, f"training_info[{i}].initialization", 0))
            graphs.append((info.algorithm, f"training_info[{i}].algorithm", 0))
        for function in model.functions:
            self._nodes(function.node, f"function {function.domain}:{function.name}", 0, graphs)
        while graphs:
            graph, where, depth = graphs.pop()
            if depth > MAX_GRAPH_DEPTH:
                raise ScanError(f"ONNX subgraphs nested more than {MAX_GRAPH_DEPTH} deep")
            for tensor in graph.initializer:
                self._tensor(tensor, f"{where} initializer")
            for sparse in graph.sparse_initializer:
                self._tensor(sparse.values, f"{where} sparse initializer")
                self._tensor(sparse.indices, f"{where} sparse initializer")
            self._nodes(graph.node, where, depth, graphs)
        self._report()

    def _nodes(
        self, nodes: Any, where: str, depth: int, graphs: list[tuple[Any, str, int]]
    ) -> None:
        import onnx

        for node in nodes:
            domain = node.domain
            if (
                domain not in STANDARD_DOMAINS
                and (domain, node.op_type) not in self.local_functions
            ):
                ops = self.custom.setdefault(domain, {})
                ops.setdefault(node.op_type, []).append(node.name or f"<unnamed in {where}>")
            for attr in node.attribute:
                label = f"{where} node {node.name or node.op_type} attribute {attr.name}"
                if attr.type == onnx.AttributeProto.GRAPH:
                    graphs.append((attr.g, f"{label}", depth + 1))
                elif attr.type == onnx.AttributeProto.GRAPHS:
                    for i, sub in enumerate(attr.graphs):
                        graphs.append((sub, f"{label}[{i}]", depth + 1))
                elif attr.type == onnx.AttributeProto.TENSOR:
                    self._tensor(attr.t, label)
                elif attr.type == onnx.AttributeProto.TENSORS:
                    for tensor in attr.tensors:
                        self._tensor(tensor, label)
                elif attr.type == onnx.AttributeProto.SPARSE_TENSOR:
                    self._tensor(attr.sparse_tensor.values, label)
                    self._tensor(attr.sparse_tensor.indices, label)
                elif attr.type == onnx.AttributeProto.SPARSE_TENSORS:
                    for sparse in attr.sparse_tensors:
                        self._tensor(sparse.values, label)
                        self._tensor(sparse.indices, label)

    def _tensor(self, tensor: Any, where: str) -> None:
        import onnx

        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            return
        entries = {entry.key: entry.value for entry in tensor.external_data}
        location = entries.get("location")
        name = tensor.name or where
        if not location:
            self.external.setdefault("", []).append(name)
            self.external_problems[""] = "external data without a location"
            return
        problem = self._location_problem(location)
        if problem is not None:
            self.external.setdefault(location, []).append(name)
            self.external_problems[location] = problem

    def _location_problem(self, location: str) -> str | None:
        if location.startswith(("/", "\\", "~")) or _DRIVE.match(location):
            return "absolute path"
        parts = set(PurePosixPath(location).parts) | set(PureWindowsPath(location).parts)
        if ".." in parts:
            return "path with '..' components"
        if "\x00" in location:
            return "path with a NUL byte"
        if self.blob.depth == 0 and self.blob.location.path and self.blob.location.member is None:
            folder = Path(self.blob.location.path).parent
            try:
                resolved = (folder / location).resolve()
                base = folder.resolve()
            except (OSError, RuntimeError, ValueError):
                return "path that cannot be resolved"
            if not resolved.is_relative_to(base):
                return f"path resolving outside the model's folder ({resolved})"
        return None

    def _report(self) -> None:
        for location, tensors in sorted(self.external.items()):
            problem = self.external_problems[location]
            self.ctx.emit(
                ONNX_EXTERNAL_DATA.finding(
                    self.blob.location,
                    f"{len(tensors)} tensor(s) read external data from {location!r}: {problem}",
                    {"location": location, "problem": problem, "tensors": tensors[:MAX_LISTED]},
                    severity=Severity.MEDIUM if not location else None,
                )
            )
        for domain, ops in sorted(self.custom.items()):
            python_ops = sorted(op for op in ops if PYTHON_OPS.search(op))
            count = sum(len(names) for names in ops.values())
            message = (
                f"{count} node(s) use operators {sorted(ops)[:10]} from custom domain {domain!r}"
            )
            if python_ops:
                message += f"; {python_ops} call back into Python"
            self.ctx.emit(
                ONNX_CUSTOM_OP.finding(
                    self.blob.location,
                    message,
                    {
                        "domain": domain,
                        "op_types": sorted(ops)[:MAX_LISTED],
                        "nodes": [n for names in ops.values() for n in names][:MAX_LISTED],
                    },
                    severity=Severity.HIGH if python_ops else None,
                )
            )
