"""Pickle analysis without execution: a symbolic run of the opcodes as CPython's C unpickler reads them.

The analyser tracks the stack, the mark stack and the memo, resolves every global the stream can
reach (GLOBAL, STACK_GLOBAL, INST, protocol-2 name mapping, dotted paths, module aliases), records
how each is used (referenced, instantiated as data, called), and notes every construct where
parsers disagree. A stream that breaks is analysed up to the break: what comes before runs.
"""

from __future__ import annotations

import codecs
import functools
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from secmlops.findings import Finding, Location, Severity
from secmlops.scan.models import rules
from secmlops.scan.models.allowlist import Allowlist, Use, canonical_name

MAX_INLINE_BYTES = 1 << 16  # larger byte/str arguments are skipped, not kept
MAX_KEPT_ITEMS = 256  # container items kept for analysis; the rest are counted
MAX_STACK = 1_000_000
HIGHEST_PROTOCOL = 5

# Python 3.11 looks enum members up on the class at ~0.25 us a time; the analyser does it per item.
_REF, _NEW, _CALL = Use.REF, Use.NEW, Use.CALL


# Callables that use their arguments as callables or classes: (argument index -> use).
ARGUMENT_USES: dict[str, dict[int, Use]] = {
    "copyreg._reconstructor": {0: _NEW, 1: _NEW},
    "copyreg.__newobj__": {0: _NEW},
    "copyreg.__newobj_ex__": {0: _NEW},
    "torch._tensor._rebuild_from_type_v2": {0: _CALL, 1: _NEW},
    "torch._tensor._rebuild_from_type": {0: _CALL, 1: _NEW},
    "torch._utils._rebuild_wrapper_subclass": {0: _NEW},
    "torch._utils._rebuild_subclass": {0: _NEW},
    "functools.partial": {0: _CALL},
    "numpy.core.multiarray._reconstruct": {0: _NEW},
    "numpy._core.multiarray._reconstruct": {0: _NEW},
    "numpy.ma.core._mareconstruct": {0: _NEW, 1: _NEW},
    "numpy.random._pickle.__bit_generator_ctor": {0: _CALL},
    "numpy.random._pickle.__generator_ctor": {1: _CALL},
    "numpy.random._pickle.__randomstate_ctor": {1: _CALL},
    "sklearn.metrics._dist_metrics.newObj": {0: _NEW},
    "sklearn.neighbors._ball_tree.newObj": {0: _NEW},
    "sklearn.neighbors._kd_tree.newObj": {0: _NEW},
    "pandas.core.indexes.base._new_Index": {0: _NEW},
    "pandas.core.indexes.datetimes._new_DatetimeIndex": {0: _NEW},
    "pandas.core.indexes.period._new_PeriodIndex": {0: _NEW},
}
# Cython's generated unpickle helpers rebuild an instance of their first argument.
PYX_UNPICKLE = "__pyx_unpickle_"
# Text codecs whose result the analyser may compute (protocol-2 bytes go through codecs.encode).
FOLDABLE_CODECS = frozenset({"latin1", "latin-1", "iso-8859-1", "utf-8", "utf8", "ascii", "rot13", "rot_13"})  # fmt: skip


class PickleBreak(Exception):
    """The real unpickler raises here."""


class _Mark:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MARK"


MARK = _Mark()


class Opaque:
    """A value the analyser does not model (large bytes, buffers, persistent loads)."""

    __slots__ = ("offset", "size", "what")

    def __init__(self, what: str, offset: int = -1, size: int = 0) -> None:
        self.what = what
        self.offset = offset  # where large skipped bytes start in the stream (-1: not bytes)
        self.size = size


class GlobalRef:
    """One reference to a global, as pushed by GLOBAL/STACK_GLOBAL/INST."""

    __slots__ = ("module", "name", "offset", "qualified")

    def __init__(self, module: str, name: str, qualified: str, offset: int) -> None:
        self.module = module
        self.name = name
        self.qualified = qualified
        self.offset = offset


class Instance:
    """The result of a call or instantiation at load time."""

    __slots__ = ("args", "callee", "folded", "offset", "state")

    def __init__(
        self, callee: Any, offset: int, folded: Any = None, args: tuple[Any, ...] = ()
    ) -> None:
        self.callee = callee
        self.offset = offset
        self.folded = folded  # a constant the analyser could compute (codecs.encode of literals)
        self.args = args
        self.state: Any = None


class ListV:
    __slots__ = ("count", "items")

    def __init__(self, items: list[Any] | None = None) -> None:
        self.items = items[:MAX_KEPT_ITEMS] if items else []
        self.count = len(items) if items else 0

    def add(self, values: list[Any]) -> None:
        room = MAX_KEPT_ITEMS - len(self.items)
        if room > 0:
            self.items.extend(values[:room])
        self.count += len(values)


class DictV:
    __slots__ = ("count", "dunder", "items")

    def __init__(self) -> None:
        self.items: list[tuple[Any, Any]] = []
        self.count = 0
        self.dunder: list[str] = []

    def set(self, key: Any, value: Any) -> None:
        if isinstance(key, str) and key.startswith("__") and key.endswith("__"):
            self.dunder.append(key)
        if len(self.items) < MAX_KEPT_ITEMS:
            self.items.append((key, value))
        self.count += 1


class SetV(ListV):
    __slots__ = ()


# Loaders of an embedded byte string: when the bytes are a constant of the file they are scanned
# as a file of their own, and the call is judged by what they contain.
NESTED_LOADERS = frozenset({"torch.storage._load_from_bytes", "pickle.loads"})
# Callables whose danger is the callable they are given: judged through their argument.
CALLS_ITS_ARGUMENT = frozenset({"functools.partial"})


@dataclass(frozen=True, slots=True)
class NestedLoad:
    """An embedded byte string that a call deserialises (inline bytes, or a region of the stream)."""

    call_offset: int
    loader: str
    data: bytes | None
    offset: int
    size: int


@dataclass(slots=True)
class GlobalUse:
    """Every reference to one canonical global in one pickle."""

    name: str
    raw: str
    use: Use
    offset: int
    count: int = 1


@dataclass(slots=True)
class PickleAnalysis:
    """The outcome of analysing one pickle (one STOP, or up to the break)."""

    start: int
    end: int = 0
    opcodes: int = 0
    protocol: int = 0
    stopped: bool = False
    error: str | None = None
    globals: dict[str, GlobalUse] = field(default_factory=dict)
    calls: int = 0
    persistent_ids: list[Any] = field(default_factory=list)
    value: Any = None  # the symbolic object the pickle returns (tuples, constants, GlobalRef ...)
    differentials: list[tuple[int, str]] = field(default_factory=list)
    computed_calls: list[tuple[int, str]] = field(default_factory=list)
    hijacks: list[tuple[int, str]] = field(default_factory=list)
    ext_codes: list[tuple[int, int]] = field(default_factory=list)
    first_opcode_failed: bool = False
    nested: list[NestedLoad] = field(default_factory=list)
    nested_unresolved: set[str] = field(default_factory=set)


