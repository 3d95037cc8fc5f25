"""SIGKILL a process that registers and promotes in a loop at random moments; the store must stay
consistent: every recorded version is complete and verifiable, and the audit chain is intact."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from secmlops.store import audit
from secmlops.store.db import AuditRecord, ModelVersion
from tests.store.conftest import KeySigner, make_registry

WORKER = r"""
import sys, itertools
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from cryptography.hazmat.primitives import serialization
from tests.store.conftest import KeySigner, GOOD_FACTS, make_model, make_registry
root = Path(sys.argv[1])
signer = KeySigner()
signer.key = serialization.load_pem_private_key((root / "key.pem").read_bytes(), None)
reg = make_registry(root, signer)
print("ready", flush=True)
for i in itertools.count():
    m = make_model(root / "work" / f"m{i}", b"w" * (1 + i * 997 % 200_000))
    info = reg.push(m, "fraud", signer.sign(m), "alice", facts=GOOD_FACTS,
                    lineage=[("package", f"pkg=={i}", {})])
    reg.promote("fraud", str(info.version), "staging", "bob", approver="carol")
"""


def test_sigkill_at_random_points_leaves_a_consistent_store(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    signer = KeySigner()
    (tmp_path / "key.pem").write_bytes(
        signer.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    repo = str(Path(__file__).resolve().parents[2])
    rng = random.Random(20261130)
    for _ in range(6):
        proc = subprocess.Popen(
            [sys.executable, "-c", WORKER, str(tmp_path), repo],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read() if proc.stderr else ""
        time.sleep(rng.uniform(0.05, 1.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)

    reg = make_registry(tmp_path, signer)
    with Session(reg.engine) as session:
        versions = session.scalars(select(ModelVersion).order_by(ModelVersion.version)).all()
        registered = {
            r.subject
            for r in session.scalars(select(AuditRecord).where(AuditRecord.action == "register"))
        }
    assert versions, "the worker never completed a registration; raise the sleep bounds"
    assert [v.version for v in versions] == list(range(1, len(versions) + 1))
    for v in versions:
        assert (
            f"fraud@{v.version}" in registered
        )  # the version and its audit record landed together
        info = reg.show("fraud", str(v.version))
        with reg.materialize(info) as (folder, sig):  # every byte present and digest-verified
            assert signer.verify(folder, sig).verified
        assert json.loads(reg.store.read_bytes(v.manifest_digest))["name"] == "fraud"
    assert audit.verify_log(reg.engine).ok
