"""Collect the globals that benign ML pickles reference, and how each one is used.

Nothing here unpickles anything. Benign files are *written* the ordinary way
(``torch.save``, ``joblib.dump``, ``DataFrame.to_pickle``, ``pickle.dumps``) and then
walked opcode by opcode with :func:`pickletools.genops` and a small stack model
that knows, for every global, whether the unpickler would

* ``ref``  -- only push it as a value (stored as data, never called),
* ``new``  -- instantiate it as data (``cls.__new__`` + ``BUILD``), or
* ``call`` -- call it with pickle-controlled arguments.

The model is deliberately a little *stricter* than the scanner's: higher-order
helpers that call or instantiate one of their arguments (``copyreg._reconstructor``'s
base class, torch's ``_rebuild_from_type_v2``, numpy's bit-generator constructors,
...) upgrade that argument's use (see :data:`ARG_ROLES`), and ``BUILD``/``SETITEM``/
``APPEND`` applied to a global itself (mutating a module-level object) counts as
``call``. An allowlist that covers what this model reports therefore also covers
the scanner's view.

Used by ``tests/scan/models/test_allowlist_data.py`` (``quick=True``: a small,
representative corpus) and by ``benchmarks/tools/collect_globals.py`` (the full
corpus, protocols 0-5, every compressor).
"""

from __future__ import annotations

import _compat_pickle
import bz2
import gzip
import io
import lzma
import math
import pickle
import pickletools
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

USES = ("ref", "new", "call")
RANK = {use: rank for rank, use in enumerate(USES)}

#: Module aliases the scanner canonicalises (after the protocol-2 ``_compat_pickle`` map).
ALIASES = {
    "posix": "os",
    "nt": "os",
    "_operator": "operator",
    "_io": "io",
    "__builtin__": "builtins",
    "_codecs": "codecs",
    "_functools": "functools",
    "_collections": "collections",
    "copy_reg": "copyreg",
}

#: Arguments of helper callables that the helper itself calls or instantiates.
#: Positions refer to the REDUCE argument tuple. The scanner is told about these.
ARG_ROLES: dict[str, dict[int, str]] = {
    "copyreg.__newobj__": {0: "new"},
    "copyreg.__newobj_ex__": {0: "new"},
    # _reconstructor(cls, base, state): base.__new__(cls, state); base.__init__(obj, state)
    "copyreg._reconstructor": {0: "new", 1: "call"},
    # _reconstruct(subtype, shape, dtype) allocates an instance of `subtype`
    "numpy._core.multiarray._reconstruct": {0: "new"},
    "numpy.core.multiarray._reconstruct": {0: "new"},
    # _rebuild_from_type_v2(func, new_type, args, state): func(*args).as_subclass(new_type)
    "torch._tensor._rebuild_from_type_v2": {0: "call", 1: "new"},
    "torch._tensor._rebuild_from_type": {0: "call", 1: "new"},
    "torch._utils._rebuild_wrapper_subclass": {0: "new"},
    # __bit_generator_ctor(cls_or_name) calls cls(); the *_ctor(name, ctor) pair calls ctor(name)
    "numpy.random._pickle.__bit_generator_ctor": {0: "call"},
    "numpy.random._pickle.__generator_ctor": {1: "call"},
    "numpy.random._pickle.__randomstate_ctor": {1: "call"},
    # sklearn's binary trees: newObj(cls) -> cls.__new__(cls)
    "sklearn.neighbors._kd_tree.newObj": {0: "new"},
    "sklearn.neighbors._ball_tree.newObj": {0: "new"},
    "sklearn.neighbors._binary_tree.newObj": {0: "new"},
    # numpy.ma: _mareconstruct(subtype, baseclass, baseshape, basetype)
    "numpy.ma.core._mareconstruct": {0: "new", 1: "new"},
    # Cython auto-pickle helpers: __pyx_unpickle_X(cls, checksum, state) -> X.__new__(cls)
    "numpy.random.bit_generator.__pyx_unpickle_SeedSequence": {0: "new"},
    "pandas._libs.arrays.__pyx_unpickle_NDArrayBacked": {0: "new"},
    "pandas._libs.interval.__pyx_unpickle_IntervalMixin": {0: "new"},
    "sklearn.metrics._dist_metrics.newObj": {0: "new"},
    # pandas: _new_Index(cls, d) -> cls.__new__(cls, **d)
    "pandas.core.indexes.base._new_Index": {0: "new"},
    # pandas: _new_DatetimeIndex(cls, d) -> cls._simple_new / cls.__new__(cls, **d)
    "pandas.core.indexes.datetimes._new_DatetimeIndex": {0: "new"},
    "pandas.core.indexes.period._new_PeriodIndex": {0: "new"},
}


def canonical_name(module: str, name: str, proto: int) -> str:
    """The fully qualified canonical dotted name of a pickled global."""
    if proto < 3:
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
    head, dot, tail = module.partition(".")
    if head in ALIASES:
        module = ALIASES[head] + dot + tail
    return f"{module}.{name}"


@dataclass
class Observed:
    """One global seen in the corpus: the strongest use and where it was seen."""

    use: str = "ref"
    origins: set[str] = field(default_factory=set)


Uses = dict[str, Observed]


class WalkError(ValueError):
    """The opcode stream is not a pickle the model understands."""


# ----------------------------------------------------------------------------------------
# The stack model


class _Mark:
    __slots__ = ()


_MARK = _Mark()


class Glob:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Glob({self.name})"


class Obj:
    """The (unevaluated) result of REDUCE / NEWOBJ / OBJ / INST / persistent load."""

    __slots__ = ("args", "func", "how", "state")

    def __init__(self, func: Any, args: Any, how: str) -> None:
        self.func = func
        self.args = args
        self.how = how
        self.state: Any = None

    def cls_name(self) -> str | None:
        return self.func.name if isinstance(self.func, Glob) else None


class Opaque:
    __slots__ = ()


class _SetVal(list):  # a marker type for sets being built
    pass


_STRINGS = {
    "UNICODE", "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8",
    "STRING", "BINSTRING", "SHORT_BINSTRING",
}  # fmt: skip
_LITERALS = _STRINGS | {
    "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "FLOAT", "BINFLOAT",
    "BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8",
}  # fmt: skip

JOBLIB_WRAPPER = "joblib.numpy_pickle.NumpyArrayWrapper"


