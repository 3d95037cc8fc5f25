"""Anonymise a table: the PII scanner finds what to change, a policy says how.

Operators: ``redact`` (a placeholder), ``mask`` (keep the last N letters/digits), ``hash``
(HMAC-SHA256 with the user's key: the same value gives the same hash in every table, so join keys
survive; never a random salt per value), ``tokenize`` (format-preserving tokens, reversible
through the encrypted vault), ``generalize`` (dates to the year, numbers to bands, IPs to their
network, e-mail addresses to their domain) and ``keep``.

A column the policy names is changed as a whole; a column the scanner judges to be personal data
(PII-COLUMN) is changed as a whole with its entity's operator when its values are the PII itself,
span by span otherwise; in other columns every detected value is replaced inside its cell. The
input is never written: the output goes to another file, atomically, in the input's format, with
its own snapshot manifest next to it.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import math
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from secmlops.errors import DataError, UsageError, first_problem
from secmlops.privacy.vault import Vault, key_from_env
from secmlops.scan.data.pii import ENTITIES, ColumnPii, PiiSettings, Span, analyze_frame

HASH_KEY_ENV = "SECMLOPS_HASH_KEY"
OperatorName = Literal["redact", "mask", "hash", "tokenize", "generalize", "keep"]
OPERATORS: tuple[str, ...] = ("redact", "mask", "hash", "tokenize", "generalize", "keep")
_WHOLE_COLUMN = 0.8  # a verdict column whose matches fill at least this share of their cells


@dataclass(frozen=True, slots=True)
class Operator:
    """How to change one value."""

    name: OperatorName = "redact"
    keep: int = 4  # mask: letters/digits left visible at the end
    band: float = 10.0  # generalize: width of number bands
    length: int = 32  # hash: hex characters kept (32 = 128 bits)
    replacement: str | None = None  # redact: the placeholder (default "[ENTITY]")


@dataclass(frozen=True, slots=True)
class Policy:
    """Which operator applies to which entity or column."""

    default: Operator = field(default_factory=Operator)
    entities: Mapping[str, Operator] = field(default_factory=dict)
    columns: Mapping[str, Operator] = field(default_factory=dict)

    def for_entity(self, entity: str) -> Operator:
        return self.entities.get(entity, self.default)

    def needs(self, name: str) -> bool:
        ops = [self.default, *self.entities.values(), *self.columns.values()]
        return any(op.name == name for op in ops)


def load_policy(path: Path) -> Policy:
    """Read a policy file (YAML or JSON)::

    default: redact
    entities: {EMAIL: hash, CARD: {operator: mask, keep: 4}, DOB: generalize}
    columns: {age: {operator: generalize, band: 10}, customer_id: keep}
    """
    import yaml
    from pydantic import BaseModel, ConfigDict, Field, ValidationError

    class OperatorSchema(BaseModel):
        model_config = ConfigDict(extra="forbid")
        operator: OperatorName
        keep: int = Field(default=4, ge=0, le=64)
        band: float = Field(default=10.0, gt=0)
        length: int = Field(default=32, ge=8, le=64)
        replacement: str | None = None

    Spec = OperatorName | OperatorSchema

    class PolicySchema(BaseModel):
        model_config = ConfigDict(extra="forbid")
        default: Spec = "redact"
        entities: dict[str, Spec] = Field(default_factory=dict)
        columns: dict[str, Spec] = Field(default_factory=dict)

    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeError, yaml.YAMLError) as exc:
        raise UsageError(f"cannot read the policy {path}: {exc}") from None
    try:
        parsed = PolicySchema.model_validate(raw or {})
    except ValidationError as exc:
        raise UsageError(f"{path}: {first_problem(exc)}") from None
    unknown = sorted(set(parsed.entities) - set(ENTITIES))
    if unknown:
        raise UsageError(
            f"{path}: unknown entities {', '.join(unknown)}", hint=f"use: {', '.join(ENTITIES)}"
        )

    def op(spec: Spec) -> Operator:
        if isinstance(spec, str):
            return Operator(spec)
        return Operator(spec.operator, spec.keep, spec.band, spec.length, spec.replacement)

    return Policy(
        op(parsed.default),
        {k: op(v) for k, v in parsed.entities.items()},
        {k: op(v) for k, v in parsed.columns.items()},
    )


def hash_key_from_env(name: str = HASH_KEY_ENV) -> bytes:
    """The HMAC key for the hash operator, or a UsageError saying how to set it."""
    why = (
        "keep it to hash other tables the same way (stable join keys), and secret so hashes "
        "cannot be reversed by guessing"
    )
    return key_from_env(name, "the hash operator", why).encode("utf-8")


# --- operators ------------------------------------------------------------------------------


def _normalise(value: str, entity: str | None) -> str:
    """The canonical text hashed, so one value written two ways gives one join key."""
    if entity == "EMAIL":
        return value.strip().lower()
    if entity in ("CARD", "SSN", "IBAN", "PHONE"):
        return re.sub(r"[^0-9A-Za-z+]", "", value).upper()
    return value.strip()


def mask(value: str, keep: int) -> str:
    """Letters and digits become '*' except the last `keep` of them; punctuation stays."""
    positions = [i for i, ch in enumerate(value) if ch.isalnum()]
    visible = set(positions[len(positions) - keep :]) if keep else set()
    return "".join("*" if ch.isalnum() and i not in visible else ch for i, ch in enumerate(value))


_YEAR = re.compile(r"(?<!\d)(1[89]\d\d|20\d\d)(?!\d)")
_SHORT_YEAR = re.compile(r"[-/.](\d\d)\s*\Z")


def generalize(value: str, entity: str | None, band: float) -> str:
    """Dates to their year, numbers to a band, IPs to their network, e-mails to their domain."""
    text = value.strip()
    if entity == "EMAIL" and "@" in text:
        return "*@" + text.rpartition("@")[2].lower()
    if entity == "IP":
        try:
            addr = ipaddress.ip_address(text)
        except ValueError:
            pass
        else:
            prefix = 24 if addr.version == 4 else 48
            return str(ipaddress.ip_network(f"{addr}/{prefix}", strict=False))
    if entity not in ("CARD", "SSN", "IBAN", "PHONE", "ID_DOCUMENT"):
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if math.isfinite(number) and not (entity == "DOB" and number > 10_000):
            low = math.floor(number / band) * band
            return f"{low:g}-{low + band:g}"
        year = _YEAR.search(text)
        if year:
            return year.group(1)
        short = _SHORT_YEAR.search(text)
        if short and entity == "DOB":
            yy = int(short.group(1))
            return str(1900 + yy if yy > 30 else 2000 + yy)
    return f"[{entity or 'REDACTED'}]"


@dataclass(slots=True)
class _Apply:
    """Operators bound to their keys, counting what they changed."""

    policy: Policy
    hash_key: bytes | None
    vault: Vault | None
    changed: dict[str, int] = field(default_factory=dict)

    def __call__(self, op: Operator, value: str, entity: str | None) -> str:
        if op.name == "keep":
            return value
        if op.name == "redact":
            out = op.replacement if op.replacement is not None else f"[{entity or 'REDACTED'}]"
        elif op.name == "mask":
            out = mask(value, op.keep)
        elif op.name == "hash":
            if self.hash_key is None:
                raise UsageError("the hash operator needs a key", hint=f"set ${HASH_KEY_ENV}")
            digest = hmac.new(self.hash_key, _normalise(value, entity).encode(), hashlib.sha256)
            out = digest.hexdigest()[: op.length]
        elif op.name == "tokenize":
            if self.vault is None:
                raise UsageError("the tokenize operator needs a vault and its key")
            out = self.vault.tokenize(value)
        else:
            out = generalize(value, entity, op.band)
        return out


@dataclass(frozen=True, slots=True)
class ColumnChange:
    """What happened to one column."""

    column: str
    how: str  # "column" (every cell), "spans" (detected values inside cells)
    operator: str
    entities: tuple[str, ...]
    cells: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "how": self.how,
            "operator": self.operator,
            "entities": list(self.entities),
            "cells": self.cells,
        }


def _cell_str(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, float) and value == int(value):
        return str(int(value))
    return str(value)


def _whole_column(
    series: pd.Series, op: Operator, entity: str | None, apply: _Apply
) -> tuple[pd.Series, int]:
    out: list[Any] = []
    changed = 0
    for value in series.to_numpy(dtype=object):
        text = _cell_str(value)
        if text is None or not text:
            out.append(value)
            continue
        out.append(apply(op, text, entity))
        changed += 1
    return pd.Series(out, index=series.index, dtype=object), changed


def _spans(
    series: pd.Series, result: ColumnPii, policy: Policy, apply: _Apply
) -> tuple[pd.Series, int]:
    by_row: dict[int, list[Span]] = {}
    for group in result.spans.values():
        for span in group:
            by_row.setdefault(span.row, []).append(span)
    values = list(series.to_numpy(dtype=object))
    for row, spans in by_row.items():
        text = result.texts[row]
        for span in sorted(spans, key=lambda s: s.start, reverse=True):
            if span.entity == "SECRET":  # the secrets scanner names the cell, not the span
                text = apply(policy.for_entity("SECRET"), text, "SECRET")
                continue
            new = apply(policy.for_entity(span.entity), text[span.start : span.end], span.entity)
            text = text[: span.start] + new + text[span.end :]
        values[row] = text
    return pd.Series(values, index=series.index, dtype=object), len(by_row)


def anonymize_frame(
    frame: pd.DataFrame,
    policy: Policy | None = None,
    *,
    hash_key: bytes | None = None,
    vault: Vault | None = None,
    settings: PiiSettings | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> tuple[pd.DataFrame, list[ColumnChange]]:
    """A copy of `frame` with its PII changed by `policy`, and what changed per column."""
    policy = policy or Policy()
    if policy.needs("hash") and hash_key is None:
        hash_key = hash_key_from_env()
    if policy.needs("tokenize") and vault is None:
        raise UsageError("the policy tokenises values but no vault was given", hint="pass --vault")
    apply = _Apply(policy, hash_key, vault)
    results = analyze_frame(frame, settings, exhaustive=True)
    out = frame.copy()
    changes: list[ColumnChange] = []
    for result in results:
        if progress is not None:
            progress(result.column, result.position + 1, len(results))
        i = result.position
        series = frame.iloc[:, i]
        named = policy.columns.get(result.column)
        top = max(result.verdicts, key=lambda e: result.shares[e], default=None)
        op_name: str
        entities: tuple[str, ...]
        if named is not None:
            new, count = _whole_column(series, named, top, apply)
            how, op_name, entities = "column", named.name, (top,) if top else ()
        elif top is not None and result.whole_cell.get(top, 0.0) >= _WHOLE_COLUMN:
            op = policy.for_entity(top)
            new, count = _whole_column(series, op, top, apply)
            how, op_name, entities = "column", op.name, (top,)
        elif result.spans:
            new, count = _spans(series, result, policy, apply)
            how, entities = "spans", tuple(result.spans)
            op_name = ",".join(sorted({policy.for_entity(e).name for e in entities}))
        else:
            continue
        if (how == "column" and op_name == "keep") or count == 0:
            continue
        out.isetitem(i, new)
        changes.append(ColumnChange(result.column, how, op_name, entities, count))
    return out, changes


def detokenize_frame(frame: pd.DataFrame, vault: Vault) -> tuple[pd.DataFrame, int]:
    """`frame` with every vault token (whole cells and tokens inside text) turned back."""
    tokens = sorted(vault.tokens(), key=len, reverse=True)
    if not tokens:
        return frame.copy(), 0
    finder = re.compile("|".join(re.escape(t) for t in tokens))
    out = frame.copy()
    restored = 0
    for i in range(frame.shape[1]):
        values = list(frame.iloc[:, i].to_numpy(dtype=object))
        touched = False
        for r, value in enumerate(values):
            if not isinstance(value, str):
                continue
            whole = vault.detokenize(value)
            if whole is not None:
                values[r] = whole
                restored += 1
                touched = True
                continue
            if finder.search(value):

                def back(m: re.Match[str]) -> str:
                    return vault.detokenize(m.group()) or m.group()

                values[r] = finder.sub(back, value)
                restored += 1
                touched = True
        if touched:
            out.isetitem(i, pd.Series(values, index=frame.index, dtype=object))
    return out, restored


# --- files ----------------------------------------------------------------------------------


def check_distinct(source: Path, target: Path) -> None:
    """Refuse to write `target` when it is `source` (same path, link or inode)."""
    if target.resolve() == source.resolve():
        raise UsageError(
            f"refusing to overwrite the input {source}", hint="pass another path to --out"
        )
    if target.exists():
        if target.is_dir():
            raise UsageError(f"{target} is a folder", hint="--out names the output file")
        if os.path.samefile(source, target):
            raise UsageError(
                f"refusing to write {target}: it is the same file as the input {source}",
                hint="pass a path that is not a link to the input",
            )


def write_table(frame: pd.DataFrame, target: Path, fmt: str) -> None:
    """Write `frame` to `target` in `fmt` (csv, parquet, jsonl, arrow), atomically."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    umask = os.umask(0)
    os.umask(umask)
    try:
        if fmt == "parquet":
            frame.to_parquet(tmp, index=False)
        elif fmt == "jsonl":
            frame.to_json(tmp, orient="records", lines=True, force_ascii=False)
        elif fmt in ("arrow", "arrow-stream", "feather-v1"):
            frame.reset_index(drop=True).to_feather(tmp)
        else:
            frame.to_csv(tmp, index=False)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp made it 0600; the output is an ordinary file
        os.replace(tmp, target)
    except (OSError, ValueError, TypeError) as exc:
        tmp.unlink(missing_ok=True)
        raise DataError(f"cannot write {target}: {exc}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_manifest(target: Path, extra: Mapping[str, Any]) -> tuple[Path, str]:
    """The output's snapshot manifest, written next to it; returns its path and digest."""
    from secmlops.scan.data.integrity import snapshot

    manifest = snapshot(target)
    doc = {**manifest.to_dict(), "anonymization": dict(extra)}
    path = target.with_name(target.name + ".manifest.json")
    path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path, manifest.digest
