"""Stable rule ids of the AI-BOM (documented in docs/rules.md; a test keeps them in sync)."""

from __future__ import annotations

from secmlops.findings import Rule, Severity

INCOMPLETE = Rule(
    "BOM-INCOMPLETE",
    Severity.LOW,
    "AI-BOM model card is incomplete",
    "Fields a model card should state (task, architecture, datasets and their classification, "
    "metrics, intended use, limitations, ethical and fairness considerations) are missing; "
    "secmlops never invents them, so the BOM cannot answer questions about them. Medium when "
    "less than half of the recommended fields are present.",
    "Write the missing fields into the model-card file (--card, schema in docs/bom.md) and "
    "generate the BOM again.",
    ("NIST-AI-RMF:MAP-2.1", "NIST-AI-RMF:GOVERN-1.4", "ISO42001:A.6.2.7", "EU-AI-ACT:Art.11"),
)
DATASET_NO_DIGEST = Rule(
    "BOM-DATASET-NO-DIGEST",
    Severity.LOW,
    "Dataset in the AI-BOM has no digest",
    "A dataset named only by URL or name cannot be matched by content: the day it turns out "
    "to be poisoned, nobody can tell which models were trained on that exact copy.",
    "Give the dataset's local path in the model card so its files are hashed into the BOM.",
    ("NIST-AI-RMF:MAP-4.1", "ISO42001:A.7.5", "OWASP-ML:ML02"),
)

ALL: dict[str, Rule] = {r.rule_id: r for r in (INCOMPLETE, DATASET_NO_DIGEST)}
