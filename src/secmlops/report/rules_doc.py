"""The rule catalogue as text and as the Markdown table in docs/rules.md."""

from __future__ import annotations

from secmlops.findings import Rule


def all_rules() -> list[Rule]:
    import secmlops.scan.models.formats  # noqa: F401  (format modules register their rules)
    from secmlops.scan.models import rules

    return sorted(rules.ALL.values(), key=lambda r: r.rule_id)


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
