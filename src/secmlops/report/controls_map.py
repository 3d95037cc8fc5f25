"""Which NIST AI RMF subcategories and ISO/IEC 42001 Annex A controls each secmlops control serves.

Rules carry their own control ids; this table is the auditor's view of the whole system, used by
`secmlops report` to show which controls have evidence and which do not.
"""

from __future__ import annotations

CONTROL_MAP: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("Model artifact scanning (pickle code execution, evasions)", "model_scan",
     ("NIST-AI-RMF:MANAGE-2.2", "ISO42001:A.6.2.6")),
    ("Model signing and verification (no signature, no deploy)", "signature",
     ("NIST-AI-RMF:MANAGE-2.2", "ISO42001:A.7.5")),
    ("Dependency vulnerabilities and malicious packages", "dependencies",
     ("NIST-AI-RMF:GOVERN-6.1", "ISO42001:A.10.3")),
    ("Performance thresholds and regression against production", "metrics",
     ("NIST-AI-RMF:MEASURE-2.3", "ISO42001:A.6.2.4")),
    ("Fairness across groups", "fairness", ("NIST-AI-RMF:MEASURE-2.11", "ISO42001:A.7.4")),
    ("Model card / documentation", "model_card", ("NIST-AI-RMF:MAP-4.1", "ISO42001:A.6.2.7")),
    ("Personal data and secrets kept out of training data", "training_data",
     ("NIST-AI-RMF:MAP-4.1", "ISO42001:A.7.4")),
    ("Data drift within bounds", "drift", ("NIST-AI-RMF:MEASURE-2.4", "ISO42001:A.6.2.6")),
    ("Separation of duties (registrant is not approver)", "separation_of_duties",
     ("ISO42001:A.3.2", "NIST-AI-RMF:GOVERN-2.1")),
    ("Lineage: data, code and packages by digest", "lineage",
     ("NIST-AI-RMF:MAP-2.3", "ISO42001:A.7.3")),
    ("Tamper-evident audit log", "audit", ("NIST-AI-RMF:GOVERN-1.4", "ISO42001:A.6.2.8")),
)  # fmt: skip

# Which gate rule ids speak to which control of the map.
RULE_TO_CONTROL = {
    "POLICY-UNSAFE-SERIALIZATION": "model_scan",
    "POLICY-SIGNATURE-REQUIRED": "signature",
    "POLICY-SIGNATURE-INVALID": "signature",
    "POLICY-VULNERABLE-DEPENDENCY": "dependencies",
    "POLICY-METRIC-MISSING": "metrics",
    "POLICY-METRIC-BELOW-THRESHOLD": "metrics",
    "POLICY-METRIC-REGRESSION": "metrics",
    "POLICY-FAIRNESS-GAP": "fairness",
    "POLICY-MODEL-CARD-MISSING": "model_card",
    "POLICY-MODEL-CARD-INCOMPLETE": "model_card",
    "POLICY-TRAINING-DATA-SENSITIVE": "training_data",
    "POLICY-DATA-DRIFT": "drift",
    "POLICY-APPROVAL-MISSING": "separation_of_duties",
    "POLICY-SEPARATION-OF-DUTIES": "separation_of_duties",
}
