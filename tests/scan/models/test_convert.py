"""`convert_to_safetensors`: bit-identical tensors, tied weights like save_model, hostile inputs."""

from __future__ import annotations

import collections
import hashlib
import io
import json
import math
import os
import pickle
import pickletools
import random
import shlex
import struct
import subprocess
import sys
import textwrap
import warnings
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secmlops.errors import ConvertError
from secmlops.findings import Finding, Location, Report, ScanFailure, Severity
from secmlops.scan.models import Limits
from secmlops.scan.models import convert as convert_module
from secmlops.scan.models.convert import ConversionResult, SharedGroup, convert_to_safetensors

torch = pytest.importorskip("torch")
safetensors_torch = pytest.importorskip("safetensors.torch")
from safetensors import safe_open  # noqa: E402

FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
FORMATS = ["zip", "legacy"]
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
DTYPE_NAMES = [
    "float64", "float32", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8",
    "bool", "complex64", "uint16", "uint32", "uint64", "float8_e4m3fn", "float8_e5m2",
    "float8_e4m3fnuz", "float8_e5m2fnuz", "float8_e8m0fnu", "float4_e2m1fn_x2",
]  # fmt: skip
DTYPES = [getattr(torch, name) for name in DTYPE_NAMES if hasattr(torch, name)]
# Dtypes pickled as UntypedStorage + _rebuild_tensor_v3. torch.load cannot read them back from a
# legacy-format file (torch/serialization.py: `UntypedStorage` has no `dtype`), so for those the
# reference is the tensor that was saved.
NEW_DTYPES = {
    getattr(torch, name)
    for name in DTYPE_NAMES
    if hasattr(torch, name) and (name.startswith(("float8", "float4")) or name.startswith("uint"))
} - {torch.uint8}


REAL_LOAD_SCANNER = convert_module._load_scanner


@pytest.fixture(autouse=True)
def _converter_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests exercise the converter's own parsing and defences, which must hold even for
    files the scanner would have stopped; the scanner gate is tested below with fake scanners."""
    monkeypatch.setattr(convert_module, "_load_scanner", lambda: None)


# --------------------------------------------------------------------------------------------
# helpers


def save(obj: object, path: Path, fmt: str) -> Path:
    torch.save(obj, path, _use_new_zipfile_serialization=fmt == "zip")
    return path


def raw(tensor: Any) -> bytes:
    """The tensor's values as bytes in C order, whatever its dtype, layout or strides."""
    tensor = tensor.detach()
    size = tensor.element_size()
    as_int = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[size]
    return bytes(tensor.view(as_int).contiguous().reshape(-1).view(torch.uint8).numpy())


def sample(dtype: Any, shape: tuple[int, ...], seed: int) -> Any:
    """Random bit patterns (NaN payloads, subnormals, ...) so bit-identity is really tested."""
    generator = torch.Generator().manual_seed(seed)
    if dtype == torch.bool:
        return torch.randint(0, 2, shape, generator=generator).bool()
    itemsize = torch.empty((), dtype=dtype).element_size()
    count = math.prod(shape) * itemsize
    data = torch.randint(0, 256, (count,), dtype=torch.uint8, generator=generator)
    return data.view(dtype).reshape(shape)


def convert(source: Path, **kwargs: Any) -> tuple[ConversionResult, dict[str, Any]]:
    out = source.with_suffix(".safetensors")
    result = convert_to_safetensors(source, out, **kwargs)
    return result, safetensors_torch.load_file(out)


def assert_same(converted: Mapping[str, Any], reference: Mapping[str, Any]) -> None:
    assert sorted(converted) == sorted(reference)
    for name, expected in reference.items():
        got = converted[name]
        assert got.dtype == expected.dtype, name
        assert tuple(got.shape) == tuple(expected.shape), name
        assert raw(got) == raw(expected), name


def torch_load(path: Path) -> Any:
    return torch.load(path, weights_only=True)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def refused(source: Path, match: str, **kwargs: Any) -> ConvertError:
    out = source.parent / "refused.safetensors"
    with pytest.raises(ConvertError, match=match) as caught:
        convert_to_safetensors(source, out, **kwargs)
    assert not out.exists()
    assert leftovers(source.parent) == []
    return caught.value


def rezip(
    source: Path,
    target: Path,
    replace: Mapping[str, bytes | None] | None = None,
    *,
    compression: int = zipfile.ZIP_STORED,
    extra: Mapping[str, bytes] | None = None,
) -> Path:
    """Rewrite a torch zip checkpoint record by record (None drops a record)."""
    replace = replace or {}
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w", compression) as zout:
        prefix = zin.namelist()[0].split("/")[0]
        for info in zin.infolist():
            name = info.filename[len(prefix) + 1 :]
            data = replace.get(name, zin.read(info.filename))
            if data is not None:
                zout.writestr(info.filename, data)
        for name, data in (extra or {}).items():
            zout.writestr(f"{prefix}/{name}", data)
    return target


def record(path: Path, name: str) -> bytes:
    with zipfile.ZipFile(path) as archive:
        prefix = archive.namelist()[0].split("/")[0]
        return archive.read(f"{prefix}/{name}")


class FakeStorage:
    def __init__(self, key: str, numel: int, storage_type: Any = None, view: Any = None) -> None:
        self.key, self.numel, self.view = key, numel, view
        self.storage_type = storage_type or torch.FloatStorage


class FakeTensor:
    """Pickles exactly like a torch tensor, with whatever storage/offset/shape/stride we like."""

    def __init__(self, storage: FakeStorage, offset: int, size: Any, stride: Any) -> None:
        self.args = (storage, offset, size, stride, False, collections.OrderedDict())

    def __reduce__(self) -> tuple[Any, ...]:
        return (torch._utils._rebuild_tensor_v2, self.args)


def craft(obj: object, *, legacy: bool = False) -> bytes:
    class Pickler(pickle.Pickler):
        def persistent_id(self, obj: object) -> Any:
            if not isinstance(obj, FakeStorage):
                return None
            pid = ("storage", obj.storage_type, obj.key, "cpu", obj.numel)
            return (*pid, obj.view) if legacy else pid

    buffer = io.BytesIO()
    Pickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue()


