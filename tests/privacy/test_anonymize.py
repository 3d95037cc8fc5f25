"""Anonymisation: operators, keyed hashes, the token vault and safe output files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from secmlops.errors import DataError, UsageError
from secmlops.privacy.anonymize import (
    Operator,
    Policy,
    anonymize_frame,
    check_distinct,
    detokenize_frame,
    generalize,
    load_policy,
    mask,
    write_manifest,
    write_table,
)
from secmlops.privacy.vault import Vault, key_from_env

KEY = b"k" * 32
VAULT_KEY = "correct horse battery staple"
EMAILS = ["john.doe@example.com", "jane@corp.org", "JOHN.DOE@example.com"]
CARDS = ["4539 5787 6362 1486", "5500 0000 0000 0004", "371449635398431"]
SSNS = ["536-22-1234", "212-09-7777", "536-22-1235"]


def people() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "email": EMAILS,
            "card": CARDS,
            "ssn": SSNS,
            "notes": ["call (415) 555-2671 please", "all good", "mail jane@corp.org"],
            "age": [37, 44, 29],
            "dob": ["1985-03-04", "1990-12-01", "2001-07-15"],
        }
    )


def every_value(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False)


def test_default_policy_redacts_every_detected_value() -> None:
    out, changes = anonymize_frame(people())
    text = every_value(out)
    for value in [*EMAILS, *CARDS, *SSNS, "(415) 555-2671", "jane@corp.org", "1985-03-04"]:
        assert value not in text
    assert out.loc[1, "notes"] == "all good"
    assert out.loc[0, "notes"] == "call [PHONE] please"
    assert {c.column for c in changes} == {"email", "card", "ssn", "notes", "dob"}
    assert list(out["age"]) == [37, 44, 29]  # not personal data by itself


def test_mask_keeps_last_digits_and_no_full_value() -> None:
    policy = Policy(entities={"CARD": Operator("mask", keep=4), "SSN": Operator("mask")})
    out, _ = anonymize_frame(people(), policy)
    assert list(out["card"]) == ["**** **** **** 1486", "**** **** **** 0004", "***********8431"]
    assert out.loc[0, "ssn"] == "***-**-1234"
    assert mask("ab-cd", 0) == "**-**"


def test_hash_is_keyed_stable_and_normalised() -> None:
    policy = Policy(entities={"EMAIL": Operator("hash")})
    first, _ = anonymize_frame(people(), policy, hash_key=KEY)
    again, _ = anonymize_frame(people(), policy, hash_key=KEY)
    other, _ = anonymize_frame(people(), policy, hash_key=b"x" * 32)
    assert list(first["email"]) == list(again["email"])  # stable join keys across runs
    assert first.loc[0, "email"] == first.loc[2, "email"]  # case does not split a join key
    assert first.loc[0, "email"] != first.loc[1, "email"]
    assert list(first["email"]) != list(other["email"])  # keyed: another key, other hashes
    assert all(len(h) == 32 and "@" not in h for h in first["email"])


def test_hash_without_a_key_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SECMLOPS_HASH_KEY", raising=False)
    with pytest.raises(UsageError, match="SECMLOPS_HASH_KEY"):
        anonymize_frame(people(), Policy(default=Operator("hash")))


def test_generalize() -> None:
    assert generalize("1985-03-04", "DOB", 10) == "1985"
    assert generalize("04/03/85", "DOB", 10) == "1985"
    assert generalize("37", None, 10) == "30-40"
    assert generalize("192.168.7.9", "IP", 10) == "192.168.7.0/24"
    assert generalize("Jane@Corp.org", "EMAIL", 10) == "*@corp.org"
    assert generalize("4539 5787 6362 1486", "CARD", 10) == "[CARD]"
    policy = Policy(
        entities={"DOB": Operator("generalize")}, columns={"age": Operator("generalize")}
    )
    out, _ = anonymize_frame(people(), policy)
    assert list(out["dob"]) == ["1985", "1990", "2001"]
    assert list(out["age"]) == ["30-40", "40-50", "20-30"]


def test_tokens_keep_shape_and_round_trip(tmp_path: Path) -> None:
    vault = Vault.open(tmp_path / "v.json", VAULT_KEY)
    policy = Policy(entities={"CARD": Operator("tokenize"), "PHONE": Operator("tokenize")})
    out, _ = anonymize_frame(people(), policy, vault=vault)
    for token, card in zip(out["card"], CARDS, strict=True):
        assert token != card and len(token) == len(card)
        assert [c.isdigit() for c in token] == [c.isdigit() for c in card]
    assert vault.tokenize(CARDS[0]) == out.loc[0, "card"]  # deterministic per vault and key
    vault.save()
    reopened = Vault.open(tmp_path / "v.json", VAULT_KEY, create=False)
    assert reopened.tokenize(CARDS[0]) == out.loc[0, "card"]
    back, restored = detokenize_frame(out, reopened)
    assert list(back["card"]) == CARDS
    assert back.loc[0, "notes"] == "call (415) 555-2671 please"  # a token inside text
    assert restored == 4
    assert os.stat(tmp_path / "v.json").st_mode & 0o077 == 0
    raw = (tmp_path / "v.json").read_text()
    assert "4539" not in raw and "1486" not in raw


def test_wrong_vault_key_is_a_clear_error(tmp_path: Path) -> None:
    vault = Vault.open(tmp_path / "v.json", VAULT_KEY)
    vault.tokenize("4539 5787 6362 1486")
    vault.save()
    with pytest.raises(DataError, match="wrong vault key"):
        Vault.open(tmp_path / "v.json", "not the right key at all")


def test_tampered_vault_entry_fails_authentication(tmp_path: Path) -> None:
    vault = Vault.open(tmp_path / "v.json", VAULT_KEY)
    a = vault.tokenize("4539 5787 6362 1486")
    b = vault.tokenize("5500 0000 0000 0004")
    vault.save()
    doc = json.loads((tmp_path / "v.json").read_text())
    doc["entries"][a]["c"], doc["entries"][b]["c"] = doc["entries"][b]["c"], doc["entries"][a]["c"]
    (tmp_path / "v.json").write_text(json.dumps(doc))
    opened = Vault.open(tmp_path / "v.json", VAULT_KEY)
    with pytest.raises(DataError, match="failed authentication"):
        opened.detokenize(a)


@pytest.mark.parametrize(
    "content", ["", "{", '{"format": "other"}', '{"format": "secmlops-vault/1", "kdf": 3}']
)
def test_damaged_vault_files(tmp_path: Path, content: str) -> None:
    (tmp_path / "v.json").write_text(content)
    with pytest.raises(DataError):
        Vault.open(tmp_path / "v.json", VAULT_KEY)


def test_short_values_and_short_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    vault = Vault.open(tmp_path / "v.json", VAULT_KEY)
    assert vault.tokenize("--") == "--"
    monkeypatch.setattr(Vault, "_shape", lambda self, value, attempt: "9")  # one token only
    assert vault.tokenize("1") == "9"
    with pytest.raises(DataError, match="too few"):
        vault.tokenize("2")
    monkeypatch.setenv("SECMLOPS_VAULT_KEY", "short")
    with pytest.raises(UsageError):
        key_from_env()


def test_output_is_never_the_input(tmp_path: Path) -> None:
    src = tmp_path / "a.csv"
    src.write_text("email\njohn@example.com\n")
    with pytest.raises(UsageError):
        check_distinct(src, src)
    with pytest.raises(UsageError):
        check_distinct(src, tmp_path / "." / "a.csv")
    os.link(src, tmp_path / "hard.csv")
    with pytest.raises(UsageError, match="same file"):
        check_distinct(src, tmp_path / "hard.csv")
    (tmp_path / "link.csv").symlink_to(src)
    with pytest.raises(UsageError):
        check_distinct(src, tmp_path / "link.csv")
    check_distinct(src, tmp_path / "b.csv")


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl", "arrow"])
def test_write_table_formats_and_manifest(tmp_path: Path, fmt: str) -> None:
    from secmlops.scan.data.tables import load_table

    target = tmp_path / f"out.{fmt}"
    out, _ = anonymize_frame(people())
    write_table(out, target, fmt)
    loaded = load_table(target)
    assert loaded.format == fmt and len(loaded.frame) == 3
    assert "john.doe@example.com" not in target.read_bytes().decode("utf-8", "replace")
    manifest, digest = write_manifest(target, {"rows": 3})
    doc = json.loads(manifest.read_text())
    assert doc["files"][0]["path"] == target.name and len(digest) == 64
    assert not list(tmp_path.glob(".*tmp"))  # no temporary file left behind


def test_policy_file(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "default: mask\nentities:\n  EMAIL: hash\n  CARD: {operator: mask, keep: 2}\n"
        "columns:\n  age: {operator: generalize, band: 5}\n"
    )
    policy = load_policy(path)
    assert policy.default.name == "mask" and policy.entities["CARD"].keep == 2
    assert policy.columns["age"].band == 5
    for bad in ["entities: {EMAIL: explode}", "entities: {NAME: redact}", "extra: 1", "- 1"]:
        path.write_text(bad)
        with pytest.raises(UsageError):
            load_policy(path)


def test_empty_and_mixed_frames() -> None:
    out, changes = anonymize_frame(pd.DataFrame({"email": pd.Series([], dtype=object)}))
    assert out.empty and changes == []
    mixed = pd.DataFrame({"v": [b"jane@corp.org", 42, None, float("nan"), "bob@site.net"]})
    out, _ = anonymize_frame(mixed)
    assert "jane@corp.org" not in every_value(out) and "bob@site.net" not in every_value(out)
