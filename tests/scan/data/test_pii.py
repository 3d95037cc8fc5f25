"""PII detectors: each catches real values, passes look-alikes, and survives broken input."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secmlops.errors import ScanError
from secmlops.findings import Location, Severity
from secmlops.scan.data import pii_rules
from secmlops.scan.data.pii import (
    PiiSettings,
    analyze_column,
    find_pii,
    header_hints,
    scan_frame_pii,
)
from secmlops.scan.data.pii_validators import card_issuer, iban_ok, luhn_ok, redact, ssn_ok

WHERE = Location(path="t.csv")


def with_luhn(body: str) -> str:
    """`body` plus the check digit that makes it pass Luhn."""
    for d in "0123456789":
        if luhn_ok(body + d):
            return body + d
    raise AssertionError


def found(text: str, header: str = "") -> list[tuple[str, str]]:
    return [(s.entity, text[s.start : s.end]) for s in find_pii(text, header=header)]


# --- catching -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "entity", "value"),
    [
        ("write to john.doe+ml@example.co.uk today", "EMAIL", "john.doe+ml@example.co.uk"),
        ("call (415) 555-2671 now", "PHONE", "(415) 555-2671"),
        ("ring +44 20 7946 0958.", "PHONE", "+44 20 7946 0958"),
        ("visa 4539 5787 6362 1486 exp 12/27", "CARD", "4539 5787 6362 1486"),
        ("mc 2221-0000-0000-0009", "CARD", "2221-0000-0000-0009"),
        ("amex 371449635398431", "CARD", "371449635398431"),
        ("ssn 536-22-1234 on file", "SSN", "536-22-1234"),
        ("IBAN DE89 3704 0044 0532 0130 00 is mine", "IBAN", "DE89 3704 0044 0532 0130 00"),
        ("pay GB82WEST12345698765432", "IBAN", "GB82WEST12345698765432"),
        ("from 8.8.4.4.", "IP", "8.8.4.4"),
        ("peer 2606:4700:4700::1111 up", "IP", "2606:4700:4700::1111"),
        ("she was born on 12 May 1990 in Oslo", "DOB", "12 May 1990"),
        ("DOB: 04/03/1985", "DOB", "04/03/1985"),
        ("passport number X1234567 issued", "ID_DOCUMENT", "X1234567"),
        ("driver's license D123-4567-8901", "ID_DOCUMENT", "D123-4567-8901"),
        ("her social security number is 536 22 1234", "SSN", "536 22 1234"),
    ],
)
def test_detector_catches(text: str, entity: str, value: str) -> None:
    assert (entity, value) in found(text)


@pytest.mark.parametrize(
    "body",
    ["453957876362148", "510510510510510", "601100099990001", "353011133330000", "622126000000000"],
)
def test_every_issuer_is_caught_with_a_valid_checksum(body: str) -> None:
    number = with_luhn(body)
    assert card_issuer(number) is not None
    assert ("CARD", number) in found(f"card {number}")


def test_private_ip_is_info_public_is_low() -> None:
    frame = pd.DataFrame({"note": ["seen at 10.1.2.3", "x", "y"], "n2": ["from 1.1.1.1", "", ""]})
    by_column = {f.location.column: f for f in scan_frame_pii(frame, WHERE)}
    assert by_column["note"].severity == Severity.INFO
    assert by_column["n2"].severity == Severity.LOW


def test_column_verdict_with_share_rows_and_redacted_examples() -> None:
    emails = [f"user{i}@example.org" for i in range(40)] + [None] * 5 + ["n/a"] * 10
    frame = pd.DataFrame({"contact": emails})
    (finding,) = scan_frame_pii(frame, WHERE)
    assert finding.rule_id == "PII-COLUMN"
    assert finding.evidence["entity"] == "EMAIL"
    assert finding.evidence["share"] == pytest.approx(40 / 50)
    assert finding.location.column == "contact"
    assert finding.location.rows is not None and finding.location.rows[:3] == (0, 1, 2)
    assert all("user" not in e for e in finding.evidence["examples"])


def test_header_hint_turns_a_minority_into_a_column_verdict() -> None:
    values = ["(415) 555-2671", "unknown", "-", "n/a", "none", "later", "?", "x", "y", "z"]
    frame = pd.DataFrame({"mobile_phone": values, "comment": values})
    findings = scan_frame_pii(frame, WHERE)
    rules = {(f.location.column, f.rule_id) for f in findings}
    assert ("mobile_phone", "PII-COLUMN") in rules  # 10 % with a header hint
    assert ("comment", "PII-PHONE") in rules  # 10 % without: a cell finding


def test_hinted_headers_enable_bare_values() -> None:
    ssn = analyze_column(pd.Series(["536221234", "536221235"]), "SSN")
    assert ssn.verdicts == ("SSN",)
    dates = analyze_column(pd.to_datetime(pd.Series(["1985-03-04", "1990-12-01"])), "birth_date")
    assert dates.verdicts == ("DOB",)
    passports = analyze_column(pd.Series(["X1234567", "C01X00T47"]), "passport_no")
    assert passports.verdicts == ("ID_DOCUMENT",)
    assert "NAME" in header_hints("customerFirstName")
    assert "ADDRESS" in header_hints("street_address")
    assert "ADDRESS" not in header_hints("email_address")


def test_cell_findings_are_capped_and_never_hold_the_value() -> None:
    text = [f"mail me at person{i}@mail.example.com please" for i in range(30)]
    frame = pd.DataFrame({"notes": text + ["nothing"] * 100})
    findings = scan_frame_pii(frame, WHERE, settings=PiiSettings(max_cell_findings=5))
    cells = [f for f in findings if f.rule_id == "PII-EMAIL"]
    assert len(cells) == 6  # five cells and one summary of the 25 others
    assert cells[-1].evidence["more"] == 25
    for f in cells:
        assert "person" not in repr(f.to_dict())


def test_name_and_address_columns_get_an_info_note() -> None:
    frame = pd.DataFrame({"last_name": ["Smith"], "city": ["Oslo"], "score": [1]})
    notes = [f for f in scan_frame_pii(frame, WHERE) if f.rule_id == "PII-NAME-ADDRESS"]
    assert {f.location.column for f in notes} == {"last_name", "city"}
    assert all(f.severity == Severity.INFO and "NER" in f.message for f in notes)


def test_sample_rows_reports_rows_of_the_whole_frame() -> None:
    values = ["x"] * 1000
    values[777] = "reach me: jane@example.com"
    frame = pd.DataFrame({"v": values})
    full = scan_frame_pii(frame, WHERE)
    assert full[0].location.rows == (777,)
    sampled = scan_frame_pii(frame, WHERE, sample_rows=999)
    assert all(r == 777 for f in sampled for r in f.location.rows or ())


# --- benign look-alikes ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "order 4539578763621487 shipped",  # fails Luhn
        "ref ORD-4539578763621486",  # inside an order id
        "ssn 000-12-3456 666-12-3456 900-12-3456 123-00-4567 123-45-0000 078-05-1120",
        "uuid 550e8400-e29b-41d4-a716-446655440000",
        "sha 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "version 1.2.3.4 and v10.0.0.1",
        "created 2023-01-15T10:22:33Z, took 10:22:33",
        "isbn 978-3-16-148410-0",
        "tracking 1Z999AA10123456784",
        "icon@2x.png and logo@3x.jpg",
        "python slices x[1::2] and std::vector",
        "mac 00:1a:2b:3c:4d:5e",
        "IBAN DE89 3704 0044 0532 0130 01",  # wrong mod-97
        "invoice 1234567890",  # bare digits without phone context
        "meeting on 12 May 1990",  # a date, but nothing says birth
        "license MIT-2023-0001 applies",
        "500.00 EUR at 12.5% for 3 years",
        "pi is 3.14159265358979",
    ],
)
def test_look_alikes_are_not_pii(text: str) -> None:
    assert found(text) == []


def test_a_column_of_random_order_numbers_is_not_cards() -> None:
    rng = np.random.default_rng(7)
    numbers = [
        "4" + "".join(map(str, rng.integers(0, 10, size=15))) for _ in range(500)
    ]  # about one in ten passes Luhn by chance
    assert sum(luhn_ok(n) for n in numbers) > 20
    result = analyze_column(pd.Series(numbers), "order_number")
    assert "CARD" not in result.spans


def test_validators() -> None:
    assert iban_ok("DE89370400440532013000") and not iban_ok("DE89370400440532013001")
    assert not iban_ok("XX89370400440532013000")
    assert ssn_ok("536221234") and not ssn_ok("078051120") and not ssn_ok("536001234")
    assert redact("EMAIL", "john@example.com") == "j***@e***.com"
    assert redact("CARD", "4539 5787 6362 1486").endswith("1486")
    assert "5787" not in redact("CARD", "4539 5787 6362 1486")


# --- broken and hostile input ---------------------------------------------------------------


def test_mixed_types_bytes_ints_nan_are_scanned_not_crashed() -> None:
    column = pd.Series(
        [b"jane@example.com", 5362212340, float("nan"), None, 4539578763621486, True,
         {"k": "bob@example.com"}, 1.5, math.inf, pd.NaT, b"\xff\xfe\x00bad"],
        dtype=object,
    )  # fmt: skip
    result = analyze_column(column, "stuff")
    assert result.rows("EMAIL") == [0, 6]
    assert result.rows("CARD") == [4]


def test_non_string_and_empty_frames() -> None:
    frame = pd.DataFrame(
        {"f": np.arange(5, dtype=float), "b": [True] * 5, "d": pd.date_range("2020", periods=5)}
    )
    assert scan_frame_pii(frame, WHERE) == []
    assert scan_frame_pii(pd.DataFrame({"email": pd.Series([], dtype=object)}), WHERE) == []
    assert scan_frame_pii(pd.DataFrame(), WHERE) == []
    with pytest.raises(ScanError):
        scan_frame_pii([1, 2], WHERE)  # type: ignore[arg-type]


def test_integer_card_column_and_duplicate_headers() -> None:
    cards = [int(with_luhn(f"45395787636214{i}")) for i in range(10)]
    frame = pd.DataFrame([[c, c] for c in cards], columns=["cc", "cc"])
    findings = scan_frame_pii(frame, WHERE)
    assert [f.rule_id for f in findings] == ["PII-COLUMN", "PII-COLUMN"]


def test_very_long_cells_and_nul_bytes() -> None:
    long_cell = "a" * 300_000 + " jane@example.com " + "1" * 100_000 + "@" * 1000
    column = pd.Series([long_cell, "x\x00jane@example.com\x00y", "@" * 10_000])
    result = analyze_column(column, "blob")
    assert result.rows("EMAIL") == [0, 1]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=80), st.integers(), st.none(), st.binary(max_size=40))))
def test_arbitrary_cells_never_crash(cells: list[object]) -> None:
    frame = pd.DataFrame({"c": pd.Series(cells, dtype=object)})
    for f in scan_frame_pii(frame, WHERE):
        assert f.rule_id in pii_rules.ALL
        assert f.location.column == "c"


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet="0123456789 -.()+:@abcXYZ/\x00\n", max_size=120))
def test_spans_lie_inside_the_text(text: str) -> None:
    for span in find_pii(text):
        assert 0 <= span.start < span.end <= len(text)


def test_credentials_in_cells_come_from_the_secrets_scanner() -> None:
    frame = pd.DataFrame({"log": ["nothing", "config: password=Hunter2SuperSecret!x"]})
    (finding,) = scan_frame_pii(frame, WHERE)
    assert finding.rule_id == "PII-SECRET"
    assert finding.location.rows == (1,)
    assert "Hunter2" not in repr(finding.to_dict())


def test_dense_columns_are_estimated_from_a_sample_without_cross_talk() -> None:
    ibans = ["DE89 3704 0044 0532 0130 00", "GB82 WEST 1234 5698 7654 32"] * 100
    dates = ["1985-03-04", "12/05/1990"] * 100
    small = PiiSettings(max_validations=40)
    iban = analyze_column(pd.Series(ibans), "iban", settings=small)
    assert iban.verdicts == ("IBAN",) and set(iban.spans) == {"IBAN"}  # no cards inside IBANs
    assert iban.shares["IBAN"] == pytest.approx(1.0) and "IBAN" in iban.estimated
    dob = analyze_column(pd.Series(dates), "date_of_birth", settings=small)
    assert dob.verdicts == ("DOB",) and dob.shares["DOB"] == pytest.approx(1.0)
    (finding,) = scan_frame_pii(pd.DataFrame({"iban": ibans}), WHERE, settings=small)
    assert "estimated from a sample" in finding.message


# --- long columns: dense entities from a sample, rare ones from every cell ------------------

LONG = PiiSettings(sample_cells=400, max_validations=100)  # what 10^6-row tables get, shrunk


def test_rare_values_in_a_long_column_are_found_in_every_cell() -> None:
    notes = [f"ticket {i} closed, nothing to report" for i in range(3000)]
    notes[17] = "customer SSN 536-22-1234 read out on the phone"
    notes[2999] = "refund to jane.doe@example.com"
    notes[1234] = "paid with 4539 5787 6362 1486 yesterday"
    rules = {
        f.rule_id: f.location.rows
        for f in scan_frame_pii(pd.DataFrame({"notes": notes}), WHERE, settings=LONG)
    }
    assert rules == {"PII-SSN": (17,), "PII-EMAIL": (2999,), "PII-CARD": (1234,)}


def test_long_dense_columns_are_judged_on_a_sample_like_short_ones() -> None:
    rng = np.random.default_rng(3)
    orders = ["4" + "".join(map(str, rng.integers(0, 10, size=15))) for _ in range(3000)]
    ibans = ["DE89 3704 0044 0532 0130 00", "GB82 WEST 1234 5698 7654 32"] * 1500
    frame = pd.DataFrame({"order_number": orders, "iban": ibans})
    for settings_ in (LONG, PiiSettings(max_validations=100)):  # sampled, then every cell
        order, iban = (analyze_column(frame[c], c, settings=settings_) for c in frame.columns)
        assert "CARD" not in order.spans  # Luhn passes by chance, sample or not
        assert iban.verdicts == ("IBAN",) and set(iban.spans) == {"IBAN"}  # no cards inside
        assert "IBAN" in iban.estimated
    (finding,) = scan_frame_pii(frame, WHERE, settings=LONG)
    assert finding.rule_id == "PII-COLUMN" and "estimated from a sample" in finding.message


def test_a_long_column_that_arrow_cannot_encode_is_still_scanned() -> None:
    cells = [f"row {i} \ud800 lone surrogate" for i in range(1000)]
    cells[500] = "ssn 536-22-1234"
    frame = pd.DataFrame({"x": pd.Series(cells, dtype=object)})  # pyarrow strings refuse them
    (finding,) = scan_frame_pii(frame, WHERE, settings=LONG)
    assert finding.rule_id == "PII-SSN" and finding.location.rows == (500,)
