"""The opcode analyser: globals, uses, computed calls, differentials, breaks — without executing."""

from __future__ import annotations

import collections
import io
import pickle
import struct
from typing import Any

import pytest

from secmlops.findings import Location, Severity
from secmlops.scan.models.allowlist import Use, load_allowlist
from secmlops.scan.models.pickle import findings_for, iter_pickles, looks_like_pickle

ALLOW = load_allowlist()


def analyse(data: bytes) -> list[Any]:
    out = []
    for i, a in enumerate(iter_pickles(io.BytesIO(data), len(data), ALLOW)):
        out.extend(findings_for(a, ALLOW, Location(path="x"), index=i))
    return out


def rules_of(data: bytes) -> set[str]:
    return {f.rule_id for f in analyse(data)}


def sg(module: str, name: str) -> bytes:
    """STACK_GLOBAL of two short unicode strings."""
    return (
        b"\x8c"
        + bytes([len(module)])
        + module.encode()
        + b"\x8c"
        + bytes([len(name)])
        + name.encode()
        + b"\x93"
    )


def call1(module: str, name: str, arg: str, proto: int = 4) -> bytes:
    return (
        b"\x80"
        + bytes([proto])
        + sg(module, name)
        + b"\x8c"
        + bytes([len(arg)])
        + arg.encode()
        + b"\x85R."
    )


class Evil:
    def __reduce__(self) -> tuple[Any, ...]:
        import os

        return (os.system, ("true",))


@pytest.mark.parametrize("protocol", range(6))
def test_reduce_to_os_system_is_critical_in_every_protocol(protocol: int) -> None:
    findings = analyse(pickle.dumps({"model": Evil()}, protocol=protocol))
    exec_findings = [f for f in findings if f.rule_id == "MODEL-PICKLE-EXEC"]
    assert exec_findings, findings
    assert exec_findings[0].severity is Severity.CRITICAL
    assert exec_findings[0].evidence["global"] == "os.system"
    assert exec_findings[0].evidence["use"] == "call"


@pytest.mark.parametrize("protocol", range(6))
def test_plain_data_has_no_findings(protocol: int) -> None:
    data = {
        "a": [1, 2.5, "x", b"y", None, True],
        "b": (1, 2),
        "c": {3, 4},
        "d": collections.OrderedDict(k=1),
    }
    assert analyse(pickle.dumps(data, protocol=protocol)) == []


def test_protocol2_builtin_name_is_mapped() -> None:
    findings = analyse(b"c__builtin__\neval\n(S'1+1'\ntR.")
    assert [f.evidence["global"] for f in findings if f.rule_id == "MODEL-PICKLE-EXEC"] == [
        "builtins.eval"
    ]
    assert findings[0].evidence["as_written"] == "__builtin__.eval"


def test_module_alias_posix_is_os() -> None:
    findings = analyse(call1("posix", "system", "true"))
    assert findings[0].evidence["global"] == "os.system"


def test_dotted_name_through_module_attribute_is_critical() -> None:
    findings = analyse(call1("torch", "serialization.os.system", "true"))
    hits = [f for f in findings if f.rule_id == "MODEL-PICKLE-EXEC"]
    assert hits and hits[0].severity is Severity.CRITICAL
    assert hits[0].evidence["matched"].startswith("os")


def test_names_fetched_from_memo_resolve() -> None:
    # Put "os" and "system" in the memo first, then STACK_GLOBAL from BINGET.
    data = (
        b"\x80\x04\x8c\x02os\x94\x8c\x06system\x94" + b"0" + b"0"  # memoize then pop both
        + b"h\x00h\x01\x93\x8c\x04true\x85R."
    )  # fmt: skip
    assert "MODEL-PICKLE-EXEC" in rules_of(data)


def test_name_computed_at_load_time_is_a_computed_call() -> None:
    # codecs.encode('bf', 'rot13') -> 'os' is folded and resolved; an unknown computation is not.
    rot = (
        b"\x80\x04"
        + sg("_codecs", "encode")
        + b"\x8c\x02bf\x8c\x05rot13\x86R"
        + b"\x8c\x06system\x93\x8c\x04true\x85R."
    )
    findings = analyse(rot)
    assert any(
        f.rule_id == "MODEL-PICKLE-EXEC" and f.evidence["global"] == "os.system" for f in findings
    )
    opaque = (
        b"\x80\x04"
        + sg("collections", "OrderedDict")
        + b")R"
        + b"\x8c\x06system\x93\x8c\x04true\x85R."
    )
    assert "MODEL-PICKLE-COMPUTED-CALL" in rules_of(opaque)


