"""The rule catalogue as text and as the Markdown table in docs/rules.md."""

from __future__ import annotations

import importlib

from secmlops.findings import Rule

# Every module that defines rules exposes them as `ALL: dict[str, Rule]`.
CATALOGUES = (
    "secmlops.scan.models.formats",  # importing the package registers each format's rules
    "secmlops.scan.models.rules",
    "secmlops.scan.secrets.rules",
    "secmlops.scan.deps.rules",
    "secmlops.scan.deps.workflow_rules",
    "secmlops.scan.infra.rules",
    "secmlops.scan.data.rules",
    "secmlops.scan.data.pii_rules",
    "secmlops.scan.data.stats_rules",
    "secmlops.evidence.rules",
    "secmlops.evidence.bom_rules",
    "secmlops.evidence.attest_rules",
)


def all_rules() -> list[Rule]:
    found: dict[str, Rule] = {}
    for name in CATALOGUES:
        module = importlib.import_module(name)
        for rule_id, rule in getattr(module, "ALL", {}).items():
            if found.setdefault(rule_id, rule) != rule:
                raise ValueError(f"rule id {rule_id} defined twice with different content")
    return sorted(found.values(), key=lambda r: r.rule_id)


def rules_table() -> str:
    return "".join(f"{r.rule_id:40} {r.severity.label:9} {r.title}\n" for r in all_rules())


def rules_markdown() -> str:
    lines = [
        "| rule id | severity | title | rationale | fix | controls |",
        "|---|---|---|---|---|---|",
    ]
    for r in all_rules():
        cells = [
            f"`{r.rule_id}`",
            r.severity.label,
            r.title,
            r.rationale,
            r.fix,
            ", ".join(r.controls),
        ]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"
