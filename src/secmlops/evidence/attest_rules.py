"""Stable rule ids of attestation verification (documented in docs/rules.md)."""

from __future__ import annotations

from secmlops.findings import Rule, Severity

SIGNATURE_INVALID = Rule(
    "ATTEST-SIGNATURE-INVALID",
    Severity.CRITICAL,
    "Attestation not signed by the trusted key",
    "No signature in the DSSE envelope verifies with the given public key over the envelope's "
    "payload and payload type: the statement was changed after signing, a signature was copied "
    "from another envelope, or another key signed it.",
    "Obtain the attestation from its producer again and verify it with the producer's public "
    "key; never trust the statement inside an envelope that does not verify.",
    ("NIST-AI-RMF:MANAGE-2.4", "ISO42001:A.6.2.6", "SLSA:verification", "CWE-347"),
)
SUBJECT_MISMATCH = Rule(
    "ATTEST-SUBJECT-MISMATCH",
    Severity.CRITICAL,
    "Artifact does not match the attested subject",
    "The attestation is about artifacts with other digests than the files given: a file was "
    "changed, replaced, removed or added after the attestation was made.",
    "Rebuild or re-attest the artifact from a trusted run, or find out who changed the file.",
    ("NIST-AI-RMF:MANAGE-2.4", "ISO42001:A.7.4", "OWASP-ML:ML10", "CWE-345"),
)
PREDICATE_TYPE = Rule(
    "ATTEST-PREDICATE-TYPE",
    Severity.HIGH,
    "Attestation has an unexpected predicate type",
    "A valid signature over the wrong kind of statement (for example a scan result where "
    "build provenance is required) proves nothing about what the policy asked for.",
    "Ask for the attestation of the expected predicate type, or correct --predicate-type.",
    ("NIST-AI-RMF:MANAGE-2.4", "SLSA:verification", "CWE-345"),
)

ALL: dict[str, Rule] = {r.rule_id: r for r in (SIGNATURE_INVALID, SUBJECT_MISMATCH, PREDICATE_TYPE)}
