"""GGUF files (llama.cpp and friends): header, metadata, tensor table and chat templates.

The header is parsed here, not by a library, because every count and length in it is attacker
controlled: declared sizes are checked against the bytes that remain before anything is read, and
values that are not needed are skipped, never loaded. Tensor records are validated the way
llama.cpp does (known ggml types, dimensions, alignment, bounds, overlap).

Chat templates (`tokenizer.chat_template*`) are Jinja2 source that llama-cpp-python, transformers
and others render; an unsandboxed or escapable render runs code (CVE-2024-34359). Each one is
checked by `chat_template` (parsed, never rendered), which is loaded only when a file has one.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import IO, Any

from secmlops.errors import ScanError
from secmlops.findings import Location, Severity
from secmlops.scan.models.engine import Blob, ScanContext
from secmlops.scan.models.rules import (
    GGUF_MALFORMED,
    GGUF_TEMPLATE_INJECTION,
    GGUF_TEMPLATE_INVALID,
)

MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32
MAX_DIMS = 4  # GGML_MAX_DIMS
MAX_NAME = 64  # GGML_MAX_NAME, including the terminating NUL
MAX_KEY = 65_536
MAX_KEPT_STRING = 1 << 20  # values kept in memory (templates); longer ones are skipped
MAX_ARRAY_DEPTH = 8
MAX_REPORTED = 20
INT64_MAX = 2**63 - 1

# Value types: struct code and size of the fixed-size ones.
_SCALARS: dict[int, tuple[str, int]] = {
    0: ("B", 1), 1: ("b", 1), 2: ("H", 2), 3: ("h", 2), 4: ("I", 4), 5: ("i", 4),
    6: ("f", 4), 7: ("?", 1), 10: ("Q", 8), 11: ("q", 8), 12: ("d", 8),
}  # fmt: skip
_STRING = 8
_ARRAY = 9
_TYPE_NAMES = {0: "uint8", 1: "int8", 2: "uint16", 3: "int16", 4: "uint32", 5: "int32",
               6: "float32", 7: "bool", 8: "string", 9: "array", 10: "uint64", 11: "int64",
               12: "float64"}  # fmt: skip

# ggml tensor types: id -> (name, elements per block, bytes per block).
GGML_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22), 7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 9: ("Q8_1", 32, 40),
    10: ("Q2_K", 256, 84), 11: ("Q3_K", 256, 110), 12: ("Q4_K", 256, 144),
    13: ("Q5_K", 256, 176), 14: ("Q6_K", 256, 210), 15: ("Q8_K", 256, 292),
    16: ("IQ2_XXS", 256, 66), 17: ("IQ2_XS", 256, 74), 18: ("IQ3_XXS", 256, 98),
    19: ("IQ1_S", 256, 50), 20: ("IQ4_NL", 32, 18), 21: ("IQ3_S", 256, 110),
    22: ("IQ2_S", 256, 82), 23: ("IQ4_XS", 256, 136), 24: ("I8", 1, 1), 25: ("I16", 1, 2),
    26: ("I32", 1, 4), 27: ("I64", 1, 8), 28: ("F64", 1, 8), 29: ("IQ1_M", 256, 56),
    30: ("BF16", 1, 2), 34: ("TQ1_0", 256, 54), 35: ("TQ2_0", 256, 66),
    39: ("MXFP4", 32, 17), 40: ("NVFP4", 64, 36), 41: ("Q1_0", 128, 18),
}  # fmt: skip


class _Malformed(Exception):
    """The header cannot be parsed past this point: reported, then the scan fails closed."""


@dataclass(slots=True)
class _TensorInfo:
    name: str
    dims: list[int]
    ggml_type: int
    offset: int
    record_at: int


@dataclass(slots=True)
class _Header:
    version: int
    endian: str
    tensor_count: int = 0
    kv_count: int = 0
    kv: dict[str, Any] = field(default_factory=dict)
    kv_types: dict[str, int] = field(default_factory=dict)
    kv_offsets: dict[str, int] = field(default_factory=dict)
    duplicate_keys: list[str] = field(default_factory=list)
    tensors: list[_TensorInfo] = field(default_factory=list)
    infos_end: int = 0


class GgufScanner:
    """`GGUF` magic and a known version (1-3), either byte order."""

    name = "gguf"

    def sniff(self, blob: Blob) -> bool:
        head = blob.head
        return len(head) >= 8 and head.startswith(MAGIC) and _endian(head[4:8]) is not None

    def scan(self, blob: Blob, ctx: ScanContext) -> None:
        endian = _endian(blob.head[4:8])
        if endian is None:
            raise ScanError("unsupported GGUF version")
        with blob.open() as f:
            reader = _Reader(f, blob.size, endian)
            try:
                header = _parse(reader)
            except _Malformed as exc:
                ctx.emit(
                    GGUF_MALFORMED.finding(
                        blob.location.at_offset(reader.pos), str(exc), {"offset": reader.pos}
                    )
                )
                raise ScanError(f"GGUF header cannot be parsed: {exc}") from exc
        _check_keys(header, blob, ctx)
        _check_tensors(header, blob, ctx)
        _check_templates(header, blob, ctx)


def _endian(version: bytes) -> str | None:
    little = int.from_bytes(version, "little")
    if 1 <= little <= 3:
        return "<"
    if 1 <= int.from_bytes(version, "big") <= 3:
        return ">"
    return None


class _Reader:
    """Bounded sequential reads: nothing is read or allocated past what the file holds."""

    def __init__(self, f: IO[bytes], size: int, endian: str) -> None:
        self.f = f
        self.size = size
        self.endian = endian
        self.pos = 0

    @property
    def remaining(self) -> int:
        return self.size - self.pos

    def read(self, n: int) -> bytes:
        if n > self.remaining:
            raise _Malformed(self._short(n))
        data = self.f.read(n)
        if len(data) != n:
            raise _Malformed(f"file ended early at offset {self.pos + len(data)}")
        self.pos += n
        return data

    def skip(self, n: int) -> None:
        if n > self.remaining:
            raise _Malformed(self._short(n))
        self.f.seek(n, 1)
        self.pos += n

    def _short(self, n: int) -> str:
        return f"needs {n} bytes at offset {self.pos}; the file ends {self.remaining} bytes later"

    def scalar(self, code: str, size: int) -> Any:
        return struct.unpack(self.endian + code, self.read(size))[0]

    def u32(self) -> int:
        value: int = self.scalar("I", 4)
        return value

    def u64(self) -> int:
        value: int = self.scalar("Q", 8)
        return value


def _parse(r: _Reader) -> _Header:
    r.read(4)
    version = r.u32()
    header = _Header(version=version, endian=r.endian)
    count = r.u32 if version == 1 else r.u64
    header.tensor_count = count()
    header.kv_count = count()
    # Smallest possible records: key (length + 1 byte) + type + 1-byte value; tensor name
    # (length + 1 byte) + n_dims + one dim + type + offset.
    min_kv = (4 if version == 1 else 8) + 1 + 4 + 1
    min_tensor = (4 if version == 1 else 8) + 1 + 4 + (4 if version == 1 else 8) + 4 + 8
    if header.kv_count * min_kv > r.remaining:
        raise _Malformed(
            f"declares {header.kv_count} metadata entries; the {r.remaining} remaining bytes hold "
            f"at most {r.remaining // min_kv}"
        )
    if header.tensor_count * min_tensor > r.remaining:
        raise _Malformed(
            f"declares {header.tensor_count} tensors; the {r.remaining} remaining bytes hold at "
            f"most {r.remaining // min_tensor}"
        )
    for _ in range(header.kv_count):
        at = r.pos
        key = _string(r, version, keep=MAX_KEY, what="metadata key")
        if key is None:
            raise _Malformed(f"metadata key at offset {at} is longer than {MAX_KEY} bytes")
        vtype = r.u32()
        keep = MAX_KEPT_STRING if _wanted(key) else 0
        value = _value(r, version, vtype, 0, keep)
        if key in header.kv:
            header.duplicate_keys.append(key)
            key = f"{key}#{len(header.duplicate_keys)}"  # both copies are analysed
        header.kv[key] = value
        header.kv_types[key] = vtype
        header.kv_offsets[key] = at
    for _ in range(header.tensor_count):
        at = r.pos
        name = _string(r, version, keep=MAX_KEY, what="tensor name")
        if name is None:
            raise _Malformed(f"tensor name at offset {at} is longer than {MAX_KEY} bytes")
        n_dims = r.u32()
        if n_dims > MAX_DIMS:
            raise _Malformed(f"tensor {name!r} has {n_dims} dimensions (ggml supports {MAX_DIMS})")
        dims = [r.u32() if version == 1 else r.u64() for _ in range(n_dims)]
        ggml_type = r.u32()
        offset = r.u64()
        header.tensors.append(_TensorInfo(name, dims, ggml_type, offset, at))
    header.infos_end = r.pos
    return header


def _wanted(key: str) -> bool:
    return key.startswith("tokenizer.chat_template") or key.startswith("general.")


def _string(r: _Reader, version: int, keep: int, what: str = "string") -> str | None:
    """A length-prefixed UTF-8 string; None (content skipped) when longer than `keep`."""
    at = r.pos
    length = r.u32() if version == 1 else r.u64()
    if length > r.remaining:
        raise _Malformed(
            f"{what} at offset {at} declares {length} bytes; only {r.remaining} remain"
        )
    if length > keep:
        r.skip(length)
        return None
    data = r.read(length)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Malformed(f"{what} at offset {at} is not UTF-8 ({exc.reason})") from exc


def _value(r: _Reader, version: int, vtype: int, depth: int, keep: int) -> Any:
    if vtype in _SCALARS:
        code, size = _SCALARS[vtype]
        return r.scalar(code, size)
    if vtype == _STRING:
        return _SkippedString() if (text := _string(r, version, keep)) is None else text
    if vtype != _ARRAY:
        raise _Malformed(f"unknown metadata value type {vtype}")
    if depth >= MAX_ARRAY_DEPTH:
        raise _Malformed(f"arrays nested more than {MAX_ARRAY_DEPTH} deep")
    at = r.pos
    item_type = r.u32()
    count = r.u32() if version == 1 else r.u64()
    if item_type in _SCALARS:
        need = count * _SCALARS[item_type][1]
        if need > r.remaining:
            raise _Malformed(
                f"array at offset {at} declares {count} {_TYPE_NAMES[item_type]} values "
                f"({need} bytes); only {r.remaining} remain"
            )
        r.skip(need)
        return _SkippedArray(item_type, count)
    if item_type == _STRING:
        smallest = 4 if version == 1 else 8
    elif item_type == _ARRAY:
        smallest = 4 + (4 if version == 1 else 8)
    else:
        raise _Malformed(f"array at offset {at} has unknown item type {item_type}")
    if count * smallest > r.remaining:
        raise _Malformed(
            f"array at offset {at} declares {count} {_TYPE_NAMES[item_type]} items; only "
            f"{r.remaining} bytes remain"
        )
    for _ in range(count):
        _value(r, version, item_type, depth + 1, 0)
    return _SkippedArray(item_type, count)


@dataclass(frozen=True, slots=True)
class _SkippedString:
    """A string value too long to keep (only chat templates are kept)."""


@dataclass(frozen=True, slots=True)
class _SkippedArray:
    item_type: int
    count: int


def _check_keys(header: _Header, blob: Blob, ctx: ScanContext) -> None:
    if header.duplicate_keys:
        keys = sorted(set(header.duplicate_keys))
        ctx.emit(
            GGUF_MALFORMED.finding(
                blob.location,
                f"metadata keys appear more than once: {keys[:10]}; llama.cpp rejects the file "
                "and other readers keep different copies",
                {"keys": keys[:MAX_REPORTED]},
                severity=Severity.MEDIUM,
            )
        )


def _alignment(header: _Header, blob: Blob, ctx: ScanContext) -> int:
    if "general.alignment" not in header.kv:
        return DEFAULT_ALIGNMENT
    value = header.kv["general.alignment"]
    vtype = header.kv_types["general.alignment"]
    if vtype == 4 and isinstance(value, int) and value > 0 and value & (value - 1) == 0:
        return value
    ctx.emit(
        GGUF_MALFORMED.finding(
            blob.location.at_offset(header.kv_offsets["general.alignment"]),
            f"general.alignment is {value!r} ({_TYPE_NAMES.get(vtype, vtype)}); it must be a "
            "uint32 power of two",
            {"value": repr(value)[:50]},
        )
    )
    return DEFAULT_ALIGNMENT


def _check_tensors(header: _Header, blob: Blob, ctx: ScanContext) -> None:
    alignment = _alignment(header, blob, ctx)
    data_start = -(-header.infos_end // alignment) * alignment
    problems: list[tuple[int, str, dict[str, Any]]] = []
    names: set[str] = set()
    ranges: list[tuple[int, int, str]] = []
    for t in header.tensors:
        evidence: dict[str, Any] = {"tensor": t.name, "dims": t.dims, "offset": t.offset}
        if t.name in names:
            problems.append((t.record_at, f"tensor name {t.name!r} is used twice", evidence))
        names.add(t.name)
        if len(t.name.encode("utf-8")) >= MAX_NAME:
            problems.append(
                (t.record_at, f"tensor name {t.name[:80]!r} is longer than ggml allows", evidence)
            )
        kind = GGML_TYPES.get(t.ggml_type)
        if kind is None:
            problems.append(
                (t.record_at, f"tensor {t.name!r} has unknown ggml type {t.ggml_type}", evidence)
            )
            continue
        type_name, block, type_size = kind
        evidence["type"] = type_name
        elements = 1
        for d in t.dims:
            elements *= d
        if elements > INT64_MAX or any(d > INT64_MAX for d in t.dims):
            problems.append(
                (t.record_at, f"tensor {t.name!r} dimensions {t.dims} overflow int64", evidence)
            )
            continue
        if t.dims and t.dims[0] % block:
            problems.append(
                (
                    t.record_at,
                    f"tensor {t.name!r}: first dimension {t.dims[0]} is not a multiple of the "
                    f"{type_name} block size {block}",
                    evidence,
                )
            )
            continue
        nbytes = elements // block * type_size
        if t.offset % alignment:
            problems.append(
                (
                    t.record_at,
                    f"tensor {t.name!r}: offset {t.offset} is not a multiple of the alignment "
                    f"{alignment}",
                    evidence,
                )
            )
        end = data_start + t.offset + nbytes
        if end > blob.size:
            problems.append(
                (
                    t.record_at,
                    f"tensor {t.name!r}: data [{data_start + t.offset}, {end}) runs past the end "
                    f"of the file ({blob.size} bytes)",
                    {**evidence, "nbytes": nbytes},
                )
            )
            continue
        if nbytes:
            ranges.append((t.offset, t.offset + nbytes, t.name))
    reach = 0
    owner = ""
    for begin, end, name in sorted(ranges):
        if begin < reach:
            problems.append(
                (
                    data_start + begin,
                    f"tensors {owner!r} and {name!r} overlap in the data section",
                    {"tensors": [owner, name]},
                )
            )
        if end > reach:
            reach, owner = end, name
    for offset, message, evidence in problems[:MAX_REPORTED]:
        ctx.emit(GGUF_MALFORMED.finding(blob.location.at_offset(offset), message, evidence))
    if len(problems) > MAX_REPORTED:
        ctx.emit(
            GGUF_MALFORMED.finding(
                blob.location,
                f"{len(problems) - MAX_REPORTED} further tensor-table problems were not listed",
                {"count": len(problems)},
            )
        )


def _check_templates(header: _Header, blob: Blob, ctx: ScanContext) -> None:
    for key, value in header.kv.items():
        if not key.startswith("tokenizer.chat_template"):
            continue
        display = key.split("#", 1)[0]
        location = blob.location.at_offset(header.kv_offsets[key])
        if header.kv_types[key] == _ARRAY and key.startswith("tokenizer.chat_templates"):
            continue  # the list of template names; the templates are separate keys
        if isinstance(value, _SkippedString):
            ctx.fail(location, f"{display} is longer than {MAX_KEPT_STRING} bytes; not analysed")
            continue
        if not isinstance(value, str):
            ctx.emit(
                GGUF_TEMPLATE_INVALID.finding(
                    location,
                    f"{display} is a {_TYPE_NAMES.get(header.kv_types[key], '?')}, not a string",
                    {"key": display},
                )
            )
            continue
        _check_template(display, value, location, ctx)


def _check_template(key: str, source: str, location: Location, ctx: ScanContext) -> None:
    from secmlops.scan.models.formats.chat_template import analyze_chat_template

    result = analyze_chat_template(source)
    if result.error is not None:
        ctx.emit(
            GGUF_TEMPLATE_INVALID.finding(
                location,
                f"{key} does not parse as Jinja2: {result.error}",
                {"key": key, "error": result.error[:300]},
            )
        )
    if result.reasons:
        top = max(severity for severity, _ in result.reasons)
        listed = [reason for _, reason in result.reasons]
        ctx.emit(
            GGUF_TEMPLATE_INJECTION.finding(
                location,
                f"{key}: {'; '.join(listed[:5])}"
                + (f" (+{len(listed) - 5} more)" if len(listed) > 5 else ""),
                {"key": key, "patterns": listed[:MAX_REPORTED]},
                severity=top,
            )
        )