def test_calling_the_result_of_a_call_is_critical() -> None:
    data = b"\x80\x04" + sg("collections", "OrderedDict") + b")R)R."
    findings = analyse(data)
    assert any(
        f.rule_id == "MODEL-PICKLE-COMPUTED-CALL" and f.severity is Severity.CRITICAL
        for f in findings
    )


def test_inst_and_obj_execute() -> None:
    inst = b"(S'true'\nios\nsystem\n."
    assert "MODEL-PICKLE-EXEC" in rules_of(inst)
    obj = b"(cos\nsystem\nS'true'\no."
    assert "MODEL-PICKLE-EXEC" in rules_of(obj)


def test_build_setting_setstate_is_a_hijack() -> None:
    data = (
        b"\x80\x04" + sg("collections", "OrderedDict") + b")\x81"
        + b"}\x8c\x0c__setstate__" + sg("builtins", "print") + b"sb."
    )  # fmt: skip
    assert "MODEL-PICKLE-STATE-HIJACK" in rules_of(data)


def test_build_on_a_global_itself_is_a_hijack() -> None:
    data = b"\x80\x04" + sg("collections", "OrderedDict") + b"N}\x8c\x01x\x8c\x01ys\x86b."
    assert "MODEL-PICKLE-STATE-HIJACK" in rules_of(data)


def test_ext_opcodes_are_flagged() -> None:
    assert "MODEL-PICKLE-EXT" in rules_of(b"\x80\x02\x82\x01)R.")


def test_unknown_global_is_high_and_names_the_use() -> None:
    findings = analyse(call1("mypkg.internal", "do_things", "x"))
    assert findings[0].rule_id == "MODEL-PICKLE-UNKNOWN-GLOBAL"
    assert findings[0].severity is Severity.HIGH
    assert findings[0].evidence["use"] == "call"


def test_user_allow_entry_clears_an_unknown_global() -> None:
    allow = ALLOW.with_user_entries(["mypkg.internal.do_things:call"])
    data = call1("mypkg.internal", "do_things", "x")
    (a,) = list(iter_pickles(io.BytesIO(data), len(data), allow))
    assert findings_for(a, allow, Location(path="x")) == []


def test_user_cannot_allow_a_dangerous_global() -> None:
    allow = ALLOW.with_user_entries(["os.system:call"])
    data = call1("os", "system", "true")
    (a,) = list(iter_pickles(io.BytesIO(data), len(data), allow))
    assert findings_for(a, allow, Location(path="x"))[0].rule_id == "MODEL-PICKLE-EXEC"


def test_reference_without_call_is_still_reported() -> None:
    data = b"\x80\x04}\x8c\x04func" + sg("os", "system") + b"s."
    findings = analyse(data)
    assert findings[0].rule_id == "MODEL-PICKLE-EXEC"
    assert findings[0].evidence["use"] == "ref"


def test_payload_in_second_pickle_is_found() -> None:
    data = pickle.dumps(1, protocol=2) + pickle.dumps(Evil(), protocol=2)
    found = rules_of(data)
    assert {"MODEL-PICKLE-EXEC", "MODEL-PICKLE-MULTIPLE"} <= found or "MODEL-PICKLE-EXEC" in found


def test_stream_broken_after_payload_is_analysed_to_the_break() -> None:
    data = pickle.dumps(Evil(), protocol=2)[:-1] + b"\xff\x00garbage"
    findings = analyse(data)
    assert {f.rule_id for f in findings} >= {"MODEL-PICKLE-EXEC", "MODEL-PICKLE-MALFORMED"}
    broken = next(f for f in findings if f.rule_id == "MODEL-PICKLE-MALFORMED")
    assert broken.severity is Severity.HIGH


def test_truncated_benign_pickle_is_malformed_not_clean() -> None:
    data = pickle.dumps(list(range(1000)), protocol=4)[:-20]
    assert rules_of(data) == {"MODEL-PICKLE-MALFORMED"}


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (b"I0x10\n.", "INT with hex literal (pickletools refuses, C unpickler accepts)"),
        (b"\x80\x02K\x01\x80\x02.", "PROTO in the middle"),
    ],
)
def test_parser_differentials(data: bytes, what: str) -> None:
    assert "MODEL-PICKLE-PARSER-DIFFERENTIAL" in rules_of(data), what


