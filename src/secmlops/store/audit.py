"""Tamper-evident audit log: a hash chain in the metadata database with signed checkpoints.

Each record's hash covers the previous hash and the canonical JSON of the record, so editing a
record breaks its own hash, dropping one breaks the sequence and the next record's link, and
reordering breaks the links. A signed checkpoint pins the head at a moment: truncating the tail
below a checkpoint, or rewriting the whole chain after it, no longer matches the signature.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from secmlops.evidence.keys import PrivateKey, PublicKey, key_id, sign_bytes, verify_bytes
from secmlops.store.db import AuditCheckpoint, AuditRecord, transaction

GENESIS = "0" * 64


def _canonical(seq: int, at: str, actor: str, action: str, subject: str, payload: str) -> bytes:
    doc = {"seq": seq, "at": at, "actor": actor, "action": action, "subject": subject,
           "payload": json.loads(payload)}  # fmt: skip
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _link(prev_hash: str, canonical: bytes) -> str:
    return hashlib.sha256(prev_hash.encode() + canonical).hexdigest()


def append(
    session: Session, actor: str, action: str, subject: str, payload: Mapping[str, Any]
) -> AuditRecord:
    """Add a record inside the caller's transaction (it commits with the change it describes)."""
    last = session.scalars(select(AuditRecord).order_by(AuditRecord.seq.desc()).limit(1)).first()
    seq = 1 if last is None else last.seq + 1
    prev = GENESIS if last is None else last.hash
    at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    body = json.dumps(dict(payload), sort_keys=True, default=str)
    record = AuditRecord(
        seq=seq, at=at, actor=actor, action=action, subject=subject, payload=body, prev_hash=prev,
        hash=_link(prev, _canonical(seq, at, actor, action, subject, body)),
    )  # fmt: skip
    session.add(record)
    session.flush()  # a concurrent writer with the same seq fails here, not silently forks
    return record


def checkpoint(engine: Engine, key: PrivateKey) -> AuditCheckpoint | None:
    """Sign the current head; None when the log is empty."""
    with transaction(engine) as session:
        head = session.scalars(
            select(AuditRecord).order_by(AuditRecord.seq.desc()).limit(1)
        ).first()
        if head is None:
            return None
        message = f"secmlops-audit-checkpoint:{head.seq}:{head.hash}".encode()
        cp = AuditCheckpoint(
            seq=head.seq,
            head_hash=head.hash,
            key_id=key_id(key.public_key()),
            signature=base64.b64encode(sign_bytes(key, message)).decode(),
            at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
        session.merge(cp)
        return cp


@dataclass(frozen=True, slots=True)
class AuditVerification:
    records: int
    checkpoints: int
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_log(engine: Engine, public_key: PublicKey | None = None) -> AuditVerification:
    """Walk the chain and the checkpoints; every inconsistency is named with its sequence number."""
    problems: list[str] = []
    with Session(engine) as session:
        records = session.scalars(select(AuditRecord).order_by(AuditRecord.seq)).all()
        checkpoints = session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.seq)).all()
        total = session.scalar(select(func.count()).select_from(AuditRecord)) or 0
    prev_hash, expected_seq = GENESIS, 1
    by_seq: dict[int, str] = {}
    for r in records:
        if r.seq != expected_seq:
            problems.append(f"records {expected_seq}..{r.seq - 1} are missing (dropped)")
        if r.prev_hash != prev_hash:
            problems.append(
                f"record {r.seq} does not link to the record before it (dropped or reordered)"
            )
        try:
            recomputed = _link(
                r.prev_hash, _canonical(r.seq, r.at, r.actor, r.action, r.subject, r.payload)
            )
        except json.JSONDecodeError:
            recomputed = ""
        if recomputed != r.hash:
            problems.append(
                f"record {r.seq} ({r.action} {r.subject}) was edited: its hash does not match"
            )
        by_seq[r.seq] = r.hash
        prev_hash, expected_seq = r.hash, r.seq + 1
    for cp in checkpoints:
        if public_key is not None:
            message = f"secmlops-audit-checkpoint:{cp.seq}:{cp.head_hash}".encode()
            try:
                signature = base64.b64decode(cp.signature, validate=True)
            except ValueError:
                signature = b""
            if cp.key_id != key_id(public_key) or not verify_bytes(public_key, signature, message):
                problems.append(f"checkpoint at record {cp.seq} is not signed by the expected key")
        if cp.seq not in by_seq:
            problems.append(f"checkpoint at record {cp.seq}: the record is gone (log truncated)")
        elif by_seq[cp.seq] != cp.head_hash:
            problems.append(
                f"checkpoint at record {cp.seq}: the chain was rewritten since it was signed"
            )
    return AuditVerification(total, len(checkpoints), tuple(problems))