class _Walker:
    def __init__(self, uses: Uses, origin: str, joblib_stream: bool) -> None:
        self.uses = uses
        self.origin = origin
        self.joblib = joblib_stream
        self.proto = 0
        self.stack: list[Any] = []
        self.memo: dict[int, Any] = {}
        self.anomalies: list[str] = []

    # -- bookkeeping ---------------------------------------------------------------------
    def record(self, value: Any, use: str) -> None:
        if not isinstance(value, Glob):
            return
        seen = self.uses.setdefault(value.name, Observed())
        if RANK[use] > RANK[seen.use]:
            seen.use = use
        seen.origins.add(self.origin)

    def resolved(self, glob: Glob) -> Glob:
        if glob.name != "builtins.getattr":  # recorded when it is called without being folded
            self.record(glob, "ref")
        return glob

    def pop(self) -> Any:
        if not self.stack:
            raise WalkError("stack underflow")
        value = self.stack.pop()
        if value is _MARK:
            raise WalkError("unexpected MARK")
        return value

    def pop_mark(self) -> list[Any]:
        items: list[Any] = []
        while True:
            if not self.stack:
                raise WalkError("MARK not found")
            value = self.stack.pop()
            if value is _MARK:
                items.reverse()
                return items
            items.append(value)

    def top(self) -> Any:
        if not self.stack or self.stack[-1] is _MARK:
            raise WalkError("stack underflow")
        return self.stack[-1]

    def mutate(self, target: Any) -> None:
        # BUILD / SETITEM(S) / APPEND(S) / ADDITEMS on a global mutate a module-level object
        if isinstance(target, Glob):
            self.record(target, "call")
            self.anomalies.append(f"mutation of global {target.name}")

    def call(self, func: Any, args: Any) -> Any:
        if (
            isinstance(func, Glob)
            and func.name == "builtins.getattr"
            and isinstance(args, tuple)
            and len(args) == 2
            and isinstance(args[0], Glob)
            and isinstance(args[1], str)
        ):
            # getattr(<global>, "<constant>") is attribute resolution, exactly like a dotted
            # GLOBAL: fold it into one dotted global (the scanner does the same).
            return self.resolved(Glob(f"{args[0].name}.{args[1]}"))
        if isinstance(func, Glob):
            self.record(func, "call")
            roles = ARG_ROLES.get(func.name, {})
            if isinstance(args, tuple):
                for pos, use in roles.items():
                    if pos < len(args):
                        self.record(args[pos], use)
        else:
            self.anomalies.append("call of a non-global callable")
        return Obj(func, args, "reduce")

    # -- the walk ------------------------------------------------------------------------
    def walk(self, stream: io.BytesIO) -> None:
        """Walk one pickle from the stream's position up to and including STOP."""
        for op, arg, _pos in pickletools.genops(stream):
            name = op.name
            if name in _LITERALS:
                self.stack.append(arg)
            elif name == "PROTO":
                self.proto = arg
            elif name in ("FRAME", "STOP", "READONLY_BUFFER"):
                pass
            elif name == "NONE":
                self.stack.append(None)
            elif name == "NEWTRUE":
                self.stack.append(True)
            elif name == "NEWFALSE":
                self.stack.append(False)
            elif name == "NEXT_BUFFER":
                self.stack.append(Opaque())
            elif name == "EMPTY_LIST":
                self.stack.append([])
            elif name == "APPEND":
                value = self.pop()
                target = self.top()
                self.mutate(target)
                if isinstance(target, list):
                    target.append(value)
            elif name == "APPENDS":
                items = self.pop_mark()
                target = self.top()
                self.mutate(target)
                if isinstance(target, list):
                    target.extend(items)
            elif name == "LIST":
                self.stack.append(self.pop_mark())
            elif name == "EMPTY_TUPLE":
                self.stack.append(())
            elif name == "TUPLE":
                self.stack.append(tuple(self.pop_mark()))
            elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
                n = int(name[-1])
                items = [self.pop() for _ in range(n)]
                self.stack.append(tuple(reversed(items)))
            elif name == "EMPTY_DICT":
                self.stack.append({})
            elif name == "DICT":
                items = self.pop_mark()
                self.stack.append(_pairs_to_dict(items))
            elif name == "SETITEM":
                value, key = self.pop(), self.pop()
                target = self.top()
                self.mutate(target)
                if isinstance(target, dict):
                    target.update(_pairs_to_dict([key, value]))
            elif name == "SETITEMS":
                items = self.pop_mark()
                target = self.top()
                self.mutate(target)
                if isinstance(target, dict):
                    target.update(_pairs_to_dict(items))
            elif name == "EMPTY_SET":
                self.stack.append(_SetVal())
            elif name == "ADDITEMS":
                items = self.pop_mark()
                target = self.top()
                self.mutate(target)
                if isinstance(target, list):
                    target.extend(items)
            elif name == "FROZENSET":
                self.stack.append(_SetVal(self.pop_mark()))
            elif name == "POP":
                if self.stack and self.stack[-1] is _MARK:
                    self.stack.pop()
                else:
                    self.pop()
            elif name == "DUP":
                self.stack.append(self.top())
            elif name == "MARK":
                self.stack.append(_MARK)
            elif name == "POP_MARK":
                self.pop_mark()
            elif name in ("GET", "BINGET", "LONG_BINGET"):
                if arg not in self.memo:
                    raise WalkError(f"memo key {arg} not found")
                self.stack.append(self.memo[arg])
            elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
                self.memo[arg] = self.top()
            elif name == "MEMOIZE":
                self.memo[len(self.memo)] = self.top()
            elif name == "GLOBAL":
                module, _, qualname = arg.partition(" ")
                self.stack.append(self.resolved(Glob(canonical_name(module, qualname, self.proto))))
            elif name == "STACK_GLOBAL":
                qualname, module = self.pop(), self.pop()
                if not (isinstance(module, str) and isinstance(qualname, str)):
                    raise WalkError("STACK_GLOBAL with computed operands")
                self.stack.append(self.resolved(Glob(canonical_name(module, qualname, self.proto))))
            elif name in ("EXT1", "EXT2", "EXT4"):
                raise WalkError("extension registry opcode")
            elif name == "REDUCE":
                args = self.pop()
                func = self.pop()
                self.stack.append(self.call(func, args))
            elif name == "BUILD":
                state = self.pop()
                target = self.top()
                self.mutate(target)
                if isinstance(target, Obj):
                    target.state = state
                    if self.joblib and target.cls_name() == JOBLIB_WRAPPER:
                        self._skip_joblib_array(stream, target)
            elif name == "INST":
                module, _, qualname = arg.partition(" ")
                glob = Glob(canonical_name(module, qualname, self.proto))
                args = tuple(self.pop_mark())
                self.record(glob, "call" if args else "new")
                self.stack.append(Obj(glob, args, "inst"))
            elif name == "OBJ":
                items = self.pop_mark()
                if not items:
                    raise WalkError("OBJ without a class")
                cls, args = items[0], tuple(items[1:])
                self.record(cls, "call" if args else "new")
                self.stack.append(Obj(cls, args, "obj"))
            elif name == "NEWOBJ":
                args = self.pop()
                cls = self.pop()
                self.record(cls, "new")
                self.stack.append(Obj(cls, args, "newobj"))
            elif name == "NEWOBJ_EX":
                _kwargs, args = self.pop(), self.pop()
                cls = self.pop()
                self.record(cls, "new")
                self.stack.append(Obj(cls, args, "newobj"))
            elif name == "PERSID":
                self.stack.append(Obj(None, arg, "persid"))
            elif name == "BINPERSID":
                self.stack.append(Obj(None, self.pop(), "persid"))
            else:  # pragma: no cover - every protocol 0-5 opcode is handled above
                raise WalkError(f"unhandled opcode {name}")

    # -- joblib: raw array bytes interleaved with the pickle -----------------------------
    def _skip_joblib_array(self, stream: io.BytesIO, wrapper: Obj) -> None:
        state = wrapper.state
        if not isinstance(state, dict):
            raise WalkError("NumpyArrayWrapper without a dict state")
        shape = state.get("shape")
        dtype = state.get("dtype")
        if not isinstance(shape, tuple) or not isinstance(dtype, Obj):
            raise WalkError("NumpyArrayWrapper with an unexpected shape or dtype")
        code = dtype.args[0] if isinstance(dtype.args, tuple) and dtype.args else None
        dstate = dtype.state if isinstance(dtype.state, tuple) else ()
        flags = dstate[7] if len(dstate) >= 8 and isinstance(dstate[7], int) else 0
        if (isinstance(code, str) and code.startswith("O")) or flags & 1:
            # dtype.hasobject: a nested, ordinary pickle stream follows (read by joblib with a
            # fresh pickle.Unpickler that borrows the outer find_class)
            _Walker(self.uses, self.origin + " (nested)", joblib_stream=False).walk(stream)
            return
        if len(dstate) >= 6 and isinstance(dstate[5], int) and dstate[5] > 0:
            itemsize = dstate[5]
        else:
            itemsize = _itemsize(code)
        if state.get("numpy_array_alignment_bytes") is not None:
            padding = stream.read(1)
            stream.seek(padding[0] if padding else 0, io.SEEK_CUR)
        count = math.prod(int(n) for n in shape)
        stream.seek(count * itemsize, io.SEEK_CUR)


