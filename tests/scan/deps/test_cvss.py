"""CVSS base scores: v3.1 computed by our own formula, checked against NVD scores and `cvss`."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secmlops.findings import Severity
from secmlops.scan.deps import cvss as ours
from secmlops.scan.deps.cvss import (
    cvss3_base_score,
    cvss4_base_score,
    rating,
    score_vector,
    text_rating,
)

# Base scores published by NVD for these vectors (and the v3.1 specification's examples).
KNOWN_V3 = [
    ("AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),  # CVE-2021-44228 class
    ("AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0),
    ("AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1),  # reflected XSS
    ("AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.8),
    ("AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N", 5.9),
    ("AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", 7.5),
    ("AV:N/AC:L/PR:L/UI:N/S:U/C:L/I:N/A:N", 4.3),
    ("AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H", 8.8),
    ("AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:N/A:N", 5.3),
    ("AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N", 6.5),
    ("AV:N/AC:H/PR:N/UI:N/S:C/C:H/I:H/A:H", 9.0),
    ("AV:N/AC:H/PR:N/UI:R/S:C/C:H/I:N/A:N", 6.1),  # CVE-2023-32681 (requests)
    ("AV:P/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N", 1.6),
    ("AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0),
]


@pytest.mark.parametrize(("metrics", "score"), KNOWN_V3)
def test_known_v31_scores(metrics: str, score: float) -> None:
    assert cvss3_base_score(f"CVSS:3.1/{metrics}") == score


def test_v30_vectors_and_extra_metrics() -> None:
    assert cvss3_base_score("CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H") == 9.8
    # temporal metrics do not change the base score
    assert cvss3_base_score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:U/RL:O") == 9.8


@pytest.mark.parametrize(
    "vector",
    [
        "",
        "CVSS:2.0/AV:N/AC:L/Au:N/C:P/I:P/A:P",
        "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H",  # A missing
        "CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        "CVSS:3.1/AV:N/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        "CVSS:3.1/AVN",
        "AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
    ],
)
def test_invalid_vectors_have_no_score(vector: str) -> None:
    assert cvss3_base_score(vector) is None


_V3 = st.builds(
    lambda av, ac, pr, ui, s, c, i, a: (
        f"CVSS:3.1/AV:{av}/AC:{ac}/PR:{pr}/UI:{ui}/S:{s}/C:{c}/I:{i}/A:{a}"
    ),
    st.sampled_from("NALP"),
    st.sampled_from("LH"),
    st.sampled_from("NLH"),
    st.sampled_from("NR"),
    st.sampled_from("UC"),
    st.sampled_from("HLN"),
    st.sampled_from("HLN"),
    st.sampled_from("HLN"),
)


@settings(max_examples=120, deadline=None)
@given(_V3)
def test_v31_agrees_with_the_reference_library(vector: str) -> None:
    from cvss import CVSS3  # type: ignore[import-untyped]

    assert cvss3_base_score(vector) == float(CVSS3(vector).base_score)


def test_v40_through_the_cvss_package() -> None:
    assert (
        cvss4_base_score("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N") == 9.3
    )
    assert score_vector("CVSS_V4", "CVSS:4.0/AV:N/AC:L") is None  # incomplete
    assert score_vector("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H") == 9.8
    assert score_vector("UBUNTU", "high") is None


def test_v40_without_the_package_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_cvss(name: str, *args: object, **kwargs: object) -> object:
        if name == "cvss" or name.startswith("cvss."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_cvss)
    assert (
        ours.cvss4_base_score("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N")
        is None
    )


@pytest.mark.parametrize(
    ("score", "severity"),
    [
        (0.0, Severity.INFO),
        (0.1, Severity.LOW),
        (3.9, Severity.LOW),
        (4.0, Severity.MEDIUM),
        (6.9, Severity.MEDIUM),
        (7.0, Severity.HIGH),
        (8.9, Severity.HIGH),
        (9.0, Severity.CRITICAL),
        (10.0, Severity.CRITICAL),
    ],
)
def test_ratings(score: float, severity: Severity) -> None:
    assert rating(score) is severity


def test_text_ratings() -> None:
    assert text_rating("MODERATE") is Severity.MEDIUM
    assert text_rating(" critical ") is Severity.CRITICAL
    assert text_rating("whatever") is None
    assert text_rating(7) is None
