from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from secmlops.errors import StoreError
from secmlops.store import audit
from secmlops.store.registry import GateDenied, Roles
from tests.store.conftest import GOOD_FACTS, KeySigner, make_model, make_registry


class Exec:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        import os

        return (os.system, ("true",))


def test_push_promote_pull_rollback(tmp_path: Path, signer: KeySigner) -> None:
    reg = make_registry(tmp_path, signer)
    m1 = make_model(tmp_path / "m1", b"v1")
    v1 = reg.push(m1, "fraud", signer.sign(m1), "alice", facts=GOOD_FACTS,
                  lineage=[("dataset", "sha256:" + "a" * 64, {}), ("package", "numpy==2.1.0", {})])  # fmt: skip
    assert v1.version == 1
    m2 = make_model(tmp_path / "m2", b"v2")
    v2 = reg.push(m2, "fraud", signer.sign(m2), "alice", facts=GOOD_FACTS)
    assert v2.version == 2
    reg.promote("fraud", "1", "production", "bob", approver="bob2")
    reg.promote("fraud", "2", "production", "bob", approver="bob2")
    assert reg.show("fraud", "production").version == 2
    assert reg.rollback("fraud", "production", "bob").version == 1
    assert reg.show("fraud", "production").version == 1
    out = tmp_path / "pulled"
    reg.pull("fraud", "production", out, "carol")
    assert (out / "weights.bin").read_bytes() == b"v1"
    assert [v.name for v in reg.affected_by("numpy==2.1.0")] == ["fraud"]
    assert reg.affected_by("sha256:" + "a" * 64)[0].version == 1
    assert reg.affected_by("numpy==2.2.0") == []
    log = audit.verify_log(reg.engine)
    assert log.ok and log.records == 6  # 2 pushes, 2 promotions, 1 rollback, 1 pull


def test_versions_are_immutable_content(tmp_path: Path, signer: KeySigner) -> None:
    reg = make_registry(tmp_path, signer)
    m = make_model(tmp_path / "m")
    reg.push(m, "fraud", signer.sign(m), "alice", facts=GOOD_FACTS)
    (m / "weights.bin").write_bytes(b"changed after registration")
    out = tmp_path / "out"
    reg.pull("fraud", "1", out, "carol")
    assert (out / "weights.bin").read_bytes() == b"weights"


def test_unsigned_model_refused_and_audited(tmp_path: Path, signer: KeySigner) -> None:
    reg = make_registry(tmp_path, signer)
    m = make_model(tmp_path / "m")
    with pytest.raises(GateDenied) as info:
        reg.push(m, "fraud", m / "model.sig", "alice", facts=GOOD_FACTS)
    assert [v.rule_id for v in info.value.decision.deny] == ["POLICY-SIGNATURE-REQUIRED"]
    assert reg.list_versions() == []
    assert audit.verify_log(reg.engine).records == 1


def test_tampered_after_signing_refused(tmp_path: Path, signer: KeySigner) -> None:
    reg = make_registry(tmp_path, signer)
    m = make_model(tmp_path / "m")
    sig = signer.sign(m)
    (m / "weights.bin").write_bytes(b"backdoor")
    with pytest.raises(GateDenied, match="POLICY-SIGNATURE-INVALID"):
        reg.push(m, "fraud", sig, "alice", facts=GOOD_FACTS)


def test_malicious_pickle_refused_even_when_signed(tmp_path: Path, signer: KeySigner) -> None:
    reg = make_registry(tmp_path, signer)
    m = make_model(tmp_path / "m")
    (m / "extra.pkl").write_bytes(pickle.dumps(Exec()))
    with pytest.raises(GateDenied, match="POLICY-UNSAFE-SERIALIZATION"):
        reg.push(m, "fraud", signer.sign(m), "alice", facts=GOOD_FACTS)


