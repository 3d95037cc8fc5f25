"""`secmlops keygen / sign / verify` in a subprocess, and interop with the `model_signing` CLI."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli import run_cli as run
from tests.evidence.test_signing import WEIGHTS, make_ca, make_key, make_leaf, make_model

MODEL_SIGNING = Path(sys.executable).with_name("model_signing")


@pytest.fixture
def cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., subprocess.CompletedProcess[str]]:
    """The same entry point in this process (a subprocess costs a second of imports)."""
    from secmlops.cli.main import main

    def invoke(*args: str) -> subprocess.CompletedProcess[str]:
        monkeypatch.setattr(sys, "argv", ["secmlops", *args])
        monkeypatch.setenv("COLUMNS", "200")
        monkeypatch.setenv("NO_COLOR", "1")
        capsys.readouterr()
        with pytest.raises(SystemExit) as stop:
            main()
        out = capsys.readouterr()
        code = stop.value.code
        return subprocess.CompletedProcess(
            args, code if isinstance(code, int) else 1, out.out, out.err
        )

    return invoke


def model_signing_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(MODEL_SIGNING), *args], capture_output=True, text=True, timeout=120)


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_keygen_sign_verify_with_passphrase_and_json(
    tmp_path: Path,
    cli: Callable[..., subprocess.CompletedProcess[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = make_model(tmp_path / "model")
    key = tmp_path / "k.pem"
    env = {"KEY_PASS": "s3cret"}
    monkeypatch.setenv("KEY_PASS", "s3cret")
    made = cli("keygen", "--out", str(key), "--passphrase-env", "KEY_PASS", "--type", "p384")
    assert made.returncode == 0, made.stderr
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and Path(f"{key}.pub").exists()
    assert b"ENCRYPTED" in key.read_bytes()
    assert "already exists" in one_error_line(cli("keygen", "--out", str(key)))  # not overwritten

    signed = run("sign", str(model), "--key", str(key), "--passphrase-env", "KEY_PASS", env=env)
    assert signed.returncode == 0, signed.stderr
    assert (model / "model.sig").exists() and "model digest sha256:" in signed.stderr

    ok = cli("verify", str(model), "--key", f"{key}.pub", "-f", "json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["findings"] == []

    monkeypatch.setenv("KEY_PASS", "wrong")  # the subprocess above got its own environment
    assert "wrong passphrase" in one_error_line(
        cli("sign", str(model), "--key", str(key), "--passphrase-env", "KEY_PASS")
    )
    (model / "weights.bin").write_bytes(WEIGHTS[::-1])
    (model / "tok" / "vocab.txt").unlink()
    bad = run("verify", str(model), "--key", f"{key}.pub", "-f", "json")
    assert bad.returncode == 1
    found = {(f["rule_id"], f["evidence"]["file"]) for f in json.loads(bad.stdout)["findings"]}
    assert found == {("SIGN-FILE-CHANGED", "weights.bin"), ("SIGN-FILE-MISSING", "tok/vocab.txt")}

    sarif = cli("verify", str(model), "--key", f"{key}.pub", "-f", "sarif")
    assert sarif.returncode == 1
    assert "SIGN-FILE-CHANGED" in sarif.stdout and "weights.bin" in sarif.stdout


def test_model_signing_cli_signature_verifies_with_secmlops(
    tmp_path: Path, cli: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    model = make_model(tmp_path / "model")
    public = make_key(tmp_path / "k.pem")
    sig = tmp_path / "ms.sig"
    made = model_signing_cli(
        "sign", "key", str(model), "--private_key", str(tmp_path / "k.pem"), "--signature", str(sig)
    )
    assert made.returncode == 0, made.stderr
    assert cli("verify", str(model), "--key", str(public), "--signature", str(sig)).returncode == 0
    (model / "config.json").write_text("{}")
    failed = cli("verify", str(model), "--key", str(public), "--signature", str(sig))
    assert failed.returncode == 1 and "config.json" in failed.stdout


def test_secmlops_signature_verifies_with_model_signing_cli(
    tmp_path: Path, cli: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    model = make_model(tmp_path / "model")
    public = make_key(tmp_path / "k.pem")
    assert cli("sign", str(model), "--key", str(tmp_path / "k.pem"), "-q").returncode == 0
    sig = str(model / "model.sig")
    ok = model_signing_cli(
        "verify", "key", str(model), "--public_key", str(public), "--signature", sig
    )
    assert ok.returncode == 0, ok.stderr
    (model / "weights.bin").write_bytes(WEIGHTS[1:])
    bad = model_signing_cli(
        "verify", "key", str(model), "--public_key", str(public), "--signature", sig
    )
    assert bad.returncode == 1 and "weights.bin" in bad.stderr


def test_certificate_interop_both_ways(
    tmp_path: Path, cli: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    ca, ca_key = make_ca(tmp_path)
    leaf_key, leaf = make_leaf(tmp_path, ca, ca_key)
    model = make_model(tmp_path / "model")
    signed = cli(
        "sign", str(model), "--key", str(leaf_key), "--signing-certificate", str(leaf),
        "--certificate-chain", str(ca), "-q",
    )  # fmt: skip
    assert signed.returncode == 0, signed.stderr
    sig = str(model / "model.sig")
    ms = model_signing_cli(
        "verify", "certificate", str(model), "--signature", sig, "--certificate_chain", str(ca)
    )
    assert ms.returncode == 0, ms.stderr
    theirs = tmp_path / "theirs.sig"
    made = model_signing_cli(
        "sign", "certificate", str(model), "--private_key", str(leaf_key),
        "--signing_certificate", str(leaf), "--certificate_chain", str(ca),
        "--signature", str(theirs),
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    mine = cli(
        "verify", str(model), "--certificate-chain", str(ca), "--signature", str(theirs),
        "--identity", "ml-team@example.com",
    )  # fmt: skip
    assert mine.returncode == 0, mine.stdout + mine.stderr
    wrong = cli("verify", str(model), "--certificate-chain", str(ca), "--identity", "x@example.com")
    assert wrong.returncode == 1 and "SIGN-IDENTITY-MISMATCH" in wrong.stdout


@pytest.mark.parametrize("case", ["empty", "garbage", "no-model", "no-signature"])
def test_broken_inputs_exit_2_with_one_line(
    tmp_path: Path, cli: Callable[..., subprocess.CompletedProcess[str]], case: str
) -> None:
    model = make_model(tmp_path / "model")
    public = make_key(tmp_path / "k.pem")
    args = ["verify", str(model), "--key", str(public)]
    if case == "empty":
        (model / "model.sig").write_bytes(b"")
    elif case == "garbage":
        (model / "model.sig").write_bytes(os.urandom(300))
    elif case == "no-model":
        args[1] = str(tmp_path / "missing")
    line = one_error_line(cli(*args))
    expected = {"empty": "is empty", "garbage": "not JSON", "no-model": "does not exist"}
    assert expected.get(case, "model.sig does not exist") in line
    as_json = cli(*args, "-f", "json")
    assert as_json.returncode == 2 and json.loads(as_json.stdout)["errors"]


def test_usage_errors(tmp_path: Path, cli: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    model = make_model(tmp_path / "model")
    assert "choose a signing method" in one_error_line(cli("sign", str(model)))
    assert "choose one trust method" in one_error_line(cli("verify", str(model)))
    line = one_error_line(cli("sign", str(model), "--key", "k", "--shard-size", "lots"))
    assert "not a size" in line


def test_sigstore_signing_fails_fast_offline(
    tmp_path: Path, cli: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    model = make_model(tmp_path / "model")
    # A trust configuration whose Fulcio is a closed local port: no packet leaves the machine.
    config = tmp_path / "trust.json"
    config.write_text(json.dumps({"signingConfig": {"caUrls": [{"url": "https://127.0.0.1:9"}]}}))
    result = cli("sign", str(model), "--sigstore", "--trust-config", str(config))
    line = one_error_line(result)
    assert "needs the network" in line and "--key" in result.stderr
    assert not (model / "model.sig").exists()


def test_symlink_refused_by_sign(
    tmp_path: Path, cli: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    model = make_model(tmp_path / "model")
    make_key(tmp_path / "k.pem")
    (model / "link.bin").symlink_to("/etc/hostname")
    line = one_error_line(cli("sign", str(model), "--key", str(tmp_path / "k.pem")))
    assert "link.bin" in line and "symbolic link" in line