def _itemsize(code: Any) -> int:
    import numpy as np

    if not isinstance(code, str):
        raise WalkError("dtype without a type code")
    return int(np.dtype(code).itemsize)


def _pairs_to_dict(items: list[Any]) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for i in range(0, len(items) - 1, 2):
        key = items[i]
        try:
            hash(key)
        except TypeError:
            key = Opaque()
        out[key] = items[i + 1]
    return out


# ----------------------------------------------------------------------------------------
# Containers: which bytes are pickles


def walk_pickles(data: bytes, uses: Uses, origin: str, *, count: int | None = None) -> int:
    """Walk consecutive pickles in `data` (all of them, or the first `count`).

    Returns how many were walked. A pickle that fails to parse raises WalkError.
    """
    stream = io.BytesIO(data)
    walked = 0
    while stream.tell() < len(data) and (count is None or walked < count):
        _Walker(uses, origin, joblib_stream=False).walk(stream)
        walked += 1
    return walked


_JOBLIB_MAGIC: list[tuple[bytes, Callable[[bytes], bytes]]] = [
    (b"\x1f\x8b", gzip.decompress),
    (b"BZh", bz2.decompress),
    (b"\xfd7zXZ", lzma.decompress),
    (b"\x5d\x00\x00", lzma.decompress),
    (b"ZF", lambda raw: zlib.decompress(raw[raw.index(b"x") :])),  # joblib < 0.10 header
    (b"x", zlib.decompress),
]


def walk_joblib(data: bytes, uses: Uses, origin: str) -> None:
    """Walk a ``joblib.dump`` file: maybe compressed, with raw array bytes inside the pickle."""
    for magic, decompress in _JOBLIB_MAGIC:
        if data.startswith(magic):
            data = decompress(data)
            break
    stream = io.BytesIO(data)
    walker = _Walker(uses, origin, joblib_stream=True)
    walker.walk(stream)
    if stream.tell() != len(data):
        raise WalkError(f"{origin}: {len(data) - stream.tell()} trailing bytes after joblib pickle")