def test_store_tampering_blocks_promotion_and_pull(tmp_path: Path, signer: KeySigner) -> None:
    reg = make_registry(tmp_path, signer)
    m = make_model(tmp_path / "m")
    info = reg.push(m, "fraud", signer.sign(m), "alice", facts=GOOD_FACTS)
    manifest = reg._manifest(info)
    digest = next(f["digest"] for f in manifest["files"] if f["path"] == "weights.bin")
    obj = tmp_path / "store" / "sha256" / digest[:2] / digest
    obj.chmod(0o644)
    obj.write_bytes(b"swapped!")
    with pytest.raises(StoreError, match="modified"):
        reg.promote("fraud", "1", "production", "bob", approver="carol")
    with pytest.raises(StoreError, match="modified"):
        reg.pull("fraud", "1", tmp_path / "out", "carol")
    assert not (tmp_path / "out").exists()


def test_fresh_facts_block_promotion(tmp_path: Path, signer: KeySigner) -> None:
    reg = make_registry(tmp_path, signer)
    m = make_model(tmp_path / "m")
    reg.push(m, "fraud", signer.sign(m), "alice", facts=GOOD_FACTS)
    cve = {"findings": [{"rule_id": "DEPS-VULN", "severity": "critical", "message": "published yesterday",
                         "location": {"package": "numpy==2.1.0"}, "evidence": {"id": "CVE-2026-0001"}}]}  # fmt: skip
    with pytest.raises(GateDenied, match="POLICY-VULNERABLE-DEPENDENCY"):
        reg.promote("fraud", "1", "production", "bob", approver="carol", fresh_facts=lambda _: cve)
    assert reg.show("fraud", "1").aliases == ()


def test_separation_of_duties_and_roles(tmp_path: Path, signer: KeySigner) -> None:
    roles = Roles({"push": frozenset({"alice"}), "approve": frozenset({"alice", "bob"}),
                   "promote": frozenset({"bob"})})  # fmt: skip
    reg = make_registry(tmp_path, signer, roles)
    m = make_model(tmp_path / "m")
    with pytest.raises(StoreError, match="bob may not push"):
        reg.push(m, "fraud", signer.sign(m), "bob", facts=GOOD_FACTS)
    reg.push(m, "fraud", signer.sign(m), "alice", facts=GOOD_FACTS)
    with pytest.raises(StoreError, match="alice may not promote"):
        reg.promote("fraud", "1", "production", "alice", approver="bob")
    with pytest.raises(GateDenied, match="POLICY-SEPARATION-OF-DUTIES"):
        reg.promote("fraud", "1", "production", "bob", approver="alice")
    with pytest.raises(GateDenied, match="POLICY-APPROVAL-MISSING"):
        reg.promote("fraud", "1", "production", "bob")
    with pytest.raises(StoreError, match="carol may not approve"):
        reg.promote("fraud", "1", "production", "bob", approver="carol")


def test_symlinks_names_and_refs_are_refused(tmp_path: Path, signer: KeySigner) -> None:
    reg = make_registry(tmp_path, signer)
    m = make_model(tmp_path / "m")
    (m / "link").symlink_to("/etc/passwd")
    with pytest.raises(StoreError, match="symbolic link"):
        reg.push(m, "fraud", m / "model.sig", "alice")
    for bad in ("../x", "", "a b", "x" * 101):
        with pytest.raises(StoreError, match="invalid model name"):
            reg.push(tmp_path / "m", bad, m / "model.sig", "alice")
    with pytest.raises(StoreError, match="no version"):
        reg.show("fraud", "3")
    with pytest.raises(StoreError, match="no alias"):
        reg.show("fraud", "production")
    with pytest.raises(StoreError, match="no earlier version"):
        reg.rollback("fraud", "production", "bob")


def test_roles_file_errors(tmp_path: Path) -> None:
    path = tmp_path / "roles.yaml"
    path.write_text("roles: {push: alice}")
    with pytest.raises(StoreError, match="must be"):
        Roles.load(path)
    path.write_text("roles: {push: [alice], approve: [bob]}")
    assert Roles.load(path).members == {"push": {"alice"}, "approve": {"bob"}}
