"""The sniffers' shortcut: a first byte that no unpickler gets past is not a pickle.

`FAILS_AS_FIRST_OPCODE` lets the pickle sniffer reject such blobs (metadata members such as
PyTorch's `byteorder`, "little", or `.format_version`, "1") without running the analyser. The
shortcut is safe only if every one of these opcodes, as a stream's first, makes both CPython's
unpickler and our analyser stop whatever follows; and the sniffing verdict must not change.
"""

from __future__ import annotations

import io
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secmlops.findings import Location
from secmlops.scan.models.allowlist import load_allowlist
from secmlops.scan.models.engine import Blob
from secmlops.scan.models.formats.pickle_file import PickleScanner
from secmlops.scan.models.pickle import (
    FAILS_AS_FIRST_OPCODE,
    PICKLE_OPCODE_BYTES,
    PICKLE_START_BYTES,
    analyze_one,
    is_pickle_start,
)

ALLOW = load_allowlist()
TAILS = [b"", b".", b"K\x01.", b"(K\x01.", b"\x01\x00\x00\x00.", b"abc\n.", b"\xff" * 12]


def _first_fails(data: bytes) -> bool:
    return analyze_one(io.BytesIO(data), len(data), ALLOW).first_opcode_failed


def test_the_set_is_made_of_opcodes_and_leaves_the_usual_starts() -> None:
    assert FAILS_AS_FIRST_OPCODE <= PICKLE_OPCODE_BYTES
    # Every protocol's ordinary first opcode stays a possible start.
    for protocol in range(6):
        assert pickle.dumps({"a": [1]}, protocol=protocol)[0] in PICKLE_START_BYTES
    assert 0x97 in PICKLE_START_BYTES  # NEXT_BUFFER loads when the loader is given buffers


def test_each_opcode_stops_cpython_and_the_analyser_at_once() -> None:
    for code in sorted(FAILS_AS_FIRST_OPCODE):
        for tail in TAILS:
            data = bytes([code]) + tail
            with pytest.raises(Exception):  # noqa: B017, PT011 - any refusal will do
                pickle.loads(data)
            assert _first_fails(data), data


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(FAILS_AS_FIRST_OPCODE)), st.binary(max_size=64))
def test_any_tail_after_a_failing_first_opcode_fails_first(code: int, tail: bytes) -> None:
    assert _first_fails(bytes([code]) + tail)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=1, max_size=64))
def test_sniff_verdict_equals_the_full_analysis(data: bytes) -> None:
    blob = Blob.from_bytes(data, Location(path="x"), 0, "x")
    expected = data[0] in PICKLE_OPCODE_BYTES and is_pickle_start(
        analyze_one(io.BytesIO(data), len(data), ALLOW), False, ALLOW
    )
    assert PickleScanner().sniff(blob) is expected


def test_torch_metadata_members_are_not_sniffed_as_pickles() -> None:
    for content in (b"little", b"1", b"05611085236196705294"):
        assert not PickleScanner().sniff(Blob.from_bytes(content, Location(path="x"), 1, "m"))