def walk_torch(data: bytes, uses: Uses, origin: str) -> None:
    """Walk a ``torch.save`` file: a zip of ``*.pkl`` members, or the legacy 5-pickle stream."""
    if data[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = [m for m in archive.namelist() if m.endswith(".pkl")]
            if not members:
                raise WalkError(f"{origin}: no pickle in torch archive")
            for member in members:
                walk_pickles(archive.read(member), uses, f"{origin}!/{member}", count=1)
    else:
        # magic number, protocol version, sys_info, the object, the storage keys; then raw bytes
        walk_pickles(data, uses, origin, count=5)


def walk_npy(data: bytes, uses: Uses, origin: str) -> None:
    """Walk an ``.npy`` file whose payload is a pickle (object arrays)."""
    if not data.startswith(b"\x93NUMPY"):
        raise WalkError(f"{origin}: not an npy file")
    major = data[6]
    if major == 1:
        (hlen,) = struct.unpack("<H", data[8:10])
        start = 10 + hlen
    else:
        (hlen,) = struct.unpack("<I", data[8:12])
        start = 12 + hlen
    walk_pickles(data[start:], uses, origin, count=1)


WALKERS: dict[str, Callable[[bytes, Uses, str], Any]] = {
    "pickle": walk_pickles,
    "joblib": walk_joblib,
    "torch": walk_torch,
    "npy": walk_npy,
}


@dataclass
class Artifact:
    label: str
    kind: str  # a key of WALKERS
    data: bytes


# ----------------------------------------------------------------------------------------
# The benign corpus

ALL_PROTOCOLS = (0, 1, 2, 3, 4, 5)
QUICK_PROTOCOLS = (0, 2, 5)


def _pickles(label: str, obj: Any, protocols: tuple[int, ...]) -> Iterator[Artifact]:
    for proto in protocols:
        yield Artifact(f"{label} [pickle p{proto}]", "pickle", pickle.dumps(obj, protocol=proto))


def stdlib_values() -> dict[str, Any]:
    import collections
    import datetime as dt
    import decimal
    import enum
    import fractions
    import re
    import time
    import uuid

    tz = dt.timezone(dt.timedelta(hours=5, minutes=30), "IST")
    return {
        "datetime": dt.datetime(2024, 5, 17, 12, 30, 15, 123456, tzinfo=tz),
        "datetime-naive": dt.datetime(2024, 5, 17, 12, 30),
        "datetime-utc": dt.datetime(2024, 5, 17, tzinfo=dt.UTC),
        "date": dt.date(2024, 5, 17),
        "time": dt.time(12, 30, 15, tzinfo=dt.UTC),
        "timedelta": dt.timedelta(days=3, seconds=7),
        "timezone": tz,
        "decimal": decimal.Decimal("3.14159"),
        "fraction": fractions.Fraction(22, 7),
        "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "OrderedDict": collections.OrderedDict(a=1, b=2),
        "defaultdict": collections.defaultdict(list, {"x": [1]}),
        "deque": collections.deque([1, 2, 3], maxlen=5),
        "Counter": collections.Counter("abracadabra"),
        "ChainMap": collections.ChainMap({"a": 1}, {"b": 2}),
        "enum": [re.RegexFlag.IGNORECASE, uuid.SafeUUID.safe, enum.Enum, enum.Flag],
        "struct_time": time.gmtime(0),
        "complex": complex(1.5, -2.0),
        "bytearray": bytearray(b"abc"),
        "set": {1, 2, 3},
        "frozenset": frozenset({"a", "b"}),
        "slice": slice(1, 10, 2),
        "range": range(0, 100, 7),
        "builtins": [None, True, 1, 2.5, "s", b"b", (1,), [1], {"k": "v"}, NotImplemented,
                     Ellipsis, type(None), int, float, str],
    }  # fmt: skip


def stdlib_artifacts(protocols: tuple[int, ...]) -> Iterator[Artifact]:
    for label, value in stdlib_values().items():
        yield from _pickles(f"stdlib {label}", value, protocols)


def numpy_values() -> dict[str, Any]:
    import numpy as np

    structured = np.zeros(3, dtype=[("x", "<f4"), ("y", ">i8"), ("name", "U8"), ("sub", "2f8")])
    rng = np.random.default_rng(0)
    return {
        "float-array": np.arange(12, dtype=np.float64).reshape(3, 4),
        "fortran-array": np.asfortranarray(np.ones((3, 2), dtype=np.float32)),
        "dtypes": [np.zeros(2, dtype=t) for t in (
            "b1", "i1", "u1", "i2", "u2", "i4", "u4", "i8", "u8", "f2", "f4", "f8", "f16",
            "c8", "c16", "c32", "S5", "U5", "V4", ">f8", "<i4")],
        "datetime-arrays": [np.array(["2024-01-01", "NaT"], dtype="datetime64[ns]"),
                            np.array([1, 2], dtype="timedelta64[s]"),
                            np.array(["2024-01"], dtype="datetime64[M]")],
        "object-array": np.array([1, "a", None, (1, 2), {"k": 1}], dtype=object),
        "structured": structured,
        "record": np.rec.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")]),
        "masked": np.ma.masked_array([1.0, 2.0, 3.0], mask=[False, True, False]),
        "matrix": np.matrix([[1, 2], [3, 4]]),
        "scalars": [np.float64(1.5), np.int32(3), np.bool_(True), np.complex64(1j),
                    np.datetime64("2024-01-01"), np.timedelta64(5, "s"), np.str_("x"),
                    np.bytes_(b"y"), np.float16(0.5), np.longdouble(2.5)],
        "dtype-objects": [np.dtype("f8"), np.dtype(">i4"), structured.dtype,
                          np.dtype("datetime64[ns]"), np.dtype([("a", "O")])],
        "scalar-types": [np.float64, np.int64, np.bool_, np.ndarray],
        "ufuncs": [np.log1p, np.add, np.sqrt, np.exp],
        "generator": rng,
        "bit-generators": [np.random.PCG64(1), np.random.MT19937(2), np.random.Philox(3),
                           np.random.SFC64(4), np.random.PCG64DXSM(5)],
        "random-state": np.random.RandomState(7),
        "seed-sequence": np.random.SeedSequence(11),
        "empty-and-0d": [np.empty((0, 3)), np.array(5.0)],
    }  # fmt: skip


def numpy_artifacts(protocols: tuple[int, ...]) -> Iterator[Artifact]:
    import numpy as np

    for label, value in numpy_values().items():
        yield from _pickles(f"numpy {label}", value, protocols)
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}, None, "s"], dtype=object), allow_pickle=True)
    yield Artifact("numpy np.save(object array)", "npy", buf.getvalue())