def legacy_file(main: bytes, storages: list[tuple[str, int, bytes]]) -> bytes:
    """A legacy-format checkpoint around a hand-made main pickle."""
    sys_info = {"protocol_version": 1001, "little_endian": True, "type_sizes": {}}
    head = b"".join(pickle.dumps(v, protocol=2) for v in (LEGACY_MAGIC, 1001, sys_info))
    keys = pickle.dumps([key for key, _, _ in storages], protocol=2)
    body = b"".join(struct.pack("<q", count) + data for _, count, data in storages)
    return head + main + keys + body


def global_call(module: str, name: str, argument: str) -> bytes:
    """A protocol-2 pickle of `module.name(argument)` inside a dict under 'w'."""
    arg = argument.encode()
    call = b"c" + module.encode() + b"\n" + name.encode() + b"\nX" + struct.pack("<I", len(arg))
    return b"\x80\x02}X\x01\x00\x00\x00w" + call + arg + b"\x85Rs."


# --------------------------------------------------------------------------------------------
# every dtype, every layout, both formats: bit-identical with torch.load


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_every_dtype_and_layout_is_bit_identical(tmp_path: Path, fmt: str, dtype: Any) -> None:
    base = sample(dtype, (6, 7), seed=1)
    state = {
        "matrix": sample(dtype, (3, 5), seed=2),
        "scalar": sample(dtype, (), seed=3),
        "empty": sample(dtype, (0, 3), seed=4),
        "transposed": base.t(),
        "rows": base[2:5],
        "strided": base[1::2, ::3],
        "column": base[:, 4],
    }
    if dtype == getattr(torch, "float4_e2m1fn_x2", None):
        # safetensors counts 4-bit values, so it has no shape for a 0-d pair of them
        scalar = save({"s": state.pop("scalar")}, tmp_path / "scalar.pt", fmt)
        refused(scalar, "0-d float4")
    path = save(state, tmp_path / "model.pt", fmt)
    result, converted = convert(path)
    if fmt == "legacy" and dtype in NEW_DTYPES:
        reference = state
    else:
        reference = torch_load(path)
        assert_same(reference, state)
    assert_same(converted, reference)
    assert result.source_format == fmt
    assert result.tensor_names == tuple(sorted(state))


@pytest.mark.parametrize("fmt", FORMATS)
def test_mixed_dtypes_match_torch_load(tmp_path: Path, fmt: str) -> None:
    old_dtypes = [d for d in DTYPES if d not in NEW_DTYPES]
    state = {f"t{i}.{d}": sample(d, (i + 1, 3), seed=i) for i, d in enumerate(old_dtypes)}
    path = save(state, tmp_path / "mixed.pt", fmt)
    assert_same(convert(path)[1], torch_load(path))


@pytest.mark.parametrize("fmt", FORMATS)
def test_odd_shapes(tmp_path: Path, fmt: str) -> None:
    chain = torch.arange(4.0).reshape([1] * 68 + [2, 2])
    state = {
        "many_dims": torch.arange(3.0).reshape([1] * 69 + [3]),
        "many_dims_transposed": chain.transpose(-1, -2),
        "huge_but_empty": torch.empty(2**40, 0),
        "long_row": torch.arange(2**16, dtype=torch.int32).reshape(1, 2**16),
        "broadcast": torch.arange(3.0).expand(4, 3),  # stride 0
        "permuted": torch.arange(24.0).reshape(2, 3, 4).permute(2, 0, 1),
        "scalar": torch.tensor(7, dtype=torch.int64),
    }
    path = save(state, tmp_path / "shapes.pt", fmt)
    _, converted = convert(path)
    assert_same(converted, torch_load(path))


@pytest.mark.parametrize("fmt", FORMATS)
def test_nested_dicts_are_flattened_with_dots(tmp_path: Path, fmt: str) -> None:
    state = {
        "encoder": {"weight": torch.ones(2), "block": {"0": {"bias": torch.zeros(3)}}},
        "head": torch.full((2, 2), 3.0),
    }
    path = save(state, tmp_path / "nested.pt", fmt)
    _, converted = convert(path)
    assert_same(
        converted,
        {
            "encoder.weight": state["encoder"]["weight"],
            "encoder.block.0.bias": state["encoder"]["block"]["0"]["bias"],
            "head": state["head"],
        },
    )


class Net(torch.nn.Module):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.norm = torch.nn.BatchNorm2d(4)  # num_batches_tracked: a 0-d int64 buffer
        self.attention = torch.nn.MultiheadAttention(8, 2)
        self.out = torch.nn.Linear(8, 3).to(torch.bfloat16)


@pytest.mark.parametrize("fmt", FORMATS)
def test_module_state_dict(tmp_path: Path, fmt: str) -> None:
    torch.manual_seed(0)
    state = Net().state_dict()
    path = save(state, tmp_path / "net.pt", fmt)
    _, converted = convert(path)
    assert_same(converted, torch_load(path))


@pytest.mark.parametrize("fmt", FORMATS)
def test_parameters_and_tensor_attributes(tmp_path: Path, fmt: str) -> None:
    tagged = torch.nn.Parameter(torch.ones(3))
    tagged.note = "python attribute"  # -> _rebuild_parameter_with_state
    plain = torch.arange(4.0)
    plain.note = 1  # -> torch._tensor._rebuild_from_type_v2
    state = {"tagged": tagged, "param": torch.nn.Parameter(torch.zeros(2)), "plain": plain}
    path = save(state, tmp_path / "params.pt", fmt)
    result, converted = convert(path)
    assert_same(converted, torch_load(path))
    assert any("attributes" in w for w in result.warnings)


def test_byte_identical_to_safetensors_save_file(tmp_path: Path) -> None:
    torch.manual_seed(0)
    state = {
        "w": torch.randn(4, 5),
        "mask": torch.rand(7) > 0.5,
        "ids": torch.arange(3, dtype=torch.int64),
        "h": torch.randn(3, dtype=torch.float16),
        "b": torch.randn(2, dtype=torch.bfloat16),
        "e": torch.empty(0, 2),
        "s": torch.tensor(1.5, dtype=torch.float64),
    }
    path = save(state, tmp_path / "plain.pt", "zip")
    reference = tmp_path / "reference.safetensors"
    safetensors_torch.save_file(torch_load(path), reference, metadata={"format": "pt"})
    convert(path)
    assert path.with_suffix(".safetensors").read_bytes() == reference.read_bytes()


# --------------------------------------------------------------------------------------------
# shared storages


class TiedLM(torch.nn.Module):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(11, 4)
        self.body = torch.nn.Linear(4, 4)
        self.lm_head = torch.nn.Linear(4, 11, bias=False)
        self.lm_head.weight = self.embed.weight


