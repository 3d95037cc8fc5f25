"""Evaluate a gate: bundle + input (+ waivers) → Decision."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from secmlops.errors import PolicyError
from secmlops.policy.decision import Decision, Violation
from secmlops.policy.engine import Bundle, engine_for, extend_bundle, load_bundle
from secmlops.policy.waivers import Waiver

DEFAULT_BUNDLE = Path(__file__).parent / "bundle"
GATE_QUERY = "data.secmlops.gate"


def evaluate_gate(
    facts: Mapping[str, Any],
    *,
    bundle: Path | None = None,
    extend: Sequence[Path] = (),
    waivers: Sequence[Waiver] = (),
    now: datetime | None = None,
    query: str = GATE_QUERY,
) -> Decision:
    """Run the gate package of BUNDLE (default: the shipped one) over FACTS.

    The input carries `now` (so waiver expiry is decided at one instant, testable) and the waivers.
    """
    document = dict(facts)
    document.setdefault("now", (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    document["waivers"] = [*document.get("waivers", []), *(w.to_input() for w in waivers)]
    engine = engine_for(resolve_bundle(bundle, extend))
    value = engine.query(query, document)
    if not isinstance(value, Mapping):
        raise PolicyError(
            f"{query} is undefined in the bundle",
            hint="a gate bundle defines package secmlops.gate with deny and warn sets",
        )
    deny = tuple(sorted((Violation.from_rego(v) for v in value.get("deny", [])), key=_order))
    warn = tuple(sorted((Violation.from_rego(v) for v in value.get("warn", [])), key=_order))
    return Decision(allow=not deny, deny=deny, warn=warn)


def resolve_bundle(bundle: Path | None, extend: Sequence[Path] = ()) -> Bundle:
    """BUNDLE replaces the shipped bundle; each EXTEND folder adds rules and overrides data."""
    resolved = load_bundle(bundle or DEFAULT_BUNDLE)
    for folder in extend:
        resolved = extend_bundle(resolved, load_bundle(folder))
    if not resolved.modules:
        raise PolicyError(f"policy bundle {resolved.root} has no .rego modules")
    return resolved


def _order(v: Violation) -> tuple[int, str, str]:
    return (-int(v.severity), v.rule_id, v.msg)


def load_input(path: Path) -> dict[str, Any]:
    """A policy input document (JSON object) from a file."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PolicyError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PolicyError(f"{path} is not a JSON document: {exc}") from exc
    if not isinstance(doc, dict):
        raise PolicyError(f"{path} must hold a JSON object (the policy input)")
    return doc
