"""The registry, lineage and audit commands end to end, with real OpenSSF model signatures."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

from secmlops.evidence.keys import generate_private_key, write_key_pair
from secmlops.evidence.signing import KeySigner, sign_model
from tests.store.conftest import GOOD_FACTS, make_model


def _run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "secmlops", *args, "--home", str(home)],
        capture_output=True, text=True, timeout=180, env={"SECMLOPS_ACTOR": "alice", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip


def test_registry_round_trip_and_refusals(tmp_path: Path) -> None:
    home = tmp_path / "home"
    key = tmp_path / "key.pem"
    pub = write_key_pair(generate_private_key(), key)
    model = make_model(tmp_path / "model")
    sign_model(model, KeySigner(key))
    facts = tmp_path / "facts.json"
    facts.write_text(json.dumps(GOOD_FACTS))

    pushed = _run(home, "registry", "push", str(model), "--name", "fraud", "--key", str(pub),
                  "--facts", str(facts), "--json")  # fmt: skip
    assert pushed.returncode == 0, pushed.stderr
    assert json.loads(pushed.stdout)["version"] == 1

    promoted = _run(home, "registry", "promote", "fraud@1", "--to", "production", "--key", str(pub),
                    "--approver", "bob")  # fmt: skip
    assert promoted.returncode == 0, promoted.stderr
    listed = _run(home, "registry", "list", "--json")
    assert json.loads(listed.stdout)[0]["aliases"] == ["production"]

    out = tmp_path / "pulled"
    pulled = _run(
        home, "registry", "pull", "fraud@production", "--out", str(out), "--key", str(pub)
    )
    assert pulled.returncode == 0, pulled.stderr
    assert (out / "weights.bin").read_bytes() == b"weights"

    # Self-approval is refused by policy: exit 1 with the rule id.
    self_approved = _run(home, "registry", "promote", "fraud@1", "--to", "staging", "--key", str(pub),
                         "--approver", "alice")  # fmt: skip
    assert self_approved.returncode == 1
    assert "POLICY-SEPARATION-OF-DUTIES" in self_approved.stderr

    # A tampered model fails verification at push: denied (1), naming the changed file.
    (model / "weights.bin").write_bytes(b"backdoor")
    tampered = _run(home, "registry", "push", str(model), "--name", "fraud", "--key", str(pub),
                    "--facts", str(facts))  # fmt: skip
    assert tampered.returncode == 1
    assert "POLICY-SIGNATURE-INVALID" in tampered.stderr and "weights.bin" in tampered.stderr

    # No trust anchor: a usage error (2), not a silent pass.
    no_key = _run(home, "registry", "push", str(model), "--name", "fraud")
    assert no_key.returncode == 2 and "no trust anchor" in no_key.stderr

    audit_ok = _run(home, "audit", "verify")
    assert audit_ok.returncode == 0, audit_ok.stdout
    with sqlite3.connect(home / "secmlops.db") as conn:
        conn.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 1")
    audit_bad = _run(home, "audit", "verify")
    assert audit_bad.returncode == 1 and "record 1" in audit_bad.stdout