class _Reader:
    """Byte reader over a seekable stream that skips large arguments instead of keeping them."""

    __slots__ = ("f", "size")

    def __init__(self, f: IO[bytes], size: int) -> None:
        self.f = f
        self.size = size

    def pos(self) -> int:
        return self.f.tell()

    def next_op(self) -> int:
        code = self.f.read(1)
        return code[0] if code else -1

    def read(self, n: int) -> bytes:
        data = self.f.read(n)
        if len(data) != n:
            raise PickleBreak("pickle data was truncated")
        return data

    def byte(self) -> int:
        return self.read(1)[0]

    def read_or_skip(self, n: int) -> bytes | Opaque:
        if n > MAX_INLINE_BYTES:
            here = self.f.tell()
            if here + n > self.size:
                raise PickleBreak("pickle data was truncated")
            self.f.seek(here + n)
            return Opaque(f"{n} bytes", here, n)
        return self.read(n)

    def readline(self) -> bytes:
        line = self.f.readline(MAX_INLINE_BYTES)
        if not line.endswith(b"\n"):
            raise PickleBreak("pickle data was truncated (no newline)")
        return line[:-1]


class _MemReader:
    """The same reader over bytes already in memory (most pickles): no call per byte."""

    __slots__ = ("base", "data", "i", "size")

    def __init__(self, data: bytes, base: int) -> None:
        self.data = data
        self.i = 0
        self.base = base
        self.size = base + len(data)

    def pos(self) -> int:
        return self.base + self.i

    def next_op(self) -> int:
        i = self.i
        if i >= len(self.data):
            return -1
        self.i = i + 1
        return self.data[i]

    def read(self, n: int) -> bytes:
        i = self.i
        j = i + n
        data = self.data
        if j > len(data):
            self.i = len(data)
            raise PickleBreak("pickle data was truncated")
        self.i = j
        return data[i:j]

    def byte(self) -> int:
        i = self.i
        if i >= len(self.data):
            raise PickleBreak("pickle data was truncated")
        self.i = i + 1
        return self.data[i]

    def read_or_skip(self, n: int) -> bytes | Opaque:
        if n > MAX_INLINE_BYTES:
            here = self.i
            if here + n > len(self.data):
                self.i = len(self.data)
                raise PickleBreak("pickle data was truncated")
            self.i = here + n
            return Opaque(f"{n} bytes", self.base + here, n)
        return self.read(n)

    def readline(self) -> bytes:
        i = self.i
        j = self.data.find(b"\n", i, i + MAX_INLINE_BYTES)
        if j < 0:
            self.i = min(len(self.data), i + MAX_INLINE_BYTES)
            raise PickleBreak("pickle data was truncated (no newline)")
        self.i = j + 1
        return self.data[i:j]


IN_MEMORY_LIMIT = 32 * 2**20


def _reader_for(f: IO[bytes], size: int) -> _Reader | _MemReader:
    start = f.tell()
    if size - start <= IN_MEMORY_LIMIT:
        return _MemReader(f.read(size - start), start)
    return _Reader(f, size)


