"""`secmlops policy test`: run the bundle's Rego unit tests (rules named test_* in *_test.rego)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from secmlops.errors import PolicyError
from secmlops.policy.engine import Bundle, engine_for

_PACKAGE = re.compile(r"^\s*package\s+([\w.]+)", re.MULTILINE)
_TEST_RULE = re.compile(r"^(test_\w+)\b", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class TestResult:
    name: str
    passed: bool


def run_policy_tests(bundle: Bundle) -> list[TestResult]:
    if not bundle.tests:
        raise PolicyError(f"policy bundle {bundle.root} has no *_test.rego files")
    engine = engine_for(bundle, with_tests=True)
    results: list[TestResult] = []
    for module, text in bundle.tests:
        package = _PACKAGE.search(text)
        if package is None:
            raise PolicyError(f"{module} has no package line")
        for name in dict.fromkeys(_TEST_RULE.findall(text)):  # a rule may have several bodies
            query = f"data.{package.group(1)}.{name}"
            results.append(TestResult(query, engine.query(query, {}) is True))
    return results
