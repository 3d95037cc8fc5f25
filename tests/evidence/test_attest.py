"""in-toto statements in DSSE envelopes: signing, verification, tampering, predicates."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from secmlops.errors import EvidenceError, SignatureError
from secmlops.evidence import attest_rules
from secmlops.evidence.attest import (
    METRICS_PREDICATE_V1,
    SCAN_PREDICATE_V1,
    SLSA_PROVENANCE_V1,
    STATEMENT_TYPE,
    check_attestation,
    file_descriptors,
    git_descriptor,
    make_statement,
    metrics_predicate,
    package_descriptor,
    provenance_predicate,
    scan_predicate,
    sign_envelope,
    subjects_for,
    verify_envelope,
)
from secmlops.evidence.keys import generate_private_key, key_id
from secmlops.evidence.packages import Package


@pytest.fixture
def model(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "weights.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    (folder / "sub" / "config.json").write_text('{"layers": 2}')
    return folder


@pytest.fixture
def key() -> Any:
    return generate_private_key()


def _statement(paths: list[Path], predicate_type: str = SCAN_PREDICATE_V1) -> dict[str, Any]:
    return make_statement(subjects_for(paths), predicate_type, {"k": "v"})


def _payload(envelope: dict[str, Any]) -> dict[str, Any]:
    return json.loads(base64.b64decode(envelope["payload"]))


def _with_payload(envelope: dict[str, Any], statement: dict[str, Any]) -> dict[str, Any]:
    raw = json.dumps(statement).encode()
    return {**envelope, "payload": base64.b64encode(raw).decode()}


def test_statement_shape_and_subject_digests(model: Path) -> None:
    statement = _statement([model])
    assert statement["_type"] == STATEMENT_TYPE
    assert statement["subject"] == [
        {
            "name": "model/sub/config.json",
            "digest": {"sha256": hashlib.sha256(b'{"layers": 2}').hexdigest()},
        },
        {
            "name": "model/weights.safetensors",
            "digest": {
                "sha256": hashlib.sha256((model / "weights.safetensors").read_bytes()).hexdigest()
            },
        },
    ]


def test_statement_validates_with_in_toto_attestation(model: Path, key: Any) -> None:
    from google.protobuf import json_format
    from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
    from in_toto_attestation.v1 import statement_pb2
    from in_toto_attestation.v1.statement import Statement

    predicate = provenance_predicate(
        resolved_dependencies=file_descriptors(model, "dataset"),
        external_parameters={"epochs": "3"},
        invocation_id="run-1",
        started_on=datetime(2025, 1, 1, tzinfo=UTC),
        finished_on=datetime(2025, 1, 1, 1, tzinfo=UTC),
    )
    statement = make_statement(subjects_for([model]), SLSA_PROVENANCE_V1, predicate)
    envelope = sign_envelope(statement, key)
    pb = json_format.Parse(json.dumps(_payload(envelope)), statement_pb2.Statement())
    Statement.copy_from_pb(pb).validate()
    # The predicate parses as the SLSA provenance v1 message: field names are right.
    json_format.Parse(json.dumps(predicate), provenance_pb2.Provenance())


def test_round_trip_and_subject_check(model: Path, key: Any) -> None:
    envelope = sign_envelope(_statement([model]), key)
    verified = verify_envelope(
        envelope, key.public_key(), subjects=[model], predicate_type=SCAN_PREDICATE_V1
    )
    assert verified.predicate == {"k": "v"}
    assert verified.keyids == (key_id(key.public_key()),)
    assert [s.name for s in verified.subjects] == [
        "model/sub/config.json",
        "model/weights.safetensors",
    ]
    assert json.loads(verified.payload)["predicateType"] == SCAN_PREDICATE_V1


def test_tampered_payload_fails(model: Path, key: Any) -> None:
    envelope = sign_envelope(_statement([model]), key)
    statement = _payload(envelope)
    statement["subject"][0]["digest"]["sha256"] = "0" * 64
    with pytest.raises(SignatureError):
        verify_envelope(_with_payload(envelope, statement), key.public_key())


def test_every_payload_byte_flip_fails(model: Path, key: Any) -> None:
    envelope = sign_envelope(_statement([model / "sub" / "config.json"]), key)
    raw = bytearray(base64.b64decode(envelope["payload"]))
    for i in range(0, len(raw), 7):
        flipped = bytearray(raw)
        flipped[i] ^= 0x01
        forged = {**envelope, "payload": base64.b64encode(bytes(flipped)).decode()}
        with pytest.raises(SignatureError):
            verify_envelope(forged, key.public_key())


def test_wrong_key_and_swapped_signatures_fail(model: Path, key: Any) -> None:
    one = sign_envelope(_statement([model]), key)
    two = sign_envelope(_statement([model], METRICS_PREDICATE_V1), key)
    with pytest.raises(SignatureError):
        verify_envelope(one, generate_private_key("ed25519").public_key())
    with pytest.raises(SignatureError):
        verify_envelope({**one, "signatures": two["signatures"]}, key.public_key())
    with pytest.raises(SignatureError):
        verify_envelope({**one, "payloadType": "application/json"}, key.public_key())


def test_any_of_several_trusted_keys(model: Path, key: Any) -> None:
    envelope = sign_envelope(_statement([model]), key)
    other = generate_private_key("p384").public_key()
    assert verify_envelope(envelope, [other, key.public_key()]).keyids == (
        key_id(key.public_key()),
    )


def test_predicate_type_mismatch(model: Path, key: Any) -> None:
    envelope = sign_envelope(_statement([model]), key)
    with pytest.raises(EvidenceError, match=r"expected 'https://slsa\.dev/provenance/v1'"):
        verify_envelope(envelope, key.public_key(), predicate_type=SLSA_PROVENANCE_V1)


def test_changed_missing_and_extra_files_are_named(model: Path, key: Any, tmp_path: Path) -> None:
    att = tmp_path / "a.intoto.json"
    att.write_text(json.dumps(sign_envelope(_statement([model]), key)))
    (model / "weights.safetensors").write_bytes(b"evil")
    (model / "sub" / "config.json").unlink()
    (model / "extra.pkl").write_bytes(b"new")
    report, statement = check_attestation(att, [key.public_key()], [model])
    assert statement is not None and not report.errors
    by_kind = {f.evidence["kind"]: f for f in report.findings}
    assert set(by_kind) == {"changed", "missing", "not-attested"}
    assert all(f.rule_id == attest_rules.SUBJECT_MISMATCH.rule_id for f in report.findings)
    assert by_kind["changed"].location.path == str(model / "weights.safetensors")
    assert by_kind["changed"].evidence["actual"] == "sha256:" + hashlib.sha256(b"evil").hexdigest()
    assert "sub/config.json" in by_kind["missing"].message
    assert by_kind["not-attested"].location.path == str(model / "extra.pkl")
    assert report.exit_code(attest_rules.SUBJECT_MISMATCH.severity) == 1


def test_renamed_but_identical_file_still_matches(model: Path, key: Any, tmp_path: Path) -> None:
    weights = model / "weights.safetensors"
    envelope = sign_envelope(_statement([weights]), key)
    copy = tmp_path / "renamed.bin"
    copy.write_bytes(weights.read_bytes())
    verify_envelope(envelope, key.public_key(), subjects=[copy])
    copy.write_bytes(b"other")
    with pytest.raises(EvidenceError, match="not a subject"):
        verify_envelope(envelope, key.public_key(), subjects=[copy])


def test_check_attestation_reports_signature_and_type(
    model: Path, key: Any, tmp_path: Path
) -> None:
    att = tmp_path / "a.intoto.json"
    att.write_text(json.dumps(sign_envelope(_statement([model]), key)))
    report, _ = check_attestation(att, [key.public_key()], [model], SLSA_PROVENANCE_V1)
    assert [f.rule_id for f in report.findings] == ["ATTEST-PREDICATE-TYPE"]
    report, statement = check_attestation(att, [generate_private_key().public_key()], [model])
    assert statement is None
    assert [f.rule_id for f in report.findings] == ["ATTEST-SIGNATURE-INVALID"]


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b'{"payload": "e30=", "payloadType": "application/vnd.in-toto+json", "signa',
        b"\x00\xff" * 40,
        b'"just a string"',
    ],
    ids=["empty", "truncated", "binary", "wrong-type"],
)
def test_unreadable_attestations_fail_closed(tmp_path: Path, key: Any, content: bytes) -> None:
    att = tmp_path / "bad.intoto.json"
    att.write_bytes(content)
    report, statement = check_attestation(att, [key.public_key()])
    assert statement is None and report.errors and not report.findings
    assert report.exit_code(attest_rules.PREDICATE_TYPE.severity) == 2


def test_signed_but_malformed_statements_are_errors(key: Any) -> None:
    from secmlops.evidence.dsse import INTOTO_PAYLOAD_TYPE, sign_envelope_bytes

    cases = {
        b"not json": "not JSON",
        b"[]": "not a JSON object",
        b'{"_type": "https://example.com/other"}': "not an in-toto statement",
        json.dumps(
            {"_type": STATEMENT_TYPE, "subject": [], "predicateType": "x"}
        ).encode(): "no subjects",
        json.dumps(
            {
                "_type": STATEMENT_TYPE,
                "subject": [{"name": "a", "digest": {"sha256": 1}}],
                "predicateType": "x",
            }
        ).encode(): "subject 0",
    }
    for payload, message in cases.items():
        envelope = sign_envelope_bytes(INTOTO_PAYLOAD_TYPE, payload, key).to_dict()
        with pytest.raises(EvidenceError, match=message):
            verify_envelope(envelope, key.public_key())
    other_type = sign_envelope_bytes("application/json", b"{}", key).to_dict()
    with pytest.raises(EvidenceError, match="not an in-toto statement"):
        verify_envelope(other_type, key.public_key())


def test_subjects_refuse_symlinks_and_empty_folders(tmp_path: Path) -> None:
    (tmp_path / "real").write_bytes(b"x")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(EvidenceError, match="symbolic link"):
        subjects_for([tmp_path / "link"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(EvidenceError, match="no files"):
        subjects_for([tmp_path / "empty"])
    with pytest.raises(EvidenceError, match="no such file"):
        subjects_for([tmp_path / "absent"])


def test_provenance_predicate_records_inputs_by_digest(tmp_path: Path) -> None:
    data = tmp_path / "train.csv"
    data.write_text("a,b\n1,2\n")
    pkg = Package("numpy", "2.1.0", hashes=("sha256:" + "ab" * 32,))
    predicate = provenance_predicate(
        resolved_dependencies=[*file_descriptors(data, "dataset"), package_descriptor(pkg)],
        external_parameters={"lr": "0.1"},
        started_on=datetime(2025, 3, 1, 12, tzinfo=UTC),
        finished_on=datetime(2025, 3, 1, 13, tzinfo=UTC),
    )
    deps = predicate["buildDefinition"]["resolvedDependencies"]
    assert deps[0] == {
        "name": "train.csv",
        "digest": {"sha256": hashlib.sha256(b"a,b\n1,2\n").hexdigest()},
        "annotations": {"role": "dataset"},
    }
    assert deps[1] == {
        "uri": "pkg:pypi/numpy@2.1.0",
        "name": "numpy",
        "digest": {"sha256": "ab" * 32},
    }
    assert predicate["runDetails"]["metadata"] == {
        "startedOn": "2025-03-01T12:00:00Z",
        "finishedOn": "2025-03-01T13:00:00Z",
    }
    # Nothing invented: no invocation id unless given.
    assert "invocationId" not in predicate["runDetails"]["metadata"]
    with pytest.raises(EvidenceError, match="finished before it started"):
        provenance_predicate(
            resolved_dependencies=[],
            started_on=datetime(2025, 3, 2, tzinfo=UTC),
            finished_on=datetime(2025, 3, 2, tzinfo=UTC) - timedelta(seconds=1),
        )
    with pytest.raises(EvidenceError, match="no uri, digest or content"):
        provenance_predicate(resolved_dependencies=[{"name": "x"}])


def test_git_descriptor(tmp_path: Path) -> None:
    assert git_descriptor(tmp_path) is None  # not a work tree
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@e",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@e",
        "PATH": "/usr/bin:/bin",
    }
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True, env=env)
    (tmp_path / "train.py").write_text("print(1)\n")
    subprocess.run(["git", "-C", str(tmp_path), "add", "."], check=True, env=env)
    subprocess.run(["git", "-C", str(tmp_path), "commit", "-qm", "x"], check=True, env=env)
    head = subprocess.run(
        ["git", "-C", str(tmp_path), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    descriptor = git_descriptor(tmp_path)
    assert descriptor is not None and descriptor["digest"] == {"gitCommit": head}
    assert "annotations" not in descriptor
    (tmp_path / "train.py").write_text("print(2)\n")
    dirty = git_descriptor(tmp_path)
    assert dirty is not None and dirty["annotations"] == {"dirty": True}


def _report(
    findings: list[dict[str, Any]], errors: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "tool": "secmlops",
        "version": "0.1.0",
        "findings": findings,
        "errors": errors or [],
        "summary": {"findings": len(findings)},
    }


def test_scan_predicate_digests_findings() -> None:
    finding = {"rule_id": "MODEL-PICKLE-EXEC", "severity": "critical"}
    one = scan_predicate(_report([finding, finding]), "ff" * 32)
    assert one["ruleCounts"] == {"MODEL-PICKLE-EXEC": 2}
    assert one["complete"] is True and one["reportDigest"] == {"sha256": "ff" * 32}
    other = scan_predicate(_report([finding]))
    assert one["findingsDigest"] != other["findingsDigest"]
    incomplete = scan_predicate(_report([], [{"location": {}, "message": "x"}]))
    assert incomplete["complete"] is False
    with pytest.raises(EvidenceError, match="not a secmlops JSON report"):
        scan_predicate({"tool": "other"})
    with pytest.raises(EvidenceError, match="rule_id"):
        scan_predicate(_report([{"severity": "high"}]))


def test_metrics_predicate_checks_numbers(tmp_path: Path) -> None:
    predicate = metrics_predicate(
        {"f1": 0.8, "accuracy": 1}, evaluated_on=datetime(2025, 1, 1, tzinfo=UTC)
    )
    assert predicate == {
        "metrics": {"accuracy": 1, "f1": 0.8},
        "evaluatedOn": "2025-01-01T00:00:00Z",
    }
    for bad, message in [
        ({}, "no metrics"),
        ({"a": "0.9"}, "not a number"),
        ({"a": True}, "not a number"),
        ({"a": float("nan")}, "not finite"),
        ({" ": 1}, "empty"),
    ]:
        with pytest.raises(EvidenceError, match=message):
            metrics_predicate(bad)
    with pytest.raises(EvidenceError, match="time zone"):
        metrics_predicate({"a": 1}, evaluated_on=datetime(2025, 1, 1))


def test_unserialisable_predicates_are_refused(model: Path, key: Any) -> None:
    for predicate in ({"when": datetime(2025, 1, 1, tzinfo=UTC)}, {"x": float("inf")}):
        statement = make_statement(subjects_for([model]), SCAN_PREDICATE_V1, predicate)
        with pytest.raises(EvidenceError, match="cannot be written as JSON"):
            sign_envelope(statement, key)


def test_progress_is_reported_per_file(model: Path) -> None:
    calls: list[tuple[str, int, int]] = []
    subjects_for([model], lambda path, done, total: calls.append((Path(path).name, done, total)))
    assert calls == [("config.json", 1, 2), ("weights.safetensors", 2, 2)]
