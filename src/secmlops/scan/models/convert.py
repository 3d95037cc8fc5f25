"""Convert PyTorch checkpoints to safetensors without importing torch or running pickle code.

Both on-disk formats of `torch.save` are read: the zip archive (default since torch 1.6) and the
legacy stream (`_use_new_zipfile_serialization=False`). The pickle inside is read by an unpickler
whose `find_class` hands out only inert stand-ins for the handful of globals that rebuild tensors;
any other global is refused by name and nothing found in the pickle is ever called. Tensor bytes
are copied from the storage records (zip) or the raw storage section (legacy), so every tensor is
bit-identical to what `torch.load` returns, and written to a new safetensors file in a streaming
way: a temporary file next to the destination, renamed into place only when everything checked out.

Tied weights are resolved the way `safetensors.torch.save_model` resolves them: tensors that are the
same view of the same storage are written once, under the first name in sorted order, and each
dropped name is recorded in `__metadata__` as ``dropped -> kept``.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import math
import os
import pickle
import pickletools
import queue
import secrets
import stat
import struct
import threading
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import numpy as np

from secmlops.errors import ConvertError
from secmlops.findings import Severity

__all__ = ["ConversionResult", "SharedGroup", "convert_to_safetensors"]

_CHUNK: Final = 8 * 2**20  # bytes per read; inflated blocks may be any length
_BUFFERS: Final = 3  # chunks in flight between the sweep and the SHA-256 helper thread
_MAX_PICKLE_BYTES: Final = 2**30  # state-dict pickles are kilobytes to a few hundred megabytes
_FIRST_HEAD: Final = 2**20
_MAX_HEADER_BYTES: Final = 100_000_000  # what safetensors accepts
_MAX_NUMPY_DIMS: Final = 64
_MAX_DIMS: Final = 4096
_MAX_METADATA_VALUE: Final = 4096
# Expansion bounds, the scanner's own (`Limits.max_ratio`, and the 16 MiB floor of its zip
# checks): a deflated record may declare at most this many times its compressed size, and the
# tensors written at most this many times the source file. Real checkpoints stay far below;
# a broadcast view or a lying zip header would otherwise turn a tiny file into gigabytes.
_MAX_RATIO: Final = 250
_RATIO_FLOOR: Final = 16 * 2**20
_LEGACY_MAGIC: Final = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL: Final = 1001
_ZIP_LOCAL_MAGIC: Final = b"PK\x03\x04"
_ZIP_LOCAL_HEADER: Final = struct.Struct("<4s2B4HL2L2H")
_O_BINARY: Final = getattr(os, "O_BINARY", 0)  # Windows would otherwise translate newlines
_HINT_RESAVE: Final = (
    "load the checkpoint in a trusted environment and save a plain state_dict "
    "(`torch.save(model.state_dict(), path)`), or use safetensors directly"
)


# --------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True, slots=True)
class SharedGroup:
    """Tensors that were the same view of one storage: written once as `kept`."""

    kept: str
    aliases: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ConversionResult:
    """What one conversion wrote."""

    source: Path
    output: Path
    source_format: str  # "zip" or "legacy"
    source_sha256: str
    tensor_names: tuple[str, ...]
    shared: tuple[SharedGroup, ...]
    metadata: Mapping[str, str]
    bytes_written: int
    tensor_bytes: int
    seconds: float
    warnings: tuple[str, ...] = ()


# --------------------------------------------------------------------------------------------
# Dtypes

# The order of safetensors' `Dtype` enum: its writer lays tensors out by this rank, descending,
# then by name, which keeps every tensor aligned to its element size. We do the same so our
# files are byte-identical to `safetensors.torch.save_file` output (with the same metadata).
_SAFETENSORS_ORDER: Final = (
    "BOOL", "F4", "F6_E2M3", "F6_E3M2", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0",
    "F8_E4M3FNUZ", "F8_E5M2FNUZ", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "C64",
    "F64", "I64", "U64",
)  # fmt: skip
_SAFETENSORS_RANK: Final = {code: rank for rank, code in enumerate(_SAFETENSORS_ORDER)}


@dataclass(frozen=True, slots=True)
class _DType:
    name: str  # torch's name, e.g. "float32"
    itemsize: int
    code: str | None  # safetensors dtype, None when safetensors cannot hold it
    swap: int = 0  # bytes per byte-swapped unit; 0 means itemsize
    refusal: str = ""

    @property
    def swap_unit(self) -> int:
        return self.swap or self.itemsize

    @property
    def rank(self) -> int:
        return _SAFETENSORS_RANK.get(self.code or "", -1)


def _dtype_table() -> dict[str, _DType]:
    no_c128 = "safetensors has no complex128 dtype"
    no_c32 = "safetensors has no complex32 dtype"
    quantized = "quantized tensors are not supported"
    rows = [
        _DType("float64", 8, "F64"),
        _DType("float32", 4, "F32"),
        _DType("float16", 2, "F16"),
        _DType("bfloat16", 2, "BF16"),
        _DType("int64", 8, "I64"),
        _DType("int32", 4, "I32"),
        _DType("int16", 2, "I16"),
        _DType("int8", 1, "I8"),
        _DType("uint8", 1, "U8"),
        _DType("uint16", 2, "U16"),
        _DType("uint32", 4, "U32"),
        _DType("uint64", 8, "U64"),
        _DType("bool", 1, "BOOL"),
        _DType("complex64", 8, "C64", swap=4),
        _DType("float8_e4m3fn", 1, "F8_E4M3"),
        _DType("float8_e5m2", 1, "F8_E5M2"),
        _DType("float8_e4m3fnuz", 1, "F8_E4M3FNUZ"),
        _DType("float8_e5m2fnuz", 1, "F8_E5M2FNUZ"),
        _DType("float8_e8m0fnu", 1, "F8_E8M0"),
        _DType("float4_e2m1fn_x2", 1, "F4"),
        _DType("complex128", 16, None, swap=8, refusal=no_c128),
        _DType("complex32", 4, None, swap=2, refusal=no_c32),
        _DType("qint8", 1, None, refusal=quantized),
        _DType("quint8", 1, None, refusal=quantized),
        _DType("qint32", 4, None, refusal=quantized),
        _DType("quint4x2", 1, None, refusal=quantized),
        _DType("quint2x4", 1, None, refusal=quantized),
    ]
    for bits in ("bits8", "bits16", "bits1x8", "bits2x4", "bits4x2"):
        size = 2 if bits == "bits16" else 1
        rows.append(_DType(bits, size, None, refusal=f"torch.{bits} has no safetensors dtype"))
    return {row.name: row for row in rows}


_DTYPES: Final = _dtype_table()
_UNTYPED: Final = _DTYPES["uint8"]  # what torch uses for the element size of an UntypedStorage

# The legacy typed-storage classes torch still writes for the dtypes that had one.
_STORAGE_CLASSES: Final = {
    "DoubleStorage": "float64",
    "FloatStorage": "float32",
    "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16",
    "LongStorage": "int64",
    "IntStorage": "int32",
    "ShortStorage": "int16",
    "CharStorage": "int8",
    "ByteStorage": "uint8",
    "BoolStorage": "bool",
    "ComplexFloatStorage": "complex64",
    "ComplexDoubleStorage": "complex128",
    "QInt8Storage": "qint8",
    "QUInt8Storage": "quint8",
    "QInt32Storage": "qint32",
    "QUInt4x2Storage": "quint4x2",
    "QUInt2x4Storage": "quint2x4",
}

# Globals that mean a tensor kind we refuse, with the reason shown to the user.
_REFUSED_GLOBALS: Final = {
    "torch._utils._rebuild_sparse_tensor": "sparse tensors are not supported",
    "torch._utils._rebuild_sparse_csr": "sparse tensors are not supported",
    "torch.serialization._get_layout": "sparse tensors are not supported",
    "torch._utils._rebuild_qtensor": "quantized tensors are not supported",
    "torch.per_tensor_affine": "quantized tensors are not supported",
    "torch.per_tensor_symmetric": "quantized tensors are not supported",
    "torch.per_channel_affine": "quantized tensors are not supported",
    "torch.per_channel_symmetric": "quantized tensors are not supported",
    "torch.per_channel_affine_float_qparams": "quantized tensors are not supported",
    "torch._utils._rebuild_nested_tensor": "nested tensors are not supported",
    "torch._utils._rebuild_meta_tensor_no_storage": "meta tensors carry no data",
    "torch._utils._rebuild_wrapper_subclass": "storage-less tensor subclasses are not supported",
    "torch._utils._rebuild_device_tensor_from_numpy": "numpy-backed tensors are not supported",
}


# --------------------------------------------------------------------------------------------
# Inert stand-ins for what the pickle may build


@dataclass(frozen=True, slots=True, eq=False)
class _StorageType:
    """Stands in for `torch.FloatStorage` & co. (`dtype`) or `torch.UntypedStorage` (None)."""

    dtype: _DType | None


@dataclass(frozen=True, slots=True, eq=False)
class _DTypeMarker:
    """Stands in for a `torch.<dtype>` object."""

    dtype: _DType


@dataclass(frozen=True, slots=True, eq=False)
class _TypeMarker:
    """Stands in for `torch.Tensor` / `torch.nn.Parameter` as passed to `_rebuild_from_type_v2`."""

    name: str


@dataclass(frozen=True, slots=True, eq=False)
class _Opaque:
    """A harmless value we do not convert (a `torch.device`, a set, ...).

    Hashes by identity: sets are never built, so nothing in the pickle is hashed by us.
    """

    what: str
    items: tuple[object, ...] = ()


@dataclass(frozen=True, slots=True, eq=False)
class _Storage:
    """One storage the pickle refers to: `root` names the data, `base` is a legacy view offset."""

    root: str
    dtype: _DType
    nbytes: int
    base: int = 0


@dataclass(frozen=True, slots=True, eq=False)
class _Tensor:
    storage: _Storage
    dtype: _DType
    offset: int  # in elements, like torch's storage_offset
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    numel: int
    start: int  # first byte, counted from the start of the root storage's data
    span: int  # bytes from the first element to one past the last (0 when empty)
    contiguous: bool

    @property
    def nbytes(self) -> int:
        return self.numel * self.dtype.itemsize

    def view_key(self) -> tuple[object, ...]:
        return (self.storage.root, self.dtype.name, self.start, self.shape, self.stride)


def _make_tensor(
    storage: _Storage, dtype: _DType, offset: int, shape: tuple[int, ...], stride: tuple[int, ...]
) -> _Tensor:
    numel = math.prod(shape)
    span = 0
    if numel:
        span = (sum((n - 1) * s for n, s in zip(shape, stride, strict=True)) + 1) * dtype.itemsize
    contiguous = True
    expected = 1
    for size, step in zip(reversed(shape), reversed(stride), strict=True):
        if size != 1 and step != expected:
            contiguous = False
            break
        expected *= size
    start = storage.base + offset * dtype.itemsize
    return _Tensor(storage, dtype, offset, shape, stride, numel, start, span, contiguous)


class _StateDict(dict[Any, Any]):
    """Stands in for `collections.OrderedDict`; the `_metadata` torch attaches is dropped."""

    def __setstate__(self, state: object) -> None:
        if not isinstance(state, dict):
            raise ConvertError("malformed checkpoint: unexpected state for an OrderedDict")


class _LoadContext:
    """The stand-in callables the unpickler may hand out, and what they have seen.

    What torch 2.13 writes for a state_dict (checked by disassembling its output for every
    dtype): `collections.OrderedDict` for the dict (with `_metadata` set by BUILD) and for each
    tensor's empty backward hooks; `torch._utils._rebuild_tensor_v2` with a `torch.<X>Storage`
    class for the dtypes that have one (float64/32/16, bfloat16, int64..int8, uint8, bool,
    complex64/128); `_rebuild_tensor_v3` with `torch.storage.UntypedStorage` and a
    `torch.<dtype>` for the newer ones (float8_*, float4_e2m1fn_x2, uint16/32/64, complex32);
    `_rebuild_parameter` / `_rebuild_parameter_with_state` for `nn.Parameter`;
    `torch._tensor._rebuild_from_type_v2` with `torch.Tensor` for tensors that carry Python
    attributes. Sizes and strides are plain tuples. Older files may use `_rebuild_tensor`.
    """

    def __init__(self, *, legacy: bool, max_bytes: int, warnings: list[str]) -> None:
        self.legacy = legacy
        self.max_bytes = max_bytes
        self.warnings = warnings
        self.storages: dict[str, _Storage] = {}  # root key -> storage, in first-seen order
        self.views: dict[str, _Storage] = {}  # legacy view key -> storage
        self.dropped_state = 0
        rebuilders: dict[str, Callable[..., _Tensor]] = {
            "_rebuild_tensor": self._rebuild_tensor,
            "_rebuild_tensor_v2": self._rebuild_tensor_v2,
            "_rebuild_tensor_v3": self._rebuild_tensor_v3,
            "_rebuild_parameter": self._rebuild_parameter,
            "_rebuild_parameter_with_state": self._rebuild_parameter_with_state,
            "_rebuild_device_tensor_from_cpu_tensor": self._rebuild_device_tensor_from_cpu,
        }
        self.rebuilders = frozenset(id(f) for f in rebuilders.values())
        self.globals: dict[str, object] = {f"torch._utils.{k}": v for k, v in rebuilders.items()}
        self.globals.update(
            {
                "torch._tensor._rebuild_from_type_v2": self._rebuild_from_type_v2,
                "collections.OrderedDict": _StateDict,
                "torch.Size": self._size,
                "torch.device": self._device,
                "torch.Tensor": _TypeMarker("torch.Tensor"),
                "torch.nn.parameter.Parameter": _TypeMarker("torch.nn.parameter.Parameter"),
                "torch.UntypedStorage": _StorageType(None),
                "torch.storage.UntypedStorage": _StorageType(None),
                "_codecs.encode": self._codecs_encode,
                "builtins.set": self._set,
                "builtins.frozenset": self._set,
                "builtins.complex": self._complex,
            }
        )
        for dtype in _DTYPES.values():
            self.globals[f"torch.{dtype.name}"] = _DTypeMarker(dtype)
        for cls, name in _STORAGE_CLASSES.items():
            if _DTYPES[name].refusal:
                continue
            for module in ("torch", "torch.cuda"):
                self.globals[f"{module}.{cls}"] = _StorageType(_DTYPES[name])

    # -- globals ----------------------------------------------------------------------------

    def lookup(self, module: str, name: str) -> object:
        found = self._resolve(module, name)
        if found is None:
            raise _refused_global(f"{module}.{name}")
        return found

    def _resolve(self, module: str, name: str) -> object | None:
        if module == "__builtin__":  # Python 2 pickles
            module = "builtins"
        return self.globals.get(f"{module}.{name}")

    def check_globals(self, names: list[tuple[str, str]]) -> None:
        refused = list(dict.fromkeys(f"{m}.{n}" for m, n in names if self._resolve(m, n) is None))
        if not refused:
            return
        first = _refused_global(refused[0])
        if len(refused) > 1:
            others = ", ".join(refused[1:6]) + (", ..." if len(refused) > 6 else "")
            raise ConvertError(f"{first.message} (also refused: {others})", hint=first.hint)
        raise first

    # -- storages ---------------------------------------------------------------------------

    def persistent_load(self, pid: object) -> object:
        if not isinstance(pid, tuple) or not pid:
            raise ConvertError("malformed checkpoint: unsupported persistent id in the pickle")
        kind = _ascii(pid[0])
        if kind == "module":
            raise ConvertError(
                "the checkpoint pickles a whole nn.Module class, not a state_dict",
                hint=_HINT_RESAVE,
            )
        if kind != "storage":
            raise ConvertError(f"malformed checkpoint: unknown persistent id type {_quote(kind)}")
        if self.legacy:
            if len(pid) != 6:
                raise ConvertError("malformed checkpoint: legacy storage id must have 6 fields")
            _, storage_type, key, location, numel, view = pid
        else:
            if len(pid) != 5:
                raise ConvertError("malformed checkpoint: storage id must have 5 fields")
            _, storage_type, key, location, numel = pid
            view = None
        if not isinstance(storage_type, _StorageType):
            raise ConvertError("malformed checkpoint: storage id without a storage type")
        if not isinstance(key, str):
            raise ConvertError("malformed checkpoint: storage key is not a string")
        _ascii(location)
        count = _index(numel, "storage size")
        dtype = storage_type.dtype or _UNTYPED
        nbytes = count * dtype.itemsize
        if nbytes > self.max_bytes:
            raise ConvertError(
                f"storage {_quote(key)} declares {nbytes} bytes, "
                f"over the limit of {self.max_bytes}",
                hint="raise max_bytes if this checkpoint is expected to be that large",
            )
        storage = self.storages.get(key)
        if storage is None:
            storage = self.storages[key] = _Storage(key, dtype, nbytes)
        elif storage.dtype is not dtype or storage.nbytes != nbytes:
            raise ConvertError(
                f"malformed checkpoint: storage {_quote(key)} is declared twice with different "
                "types or sizes"
            )
        if view is None:
            return storage
        return self._legacy_view(storage, view)

    def _legacy_view(self, root: _Storage, view: object) -> _Storage:
        # Very old legacy files could name a view of a storage: (view_key, offset, size) in
        # elements of the root's dtype.
        if not isinstance(view, tuple) or len(view) != 3 or not isinstance(view[0], str):
            raise ConvertError("malformed checkpoint: bad storage view in the pickle")
        key, offset, size = view[0], _index(view[1], "view offset"), _index(view[2], "view size")
        item = root.dtype.itemsize
        if (offset + size) * item > root.nbytes:
            raise ConvertError(
                f"storage view {_quote(key)} is out of bounds of storage {_quote(root.root)} "
                f"({(offset + size) * item} > {root.nbytes} bytes)"
            )
        found = self.views.get(key)
        if found is None:
            found = self.views[key] = _Storage(root.root, root.dtype, size * item, offset * item)
        return found

    # -- tensor rebuilders ------------------------------------------------------------------

    def _tensor(
        self, storage: object, offset: object, size: object, stride: object, dtype: _DType
    ) -> _Tensor:
        if not isinstance(storage, _Storage):
            raise ConvertError("malformed checkpoint: tensor without a storage")
        if dtype.code is None:
            raise ConvertError(f"cannot convert a torch.{dtype.name} tensor: {dtype.refusal}")
        shape = _dims(size, "shape")
        strides = _dims(stride, "stride")
        if len(shape) != len(strides):
            raise ConvertError("malformed checkpoint: tensor shape and stride differ in length")
        tensor = _make_tensor(storage, dtype, _index(offset, "storage offset"), shape, strides)
        # The rule torch applies when it sets a tensor on a storage: empty tensors may point
        # anywhere, others must lie inside the storage.
        if tensor.numel and tensor.offset * dtype.itemsize + tensor.span > storage.nbytes:
            raise ConvertError(
                f"tensor of shape {_dims_text(shape)}, stride {_dims_text(strides)} and offset "
                f"{tensor.offset} reads past the end of storage {_quote(storage.root)} "
                f"({storage.nbytes} bytes): out of bounds"
            )
        if tensor.nbytes > self.max_bytes:  # a broadcast view can be far larger than its storage
            raise ConvertError(
                f"tensor of shape {_dims_text(shape)} would take more than {self.max_bytes} "
                "bytes, over the limit",
                hint="raise max_bytes if this checkpoint is expected to be that large",
            )
        return tensor

    def _rebuild_tensor(self, *args: object) -> _Tensor:
        _arity(args, 4, 4, "_rebuild_tensor")
        storage = args[0]
        dtype = storage.dtype if isinstance(storage, _Storage) else _UNTYPED
        return self._tensor(args[0], args[1], args[2], args[3], dtype)

    def _rebuild_tensor_v2(self, *args: object) -> _Tensor:
        _arity(args, 6, 7, "_rebuild_tensor_v2")
        if len(args) == 7:
            _check_tensor_metadata(args[6])
        return self._rebuild_tensor(*args[:4])

    def _rebuild_tensor_v3(self, *args: object) -> _Tensor:
        _arity(args, 7, 8, "_rebuild_tensor_v3")
        if not isinstance(args[6], _DTypeMarker):
            raise ConvertError("malformed checkpoint: _rebuild_tensor_v3 without a dtype")
        if len(args) == 8:
            _check_tensor_metadata(args[7])
        return self._tensor(args[0], args[1], args[2], args[3], args[6].dtype)

    def _rebuild_parameter(self, *args: object) -> _Tensor:
        _arity(args, 3, 3, "_rebuild_parameter")
        return _expect_tensor(args[0])

    def _rebuild_parameter_with_state(self, *args: object) -> _Tensor:
        _arity(args, 4, 4, "_rebuild_parameter_with_state")
        self._drop_state(args[3])
        return _expect_tensor(args[0])

    def _rebuild_device_tensor_from_cpu(self, *args: object) -> _Tensor:
        _arity(args, 4, 4, "_rebuild_device_tensor_from_cpu_tensor")
        tensor = _expect_tensor(args[0])
        if not isinstance(args[1], _DTypeMarker) or args[1].dtype is not tensor.dtype:
            raise ConvertError("malformed checkpoint: device tensor with a mismatched dtype")
        return tensor

    def _rebuild_from_type_v2(self, *args: object) -> _Tensor:
        _arity(args, 4, 4, "_rebuild_from_type_v2")
        func, new_type, func_args, state = args
        if id(func) not in self.rebuilders or not callable(func):
            raise ConvertError("malformed checkpoint: _rebuild_from_type_v2 of a non-tensor")
        if not isinstance(new_type, _TypeMarker):
            raise ConvertError("malformed checkpoint: _rebuild_from_type_v2 of an unknown type")
        if not isinstance(func_args, tuple):
            raise ConvertError("malformed checkpoint: _rebuild_from_type_v2 arguments")
        self._drop_state(state)
        return _expect_tensor(func(*func_args))

    def _drop_state(self, state: object) -> None:
        # Python attributes set on a tensor or parameter are not weights; count what we drop.
        if state is None or state == {} or state == (None, None) or state == ({}, None):
            return
        self.dropped_state += 1

    # -- plain values -----------------------------------------------------------------------

    def _size(self, *args: object) -> tuple[int, ...]:
        _arity(args, 0, 1, "torch.Size")
        return _dims(args[0] if args else (), "torch.Size")

    def _device(self, *args: object) -> _Opaque:
        _arity(args, 1, 2, "torch.device")
        return _Opaque("torch.device")

    def _codecs_encode(self, *args: object) -> bytes:
        _arity(args, 2, 2, "_codecs.encode")
        text, encoding = args
        if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
            raise ConvertError("malformed checkpoint: unexpected _codecs.encode call")
        return text.encode("latin-1")

    def _set(self, *args: object) -> _Opaque:
        _arity(args, 0, 1, "set")
        items = args[0] if args else ()
        if not isinstance(items, list | tuple):
            raise ConvertError("malformed checkpoint: unexpected set construction")
        return _Opaque("set", tuple(items))

    def _complex(self, *args: object) -> complex:
        _arity(args, 1, 2, "complex")
        parts: list[float] = []
        for arg in args:
            if isinstance(arg, bool) or not isinstance(arg, int | float):
                raise ConvertError("malformed checkpoint: unexpected complex construction")
            parts.append(float(arg))
        return complex(*parts)


def _refusal_reason(full: str) -> str | None:
    reason = _REFUSED_GLOBALS.get(full)
    if reason is None:
        module, _, name = full.rpartition(".")
        if module in ("torch", "torch.cuda") and name in _STORAGE_CLASSES:
            reason = _DTYPES[_STORAGE_CLASSES[name]].refusal
    return reason


def _refused_global(full: str) -> ConvertError:
    reason = _refusal_reason(full)
    if reason:
        return ConvertError(f"cannot convert: {reason} (pickle global {full})", hint=_HINT_RESAVE)
    return ConvertError(
        f"refusing pickle global {full}: it is not one of the tensor-rebuild constructs "
        "a state_dict needs, and it was not executed",
        hint=_HINT_RESAVE,
    )


def _arity(args: tuple[object, ...], low: int, high: int, what: str) -> None:
    if not low <= len(args) <= high:
        raise ConvertError(f"malformed checkpoint: {what} called with {len(args)} arguments")


def _expect_tensor(value: object) -> _Tensor:
    if not isinstance(value, _Tensor):
        raise ConvertError("malformed checkpoint: expected a tensor")
    return value


def _check_tensor_metadata(value: object) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        raise ConvertError("malformed checkpoint: tensor metadata is not a dict")
    if not all(isinstance(k, str) for k in value):
        raise ConvertError("malformed checkpoint: tensor metadata keys are not strings")
    flags = sorted(k for k, v in value.items() if v)
    if flags:
        raise ConvertError(
            f"a tensor has lazy {'/'.join(flags)} bit(s) set; its values differ from its bytes",
            hint="call .resolve_conj() / .resolve_neg() on it before saving the checkpoint",
        )


def _index(value: object, what: str) -> int:
    # torch keeps sizes, strides and offsets in int64
    if type(value) is not int or not 0 <= value < 2**63:
        raise ConvertError(f"malformed checkpoint: {what} is not a non-negative int64")
    return value


def _dims(value: object, what: str) -> tuple[int, ...]:
    if not isinstance(value, tuple | list):
        raise ConvertError(f"malformed checkpoint: tensor {what} is not a tuple")
    if len(value) > _MAX_DIMS:
        raise ConvertError(f"malformed checkpoint: tensor {what} has {len(value)} dimensions")
    return tuple(_index(v, what) for v in value)


def _quote(text: str) -> str:
    """A name from the file, quoted and cut short: messages stay readable whatever it holds."""
    return repr(text) if len(text) <= 80 else repr(text[:77]) + "..."


def _dims_text(dims: tuple[int, ...]) -> str:
    shown = ", ".join(str(d) for d in dims[:8])
    return f"[{shown}, ... ({len(dims)} dims)]" if len(dims) > 8 else f"[{shown}]"


def _ascii(value: object) -> str:
    if isinstance(value, bytes):
        try:
            return value.decode("ascii")
        except UnicodeDecodeError:
            raise ConvertError("malformed checkpoint: non-ASCII tag in a storage id") from None
    if not isinstance(value, str):
        raise ConvertError("malformed checkpoint: bad tag in a storage id")
    return value


class _SafeUnpickler(pickle.Unpickler):
    """Unpickles with stand-ins only: `find_class` never imports anything."""

    def __init__(self, data: bytes, context: _LoadContext | None) -> None:
        super().__init__(io.BytesIO(data), encoding="utf-8")
        self._context = context

    def find_class(self, module_name: str, global_name: str, /) -> Any:
        if self._context is None:
            raise _refused_global(f"{module_name}.{global_name}")
        return self._context.lookup(module_name, global_name)

    def persistent_load(self, pid: Any) -> Any:
        if self._context is None:
            raise ConvertError("malformed checkpoint: unexpected persistent id")
        return self._context.persistent_load(pid)


class _EndOfData(Exception):
    """A pickle ran past the bytes we have read so far (legacy files: read more and retry)."""


def _opcode_arguments() -> list[int | None]:
    """Per opcode byte: its argument length (> 0), 0 for none, or pickletools' negative
    markers for variable lengths; None for bytes that are not opcodes."""
    table: list[int | None] = [None] * 256
    for op in pickletools.opcodes:
        table[ord(op.code)] = 0 if op.arg is None else op.arg.n
    return table


_OPCODE_ARGS: Final = _opcode_arguments()
_UP_TO_NEWLINE: Final = pickletools.UP_TO_NEWLINE
_LENGTH1: Final = pickletools.TAKEN_FROM_ARGUMENT1
_LENGTH4: Final = pickletools.TAKEN_FROM_ARGUMENT4
_LENGTH4U: Final = pickletools.TAKEN_FROM_ARGUMENT4U
_LENGTH8U: Final = pickletools.TAKEN_FROM_ARGUMENT8U
_MAX_TUPLE_DEPTH: Final = 100  # state dicts nest tuples 3 or 4 deep

# What each opcode does to the stack, for `_pickle_extent`'s simulation. The simulation tracks,
# for each stack entry, how deeply tuples/frozensets nest inside it: hashing a tuple recurses in
# C, so a dict key nested a million tuples deep crashes CPython's unpickler (segfault), and the
# only defence is to refuse such a pickle before unpickling it.
(
    _FX_NONE, _FX_PUSH, _FX_PUSH_TUPLE, _FX_MARK, _FX_TUPLE, _FX_TUPLE1, _FX_TUPLE2, _FX_TUPLE3,
    _FX_COLLECT, _FX_DROP_MARK, _FX_POP, _FX_POP1, _FX_POP2, _FX_SWAP1, _FX_CALL2, _FX_CALL3,
    _FX_DUP, _FX_PUT, _FX_MEMOIZE, _FX_GET, _FX_STOP, _FX_REFUSE,
) = range(22)  # fmt: skip
_EFFECT_NAMES: Final = {
    _FX_NONE: "PROTO FRAME",
    _FX_PUSH: "INT BININT BININT1 BININT2 LONG LONG1 LONG4 STRING BINSTRING SHORT_BINSTRING "
    "BINBYTES SHORT_BINBYTES BINBYTES8 BYTEARRAY8 NONE NEWTRUE NEWFALSE UNICODE "
    "SHORT_BINUNICODE BINUNICODE BINUNICODE8 FLOAT BINFLOAT EMPTY_LIST EMPTY_DICT EMPTY_SET "
    "GLOBAL PERSID EXT1 EXT2 EXT4",
    _FX_PUSH_TUPLE: "EMPTY_TUPLE",
    _FX_MARK: "MARK",
    _FX_TUPLE: "TUPLE FROZENSET",
    _FX_TUPLE1: "TUPLE1",
    _FX_TUPLE2: "TUPLE2",
    _FX_TUPLE3: "TUPLE3",
    _FX_COLLECT: "LIST DICT OBJ INST",
    _FX_DROP_MARK: "APPENDS SETITEMS ADDITEMS POP_MARK",
    _FX_POP: "POP",
    _FX_POP1: "APPEND BUILD",
    _FX_POP2: "SETITEM",
    _FX_SWAP1: "BINPERSID",
    _FX_CALL2: "REDUCE NEWOBJ STACK_GLOBAL",
    _FX_CALL3: "NEWOBJ_EX",
    _FX_DUP: "DUP",
    _FX_PUT: "PUT BINPUT LONG_BINPUT",
    _FX_MEMOIZE: "MEMOIZE",
    _FX_GET: "GET BINGET LONG_BINGET",
    _FX_STOP: "STOP",
    _FX_REFUSE: "NEXT_BUFFER READONLY_BUFFER",
}


def _opcode_effects() -> list[int]:
    by_name = {name: fx for fx, names in _EFFECT_NAMES.items() for name in names.split()}
    table = [_FX_REFUSE] * 256
    for op in pickletools.opcodes:
        table[ord(op.code)] = by_name[op.name]  # KeyError here = an opcode we do not model
    return table


_OPCODE_EFFECTS: Final = _opcode_effects()
_OP_LONG_BINPUT: Final = ord("r")
_OP_PUT: Final = ord("p")
_OP_GLOBAL: Final = ord("c")
_OP_INST: Final = ord("i")
_OP_GET: Final = ord("g")
_OP_BINGET: Final = ord("h")


class _Malformed(Exception):
    pass


def _pickle_extent(data: bytes, start: int) -> tuple[int, list[tuple[str, str]]]:
    """Walk one pickle's opcodes without running it: where it ends and the globals it names.

    Refuses what CPython's C unpickler handles badly: tuples nested deeply enough to overflow
    the C stack when hashed, and memo indices far beyond the number of opcodes (the memo table
    is allocated and cleared up to the largest index). Raises `_EndOfData` when the pickle
    runs past the end of `data`.
    """
    try:
        return _walk_pickle(data, start)
    except _Malformed as exc:
        raise ConvertError(f"malformed pickle: {exc}") from None


def _walk_pickle(data: bytes, start: int) -> tuple[int, list[tuple[str, str]]]:
    arguments, effects = _OPCODE_ARGS, _OPCODE_EFFECTS
    size = len(data)
    pos = start
    count = 0
    names: list[tuple[str, str]] = []
    stack: list[int] = []  # tuple nesting depth of each entry
    marks: list[int] = []
    memo: dict[int, int] = {}
    while True:
        if pos >= size:
            raise _EndOfData
        code = data[pos]
        kind = arguments[code]
        if kind is None:
            raise _Malformed(f"unknown opcode 0x{code:02x} at byte {pos}")
        pos += 1
        count += 1
        arg = pos
        if kind > 0:
            pos += kind
        elif kind == _UP_TO_NEWLINE:
            for _ in range(2 if code in (_OP_GLOBAL, _OP_INST) else 1):
                newline = data.find(b"\n", pos)
                if newline < 0:
                    raise _EndOfData
                pos = newline + 1
        elif kind == _LENGTH1:
            if pos >= size:
                raise _EndOfData
            arg = pos + 1
            pos = arg + data[pos]
        elif kind < 0:
            width = 8 if kind == _LENGTH8U else 4
            if pos + width > size:
                raise _EndOfData
            length = int.from_bytes(data[pos : pos + width], "little", signed=kind == _LENGTH4)
            if length < 0:
                raise _Malformed(f"negative length at byte {pos}")
            arg = pos + width
            pos = arg + length
        if pos > size:
            raise _EndOfData

        effect = effects[code]
        depth = 0
        if effect == _FX_PUSH:
            stack.append(0)
            if code == _OP_GLOBAL:
                module, _, name = data[arg : pos - 1].partition(b"\n")
                names.append(_global_name(module, name))
            continue
        fence = marks[-1] if marks else 0
        if effect == _FX_PUT:
            raw = data[arg:pos]
            if code == _OP_LONG_BINPUT:
                index = int.from_bytes(raw, "little")
            elif code == _OP_PUT:
                index = _decimal(raw)
            else:
                index = raw[0]
            if index > count:
                raise _Malformed("memo index out of range")
            if len(stack) <= fence:
                raise _Malformed("PUT on an empty stack")
            memo[index] = stack[-1]
        elif effect == _FX_GET:
            raw = data[arg:pos]
            if code == _OP_BINGET:
                index = raw[0]
            elif code == _OP_GET:
                index = _decimal(raw)
            else:
                index = int.from_bytes(raw, "little")
            if index not in memo:
                raise _Malformed("memo entry read before it was written")
            stack.append(memo[index])
        elif effect == _FX_MARK:
            marks.append(len(stack))
        elif effect in (_FX_TUPLE1, _FX_TUPLE2, _FX_TUPLE3):
            width = 1 + effect - _FX_TUPLE1
            if len(stack) - fence < width:
                raise _Malformed("stack underflow")
            depth = 1 + max(stack[-width:])
            del stack[-width:]
            stack.append(depth)
        elif effect in (_FX_TUPLE, _FX_COLLECT, _FX_DROP_MARK):
            if not marks:
                raise _Malformed("no MARK on the stack")
            items = stack[fence:]
            del stack[fence:]
            marks.pop()
            if effect == _FX_TUPLE:
                depth = 1 + max(items, default=0)
                stack.append(depth)
            elif effect == _FX_COLLECT:
                stack.append(0)
                if code == _OP_INST:
                    module, _, name = data[arg : pos - 1].partition(b"\n")
                    names.append(_global_name(module, name))
        elif effect == _FX_PUSH_TUPLE:
            stack.append(1)
        elif effect in (_FX_POP1, _FX_POP2, _FX_SWAP1, _FX_CALL2, _FX_CALL3, _FX_STOP):
            width = {_FX_POP2: 2, _FX_CALL2: 2, _FX_CALL3: 3}.get(effect, 1)
            if len(stack) - fence < width + (effect in (_FX_POP1, _FX_POP2)):
                raise _Malformed("stack underflow")
            del stack[-width:]
            if effect in (_FX_SWAP1, _FX_CALL2, _FX_CALL3):
                stack.append(1)  # what our stand-ins return nests at most one tuple
            elif effect == _FX_STOP:
                return pos, names
        elif effect == _FX_POP:
            if len(stack) > fence:
                stack.pop()
            elif marks:
                marks.pop()
            else:
                raise _Malformed("stack underflow")
        elif effect == _FX_DUP:
            if len(stack) <= fence:
                raise _Malformed("stack underflow")
            stack.append(stack[-1])
        elif effect == _FX_MEMOIZE:
            if len(stack) <= fence:
                raise _Malformed("MEMOIZE on an empty stack")
            memo[len(memo)] = stack[-1]
        elif effect == _FX_REFUSE:
            raise _Malformed("out-of-band buffers are not allowed")
        if depth > _MAX_TUPLE_DEPTH:
            raise _Malformed(f"tuples nested more than {_MAX_TUPLE_DEPTH} deep")


def _global_name(module: bytes, name: bytes) -> tuple[str, str]:
    try:
        return module.decode("utf-8"), name.decode("utf-8")
    except UnicodeDecodeError:
        raise _Malformed("global name is not UTF-8") from None


def _decimal(raw: bytes) -> int:
    text = raw.strip()
    if not text.isdigit() or len(text) > 18:
        raise _Malformed("bad memo index")
    return int(text)


def _load_pickle(data: bytes, start: int, context: _LoadContext | None) -> tuple[object, int]:
    """Unpickle the pickle at `start` with stand-ins; returns the object and where it ended."""
    end, names = _pickle_extent(data, start)
    if context is not None:
        context.check_globals(names)  # refuse before anything is unpickled
    try:
        obj = _SafeUnpickler(data[start:end], context).load()
    except ConvertError:
        raise
    except Exception as exc:  # hostile input: any failure is a refusal, never a traceback
        raise ConvertError(f"malformed pickle: {_describe(exc)}") from None
    return obj, end


def _describe(exc: BaseException) -> str:
    text = str(exc)
    if len(text) > 200:
        text = text[:200] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# --------------------------------------------------------------------------------------------
# Reading the source file


@dataclass(frozen=True, slots=True)
class _Region:
    """Where one storage's bytes are in the source file."""

    label: str
    start: int  # file offset of the (possibly compressed) data
    length: int  # uncompressed length
    compressed: int | None = None  # compressed length of a deflated zip record
    crc: int | None = None  # CRC-32 the zip's central directory records