def header_metadata(path: Path) -> dict[str, str]:
    with safe_open(str(path), framework="pt") as handle:
        return dict(handle.metadata() or {})


@pytest.mark.parametrize("fmt", FORMATS)
def test_tied_weights_match_save_model(tmp_path: Path, fmt: str) -> None:
    torch.manual_seed(0)
    model = TiedLM()
    path = save(model.state_dict(), tmp_path / "tied.pt", fmt)
    reference = tmp_path / "save_model.safetensors"
    safetensors_torch.save_model(model, reference)

    result, converted = convert(path)
    assert_same(converted, safetensors_torch.load_file(reference))
    ours = header_metadata(path.with_suffix(".safetensors"))
    assert ours.pop("format") == "pt"
    assert ours == header_metadata(reference) == {"lm_head.weight": "embed.weight"}
    assert result.shared == (SharedGroup("embed.weight", ("lm_head.weight",)),)
    assert "lm_head.weight" not in result.tensor_names

    # ... and safetensors' own loader re-ties the model from our file.
    fresh = TiedLM()
    safetensors_torch.load_model(fresh, path.with_suffix(".safetensors"))
    assert fresh.lm_head.weight is fresh.embed.weight
    assert torch.equal(fresh.embed.weight, model.embed.weight)


@pytest.mark.parametrize("fmt", FORMATS)
def test_views_of_one_storage(tmp_path: Path, fmt: str) -> None:
    base = torch.arange(20.0)
    state = {
        "low": base[:8],  # non-overlapping views: separate tensors
        "high": base[12:],
        "same_a": base[8:12],  # the same view twice (two tensor objects): written once
        "same_b": base[8:12],
    }
    path = save(state, tmp_path / "views.pt", fmt)
    result, converted = convert(path)
    reference = torch_load(path)
    assert result.shared == (SharedGroup("same_a", ("same_b",)),)
    assert sorted(converted) == ["high", "low", "same_a"]
    assert_same(converted, {k: v for k, v in reference.items() if k != "same_b"})
    assert result.metadata["same_b"] == "same_a"
    assert not any("overlapping" in w for w in result.warnings)


def test_overlapping_different_views_are_copied_separately(tmp_path: Path) -> None:
    matrix = torch.arange(12.0).reshape(3, 4)
    state = {"weight": matrix, "weight_t": matrix.t(), "first_row": matrix[0]}
    path = save(state, tmp_path / "overlap.pt", "zip")
    result, converted = convert(path)
    assert_same(converted, torch_load(path))
    assert result.shared == ()
    assert any("overlapping" in w for w in result.warnings)


# --------------------------------------------------------------------------------------------
# checkpoint dicts and what is kept in the metadata


@pytest.mark.parametrize("key", ["state_dict", "model"])
def test_checkpoint_dict(tmp_path: Path, key: str) -> None:
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    checkpoint = {
        key: model.state_dict(),
        "epoch": 7,
        "lr": 0.001,
        "name": "run-1",
        "best": True,
        "optimizer": optimizer.state_dict(),
    }
    path = save(checkpoint, tmp_path / "ckpt.pt", "zip")
    result, converted = convert(path)
    assert_same(converted, torch_load(path)[key])
    assert {k: result.metadata[k] for k in ("epoch", "lr", "name", "best")} == {
        "epoch": "7",
        "lr": "0.001",
        "name": "run-1",
        "best": "True",
    }
    assert any("'optimizer'" in w and "tensor" in w for w in result.warnings)


def test_caller_metadata_is_merged(tmp_path: Path) -> None:
    path = save({"w": torch.ones(1)}, tmp_path / "m.pt", "zip")
    result, _ = convert(path, metadata={"source": "hub", "format": "pt"})
    assert header_metadata(path.with_suffix(".safetensors")) == {"source": "hub", "format": "pt"}
    assert dict(result.metadata) == {"source": "hub", "format": "pt"}


def test_result_describes_the_output(tmp_path: Path) -> None:
    path = save(
        {"a": torch.ones(5), "b": torch.zeros(3, dtype=torch.int8)}, tmp_path / "r.pt", "zip"
    )
    calls: list[tuple[int, int]] = []
    result, _ = convert(path, progress=lambda done, total: calls.append((done, total)))
    out = path.with_suffix(".safetensors")
    assert result.source_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert result.bytes_written == out.stat().st_size
    assert result.tensor_bytes == 5 * 4 + 3
    assert result.output == out
    assert result.source == path
    assert calls[-1] == (23, 23)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    assert result.seconds > 0
    with pytest.raises(AttributeError):
        result.seconds = 0  # type: ignore[misc]


# --------------------------------------------------------------------------------------------
# zip details PyTorch's reader tolerates


def test_wrong_crc_is_converted_and_reported(tmp_path: Path) -> None:
    path = save({"w": torch.arange(8.0)}, tmp_path / "crc.pt", "zip")
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = next(i for i in archive.infolist() if i.filename.endswith("/data/0"))
    name_len, extra_len = struct.unpack(
        "<HH", data[info.header_offset + 26 : info.header_offset + 30]
    )
    data[info.header_offset + 30 + name_len + extra_len + 5] ^= 0xFF
    path.write_bytes(data)

    result, converted = convert(path)
    assert_same(converted, torch_load(path))  # torch ignores the CRC too, and returns these bytes
    assert any("CRC-32 mismatch" in w and "data/0" in w for w in result.warnings)


def test_wrong_crc_of_a_partly_used_storage_is_reported(tmp_path: Path) -> None:
    base = torch.arange(16.0)
    path = save({"low": base[:4], "high": base[8:]}, tmp_path / "crc2.pt", "zip")
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = next(i for i in archive.infolist() if i.filename.endswith("/data/0"))
    start = (
        info.header_offset
        + 30
        + sum(struct.unpack("<HH", data[info.header_offset + 26 : info.header_offset + 30]))
    )
    data[start + 4 * 5] ^= 0x01  # element 5: in no tensor, but in the storage record
    path.write_bytes(data)
    result, converted = convert(path)
    assert_same(converted, torch_load(path))
    assert any("CRC-32 mismatch" in w for w in result.warnings)