def torch_values(quick: bool) -> dict[str, Any]:
    import torch
    from torch import nn

    torch.manual_seed(0)
    layers: list[nn.Module] = [
        nn.Linear(4, 3), nn.Conv1d(2, 3, 3), nn.Conv2d(3, 4, 3), nn.BatchNorm1d(3),
        nn.LayerNorm(5), nn.Embedding(10, 4), nn.LSTM(4, 5, batch_first=True), nn.GRU(3, 4),
        nn.TransformerEncoderLayer(8, 2, 16), nn.MultiheadAttention(8, 2), nn.Dropout(0.2),
        nn.ReLU(), nn.GELU(), nn.Sequential(nn.Linear(2, 2), nn.Tanh()),
    ]  # fmt: skip
    if not quick:
        layers += [
            nn.Conv3d(1, 2, 2), nn.ConvTranspose2d(2, 2, 3), nn.BatchNorm2d(4),
            nn.GroupNorm(2, 4), nn.InstanceNorm1d(3, affine=True), nn.RNN(3, 3),
            nn.EmbeddingBag(10, 3), nn.Bilinear(2, 3, 4), nn.PReLU(), nn.Softmax(dim=1),
            nn.Transformer(8, 2, 1, 1, 16), nn.ModuleList([nn.Linear(1, 1)]),
            nn.ModuleDict({"a": nn.Linear(1, 1)}), nn.Identity(), nn.Flatten(),
            nn.MaxPool2d(2), nn.AdaptiveAvgPool2d(1), nn.Upsample(scale_factor=2),
            nn.RMSNorm(4), nn.ParameterList([nn.Parameter(torch.ones(2))]),
        ]  # fmt: skip
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    opt_states = {}
    # constructing the first optimizer imports torch._dynamo (3 s of CPU): full corpus only
    for name, make in (
        ()
        if quick
        else (
            ("sgd", lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)),
            ("adam", lambda p: torch.optim.Adam(p, lr=1e-3)),
            ("adamw", lambda p: torch.optim.AdamW(p, lr=1e-3, amsgrad=True)),
            ("rmsprop", lambda p: torch.optim.RMSprop(p)),
            ("adagrad", lambda p: torch.optim.Adagrad(p)),
        )
    ):
        opt = make(model.parameters())
        model(torch.randn(3, 4)).sum().backward()
        opt.step()
        opt_states[name] = opt.state_dict()
    dtypes = [
        torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int8, torch.uint8,
        torch.int16, torch.int32, torch.int64, torch.bool, torch.complex64, torch.complex128,
        torch.float8_e4m3fn, torch.float8_e5m2, torch.uint16, torch.uint32, torch.uint64,
    ]  # fmt: skip
    tensors = {str(dt): torch.zeros(3, dtype=dt) for dt in dtypes}
    values: dict[str, Any] = {
        "state_dicts": {type(m).__name__: m.state_dict() for m in layers},
        "whole-modules": layers[:6] if quick else layers,
        "model": model,
        "optimizer-states": opt_states,
        "tensors": tensors,
        "views-and-strides": [torch.arange(10)[2:8:2], torch.ones(3, 4).t()],
        "parameter": nn.Parameter(torch.randn(2, 2)),
        "requires-grad": torch.randn(2, requires_grad=True),
        "sparse": [torch.eye(3).to_sparse(), torch.eye(3).to_sparse_csr()],
        "size-device-dtype": [torch.Size([2, 3]), torch.device("cpu"), torch.float32,
                              torch.int64, torch.bfloat16, torch.strided, torch.sparse_coo],
        "named-tuples": [torch.max(torch.ones(2, 3), dim=1), torch.sort(torch.ones(3))],
        "activations": [nn.functional.gelu, nn.functional.silu, torch.tanh, torch.sigmoid,
                        nn.functional.softplus, nn.TransformerEncoderLayer(8, 2, 16, activation="gelu")],
        "meta": torch.empty(3, device="meta"),
    }  # fmt: skip
    if not quick:
        values["sparse"] += [
            torch.eye(3).to_sparse_csc(),
            torch.eye(4).to_sparse_bsr((2, 2)),
            torch.eye(4).to_sparse_bsc((2, 2)),
        ]
        values["quantized"] = [
            torch.quantize_per_tensor(torch.randn(4), 0.1, 2, torch.quint8),
            torch.quantize_per_tensor(torch.randn(4), 0.1, 0, torch.qint8),
            torch.quantize_per_tensor(torch.randn(4), 0.1, 0, torch.qint32),
            torch.quantize_per_channel(
                torch.randn(2, 3), torch.tensor([0.1, 0.2]), torch.tensor([0, 1]), 0,
                torch.quint8),
        ]  # fmt: skip
        values["nested"] = torch.nested.nested_tensor([torch.ones(2), torch.ones(3)])
        values["complex32"] = torch.zeros(2, dtype=torch.complex32)
        values["float8-more"] = [
            torch.zeros(2, dtype=dt)
            for dt in (torch.float8_e4m3fnuz, torch.float8_e5m2fnuz, torch.float8_e8m0fnu)
        ]
        sched_opt = torch.optim.SGD(model.parameters(), lr=0.1)
        values["lr-scheduler-state"] = torch.optim.lr_scheduler.StepLR(sched_opt, 2).state_dict()
        values["optimizer-state"] = sched_opt.state_dict()
        values["strided-storage-sharing"] = [tensors["torch.float32"]] * 2
    return values


def torch_artifacts(quick: bool) -> Iterator[Artifact]:
    import torch

    # tensors pickled without torch.save (e.g. inside a joblib/pickle bundle)
    yield from _pickles("torch plain-pickled tensor", torch.ones(2), (2, 5))
    for label, value in torch_values(quick).items():
        for legacy in (False, True):
            buf = io.BytesIO()
            try:
                torch.save(value, buf, _use_new_zipfile_serialization=not legacy)
            except (RuntimeError, NotImplementedError, TypeError):
                continue  # e.g. nested/sparse-compressed tensors in the legacy format
            kind = "legacy" if legacy else "zip"
            yield Artifact(f"torch {label} [torch.save {kind}]", "torch", buf.getvalue())
        if not quick:
            for proto in (2, 4):
                buf = io.BytesIO()
                try:
                    torch.save(value, buf, pickle_protocol=proto)
                except (RuntimeError, NotImplementedError, TypeError):
                    continue
                yield Artifact(f"torch {label} [torch.save p{proto}]", "torch", buf.getvalue())


def _sklearn_data() -> tuple[Any, Any, Any]:
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 4))
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    y_reg = x @ np.array([1.0, -2.0, 0.5, 0.0]) + rng.normal(scale=0.1, size=60)
    return x, y, y_reg