def test_opcode_crossing_a_frame_boundary_is_a_differential() -> None:
    body = b"\x8c\x05hello."
    frame = b"\x95" + struct.pack("<Q", 3)  # the frame ends inside the SHORT_BINUNICODE argument
    assert "MODEL-PICKLE-PARSER-DIFFERENTIAL" in rules_of(b"\x80\x04" + frame + body)


def test_real_frames_are_not_differentials() -> None:
    data = pickle.dumps([list(range(20000)), "x" * 100000], protocol=5)
    assert analyse(data) == []


def test_text_is_not_a_pickle() -> None:
    for text in [b"certifi\nnumpy\npandas\n", b"# README\n", b"(a) first\n", b"N/A\n", b"{}"]:
        assert not looks_like_pickle(text, len(text), ALLOW), text


def test_lone_dangerous_global_then_garbage_is_a_pickle() -> None:
    data = b"cos\nsystem\n\xff"
    assert looks_like_pickle(data, len(data), ALLOW)
    assert "MODEL-PICKLE-EXEC" in rules_of(data)


def test_huge_bytes_arguments_are_skipped_not_loaded() -> None:
    data = pickle.dumps(b"\x00" * (8 * 2**20), protocol=4)
    assert analyse(data) == []


def test_opcode_budget_is_a_limit_finding() -> None:
    data = pickle.dumps(list(range(5000)), protocol=0)
    (a,) = list(iter_pickles(io.BytesIO(data), len(data), ALLOW, max_ops=100))
    assert {f.rule_id for f in findings_for(a, ALLOW, Location(path="x"))} == {"MODEL-PICKLE-LIMIT"}


def test_budget_and_stack_checks_fire_at_their_opcode_counts() -> None:
    # One million pushes and more: the stack check (every 65,536 opcodes) stops the stream at
    # the first check past the stack limit, in the in-memory loop as in any other.
    data = b"\x80\x04" + b"K\x01" * 1_100_000 + b"."
    (a,) = list(iter_pickles(io.BytesIO(data), len(data), ALLOW))
    assert a.error == "stack limit reached"
    assert a.opcodes == 16 * 0x10000  # the 1,048,576th opcode is the first check past it
    (b,) = list(iter_pickles(io.BytesIO(data), len(data), ALLOW, max_ops=70_000))
    assert b.error == "limit: opcode budget of 70000 reached"
    assert b.opcodes == 70_001


def test_use_ordering() -> None:
    assert Use.CALL > Use.NEW > Use.REF


def test_dunder_path_to_globals_is_critical() -> None:
    findings = analyse(call1("collections", "OrderedDict.__init__.__globals__", "x"))
    assert findings[0].rule_id == "MODEL-PICKLE-EXEC"
    assert findings[0].evidence["category"] == "introspection"


def test_getattr_of_a_global_and_a_constant_is_the_dotted_global() -> None:
    # getattr(torch.serialization, "os") then getattr(<that>, "system"): resolved to os.system
    inner = sg("builtins", "getattr") + sg("torch", "serialization") + b"\x8c\x02os\x86R"
    data = (
        b"\x80\x04" + sg("builtins", "getattr") + inner + b"\x8c\x06system\x86R\x8c\x04true\x85R."
    )
    findings = analyse(data)
    hit = next(f for f in findings if f.rule_id == "MODEL-PICKLE-EXEC")
    assert hit.evidence["global"] == "torch.serialization.os.system"
    assert hit.evidence["use"] == "call"
    # getattr of a computed object is not folded: getattr itself is judged (dangerous)
    computed = (
        b"\x80\x04"
        + sg("builtins", "getattr")
        + sg("collections", "OrderedDict")
        + b")R\x8c\x03pop\x86R."
    )
    assert any(f.evidence.get("global") == "builtins.getattr" for f in analyse(computed))


def test_non_ascii_protocol0_string_is_a_differential_and_still_resolves() -> None:
    # "os" and "system" as UTF-8 STRINGs preceded by a non-ASCII decoy; torch.load (utf-8) loads it.
    data = b"S'\xc3\xa9'\n0" + b"\x80\x04S'os'\nS'system'\n\x93S'true'\n\x85R."
    found = analyse(data)
    assert any(f.rule_id == "MODEL-PICKLE-EXEC" for f in found)
    diff = [f for f in found if f.rule_id == "MODEL-PICKLE-PARSER-DIFFERENTIAL"]
    assert diff
    assert all(f.severity is Severity.HIGH for f in diff)  # beside a payload it is high
    quiet = analyse(b"S'\xc3\xa9'\n.")
    assert [f.severity for f in quiet] == [Severity.LOW]
