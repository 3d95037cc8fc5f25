"""The model registry: immutable signed versions, movable aliases, gates on every way in and out.

No signature, no deploy: `push` verifies the signature and runs the register gate before anything is
recorded; `promote` re-verifies the stored bytes and re-runs the gate with current facts (a CVE
published yesterday blocks today's promotion); `pull` verifies before the files appear at the
destination. Content goes to the artifact store first (idempotent, by digest), then one database
transaction records the version, its lineage and the audit record together: a crash at any point
leaves either a complete version or none.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from secmlops.errors import Error, StoreError
from secmlops.policy.decision import Decision
from secmlops.store import audit
from secmlops.store.artifacts import ArtifactStore
from secmlops.store.db import Alias, AliasHistory, LineageEdge, ModelVersion, transaction
from secmlops.store.lineage import normalise_ref

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
MANIFEST_MAX = 16 << 20


class GateDenied(Error):
    """A gate refused the action; `decision` holds every reason."""

    def __init__(self, action: str, subject: str, decision: Decision) -> None:
        reasons = "; ".join(f"{v.rule_id}: {v.msg}" for v in decision.deny)
        super().__init__(f"{action} of {subject} denied by policy: {reasons}")
        self.decision = decision


@dataclass(frozen=True, slots=True)
class SignatureFacts:
    """What signature verification found, in the shape the gate reads."""

    present: bool
    verified: bool
    signer: str = ""
    reason: str = ""

    def to_input(self) -> dict[str, Any]:
        return {"present": self.present, "verified": self.verified, "signer": self.signer,
                "reason": self.reason}  # fmt: skip


# (model folder or file, signature file) -> facts. The CLI supplies one built on evidence.signing.
Verifier = Callable[[Path, Path], SignatureFacts]
Gate = Callable[[Mapping[str, Any]], Decision]
# Facts that change over time (e.g. vulnerabilities of the recorded packages today).
FreshFacts = Callable[["VersionInfo"], Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class Roles:
    """Who may push, approve and promote. No roles file: anyone may act, but a registrant still
    cannot approve their own version (the gate's separation-of-duties rule)."""

    members: Mapping[str, frozenset[str]] | None = None

    def check(self, actor: str, role: str) -> None:
        if self.members is not None and actor not in self.members.get(role, frozenset()):
            raise StoreError(f"{actor} may not {role}", hint="ask an owner of the roles file")

    @classmethod
    def load(cls, path: Path) -> Roles:
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise StoreError(f"cannot read roles file {path}: {exc}") from exc
        roles = raw.get("roles") if isinstance(raw, dict) else None
        if not isinstance(roles, dict) or not all(
            r in ("push", "approve", "promote")
            and isinstance(v, list)
            and all(isinstance(u, str) for u in v)
            for r, v in roles.items()
        ):
            raise StoreError(
                f"roles file {path} must be `roles: {{push|approve|promote: [user, ...]}}`"
            )
        return cls({r: frozenset(v) for r, v in roles.items()})


@dataclass(frozen=True, slots=True)
class VersionInfo:
    name: str
    version: int
    manifest_digest: str
    signature_digest: str
    registrant: str
    created_at: str
    aliases: tuple[str, ...]
    decision: Mapping[str, Any]
    facts: Mapping[str, Any]
    lineage: tuple[tuple[str, str, Mapping[str, Any]], ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "version": self.version, "manifest": f"sha256:{self.manifest_digest}",
            "signature": f"sha256:{self.signature_digest}", "registrant": self.registrant,
            "created_at": self.created_at, "aliases": list(self.aliases),
            "decision": self.decision,
            "lineage": [{"kind": k, "ref": r, "detail": d} for k, r, d in self.lineage],
        }  # fmt: skip


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise StoreError(f"invalid model name {name!r}", hint="letters, digits, . _ - (max 100)")
    return name


def model_files(path: Path) -> list[tuple[str, Path]]:
    """(relative POSIX path, file) for a model file or folder; links and specials are refused."""
    if path.is_symlink():
        raise StoreError(f"{path} is a symbolic link; registries take real files only")
    if path.is_file():
        return [(path.name, path)]
    if not path.is_dir():
        raise StoreError(f"no such model file or folder: {path}")
    found: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames.sort()
        for name in [*sorted(filenames), *dirnames]:
            full = Path(dirpath) / name
            if full.is_symlink():
                raise StoreError(f"{full} is a symbolic link; registries take real files only")
        for name in sorted(filenames):
            full = Path(dirpath) / name
            if not full.is_file():
                raise StoreError(f"{full} is not a regular file")
            found.append((full.relative_to(path).as_posix(), full))
    if not found:
        raise StoreError(f"model folder {path} is empty")
    return found


class Registry:
    def __init__(
        self,
        store: ArtifactStore,
        engine: Engine,
        *,
        verifier: Verifier,
        gate: Gate,
        roles: Roles | None = None,
        scan: Callable[[Path], list[dict[str, Any]]] | None = None,
    ) -> None:
        self.store, self.engine, self.verifier, self.gate = store, engine, verifier, gate
        self.roles = roles or Roles()
        self.scan = scan or scan_model_findings

    # --- writing -------------------------------------------------------------------------------
    def push(
        self,
        path: Path,
        name: str,
        signature: Path,
        actor: str,
        *,
        facts: Mapping[str, Any] | None = None,
        lineage: Sequence[tuple[str, str, Mapping[str, Any]]] = (),
        exclude: Sequence[Path] = (),
    ) -> VersionInfo:
        """Verify, gate, store and record a new version; GateDenied when policy refuses it."""
        check_name(name)
        self.roles.check(actor, "push")
        skip = {p.resolve() for p in (signature, *exclude)}
        files = [(rel, f) for rel, f in model_files(path) if f.resolve() not in skip]
        if not signature.is_file():
            sig = SignatureFacts(False, False, reason=f"no signature file at {signature}")
        else:
            sig = self.verifier(path, signature)
        document = {
            **(facts or {}),
            "stage": "register",
            "model": {"name": name, **dict((facts or {}).get("model", {}))},
            "signature": sig.to_input(),
            "findings": [*(facts or {}).get("findings", []), *self.scan(path)],
            "registrant": actor,
        }
        decision = self.gate(document)
        if not decision.allow:
            with transaction(self.engine) as session:
                audit.append(
                    session, actor, "register-denied", name, {"decision": decision.to_dict()}
                )
            raise GateDenied("registration", name, decision)
        manifest = {
            "name": name,
            "kind": "folder" if path.is_dir() else "file",
            "signature_name": signature.name,
            "files": [
                {"path": rel, "digest": self.store.put_file(f), "size": f.stat().st_size}
                for rel, f in files
            ],
        }
        manifest_digest = self.store.put_bytes(json.dumps(manifest, sort_keys=True).encode())
        signature_digest = self.store.put_file(signature)
        with transaction(self.engine) as session:
            latest = session.scalars(
                select(ModelVersion.version).where(ModelVersion.name == name)
                .order_by(ModelVersion.version.desc()).limit(1)
            ).first()  # fmt: skip
            row = ModelVersion(
                name=name, version=(latest or 0) + 1, manifest_digest=manifest_digest,
                signature_digest=signature_digest, registrant=actor,
                decision=json.dumps(decision.to_dict()), facts=json.dumps(document, default=str),
            )  # fmt: skip
            session.add(row)
            session.flush()
            for kind, ref, detail in lineage:
                session.add(LineageEdge(model_version_id=row.id, kind=kind, ref=normalise_ref(ref),
                                        detail=json.dumps(dict(detail), default=str)))  # fmt: skip
            audit.append(session, actor, "register", f"{name}@{row.version}",
                         {"manifest": manifest_digest, "signature": signature_digest,
                          "decision": decision.to_dict()})  # fmt: skip
            version = row.version
        return self.show(name, str(version))

    def promote(
        self,
        name: str,
        ref: str,
        alias: str,
        actor: str,
        *,
        approver: str | None = None,
        fresh_facts: FreshFacts | None = None,
    ) -> VersionInfo:
        """Move ALIAS to a version after re-verifying its bytes and re-running the gate."""
        self.roles.check(actor, "promote")
        if approver is not None:
            self.roles.check(approver, "approve")
        info = self.show(name, ref)
        with self.materialize(info) as (folder, signature):
            sig = self.verifier(_target(folder, self._manifest(info)), signature)
            findings = self.scan(folder)
        recorded = dict(info.facts)
        fresh = dict(fresh_facts(info)) if fresh_facts else {}
        document = {
            **recorded,
            **fresh,
            "stage": "promote",
            "alias": alias,
            "signature": sig.to_input(),
            "findings": [*_non_model(recorded.get("findings", [])), *findings,
                         *fresh.get("findings", [])],
            "registrant": info.registrant,
            "approver": approver,
        }  # fmt: skip
        if approver is None:
            document.pop("approver")
        decision = self.gate(document)
        with transaction(self.engine) as session:
            if not decision.allow:
                audit.append(session, actor, "promote-denied", f"{name}@{info.version}",
                             {"alias": alias, "decision": decision.to_dict()})  # fmt: skip
            else:
                self._move_alias(session, name, alias, info.version, actor)
                audit.append(session, actor, "promote", f"{name}@{info.version}",
                             {"alias": alias, "approver": approver, "decision": decision.to_dict()})  # fmt: skip
        if not decision.allow:
            raise GateDenied(f"promotion to {alias}", f"{name}@{info.version}", decision)
        return self.show(name, str(info.version))

    def rollback(self, name: str, alias: str, actor: str) -> VersionInfo:
        """Point ALIAS back to where it pointed before its last move."""
        self.roles.check(actor, "promote")
        with transaction(self.engine) as session:
            moves = session.scalars(
                select(AliasHistory).where(AliasHistory.name == name, AliasHistory.alias == alias,
                                           AliasHistory.rolled_back.is_(False))
                .order_by(AliasHistory.id.desc()).limit(2)
            ).all()  # fmt: skip
            if len(moves) < 2:
                raise StoreError(f"{name}:{alias} has no earlier version to roll back to")
            current, previous = moves
            current.rolled_back = True
            target = session.get(Alias, (name, alias))
            assert target is not None
            target.version = previous.version
            audit.append(session, actor, "rollback", f"{name}:{alias}",
                         {"from": current.version, "to": previous.version})  # fmt: skip
        return self.show(name, str(previous.version))

    def pull(self, name: str, ref: str, dest: Path, actor: str) -> VersionInfo:
        """Write a verified copy to DEST (which must not exist); nothing appears if a check fails."""
        if dest.exists():
            raise StoreError(f"{dest} already exists", hint="pull into a new path")
        info = self.show(name, ref)
        manifest = self._manifest(info)
        with self.materialize(info) as (folder, signature):
            target = _target(folder, manifest)
            sig = self.verifier(target, signature)
            if not sig.verified:
                raise StoreError(
                    f"{name}@{info.version} fails signature verification: {sig.reason}"
                )
            dest.parent.mkdir(parents=True, exist_ok=True)
            if manifest["kind"] == "file":
                shutil.move(str(target), dest)
                shutil.move(str(signature), dest.with_name(dest.name + ".sig"))
            else:
                shutil.move(str(signature), folder / manifest["signature_name"])
                shutil.move(str(folder), dest)
        with transaction(self.engine) as session:
            audit.append(session, actor, "pull", f"{name}@{info.version}", {"dest": str(dest)})
        return info

    # --- reading -------------------------------------------------------------------------------
    def list_versions(self, name: str | None = None) -> list[VersionInfo]:
        with Session(self.engine) as session:
            query = select(ModelVersion).order_by(ModelVersion.name, ModelVersion.version)
            if name:
                query = query.where(ModelVersion.name == name)
            rows = session.scalars(query).all()
            return [self._info(session, row) for row in rows]

    def show(self, name: str, ref: str) -> VersionInfo:
        """REF is a version number or an alias."""
        with Session(self.engine) as session:
            if ref.isdigit():
                number = int(ref)
            elif ref == "latest":
                latest = session.scalars(
                    select(ModelVersion.version).where(ModelVersion.name == name)
                    .order_by(ModelVersion.version.desc()).limit(1)
                ).first()  # fmt: skip
                if latest is None:
                    raise StoreError(f"no model named {name}")
                number = latest
            else:
                alias = session.get(Alias, (name, ref))
                if alias is None:
                    raise StoreError(f"{name} has no alias {ref!r}")
                number = alias.version
            row = session.scalars(
                select(ModelVersion).where(
                    ModelVersion.name == name, ModelVersion.version == number
                )
            ).first()
            if row is None:
                raise StoreError(f"no version {ref} of model {name}")
            return self._info(session, row, with_lineage=True)

    def affected_by(self, ref: str) -> list[VersionInfo]:
        """Every version whose lineage names REF (a digest or name==version)."""
        wanted = normalise_ref(ref).removeprefix("sha256:")
        with Session(self.engine) as session:
            edges = session.scalars(select(LineageEdge)).all()
            ids = {e.model_version_id for e in edges
                   if e.ref.lower().removeprefix("sha256:") == wanted}  # fmt: skip
            rows = [session.get(ModelVersion, i) for i in sorted(ids)]
            return [self._info(session, r) for r in rows if r is not None]

    def _info(
        self, session: Session, row: ModelVersion, *, with_lineage: bool = False
    ) -> VersionInfo:
        aliases = session.scalars(
            select(Alias.alias).where(Alias.name == row.name, Alias.version == row.version)
        ).all()
        lineage: tuple[tuple[str, str, Mapping[str, Any]], ...] = ()
        if with_lineage:
            edges = session.scalars(
                select(LineageEdge)
                .where(LineageEdge.model_version_id == row.id)
                .order_by(LineageEdge.id)
            ).all()
            lineage = tuple((e.kind, e.ref, json.loads(e.detail)) for e in edges)
        return VersionInfo(
            row.name, row.version, row.manifest_digest, row.signature_digest, row.registrant,
            _aware(row.created_at).isoformat(), tuple(sorted(aliases)), json.loads(row.decision),
            json.loads(row.facts), lineage,
        )  # fmt: skip

    def _manifest(self, info: VersionInfo) -> dict[str, Any]:
        manifest: dict[str, Any] = json.loads(
            self.store.read_bytes(info.manifest_digest, max_bytes=MANIFEST_MAX)
        )
        return manifest

    def signature_target(self, info: VersionInfo, folder: Path) -> Path:
        """Inside a materialized version: the path its signature covers (file or folder)."""
        return _target(folder, self._manifest(info))

    @contextmanager
    def materialize(self, info: VersionInfo) -> Iterator[tuple[Path, Path]]:
        """The version's files and signature in a private temporary folder, digests verified."""
        manifest = self._manifest(info)
        with tempfile.TemporaryDirectory(prefix="secmlops-registry-") as tmp:
            folder, signature = Path(tmp) / "model", Path(tmp) / "model.sig"
            for entry in manifest["files"]:
                rel = Path(entry["path"])
                if rel.is_absolute() or ".." in rel.parts:
                    raise StoreError(f"manifest of {info.name}@{info.version} names {rel}")
                self.store.copy_to(entry["digest"], folder / rel)
            self.store.copy_to(info.signature_digest, signature)
            yield folder, signature

    @staticmethod
    def _move_alias(session: Session, name: str, alias: str, version: int, actor: str) -> None:
        row = session.get(Alias, (name, alias))
        if row is None:
            session.add(Alias(name=name, alias=alias, version=version))
        else:
            row.version = version
        session.add(AliasHistory(name=name, alias=alias, version=version, actor=actor))


def _aware(moment: datetime) -> datetime:
    # SQLite returns naive datetimes even for timezone-aware columns; they were written in UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _target(folder: Path, manifest: Mapping[str, Any]) -> Path:
    """What the signature covers: the single file, or the folder."""
    return folder / manifest["files"][0]["path"] if manifest["kind"] == "file" else folder


def _non_model(findings: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    # Recorded model-scan findings are replaced by a fresh scan of the stored bytes.
    return [f for f in findings if not str(f.get("rule_id", "")).startswith("MODEL-")]


def open_registry(
    home: Path,
    verifier: Verifier,
    *,
    store: str | Path | None = None,
    engine: Engine | None = None,
    roles: Roles | None = None,
) -> Registry:
    """The registry of a secmlops home folder (or an explicit store and database), gated by the
    policy bundle's register gate."""
    from secmlops.policy import evaluate_gate
    from secmlops.store.artifacts import open_store
    from secmlops.store.db import home_database_url, open_database

    return Registry(
        open_store(store or home / "store"),
        engine or open_database(home_database_url(home)),
        verifier=verifier,
        gate=evaluate_gate,
        roles=roles,
    )


def signature_verifier(method: Any) -> Verifier:
    """A Verifier over the OpenSSF model-signing format (evidence.signing) with one trust method."""
    from secmlops.errors import SignatureError
    from secmlops.evidence.signing import verify_model

    def verify(model: Path, signature: Path) -> SignatureFacts:
        try:
            result = verify_model(model, method, signature=signature)
        except SignatureError as exc:
            return SignatureFacts(True, False, reason=exc.message)
        problems = [p.message for p in result.signer_problems]
        for label, group in (("changed", result.changed), ("missing", result.missing),
                             ("extra", result.extra), ("unsafe", result.unsafe)):  # fmt: skip
            problems += [f"{label}: {p.path}" for p in group]
        return SignatureFacts(True, result.verified, result.signer, "; ".join(problems))

    return verify


def scan_model_findings(path: Path) -> list[dict[str, Any]]:
    """Model-scan findings as gate input; a scan that could not finish is a critical finding."""
    from secmlops.scan.models import scan_paths

    report = scan_paths([path])
    out = [f.to_dict() for f in report.findings]
    out += [{"rule_id": "MODEL-SCAN-ERROR", "severity": "critical", "message": e.message,
             "location": e.location.to_dict(), "evidence": {}} for e in report.errors]  # fmt: skip
    return out
