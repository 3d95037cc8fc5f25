"""Waivers: an accepted risk for one rule and scope, with a reason, an approver and an expiry.

Expired waivers stay in the file (they are evidence) but stop counting: the gate compares the
expiry with the evaluation time and warns about each expired one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from secmlops.errors import PolicyError, first_problem


class _WaiverModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rule_id: str = Field(min_length=1)
    scope: str = Field(min_length=1)
    reason: str = Field(min_length=1)
    approver: str = Field(min_length=1)
    expires: datetime | date


class _WaiverFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    waivers: list[_WaiverModel]


@dataclass(frozen=True, slots=True)
class Waiver:
    rule_id: str
    scope: str
    reason: str
    approver: str
    expires: datetime

    def to_input(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "scope": self.scope,
            "reason": self.reason,
            "approver": self.approver,
            "expires": self.expires.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }


def load_waivers(path: Path) -> list[Waiver]:
    """Read a YAML or JSON waiver file: `waivers: [{rule_id, scope, reason, approver, expires}]`."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PolicyError(f"cannot read waivers {path}: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise PolicyError(f"waivers {path} is not valid YAML/JSON: {exc}") from exc
    try:
        parsed = _WaiverFile.model_validate(raw)
    except ValidationError as exc:
        raise PolicyError(
            f"waivers {path}: {first_problem(exc)}",
            hint="each waiver needs rule_id, scope, reason, approver and expires (a date)",
        ) from exc
    return [
        Waiver(w.rule_id, w.scope, w.reason, w.approver, _as_datetime(w.expires))
        for w in parsed.waivers
    ]


def _as_datetime(value: datetime | date) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    # A date means the waiver holds through that whole day (UTC).
    return datetime(value.year, value.month, value.day, 23, 59, 59, tzinfo=UTC)