def sklearn_estimators(quick: bool) -> list[Any]:
    """Fitted estimators, transformers and pipelines."""
    import numpy as np
    import pandas as pd
    from sklearn import (
        calibration,
        cluster,
        compose,
        decomposition,
        discriminant_analysis,
        ensemble,
        feature_extraction,
        feature_selection,
        impute,
        isotonic,
        kernel_approximation,
        linear_model,
        manifold,
        mixture,
        model_selection,
        naive_bayes,
        neighbors,
        neural_network,
        pipeline,
        preprocessing,
        svm,
        tree,
    )
    from sklearn.dummy import DummyClassifier

    x, y, y_reg = _sklearn_data()
    xpos = np.abs(x)
    frame = pd.DataFrame(
        {
            "num": x[:, 0],
            "num2": x[:, 1],
            "cat": pd.Categorical(np.where(y == 1, "a", "b")),
            "txt": np.where(x[:, 2] > 0, "hi there", "lo here"),
        }
    )
    fitted: list[Any] = []

    def fit(est: Any, *args: Any) -> None:
        fitted.append(est.fit(*args))

    classifiers = [
        linear_model.LogisticRegression(max_iter=200),
        tree.DecisionTreeClassifier(max_depth=3),
        ensemble.RandomForestClassifier(n_estimators=3, max_depth=3),
        ensemble.HistGradientBoostingClassifier(max_iter=5),
        ensemble.GradientBoostingClassifier(n_estimators=3),
        svm.SVC(probability=True),
        neighbors.KNeighborsClassifier(3),
        naive_bayes.GaussianNB(),
        neural_network.MLPClassifier(hidden_layer_sizes=(4,), max_iter=20),
    ]
    regressors = [
        linear_model.Ridge(),
        linear_model.LinearRegression(),
        tree.DecisionTreeRegressor(max_depth=3),
        ensemble.HistGradientBoostingRegressor(max_iter=5),
        isotonic.IsotonicRegression(),
    ]
    transformers = [
        preprocessing.StandardScaler(),
        decomposition.PCA(2),
        preprocessing.OneHotEncoder(handle_unknown="ignore"),
    ]
    if not quick:
        classifiers += [
            linear_model.SGDClassifier(max_iter=20),
            linear_model.Perceptron(),
            linear_model.RidgeClassifier(),
            linear_model.PassiveAggressiveClassifier(max_iter=20)
            if hasattr(linear_model, "PassiveAggressiveClassifier")
            else linear_model.LogisticRegressionCV(cv=2),
            tree.ExtraTreeClassifier(),
            ensemble.ExtraTreesClassifier(n_estimators=3),
            ensemble.AdaBoostClassifier(n_estimators=3),
            ensemble.BaggingClassifier(n_estimators=2),
            ensemble.VotingClassifier([("lr", linear_model.LogisticRegression()),
                                       ("nb", naive_bayes.GaussianNB())], voting="soft"),
            ensemble.StackingClassifier([("dt", tree.DecisionTreeClassifier())]),
            svm.LinearSVC(),
            svm.NuSVC(),
            neighbors.RadiusNeighborsClassifier(radius=5.0),
            neighbors.NearestCentroid(),
            discriminant_analysis.LinearDiscriminantAnalysis(),
            discriminant_analysis.QuadraticDiscriminantAnalysis(),
            calibration.CalibratedClassifierCV(linear_model.LogisticRegression(), cv=2),
            calibration.CalibratedClassifierCV(svm.LinearSVC(), cv=2, method="isotonic"),
            DummyClassifier(),
            model_selection.GridSearchCV(linear_model.LogisticRegression(), {"C": [0.1, 1]},
                                         cv=2),
        ]  # fmt: skip
        regressors += [
            linear_model.Lasso(),
            linear_model.ElasticNet(),
            linear_model.BayesianRidge(),
            linear_model.HuberRegressor(),
            linear_model.QuantileRegressor(alpha=0.0),
            linear_model.PoissonRegressor(),
            linear_model.TweedieRegressor(),
            linear_model.TheilSenRegressor(max_subpopulation=50),
            linear_model.RANSACRegressor(),
            ensemble.RandomForestRegressor(n_estimators=3),
            ensemble.GradientBoostingRegressor(n_estimators=3, loss="huber"),
            ensemble.HistGradientBoostingRegressor(max_iter=3, loss="poisson"),
            ensemble.HistGradientBoostingRegressor(max_iter=3, loss="quantile", quantile=0.5),
            svm.SVR(),
            svm.LinearSVR(),
            neighbors.KNeighborsRegressor(3, algorithm="kd_tree"),
            neighbors.KNeighborsRegressor(3, algorithm="ball_tree"),
            neural_network.MLPRegressor(hidden_layer_sizes=(3,), max_iter=20),
        ]
        transformers += [
            preprocessing.MinMaxScaler(),
            preprocessing.RobustScaler(),
            preprocessing.MaxAbsScaler(),
            preprocessing.Normalizer(),
            preprocessing.QuantileTransformer(n_quantiles=10),
            preprocessing.PowerTransformer(),
            preprocessing.PolynomialFeatures(2),
            preprocessing.SplineTransformer(),
            preprocessing.KBinsDiscretizer(3, encode="ordinal"),
            preprocessing.OrdinalEncoder(),
            decomposition.TruncatedSVD(2),
            decomposition.FastICA(2, max_iter=50),
            decomposition.KernelPCA(2, kernel="rbf"),
            decomposition.FactorAnalysis(2),
            decomposition.IncrementalPCA(2),
            feature_selection.SelectKBest(k=2),
            feature_selection.VarianceThreshold(),
            feature_selection.RFE(linear_model.LogisticRegression(), n_features_to_select=2),
            impute.SimpleImputer(),
            impute.KNNImputer(),
            kernel_approximation.RBFSampler(n_components=5),
            kernel_approximation.Nystroem(n_components=5),
            cluster.KMeans(2, n_init=1),
            cluster.MiniBatchKMeans(2, n_init=1),
            cluster.DBSCAN(),
            cluster.AgglomerativeClustering(2),
            cluster.Birch(n_clusters=2),
            mixture.GaussianMixture(2),
            manifold.Isomap(n_neighbors=5, n_components=2),
            neighbors.NearestNeighbors(n_neighbors=3),
            neighbors.KernelDensity(),
            neighbors.LocalOutlierFactor(n_neighbors=5, novelty=True),
            ensemble.IsolationForest(n_estimators=3),
            svm.OneClassSVM(),
        ]
    for est in classifiers:
        fit(est, x, y)
    y_pos = np.abs(y_reg) + 0.1  # valid for every regression loss (poisson, tweedie, ...)
    for est in regressors:
        fit(est, x[:, 0] if isinstance(est, isotonic.IsotonicRegression) else x, y_pos)
    for est in transformers:
        fit(est, x, y)
    fit(naive_bayes.MultinomialNB(), xpos, y)
    fit(naive_bayes.BernoulliNB(), x, y)
    if not quick:
        fit(naive_bayes.ComplementNB(), xpos, y)
        fit(naive_bayes.CategoricalNB(), (xpos * 3).astype(int), y)
        fit(preprocessing.LabelEncoder(), ["a", "b", "a"])
        fit(preprocessing.LabelBinarizer(), ["a", "b", "c"])
        fit(preprocessing.MultiLabelBinarizer(), [["a"], ["a", "b"]])
        fit(feature_extraction.text.TfidfVectorizer(), ["hello world", "hello there"])
        fit(feature_extraction.text.CountVectorizer(ngram_range=(1, 2)), ["ab bc", "bc cd"])
        fit(feature_extraction.text.HashingVectorizer(n_features=16), ["ab bc"])
        fit(feature_extraction.DictVectorizer(), [{"a": 1}, {"b": 2}])
        fit(preprocessing.TargetEncoder(), frame[["cat"]], y)
        fit(decomposition.NMF(2, max_iter=50), xpos)
        fit(decomposition.LatentDirichletAllocation(2, max_iter=2), xpos)
        fitted.append(neighbors.KDTree(x, leaf_size=5))
        fitted.append(neighbors.BallTree(x, leaf_size=5, metric="manhattan"))
        fitted.append(
            model_selection.RandomizedSearchCV(
                linear_model.LogisticRegression(), {"C": [0.1, 1.0, 10.0]}, n_iter=2, cv=2
            ).fit(x, y)
        )
    # preprocessing pipelines with FunctionTransformer and numpy ufuncs
    column = compose.ColumnTransformer(
        [
            ("num", pipeline.make_pipeline(impute.SimpleImputer(), preprocessing.StandardScaler()),
             ["num", "num2"]),
            ("cat", preprocessing.OneHotEncoder(handle_unknown="ignore"), ["cat"]),
            ("log", preprocessing.FunctionTransformer(np.log1p, np.expm1), ["num2"]),
        ],
        remainder="drop",
    )  # fmt: skip
    frame2 = frame.assign(num2=np.abs(frame["num2"]))
    fit(pipeline.make_pipeline(column, linear_model.LogisticRegression()), frame2, y)
    fit(pipeline.Pipeline([("sc", preprocessing.StandardScaler()),
                           ("svc", svm.SVC())]), x, y)  # fmt: skip
    fit(pipeline.FeatureUnion([("pca", decomposition.PCA(1)),
                               ("sqrt", preprocessing.FunctionTransformer(np.abs))]), x)  # fmt: skip
    if not quick:
        fit(compose.TransformedTargetRegressor(linear_model.Ridge(), func=np.log1p,
                                               inverse_func=np.expm1), x, np.abs(y_reg))  # fmt: skip
        fit(compose.make_column_transformer(
            (preprocessing.OrdinalEncoder(), ["cat"]), remainder="passthrough"), frame[["cat", "num"]])  # fmt: skip
        fit(preprocessing.FunctionTransformer(np.sqrt, validate=True), xpos)
    return [est for est in fitted if est is not None]