@pytest.mark.parametrize("fmt", FORMATS)
def test_tensors_larger_than_a_read_chunk(tmp_path: Path, fmt: str) -> None:
    # The copy reads the source in 8 MiB chunks: tensors and records straddle chunk edges.
    state = {
        "a": sample(torch.float32, (5 * 2**18 + 3,), seed=1),
        "b": sample(torch.bfloat16, (3001, 2003), seed=2),
        "c": sample(torch.int8, (7,), seed=3),
        "t": sample(torch.float32, (3000, 1000), seed=4).t(),
        "big": sample(torch.float64, (2**21 + 1,), seed=5),
    }
    path = save(state, tmp_path / "large.pt", fmt)
    if fmt == "zip":  # and a wrong CRC in the middle of a record that spans chunks
        data = bytearray(path.read_bytes())
        with zipfile.ZipFile(path) as archive:
            info = max(archive.infolist(), key=lambda i: i.file_size)
        name_len, extra_len = struct.unpack(
            "<HH", data[info.header_offset + 26 : info.header_offset + 30]
        )
        data[info.header_offset + 30 + name_len + extra_len + 9 * 2**20 + 1] ^= 0x40
        path.write_bytes(data)
    result, converted = convert(path)
    assert_same(converted, torch_load(path))
    assert result.source_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert any("CRC-32 mismatch" in w for w in result.warnings) == (fmt == "zip")


def test_deflated_records(tmp_path: Path) -> None:
    state = {"w": torch.arange(100_000.0).reshape(100, 1000), "t": torch.ones(10, 10).t()}
    plain = save(state, tmp_path / "plain.pt", "zip")
    deflated = rezip(plain, tmp_path / "deflated.pt", compression=zipfile.ZIP_DEFLATED)
    result, converted = convert(deflated)
    assert_same(converted, torch_load(deflated))
    assert not any("CRC" in w for w in result.warnings)


def test_records_are_found_ignoring_case_like_pytorch(tmp_path: Path) -> None:
    path = save({"w": torch.arange(3.0)}, tmp_path / "case.pt", "zip")
    path.write_bytes(path.read_bytes().replace(b"case/data.pkl", b"case/DATA.pkl"))
    _, converted = convert(path)
    assert_same(converted, torch_load(path))


def big_endian(
    state: Mapping[str, Any], folder: Path, compression: int = zipfile.ZIP_STORED
) -> Path:
    """`state` saved as a big-endian zip checkpoint (one storage per tensor)."""
    little = save(state, folder / "little.pt", "zip")
    # storage keys are numbered in the order torch met them: the dict order here
    swapped: dict[str, bytes | None] = {"byteorder": b"big"}
    for key, tensor in enumerate(state.values()):
        unit = tensor.element_size() // (2 if tensor.is_complex() else 1)
        data = record(little, f"data/{key}")
        swapped[f"data/{key}"] = b"".join(
            data[i : i + unit][::-1] for i in range(0, len(data), unit)
        )
    return rezip(little, folder / "big.pt", swapped, compression=compression)


BIG_ENDIAN_STATE = {
    "f32": torch.randn(3, 4),
    "f64": torch.randn(5, dtype=torch.float64),
    "c64": torch.randn(3, dtype=torch.complex64),
    "i16": torch.arange(-3, 3, dtype=torch.int16),
    "bf16": torch.randn(4, dtype=torch.bfloat16),
    "u8": torch.arange(5, dtype=torch.uint8),
    "f32_t": torch.randn(3, 2).t(),
}


def test_big_endian_checkpoint(tmp_path: Path) -> None:
    big = big_endian(BIG_ENDIAN_STATE, tmp_path)
    reference = torch_load(big)
    assert_same(reference, BIG_ENDIAN_STATE)
    assert_same(convert(big)[1], reference)


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
@pytest.mark.parametrize("chunk", [4099, 4102, 8 * 2**20])
def test_big_endian_values_split_between_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compression: int, chunk: int
) -> None:
    # Inflated blocks end wherever the compressed input does, so a value can straddle two of
    # them (fuzzer: a big-endian record over 8 MiB deflated). An odd read size gets the same
    # split with small tensors; the real size checks the plain path.
    monkeypatch.setattr(convert_module, "_CHUNK", chunk)
    state = {
        "f64": sample(torch.float64, (3001,), seed=1),
        "c64": sample(torch.complex64, (2003,), seed=2),
        "f32": sample(torch.float32, (5001,), seed=3),
        "bf16": sample(torch.bfloat16, (4001,), seed=4),
        "i16_t": sample(torch.int16, (60, 70), seed=5).t(),
    }
    big = big_endian(state, tmp_path, compression)
    reference = torch_load(big)
    assert_same(reference, state)
    assert_same(convert(big)[1], reference)


def test_legacy_storage_views(tmp_path: Path) -> None:
    # Old legacy files could name views of a storage: (view_key, offset, size) in elements.
    root = FakeStorage("root", 8, view=("view", 2, 4))
    main = craft({"w": FakeTensor(root, 1, (2,), (1,))}, legacy=True)
    path = tmp_path / "views.pt"
    path.write_bytes(legacy_file(main, [("root", 8, struct.pack("<8f", *range(8)))]))
    reference = torch_load(path)
    assert reference["w"].tolist() == [3.0, 4.0]
    assert_same(convert(path)[1], reference)


# --------------------------------------------------------------------------------------------
# refused by design


def test_pickle_calling_os_system_is_refused_and_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = global_call("os", "system", f"touch {shlex.quote(str(marker))}")
    # The payload is live: an ordinary unpickler runs it.
    pickle.loads(payload)
    assert marker.exists()
    marker.unlink()

    genuine = save({"w": torch.ones(2)}, tmp_path / "genuine.pt", "zip")
    hostile = rezip(genuine, tmp_path / "hostile.pt", {"data.pkl": payload})
    error = refused(hostile, r"os\.system")
    assert "not executed" in str(error)
    legacy = tmp_path / "hostile-legacy.pt"
    legacy.write_bytes(legacy_file(payload, []))
    refused(legacy, r"os\.system")
    assert not marker.exists()


def test_reduce_payload_next_to_real_tensors_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self) -> tuple[Any, ...]:
            return (os.system, (f"touch {shlex.quote(str(marker))}",))

    genuine = save({"w": torch.ones(4)}, tmp_path / "genuine.pt", "zip")
    payload = craft({"w": FakeTensor(FakeStorage("0", 4), 0, (4,), (1,)), "x": Exploit()})
    hostile = rezip(genuine, tmp_path / "hostile.pt", {"data.pkl": payload})
    refused(hostile, r"refusing pickle global (posix|nt|os)\.system")
    assert not marker.exists()


