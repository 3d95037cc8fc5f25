"""Stable rule ids of model-signature verification (documented in docs/rules.md)."""

from __future__ import annotations

from secmlops.findings import Rule, Severity

_INTEGRITY = ("NIST-AI-RMF:MANAGE-2.4", "ISO42001:A.6.2.6", "OWASP-ML:ML10", "CWE-345")
_AUTHENTICITY = ("NIST-AI-RMF:GOVERN-6.1", "ISO42001:A.10.3", "OWASP-ML:ML06", "CWE-347")

_RESIGN = (
    "Do not deploy this copy. Fetch the model again from its trusted source; if the change is "
    "intended, have the owner re-sign the model."
)

FILE_CHANGED = Rule(
    "SIGN-FILE-CHANGED",
    Severity.CRITICAL,
    "Model file differs from its signature",
    "The digest of a signed file no longer matches the signed manifest: a single flipped byte in "
    "a weight or config file is enough to backdoor a model.",
    _RESIGN,
    _INTEGRITY,
)
FILE_MISSING = Rule(
    "SIGN-FILE-MISSING",
    Severity.CRITICAL,
    "Signed model file is missing",
    "A file listed in the signature is not in the model: the model that would be loaded is not "
    "the one that was signed.",
    _RESIGN,
    _INTEGRITY,
)
FILE_EXTRA = Rule(
    "SIGN-FILE-EXTRA",
    Severity.HIGH,
    "File not covered by the signature",
    "A file in the model folder is not in the signed manifest; frameworks load extra files "
    "(custom code, pickles, tokenizer scripts) by name, so an unsigned file can change behaviour.",
    "Remove the file, or have the owner re-sign the model with it.",
    _INTEGRITY,
)
UNSAFE_PATH = Rule(
    "SIGN-UNSAFE-PATH",
    Severity.CRITICAL,
    "Symbolic link or special file in the model",
    "Symbolic links can point outside the model (or at another model's files) and special files "
    "(FIFOs, devices) have no stable content; neither is ever part of a secmlops signature.",
    "Replace the link by the file it points to (or remove it) and re-sign.",
    _INTEGRITY,
)
SIGNATURE_INVALID = Rule(
    "SIGN-SIGNATURE-INVALID",
    Severity.CRITICAL,
    "Signature does not verify",
    "The DSSE signature over the signed statement is not valid for the signer's key: the "
    "statement was edited after signing or the signature was forged.",
    "Treat the model as untrusted; obtain a fresh copy and signature from the owner.",
    _AUTHENTICITY,
)
WRONG_SIGNER = Rule(
    "SIGN-WRONG-SIGNER",
    Severity.CRITICAL,
    "Signed by a different key or signer",
    "The signature was made by another key, certificate or method than the one you trust: a "
    "valid signature by the wrong party proves nothing about the model.",
    "Verify with the owner's public key or CA; if the signer changed, confirm it out of band.",
    _AUTHENTICITY,
)
UNTRUSTED_CERTIFICATE = Rule(
    "SIGN-UNTRUSTED-CERTIFICATE",
    Severity.CRITICAL,
    "Signing certificate does not chain to a trusted CA",
    "The certificate in the signature was not issued (directly or through intermediates) by the "
    "certificate authority you passed, or it may not be used for signing.",
    "Verify with the CA of the organisation that signs the model; reject self-issued chains.",
    _AUTHENTICITY,
)
CERTIFICATE_EXPIRED = Rule(
    "SIGN-CERTIFICATE-EXPIRED",
    Severity.HIGH,
    "Signing certificate expired or not yet valid",
    "A certificate in the signing chain is outside its validity period now; certificate-chain "
    "signatures carry no trusted timestamp, so the signature cannot be dated inside it.",
    "Have the owner re-sign the model with a current certificate.",
    _AUTHENTICITY,
)
IDENTITY_MISMATCH = Rule(
    "SIGN-IDENTITY-MISMATCH",
    Severity.CRITICAL,
    "Signer identity is not the expected one",
    "The certificate is valid but names another identity (e-mail, URI, workflow) or identity "
    "provider than the one required.",
    "Check who signed the model; only accept the identity that owns it.",
    _AUTHENTICITY,
)

ALL: dict[str, Rule] = {
    r.rule_id: r
    for r in (
        FILE_CHANGED,
        FILE_MISSING,
        FILE_EXTRA,
        UNSAFE_PATH,
        SIGNATURE_INVALID,
        WRONG_SIGNER,
        UNTRUSTED_CERTIFICATE,
        CERTIFICATE_EXPIRED,
        IDENTITY_MISMATCH,
    )
}