def _decode_utf8(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise PickleBreak(f"{what} is not valid UTF-8") from None


class _Machine:
    """The symbolic unpickler for one pickle."""

    def __init__(
        self,
        reader: _Reader | _MemReader,
        allowlist: Allowlist,
        result: PickleAnalysis,
        max_ops: int,
    ) -> None:
        self.r = reader
        self.allowlist = allowlist
        self.res = result
        self.max_ops = max_ops
        self.stack: list[Any] = []
        self.metastack: list[list[Any]] = []
        self.memo: dict[int, Any] = {}
        self.frame_end: int | None = None
        self.proto = 0
        self.pending_array: Instance | None = None  # joblib array data follows this opcode
        self.start = reader.pos()  # a nested joblib pickle starts inside the outer stream
        self._walked: dict[int, tuple[Any, ...] | list[Any]] = {}  # containers `use` has seen

    # -- stack helpers -------------------------------------------------------------------------
    def pop(self) -> Any:
        if not self.stack:
            raise PickleBreak("unpickling stack underflow")
        return self.stack.pop()

    def top(self) -> Any:
        if not self.stack:
            raise PickleBreak("unpickling stack underflow")
        return self.stack[-1]

    def pop_mark(self) -> list[Any]:
        if not self.metastack:
            raise PickleBreak("could not find MARK")
        items = self.stack
        self.stack = self.metastack.pop()
        return items

    # -- what the analysis records --------------------------------------------------------------
    def use(self, value: Any, use: Use) -> None:
        if type(value) in _SCALARS:
            return
        if isinstance(value, GlobalRef):
            if use is _REF and value.qualified in NESTED_LOADERS:
                self.res.nested_unresolved.add(value.qualified)
            entry = self.res.globals.get(value.qualified)
            if entry is None:
                raw = f"{value.module}.{value.name}"
                self.res.globals[value.qualified] = GlobalUse(
                    value.qualified, raw, use, value.offset
                )
            else:
                entry.count += 1
                entry.use = max(entry.use, use)
        elif isinstance(value, (tuple, list)):
            # Each container is walked once per stream: its items are always used as references,
            # so a second walk adds nothing, and memo-shared tuples (t = (t', t'), 60 levels
            # deep) would otherwise cost 2**60 steps. Items added to a list later (APPEND,
            # APPENDS) are used when they are added. The container is kept so that its id is
            # never reused by a later object while this machine runs.
            if id(value) in self._walked:
                return
            self._walked[id(value)] = value
            for item in value:
                self.use(item, _REF)

    def call(self, callee: Any, args: Any, offset: int, how: str) -> Any:
        """A call the unpickler makes: record it, return the symbolic result."""
        self.res.calls += 1
        if isinstance(callee, GlobalRef):
            if callee.qualified in NESTED_LOADERS:
                self._nested(callee.qualified, args, offset)
            if callee.qualified == "builtins.getattr":
                folded = self._fold_getattr(args, offset)
                if folded is not None:
                    return folded
            self.use(callee, _CALL)
            arg_uses = ARGUMENT_USES.get(callee.qualified, {})
            if not arg_uses and PYX_UNPICKLE in callee.qualified:
                arg_uses = {0: _NEW}
            items = args if isinstance(args, tuple) else ()
            for i, item in enumerate(items):
                if isinstance(item, GlobalRef):
                    self.use(item, arg_uses.get(i, _REF))
            return Instance(callee, offset, self._fold(callee, items), items)
        self.res.computed_calls.append((offset, f"{how} calls {_describe(callee)}"))
        return Instance(callee, offset)

    def _fold_getattr(self, args: Any, offset: int) -> GlobalRef | None:
        """getattr(<global>, "<constant>") is the dotted global it names (judged as such)."""
        if not (isinstance(args, tuple) and len(args) == 2):
            return None
        target, attr = args[0], _unfold(args[1])
        if not (isinstance(target, GlobalRef) and isinstance(attr, str) and attr.isidentifier()):
            return None
        return GlobalRef(
            target.module, f"{target.name}.{attr}", f"{target.qualified}.{attr}", offset
        )

    def _nested(self, name: str, args: Any, offset: int) -> None:
        payload = _unfold(args[0]) if isinstance(args, tuple) and len(args) == 1 else None
        if isinstance(payload, bytes):
            self.res.nested.append(NestedLoad(offset, name, payload, -1, len(payload)))
        elif isinstance(payload, Opaque) and payload.offset >= 0:
            self.res.nested.append(NestedLoad(offset, name, None, payload.offset, payload.size))
        else:
            self.res.nested_unresolved.add(name)

    def instantiate(self, cls: Any, offset: int, how: str) -> Any:
        if isinstance(cls, GlobalRef):
            self.use(cls, _NEW)
        else:
            self.res.computed_calls.append((offset, f"{how} instantiates {_describe(cls)}"))
        return Instance(cls, offset)

    @staticmethod
    def _fold(callee: GlobalRef, args: tuple[Any, ...]) -> Any:
        if (
            callee.qualified == "codecs.encode"
            and len(args) == 2
            and isinstance(args[0], str)
            and isinstance(args[1], str)
            and args[1].lower() in FOLDABLE_CODECS
        ):
            try:
                return codecs.encode(args[0], args[1])
            except (UnicodeError, LookupError):
                return None
        return None

    def differential(self, offset: int, what: str) -> None:
        self.res.differentials.append((offset, what))

    def make_global(self, module: Any, name: Any, offset: int, opname: str) -> Any:
        module = _unfold(module)
        name = _unfold(name)
        if not isinstance(module, str) or not isinstance(name, str):
            self.res.computed_calls.append(
                (offset, f"{opname} resolves a name computed at load time ({_describe(module)}, "
                 f"{_describe(name)})")
            )  # fmt: skip
            return Instance(None, offset)
        qualified = _qualify(module, name)
        if qualified is None:
            # The import fails before anything is reached: the real loader stops here.
            raise PickleBreak(f"No module named {module[:80]!r}")
        if "." in name and self.proto < 4:
            # The 3.11-3.13 C unpickler resolves dotted names only from protocol 4 on; newer
            # Pythons resolve them always. Either way the target is reachable.
            self.differential(offset, f"dotted name {name!r} under protocol {self.proto}")
        return GlobalRef(module, name, qualified, offset)

    # -- the run ----------------------------------------------------------------------------------
    def run(self) -> None:
        if isinstance(self.r, _MemReader):
            self._run_memory(self.r)
        else:
            self._run_stream(self.r)

    def _after_op(self, offset: int, end: int) -> None:
        """Frame bookkeeping once an opcode and its argument have been read (ends at `end`)."""
        frame_end = self.frame_end
        if frame_end is not None:
            if end > frame_end:
                if offset < frame_end:
                    self.differential(offset, "opcode crosses a frame boundary")
                self.frame_end = None
            elif end == frame_end:
                self.frame_end = None

    def _call(self, handler: Any, offset: int, first: bool) -> bool:
        """Run one opcode's handler; a break on the very first opcode means "not a pickle"."""
        try:
            return bool(handler(self, offset))
        except PickleBreak:
            if first:
                self.res.first_opcode_failed = True
            raise

    def _run_stream(self, r: _Reader) -> None:
        """The generic loop: one handler call per opcode (pickles too large to hold in memory)."""
        res = self.res
        handlers = _HANDLER_TABLE
        max_ops = self.max_ops
        ops = 0
        try:
            while True:
                offset = r.pos()
                op = r.next_op()
                if op < 0:
                    raise PickleBreak("pickle data was truncated (no STOP)")
                handler = handlers[op]
                if handler is None:
                    if ops == 0:
                        res.first_opcode_failed = True
                    raise PickleBreak(f"invalid load key {bytes([op])!r}")
                ops += 1
                if ops > max_ops:
                    raise _LimitReached(f"opcode budget of {max_ops} reached")
                if not ops & 0xFFFF and len(self.stack) > MAX_STACK:
                    raise PickleBreak("stack limit reached")
                done = self._call(handler, offset, ops == 1)
                if self.frame_end is not None:
                    self._after_op(offset, r.pos())
                if self.pending_array is not None:
                    wrapper, self.pending_array = self.pending_array, None
                    _joblib_array(self, wrapper)
                if done:
                    res.stopped = True
                    return
        finally:
            res.opcodes += ops

    def _run_memory(self, r: _MemReader) -> None:
        """The same loop over bytes in memory, with the data-only opcodes that dominate real
        files (memo, numbers, short strings, tuples) handled inline.

        An inline case only handles the well-formed form of its opcode; anything unusual (a
        short read, an empty stack, a missing memo key) goes to the opcode's handler, so errors
        and their messages are exactly the handler's. `i` is the read position; `r.i` is
        brought up to date before any handler runs and read back after it. `flim` is the
        current frame's end as an index into `data` (the frame check runs only at or past it).
        """
        res = self.res
        handlers = _HANDLER_TABLE
        max_ops = self.max_ops
        data = r.data
        n = len(data)
        base = r.base
        memo = self.memo
        metastack = self.metastack
        stack = self.stack
        unpack_from = struct.unpack_from
        no_frame = n + 1  # past any position `i` can reach
        flim = no_frame if self.frame_end is None else self.frame_end - base
        i = r.i
        ops = 0
        # The next opcode count at which the budget and the stack size are checked (past the
        # budget, and every 65,536 opcodes); that opcode goes to its handler.
        check_at = min(max_ops + 1, 0x10000)
        try:
            while True:
                if i >= n:
                    r.i = i
                    raise PickleBreak("pickle data was truncated (no STOP)")
                op = data[i]
                at = i  # where the opcode starts (as an offset in the stream: base + at)
                i += 1
                ops += 1
                if ops >= check_at:
                    r.i = i
                    if handlers[op] is not None:
                        if ops > max_ops:
                            raise _LimitReached(f"opcode budget of {max_ops} reached")
                        if len(stack) > MAX_STACK:
                            raise PickleBreak("stack limit reached")
                    check_at = min(max_ops + 1, (ops | 0xFFFF) + 1)
                    fast = False
                else:
                    fast = True
                if not fast:
                    pass
                elif op == 0x94 and stack:  # MEMOIZE
                    memo[len(memo)] = stack[-1]
                elif op == 0x47 and i + 8 <= n:  # BINFLOAT
                    stack.append(unpack_from(">d", data, i)[0])
                    i += 8
                elif op == 0x71 and i < n and stack:  # BINPUT
                    memo[data[i]] = stack[-1]
                    i += 1
                elif op == 0x8C and i < n and i + 1 + data[i] <= n:  # SHORT_BINUNICODE
                    j = i + 1 + data[i]
                    try:
                        stack.append(data[i + 1 : j].decode("utf-8", "surrogatepass"))
                    except UnicodeDecodeError:
                        _bad_utf8(self, r, j, ops)
                    i = j
                elif op == 0x4B and i < n:  # BININT1
                    stack.append(data[i])
                    i += 1
                elif op == 0x28:  # MARK
                    metastack.append(stack)
                    stack = self.stack = []
                elif op == 0x68 and i < n and data[i] in memo:  # BINGET
                    stack.append(memo[data[i]])
                    i += 1
                elif op in _INLINE_CONSTANTS:  # NONE, NEWTRUE, NEWFALSE, EMPTY_TUPLE
                    stack.append(_INLINE_CONSTANTS[op])
                elif op in _INLINE_TUPLES and len(stack) >= _INLINE_TUPLES[op]:  # TUPLE1-3
                    k = _INLINE_TUPLES[op]
                    items = tuple(stack[-k:])
                    del stack[-k:]
                    stack.append(items)
                elif (  # BINUNICODE, inline size and complete
                    op == 0x58
                    and i + 4 <= n
                    and (j := i + 4 + unpack_from("<I", data, i)[0]) - i - 4 <= MAX_INLINE_BYTES
                    and j <= n
                ):
                    try:
                        stack.append(data[i + 4 : j].decode("utf-8", "surrogatepass"))
                    except UnicodeDecodeError:
                        _bad_utf8(self, r, j, ops)
                    i = j
                elif op == 0x4A and i + 4 <= n:  # BININT
                    stack.append(unpack_from("<i", data, i)[0])
                    i += 4
                elif op == 0x4D and i + 2 <= n:  # BININT2
                    stack.append(unpack_from("<H", data, i)[0])
                    i += 2
                elif op == 0x5D:  # EMPTY_LIST
                    stack.append(ListV())
                elif op == 0x7D:  # EMPTY_DICT
                    stack.append(DictV())
                elif op == 0x74 and metastack:  # TUPLE
                    items = tuple(stack)
                    stack = self.stack = metastack.pop()
                    stack.append(items)
                elif op == 0x43 and i < n and i + 1 + data[i] <= n:  # SHORT_BINBYTES
                    j = i + 1 + data[i]
                    stack.append(data[i + 1 : j])
                    i = j
                else:
                    fast = False
                if fast:
                    if i >= flim:
                        self._after_op(base + at, base + i)
                        flim = no_frame if self.frame_end is None else self.frame_end - base
                    continue
                # Everything else (and the unusual forms above): the opcode's handler.
                handler = handlers[op]
                offset = base + at
                r.i = i
                if handler is None:
                    ops -= 1
                    if ops == 0:
                        res.first_opcode_failed = True
                    raise PickleBreak(f"invalid load key {bytes([op])!r}")
                done = self._call(handler, offset, ops == 1)
                i = r.i
                stack = self.stack
                if self.frame_end is not None:
                    self._after_op(offset, base + i)
                flim = no_frame if self.frame_end is None else self.frame_end - base
                if self.pending_array is not None:
                    wrapper, self.pending_array = self.pending_array, None
                    _joblib_array(self, wrapper)
                    i = r.i
                    stack = self.stack
                if done:
                    res.stopped = True
                    return
        finally:
            res.opcodes += ops


def _bad_utf8(m: _Machine, r: _MemReader, end: int, ops: int) -> None:
    """What `_unicode_n` does on undecodable bytes (raised from `_Machine._run_memory`)."""
    r.i = end
    if ops == 1:
        m.res.first_opcode_failed = True
    raise PickleBreak("invalid UTF-8 in unicode argument") from None


# Opcodes `_Machine._run_memory` runs inline: constants pushed as they are, TUPLE1-3 sizes.
_INLINE_CONSTANTS: dict[int, Any] = {0x4E: None, 0x88: True, 0x89: False, 0x29: ()}
_INLINE_TUPLES = {0x85: 1, 0x86: 2, 0x87: 3}


_SCALARS = frozenset({str, int, float, bool, bytes, type(None)})


def _resolve(module: str, name: str) -> str | None:
    """The canonical name of a global (None: the module name cannot be imported)."""
    if not all(part.isidentifier() for part in module.split(".")):
        return None
    return canonical_name(module, name)


_resolve_cached = functools.lru_cache(maxsize=4096)(_resolve)


def _qualify(module: str, name: str) -> str | None:
    """`_resolve`, remembered for short names: the same few globals recur in every file."""
    if len(module) + len(name) <= 256:
        return _resolve_cached(module, name)
    return _resolve(module, name)


class _LimitReached(Exception):
    pass


def _unfold(value: Any) -> Any:
    if isinstance(value, Instance) and value.folded is not None:
        return value.folded
    return value


def _describe(value: Any) -> str:
    if isinstance(value, GlobalRef):
        return value.qualified
    if isinstance(value, Instance):
        inner = _describe(value.callee) if value.callee is not None else "a computed name"
        return f"the result of {inner}(...) at byte {value.offset}"
    if isinstance(value, str):
        return repr(value[:80])
    if value is MARK:
        return "a MARK"
    return type(value).__name__.lower().rstrip("v") or "value"


# -- opcode handlers: each returns True on STOP ----------------------------------------------------
_PLAIN_DECIMAL = re.compile(r"[+-]?(0|[1-9][0-9]*)")
_C_OCTAL = re.compile(r"[+-]?0[0-7]+")


def _strtol(text: str) -> int | None:
    """C's strtol(s, &end, 0) on the whole string: decimal, 0x hex or 0-prefixed octal."""
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("+-")
    if text[:1] in "+-" and body[:1] in "+-":
        return None
    try:
        if body[:2].lower() == "0x":
            return sign * int(body[2:], 16) if body[2:] and "_" not in body else None
        if _C_OCTAL.fullmatch(body):
            return sign * int(body, 8)
        return sign * int(body, 10) if body.isdigit() else None
    except ValueError:
        return None


def _int_line(m: _Machine, raw: bytes, offset: int, *, c_strtol: bool) -> int:
    """INT (C: strtol base 0) or LONG (C: int(s, 0)); anything pickletools reads differently is noted."""
    text = raw.decode("ascii", "replace").strip()
    if c_strtol:
        value = _strtol(text)
        if value is None:
            try:
                value = int(text, 0)  # the C loader falls back to PyLong_FromString(s, 0)
            except ValueError:
                raise PickleBreak(f"invalid literal for int: {text[:40]!r}") from None
    else:
        try:
            value = int(text, 0)
        except ValueError:
            raise PickleBreak(f"invalid literal for int: {text[:40]!r}") from None
    if not _PLAIN_DECIMAL.fullmatch(text):
        m.differential(offset, f"integer literal {text[:40]!r} is read differently by pickletools")
    return value


def op_mark(m: _Machine, offset: int) -> bool:
    m.metastack.append(m.stack)
    m.stack = []
    return False


def op_stop(m: _Machine, offset: int) -> bool:
    value = m.pop()
    m.use(value, _REF)
    m.res.value = value
    return True


def op_pop(m: _Machine, offset: int) -> bool:
    if m.stack:
        m.use(m.stack.pop(), _REF)
    else:
        m.pop_mark()
    return False


def op_pop_mark(m: _Machine, offset: int) -> bool:
    for item in m.pop_mark():
        m.use(item, _REF)
    return False


def op_dup(m: _Machine, offset: int) -> bool:
    m.stack.append(m.top())
    return False


def op_float(m: _Machine, offset: int) -> bool:
    raw = m.r.readline()
    try:
        m.stack.append(float(raw))
    except ValueError:
        raise PickleBreak("invalid FLOAT literal") from None
    return False


def op_int(m: _Machine, offset: int) -> bool:
    raw = m.r.readline()
    if raw == b"00":
        m.stack.append(False)
    elif raw == b"01":
        m.stack.append(True)
    else:
        m.stack.append(_int_line(m, raw, offset, c_strtol=True))
    return False


def op_binint(m: _Machine, offset: int) -> bool:
    m.stack.append(struct.unpack("<i", m.r.read(4))[0])
    return False


def op_binint1(m: _Machine, offset: int) -> bool:
    m.stack.append(m.r.byte())
    return False


def op_binint2(m: _Machine, offset: int) -> bool:
    m.stack.append(struct.unpack("<H", m.r.read(2))[0])
    return False


def op_long(m: _Machine, offset: int) -> bool:
    raw = m.r.readline()
    if raw.endswith(b"L"):
        raw = raw[:-1]
    m.stack.append(_int_line(m, raw, offset, c_strtol=False))
    return False


def _long_n(m: _Machine, size_fmt: str, size_len: int) -> bool:
    n = struct.unpack(size_fmt, m.r.read(size_len))[0]
    if n < 0:
        raise PickleBreak("LONG pickle has negative byte count")
    data = m.r.read_or_skip(n)
    m.stack.append(int.from_bytes(data, "little", signed=True) if isinstance(data, bytes) else data)
    return False


def op_long1(m: _Machine, offset: int) -> bool:
    return _long_n(m, "<B", 1)


def op_long4(m: _Machine, offset: int) -> bool:
    return _long_n(m, "<i", 4)


def op_none(m: _Machine, offset: int) -> bool:
    m.stack.append(None)
    return False


def op_true(m: _Machine, offset: int) -> bool:
    m.stack.append(True)
    return False


def op_false(m: _Machine, offset: int) -> bool:
    m.stack.append(False)
    return False


def op_binfloat(m: _Machine, offset: int) -> bool:
    m.stack.append(struct.unpack(">d", m.r.read(8))[0])
    return False


def op_persid(m: _Machine, offset: int) -> bool:
    raw = m.r.readline()
    try:
        pid = raw.decode("ascii")
    except UnicodeDecodeError:
        raise PickleBreak("persistent IDs in protocol 0 must be ASCII strings") from None
    m.res.persistent_ids.append(pid)
    m.stack.append(Opaque("persistent object"))
    return False


def op_binpersid(m: _Machine, offset: int) -> bool:
    pid = m.pop()
    m.use(pid, _REF)
    if len(m.res.persistent_ids) < 1_000_000:
        m.res.persistent_ids.append(pid)
    m.stack.append(Opaque("persistent object"))
    return False


def op_reduce(m: _Machine, offset: int) -> bool:
    args = m.pop()
    callee = m.pop()
    m.stack.append(m.call(callee, args, offset, "REDUCE"))
    return False


def op_string(m: _Machine, offset: int) -> bool:
    raw = m.r.readline()
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[:1] in (b"'", b'"'):
        body = raw[1:-1]
    else:
        raise PickleBreak("the STRING opcode argument must be quoted")
    try:
        decoded = codecs.escape_decode(body)[0]
    except ValueError:
        raise PickleBreak("invalid escape in STRING") from None
    _push_bytes_as_str(m, decoded, offset)
    return False


def _push_bytes_as_str(m: _Machine, data: bytes | Opaque, offset: int) -> None:
    """Protocol 0-2 strings: the loader's `encoding` decides (ASCII by default, UTF-8 in torch)."""
    if not isinstance(data, bytes):
        m.stack.append(data)
        return
    if data.isascii():
        m.stack.append(data.decode("ascii"))
        return
    # pickle.load raises here, torch.load (utf-8) and numpy (latin-1) load it: a differential.
    m.differential(offset, "non-ASCII protocol-0/1 string: loaders with other encodings differ")
    try:
        m.stack.append(data.decode("utf-8"))
    except UnicodeDecodeError:
        m.stack.append(data.decode("latin-1"))


def op_binstring(m: _Machine, offset: int) -> bool:
    n = struct.unpack("<i", m.r.read(4))[0]
    if n < 0:
        raise PickleBreak("BINSTRING pickle has negative byte count")
    _push_bytes_as_str(m, m.r.read_or_skip(n), offset)
    return False


def op_short_binstring(m: _Machine, offset: int) -> bool:
    _push_bytes_as_str(m, m.r.read(m.r.byte()), offset)
    return False


def op_unicode(m: _Machine, offset: int) -> bool:
    raw = m.r.readline()
    try:
        m.stack.append(raw.decode("raw-unicode-escape"))
    except UnicodeDecodeError:
        raise PickleBreak("invalid UNICODE argument") from None
    return False


def _unicode_n(m: _Machine, fmt: str, size: int) -> bool:
    n = struct.unpack(fmt, m.r.read(size))[0]
    data = m.r.read_or_skip(n)
    if isinstance(data, bytes):
        try:
            m.stack.append(data.decode("utf-8", "surrogatepass"))
        except UnicodeDecodeError:
            raise PickleBreak("invalid UTF-8 in unicode argument") from None
    else:
        m.stack.append(data)
    return False


def op_binunicode(m: _Machine, offset: int) -> bool:
    return _unicode_n(m, "<I", 4)


def op_short_binunicode(m: _Machine, offset: int) -> bool:
    return _unicode_n(m, "<B", 1)


def op_binunicode8(m: _Machine, offset: int) -> bool:
    return _unicode_n(m, "<Q", 8)


def _bytes_n(m: _Machine, fmt: str, size: int) -> bool:
    n = struct.unpack(fmt, m.r.read(size))[0]
    m.stack.append(m.r.read_or_skip(n))
    return False


def op_binbytes(m: _Machine, offset: int) -> bool:
    return _bytes_n(m, "<I", 4)


def op_short_binbytes(m: _Machine, offset: int) -> bool:
    return _bytes_n(m, "<B", 1)


def op_binbytes8(m: _Machine, offset: int) -> bool:
    return _bytes_n(m, "<Q", 8)


def op_bytearray8(m: _Machine, offset: int) -> bool:
    return _bytes_n(m, "<Q", 8)


def op_next_buffer(m: _Machine, offset: int) -> bool:
    # Out-of-band buffers come from the caller; without them the loader raises.
    m.stack.append(Opaque("out-of-band buffer"))
    return False


def op_readonly_buffer(m: _Machine, offset: int) -> bool:
    m.top()
    return False


def op_append(m: _Machine, offset: int) -> bool:
    value = m.pop()
    target = m.top()
    _extend(m, target, [value], offset, "APPEND")
    return False


def op_appends(m: _Machine, offset: int) -> bool:
    items = m.pop_mark()
    target = m.top()
    _extend(m, target, items, offset, "APPENDS")
    return False


def _extend(m: _Machine, target: Any, items: list[Any], offset: int, how: str) -> None:
    for item in items:
        if type(item) not in _SCALARS:
            m.use(item, _REF)
    if isinstance(target, ListV):
        target.add(items)
    elif isinstance(target, Instance) and isinstance(target.callee, GlobalRef):
        # list subclasses of an allowed class: its own append/extend runs
        return
    else:
        m.res.computed_calls.append((offset, f"{how} calls .append/.extend of {_describe(target)}"))


def op_build(m: _Machine, offset: int) -> bool:
    state = m.pop()
    inst = m.top()
    m.use(state, _REF)
    for part in state if isinstance(state, tuple) else (state,):
        # (dict keys and values were recorded when they were set)
        if isinstance(part, DictV) and part.dunder:
            m.res.hijacks.append((offset, f"BUILD sets {', '.join(sorted(set(part.dunder)))}"))
    if isinstance(inst, Instance):
        inst.state = state
        callee = inst.callee.qualified if isinstance(inst.callee, GlobalRef) else ""
        if callee in CALLS_ITS_ARGUMENT and isinstance(state, tuple) and state:
            m.use(state[0], _CALL)
        if isinstance(inst.callee, GlobalRef) and inst.callee.qualified in JOBLIB_WRAPPERS:
            m.pending_array = inst
    if isinstance(inst, GlobalRef):
        m.res.hijacks.append((offset, f"BUILD modifies {inst.qualified} itself (not an instance)"))
    elif not isinstance(inst, Instance):
        m.res.computed_calls.append((offset, f"BUILD on {_describe(inst)}"))
    return False


JOBLIB_WRAPPERS = frozenset({"joblib.numpy_pickle.NumpyArrayWrapper"})


def _state_dict(state: Any) -> dict[str, Any]:
    if isinstance(state, DictV):
        return {k: v for k, v in state.items if isinstance(k, str)}
    return {}


def _dtype_layout(dtype: Any) -> tuple[int, bool]:
    """(itemsize, has_objects) of a pickled numpy.dtype, as far as the pickle tells."""
    if not (isinstance(dtype, Instance) and isinstance(dtype.callee, GlobalRef)):
        raise PickleBreak("joblib array dtype is not a numpy dtype")
    if not dtype.callee.qualified.endswith(".dtype") or not dtype.args:
        raise PickleBreak(f"joblib array dtype built by {dtype.callee.qualified}")
    code = dtype.args[0]
    if not isinstance(code, str) or not code:
        raise PickleBreak("joblib array dtype code is not a string")
    state = dtype.state if isinstance(dtype.state, tuple) else ()
    has_objects = code[0] == "O"
    if len(state) > 4 and isinstance(state[4], DictV):
        for _, field_spec in state[4].items:
            parts = field_spec if isinstance(field_spec, tuple) else ()
            if parts and _dtype_layout(parts[0])[1]:
                has_objects = True
    elsize = state[5] if len(state) > 5 and isinstance(state[5], int) else -1
    if elsize > 0:
        return elsize, has_objects
    digits = "".join(ch for ch in code[1:] if ch.isdigit())
    if not digits:
        raise PickleBreak(f"joblib array dtype {code!r} has no size")
    return int(digits), has_objects


def _joblib_array(m: _Machine, wrapper: Instance) -> None:
    """joblib writes array bytes (or a nested pickle of objects) right after the wrapper's BUILD."""
    state = _state_dict(wrapper.state)
    shape = state.get("shape")
    if not isinstance(shape, tuple) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise PickleBreak("joblib array wrapper without a valid shape")
    itemsize, has_objects = _dtype_layout(state.get("dtype"))
    if has_objects:
        # A nested pickle that joblib loads with a fresh unpickler: analyse it the same way.
        _Machine(m.r, m.allowlist, m.res, m.max_ops).run()
        m.res.stopped = False
        return
    if state.get("numpy_array_alignment_bytes") is not None:
        padding = m.r.byte()
        m.r.read_or_skip(padding)
    count = 1
    for dim in shape:
        count *= dim
    m.r.read_or_skip(count * itemsize)


def op_global(m: _Machine, offset: int) -> bool:
    module = _decode_utf8(m.r.readline(), "GLOBAL module name")
    name = _decode_utf8(m.r.readline(), "GLOBAL name")
    m.stack.append(m.make_global(module, name, offset, "GLOBAL"))
    return False


def op_stack_global(m: _Machine, offset: int) -> bool:
    name = m.pop()
    module = m.pop()
    if isinstance(module, GlobalRef) or isinstance(name, GlobalRef):
        raise PickleBreak("STACK_GLOBAL requires str")
    m.stack.append(m.make_global(module, name, offset, "STACK_GLOBAL"))
    return False


def op_dict(m: _Machine, offset: int) -> bool:
    items = m.pop_mark()
    if len(items) % 2:
        raise PickleBreak("odd number of items for DICT")
    d = DictV()
    for i in range(0, len(items), 2):
        m.use(items[i], _REF)
        m.use(items[i + 1], _REF)
        d.set(items[i], items[i + 1])
    m.stack.append(d)
    return False


def op_empty_dict(m: _Machine, offset: int) -> bool:
    m.stack.append(DictV())
    return False


def op_empty_list(m: _Machine, offset: int) -> bool:
    m.stack.append(ListV())
    return False


def op_empty_tuple(m: _Machine, offset: int) -> bool:
    m.stack.append(())
    return False


def op_empty_set(m: _Machine, offset: int) -> bool:
    m.stack.append(SetV())
    return False


def op_list(m: _Machine, offset: int) -> bool:
    value = ListV(m.pop_mark())  # pop_mark() replaces m.stack: evaluate first
    m.stack.append(value)
    return False


def op_tuple(m: _Machine, offset: int) -> bool:
    value = tuple(m.pop_mark())  # pop_mark() replaces m.stack: evaluate first
    m.stack.append(value)
    return False


def _tuple_n(m: _Machine, n: int) -> bool:
    if len(m.stack) < n:
        raise PickleBreak("unpickling stack underflow")
    items = tuple(m.stack[-n:])
    del m.stack[-n:]
    m.stack.append(items)
    return False


def op_tuple1(m: _Machine, offset: int) -> bool:
    return _tuple_n(m, 1)


def op_tuple2(m: _Machine, offset: int) -> bool:
    return _tuple_n(m, 2)


def op_tuple3(m: _Machine, offset: int) -> bool:
    return _tuple_n(m, 3)


def op_frozenset(m: _Machine, offset: int) -> bool:
    value = SetV(m.pop_mark())  # pop_mark() replaces m.stack: evaluate first
    m.stack.append(value)
    return False


def op_additems(m: _Machine, offset: int) -> bool:
    items = m.pop_mark()
    target = m.top()
    for item in items:
        m.use(item, _REF)
    if isinstance(target, SetV):
        target.add(items)
    elif not (isinstance(target, Instance) and isinstance(target.callee, GlobalRef)):
        m.res.computed_calls.append((offset, f"ADDITEMS calls .add of {_describe(target)}"))
    return False


def op_setitem(m: _Machine, offset: int) -> bool:
    value = m.pop()
    key = m.pop()
    _setitems(m, m.top(), [(key, value)], offset, "SETITEM")
    return False


def op_setitems(m: _Machine, offset: int) -> bool:
    items = m.pop_mark()
    if len(items) % 2:
        raise PickleBreak("odd number of items for SETITEMS")
    target = m.top()
    if type(target) is DictV:
        # The common case (a dict being filled), without a pair list and a call per item.
        scalars = _SCALARS
        for item in items:  # keys and values, in stream order
            if type(item) not in scalars:
                m.use(item, _REF)
        for key in items[::2]:
            if type(key) is str and key[:2] == "__" and key[-2:] == "__":
                target.dunder.append(key)
        room = MAX_KEPT_ITEMS - len(target.items)
        if room > 0:
            target.items.extend(zip(items[: 2 * room : 2], items[1 : 2 * room : 2], strict=True))
        target.count += len(items) // 2
        return False
    pairs = [(items[i], items[i + 1]) for i in range(0, len(items), 2)]
    _setitems(m, target, pairs, offset, "SETITEMS")
    return False


def _setitems(
    m: _Machine, target: Any, pairs: list[tuple[Any, Any]], offset: int, how: str
) -> None:
    is_dict = isinstance(target, DictV)
    for key, value in pairs:
        if type(key) not in _SCALARS:
            m.use(key, _REF)
        if type(value) not in _SCALARS:
            m.use(value, _REF)
        if is_dict:
            target.set(key, value)
    if isinstance(target, DictV) or (
        isinstance(target, Instance) and isinstance(target.callee, GlobalRef)
    ):
        return
    m.res.computed_calls.append((offset, f"{how} calls __setitem__ of {_describe(target)}"))


def op_get(m: _Machine, offset: int) -> bool:
    idx = _memo_index(m.r.readline())
    return _get(m, idx)


def op_binget(m: _Machine, offset: int) -> bool:
    return _get(m, m.r.byte())


def op_long_binget(m: _Machine, offset: int) -> bool:
    return _get(m, struct.unpack("<I", m.r.read(4))[0])


def _memo_index(raw: bytes) -> int:
    # GET/PUT: the C loader uses PyLong_FromString(s, NULL, 10) (so "00" and "+1" are valid).
    try:
        return int(raw.decode("ascii"), 10)
    except (UnicodeDecodeError, ValueError):
        raise PickleBreak("invalid memo index") from None


def _get(m: _Machine, idx: int) -> bool:
    if idx not in m.memo:
        raise PickleBreak(f"memo value not found at index {idx}")
    m.stack.append(m.memo[idx])
    return False


def op_put(m: _Machine, offset: int) -> bool:
    idx = _memo_index(m.r.readline())
    if idx < 0:
        raise PickleBreak("negative PUT argument")
    m.memo[idx] = m.top()
    return False


def op_binput(m: _Machine, offset: int) -> bool:
    m.memo[m.r.byte()] = m.top()
    return False


def op_long_binput(m: _Machine, offset: int) -> bool:
    idx = struct.unpack("<I", m.r.read(4))[0]
    m.memo[idx] = m.top()
    return False


def op_memoize(m: _Machine, offset: int) -> bool:
    m.memo[len(m.memo)] = m.top()
    return False


def op_inst(m: _Machine, offset: int) -> bool:
    module = _decode_utf8(m.r.readline(), "INST module name")
    name = _decode_utf8(m.r.readline(), "INST name")
    args = tuple(m.pop_mark())
    cls = m.make_global(module, name, offset, "INST")
    # INST calls the class (or any callable) with the marked arguments.
    m.stack.append(m.call(cls, args, offset, "INST"))
    return False


def op_obj(m: _Machine, offset: int) -> bool:
    items = m.pop_mark()
    if not items:
        raise PickleBreak("OBJ without a class")
    cls, args = items[0], tuple(items[1:])
    m.stack.append(m.call(cls, args, offset, "OBJ"))
    return False


def op_newobj(m: _Machine, offset: int) -> bool:
    args = m.pop()
    cls = m.pop()
    m.use(args, _REF)
    m.stack.append(m.instantiate(cls, offset, "NEWOBJ"))
    return False


def op_newobj_ex(m: _Machine, offset: int) -> bool:
    kwargs = m.pop()
    args = m.pop()
    cls = m.pop()
    m.use(args, _REF)
    m.use(kwargs, _REF)
    m.stack.append(m.instantiate(cls, offset, "NEWOBJ_EX"))
    return False


def _ext(m: _Machine, offset: int, code: int) -> bool:
    if code <= 0:
        raise PickleBreak("EXT specifies code <= 0")
    m.res.ext_codes.append((offset, code))
    m.stack.append(Instance(None, offset))
    return False


def op_ext1(m: _Machine, offset: int) -> bool:
    return _ext(m, offset, m.r.byte())


def op_ext2(m: _Machine, offset: int) -> bool:
    return _ext(m, offset, struct.unpack("<H", m.r.read(2))[0])


def op_ext4(m: _Machine, offset: int) -> bool:
    return _ext(m, offset, struct.unpack("<i", m.r.read(4))[0])


def op_proto(m: _Machine, offset: int) -> bool:
    proto = m.r.byte()
    if proto > HIGHEST_PROTOCOL:
        raise PickleBreak(f"unsupported pickle protocol: {proto}")
    if offset != m.start:
        m.differential(offset, f"PROTO {proto} in the middle of the stream")
    m.proto = proto
    m.res.protocol = proto
    return False


def op_frame(m: _Machine, offset: int) -> bool:
    length = struct.unpack("<Q", m.r.read(8))[0]
    here = m.r.pos()
    if m.frame_end is not None and here < m.frame_end:
        m.differential(offset, "a new FRAME begins before the current frame ends")
    if here + length > m.r.size:
        raise PickleBreak("pickle data was truncated (frame longer than the stream)")
    m.frame_end = here + length
    return False


_HANDLERS = {
    ord("("): op_mark, ord("."): op_stop, ord("0"): op_pop, ord("1"): op_pop_mark,
    ord("2"): op_dup, ord("F"): op_float, ord("I"): op_int, ord("J"): op_binint,
    ord("K"): op_binint1, ord("L"): op_long, ord("M"): op_binint2, ord("N"): op_none,
    ord("P"): op_persid, ord("Q"): op_binpersid, ord("R"): op_reduce, ord("S"): op_string,
    ord("T"): op_binstring, ord("U"): op_short_binstring, ord("V"): op_unicode,
    ord("X"): op_binunicode, ord("a"): op_append, ord("b"): op_build, ord("c"): op_global,
    ord("d"): op_dict, ord("}"): op_empty_dict, ord("e"): op_appends, ord("g"): op_get,
    ord("h"): op_binget, ord("i"): op_inst, ord("j"): op_long_binget, ord("l"): op_list,
    ord("]"): op_empty_list, ord("o"): op_obj, ord("p"): op_put, ord("q"): op_binput,
    ord("r"): op_long_binput, ord("s"): op_setitem, ord("t"): op_tuple, ord(")"): op_empty_tuple,
    ord("u"): op_setitems, ord("G"): op_binfloat,
    0x80: op_proto, 0x81: op_newobj, 0x82: op_ext1, 0x83: op_ext2, 0x84: op_ext4,
    0x85: op_tuple1, 0x86: op_tuple2, 0x87: op_tuple3, 0x88: op_true, 0x89: op_false,
    0x8A: op_long1, 0x8B: op_long4,
    ord("B"): op_binbytes, ord("C"): op_short_binbytes,
    0x8C: op_short_binunicode, 0x8D: op_binunicode8, 0x8E: op_binbytes8, 0x8F: op_empty_set,
    0x90: op_additems, 0x91: op_frozenset, 0x92: op_newobj_ex, 0x93: op_stack_global,
    0x94: op_memoize, 0x95: op_frame,
    0x96: op_bytearray8, 0x97: op_next_buffer, 0x98: op_readonly_buffer,
}  # fmt: skip

PICKLE_OPCODE_BYTES = frozenset(_HANDLERS)
# Opcodes that need a stack item or a mark whatever their argument: as a stream's first opcode
# each one makes every unpickler stop at once, before any call. (NEXT_BUFFER is not one: it
# succeeds when the loader is given out-of-band buffers.)
FAILS_AS_FIRST_OPCODE = frozenset(b"012abdelopqrstuQR.") | {
    0x81, 0x85, 0x86, 0x87, 0x90, 0x91, 0x92, 0x93, 0x94, 0x98,
}  # fmt: skip
# First bytes a loader could get anywhere with (what the sniffers look for).
PICKLE_START_BYTES = PICKLE_OPCODE_BYTES - FAILS_AS_FIRST_OPCODE
_HANDLER_TABLE: list[Any] = [_HANDLERS.get(code) for code in range(256)]


def _analyze(reader: _Reader | _MemReader, allowlist: Allowlist, max_ops: int) -> PickleAnalysis:
    result = PickleAnalysis(start=reader.pos())
    machine = _Machine(reader, allowlist, result, max_ops)
    try:
        machine.run()
    except PickleBreak as exc:
        result.error = str(exc)
    except _LimitReached as exc:
        result.error = f"limit: {exc}"
    except (struct.error, OverflowError, RecursionError, MemoryError) as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    # Whatever the loader had imported when it stopped counts, used or not.
    for value in [*machine.stack, *(v for level in machine.metastack for v in level)]:
        if isinstance(value, GlobalRef) and value.qualified not in result.globals:
            machine.use(value, _REF)
    for value in machine.memo.values():
        if isinstance(value, GlobalRef) and value.qualified not in result.globals:
            machine.use(value, _REF)
    result.end = reader.pos()
    return result


def analyze_one(
    f: IO[bytes], size: int, allowlist: Allowlist, *, max_ops: int = 50_000_000
) -> PickleAnalysis:
    """Analyse the pickle that starts at the stream's current position (up to STOP or a break).

    The stream is left just after what was read.
    """
    reader = _reader_for(f, size)
    result = _analyze(reader, allowlist, max_ops)
    f.seek(result.end)
    return result


def looks_like_pickle(head: bytes, size: int, allowlist: Allowlist) -> bool:
    """Could a loader get anywhere with these bytes as a pickle? (`head` is the file's start.)

    Text that happens to start with an opcode character breaks at once without calling anything;
    such fragments are not pickles. Anything that calls, names a dangerous global, declares a
    protocol, reaches STOP or is still going when the head runs out is.
    """
    if not head or head[0] not in PICKLE_START_BYTES:
        return False
    import io

    probe = analyze_one(io.BytesIO(head), len(head), allowlist, max_ops=100_000)
    return is_pickle_start(probe, len(head) < size, allowlist)


def is_pickle_start(probe: PickleAnalysis, more_follows: bool, allowlist: Allowlist) -> bool:
    """The sniffing verdict on the analysis of a stream's first pickle (see looks_like_pickle)."""
    if probe.first_opcode_failed:
        return False
    if (
        probe.stopped
        or probe.protocol > 0
        or probe.calls
        or probe.ext_codes
        or probe.computed_calls
    ):
        return True
    error = probe.error or ""
    if error.startswith("limit:") or ("truncated" in error and more_follows):
        return True
    return any(allowlist.danger_of(g.name) is not None for g in probe.globals.values())


def iter_pickles(
    f: IO[bytes], size: int, allowlist: Allowlist, *, max_ops: int = 50_000_000
) -> Iterator[PickleAnalysis]:
    """Every pickle a loader that calls load() repeatedly would read, in order."""
    reader = _reader_for(f, size)
    first = True
    try:
        while reader.pos() < size:
            analysis = _analyze(reader, allowlist, max_ops)
            if not first and not _worth_reporting(analysis):
                return  # trailing non-pickle data (raw tensor storage after legacy torch pickles)
            yield analysis
            first = False
            if not analysis.stopped:
                return
    finally:
        f.seek(reader.pos())


def _worth_reporting(a: PickleAnalysis) -> bool:
    if a.first_opcode_failed:
        return False
    return a.stopped or a.protocol > 0 or bool(a.globals) or a.calls > 0 or bool(a.ext_codes)


def findings_for(
    analysis: PickleAnalysis,
    allowlist: Allowlist,
    location: Location,
    *,
    index: int = 0,
    base_offset: int = 0,
) -> list[Finding]:
    """Turn one analysis into findings: one per distinct global and per structural problem."""
    out: list[Finding] = []
    where = f"pickle #{index + 1}" if index else "pickle"
    nested_names = {n.loader for n in analysis.nested} - analysis.nested_unresolved
    for g in analysis.globals.values():
        if g.name in CALLS_ITS_ARGUMENT:
            continue  # its callable argument is recorded as called and judged itself
        if g.name in nested_names:
            out.append(
                rules.PICKLE_NESTED.finding(
                    location.at_offset(base_offset + g.offset),
                    f"{where} deserialises embedded bytes with {g.name}; the embedded content "
                    "is scanned as its own member",
                    {"global": g.name, "count": g.count, "pickle_index": index},
                )
            )
            continue
        verdict = allowlist.judge(g.name, g.use)
        if verdict.allowed:
            continue
        how = {_CALL: "called", _NEW: "instantiated", _REF: "referenced"}[g.use]
        evidence = {
            "global": g.name,
            "as_written": g.raw,
            "use": g.use.label,
            "count": g.count,
            "pickle_index": index,
        }
        loc = location.at_offset(base_offset + g.offset)
        if verdict.danger is not None:
            d = verdict.danger
            evidence |= {"category": d.category, "matched": d.pattern}
            msg = f"{where} {how} {g.name}: {d.why}"
            if g.name != g.raw:
                msg += f" (written as {g.raw})"
            if g.use is _REF:
                msg += "; stored as a value, it runs when the object is used or rebuilt"
            out.append(rules.PICKLE_EXEC.finding(loc, msg, evidence, severity=d.severity))
        else:
            msg = f"{where} {how} {g.name}, which is not on the allowlist"
            if g.name in allowlist.safe or any(
                g.name.startswith(p) for p, _ in allowlist.safe_prefixes
            ):
                msg += f" for use '{g.use.label}'"
            out.append(rules.PICKLE_UNKNOWN.finding(loc, msg, evidence))
    suspicious = bool(out and any(f.rule_id != rules.PICKLE_NESTED.rule_id for f in out)) or bool(
        analysis.computed_calls or analysis.hijacks or analysis.ext_codes
    )
    for offset, what in analysis.computed_calls[:20]:
        out.append(
            rules.PICKLE_COMPUTED_CALL.finding(
                location.at_offset(base_offset + offset),
                f"{where}: {what}",
                {"pickle_index": index, "total": len(analysis.computed_calls)},
            )
        )
    for offset, what in analysis.hijacks[:20]:
        out.append(
            rules.PICKLE_STATE_HIJACK.finding(
                location.at_offset(base_offset + offset),
                f"{where}: {what}",
                {"pickle_index": index},
            )
        )
    if analysis.ext_codes:
        offset, code = analysis.ext_codes[0]
        out.append(
            rules.PICKLE_EXT.finding(
                location.at_offset(base_offset + offset),
                f"{where} uses extension code {code} ({len(analysis.ext_codes)} EXT opcodes)",
                {"codes": sorted({c for _, c in analysis.ext_codes})[:20]},
            )
        )
    for offset, what in analysis.differentials[:20]:
        # Analysed the C unpickler's way, a quirk alone hides nothing; beside anything
        # suspicious it is a sign of a file crafted to mislead other tools.
        out.append(
            rules.PICKLE_DIFFERENTIAL.finding(
                location.at_offset(base_offset + offset),
                f"{where}: {what}",
                {"pickle_index": index},
                severity=Severity.HIGH if suspicious else Severity.LOW,
            )
        )
    if analysis.error is not None:
        if analysis.error.startswith("limit:"):
            out.append(
                rules.PICKLE_LIMIT.finding(
                    location.at_offset(base_offset + analysis.end),
                    f"{where}: {analysis.error[7:]}; the rest was not analysed",
                )
            )
        else:
            # Everything up to the break was analysed: a corrupt stream that reached nothing
            # suspicious is a damaged file (medium); beside a payload it is an evasion (high).
            severity = Severity.HIGH if suspicious else Severity.MEDIUM
            out.append(
                rules.PICKLE_MALFORMED.finding(
                    location.at_offset(base_offset + analysis.end),
                    f"{where} breaks after {analysis.opcodes} opcodes: {analysis.error}; "
                    "everything before this point runs when the file is loaded",
                    {"opcodes": analysis.opcodes, "calls_before_break": analysis.calls},
                    severity=severity,
                )
            )
    return out