@pytest.mark.parametrize(
    ("module", "name"),
    [("builtins", "eval"), ("subprocess", "Popen"), ("torch", "load"), ("numpy", "load")],
)
def test_any_other_global_is_refused_by_name(tmp_path: Path, module: str, name: str) -> None:
    genuine = save({"w": torch.ones(2)}, tmp_path / "genuine.pt", "zip")
    hostile = rezip(genuine, tmp_path / "hostile.pt", {"data.pkl": global_call(module, name, "x")})
    refused(hostile, f"{module}.{name}")


def test_whole_module_pickles_are_refused(tmp_path: Path) -> None:
    for fmt in FORMATS:
        path = save(torch.nn.Linear(2, 2), tmp_path / f"module-{fmt}.pt", fmt)
        refused(path, r"torch\.nn\.modules\.linear\.Linear")


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: {"s": torch.eye(3).to_sparse()}, "sparse"),
        (
            lambda: {"q": torch.quantize_per_tensor(torch.rand(3), 0.1, 0, torch.quint8)},
            "quantized",
        ),
        (lambda: {"c": torch.zeros(2, dtype=torch.complex128)}, "complex128"),
        (lambda: {"c": torch.randn(2, dtype=torch.complex64).conj()}, "resolve_conj|conj"),
        (lambda: [torch.ones(1)], "not a dict"),
        (lambda: torch.ones(1), "not a dict"),
        (lambda: {"n": 1, "s": "x"}, "no tensors"),
        (lambda: {"w": [torch.ones(1)]}, "inside a list"),
    ],
)
@pytest.mark.parametrize("fmt", FORMATS)
def test_unconvertible_checkpoints_are_refused(
    tmp_path: Path, fmt: str, build: Callable[[], object], match: str
) -> None:
    refused(save(build(), tmp_path / "x.pt", fmt), match)


def test_torchscript_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "scripted.pt"
    torch.jit.script(torch.nn.Linear(2, 2)).save(str(path))
    refused(path, "TorchScript")


def test_over_max_bytes_is_refused(tmp_path: Path) -> None:
    path = save({"w": torch.ones(1000)}, tmp_path / "big.pt", "zip")
    refused(path, "over the limit", max_bytes=1000)
    path = save({f"w{i}": torch.ones(100) for i in range(5)}, tmp_path / "many.pt", "zip")
    refused(path, "total .* over the limit", max_bytes=1000)


def test_source_is_never_overwritten(tmp_path: Path) -> None:
    path = save({"w": torch.ones(2)}, tmp_path / "model.pt", "zip")
    before = path.read_bytes()
    with pytest.raises(ConvertError, match="source"):
        convert_to_safetensors(path, path)
    link = tmp_path / "link.safetensors"
    os.link(path, link)
    with pytest.raises(ConvertError, match="source"):
        convert_to_safetensors(path, link)
    assert path.read_bytes() == before
    with pytest.raises(ConvertError, match="directory"):
        convert_to_safetensors(path, tmp_path)
    with pytest.raises(ConvertError, match="does not exist"):
        convert_to_safetensors(path, tmp_path / "missing" / "out.safetensors")


def test_failure_leaves_an_existing_output_untouched(tmp_path: Path) -> None:
    out = tmp_path / "out.safetensors"
    out.write_bytes(b"previous")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ConvertError, match="unknown format"):
        convert_to_safetensors(bad, out)
    assert out.read_bytes() == b"previous"
    good = save({"w": torch.ones(2)}, tmp_path / "good.pt", "zip")
    convert_to_safetensors(good, out)
    assert_same(safetensors_torch.load_file(out), {"w": torch.ones(2)})
    assert leftovers(tmp_path) == []