def sklearn_artifacts(quick: bool, tmp: Path) -> Iterator[Artifact]:
    import joblib

    estimators = sklearn_estimators(quick)
    protocols = QUICK_PROTOCOLS if quick else ALL_PROTOCOLS
    for est in estimators:
        label = f"sklearn {type(est).__name__}"
        yield from _pickles(label, est, (protocols[-1],) if quick else protocols)
    bundle = {"models": estimators}
    yield from _pickles("sklearn all-estimators", bundle, protocols)
    compressions: list[Any] = [0, 3] if quick else [0, 3, ("gzip", 3), ("bz2", 3),
                                                        ("lzma", 3), ("xz", 3)]  # fmt: skip
    for compress in compressions:
        for proto in (None,) if quick else (2, 3, 4, 5):
            path = tmp / "model.joblib"
            joblib.dump(bundle, path, compress=compress, protocol=proto)
            yield Artifact(f"sklearn joblib compress={compress} p{proto}", "joblib",
                           path.read_bytes())  # fmt: skip


def pandas_values(quick: bool) -> dict[str, Any]:
    import numpy as np
    import pandas as pd

    n = 4
    frame = pd.DataFrame(
        {
            "int": np.arange(n),
            "float": np.linspace(0, 1, n),
            "bool": [True, False, True, False],
            "str": ["a", "b", None, "d"],
            "object": [1, "x", None, 2.5],
            "cat": pd.Categorical(["u", "v", "u", "w"]),
            "cat-ordered": pd.Categorical([1, 2, 1, 3], ordered=True),
            "dt": pd.date_range("2024-01-01", periods=n),
            "dt-tz": pd.date_range("2024-01-01", periods=n, tz="Europe/Paris"),
            "td": pd.to_timedelta(np.arange(n), unit="h"),
            "period": pd.period_range("2024-01", periods=n, freq="M"),
            "interval": pd.interval_range(0, n),
            "sparse": pd.arrays.SparseArray([0, 0, 1, 0]),
            "Int64": pd.array([1, None, 3, 4], dtype="Int64"),
            "Float64": pd.array([1.5, None, 3, 4], dtype="Float64"),
            "boolean": pd.array([True, None, False, True], dtype="boolean"),
            "string": pd.array(["a", None, "c", "d"], dtype="string"),
        }
    )
    values: dict[str, Any] = {
        "frame": frame,
        "series": pd.Series([1.0, 2.0], index=["a", "b"], name="s"),
        "multiindex": pd.DataFrame(
            {"v": range(4)},
            index=pd.MultiIndex.from_product([["a", "b"], [1, 2]], names=["k1", "k2"]),
        ),
        "scalars": [pd.Timestamp("2024-01-01", tz="UTC"), pd.Timedelta("1D"),
                    pd.Period("2024-01", freq="M"), pd.Interval(0, 1), pd.NaT, pd.NA],
        "indexes": [pd.RangeIndex(5), pd.Index([1.5, 2.5]), pd.CategoricalIndex(["a", "b"]),
                    pd.DatetimeIndex(["2024-01-01"]), pd.TimedeltaIndex(["1D"]),
                    pd.PeriodIndex(["2024-01"], freq="M"), pd.IntervalIndex.from_breaks([0, 1, 2]),
                    pd.Index(["a", "b"], dtype="string")],
    }  # fmt: skip
    if not quick:
        values["offsets"] = [pd.offsets.Day(2), pd.offsets.MonthEnd(), pd.offsets.Hour(3),
                             pd.offsets.BusinessDay(), pd.offsets.Week(weekday=1)]  # fmt: skip
        values["sparse-frame"] = pd.DataFrame(
            {"s": pd.arrays.SparseArray([0.0, 1.0, 0.0], fill_value=0.0)}
        )
        values["dtypes"] = [pd.CategoricalDtype(["a"]), pd.DatetimeTZDtype(tz="UTC"),
                            pd.PeriodDtype("D"), pd.IntervalDtype("int64"),
                            pd.SparseDtype("float"), pd.StringDtype()]  # fmt: skip
        values["wide-frame"] = pd.DataFrame(np.ones((3, 5)), columns=list("abcde"))
    return values


