"""The result of a policy gate: allow or not, with every reason (the architecture's Decision)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from secmlops.errors import PolicyError
from secmlops.findings import Severity


@dataclass(frozen=True, slots=True)
class Violation:
    """One deny or warn reason returned by a Rego rule."""

    rule_id: str
    severity: Severity
    msg: str
    controls: tuple[str, ...] = ()

    @classmethod
    def from_rego(cls, value: Any) -> Violation:
        """Read `{rule_id, severity, msg, controls[]}`; anything else is a policy bug."""
        if not isinstance(value, Mapping):
            raise PolicyError(f"a policy rule returned {value!r}, not an object")
        try:
            rule_id, msg = value["rule_id"], value["msg"]
            severity = Severity.parse(str(value.get("severity", "high")))
        except (KeyError, ValueError) as exc:
            raise PolicyError(
                f"a policy rule returned an object without a valid rule_id/msg/severity: {value!r}",
                hint="deny and warn rules return {rule_id, severity, msg, controls[]}",
            ) from exc
        controls = value.get("controls", [])
        if (
            not isinstance(rule_id, str)
            or not isinstance(msg, str)
            or not isinstance(controls, list)
        ):
            raise PolicyError(f"a policy rule returned mistyped fields: {value!r}")
        return cls(rule_id, severity, msg, tuple(str(c) for c in controls))

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "severity": self.severity.label,
            "msg": self.msg,
            "controls": list(self.controls),
        }


@dataclass(frozen=True, slots=True)
class Decision:
    """`allow` is true only when no deny rule fired; warnings never block."""

    allow: bool
    deny: tuple[Violation, ...]
    warn: tuple[Violation, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "allow": self.allow,
            "deny": [v.to_dict() for v in self.deny],
            "warn": [v.to_dict() for v in self.warn],
        }
