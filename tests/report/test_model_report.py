"""`secmlops report`: evidence from the registry, escaped HTML, OSCAL with the required fields."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from secmlops.report.model_report import build_model_report, render_html, render_oscal
from secmlops.store import audit
from tests.store.conftest import GOOD_FACTS, KeySigner, make_model, make_registry


def _registered(tmp_path: Path, facts: dict) -> tuple:  # type: ignore[type-arg]
    signer = KeySigner()
    reg = make_registry(tmp_path, signer)
    m = make_model(tmp_path / "m")
    info = reg.push(m, "fraud", signer.sign(m), "alice", facts=facts,
                    lineage=[("dataset", "sha256:" + "b" * 64, {"path": "train.csv"})])  # fmt: skip
    return reg, info


def test_report_statuses_come_from_evidence(tmp_path: Path) -> None:
    facts = {**GOOD_FACTS, "fairness": {"tpr": {"a": 0.8, "b": 0.85}}}
    reg, info = _registered(tmp_path, facts)
    doc = build_model_report(info, audit.verify_log(reg.engine))
    status = {c["control"]: c["status"] for c in doc["controls"]}
    assert status["signature"] == "satisfied"
    assert status["fairness"] == "satisfied"
    assert status["lineage"] == "satisfied"
    assert status["audit"] == "satisfied"
    assert status["drift"] == "not assessed"  # no drift evidence: never shown as satisfied
    assert doc["metrics"] == {"accuracy": 0.95}


def test_html_escapes_hostile_model_card(tmp_path: Path) -> None:
    evil = '<script>alert("x")</script>'
    facts = {**GOOD_FACTS, "model_card": {"completeness": 1.0, "missing": [], "owner": evil}}
    _reg, info = _registered(tmp_path, facts)
    html = render_html(build_model_report(info, None))
    assert evil not in html
    assert "&lt;script&gt;" in html
    assert "data:image/png;base64," in html  # the metrics plot is embedded


def test_oscal_has_required_fields(tmp_path: Path) -> None:
    reg, info = _registered(tmp_path, GOOD_FACTS)
    doc = render_oscal(build_model_report(info, audit.verify_log(reg.engine)))
    ar = doc["assessment-results"]
    assert {"uuid", "metadata", "import-ap", "results"} <= set(ar)
    assert {"title", "last-modified", "version", "oscal-version"} <= set(ar["metadata"])
    result = ar["results"][0]
    assert {"uuid", "title", "description", "start", "reviewed-controls"} <= set(result)
    assert re.search(r"(Z|[+-]\d\d:\d\d)$", result["start"]), result["start"]
    token = re.compile(r"^[A-Za-z_][\w.\-]*$")
    for finding in result["findings"]:
        assert {"uuid", "title", "description", "target"} <= set(finding)
        assert token.match(finding["target"]["target-id"])
        assert finding["target"]["status"]["state"] in ("satisfied", "not-satisfied")
    observation_ids = {o["uuid"] for o in result["observations"]}
    assert all(
        f["related-observations"][0]["observation-uuid"] in observation_ids
        for f in result["findings"]
    )


def test_oscal_validates_against_the_oscal_models(tmp_path: Path) -> None:
    """Validated by compliance-trestle's models, generated from NIST's OSCAL JSON schema."""
    from trestle.oscal.assessment_results import AssessmentResults

    reg, info = _registered(tmp_path, GOOD_FACTS)
    doc = render_oscal(build_model_report(info, audit.verify_log(reg.engine)))
    parsed = AssessmentResults.model_validate(doc["assessment-results"])
    findings = parsed.results[0].findings or []
    assert len(findings) == len(doc["assessment-results"]["results"][0]["findings"]) > 0
    broken = {**doc["assessment-results"], "results": [{"title": "no uuid"}]}
    with pytest.raises(ValueError, match="uuid"):  # the models check: no result without a uuid
        AssessmentResults.model_validate(broken)
