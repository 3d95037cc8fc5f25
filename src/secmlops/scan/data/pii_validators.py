"""Checksum and range validators that separate real identifiers from look-alikes.

Each validator takes the text a regex prefilter matched and answers whether it is a real value
of its kind: Luhn plus issuer ranges for cards, the SSA's never-issued ranges for SSNs, the
per-country length and mod-97 check for IBANs, the `ipaddress` module for IP addresses,
`phonenumbers` for phone numbers. They are pure functions of one string, so the scanner can
run them on candidates only.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re

import phonenumbers

# Issuer identification number (IIN) prefixes and the lengths each network issues. Ranges are
# inclusive and compared on the first len(low) digits.
_CARD_ISSUERS: tuple[tuple[str, tuple[tuple[str, str], ...], frozenset[int]], ...] = (
    ("amex", (("34", "34"), ("37", "37")), frozenset({15})),
    ("diners", (("300", "305"), ("36", "36"), ("38", "39")), frozenset({14, 15, 16, 17, 18, 19})),
    ("jcb", (("3528", "3589"),), frozenset({16, 17, 18, 19})),
    ("mastercard", (("51", "55"), ("2221", "2720")), frozenset({16})),
    (
        "discover",
        (("6011", "6011"), ("644", "649"), ("65", "65"), ("622126", "622925")),
        frozenset({16, 17, 18, 19}),
    ),
    ("unionpay", (("62", "62"), ("81", "81")), frozenset({16, 17, 18, 19})),
    ("visa", (("4", "4"),), frozenset({13, 16, 19})),
)

# Numbers published in advertising or as examples; the SSA voided them.
_SSN_KNOWN_FAKE = frozenset({"078051120", "219099999", "457555462", "123456789"})

# IBAN length per country (SWIFT IBAN registry).
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22,
    "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32,
    "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24,
    "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24, "SC": 31,
    "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28, "TL": 23,
    "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip

# File names such as icon@2x.png look like addresses; these endings are never e-mail domains.
_FILE_SUFFIXES = frozenset(
    {"png", "jpg", "jpeg", "gif", "svg", "webp", "bmp", "ico", "tif", "tiff", "pdf", "css", "js"}
)
_DOMAIN_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z", re.IGNORECASE)


def luhn_ok(digits: str) -> bool:
    """True when the digit string passes the Luhn (mod 10) checksum."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def card_issuer(digits: str) -> str | None:
    """The network whose IIN range and length `digits` fits, else None (Luhn not checked)."""
    n = len(digits)
    for name, ranges, lengths in _CARD_ISSUERS:
        if n not in lengths:
            continue
        for low, high in ranges:
            head = digits[: len(low)]
            if low <= head <= high:
                return name
    return None


def card_ok(digits: str) -> str | None:
    """The issuer of a valid card number (IIN range, length and Luhn), else None."""
    if len(set(digits)) < 3:  # 4444 4444 4444 4448 and friends are test patterns, not cards
        return None
    issuer = card_issuer(digits)
    return issuer if issuer is not None and luhn_ok(digits) else None


def ssn_ok(digits: str) -> bool:
    """True for a nine-digit number in a range the US SSA could have issued."""
    if len(digits) != 9 or not digits.isdigit():
        return False
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    if area in ("000", "666") or area >= "900" or group == "00" or serial == "0000":
        return False
    return digits not in _SSN_KNOWN_FAKE and len(set(digits)) > 1


def iban_ok(compact: str) -> bool:
    """True for an IBAN (no spaces, upper case) with its country's length and mod-97 == 1."""
    if IBAN_LENGTHS.get(compact[:2]) != len(compact) or not compact[2:4].isdigit():
        return False
    if not compact.isalnum() or not compact.isascii():
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(number) % 97 == 1


def ip_kind(text: str) -> str | None:
    """ "public" or "private" (private, loopback, link-local, reserved...) for an IP, else None."""
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if addr.is_unspecified:
        return None
    if addr.is_global:
        return "public"
    return "private"


def email_ok(text: str) -> bool:
    """True for a plausible mailbox address: sane local part and a real-looking domain."""
    local, _, domain = text.rpartition("@")
    if not local or len(local) > 64 or local[0] == "." or local[-1] == "." or ".." in local:
        return False
    labels = domain.split(".")
    if len(labels) < 2 or len(domain) > 253:
        return False
    tld = labels[-1].lower()
    if not tld.isalpha() or not 2 <= len(tld) <= 24 or tld in _FILE_SUFFIXES:
        return False
    return all(_DOMAIN_LABEL.match(label) for label in labels)


def phone_ok(text: str, region: str) -> bool:
    """True when `phonenumbers` says `text` is a valid number (international or in `region`)."""
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return False
    return bool(phonenumbers.is_valid_number(number))


_MONTHS = {
    name: i
    for i, names in enumerate(
        (
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ),
        start=1,
    )
    for name in names
}


def month_number(name: str) -> int | None:
    return _MONTHS.get(name.lower().rstrip("."))


def birth_date_ok(year: int, month: int, day: int, today: dt.date | None = None) -> bool:
    """True for a real calendar date that a living person could have been born on."""
    try:
        born = dt.date(year, month, day)
    except ValueError:
        return False
    now = today or dt.date.today()
    return now.year - 120 <= born.year and born <= now


def redact(entity: str, value: str) -> str:
    """A short form of a detected value that shows its shape, never the value itself."""
    if entity == "EMAIL":
        local, _, domain = value.rpartition("@")
        tld = domain.rsplit(".", 1)[-1]
        return f"{local[:1]}***@{domain[:1]}***.{tld}"
    if entity == "IP":
        sep = ":" if ":" in value else "."
        return value.split(sep, 1)[0] + sep + "***"
    if entity in ("SECRET", "DOB", "ID_DOCUMENT"):
        return f"<{len(value)} chars>"
    keep = 4 if len(value) >= 12 else 2
    head = re.sub(r"[A-Za-z0-9]", "*", value[:-keep])
    return head + value[-keep:]
