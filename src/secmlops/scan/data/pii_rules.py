"""Stable rule ids of the PII scanner (documented in docs/rules.md; a test keeps them in sync)."""

from __future__ import annotations

from secmlops.findings import Rule, Severity

_PRIVACY = (
    "NIST-AI-RMF:MEASURE-2.10",
    "ISO42001:A.7.4",
    "OWASP-ML:ML03",
    "GDPR:Art.5(1)(c)",
    "CWE-359",
)
_FIX = (
    "Remove the value from the data set or anonymise it (secmlops data anonymize: redact, "
    "mask, keyed hash or tokenise) before it reaches training, logs or monitoring."
)


def _entity_rule(rule_id: str, severity: Severity, what: str, why: str, *extra: str) -> Rule:
    return Rule(rule_id, severity, f"{what} in data", why, _FIX, (*_PRIVACY, *extra))


EMAIL = _entity_rule(
    "PII-EMAIL",
    Severity.MEDIUM,
    "E-mail address",
    "An e-mail address identifies a person directly and links records across systems; models "
    "trained on it can memorise and repeat it.",
)
PHONE = _entity_rule(
    "PII-PHONE",
    Severity.MEDIUM,
    "Phone number",
    "A phone number (valid for its region according to libphonenumber) identifies a person "
    "directly.",
)
CARD = _entity_rule(
    "PII-CARD",
    Severity.HIGH,
    "Payment card number",
    "A primary account number (issuer range, length and Luhn checksum all valid) must never be "
    "stored in clear outside a PCI DSS cardholder-data environment.",
    "PCI-DSS:3.5.1",
)
SSN = _entity_rule(
    "PII-SSN",
    Severity.HIGH,
    "US Social Security number",
    "An SSN in an issuable range enables identity theft; it is among the most sensitive "
    "identifiers there are.",
)
IBAN = _entity_rule(
    "PII-IBAN",
    Severity.HIGH,
    "Bank account number (IBAN)",
    "An IBAN with a valid country length and mod-97 checksum identifies a person's bank account.",
)
IP = _entity_rule(
    "PII-IP",
    Severity.LOW,
    "IP address",
    "A public IP address is personal data under the GDPR (it can single out a household); "
    "private and loopback addresses are reported at info level.",
)
DOB = _entity_rule(
    "PII-DOB",
    Severity.MEDIUM,
    "Date of birth",
    "A date of birth (found by a header such as dob/birth_date or words such as 'born' or "
    "'DOB:' next to a date) with a postcode and sex re-identifies most people.",
)
ID_DOCUMENT = _entity_rule(
    "PII-ID-DOCUMENT",
    Severity.HIGH,
    "Passport or driving-licence number",
    "Identity document numbers have no checksum common to all issuers; they are reported only "
    "when a header or a nearby word (passport, licence, DL#) says what they are.",
)
SECRET = _entity_rule(
    "PII-SECRET",
    Severity.HIGH,
    "Credential",
    "A credential found by the secrets scanner inside a data set leaks to everyone who can "
    "read the data or query a model trained on it.",
    "CWE-798",
)
COLUMN = Rule(
    "PII-COLUMN",
    Severity.HIGH,
    "Column holds personal data",
    "A large share of the column's values (or a header that names the kind of data plus "
    "matching values) are validated personal identifiers; the whole column is personal data. "
    "The finding's severity is that of the entity.",
    "Drop the column, or anonymise it with a per-column policy (keyed hash keeps join keys, "
    "tokenisation keeps the format and is reversible with the vault key).",
    _PRIVACY,
)
NAME_ADDRESS = Rule(
    "PII-NAME-ADDRESS",
    Severity.INFO,
    "Column named like person names or addresses (not checked by content)",
    "Names and postal addresses need a named-entity (NER) model; the pattern scanner only sees "
    "the header, so it reports the column for review rather than a verdict.",
    "Review the column; anonymise it with a per-column policy if it holds names or addresses.",
    _PRIVACY,
)

ENTITY_RULES: dict[str, Rule] = {
    "EMAIL": EMAIL,
    "PHONE": PHONE,
    "CARD": CARD,
    "SSN": SSN,
    "IBAN": IBAN,
    "IP": IP,
    "DOB": DOB,
    "ID_DOCUMENT": ID_DOCUMENT,
    "SECRET": SECRET,
}
"""The cell-level rule of each entity name."""

ALL: dict[str, Rule] = {r.rule_id: r for r in (*ENTITY_RULES.values(), COLUMN, NAME_ADDRESS)}