def test_progress_callback_errors_leave_no_file(tmp_path: Path) -> None:
    path = save({"w": torch.ones(2)}, tmp_path / "model.pt", "zip")

    def boom(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        convert_to_safetensors(path, tmp_path / "out.safetensors", progress=boom)
    assert not (tmp_path / "out.safetensors").exists()
    assert leftovers(tmp_path) == []


# --------------------------------------------------------------------------------------------
# broken and hostile files


def test_empty_and_junk_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    refused(empty, "empty file")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00" * 1000)
    refused(junk, "unknown format")
    refused(tmp_path / "missing.pt", "no such file")
    refused(tmp_path, "not a regular file")


@pytest.mark.parametrize("fmt", FORMATS)
def test_truncated_files(tmp_path: Path, fmt: str) -> None:
    path = save({"a": torch.arange(64.0), "b": torch.ones(3, 3)}, tmp_path / "full.pt", fmt)
    data = path.read_bytes()
    for cut in sorted(
        {1, 4, 10, 40, 100, len(data) // 3, len(data) // 2, len(data) - 30, len(data) - 1}
    ):
        cut_path = tmp_path / "cut.pt"
        cut_path.write_bytes(data[:cut])
        refused(cut_path, ".")


def test_missing_storage_record(tmp_path: Path) -> None:
    genuine = save({"a": torch.ones(2), "b": torch.zeros(2)}, tmp_path / "genuine.pt", "zip")
    broken = rezip(genuine, tmp_path / "broken.pt", {"data/1": None})
    with pytest.raises(RuntimeError):
        torch_load(broken)
    refused(broken, "'data/1' is missing")


def test_storage_record_shorter_than_declared(tmp_path: Path) -> None:
    genuine = save({"a": torch.ones(8)}, tmp_path / "genuine.pt", "zip")
    broken = rezip(genuine, tmp_path / "short.pt", {"data/0": b"\x00" * 16})
    refused(broken, "holds 16 bytes")


@pytest.mark.parametrize(
    ("offset", "size", "stride", "match"),
    [
        (10, (4,), (1,), "out of bounds"),  # offset beyond the storage
        (0, (2, 2), (7, 1), "out of bounds"),  # stride reads past the end
        (0, (9,), (1,), "out of bounds"),  # shape larger than the storage
        (-1, (2,), (1,), "non-negative"),
        (0, (2,), (-1,), "non-negative"),
        (0, (2, 2), (1,), "differ in length"),
        (0, "xy", (1,), "not a tuple"),
    ],
)
@pytest.mark.parametrize("fmt", FORMATS)
def test_out_of_bounds_views(
    tmp_path: Path, fmt: str, offset: int, size: Any, stride: Any, match: str
) -> None:
    storage = FakeStorage("0", 8)
    main = craft({"w": FakeTensor(storage, offset, size, stride)}, legacy=fmt == "legacy")
    if fmt == "zip":
        genuine = save({"w": torch.ones(8)}, tmp_path / "genuine.pt", "zip")
        path = rezip(genuine, tmp_path / "hostile.pt", {"data.pkl": main})
    else:
        path = tmp_path / "hostile.pt"
        path.write_bytes(legacy_file(main, [("0", 8, bytes(32))]))
    if match == "out of bounds":
        with pytest.raises(RuntimeError):
            torch_load(path)  # torch refuses these views too
    refused(path, match)


def test_inconsistent_storage_declarations(tmp_path: Path) -> None:
    genuine = save({"w": torch.ones(8)}, tmp_path / "genuine.pt", "zip")
    main = craft(
        {
            "a": FakeTensor(FakeStorage("0", 8), 0, (2,), (1,)),
            "b": FakeTensor(FakeStorage("0", 4, torch.IntStorage), 0, (2,), (1,)),
        }
    )
    refused(rezip(genuine, tmp_path / "h.pt", {"data.pkl": main}), "declared twice")


def test_legacy_count_mismatch(tmp_path: Path) -> None:
    main = craft({"w": FakeTensor(FakeStorage("0", 8), 0, (8,), (1,))}, legacy=True)
    path = tmp_path / "count.pt"
    path.write_bytes(legacy_file(main, [("0", 9, bytes(36))]))
    refused(path, "holds 9 elements")
    path.write_bytes(legacy_file(main, [("0", 8, bytes(32)), ("1", 1, bytes(4))]))
    refused(path, "not used by the pickle")


def test_duplicate_record_names_are_refused(tmp_path: Path) -> None:
    genuine = save({"w": torch.ones(2)}, tmp_path / "genuine.pt", "zip")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile: "Duplicate name"
        twice = rezip(
            genuine, tmp_path / "twice.pt", extra={"data.pkl": record(genuine, "data.pkl")}
        )
    refused(twice, "two records")


def test_memo_bomb_is_refused_before_allocating(tmp_path: Path) -> None:
    genuine = save({"w": torch.ones(2)}, tmp_path / "genuine.pt", "zip")
    bomb = b"\x80\x02}r\x00\x00\x00\x40."  # LONG_BINPUT 2**30: a 8 GiB memo table in C
    refused(rezip(genuine, tmp_path / "bomb.pt", {"data.pkl": bomb}), "memo")


def test_self_referencing_dict_is_refused(tmp_path: Path) -> None:
    loop: dict[str, Any] = {}
    loop["again"] = loop
    genuine = save({"w": torch.ones(2)}, tmp_path / "genuine.pt", "zip")
    main = craft({"w": FakeTensor(FakeStorage("0", 2), 0, (2,), (1,)), "loop": loop})
    refused(rezip(genuine, tmp_path / "loop.pt", {"data.pkl": main}), "contains itself")


def test_deeply_nested_dicts_do_not_recurse(tmp_path: Path) -> None:
    genuine = save({"w": torch.ones(2)}, tmp_path / "genuine.pt", "zip")
    depth = 5000
    deep = b"}X\x01\x00\x00\x00k" * depth + b"}" + b"s" * depth
    main = b"\x80\x02" + deep + b"."
    refused(rezip(genuine, tmp_path / "deep.pt", {"data.pkl": main}), "no tensors")


def hostile_zip(tmp_path: Path, main: bytes, name: str = "hostile.pt") -> Path:
    genuine = tmp_path / "genuine.pt"
    if not genuine.exists():
        save({"w": torch.ones(2)}, genuine, "zip")
    return rezip(genuine, tmp_path / name, {"data.pkl": main})


def test_deeply_nested_tuple_key_is_refused_before_unpickling(tmp_path: Path) -> None:
    # Hashing this key recurses a million levels in C: CPython's own unpickler segfaults on it.
    main = b"\x80\x02}K\x01" + b"\x85" * 1_000_000 + b"K\x02s."
    refused(hostile_zip(tmp_path, main), "nested more than")


def test_tuples_nested_through_the_memo_are_counted(tmp_path: Path) -> None:
    level = b"h\x00h\x00\x86q\x00"  # t = (t, t), memoized again under 0
    main = b"\x80\x02}K\x01\x85q\x00" + level * 150 + b"K\x02s."
    refused(hostile_zip(tmp_path, main), "nested more than")


def test_memo_read_before_write_is_refused(tmp_path: Path) -> None:
    refused(hostile_zip(tmp_path, b"\x80\x02h\x05."), "memo entry read before")


def test_huge_integers_do_not_break_messages(tmp_path: Path) -> None:
    # LONG4 of 20000 bytes: str() of such an int raises ValueError since Python 3.11
    huge = b"\x8b" + struct.pack("<i", 20_000) + b"\x7f" * 20_000
    main = b"\x80\x02}(X\x01\x00\x00\x00n" + huge + b"u."
    refused(hostile_zip(tmp_path, main, "scalar.pt"), "no tensors")
    key = b"\x80\x02}(" + huge + b"K\x01u."
    refused(hostile_zip(tmp_path, key, "key.pt"), "unsupported key")
    shape = craft({"w": FakeTensor(FakeStorage("0", 2), 0, (10**30,), (0,))})
    refused(hostile_zip(tmp_path, shape, "shape.pt"), "int64")


def test_broadcast_view_larger_than_the_limit_is_refused(tmp_path: Path) -> None:
    storage = FakeStorage("0", 2)
    main = craft({"w": FakeTensor(storage, 0, (2**40, 2**40, 2), (0, 0, 1))})
    refused(hostile_zip(tmp_path, main), "over the limit")


def test_broadcast_view_far_larger_than_the_file_is_refused(tmp_path: Path) -> None:
    # 32 MiB of output from one stored float: under max_bytes, but 250 times the file's size.
    main = craft({"w": FakeTensor(FakeStorage("0", 2), 0, (2**23,), (0,))})
    refused(hostile_zip(tmp_path, main), "broadcast views are written out in full")


def test_modest_broadcast_view_is_converted(tmp_path: Path) -> None:
    path = save({"w": torch.arange(2.0).expand(2**19, 2)}, tmp_path / "expand.pt", "zip")
    assert_same(convert(path)[1], torch_load(path))


def test_expansion_bounds_are_the_scanners() -> None:
    assert Limits().max_ratio == convert_module._MAX_RATIO


def declare_size(path: Path, name: str, size: int) -> None:
    """Patch the uncompressed size the central directory gives for record `name`."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        prefix = archive.namelist()[0].split("/")[0]
    wanted = f"{prefix}/{name}".encode()
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        (length,) = struct.unpack("<H", data[at + 28 : at + 30])
        if data[at + 46 : at + 46 + length] == wanted:
            data[at + 24 : at + 28] = struct.pack("<I", size)
        at = data.find(b"PK\x01\x02", at + 4)
    path.write_bytes(bytes(data))


CONVERT_UNDER_RLIMIT = textwrap.dedent(
    """
    import resource, sys
    from pathlib import Path
    from secmlops.errors import ConvertError
    from secmlops.scan.models import convert
    convert._load_scanner = lambda: None
    for line in open("/proc/self/status"):
        if line.startswith("VmSize:"):
            used = int(line.split()[1]) * 1024
    limit = used + 300 * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        convert.convert_to_safetensors(Path(sys.argv[1]), Path(sys.argv[2]))
    except ConvertError as exc:
        print(exc.message)
        sys.exit(2)
    """
)


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS and /proc are Linux's")
@pytest.mark.parametrize(
    ("stored", "declared", "match"),
    [
        # 4 GiB declared for a few bytes (fuzzer: 13 s and 4.2 GB RSS before the error)
        (8, 2**32 - 64, "ratio over 250:1"),
        # a plausible ratio, but the data ends early: only what inflates is ever allocated
        (2 * 2**20, 400 * 2**20, "deflate data ends early"),
    ],
    ids=["impossible-ratio", "ends-early"],
)
def test_declared_record_size_is_never_allocated_up_front(
    tmp_path: Path, stored: int, declared: int, match: str
) -> None:
    compressed = random.Random(stored).randbytes(stored)  # incompressible
    # A strided view spanning the whole (declared) storage: the copy reads all of it.
    count = declared // 4
    main = craft({"w": FakeTensor(FakeStorage("0", count), 0, (2,), (count - 1,))})
    genuine = save({"w": torch.ones(2)}, tmp_path / "genuine.pt", "zip")
    path = rezip(
        genuine,
        tmp_path / "lying.pt",
        {"data.pkl": main, "data/0": compressed},
        compression=zipfile.ZIP_DEFLATED,
    )
    declare_size(path, "data/0", declared)
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", CONVERT_UNDER_RLIMIT, str(path), str(tmp_path / "out.st")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert match in done.stdout
    assert not (tmp_path / "out.st").exists()


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("where", ["top", "extra"])
def test_lone_surrogate_in_a_scalar_value_is_refused(tmp_path: Path, fmt: str, where: str) -> None:
    # pickle keeps lone surrogates (surrogatepass); the safetensors header must be UTF-8.
    weights = {"w": torch.ones(2)}
    state = {**weights, "note": "\ud800"} if where == "top" else {"state_dict": weights}
    if where == "extra":
        state["note"] = "x\udcff"
    path = save(state, tmp_path / "surrogate.pt", fmt)
    assert torch_load(path)["note"] in ("\ud800", "x\udcff")
    refused(path, "value at 'note' is not valid UTF-8")


def test_lone_surrogate_in_caller_metadata_is_refused(tmp_path: Path) -> None:
    # what argv holds for non-UTF-8 bytes (surrogateescape)
    path = save({"w": torch.ones(2)}, tmp_path / "plain.pt", "zip")
    refused(path, "metadata value of 'by' is not valid UTF-8", metadata={"by": "\udcff"})
    refused(path, "metadata key .* is not valid UTF-8", metadata={"\udcff": "x"})


def test_dict_shared_under_many_keys_is_refused(tmp_path: Path) -> None:
    # 64 levels of {"a": d, "b": d}: 2**64 paths through a few hundred bytes of pickle.
    level = b"}(X\x01\x00\x00\x00ah\x00X\x01\x00\x00\x00bh\x00uq\x00"
    main = b"\x80\x02}q\x00" + level * 64 + b"0}(X\x01\x00\x00\x00rh\x00u."
    refused(hostile_zip(tmp_path, main), "appears more than once")


def test_list_shared_under_many_keys_does_not_hang(tmp_path: Path) -> None:
    # one list of 2**20 ints, pickled once and referenced under 200 names
    numbers = b"(" + b"K\x01" * 2**20 + b"lq\x00"
    keys = b"".join(b"X\x04\x00\x00\x00" + f"k{i:03d}".encode() + b"h\x00" for i in range(200))
    main = b"\x80\x02}(" + numbers + b"0" + keys + b"u."
    refused(hostile_zip(tmp_path, main), "no tensors")


def test_sets_and_other_plain_values_are_dropped(tmp_path: Path) -> None:
    checkpoint = {
        "state_dict": {"w": torch.ones(2)},
        "tags": {"a", "b"},
        "shape": torch.Size([2, 3]),
        "device": torch.device("cpu"),
        "blob": b"\x00\x01",
        "pair": (1, 2),
        "c": complex(1, 2),
    }
    path = save(checkpoint, tmp_path / "plain.pt", "zip")
    result, converted = convert(path)
    assert_same(converted, {"w": torch.ones(2)})
    dropped = " ".join(result.warnings)
    for key in ("tags", "shape", "device", "blob", "pair", "c"):
        assert repr(key) in dropped


OPCODE_BYTES = st.sampled_from(sorted({ord(op.code) for op in pickletools.opcodes}))


@FUZZ
@given(ops=st.lists(OPCODE_BYTES, max_size=300), tail=st.binary(max_size=64))
def test_random_opcode_soup_is_refused_or_converted(
    tmp_path: Path, ops: list[int], tail: bytes
) -> None:
    genuine = tmp_path / "genuine.pt"
    if not genuine.exists():
        save({"w": torch.ones(2)}, genuine, "zip")
    main = b"\x80\x02" + bytes(ops) + tail
    data = rezip(genuine, tmp_path / "soup.pt", {"data.pkl": main}).read_bytes()
    _convert_bytes(tmp_path, data)


@pytest.fixture(scope="module")
def small_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("small")
    base = torch.arange(6.0)
    state = {"w": torch.ones(2, 3), "v": base[1:4], "t": base.view(2, 3).t(), "i": torch.tensor(3)}
    return {fmt: save(state, folder / f"{fmt}.pt", fmt).read_bytes() for fmt in FORMATS}


def _convert_bytes(folder: Path, data: bytes) -> None:
    source = folder / "fuzz.pt"
    source.write_bytes(data)
    out = folder / "fuzz.safetensors"
    message = ""
    try:
        convert_to_safetensors(source, out)
    except ConvertError as error:
        message = str(error) or "empty message"
    if message:
        assert not out.exists()
    else:
        safetensors_torch.load_file(out)  # whatever was written is a valid file
        out.unlink()
    assert leftovers(folder) == []


PREFIXES = st.sampled_from([b"", b"PK\x03\x04", pickle.dumps(LEGACY_MAGIC, protocol=2)])


@FUZZ
@given(prefix=PREFIXES, data=st.binary(max_size=2048))
def test_random_bytes_are_refused(tmp_path: Path, prefix: bytes, data: bytes) -> None:
    source = tmp_path / "random.pt"
    source.write_bytes(prefix + data)
    with pytest.raises(ConvertError):
        convert_to_safetensors(source, tmp_path / "random.safetensors")
    assert not (tmp_path / "random.safetensors").exists()
    assert leftovers(tmp_path) == []


@FUZZ
@given(
    fmt=st.sampled_from(FORMATS),
    edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=6),
    keep=st.floats(0.05, 1),
)
def test_mutated_checkpoints_convert_or_are_refused(
    tmp_path: Path,
    small_checkpoints: dict[str, bytes],
    fmt: str,
    edits: list[tuple[float, int]],
    keep: float,
) -> None:
    data = bytearray(small_checkpoints[fmt])
    for where, value in edits:
        data[int(where * len(data))] = value
    _convert_bytes(tmp_path, bytes(data[: max(1, int(keep * len(data)))]))


# --------------------------------------------------------------------------------------------
# the scanner gate


def fake_scanner(findings: list[Finding], errors: list[ScanFailure]) -> Callable[..., Report]:
    def scan_paths(paths: list[Path], settings: object = None) -> Report:
        return Report(kind="models", findings=list(findings), errors=list(errors))

    return scan_paths


def finding(severity: Severity, path: Path) -> Finding:
    return Finding(
        rule_id="MODEL-TEST-RULE",
        severity=severity,
        title="test",
        message="something suspicious",
        location=Location(path=str(path), member="archive/data.pkl"),
    )


@pytest.mark.parametrize("severity", [Severity.HIGH, Severity.CRITICAL])
def test_flagged_files_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, severity: Severity
) -> None:
    path = save({"w": torch.ones(2)}, tmp_path / "model.pt", "zip")
    scanner = fake_scanner([finding(severity, path)], [])
    monkeypatch.setattr(convert_module, "_load_scanner", lambda: scanner)
    error = refused(path, "scanner flagged")
    assert "MODEL-TEST-RULE" in str(error)
    assert severity.label in str(error)


def test_scan_errors_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = save({"w": torch.ones(2)}, tmp_path / "model.pt", "zip")
    scanner = fake_scanner([], [ScanFailure(Location(path=str(path)), "could not parse")])
    monkeypatch.setattr(convert_module, "_load_scanner", lambda: scanner)
    refused(path, "could not parse")


def test_findings_below_high_do_not_block(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = save({"w": torch.ones(2)}, tmp_path / "model.pt", "zip")
    scanner = fake_scanner([finding(Severity.MEDIUM, path), finding(Severity.LOW, path)], [])
    monkeypatch.setattr(convert_module, "_load_scanner", lambda: scanner)
    result, converted = convert(path)
    assert_same(converted, {"w": torch.ones(2)})
    assert not any("scanner" in w for w in result.warnings)


def test_missing_scanner_is_reported(tmp_path: Path) -> None:
    path = save({"w": torch.ones(2)}, tmp_path / "model.pt", "zip")
    result, _ = convert(path)
    assert any("scan was skipped" in w for w in result.warnings)


def test_header_is_deterministic(tmp_path: Path) -> None:
    state = {"z": torch.ones(1), "a": torch.ones(1), "m": torch.ones(1, dtype=torch.int8)}
    path = save(state, tmp_path / "d.pt", "zip")
    convert(path, metadata={"zeta": "1", "alpha": "2"})
    first = path.with_suffix(".safetensors").read_bytes()
    convert(path, metadata={"alpha": "2", "zeta": "1"})
    assert path.with_suffix(".safetensors").read_bytes() == first
    (length,) = struct.unpack("<Q", first[:8])
    header = json.loads(first[8 : 8 + length])
    assert list(header["__metadata__"]) == sorted(header["__metadata__"])
    assert (8 + length) % 8 == 0


def test_with_the_real_scanner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(convert_module, "_load_scanner", REAL_LOAD_SCANNER)
    if REAL_LOAD_SCANNER() is None:
        pytest.skip("the model scanner is not in this tree yet")
    torch.manual_seed(0)
    for fmt in FORMATS:
        good = save(TiedLM().state_dict(), tmp_path / f"good-{fmt}.pt", fmt)
        result, converted = convert(good)
        assert_same(converted, {k: v for k, v in torch_load(good).items() if k != "lm_head.weight"})
        assert not any("scan was skipped" in w for w in result.warnings)
    marker = tmp_path / "pwned"
    payload = global_call("os", "system", f"touch {shlex.quote(str(marker))}")
    hostile = rezip(tmp_path / "good-zip.pt", tmp_path / "hostile.pt", {"data.pkl": payload})
    refused(hostile, "system")  # stopped by the scanner, or else by the converter
    assert not marker.exists()


def test_the_command_line_shows_what_was_changed_even_when_quiet(tmp_path: Path) -> None:
    from tests.cli import run_cli

    src = tmp_path / "m.pt"
    torch.save({"w": torch.arange(4.0), "note": "x" * 5000}, src)
    for extra in ([], ["--quiet"]):
        done = run_cli("convert", str(src), "--to", "safetensors", *extra, env={"COLUMNS": "40"})
        assert done.returncode == 0, done.stderr
        warning = next(line for line in done.stderr.splitlines() if line.startswith("warning:"))
        # one line, however narrow the terminal
        assert "'note'" in warning and warning.endswith("was dropped")
    refused = run_cli("convert", str(tmp_path / "missing.pt"), env={"COLUMNS": "40"})
    assert refused.returncode == 2 and len(refused.stderr.splitlines()) <= 2, refused.stderr
