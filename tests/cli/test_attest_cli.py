"""`secmlops attest`, `verify-attestation` and `bom` through the real command line."""

from __future__ import annotations

import base64
import json
import pickle
from pathlib import Path

import pytest
from typer.testing import CliRunner

from secmlops.cli.main import app
from secmlops.errors import UsageError
from secmlops.evidence.keys import generate_private_key, write_key_pair
from tests.cli.test_cli import run


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.pkl").write_bytes(pickle.dumps({"w": [1.0]}, protocol=4))
    (tmp_path / "train.csv").write_text("a,b\n1,2\n")
    write_key_pair(generate_private_key(), tmp_path / "signer.pem")
    write_key_pair(generate_private_key(), tmp_path / "stranger.pem")
    return tmp_path


def test_provenance_sign_verify_tamper_in_a_subprocess(work: Path) -> None:
    att = work / "prov.intoto.json"
    done = run(
        "attest", "provenance", "-s", str(work / "model"), "-k", str(work / "signer.pem"),
        "--dataset", str(work / "train.csv"), "--param", "epochs=3", "--no-git",
        "--started-on", "2025-01-01T10:00:00Z", "-o", str(att),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    statement = json.loads(base64.b64decode(json.loads(att.read_text())["payload"]))
    build = statement["predicate"]["buildDefinition"]
    assert build["externalParameters"] == {"epochs": "3"}
    assert build["resolvedDependencies"][0]["name"] == "train.csv"
    assert any(
        d.get("uri") == "pkg:pypi/typer@" + _version("typer") for d in build["resolvedDependencies"]
    )
    assert statement["predicate"]["runDetails"]["metadata"]["startedOn"] == "2025-01-01T10:00:00Z"

    ok = run("verify-attestation", str(att), "-k", str(work / "signer.pem.pub"), "-s", str(work / "model"),
             "--predicate-type", "https://slsa.dev/provenance/v1", "-f", "json")  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["findings"] == [] and "verified" in ok.stderr

    (work / "model" / "model.pkl").write_bytes(b"\x80\x04K\x01.")
    bad = run("verify-attestation", str(att), "-k", str(work / "signer.pem.pub"), "-s", str(work / "model"), "-f", "sarif")  # fmt: skip
    assert bad.returncode == 1
    result = json.loads(bad.stdout)["runs"][0]["results"][0]
    assert result["ruleId"] == "ATTEST-SUBJECT-MISMATCH"
    assert "model.pkl" in result["message"]["text"]


def _version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def test_errors_are_one_line_and_exit_2(work: Path) -> None:
    (work / "garbage.json").write_text('{"payload": "trunc')
    done = run(
        "verify-attestation",
        str(work / "garbage.json"),
        "-k",
        str(work / "signer.pem.pub"),
        "-f",
        "json",
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "not JSON" in json.loads(done.stdout)["errors"][0]["message"]
    (work / "card.yaml").write_text("task: classification\ntaks: typo\n")
    done = run(
        "bom",
        str(work / "model"),
        "--card",
        str(work / "card.yaml"),
        "-o",
        str(work / "bom.json"),
        "--lockfile",
        str(work / "train.csv"),
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "error:" in done.stderr
    assert not (work / "bom.json").exists()  # nothing written when the input is wrong
    done = run(
        "attest",
        "metrics",
        "-s",
        str(work / "model"),
        "-k",
        str(work / "signer.pem"),
        "--metric",
        "acc=0.9",
        "--passphrase-env",
        "SECMLOPS_TEST_UNSET",
    )
    assert done.returncode == 2 and "SECMLOPS_TEST_UNSET is not set" in done.stderr


def test_wrong_key_and_wrong_type(work: Path) -> None:
    att = work / "m.intoto.json"
    code, _ = invoke("attest", "metrics", "-s", str(work / "model"), "-k", str(work / "signer.pem"),
                     "--metric", "accuracy=0.93", "--dataset", str(work / "train.csv"), "-o", str(att))  # fmt: skip
    assert code == 0
    code, out = invoke(
        "verify-attestation", str(att), "-k", str(work / "stranger.pem.pub"), "-f", "json"
    )
    assert code == 1
    assert [f["rule_id"] for f in json.loads(out)["findings"]] == ["ATTEST-SIGNATURE-INVALID"]
    code, out = invoke("verify-attestation", str(att), "-k", str(work / "stranger.pem.pub"), "-k", str(work / "signer.pem.pub"),
                       "--predicate-type", "https://slsa.dev/provenance/v1", "-f", "json")  # fmt: skip
    assert code == 1
    assert [f["rule_id"] for f in json.loads(out)["findings"]] == ["ATTEST-PREDICATE-TYPE"]
    code, _ = invoke("verify-attestation", str(att), "-k", str(work / "signer.pem.pub"), "--fail-on", "critical",
                     "--predicate-type", "https://slsa.dev/provenance/v1", "-q")  # fmt: skip
    assert code == 0  # a high finding below --fail-on critical


def test_scan_attestation_and_encrypted_key(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_key_pair(generate_private_key("ed25519"), work / "locked.pem", passphrase=b"s3cret")
    monkeypatch.setenv("KEYPASS", "s3cret")
    report = work / "report.json"
    code, _ = invoke("scan", "models", str(work / "model"), "-f", "json", "-o", str(report))
    assert code == 0
    att = work / "scan.intoto.json"
    done = run("attest", "scan", "-r", str(report), "-s", str(work / "model"), "-k", str(work / "locked.pem"),
               "--passphrase-env", "KEYPASS", "-o", str(att))  # fmt: skip
    assert done.returncode == 0, done.stderr
    code, _ = invoke("verify-attestation", str(att), "-k", str(work / "locked.pem.pub"), "-s", str(work / "model"),
                     "--predicate-type", "https://secmlops.dev/attestation/scan/v1")  # fmt: skip
    assert code == 0


def test_bom_command(work: Path) -> None:
    (work / "requirements.txt").write_text("numpy==2.1.0\nScikit_Learn==1.5.2\n")
    (work / "card.yaml").write_text(
        "task: classification\ndatasets:\n  - path: train.csv\n    classification: internal\n"
    )
    out = work / "bom.json"
    code, stdout = invoke("bom", str(work / "model"), "--card", str(work / "card.yaml"), "--lockfile",
                          str(work / "requirements.txt"), "-o", str(out), "-f", "json")  # fmt: skip
    assert code == 0  # BOM-INCOMPLETE is below the default --fail-on high
    findings = json.loads(stdout)["findings"]
    assert [f["rule_id"] for f in findings] == ["BOM-INCOMPLETE"]
    assert "architectureFamily" in findings[0]["evidence"]["missing"]
    bom = json.loads(out.read_text())
    purls = sorted(c["purl"] for c in bom["components"] if c["type"] == "library")
    assert purls == ["pkg:pypi/numpy@2.1.0", "pkg:pypi/scikit-learn@1.5.2"]
    code, _ = invoke("bom", str(work / "model"), "-o", str(out), "--lockfile", str(work / "requirements.txt"),
                     "--fail-on", "medium", "-q")  # fmt: skip
    assert code == 1  # no card: medium
    with pytest.raises(UsageError, match="either --lockfile or --env"):
        invoke(
            "bom",
            str(work / "model"),
            "-o",
            str(out),
            "--env",
            "--lockfile",
            str(work / "requirements.txt"),
        )
