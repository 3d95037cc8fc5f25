"""The in-memory opcode loop (inline fast paths) must analyse exactly like the generic loop.

`_Machine._run_memory` runs the common data opcodes inline for speed; `_Machine._run_stream`
calls one handler per opcode. Both are run over the same in-memory reader on the adversarial
corpus, on ordinary pickles and on random and truncated bytes, and every recorded fact must be
the same.
"""

from __future__ import annotations

import pickle
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secmlops.scan.models.allowlist import load_allowlist
from secmlops.scan.models.pickle import (
    PICKLE_OPCODE_BYTES,
    DictV,
    GlobalRef,
    Instance,
    ListV,
    Opaque,
    _analyze,
    _Machine,
    _MemReader,
)
from tests.scan.models import samples

ALLOW = load_allowlist()


def _shape(value: Any, depth: int = 0) -> Any:
    """A comparable rendering of a symbolic value (the machine's objects have no __eq__)."""
    if depth > 6:
        return "..."
    if isinstance(value, GlobalRef):
        return ("G", value.qualified, value.offset)
    if isinstance(value, Instance):
        return ("I", _shape(value.callee, depth + 1), value.offset, _shape(value.state, depth + 1))
    if isinstance(value, Opaque):
        return ("O", value.what, value.offset, value.size)
    if isinstance(value, DictV):
        items = [(_shape(k, depth + 1), _shape(v, depth + 1)) for k, v in value.items]
        return ("D", value.count, tuple(value.dunder), tuple(items))
    if isinstance(value, ListV):
        return (type(value).__name__, value.count, tuple(_shape(v, depth + 1) for v in value.items))
    if isinstance(value, tuple):
        return tuple(_shape(v, depth + 1) for v in value)
    return value


def _generic_run(self: _Machine) -> None:
    self._run_stream(self.r)  # type: ignore[arg-type]  # duck-typed: the reader's methods


def _facts(data: bytes, *, fast: bool) -> list[Any]:
    if fast:
        return _collect(data)
    original = _Machine.run
    _Machine.run = _generic_run  # type: ignore[method-assign]
    try:
        return _collect(data)
    finally:
        _Machine.run = original  # type: ignore[method-assign]


def _collect(data: bytes) -> list[Any]:
    out = []
    reader = _MemReader(data, 0)
    while reader.pos() < len(data):
        a = _analyze(reader, ALLOW, 10_000)
        out.append(
            (
                a.start, a.end, a.opcodes, a.protocol, a.stopped, a.error, a.calls,
                a.first_opcode_failed,
                sorted((g.name, g.raw, int(g.use), g.offset, g.count) for g in a.globals.values()),
                [_shape(p) for p in a.persistent_ids], _shape(a.value), a.differentials,
                a.computed_calls, a.hijacks, a.ext_codes,
                [(n.call_offset, n.loader, n.data, n.offset, n.size) for n in a.nested],
                sorted(a.nested_unresolved),
            )
        )  # fmt: skip
        if not a.stopped:
            break
    return out


def _assert_same(data: bytes) -> None:
    assert _facts(data, fast=True) == _facts(data, fast=False)


def test_corpus_streams_analyse_the_same(tmp_path: Path) -> None:
    checked = 0
    for sample in samples.MALICIOUS + samples.BENIGN:
        data = sample.build(tmp_path / "marker")
        if not data or data[0] not in PICKLE_OPCODE_BYTES:
            continue  # a container: its pickle members are streams like these
        checked += 1
        for cut in (len(data), 1, 2, 3, 5, 9, len(data) // 2, len(data) - 1):
            _assert_same(data[:cut])
    assert checked > 150


OBJECTS: list[Any] = [
    {"a": 1.5, "b": [1, 2, 3], "c": ("x", b"y", None, True, False), "d": {1, 2}},
    [float(i) / 7 for i in range(300)],
    {f"k{i}": (i, -i, 2**40 + i, "é" * (i % 5)) for i in range(300)},
    ["s" * 300, b"b" * 300, bytearray(b"z" * 10), frozenset({1}), 65535, -1, 2**31],
]


@pytest.mark.parametrize("protocol", range(0, pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize("index", range(len(OBJECTS)))
def test_ordinary_pickles_analyse_the_same(protocol: int, index: int) -> None:
    data = pickle.dumps(OBJECTS[index], protocol=protocol)
    _assert_same(data)
    _assert_same(data[: len(data) // 3])


def test_inline_opcodes_at_their_edges() -> None:
    cases = [
        b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00K\x01K\x02\x86.",  # frame ends mid-op
        b"\x80\x04\x95\x02\x00\x00\x00\x00\x00\x00\x00K\x01K\x02\x86.",  # op crosses frame
        b"\x8c\x02\xff\xfe.",  # undecodable SHORT_BINUNICODE
        b"X\x02\x00\x00\x00\xc3(.",  # undecodable BINUNICODE
        b"X" + struct.pack("<I", 70_000) + b"a" * 70_000 + b".",  # BINUNICODE kept opaque
        b"h\x05.",  # BINGET of a missing memo key
        b"\x94.",  # MEMOIZE on an empty stack
        b"q\x01.",  # BINPUT on an empty stack
        b"\x87.",  # TUPLE3 with too few items
        b"t.",  # TUPLE without a MARK
        b"G\x00\x00",  # truncated BINFLOAT
        b"C\x05ab",  # truncated SHORT_BINBYTES
        b"(K\x01K\x02t\x94h\x00h\x00\x86.",  # memo round trip
        b"}(K\x01K\x02U\x05__x__K\x03u.",  # SETITEMS with a dunder key
        b"\x88\x89N)\x85]}\x86\x87.",  # constants and small tuples
    ]
    for data in cases:
        _assert_same(data)


_OPCODE_BYTES = sorted(PICKLE_OPCODE_BYTES)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.one_of(
            st.sampled_from(_OPCODE_BYTES).map(lambda b: bytes([b])),
            st.binary(min_size=1, max_size=9),
        ),
        max_size=60,
    )
)
def test_random_opcode_soup_analyses_the_same(parts: list[bytes]) -> None:
    _assert_same(b"".join(parts))
