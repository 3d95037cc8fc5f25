"""CVSS base scores: v3.0/v3.1 computed here (the specification's formula), v4.0 through the `cvss`
package when it is installed, and the qualitative ratings that go with them.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal

from secmlops.findings import Severity

_AV = {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2}
_AC = {"L": 0.77, "H": 0.44}
_PR_UNCHANGED = {"N": 0.85, "L": 0.62, "H": 0.27}
_PR_CHANGED = {"N": 0.85, "L": 0.68, "H": 0.5}
_UI = {"N": 0.85, "R": 0.62}
_CIA = {"H": 0.56, "L": 0.22, "N": 0.0}
_V3_BASE = ("AV", "AC", "PR", "UI", "S", "C", "I", "A")


def _roundup_31(value: float) -> float:
    """CVSS v3.1 Roundup: the smallest one-decimal number >= value, free of float artefacts."""
    whole = round(value * 100_000)
    if whole % 10_000 == 0:
        return whole / 100_000.0
    return (math.floor(whole / 10_000) + 1) / 10.0


def _roundup_30(value: float) -> float:
    return math.ceil(value * 10) / 10.0


def cvss3_base_score(vector: str) -> float | None:
    """The base score of a CVSS:3.0 or CVSS:3.1 vector, or None when the vector is not valid."""
    parts = vector.strip().split("/")
    if not parts or parts[0] not in ("CVSS:3.0", "CVSS:3.1"):
        return None
    metrics: dict[str, str] = {}
    for part in parts[1:]:
        key, sep, value = part.partition(":")
        if not sep or key in metrics:
            return None
        metrics[key] = value
    if any(k not in metrics for k in _V3_BASE):
        return None
    m = metrics
    try:
        changed = {"U": False, "C": True}[m["S"]]
        iss = 1 - (1 - _CIA[m["C"]]) * (1 - _CIA[m["I"]]) * (1 - _CIA[m["A"]])
        pr = (_PR_CHANGED if changed else _PR_UNCHANGED)[m["PR"]]
        exploitability = 8.22 * _AV[m["AV"]] * _AC[m["AC"]] * pr * _UI[m["UI"]]
    except KeyError:
        return None
    impact = 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02) ** 15 if changed else 6.42 * iss
    if impact <= 0:
        return 0.0
    roundup = _roundup_31 if parts[0] == "CVSS:3.1" else _roundup_30
    total = impact + exploitability
    return roundup(min(1.08 * total if changed else total, 10.0))


def cvss4_base_score(vector: str) -> float | None:
    """The CVSS v4.0 score (macrovector lookup) via the `cvss` package; None without it."""
    try:
        from cvss import CVSS4
        from cvss.exceptions import CVSS4Error
    except ImportError:
        return None
    try:
        return float(CVSS4(vector.strip()).base_score)
    except (CVSS4Error, ValueError, KeyError, TypeError):
        return None


def score_vector(kind: str, vector: str) -> float | None:
    """The base score of an OSV `severity` entry (type CVSS_V3 / CVSS_V4), or None."""
    if kind == "CVSS_V3" or vector.startswith("CVSS:3."):
        return cvss3_base_score(vector)
    if kind == "CVSS_V4" or vector.startswith("CVSS:4.0"):
        return cvss4_base_score(vector)
    return None


def rating(score: float) -> Severity:
    """The CVSS qualitative rating (None 0.0 is reported as info)."""
    score = float(Decimal(str(score)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))
    if score >= 9.0:
        return Severity.CRITICAL
    if score >= 7.0:
        return Severity.HIGH
    if score >= 4.0:
        return Severity.MEDIUM
    if score > 0.0:
        return Severity.LOW
    return Severity.INFO


_TEXT_RATINGS = {
    "CRITICAL": Severity.CRITICAL,
    "HIGH": Severity.HIGH,
    "MODERATE": Severity.MEDIUM,
    "MEDIUM": Severity.MEDIUM,
    "LOW": Severity.LOW,
}


def text_rating(text: object) -> Severity | None:
    """GitHub's `database_specific.severity` (LOW / MODERATE / HIGH / CRITICAL)."""
    return _TEXT_RATINGS.get(text.strip().upper()) if isinstance(text, str) else None
