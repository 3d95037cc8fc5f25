"""The default gate from Python: facts in, Decision out; waivers; extending and replacing bundles."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from secmlops.errors import PolicyError
from secmlops.findings import Severity
from secmlops.policy import DEFAULT_BUNDLE, evaluate_gate, load_bundle
from secmlops.policy.testing import run_policy_tests
from secmlops.policy.waivers import load_waivers

NOW = datetime(2026, 11, 30, tzinfo=UTC)

GOOD = {
    "stage": "register",
    "model": {"name": "fraud", "version": "3", "format": "safetensors"},
    "signature": {"present": True, "verified": True},
    "findings": [],
    "metrics": {"accuracy": 0.93},
    "model_card": {"completeness": 1.0, "missing": []},
    "registrant": "alice",
}

VULN = {
    "rule_id": "DEPS-VULN",
    "severity": "high",
    "message": "remote code execution",
    "location": {"package": "torch==2.5.0"},
    "evidence": {"id": "GHSA-53q9-r3pm-6pq6"},
}


def test_shipped_bundle_tests_all_pass() -> None:
    results = run_policy_tests(load_bundle(DEFAULT_BUNDLE))
    assert len(results) >= 25
    assert [r.name for r in results if not r.passed] == []


def test_good_facts_allowed() -> None:
    decision = evaluate_gate(GOOD, now=NOW)
    assert decision.allow
    assert decision.deny == ()


def test_unsigned_model_denied_with_controls() -> None:
    decision = evaluate_gate({**GOOD, "signature": {"present": False}}, now=NOW)
    assert not decision.allow
    (v,) = decision.deny
    assert v.rule_id == "POLICY-SIGNATURE-REQUIRED"
    assert v.severity is Severity.CRITICAL
    assert "NIST-AI-RMF:MANAGE-2.2" in v.controls


def test_waiver_file_expiry_is_applied(tmp_path: Path) -> None:
    path = tmp_path / "waivers.yaml"
    path.write_text(
        "waivers:\n"
        "  - rule_id: POLICY-VULNERABLE-DEPENDENCY\n"
        "    scope: torch==2.5.0 GHSA-53q9-r3pm-6pq6\n"
        "    reason: the vulnerable loader is never called\n"
        "    approver: security@bank.example\n"
        "    expires: 2026-12-15\n"
    )
    waivers = load_waivers(path)
    facts = {**GOOD, "findings": [VULN]}
    assert evaluate_gate(facts, waivers=waivers, now=NOW).allow
    later = evaluate_gate(facts, waivers=waivers, now=datetime(2026, 12, 16, tzinfo=UTC))
    assert not later.allow
    assert {v.rule_id for v in later.warn} == {"POLICY-WAIVER-EXPIRED"}


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("waivers: [{rule_id: X, scope: '*', reason: r, approver: a}]", "expires"),
        ("waivers: [{rule_id: X, scope: '*', reason: r, approver: a, expires: soon}]", "expires"),
        (
            "waivers: [{rule_id: X, scope: '*', reason: r, approver: a, expires: 2027-01-01, x: 1}]",
            "x",
        ),
        ("waivers: {", "not valid YAML"),
        ("[]", "waivers"),
    ],
)
def test_bad_waiver_files_are_clear_errors(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError, match=match):
        load_waivers(path)


def test_extension_adds_rules_and_overrides_thresholds(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "mine.json").write_text(
        json.dumps({"gate": {"metrics": {"min": {"accuracy": 0.95}}}})
    )
    (tmp_path / "owner.rego").write_text(
        "package secmlops.gate\nimport rego.v1\n"
        'candidates contains {"rule_id": "BANK-OWNER", "severity": "medium", "subject": "m",'
        ' "msg": "model needs an owner", "controls": []} if not input.model.owner\n'
    )
    decision = evaluate_gate(GOOD, extend=[tmp_path], now=NOW)
    assert {v.rule_id for v in decision.deny} == {"POLICY-METRIC-BELOW-THRESHOLD", "BANK-OWNER"}


def test_replacement_bundle_without_gate_package_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "other.rego").write_text("package other\nimport rego.v1\nx := 1\n")
    with pytest.raises(PolicyError, match="undefined"):
        evaluate_gate(GOOD, bundle=tmp_path, now=NOW)


def test_malformed_rule_output_is_policy_error(tmp_path: Path) -> None:
    (tmp_path / "g.rego").write_text(
        'package secmlops.gate\nimport rego.v1\ndeny contains "just a string"\n'
    )
    with pytest.raises(PolicyError, match="not an object"):
        evaluate_gate(GOOD, bundle=tmp_path, now=NOW)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "secmlops", "policy", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_eval_and_test(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps(GOOD))
    bad.write_text(json.dumps({**GOOD, "approver": "alice"}))
    ok = _cli("eval", "--input", str(good), "--format", "json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["allow"] is True
    denied = _cli("eval", "--input", str(bad))
    assert denied.returncode == 1
    assert "POLICY-SEPARATION-OF-DUTIES" in denied.stdout
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{")
    broken = _cli("eval", "--input", str(garbage))
    assert broken.returncode == 2
    assert "Traceback" not in broken.stderr and "not a JSON document" in broken.stderr
    tests = _cli("test", "-q")
    assert tests.returncode == 0 and "policy tests passed" in tests.stdout
    failing = tmp_path / "b"
    failing.mkdir()
    (failing / "p_test.rego").write_text("package p_test\nimport rego.v1\ntest_never if false\n")
    assert _cli("test", "--extend", str(failing)).returncode == 1