def pandas_artifacts(quick: bool, tmp: Path) -> Iterator[Artifact]:
    protocols = QUICK_PROTOCOLS if quick else ALL_PROTOCOLS
    for label, value in pandas_values(quick).items():
        yield from _pickles(f"pandas {label}", value, protocols)
    frame = pandas_values(quick=True)["frame"]
    for compression in (None,) if quick else (None, "gzip", "bz2", "xz", "zstd"):
        path = tmp / "frame.pkl"
        try:
            frame.to_pickle(path, compression=compression)
        except (ImportError, ValueError):
            continue
        raw = path.read_bytes()
        if compression is not None:
            raw = _decompress(raw)
        yield Artifact(f"pandas to_pickle compression={compression}", "pickle", raw)


def _decompress(raw: bytes) -> bytes:
    for magic, decompress in _JOBLIB_MAGIC[:3]:
        if raw.startswith(magic):
            return decompress(raw)
    if raw.startswith(b"\x28\xb5\x2f\xfd"):
        from compression import zstd  # type: ignore[import-not-found]

        return bytes(zstd.decompress(raw))
    raise WalkError("unknown compression")


def scipy_values(quick: bool) -> dict[str, Any]:
    import numpy as np
    from scipy import sparse, stats

    dense = np.eye(4)
    values: dict[str, Any] = {
        "sparse-matrices": [sparse.csr_matrix(dense), sparse.csc_matrix(dense),
                            sparse.coo_matrix(dense)],
        "sparse-arrays": [sparse.csr_array(dense), sparse.coo_array(dense)],
    }  # fmt: skip
    if not quick:
        values["sparse-more"] = [sparse.lil_matrix(dense), sparse.dok_matrix(dense),
                                 sparse.bsr_matrix(dense), sparse.dia_matrix(dense),
                                 sparse.lil_array(dense), sparse.dok_array(dense),
                                 sparse.bsr_array(dense), sparse.dia_array(dense),
                                 sparse.csc_array(dense)]  # fmt: skip
        values["distributions"] = [stats.norm, stats.norm(0, 1), stats.uniform(0, 1),
                                   stats.loguniform(1e-3, 1), stats.randint(0, 5),
                                   stats.expon(), stats.poisson(3)]  # fmt: skip
    return values


def scipy_artifacts(quick: bool) -> Iterator[Artifact]:
    protocols = QUICK_PROTOCOLS if quick else ALL_PROTOCOLS
    for label, value in scipy_values(quick).items():
        yield from _pickles(f"scipy {label}", value, protocols)


#: Globals that real benign files reference but that are NOT safe to allow: the allowlist
#: marks them dangerous on purpose (see docs/allowlist.md). Keys ending in "." are prefixes.
KNOWN_UNSAFE_BENIGN = {
    "scipy.stats._continuous_distns.": "rv_generic.__setstate__ exec()s a template from the pickle",
    "scipy.stats._discrete_distns.": "rv_generic.__setstate__ exec()s a template from the pickle",
    "scipy.stats._distn_infrastructure.": "rv_generic.__setstate__ exec()s a template from the pickle",
    "builtins.getattr": "bound methods of non-global objects (scipy distributions' vectorized methods)",
    "builtins.type": "type(None) is how pickle writes NoneType; the same global builds classes",
    "torch.storage._load_from_bytes": "plain pickle.dumps(tensor): torch.load(weights_only=False) of bytes",
}


def known_unsafe(name: str) -> bool:
    return any(name.startswith(k) if k.endswith(".") else name == k for k in KNOWN_UNSAFE_BENIGN)


def corpus(quick: bool, tmp: Path) -> Iterator[Artifact]:
    protocols = QUICK_PROTOCOLS if quick else ALL_PROTOCOLS
    yield from stdlib_artifacts(protocols)
    yield from numpy_artifacts(protocols)
    yield from torch_artifacts(quick)
    yield from sklearn_artifacts(quick, tmp)
    yield from pandas_artifacts(quick, tmp)
    yield from scipy_artifacts(quick)


def collect(quick: bool, tmp: Path, *, sections: tuple[str, ...] | None = None) -> Uses:
    """Generate the corpus into `tmp` and return every global with its strongest use."""
    uses: Uses = {}
    for artifact in corpus(quick, tmp):
        if sections is not None and artifact.label.split(" ", 1)[0] not in sections:
            continue
        WALKERS[artifact.kind](artifact.data, uses, artifact.label)
    return uses


# ----------------------------------------------------------------------------------------
# Verdicts against allowlist.json (mirrors the scanner's rules, for the data tests)


#: Private/platform modules that re-export a public one; a dotted path that reaches one of
#: them through a module attribute is judged as the public module (``x._pickle.loads``).
SUFFIX_ALIASES = {
    **ALIASES,
    "__builtins__": "builtins", "posixpath": "os.path", "ntpath": "os.path", "_pyio": "io",
    "_pickle": "pickle", "cPickle": "pickle", "_socket": "socket", "_posixsubprocess": "subprocess",
    "commands": "subprocess", "_ctypes": "ctypes", "_imp": "importlib",
    "_frozen_importlib": "importlib", "_frozen_importlib_external": "importlib",
    "_thread": "threading", "_signal": "signal", "_sqlite3": "sqlite3", "_weakref": "weakref",
}  # fmt: skip


def _match(entries: list[dict[str, Any]], name: str) -> bool:
    return any(
        entry["name"] == name if "name" in entry else name.startswith(entry["prefix"])
        for entry in entries
    )


def dotted_suffixes(name: str) -> list[str]:
    """Every suffix of `name` that starts at a later segment, that segment canonicalised."""
    parts = name.split(".")
    return [
        f"{SUFFIX_ALIASES.get(parts[i], parts[i])}.{'.'.join(parts[i + 1 :])}"
        for i in range(1, len(parts) - 1)
    ]


def verdict(data: dict[str, Any], name: str, use: str) -> str:
    """'dangerous', 'safe' or 'unknown' for a global used as `use` (the analyser's rules).

    Dangerous entries win; they are matched against the name and, unless an exact safe entry
    vouches for the whole path, against every suffix that starts at a later segment (so
    ``torch.serialization.os.system`` is ``os.system``). Then a safe entry must grant the use.
    """
    if _match(data["dangerous"], name):
        return "dangerous"
    exact = any(entry.get("name") == name for entry in data["safe"])
    if not exact and any(_match(data["dangerous"], s) for s in dotted_suffixes(name)):
        return "dangerous"
    for entry in data["safe"]:
        if _match([entry], name) and RANK[entry["use"]] >= RANK[use]:
            return "safe"
    return "unknown"
