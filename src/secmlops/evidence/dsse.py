"""DSSE (Dead Simple Signing Envelope) v1: pre-authentication encoding, signing, verification.

The signature covers PAE(payloadType, payload), never the JSON around it, so re-encoding the
envelope cannot change what was signed and the payload type cannot be swapped.
Spec: https://github.com/secure-systems-lab/dsse (protocol.md, envelope.md).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from secmlops.errors import EvidenceError, SignatureError
from secmlops.evidence.keys import PrivateKey, PublicKey, key_id, sign_bytes, verify_bytes

INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
# An envelope is small (a statement plus signatures); refuse anything far larger before parsing.
MAX_ENVELOPE_BYTES = 64 * 2**20


def pae(payload_type: str, body: bytes) -> bytes:
    """The bytes a DSSE signature covers: "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body."""
    type_bytes = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(type_bytes), type_bytes, len(body), body)


@dataclass(frozen=True, slots=True)
class Signature:
    """One signature of an envelope; `keyid` is an unauthenticated hint only."""

    sig: bytes
    keyid: str = ""


@dataclass(frozen=True, slots=True)
class Envelope:
    """A decoded DSSE envelope (payload and signatures as raw bytes)."""

    payload_type: str
    payload: bytes
    signatures: tuple[Signature, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "payloadType": self.payload_type,
            "payload": base64.b64encode(self.payload).decode("ascii"),
            "signatures": [
                {"keyid": s.keyid, "sig": base64.b64encode(s.sig).decode("ascii")}
                for s in self.signatures
            ],
        }


def sign_envelope_bytes(payload_type: str, payload: bytes, key: PrivateKey) -> Envelope:
    """Sign `payload` as `payload_type` with one key."""
    signature = sign_bytes(key, pae(payload_type, payload))
    return Envelope(payload_type, payload, (Signature(signature, key_id(key.public_key())),))


def b64decode_any(text: str, what: str) -> bytes:
    """Standard or URL-safe base64, padded or not (the spec requires accepting both alphabets)."""
    if not isinstance(text, str):
        raise EvidenceError(f"{what} is not a base64 string")
    normalised = text.strip().replace("-", "+").replace("_", "/")
    normalised += "=" * (-len(normalised) % 4)
    try:
        return base64.b64decode(normalised, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise EvidenceError(f"{what} is not valid base64 ({exc})") from None


def parse_envelope(raw: bytes | str | Mapping[str, Any]) -> Envelope:
    """Decode a DSSE JSON envelope; a clear EvidenceError for anything that is not one."""
    if isinstance(raw, bytes | str):
        if len(raw) > MAX_ENVELOPE_BYTES:
            raise EvidenceError(f"envelope is larger than {MAX_ENVELOPE_BYTES} bytes")
        try:
            doc = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise EvidenceError(
                f"not JSON ({exc})", hint="is the file truncated or not an attestation?"
            ) from None
        except RecursionError:
            raise EvidenceError("not a DSSE envelope (JSON nested too deeply)") from None
    else:
        doc = raw
    if not isinstance(doc, Mapping):
        raise EvidenceError("not a DSSE envelope (the JSON is not an object)")
    missing = [k for k in ("payloadType", "payload", "signatures") if k not in doc]
    if missing:
        raise EvidenceError(
            f"not a DSSE envelope (missing {', '.join(missing)})",
            hint="secmlops verify-attestation reads the .intoto.json files `secmlops attest` writes",
        )
    payload_type = doc["payloadType"]
    if not isinstance(payload_type, str):
        raise EvidenceError("payloadType is not a string")
    payload = b64decode_any(doc["payload"], "payload")
    sigs = doc["signatures"]
    if not isinstance(sigs, list) or not sigs:
        raise EvidenceError("the envelope has no signatures")
    signatures: list[Signature] = []
    for i, entry in enumerate(sigs):
        if not isinstance(entry, Mapping) or "sig" not in entry:
            raise EvidenceError(f"signature {i} is not an object with a 'sig'")
        keyid = entry.get("keyid", "")
        if not isinstance(keyid, str):
            raise EvidenceError(f"signature {i}: keyid is not a string")
        signatures.append(Signature(b64decode_any(entry["sig"], f"signature {i}"), keyid))
    return Envelope(payload_type, payload, tuple(signatures))


def verify_envelope_signatures(
    envelope: Envelope, keys: Sequence[PublicKey], threshold: int = 1
) -> tuple[str, ...]:
    """Ids of the trusted keys whose signatures verify; SignatureError below `threshold`.

    Key ids in the envelope are hints and are not trusted: every signature is tried against
    every key, and one key counts once however many times it signed.
    """
    if threshold < 1:
        raise SignatureError("a threshold below 1 would accept unsigned envelopes")
    message = pae(envelope.payload_type, envelope.payload)
    accepted: dict[str, None] = {}
    for signature in envelope.signatures:
        for key in keys:
            kid = key_id(key)
            if kid not in accepted and verify_bytes(key, signature.sig, message):
                accepted[kid] = None
                break
    if len(accepted) < threshold:
        raise SignatureError(
            f"no valid signature by the given key{'s' if len(keys) != 1 else ''}"
            if not accepted
            else f"{len(accepted)} of the required {threshold} signatures verify",
            hint="the payload or its type was changed after signing, or the key is not the signer's",
        )
    return tuple(accepted)
