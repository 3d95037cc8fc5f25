"""Documentation that must stay true: the rules table, the README's two commands."""

from __future__ import annotations

from pathlib import Path

from secmlops.report.rules_doc import all_rules, rules_markdown

ROOT = Path(__file__).resolve().parents[1]


def test_rules_md_matches_the_code() -> None:
    text = (ROOT / "docs" / "rules.md").read_text()
    assert rules_markdown() in text, "regenerate with: secmlops rules --markdown"


def test_rule_ids_are_unique_and_well_formed() -> None:
    ids = [r.rule_id for r in all_rules()]
    assert len(ids) == len(set(ids))
    for rule in all_rules():
        assert rule.rule_id.isupper() and rule.rule_id.replace("-", "").isalnum()
        assert rule.title and rule.rationale and rule.fix and rule.controls


def test_readme_opens_with_the_two_commands() -> None:
    lines = (ROOT / "README.md").read_text().splitlines()
    block = lines[lines.index("```bash") + 1 : lines.index("```", lines.index("```bash") + 1)]
    assert len(block) == 2
    assert block[0].endswith("secmlops demo")
    assert "pytest" in block[1]