class _Source:
    """The opened source file: all reads go through one descriptor we checked is a regular file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | _O_BINARY)
        except FileNotFoundError:
            raise ConvertError(f"{path}: no such file") from None
        except OSError as exc:
            raise ConvertError(f"{path}: cannot open: {exc.strerror}") from None
        try:
            self.stat = os.fstat(fd)
            if not stat.S_ISREG(self.stat.st_mode):
                raise ConvertError(f"{path}: not a regular file")
            self.file = io.FileIO(fd, "rb", closefd=True)
        except BaseException:
            os.close(fd)
            raise
        self.size = self.stat.st_size
        self._buffer = memoryview(bytearray(_CHUNK))

    def close(self) -> None:
        self.file.close()

    def read_into(self, position: int, view: memoryview) -> None:
        done = 0
        while done < len(view):
            try:
                self.file.seek(position + done)
                got = self.file.readinto(view[done:])
            except OSError as exc:
                raise ConvertError(f"{self.path}: cannot read: {exc.strerror}") from None
            if not got:
                raise ConvertError(
                    f"{self.path}: unexpected end of file at byte {position + done} "
                    "(truncated, or changed while converting)"
                )
            done += got

    def read(self, position: int, length: int) -> bytes:
        if position < 0 or position + length > self.size:
            raise ConvertError(f"{self.path}: truncated (needs bytes up to {position + length})")
        buffer = bytearray(length)
        self.read_into(position, memoryview(buffer))
        return bytes(buffer)

    def identity(self) -> tuple[int, int, int, int]:
        now = os.fstat(self.file.fileno())
        return (now.st_dev, now.st_ino, now.st_size, now.st_mtime_ns)

    def chunks(self, region: _Region, start: int, length: int) -> Iterator[memoryview]:
        """Yield `length` uncompressed bytes of `region` from `start`, in bounded chunks."""
        if start < 0 or start + length > region.length:
            raise ConvertError(f"{region.label}: read beyond the end of the record")
        if length == 0:
            return
        if region.compressed is None:
            yield from self._raw_chunks(region.start + start, length)
        else:
            yield from self._inflate_chunks(region, start, length)

    def _raw_chunks(self, position: int, length: int) -> Iterator[memoryview]:
        # One buffer for every read: each chunk is consumed before the next one is read.
        buffer = self._buffer
        while length > 0:
            step = min(length, _CHUNK)
            self.read_into(position, buffer[:step])
            yield buffer[:step]
            position += step
            length -= step

    def _inflate_chunks(self, region: _Region, start: int, length: int) -> Iterator[memoryview]:
        skip, remaining = start, length
        for out in self._inflate(region):
            if skip >= len(out):
                skip -= len(out)
                continue
            piece = out[skip : skip + remaining]
            skip = 0
            remaining -= len(piece)
            yield memoryview(piece)
            if remaining == 0:
                return
        raise ConvertError(f"{region.label}: deflate data ends early (truncated)")

    def _inflate(self, region: _Region) -> Iterator[bytes]:
        # Output is bounded per call, so a small hostile stream cannot balloon in memory.
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        try:
            for raw in self._raw_chunks(region.start, region.compressed or 0):
                data = bytes(raw)
                while data:
                    out = inflater.decompress(data, _CHUNK)
                    data = inflater.unconsumed_tail
                    if out:
                        yield out
                    if inflater.eof:
                        return
            tail = inflater.flush()
        except zlib.error as exc:
            raise ConvertError(f"{region.label}: corrupt deflate data ({exc})") from None
        if tail:
            yield tail


# --------------------------------------------------------------------------------------------
# Checkpoint formats


@dataclass(slots=True)
class _Checkpoint:
    format: str
    root: object
    context: _LoadContext
    regions: dict[str, _Region]  # root storage key -> bytes
    big_endian: bool = False
    unverified: list[_Region] = field(default_factory=list)  # zip records whose CRC is unchecked


def _read_checkpoint(source: _Source, max_bytes: int, warnings: list[str]) -> _Checkpoint:
    if source.size == 0:
        raise ConvertError(f"{source.path}: empty file (0 bytes)")
    head = source.read(0, min(source.size, 512))
    if head.startswith(_ZIP_LOCAL_MAGIC):
        return _read_zip(source, max_bytes, warnings)
    if len(head) >= 262 and head[257:262] == b"ustar":
        raise ConvertError(
            f"{source.path}: a tar-format checkpoint (PyTorch before 0.4) is not supported",
            hint=_HINT_RESAVE,
        )
    if _is_legacy(head):
        return _read_legacy(source, max_bytes, warnings)
    raise ConvertError(
        f"{source.path}: unknown format: neither a PyTorch zip checkpoint nor a legacy one",
        hint="only files written by torch.save can be converted",
    )


def _is_legacy(head: bytes) -> bool:
    try:
        magic, _ = _load_pickle(head, 0, None)
    except (ConvertError, _EndOfData):
        return False
    return type(magic) is int and magic == _LEGACY_MAGIC


def _read_legacy(source: _Source, max_bytes: int, warnings: list[str]) -> _Checkpoint:
    limit = min(source.size, _MAX_PICKLE_BYTES, max(max_bytes, _FIRST_HEAD))
    length = min(source.size, _FIRST_HEAD)
    while True:
        head = source.read(0, length)
        try:
            return _parse_legacy(source, head, max_bytes, warnings)
        except _EndOfData:
            if length >= limit:
                if length >= source.size:
                    raise ConvertError(
                        f"{source.path}: truncated legacy checkpoint (pickle data ends early)"
                    ) from None
                raise ConvertError(
                    f"{source.path}: legacy checkpoint pickle larger than {limit} bytes"
                ) from None
            length = min(limit, length * 4)


def _parse_legacy(source: _Source, head: bytes, max_bytes: int, warnings: list[str]) -> _Checkpoint:
    # Layout (torch.serialization._legacy_save): pickles of the magic number, the protocol
    # version, sys_info and the object; a pickled list of storage keys; then for each key in
    # that order an 8-byte little-endian element count followed by the raw little-endian bytes.
    magic, pos = _load_pickle(head, 0, None)
    if type(magic) is not int or magic != _LEGACY_MAGIC:
        raise ConvertError(f"{source.path}: not a legacy PyTorch checkpoint (bad magic number)")
    protocol, pos = _load_pickle(head, pos, None)
    if type(protocol) is not int or protocol != _LEGACY_PROTOCOL:
        raise ConvertError(f"{source.path}: unsupported legacy protocol version")
    sys_info, pos = _load_pickle(head, pos, None)
    if not isinstance(sys_info, dict):
        raise ConvertError(f"{source.path}: malformed legacy checkpoint (sys_info)")
    context = _LoadContext(legacy=True, max_bytes=max_bytes, warnings=warnings)
    root, pos = _load_pickle(head, pos, context)
    keys, pos = _load_pickle(head, pos, None)
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise ConvertError(f"{source.path}: malformed legacy checkpoint (storage key list)")
    if len(set(keys)) != len(keys):
        raise ConvertError(f"{source.path}: malformed legacy checkpoint (repeated storage key)")
    regions: dict[str, _Region] = {}
    for key in keys:
        storage = context.storages.get(key)
        if storage is None:
            raise ConvertError(
                f"{source.path}: storage {_quote(key)} has data but is not used by the pickle"
            )
        if pos + 8 > source.size:
            raise ConvertError(
                f"{source.path}: truncated legacy checkpoint (storage {_quote(key)})"
            )
        (count,) = struct.unpack("<q", source.read(pos, 8))
        if count < 0 or count * storage.dtype.itemsize != storage.nbytes:
            raise ConvertError(
                f"{source.path}: storage {_quote(key)} holds {count} elements, the pickle declares "
                f"{storage.nbytes // storage.dtype.itemsize}"
            )
        if pos + 8 + storage.nbytes > source.size:
            raise ConvertError(
                f"{source.path}: truncated legacy checkpoint (storage {_quote(key)})"
            )
        regions[key] = _Region(f"legacy storage {_quote(key)}", pos + 8, storage.nbytes)
        pos += 8 + storage.nbytes
    missing = [k for k in context.storages if k not in regions]
    if missing:
        raise ConvertError(f"{source.path}: storage {_quote(missing[0])} is used but has no data")
    if pos < source.size:
        warnings.append(f"{source.size - pos} trailing bytes after the last storage were ignored")
    return _Checkpoint("legacy", root, context, regions)


def _read_zip(source: _Source, max_bytes: int, warnings: list[str]) -> _Checkpoint:
    try:
        archive = zipfile.ZipFile(source.file)
        infos = archive.infolist()
    except Exception as exc:  # zipfile raises many kinds of errors on hostile input
        raise ConvertError(
            f"{source.path}: not a readable zip archive ({_describe(exc)})"
        ) from None
    if not infos:
        raise ConvertError(f"{source.path}: the zip archive has no records")
    # PyTorch's reader (caffe2 PyTorchStreamReader over miniz) takes the folder of the first
    # central-directory entry as the prefix of every record and looks records up ignoring case.
    prefix, slash, _ = infos[0].filename.partition("/")
    if not slash:
        raise ConvertError(f"{source.path}: first zip record is not inside a folder")
    by_name: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        key = _fold(info.filename)
        if key in by_name:
            raise ConvertError(
                f"{source.path}: the zip holds two records named {_quote(info.filename)}; "
                "readers may disagree on which one is used"
            )
        by_name[key] = info

    def record(name: str) -> zipfile.ZipInfo | None:
        return by_name.get(_fold(f"{prefix}/{name}"))

    if record("constants.pkl") is not None:
        raise ConvertError(
            f"{source.path}: a TorchScript archive (code, not a state_dict) cannot be converted",
            hint=_HINT_RESAVE,
        )
    if record(".data/version") is None and record("version") is None:
        raise ConvertError(f"{source.path}: not a PyTorch checkpoint (no version record)")
    big_endian = False
    order_info = record("byteorder")
    if order_info is not None:
        value = _read_small(source, order_info, 16, warnings)
        if value not in (b"little", b"big"):
            raise ConvertError(f"{source.path}: unknown byte order record {value[:16]!r}")
        big_endian = value == b"big"
    pickle_info = record("data.pkl")
    if pickle_info is None:
        raise ConvertError(f"{source.path}: no data.pkl record in the archive")
    data = _read_small(source, pickle_info, min(max_bytes, _MAX_PICKLE_BYTES), warnings)
    context = _LoadContext(legacy=False, max_bytes=max_bytes, warnings=warnings)
    try:
        root, end = _load_pickle(data, 0, context)
    except _EndOfData:
        raise ConvertError(f"{source.path}: data.pkl is truncated") from None
    if end != len(data):
        warnings.append(f"{len(data) - end} bytes after the end of data.pkl were ignored")
    regions: dict[str, _Region] = {}
    unverified: list[_Region] = []
    for key, storage in context.storages.items():
        name = f"data/{key}"
        found = record(name)
        if found is None:
            raise ConvertError(f"{source.path}: storage record {_quote(name)} is missing")
        region = _region(source, found)
        if region.length < storage.nbytes:
            raise ConvertError(
                f"{source.path}: storage record {_quote(name)} holds {region.length} bytes, "
                f"the pickle declares {storage.nbytes}"
            )
        if region.length > storage.nbytes:
            warnings.append(
                f"record {_quote(name)} is {region.length - storage.nbytes} bytes longer than "
                "its storage; the extra bytes were ignored (as torch.load does)"
            )
        regions[key] = region
        unverified.append(region)
    used = {_fold(f"{prefix}/data/{key}") for key in context.storages}
    folder = _fold(f"{prefix}/data/")
    extra = sorted(
        i.filename
        for i in infos
        if _fold(i.filename).startswith(folder) and _fold(i.filename) not in used
    )
    if extra:
        warnings.append(f"{len(extra)} storage record(s) not used by the pickle: {extra[:5]}")
    return _Checkpoint("zip", root, context, regions, big_endian, unverified)


_ASCII_LOWER: Final = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _fold(name: str) -> str:
    """Case folding as miniz does it when PyTorch looks a record up: ASCII letters only."""
    return name.translate(_ASCII_LOWER)


def _region(source: _Source, info: zipfile.ZipInfo) -> _Region:
    label = _quote(info.filename)
    if info.flag_bits & 0x1:
        raise ConvertError(f"{source.path}: record {label} is encrypted")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise ConvertError(f"{source.path}: record {label} uses unsupported compression")
    if info.header_offset + _ZIP_LOCAL_HEADER.size > source.size:
        raise ConvertError(f"{source.path}: truncated zip (record {label})")
    fields = _ZIP_LOCAL_HEADER.unpack(source.read(info.header_offset, _ZIP_LOCAL_HEADER.size))
    if fields[0] != _ZIP_LOCAL_MAGIC:
        raise ConvertError(f"{source.path}: bad local header for record {label}")
    # Like miniz: the data follows the local header's own name and extra field.
    start = info.header_offset + _ZIP_LOCAL_HEADER.size + fields[-2] + fields[-1]
    if start + info.compress_size > source.size:
        raise ConvertError(f"{source.path}: truncated zip (record {label})")
    if info.compress_type == zipfile.ZIP_STORED:
        if info.compress_size != info.file_size:
            raise ConvertError(f"{source.path}: inconsistent sizes for stored record {label}")
        return _Region(label, start, info.file_size, None, info.CRC)
    # The declared size is all that bounds the buffers sized from it, so it must be plausible
    # for the compressed bytes that are really there.
    if info.file_size > max(_RATIO_FLOOR, _MAX_RATIO * info.compress_size):
        raise ConvertError(
            f"{source.path}: record {label} declares {info.file_size} bytes from "
            f"{info.compress_size} compressed bytes, a ratio over {_MAX_RATIO}:1 "
            "(a zip bomb or a corrupt size)",
            hint="re-save the checkpoint with torch.save, which stores records uncompressed",
        )
    return _Region(label, start, info.file_size, info.compress_size, info.CRC)


def _read_small(source: _Source, info: zipfile.ZipInfo, limit: int, warnings: list[str]) -> bytes:
    region = _region(source, info)
    if region.length > limit:
        raise ConvertError(f"{source.path}: record {region.label} is larger than {limit} bytes")
    data = b"".join(bytes(chunk) for chunk in source.chunks(region, 0, region.length))
    _note_crc(region, zlib.crc32(data), warnings)
    return data


def _note_crc(region: _Region, computed: int, warnings: list[str]) -> None:
    if region.crc is not None and computed != region.crc:
        warnings.append(
            f"CRC-32 mismatch in zip record {region.label} (archive says {region.crc:08x}, "
            f"data is {computed:08x}); torch.load ignores CRCs and returns these same bytes, "
            "but the file is corrupt or was modified after it was written"
        )


# --------------------------------------------------------------------------------------------
# From the unpickled object to named tensors


@dataclass(slots=True)
class _Selection:
    tensors: list[tuple[str, _Tensor]] = field(default_factory=list)
    scalars: dict[str, str] = field(default_factory=dict)
    # Containers already searched for tensors. The pickle may reference one object from many
    # places; searching each only once keeps the work linear in the size of the pickle.
    searched: set[int] = field(default_factory=set)


_CHECKPOINT_KEYS: Final = ("state_dict", "model")


def _select(root: object, warnings: list[str]) -> _Selection:
    if not isinstance(root, dict):
        if isinstance(root, _Tensor | _Opaque):
            kind = "a tensor" if isinstance(root, _Tensor) else f"a {root.what}"
        else:
            kind = f"a {type(root).__name__}"
        raise ConvertError(
            f"the checkpoint holds {kind}, not a dict of named tensors",
            hint="save a state_dict: torch.save(model.state_dict(), path)",
        )
    weights: dict[Any, Any] = root
    extras: dict[Any, Any] = {}
    selection = _Selection()
    if not any(isinstance(v, _Tensor) for v in root.values()):
        for key in _CHECKPOINT_KEYS:
            candidate = root.get(key)
            if isinstance(candidate, dict) and _count_tensors(candidate, _Selection()):
                weights = candidate
                extras = {k: v for k, v in root.items() if k != key}
                break
    _flatten(weights, selection, warnings)
    if not selection.tensors:
        raise ConvertError("the checkpoint contains no tensors", hint=_HINT_RESAVE)
    for key, value in extras.items():
        if not isinstance(key, str | int):
            warnings.append(f"checkpoint entry with a {type(key).__name__} key was not converted")
            continue
        name = _key(key, "")
        if _scalar(value) is not None:
            _add_scalar(selection, name, value, warnings)
        else:
            count = _count_tensors(value, selection)
            what = f" holding {count} tensor(s)" if count else ""
            warnings.append(f"checkpoint entry {_quote(name)}{what} was not converted")
    return selection


def _flatten(tree: dict[Any, Any], selection: _Selection, warnings: list[str]) -> None:
    seen: set[str] = set()
    # Iterative, so hostile nesting cannot recurse. A dict reached twice (a cycle, or one dict
    # under two keys) is refused: state dicts never share dicts, and a pickle that does could
    # name 2**64 tensors in a few hundred bytes.
    stack: list[tuple[str, Iterator[tuple[Any, Any]]]] = [("", iter(tree.items()))]
    walked = {id(tree)}
    while stack:
        prefix, items = stack[-1]
        item = next(items, None)
        if item is None:
            stack.pop()
            continue
        name = _key(item[0], prefix)
        value = item[1]
        if isinstance(value, dict):
            if id(value) in walked:
                raise ConvertError(
                    f"the dict at {_quote(name)} appears more than once in the checkpoint "
                    "(or contains itself)"
                )
            walked.add(id(value))
            stack.append((f"{name}.", iter(value.items())))
            continue
        if name in seen:
            raise ConvertError(f"two entries flatten to the same tensor name {_quote(name)}")
        seen.add(name)
        if isinstance(value, _Tensor):
            selection.tensors.append((name, value))
        elif _scalar(value) is not None:
            _add_scalar(selection, name, value, warnings)
        elif _count_tensors(value, selection):
            raise ConvertError(
                f"tensors inside a {type(value).__name__} at {_quote(name)} have no names",
                hint="only dicts of tensors (nested dicts are flattened with '.') are converted",
            )
        else:
            warnings.append(
                f"non-tensor value at {_quote(name)} ({type(value).__name__}) was dropped"
            )


def _key(key: object, prefix: str) -> str:
    if type(key) is int and -(2**63) <= key < 2**63:
        key = str(key)
    if not isinstance(key, str):
        raise ConvertError(f"unsupported key type {type(key).__name__} under {_quote(prefix)}")
    name = prefix + key
    _require_utf8(name, f"key {_quote(name)}")
    if name == "__metadata__":
        raise ConvertError("a tensor named '__metadata__' cannot be stored in safetensors")
    return name


def _scalar(value: object) -> str | None:
    if isinstance(value, bool | str) or (isinstance(value, int) and -(2**63) <= value < 2**63):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    return None


def _add_scalar(selection: _Selection, name: str, value: object, warnings: list[str]) -> None:
    text = _scalar(value)
    if text is None:
        return
    if len(text) > _MAX_METADATA_VALUE:
        warnings.append(f"value at {_quote(name)} is too long for metadata and was dropped")
        return
    # Refused like a name that is not UTF-8: the header is UTF-8 JSON, and dropping the value
    # or rewriting its lone surrogates would change the checkpoint without a word on the CLI.
    _require_utf8(text, f"value at {_quote(name)}")
    selection.scalars[name] = text


def _require_utf8(text: str, what: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ConvertError(
            f"{what} is not valid UTF-8 (it holds a lone surrogate); "
            "safetensors metadata must be UTF-8",
            hint="replace the value with valid text before saving the checkpoint",
        ) from None


def _count_tensors(value: object, selection: _Selection) -> int:
    """Tensors inside `value` that no earlier call has counted."""
    count = 0
    pending = [value]
    seen = selection.searched
    while pending:
        item = pending.pop()
        if isinstance(item, _Tensor):
            count += 1
        elif isinstance(item, dict | list | tuple | _Opaque) and id(item) not in seen:
            seen.add(id(item))
            if isinstance(item, dict):
                pending.extend(item.values())
            else:
                pending.extend(item.items if isinstance(item, _Opaque) else item)
    return count


# --------------------------------------------------------------------------------------------
# Planning the output


@dataclass(frozen=True, slots=True)
class _Planned:
    name: str
    tensor: _Tensor
    begin: int
    end: int


@dataclass(slots=True)
class _Plan:
    entries: list[_Planned]
    header: bytes
    shared: tuple[SharedGroup, ...]
    metadata: dict[str, str]
    data_bytes: int


def _plan(
    selection: _Selection,
    user_metadata: Mapping[str, str] | None,
    max_bytes: int,
    source_size: int,
    warnings: list[str],
) -> _Plan:
    # Same view of the same storage => one tensor, like safetensors' _remove_duplicate_names:
    # keep the first name in sorted order, drop the others and record them in the metadata.
    groups: dict[tuple[object, ...], list[tuple[str, _Tensor]]] = {}
    keep: list[tuple[str, _Tensor]] = []
    for name, tensor in selection.tensors:
        if tensor.numel == 0:
            keep.append((name, tensor))  # safetensors never treats empty tensors as shared
        else:
            groups.setdefault(tensor.view_key(), []).append((name, tensor))
    shared: list[SharedGroup] = []
    aliases: dict[str, str] = {}
    for members in groups.values():
        names = sorted(name for name, _ in members)
        keep.append((names[0], members[0][1]))
        if len(names) > 1:
            shared.append(SharedGroup(names[0], tuple(names[1:])))
            aliases.update(dict.fromkeys(names[1:], names[0]))
    _note_overlaps(keep, warnings)

    metadata: dict[str, str] = dict(selection.scalars)
    metadata.update(aliases)
    metadata["format"] = "pt"
    if user_metadata:
        metadata.update(user_metadata)  # the caller's values win, as in save_model

    keep.sort(key=lambda item: (-item[1].dtype.rank, item[0]))
    entries: list[_Planned] = []
    offset = 0
    for name, tensor in keep:
        entries.append(_Planned(name, tensor, offset, offset + tensor.nbytes))
        offset += tensor.nbytes
    if offset > max_bytes:
        raise ConvertError(
            f"the tensors total {offset} bytes, over the limit of {max_bytes}",
            hint="raise max_bytes if this checkpoint is expected to be that large",
        )
    if offset > max(_RATIO_FLOOR, _MAX_RATIO * source_size):
        # Only broadcast (stride 0) or overlapping views, or extreme deflate ratios, get here:
        # every other tensor is at most the bytes it was read from.
        raise ConvertError(
            f"the tensors total {offset} bytes from a {source_size}-byte file, over "
            f"{_MAX_RATIO} times its size (broadcast views are written out in full)",
            hint="save .contiguous() copies of expanded tensors if they are really meant",
        )
    header: dict[str, object] = {"__metadata__": dict(sorted(metadata.items()))}
    for entry in entries:
        header[entry.name] = {
            "dtype": entry.tensor.dtype.code,
            "shape": _header_shape(entry),
            "data_offsets": [entry.begin, entry.end],
        }
    text = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    if len(text) > _MAX_HEADER_BYTES:
        raise ConvertError(f"the safetensors header would be {len(text)} bytes, over the limit")
    return _Plan(entries, text, tuple(sorted(shared, key=lambda g: g.kept)), metadata, offset)


def _header_shape(entry: _Planned) -> list[int]:
    shape = list(entry.tensor.shape)
    if entry.tensor.dtype.code == "F4":
        # Two 4-bit values per byte: safetensors counts values, torch counts bytes.
        if not shape:
            raise ConvertError(f"cannot convert 0-d float4_e2m1fn_x2 tensor {_quote(entry.name)}")
        shape[-1] *= 2
    return shape


def _note_overlaps(kept: list[tuple[str, _Tensor]], warnings: list[str]) -> None:
    by_root: dict[str, list[tuple[int, int, str]]] = {}
    for name, tensor in kept:
        if tensor.numel:
            by_root.setdefault(tensor.storage.root, []).append(
                (tensor.start, tensor.start + tensor.span, name)
            )
    for areas in by_root.values():
        areas.sort()
        reach, holder = areas[0][1], areas[0][2]
        for begin, stop, name in areas[1:]:
            if begin < reach:
                warnings.append(
                    f"tensors {_quote(holder)} and {_quote(name)} are different views of "
                    "overlapping bytes; each was written as its own copy"
                )
            if stop > reach:
                reach, holder = stop, name


# --------------------------------------------------------------------------------------------
# Writing


@dataclass(slots=True)
class _Copy:
    """Source bytes [start, end) of the file go to `target` in the output."""

    start: int
    end: int
    target: int


@dataclass(slots=True)
class _Check:
    """A stored zip record whose CRC-32 the sweep computes."""

    region: _Region
    crc: int = 0

    @property
    def start(self) -> int:
        return self.region.start

    @property
    def end(self) -> int:
        return self.region.start + self.region.length


class _Hasher:
    """SHA-256 of the source and CRC-32 of its stored zip records, computed by a helper thread
    on the chunks the sweep reads.

    Buffers circulate between the sweep and the helper, so checking overlaps with copying and
    at most `_BUFFERS` chunks are in memory.
    """

    def __init__(self, checks: list[_Check]) -> None:
        self._digest = hashlib.sha256()
        self._checks = sorted(checks, key=lambda c: c.start)
        self._todo: queue.SimpleQueue[tuple[bytearray, int, int] | None] = queue.SimpleQueue()
        self._free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
        for _ in range(_BUFFERS):
            self._free.put(bytearray(_CHUNK))
        self._thread = threading.Thread(target=self._run, name="secmlops-sha256", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        pending = iter(self._checks)
        upcoming = next(pending, None)
        active: list[_Check] = []
        while (item := self._todo.get()) is not None:
            buffer, position, length = item
            view = memoryview(buffer)[:length]
            self._digest.update(view)
            stop = position + length
            while upcoming is not None and upcoming.start < stop:
                active.append(upcoming)
                upcoming = next(pending, None)
            for check in active:
                low, high = max(check.start, position), min(check.end, stop)
                if low < high:
                    check.crc = zlib.crc32(view[low - position : high - position], check.crc)
            active = [c for c in active if c.end > stop]
            view.release()
            self._free.put(buffer)

    def buffer(self) -> bytearray:
        return self._free.get()

    def submit(self, buffer: bytearray, position: int, length: int) -> None:
        self._todo.put((buffer, position, length))

    def close(self) -> str:
        """Wait for the helper; the SHA-256 of everything submitted (CRCs are in the checks)."""
        if self._thread.is_alive():
            self._todo.put(None)
            self._thread.join()
        return self._digest.hexdigest()


class _Writer:
    """Writes the planned file.

    One sequential sweep over the whole source does the bulk of the work: every chunk is hashed
    (the source's SHA-256), CRC-checked for the zip records it overlaps, and the bytes of
    contiguous tensors in it are written at their final place in the output. The source is
    read once, in order, whatever order the tensors have in the output. Tensors the sweep
    cannot place (strided views, deflated records, big-endian data) are copied afterwards.
    """

    def __init__(
        self,
        source: _Source,
        checkpoint: _Checkpoint,
        plan: _Plan,
        progress: Callable[[int, int], None] | None,
        warnings: list[str],
    ) -> None:
        self.source = source
        self.checkpoint = checkpoint
        self.plan = plan
        self.progress = progress
        self.warnings = warnings
        self.done = 0
        self.sha256 = ""

    def write(self, out: io.FileIO) -> int:
        header = struct.pack("<Q", len(self.plan.header)) + self.plan.header
        total = len(header) + self.plan.data_bytes
        _write_at(out, 0, header)
        out.truncate(total)
        self._report()
        copies: list[_Copy] = []
        later: list[_Planned] = []
        for entry in self.plan.entries:
            tensor = entry.tensor
            if tensor.numel == 0:
                continue
            region = self.checkpoint.regions[tensor.storage.root]
            swap = self.checkpoint.big_endian and tensor.dtype.swap_unit > 1
            if tensor.contiguous and region.compressed is None and not swap:
                begin = region.start + tensor.start
                copies.append(_Copy(begin, begin + tensor.nbytes, len(header) + entry.begin))
            else:
                later.append(entry)
        stored = {r.label: r for r in self.checkpoint.unverified if r.compressed is None}
        checks = [_Check(region) for region in stored.values()]
        self.sha256 = self._sweep(out, copies, checks)
        for check in checks:
            _note_crc(check.region, check.crc, self.warnings)
        for entry in later:
            if entry.tensor.contiguous:
                self._copy_contiguous(out, entry, len(header))
            else:
                self._copy_strided(out, entry, len(header))
        self._verify_deflated()
        return total

    def _sweep(self, out: io.FileIO, copies: list[_Copy], checks: list[_Check]) -> str:
        copies.sort(key=lambda c: c.start)
        hasher = _Hasher(checks)
        try:
            upcoming = 0
            active: list[_Copy] = []
            position = 0
            while position < self.source.size:
                step = min(_CHUNK, self.source.size - position)
                buffer = hasher.buffer()
                view = memoryview(buffer)[:step]
                self.source.read_into(position, view)
                stop = position + step
                while upcoming < len(copies) and copies[upcoming].start < stop:
                    active.append(copies[upcoming])
                    upcoming += 1
                for copy in active:
                    low, high = max(copy.start, position), min(copy.end, stop)
                    if low < high:
                        piece = view[low - position : high - position]
                        _write_at(out, copy.target + low - copy.start, piece)
                        self.done += high - low
                view.release()
                hasher.submit(buffer, position, step)
                active = [c for c in active if c.end > stop]
                position = stop
                self._report()
        finally:
            digest = hasher.close()
        return digest

    def _copy_contiguous(self, out: io.FileIO, entry: _Planned, base: int) -> None:
        tensor = entry.tensor
        region = self.checkpoint.regions[tensor.storage.root]
        swap = self.checkpoint.big_endian and tensor.dtype.swap_unit > 1
        target = base + entry.begin
        chunks = self.source.chunks(region, tensor.start, tensor.nbytes)
        if swap:
            chunks = _little_endian_stream(chunks, tensor.dtype.swap_unit)
        for chunk in chunks:
            _write_at(out, target, chunk)
            target += len(chunk)
            self.done += len(chunk)
            self._report()

    def _verify_deflated(self) -> None:
        for region in {r.label: r for r in self.checkpoint.unverified}.values():
            if region.compressed is None:
                continue  # checked by the sweep
            crc = 0
            for chunk in self.source.chunks(region, 0, region.length):
                crc = zlib.crc32(chunk, crc)
            _note_crc(region, crc, self.warnings)

    def _copy_strided(self, out: io.FileIO, entry: _Planned, base: int) -> None:
        tensor = entry.tensor
        region = self.checkpoint.regions[tensor.storage.root]
        # Size-1 dimensions never move the read position; dropping them keeps numpy's
        # dimension limit out of the way of shapes like (1,) * 100.
        dims = [(n, s) for n, s in zip(tensor.shape, tensor.stride, strict=True) if n != 1]
        if len(dims) > _MAX_NUMPY_DIMS:
            raise ConvertError(
                f"tensor {_quote(entry.name)} is a non-contiguous view with {len(dims)} "
                f"dimensions larger than 1; at most {_MAX_NUMPY_DIMS} are supported"
            )
        # Grown as data arrives, never sized up front: a record that ends early (or lies
        # about its size) fails after allocating only what it really held.
        span = bytearray()
        try:
            for chunk in self.source.chunks(region, tensor.start, tensor.span):
                span += chunk
        except MemoryError:
            raise ConvertError(
                f"not enough memory to read non-contiguous tensor {_quote(entry.name)} "
                f"({tensor.span} bytes)"
            ) from None
        item = tensor.dtype.itemsize
        strided = np.lib.stride_tricks.as_strided(
            np.frombuffer(span, dtype=np.dtype((np.void, item))),
            shape=tuple(n for n, _ in dims),
            strides=tuple(s * item for _, s in dims),
            writeable=False,
        )
        swap = self.checkpoint.big_endian and tensor.dtype.swap_unit > 1
        target = base + entry.begin
        for piece in _c_order_pieces(strided, item):
            data = np.ascontiguousarray(piece).data.cast("B")
            _write_at(out, target, _little_endian(data, tensor.dtype) if swap else data)
            target += len(data)
            self.done += len(data)
            self._report()

    def _report(self) -> None:
        if self.progress is not None:
            self.progress(self.done, self.plan.data_bytes)


def _c_order_pieces(array: np.ndarray[Any, Any], item: int) -> Iterator[np.ndarray[Any, Any]]:
    """Split `array` into C-order pieces of about `_CHUNK` bytes, so a broadcast or transposed
    view is materialised a piece at a time rather than all at once."""
    shape = array.shape
    axis = 0
    inner = math.prod(shape) * item
    while axis < len(shape) and inner > _CHUNK:
        inner //= shape[axis]
        axis += 1
    # Every index of the axes before `axis - 1` times blocks of rows along `axis - 1`
    # (the whole array when it is small).
    if axis == 0:
        yield array
        return
    lead = axis - 1
    rows = max(1, _CHUNK // max(inner, 1))
    for index in np.ndindex(*shape[:lead]):
        for row in range(0, shape[lead], rows):
            yield array[(*index, slice(row, row + rows))]


def _write_at(out: io.FileIO, offset: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        if _PWRITE is not None:
            written = _PWRITE(out.fileno(), view, offset)
        else:  # pragma: no cover - platforms without pwrite (Windows)
            out.seek(offset)
            written = out.write(view) or 0
        view = view[written:]
        offset += written


_PWRITE: Final = getattr(os, "pwrite", None)


def _little_endian(chunk: memoryview, dtype: _DType) -> memoryview:
    unit = dtype.swap_unit
    values = np.frombuffer(chunk, dtype=np.dtype(f"u{unit}"))
    return values.byteswap().data.cast("B")


def _little_endian_stream(chunks: Iterator[memoryview], unit: int) -> Iterator[memoryview]:
    """Byte-swap a stream of `unit`-byte values whose chunks may end anywhere (inflated blocks
    do): the bytes of a value split between chunks are carried over and swapped whole."""
    carry = bytearray()
    for chunk in chunks:
        if carry:
            take = min(unit - len(carry), len(chunk))
            carry += chunk[:take]
            chunk = chunk[take:]
            if len(carry) < unit:
                continue
            yield memoryview(bytes(carry[::-1]))
            carry = bytearray()
        whole = len(chunk) - len(chunk) % unit
        if whole:
            values = np.frombuffer(chunk[:whole], dtype=np.dtype(f"u{unit}"))
            yield values.byteswap().data.cast("B")
        carry += chunk[whole:]
    if carry:  # cannot happen: tensors hold whole elements, and units divide element sizes
        raise ConvertError(f"{len(carry)} bytes left over after byte-swapping a tensor")


# --------------------------------------------------------------------------------------------
# The scanner gate


def _load_scanner() -> Callable[[Sequence[Path]], Any] | None:
    """`secmlops.scan.models.scan_paths`, or None while the scanner is not part of the tree."""
    try:
        module = importlib.import_module("secmlops.scan.models")
    except ModuleNotFoundError as exc:
        if exc.name in ("secmlops.scan", "secmlops.scan.models"):
            return None
        raise
    scan = getattr(module, "scan_paths", None)
    return scan if callable(scan) else None


def _require_clean_scan(source: _Source, warnings: list[str]) -> None:
    scan = _load_scanner()
    if scan is None:
        warnings.append("the model scanner is not available; the pre-conversion scan was skipped")
        return
    report = scan([source.path])
    flagged = [f for f in report.findings if f.severity >= Severity.HIGH]
    lines = [
        f"{f.severity.label} {f.rule_id} at {f.location.display() or source.path}: {f.message}"
        for f in flagged
    ]
    lines += [
        f"scan error at {e.location.display() or source.path}: {e.message}" for e in report.errors
    ]
    if lines:
        shown = "; ".join(lines[:10]) + (f"; and {len(lines) - 10} more" if len(lines) > 10 else "")
        raise ConvertError(
            f"{source.path}: refusing to convert a file the scanner flagged: {shown}",
            hint="inspect the findings with `secmlops scan`; flagged files are never converted",
        )
    try:
        now = os.stat(source.path)
    except OSError:
        now = None
    if now is None or (now.st_dev, now.st_ino) != source.identity()[:2]:
        raise ConvertError(f"{source.path}: the file was replaced while it was being scanned")


# --------------------------------------------------------------------------------------------
# The entry point


def convert_to_safetensors(
    source: Path,
    out: Path,
    *,
    max_bytes: int = 64 * 2**30,
    metadata: Mapping[str, str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ConversionResult:
    """Convert a PyTorch checkpoint (zip or legacy format) to a safetensors file at `out`.

    The pickle is never executed; only a plain state_dict (or a checkpoint dict with a
    `state_dict` / `model` entry holding one) is converted. `max_bytes` caps every storage and
    the total tensor bytes. `metadata` is merged into the header's `__metadata__` (its values
    win). `progress(done, total)` is called with tensor bytes written so far.
    Raises `ConvertError` for anything that cannot be converted safely; `out` is then untouched.
    """
    started = time.perf_counter()
    source, out = Path(source), Path(out)
    if type(max_bytes) is not int or max_bytes <= 0:
        raise ConvertError("max_bytes must be a positive integer")
    user_metadata = _check_metadata(metadata)
    _check_destination(source, out)
    warnings: list[str] = []
    src = _Source(source)
    temp: Path | None = None
    try:
        before = src.identity()
        _require_clean_scan(src, warnings)
        checkpoint = _read_checkpoint(src, max_bytes, warnings)
        selection = _select(checkpoint.root, warnings)
        if checkpoint.context.dropped_state:
            warnings.append(
                f"Python attributes on {checkpoint.context.dropped_state} tensor(s) or "
                "parameter(s) were dropped"
            )
        plan = _plan(selection, user_metadata, max_bytes, src.size, warnings)
        writer = _Writer(src, checkpoint, plan, progress, warnings)
        temp, written = _write_temporary(out, writer)
        if src.identity() != before:
            raise ConvertError(f"{source}: the file changed while it was being converted")
        os.replace(temp, out)
        temp = None
    finally:
        src.close()
        if temp is not None:
            _unlink_quietly(temp)
    return ConversionResult(
        source=source,
        output=out,
        source_format=checkpoint.format,
        source_sha256=writer.sha256,
        tensor_names=tuple(sorted(entry.name for entry in plan.entries)),
        shared=plan.shared,
        metadata=MappingProxyType(dict(sorted(plan.metadata.items()))),
        bytes_written=written,
        tensor_bytes=plan.data_bytes,
        seconds=time.perf_counter() - started,
        warnings=tuple(warnings),
    )


def _check_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    if metadata is None:
        return {}
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise ConvertError("metadata keys and values must be strings")
    for key, value in metadata.items():
        _require_utf8(key, f"metadata key {_quote(key)}")
        _require_utf8(value, f"metadata value of {_quote(key)}")
    return dict(metadata)


def _check_destination(source: Path, out: Path) -> None:
    if out.exists():
        if out.is_dir():
            raise ConvertError(f"{out}: is a directory")
        try:
            same = os.path.samefile(out, source)
        except OSError:
            same = False
        if same:
            raise ConvertError(
                f"{out}: is the source file; the source is never overwritten",
                hint="choose another output path",
            )
    if out.absolute() == source.absolute():
        raise ConvertError(f"{out}: is the source file; the source is never overwritten")
    if not out.parent.is_dir():
        raise ConvertError(f"{out.parent}: output folder does not exist")


def _write_temporary(out: Path, writer: _Writer) -> tuple[Path, int]:
    temp = out.with_name(f".{out.name}.{secrets.token_hex(6)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | _O_BINARY
    try:
        fd = os.open(temp, flags, 0o666)
    except OSError as exc:
        raise ConvertError(f"{out.parent}: cannot create the output: {exc.strerror}") from None
    try:
        with io.FileIO(fd, "wb", closefd=True) as handle:
            written = writer.write(handle)
    except OSError as exc:
        _unlink_quietly(temp)
        raise ConvertError(f"{out}: cannot write the output: {exc.strerror}") from None
    except BaseException:
        _unlink_quietly(temp)
        raise
    return temp, written


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError:  # pragma: no cover - nothing better to do while already failing
        pass
