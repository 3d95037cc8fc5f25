"""The Rego engine wrapper: JSON round-trips, clear errors, and golden conformance checks.

regorus comes from a mirror build (gordon-to-regorus): these golden results pin the Rego semantics
the default bundle relies on, so an engine upgrade that changes them fails here first.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from secmlops.errors import PolicyError
from secmlops.policy.engine import RegorusEngine, load_bundle


def _engine(text: str) -> RegorusEngine:
    engine = RegorusEngine()
    engine.add_module("t.rego", "package t\nimport rego.v1\n" + text)
    return engine


def test_booleans_stay_booleans_through_the_engine() -> None:
    # Regression: dict input to the engine has turned true into 1 in some regorus releases.
    engine = _engine("a := input.a\nisb := is_boolean(input.a)\nisn := is_number(input.a)\n")
    value = engine.query("data.t", {"a": True})
    assert value["a"] is True
    assert value["isb"] is True
    assert value["isn"] is False
    engine.add_data({"flag": False})
    assert engine.query("data.flag", {}) is False


def test_true_and_one_are_different_values() -> None:
    engine = _engine("verified if input.v == true\n")
    assert engine.query("data.t.verified", {"v": True}) is True
    assert engine.query("data.t.verified", {"v": 1}) is None


GOLDEN = [
    ("x := count({1, 2, 2, 3})", 3),
    ("x := [v | some v in [3, 1, 2]; v > 1]", [3, 2]),
    ('x := {k: v | some k, v in {"a": 1, "b": 2}; v > 1}', {"b": 2}),
    ("x if { every v in [1, 2] { v > 0 } }", True),
    ('x := sprintf("%s=%v", ["a", 1.5])', "a=1.5"),
    ('x := startswith("MODEL-PICKLE", "MODEL-")', True),
    ('x := object.get({"a": 1}, "b", "dflt")', "dflt"),
    ('x := object.remove({"a": 1, "b": 2}, ["a"])', {"b": 2}),
    (
        'x := time.parse_rfc3339_ns("2026-11-30T00:00:00Z")',
        1795996800000000000,
    ),  # 2026-11-30 00:00 UTC in ns
    ("x := max([1, 5, 3]) - min([1, 5, 3])", 4),
    ("x := 0.1 + 0.2 > 0.3", True),
    ('x := lower("HIGH")', "high"),
    ('x := "b" in {"a", "b"}', True),
    ("x := 7 / 2", 3.5),
    ('x := json.unmarshal("{\\"a\\": [1, true, null]}")', {"a": [1, True, None]}),
]


@pytest.mark.parametrize(("rule", "expected"), GOLDEN)
def test_golden_conformance(rule: str, expected: object) -> None:
    assert _engine(rule + "\n").query("data.t.x", {}) == expected


def test_undefined_rule_is_none() -> None:
    assert _engine("x if input.missing\n").query("data.t.x", {}) is None


def test_syntax_error_is_policy_error_without_backtrace() -> None:
    with pytest.raises(PolicyError) as info:
        RegorusEngine().add_module("bad.rego", "package x\ndeny contains {")
    assert "bad.rego" in info.value.message
    assert "Stack backtrace" not in info.value.message


def test_non_json_input_is_policy_error() -> None:
    with pytest.raises(PolicyError, match="not valid JSON"):
        _engine("x := 1\n").query("data.t.x", {"n": float("nan")})


def test_runtime_error_is_policy_error() -> None:
    # A conflict (two values for one complete rule) is an evaluation error, not a crash.
    engine = _engine("x := 1 if input.a\nx := 2 if input.a\n")
    with pytest.raises(PolicyError):
        engine.query("data.t.x", {"a": True})


def test_bundle_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="not a folder"):
        load_bundle(tmp_path / "missing")
    (tmp_path / "data").mkdir()
    (tmp_path / "p.rego").write_text("package p\n")
    (tmp_path / "data" / "d.json").write_text("{not json")
    with pytest.raises(PolicyError, match=r"d\.json is not valid JSON"):
        load_bundle(tmp_path)
    (tmp_path / "data" / "d.json").write_text("[1]")
    with pytest.raises(PolicyError, match="must be a JSON object"):
        load_bundle(tmp_path)
    (tmp_path / "data" / "d.json").write_text(json.dumps({"a": {"b": 1}}))
    (tmp_path / "data" / "e.json").write_text(json.dumps({"a": {"b": 2}}))
    with pytest.raises(PolicyError, match="defined twice"):
        load_bundle(tmp_path)
    (tmp_path / "data" / "e.json").unlink()
    (tmp_path / "q.rego").write_bytes(b"package q\n\xff\xfe")
    with pytest.raises(PolicyError, match="not UTF-8"):
        load_bundle(tmp_path)
