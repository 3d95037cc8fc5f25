"""Policy-as-code: the Rego engine, the default bundle, waivers and the Decision every gate returns."""

from secmlops.policy.decision import Decision, Violation
from secmlops.policy.engine import PolicyEngine, RegorusEngine, load_bundle
from secmlops.policy.gate import DEFAULT_BUNDLE, evaluate_gate

__all__ = [
    "DEFAULT_BUNDLE",
    "Decision",
    "PolicyEngine",
    "RegorusEngine",
    "Violation",
    "evaluate_gate",
    "load_bundle",
]
