"""Hostile input never raises and never leaks: random text, random bytes, broken encodings."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from secmlops.findings import Location
from secmlops.scan.secrets import scan_text
from secmlops.scan.secrets import validate as v
from secmlops.scan.secrets.files import scan_bytes
from tests.scan.secrets import fakes

_PIECES = st.sampled_from(
    [
        "-----BEGIN PRIVATE KEY-----",
        "-----END PRIVATE KEY-----",
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n",
        "eyJhbGciOiJIUzI1NiJ9.eyJ",
        "pypi-AgEIcHlwaS5vcmc",
        "gh" + "p_",
        "postgres://u:",
        "@",
        "password = '",
        '"',
        "\\n",
        "\n",
        "==",
        "Q~",
        "AccountKey=",
        "AKIA",
        "\x00",
        "\udcff",
        "é",
    ]
)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(_PIECES, st.text(max_size=40)), max_size=30))
def test_scan_text_survives_structured_garbage(parts: list[str]) -> None:
    text = "".join(parts)
    for finding in scan_text(text, Location(path="fuzz")):
        assert finding.rule_id.startswith("SECRET-")
        assert finding.location.line is not None and finding.location.line >= 1


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=2000))
def test_scan_bytes_survives_random_bytes(data: bytes) -> None:
    scan_bytes(data, "fuzz.ipynb")
    scan_bytes(data, "fuzz.txt")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_validators_return_none_or_a_dict(text: str) -> None:
    for label in ("PRIVATE KEY", "OPENSSH PRIVATE KEY", "PGP PRIVATE KEY BLOCK"):
        assert v.pem_private_key(label, text) is None or isinstance(
            v.pem_private_key(label, text), dict
        )
    assert v.jwt_claims(text) is None or isinstance(v.jwt_claims(text), dict)
    assert v.pypi_macaroon("pypi-" + text) is None or isinstance(
        v.pypi_macaroon("pypi-" + text), dict
    )
    v.crc32_token_ok("gh" + "p_" + text + "x" * 6)


def test_secret_never_appears_in_findings() -> None:
    rng = random.Random(9)
    secrets = [gen(rng) for gen in fakes.TOKENS.values()] + [fakes.password(rng)]
    text = "\n".join(f"db_password_{i} = '{s}'" for i, s in enumerate(secrets))
    found = scan_text(text, Location(path="x"))
    assert len(found) == len(secrets)
    rendered = repr([f.to_dict() for f in found])
    for s in secrets:
        assert s not in rendered and s[4:] not in rendered
