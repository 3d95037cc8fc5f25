"""Baselines and inline allowlist comments."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from secmlops.errors import UsageError
from secmlops.findings import Location
from secmlops.scan.secrets import load_baseline, scan_paths, scan_text, write_baseline
from tests.scan.secrets import fakes


def test_baseline_suppresses_known_and_keeps_new(tmp_path: Path) -> None:
    rng = random.Random(3)
    old, new = fakes.sendgrid_key(rng), fakes.sendgrid_key(rng)
    src = tmp_path / "src"
    src.mkdir()
    (src / "mail.py").write_text(f"KEY = '{old}'\n")
    first = scan_paths([src])
    base = tmp_path / "baseline.json"
    assert write_baseline(base, first.findings) == 1
    assert old not in base.read_text()  # only fingerprints and redacted previews
    # lines move and a new secret appears: only the new one is reported
    (src / "mail.py").write_text(f"# moved\n\nKEY = '{old}'\nOTHER = '{new}'\n")
    again = scan_paths([src], baseline=load_baseline(base))
    assert [(f.rule_id, f.location.line) for f in again.findings] == [("SECRET-SENDGRID-KEY", 4)]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "not a secmlops secrets baseline"),
        (
            '{"kind": "secmlops-secrets-baseline", "version": 9, "findings": []}',
            "unsupported version",
        ),
        (
            '{"kind": "secmlops-secrets-baseline", "version": 1, "findings": [{"x": 1}]}',
            "fingerprint",
        ),
    ],
)
def test_bad_baseline_is_a_clear_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "b.json"
    path.write_text(content)
    with pytest.raises(UsageError, match=message):
        load_baseline(path)


def test_missing_baseline_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read baseline"):
        load_baseline(tmp_path / "absent.json")


def test_baseline_file_format(tmp_path: Path) -> None:
    token = fakes.npm_token(random.Random(1))
    findings = scan_text(f"//registry.npmjs.org/:_authToken={token}\n", Location(path=".npmrc"))
    path = tmp_path / "b.json"
    write_baseline(path, findings)
    doc = json.loads(path.read_text())
    assert doc["kind"] == "secmlops-secrets-baseline" and doc["version"] == 1
    (entry,) = doc["findings"]
    assert entry["rule_id"] == "SECRET-NPM-TOKEN" and len(entry["fingerprint"]) == 64
    assert entry["location"] == {"path": ".npmrc", "line": 1}


@pytest.mark.parametrize(
    "line",
    [
        "token = '{t}'  # secmlops: allow-secret",
        "token = '{t}'  # pragma: allowlist secret",
        "# pragma: allowlist nextline secret\ntoken = '{t}'",
        "# secmlops: allow-secret-next-line\ntoken = '{t}'",
    ],
)
def test_inline_allowlist_comments(line: str) -> None:
    token = fakes.slack_bot_token(random.Random(2))
    assert scan_text(line.format(t=token), Location(path="x.py")) == []


def test_allowlist_comment_applies_to_its_line_only() -> None:
    rng = random.Random(2)
    a, b = fakes.slack_bot_token(rng), fakes.slack_bot_token(rng)
    text = f"a = '{a}'  # secmlops: allow-secret\nb = '{b}'\n"
    assert [f.location.line for f in scan_text(text, Location(path="x.py"))] == [2]
