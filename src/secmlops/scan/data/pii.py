"""Personal data in tables and free text: column verdicts and cell findings.

Each column is turned into one string (cells joined by NUL), every entity's compiled prefilter
regex runs once over it in C, and the Python validators (checksums, ranges, libphonenumber)
run on the candidates only; match offsets map back to rows with one binary search. Header
hints (``email``, ``dob``, ``passport`` ...) raise confidence and enable the detectors that need
context; free-text cells use the words just before a value instead.

Person names and postal addresses need a named-entity model: they are *not* detected by
content, only reported (info) when a header names them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from secmlops.errors import ScanError
from secmlops.findings import Finding, Location, Severity
from secmlops.scan.data import pii_rules
from secmlops.scan.data.pii_validators import (
    IBAN_LENGTHS,
    birth_date_ok,
    card_ok,
    email_ok,
    iban_ok,
    ip_kind,
    month_number,
    phone_ok,
    redact,
    ssn_ok,
)

ENTITIES = ("EMAIL", "PHONE", "CARD", "SSN", "IBAN", "IP", "DOB", "ID_DOCUMENT", "SECRET")
_SEP = "\x00"  # joins cells; no prefilter pattern can match it, so no match spans two cells
_ROW_CAP = 20  # row indices kept in one finding's location


@dataclass(frozen=True, slots=True)
class PiiSettings:
    """How the scanner decides (defaults suit most data; thresholds are shares of non-empty cells)."""

    region: str = "US"  # phone numbers without a +country prefix are read in this region
    column_share: float = 0.5  # a column is personal data at this share of matching cells ...
    hinted_share: float = 0.05  # ... or at this share when its header names the entity
    max_cell_findings: int = 10  # per column and entity; the rest are summarised in one finding
    max_validations: int = 10_000  # per entity and column; a scan validates a sample beyond it
    sample_cells: int = 20_000  # a longer column's dense entities are judged on this many cells
    secrets: bool = True  # run the secrets scanner over text columns when it is installed


@dataclass(frozen=True, slots=True)
class Span:
    """One validated value: its row (position in the frame) and offsets inside the cell text."""

    entity: str
    row: int
    start: int
    end: int
    kind: str = ""  # issuer for cards, "public"/"private" for IPs, the secret rule id, ...


@dataclass(frozen=True, slots=True, eq=False)
class ColumnPii:
    """What one column holds: spans per entity and the column-level verdict."""

    column: str
    position: int
    non_null: int
    hints: frozenset[str]
    spans: Mapping[str, tuple[Span, ...]]
    shares: Mapping[str, float]
    verdicts: tuple[str, ...]  # entities that make the whole column personal data
    whole_cell: Mapping[str, float]  # share of matching cells the value fills completely
    estimated: frozenset[str] = frozenset()  # entities whose share comes from a sample
    texts: Mapping[int, str] = field(default_factory=dict)  # row -> cell text (matching rows)

    def rows(self, entity: str) -> list[int]:
        return sorted({s.row for s in self.spans.get(entity, ())})


# --- header hints ---------------------------------------------------------------------------

_HINT_WORDS: dict[str, tuple[frozenset[str], tuple[str, ...]]] = {
    # entity: (whole header tokens, substrings of the compacted header)
    "EMAIL": (frozenset({"email", "mail", "emails"}), ("email",)),
    "PHONE": (
        frozenset({"phone", "tel", "telephone", "mobile", "cell", "fax", "msisdn", "handy"}),
        ("phone", "telefon", "mobilenumber"),
    ),
    "CARD": (frozenset({"card", "cc", "pan", "ccnum", "ccn"}), ("creditcard", "cardnumber")),
    "SSN": (frozenset({"ssn", "sin"}), ("ssn", "socialsecurity")),
    "IBAN": (frozenset({"iban"}), ("iban",)),
    "IP": (
        frozenset({"ip", "ipv4", "ipv6", "ipaddr", "ipaddress", "remoteaddr"}),
        ("ipaddr", "clientip", "sourceip", "remoteip"),
    ),
    "DOB": (frozenset({"dob", "birth", "birthday", "birthdate", "born"}), ("birth", "geburt")),
    "ID_DOCUMENT": (
        frozenset({"dl", "dln", "passport", "idcard", "nationalid"}),
        ("passport", "licence", "license", "idnumber", "documentnumber"),
    ),
    "VERSION": (frozenset({"version", "ver", "release", "build"}), ("version",)),
}
_NAME_WORDS = frozenset(
    {"first", "last", "full", "given", "family", "middle", "maiden", "sur", "customer", "patient",
     "person", "contact", "employee", "client", "holder", "cardholder", "account", "user"}
)  # fmt: skip
_NAME_COMPACT = ("firstname", "lastname", "surname", "fullname", "givenname", "forename")
_ADDRESS_WORDS = frozenset(
    {"address", "addr", "street", "city", "zip", "zipcode", "postcode", "postal", "postalcode"}
)


def header_hints(header: str) -> frozenset[str]:
    """Entities (and "VERSION", "NAME", "ADDRESS") a column header names."""
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])", "_", header).lower()
    tokens = {t for t in re.split(r"[^a-z0-9]+", spaced) if t}
    compact = "".join(re.split(r"[^a-z0-9]+", spaced))
    found = {
        entity
        for entity, (words, parts) in _HINT_WORDS.items()
        if tokens & words or any(p in compact for p in parts)
    }
    if (
        compact == "name"
        or any(p in compact for p in _NAME_COMPACT)
        or ("name" in tokens and tokens & _NAME_WORDS)
    ):
        found.add("NAME")
    if tokens & _ADDRESS_WORDS and not found & {"EMAIL", "IP"}:
        found.add("ADDRESS")
    return frozenset(found)


# --- the column as one string ---------------------------------------------------------------


def _cell_text(value: Any) -> str | None:
    """Text of one cell of any type, or None for missing values and types that hold no PII."""
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, bool | np.bool_):
        return None
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        number = float(value)
        if not math.isfinite(number) or number != int(number) or abs(number) >= 1e19:
            return None  # only integral floats can be identifiers (a CSV column with gaps)
        return str(int(number))
    if value is pd.NaT or value is pd.NA:
        return None
    return str(value)  # dates, decimals, nested JSON values: their text can hold PII too


def column_texts(series: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Positions and texts of the cells that can hold PII (missing values left out)."""
    kind = series.dtype.kind
    if kind == "b" or len(series) == 0:
        return np.empty(0, dtype=np.int64), []
    if kind in "iu":
        return np.arange(len(series), dtype=np.int64), [str(v) for v in series.to_numpy()]
    if kind == "M":
        notna = series.notna().to_numpy()
        return np.flatnonzero(notna), list(series[notna].dt.strftime("%Y-%m-%d"))
    if pd.api.types.infer_dtype(series, skipna=True) == "string":
        present = (series.notna() & (series != "")).to_numpy(dtype=bool)
        return np.flatnonzero(present), series[present].tolist()
    values = series.to_numpy(dtype=object)
    positions: list[int] = []
    texts: list[str] = []
    for i, value in enumerate(values):
        text = value if type(value) is str else _cell_text(value)
        if text is not None and text:
            positions.append(i)
            texts.append(text)
    return np.asarray(positions, dtype=np.int64), texts


_DIGITS = {str(d): "0" for d in range(10)}


@dataclass(slots=True)
class _Column:
    """One column joined into one string, with the offset where each cell starts."""

    big: str
    starts: np.ndarray
    hints: frozenset[str]
    region: str
    longest: int = 0
    _lower: str | None = None
    _digits: dict[str, str] = field(default_factory=dict)

    @classmethod
    def build(cls, texts: Sequence[str], hints: frozenset[str], region: str) -> _Column:
        big = _SEP.join(texts)
        if big.count(_SEP) != max(len(texts) - 1, 0):
            texts = [t.replace(_SEP, " ") for t in texts]  # same length: offsets stay valid
            big = _SEP.join(texts)
        lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)) + 1
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1])) if len(texts) else lengths
        return cls(big, starts, hints, region, int(lengths.max()) - 1 if len(texts) else 0)

    @property
    def lower(self) -> str:
        if self._lower is None:
            self._lower = self.big.lower()
        return self._lower

    def _digit_text(self, separators: str) -> str:
        """The column with digits as "0" and `separators` deleted (cells still NUL-separated)."""
        if separators not in self._digits:
            table = str.maketrans({**_DIGITS, **dict.fromkeys(separators)})
            self._digits[separators] = self.big.translate(table)
        return self._digits[separators]

    def digit_run(self, count: int, separators: str) -> bool:
        """True when `count` digits follow each other, `separators` ignored (a cheap gate)."""
        return "0" * count in self._digit_text(separators)

    def mentions(self, words: tuple[str, ...]) -> bool:
        return any(w in self.lower for w in words)

    def cell_of(self, offset: int) -> int:
        return int(np.searchsorted(self.starts, offset, side="right")) - 1

    def before(self, offset: int, width: int = 40) -> str:
        """Lower-cased text just before `offset`, not reaching into the previous cell."""
        window = self.big[max(0, offset - width) : offset]
        return window.rsplit(_SEP, 1)[-1].lower()

    def whole(self, start: int, end: int) -> bool:
        """True when [start, end) is the whole cell (surrounding blanks ignored)."""
        cell = self.cell_of(start)
        first = int(self.starts[cell])
        last = int(self.starts[cell + 1]) - 1 if cell + 1 < len(self.starts) else len(self.big)
        return not self.big[first:start].strip() and not self.big[end:last].strip()


# --- detectors ------------------------------------------------------------------------------

_Hit = tuple[int, int, str]  # start, end, kind
_Validator = Callable[[re.Match[str], _Column], _Hit | None]


@dataclass(frozen=True, slots=True)
class _Detector:
    entity: str
    pattern: re.Pattern[str]
    validate: _Validator
    gate: Callable[[_Column], bool]
    chance: bool = False  # checksum passes by chance: ignore a column of mostly failing look-alikes
    # An RE2 pattern matching every cell the pattern can match in (and a few more): it finds
    # the cells worth a look in C, linear time (None: scan the column with the pattern itself).
    superset: Callable[[_Column], str | None] = lambda col: None
    # The gate only saves time: no cell it rejects can yield a hit (a digit run the pattern
    # needs, a context word the validator needs), so a long column, whose sample and RE2 pass
    # find the same, skips it.
    implied_gate: bool = False


_PHONE_WORDS = re.compile(r"\b(?:phone|tel|mobile|cell|call|fax|sms|whatsapp|contact)\b")
_SSN_WORDS = re.compile(r"\b(?:ssn|social security|soc\.? sec|ss#)")
_DOB_KEYS = ("born", "dob", "d.o.b", "birth", "geb.", "geboren", "né")
_DOB_WORDS = re.compile(
    r"\b(?:born|dob|d\.o\.b|date of birth|birth ?date|birthday|geb\.|geboren|né|née)\b"
)
_ID_KEYS = ("passport", "licence", "license", "dl#", "dl #", "dln", "id card", "national id")
_ID_WORDS = re.compile(
    r"(?:passport|driv(?:er'?s?|ing) licen[cs]e|licen[cs]e (?:no|number|#)|\bdl\s?#|\bdln\b|"
    r"id card|identity card|national id)"
)
_ID_CELL_KEYS = (*_ID_KEYS, "identity card", "dl\t#")  # every way _ID_WORDS can match


def _any_word(words: tuple[str, ...]) -> str:
    return "(?i:" + "|".join(re.escape(w) for w in words) + ")"


_VERSION_BEFORE = re.compile(r"(?:version|ver\.?|release|build|firmware|v)\s*[:=]?\s*$")
# Words that say a number is an identifier of something else (order 4539..., ref 123-45-...).
_ID_BEFORE = re.compile(
    r"\b(?:order|invoice|inv|ref|reference|tracking|ticket|sku|serial|isbn|part|item|po)"
    r"\s*(?:no\.?|number|id)?\s*[:#]?\s*$"
)
# An IBAN-like run just before: digits that continue it are not a phone number.
_IBAN_BEFORE = re.compile(r"\b[a-z]{2}\d{2}(?: ?[a-z0-9]{4}){0,7} ?$")
_DATE_SHAPE = re.compile(r"\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{4}")
_SSN_SHAPE = re.compile(r"\d{3}-\d{2}-\d{4}\Z")
_EMAIL_LOCAL = re.compile(r"[A-Za-z0-9._%+-]{1,65}")  # matched backwards from the "@"
_EMAIL_DOMAIN = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,8}[A-Za-z]{2,24}(?![\w-])"
)


def _near(col: _Column, start: int, words: re.Pattern[str], width: int = 40) -> bool:
    """True when one of `words` comes shortly before `start` with no other number between
    ("born 1946-07-01; meeting on 1971-03-13": the second date is not a birth date)."""
    window = col.before(start, width)
    last = None
    for last in words.finditer(window):  # noqa: B007 - the last match is the nearest
        pass
    return last is not None and not any(ch.isdigit() for ch in window[last.end() :])


def _email(m: re.Match[str], col: _Column) -> _Hit | None:
    """The prefilter finds each "@"; the address is read outwards from it."""
    at = m.start()
    local = _EMAIL_LOCAL.match(col.big[max(0, at - 65) : at][::-1])
    domain = _EMAIL_DOMAIN.match(col.big, at + 1)
    if local is None or domain is None or local.end() > 64:
        return None  # no local part, no domain, or a local part longer than 64 characters
    start = at - local.end()
    text = col.big[start : domain.end()]
    return (start, domain.end(), "") if email_ok(text) else None


def _phone(m: re.Match[str], col: _Column) -> _Hit | None:
    text = m.group()
    digits = sum(ch.isdigit() for ch in text)
    if not 7 <= digits <= 15 or _SSN_SHAPE.match(text) or _DATE_SHAPE.search(text):
        return None
    before = col.before(m.start(), 40)
    if ip_kind(text) is not None or _IBAN_BEFORE.search(before) or _ID_BEFORE.search(before):
        return None
    formatted = text.startswith("+") or any(ch in text for ch in " -.()")
    if not formatted and "PHONE" not in col.hints and not _near(col, m.start(), _PHONE_WORDS):
        return None  # a bare digit run is an id unless the header or text says phone
    return (m.start(), m.end(), "") if phone_ok(text, col.region) else None


def _card(m: re.Match[str], col: _Column) -> _Hit | None:
    text = m.group()
    before = col.before(m.start(), 40)
    if _ID_BEFORE.search(before) or _IBAN_BEFORE.search(before):
        return None  # "order 4539...", "DE56 4944 ...": other numbers that happen to pass Luhn
    seps = {ch for ch in text if not ch.isdigit()}
    if len(seps) > 1:
        return None
    if not seps:
        issuer = card_ok(text)
        return (m.start(), m.end(), issuer) if issuer else None
    groups = text.split(seps.pop())
    # A run of groups can swallow a following number: try the longest prefix that is a card.
    for k in range(len(groups), 2, -1):
        digits = "".join(groups[:k])
        issuer = card_ok(digits) if 13 <= len(digits) <= 19 else None
        if issuer:
            end = m.start() + len(digits) + k - 1
            return (m.start(), end, issuer)
    return None


def _ssn(m: re.Match[str], col: _Column) -> _Hit | None:
    text = m.group()
    if not ssn_ok(text.replace(m.group(1), "") if m.group(1) else text):
        return None
    if m.group(1) != "-" and "SSN" not in col.hints and not _near(col, m.start(), _SSN_WORDS):
        return None
    return (m.start(), m.end(), "")


def _iban(m: re.Match[str], col: _Column) -> _Hit | None:
    text = m.group()
    length = IBAN_LENGTHS.get(text[:2])
    compact = text.replace(" ", "")
    if length is None or len(compact) < length or not iban_ok(compact[:length]):
        return None
    # Walk the text to find where the length-th character ends (spaces interleave).
    seen = 0
    for i, ch in enumerate(text):
        if ch != " ":
            seen += 1
            if seen == length:
                end = i + 1
                if end < len(text) and text[end] != " ":
                    return None  # the IBAN would end inside a group: a longer token
                return (m.start(), m.start() + end, text[:2])
    return None


def _ip(m: re.Match[str], col: _Column) -> _Hit | None:
    return _ip_text(m.group(), m.start(), col)


def _ip_text(text: str, start: int, col: _Column) -> _Hit | None:
    if ":" in text:
        hexdigits = sum(ch in "0123456789abcdefABCDEF" for ch in text)
        groups = [g for g in text.split(":") if g]
        if hexdigits < 5 or len(groups) < 2:
            return None  # 1::2 slices, a::b scopes
    elif "VERSION" in col.hints or _VERSION_BEFORE.search(col.before(start, 16)):
        return None  # version 1.2.3.4 is a version number, not an address (documented choice)
    kind = ip_kind(text)
    return (start, start + len(text), kind) if kind else None


_HEX_COLON = re.compile(r"[0-9A-Fa-f:]{0,38}")


def _ipv6_compressed(m: re.Match[str], col: _Column) -> _Hit | None:
    """The prefilter finds each "::"; the address is read outwards from it."""
    at = m.start()
    if at > 0 and col.big[at - 1] == ":":
        return None  # ":::" is not an address; its second "::" is tried on its own
    left = _HEX_COLON.match(col.big[max(0, at - 38) : at][::-1])
    right = _HEX_COLON.match(col.big, at + 2)
    start = at - (left.end() if left else 0)
    end = right.end() if right else at + 2
    after = col.big[end : end + 2]
    if (start > 0 and (col.big[start - 1].isalnum() or col.big[start - 1] in "_.:")) or (
        after[:1].isalnum() or after[:1] == "_" or (after[:1] == "." and after[1:].isalnum())
    ):
        return None  # part of a longer token (a sentence's full stop is fine)
    return _ip_text(col.big[start:end], start, col)


def _dob(m: re.Match[str], col: _Column) -> _Hit | None:
    if "DOB" not in col.hints and not _near(col, m.start(), _DOB_WORDS, 32):
        return None
    g = m.groupdict()
    if g["iy"]:
        candidates = [(int(g["iy"]), int(g["im"]), int(g["id"]))]
    elif g["ny"]:
        year = int(g["ny"])
        if year < 100:
            year += 1900 if year > 30 else 2000
        a, b = int(g["na"]), int(g["nb"])
        candidates = [(year, a, b), (year, b, a)]
    else:
        month = month_number(g["tm1"] or g["tm2"])
        day = int(g["td1"] or g["td2"])
        candidates = [(int(g["ty1"] or g["ty2"]), month or 0, day)]
    if any(birth_date_ok(y, mo, d) for y, mo, d in candidates):
        return (m.start(), m.end(), "")
    return None


def _id_document(m: re.Match[str], col: _Column) -> _Hit | None:
    text = m.group()
    if sum(ch.isdigit() for ch in text) < 5 or text.count("-") > 4:
        return None
    hinted = "ID_DOCUMENT" in col.hints and col.whole(m.start(), m.end())
    if not hinted and not _near(col, m.start(), _ID_WORDS, 32):
        return None
    return (m.start(), m.end(), "")


def _literal(entity: str, text: str, validate: _Validator) -> _Detector:
    """A detector whose candidates are the places of `text`, read outwards by `validate`."""
    return _Detector(
        entity,
        re.compile(re.escape(text)),
        validate,
        gate=lambda col: text in col.big,
        superset=lambda col: re.escape(text),
    )


# Every pattern starts with a plain character class and checks the character before it with a
# lookbehind placed after that first character: the regex engine then skips positions that
# cannot start a match in C, 2-3x faster than a leading lookbehind.
_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
DETECTORS: tuple[_Detector, ...] = (
    _literal("EMAIL", "@", _email),
    _Detector(
        "IBAN",
        re.compile(r"[A-Z](?<![A-Za-z0-9].)[A-Z][0-9]{2}(?: ?[A-Z0-9]{1,4}){3,8}(?![A-Za-z0-9])"),
        _iban,
        gate=lambda col: col.digit_run(6, " "),
        superset=lambda col: r"(?:^|[^A-Za-z0-9])[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{1,4}){3}",
    ),
    _Detector(
        "CARD",
        re.compile(r"[0-9](?<![\w.,-].)(?:[ -]?[0-9]){12,22}(?![\w-])"),
        _card,
        gate=lambda col: col.digit_run(13, " -"),
        chance=True,
        implied_gate=True,
        superset=lambda col: r"(?:^|[^\w.,-])[0-9](?:[ -]?[0-9]){12,22}(?:$|[^\w-])",
    ),
    _Detector(
        "SSN",
        re.compile(r"[0-9](?<![\w.-].)[0-9]{2}([- .]?)[0-9]{2}\1[0-9]{4}(?![\w-])"),
        _ssn,
        gate=lambda col: col.digit_run(9, " .-"),
        implied_gate=True,
        superset=lambda col: r"(?:^|[^\w.-])[0-9]{3}[- .]?[0-9]{2}[- .]?[0-9]{4}(?:$|[^\w-])",
    ),
    _Detector(
        "PHONE",
        re.compile(
            r"[0-9+(](?<![\w+.,/:-].)(?:(?<=[+(])[0-9]|(?<=[0-9]))(?:[ .()-]{0,2}[0-9]){6,16}"
            r"\)?(?![\w/:-]|\.[0-9])"
        ),
        _phone,
        gate=lambda col: col.digit_run(7, " .()+-"),
        implied_gate=True,
        superset=lambda col: (
            r"(?:^|[^\w+.,/:-])[+(]?[0-9](?:[ .()-]{0,2}[0-9]){6,16}\)?(?:$|[^\w/:-])"
        ),
    ),
    _Detector(
        "IP",
        re.compile(r"[0-9](?<![\w.:].)[0-9]{0,2}(?:\.[0-9]{1,3}){3}(?!\.?\w)"),
        _ip,
        gate=lambda col: "." in col.big and col.digit_run(4, "."),
        implied_gate=True,
        superset=lambda col: r"(?:^|[^\w.:])[0-9]{1,3}(?:\.[0-9]{1,3}){3}(?:$|[^\w.]|\.$|\.\W)",
    ),
    _Detector(
        "IP",
        re.compile(r"[0-9A-Fa-f](?<![\w:.].)[0-9A-Fa-f]{0,3}(?::[0-9A-Fa-f]{1,4}){7}(?![\w:.])"),
        _ip,
        gate=lambda col: col.big.count(":") >= 7,
        superset=lambda col: r"(?:^|[^\w:.])[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){7}",
    ),
    _literal("IP", "::", _ipv6_compressed),
    _Detector(
        "DOB",
        re.compile(
            r"(?<![\w.:-])(?:(?P<iy>(?:19|20)\d\d)[-/.](?P<im>\d{1,2})[-/.](?P<id>\d{1,2})"
            r"|(?P<na>\d{1,2})[-/.](?P<nb>\d{1,2})[-/.](?P<ny>(?:19|20)?\d\d)"
            rf"|(?P<td1>\d{{1,2}})(?:st|nd|rd|th)?\s(?P<tm1>{_MONTH})\s(?P<ty1>(?:19|20)\d\d)"
            rf"|(?P<tm2>{_MONTH})\s(?P<td2>\d{{1,2}})(?:st|nd|rd|th)?,?\s(?P<ty2>(?:19|20)\d\d))"
            r"(?![\w])",
            re.IGNORECASE,
        ),
        _dob,
        gate=lambda col: "DOB" in col.hints or col.mentions(_DOB_KEYS),
        implied_gate=True,
        superset=lambda col: None if "DOB" in col.hints else _any_word(_DOB_KEYS),
    ),
    _Detector(
        "ID_DOCUMENT",
        re.compile(r"[A-Z0-9](?<![\w-].)[A-Z0-9-]{4,16}[A-Z0-9](?![\w-])"),
        _id_document,
        gate=lambda col: "ID_DOCUMENT" in col.hints or col.mentions(_ID_KEYS),
        implied_gate=True,
        superset=lambda col: None if "ID_DOCUMENT" in col.hints else _any_word(_ID_CELL_KEYS),
    ),
)


@dataclass(slots=True)
class _Claimed:
    """Characters taken by an earlier detector (IBANs before cards before phones): a later
    candidate overlapping them is not even validated."""

    diff: np.ndarray  # +1 where a claimed span starts, -1 where it ends
    prefix: np.ndarray | None = None  # claimed characters before each offset
    stale: bool = False

    def add(self, spans: Sequence[tuple[int, int]]) -> None:
        if spans:
            bounds = np.asarray(spans, dtype=np.int64)
            np.add.at(self.diff, bounds[:, 0], 1)
            np.add.at(self.diff, bounds[:, 1], -1)
            self.stale = True

    def free(self, spans: Sequence[tuple[int, int]]) -> list[bool]:
        if self.prefix is None and not self.stale:
            return [True] * len(spans)
        if self.stale:
            covered = np.cumsum(self.diff)[:-1] > 0
            self.prefix = np.concatenate(([0], np.cumsum(covered)))
            self.stale = False
        assert self.prefix is not None
        bounds = np.asarray(spans, dtype=np.int64).reshape(-1, 2)
        free: list[bool] = (self.prefix[bounds[:, 1]] == self.prefix[bounds[:, 0]]).tolist()
        return free


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What one detector did on one column: validated hits, the factor that scales a sample's
    count to the whole column, its candidate count and how the candidates were treated."""

    hits: list[_Hit]
    factor: float
    matches: int  # the pattern's matches, before those overlapping claimed characters go
    policy: str  # "validated"; "chance": look-alikes, no hits; "claim": dense, all claimed


_NOTHING = _Outcome([], 1.0, 0, "validated")


def _run_detector(
    det: _Detector,
    col: _Column,
    settings: PiiSettings,
    exhaustive: bool,
    claimed: _Claimed,
    policy: str | None = None,
) -> _Outcome:
    """Validated hits of one (gated-on) detector.

    Beyond `max_validations` candidates a scan validates an evenly spread sample; the share of
    validated cells is then an estimate. Exhaustive runs (anonymisation) validate every one.
    `policy` replays a decision taken on a sample of the column ("chance", "claim") instead of
    validating again (the candidates then only claim characters, they are not reported).
    """
    if policy == "chance":
        return _Outcome([], 1.0, 0, "chance")
    found = list(det.pattern.finditer(col.big))
    free = claimed.free([m.span() for m in found])
    candidates = [m for m, ok in zip(found, free, strict=True) if ok]
    if policy == "claim":
        claimed.add([m.span() for m in candidates])
        return _Outcome([], 1.0, len(found), "claim")
    chosen: Sequence[re.Match[str]] = candidates
    if not exhaustive and len(candidates) > settings.max_validations:
        picks = np.linspace(0, len(candidates) - 1, settings.max_validations).astype(np.int64)
        chosen = [candidates[int(i)] for i in picks]
    hits = [h for h in (det.validate(m, col) for m in chosen) if h is not None]
    if det.chance and len(chosen) >= 20 and len(hits) < 0.5 * len(chosen):
        whole = sum(col.whole(m.start(), m.end()) for m in chosen)
        if whole >= 0.8 * len(chosen) and len(candidates) >= 0.5 * len(col.starts):
            # a column of look-alike numbers: its few checksum passes are chance
            return _Outcome([], 1.0, len(found), "chance")
    factor = len(candidates) / len(chosen) if chosen else 1.0
    if factor > 1.0 and len(hits) >= 0.5 * len(chosen):
        # Unvalidated candidates of a dense column are presumed to be what the sample shows
        # (mostly valid): they keep later detectors from reading an IBAN's digits as a card.
        claimed.add([m.span() for m in candidates])
        return _Outcome(hits, factor, len(found), "claim")
    claimed.add([(s, e) for s, e, _ in hits])
    return _Outcome(hits, factor, len(found), "validated")


def _run_detectors(
    col: _Column,
    settings: PiiSettings,
    exhaustive: bool,
    enabled: Sequence[bool],
    policies: Mapping[int, str] | None = None,
) -> list[_Outcome]:
    """Every enabled detector over one column, in order (earlier ones claim characters)."""
    claimed = _Claimed(np.zeros(len(col.big) + 1, dtype=np.int32))
    policies = policies or {}
    return [
        _run_detector(det, col, settings, exhaustive, claimed, policies.get(i)) if on else _NOTHING
        for i, (det, on) in enumerate(zip(DETECTORS, enabled, strict=True))
    ]


_LINE_BREAKS = str.maketrans("\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029", " " * 10)


def _secret_hits(col: _Column, texts: Sequence[str]) -> list[_Hit]:
    """Credentials found by the secrets scanner (when installed), one line per cell."""
    try:
        from secmlops.scan.secrets import scan_text  # type: ignore[attr-defined,unused-ignore]
    except ImportError as exc:  # the secrets scanner is not installed in this build
        if not (exc.name or "").startswith("secmlops.scan.secrets"):
            raise
        return []
    if not col.longest >= 16:
        return []
    # One call per column: cells become lines (line breaks inside cells become spaces, which
    # keeps every offset).
    text = col.big
    if "\n" in text or "\r" in text:
        text = text.translate(_LINE_BREAKS)
    findings = scan_text(text.replace(_SEP, "\n"), Location(path="<column>"))
    hits: list[_Hit] = []
    for finding in findings:
        line = finding.location.line
        if line is None or not 1 <= line <= len(texts):
            continue
        start = int(col.starts[line - 1])
        hits.append((start, start + len(texts[line - 1]), finding.rule_id))
    return hits


# One validated value with cell-relative offsets: cell (index into the column's texts), start,
# end, kind, and how many cells it stands for (> 1 when it comes from a sample).
_CellHit = tuple[int, int, int, str, float]


def _in_cells(
    col: _Column, hits: Sequence[_Hit], cells: np.ndarray, weight: float
) -> list[_CellHit]:
    """Hits of a column (offsets into its joined string) as cell-relative hits; `cells` maps the
    column's cells to the scanned texts (a sample or a subset is a column of its own)."""
    if not hits:
        return []
    at = np.searchsorted(col.starts, np.fromiter((h[0] for h in hits), np.int64), side="right") - 1
    first = col.starts[at].tolist()
    return [
        (int(cells[c]), s - f, e - f, k, weight)
        for c, f, (s, e, k) in zip(at.tolist(), first, hits, strict=True)
    ]


def _collect(
    found: dict[str, list[_CellHit]],
    col: _Column,
    outcomes: Sequence[_Outcome],
    cells: np.ndarray,
    scale: float = 1.0,
    only: Callable[[int], bool] = lambda i: True,
) -> None:
    for i, (det, outcome) in enumerate(zip(DETECTORS, outcomes, strict=True)):
        if only(i):
            weight = outcome.factor * scale
            found.setdefault(det.entity, []).extend(_in_cells(col, outcome.hits, cells, weight))


def _detect_all(
    texts: list[str], hints: frozenset[str], settings: PiiSettings, exhaustive: bool
) -> dict[str, list[_CellHit]]:
    """Every detector over every cell (exhaustive runs and columns up to `sample_cells`)."""
    col = _Column.build(texts, hints, settings.region)
    enabled = [det.gate(col) for det in DETECTORS]
    found: dict[str, list[_CellHit]] = {}
    _collect(found, col, _run_detectors(col, settings, exhaustive, enabled), _identity(len(texts)))
    if settings.secrets:
        found["SECRET"] = _in_cells(col, _secret_hits(col, texts), _identity(len(texts)), 1.0)
    return found


def _identity(n: int) -> np.ndarray:
    return np.arange(n, dtype=np.int64)


def _detect_sampled(
    texts: list[str], hints: frozenset[str], settings: PiiSettings
) -> dict[str, list[_CellHit]]:
    """A large column: dense detectors are judged on an evenly spread sample of cells, sparse
    ones validate every candidate of the whole column.

    A detector whose candidates fill the column (a column of e-mail addresses, of order
    numbers) is read from `sample_cells` cells: its share is an estimate, as it already is
    beyond `max_validations` candidates. Every other detector's regex runs over the whole
    column in C, and the cells holding its candidates are analysed in full (every detector, so
    characters claimed by an IBAN are not read as a card), replaying the sample's decision for
    the dense detectors: a rare SSN in a free-text column is still found and reported per cell.
    """
    n = len(texts)
    full = _Column.build(texts, hints, settings.region)
    enabled = [det.implied_gate or det.gate(full) for det in DETECTORS]
    picks = np.unique(np.linspace(0, n - 1, settings.sample_cells).astype(np.int64))
    sample = _Column.build([texts[i] for i in picks.tolist()], hints, settings.region)
    outcomes = _run_detectors(sample, settings, False, enabled)
    scale = n / len(picks)
    dense = {
        i
        for i, o in enumerate(outcomes)
        if enabled[i] and o.matches * scale > settings.max_validations
    }
    found: dict[str, list[_CellHit]] = {}
    _collect(found, sample, outcomes, picks, scale, lambda i: i in dense)
    sparse = [i for i, on in enumerate(enabled) if on and i not in dense]
    wanted = np.zeros(n, dtype=bool)
    supersets = [(i, DETECTORS[i].superset(full)) for i in sparse]
    if any(p is not None for _, p in supersets):
        try:
            array = pa.array(texts, pa.string())
            either = "|".join(f"(?:{p})" for _, p in supersets if p is not None)
            hit = pc.match_substring_regex(array, either)  # one linear pass for all of them
            wanted[pc.indices_nonzero(hit).to_numpy()] = True
        except (pa.ArrowException, UnicodeError):  # lone surrogates have no UTF-8 form
            supersets = [(i, None) for i in sparse]
    for i, superset in supersets:
        if superset is None:
            offsets = [m.start() for m in DETECTORS[i].pattern.finditer(full.big)]
            wanted[np.searchsorted(full.starts, offsets, side="right") - 1] = True
    if wanted.any():
        cells = np.flatnonzero(wanted)
        subset = _Column.build([texts[i] for i in cells.tolist()], hints, settings.region)
        policies = {i: outcomes[i].policy for i in dense}
        sub = _run_detectors(subset, settings, False, enabled, policies)
        _collect(found, subset, sub, cells, 1.0, lambda i: i not in dense)
    if settings.secrets:
        found["SECRET"] = _in_cells(full, _secret_hits(full, texts), _identity(n), 1.0)
    return found


def _whole(text: str, start: int, end: int) -> bool:
    return not text[:start].strip() and not text[end:].strip()


def analyze_column(
    series: pd.Series,
    header: str,
    position: int = 0,
    settings: PiiSettings | None = None,
    *,
    exhaustive: bool = False,
) -> ColumnPii:
    """Find PII in one column: every entity's spans, shares and the column verdict.

    `exhaustive` validates every candidate of every cell even for costly validators
    (anonymisation needs every span; a scan can estimate a dense column's share from a sample).
    """
    settings = settings or PiiSettings()
    hints = header_hints(header)
    try:
        positions, texts = column_texts(series)
    except (TypeError, ValueError, UnicodeError, OverflowError) as exc:
        raise ScanError(f"column {header!r}: cannot read its values as text: {exc}") from exc
    n = len(texts)
    found: dict[str, list[_CellHit]] = {}
    if n and (exhaustive or n <= settings.sample_cells):
        found = _detect_all(texts, hints, settings, exhaustive)
    elif n:
        found = _detect_sampled(texts, hints, settings)
    spans: dict[str, tuple[Span, ...]] = {}
    shares: dict[str, float] = {}
    whole_cell: dict[str, float] = {}
    matched_cells: set[int] = set()
    estimated: set[str] = set()
    for entity, kept in found.items():
        if not kept:
            continue
        kept.sort()
        matched_cells.update(c for c, *_ in kept)
        spans[entity] = tuple(Span(entity, int(positions[c]), s, e, k) for c, s, e, k, _ in kept)
        per_cell = {c: w for c, _, _, _, w in kept}
        shares[entity] = min(1.0, sum(per_cell.values()) / n)
        if any(w > 1.0 for w in per_cell.values()):
            estimated.add(entity)
        sample = kept[:: max(1, len(kept) // 2000)]
        whole_cell[entity] = sum(_whole(texts[c], s, e) for c, s, e, _, _ in sample) / len(sample)
    verdicts = tuple(
        e
        for e, share in shares.items()
        if e != "SECRET"
        and (share >= settings.column_share or (e in hints and share >= settings.hinted_share))
    )
    cell_texts = {int(positions[c]): texts[c] for c in matched_cells}
    return ColumnPii(
        header,
        position,
        n,
        hints,
        spans,
        shares,
        verdicts,
        whole_cell,
        frozenset(estimated),
        cell_texts,
    )


def analyze_frame(
    frame: pd.DataFrame, settings: PiiSettings | None = None, *, exhaustive: bool = False
) -> list[ColumnPii]:
    """Every column of `frame` analysed (columns addressed by position: duplicates are fine)."""
    return [
        analyze_column(frame.iloc[:, i], str(name), i, settings, exhaustive=exhaustive)
        for i, name in enumerate(frame.columns)
    ]


def find_pii(text: str, settings: PiiSettings | None = None, header: str = "") -> list[Span]:
    """Validated PII spans in one piece of text (row 0)."""
    result = analyze_column(pd.Series([text], dtype=object), header, 0, settings, exhaustive=True)
    return sorted((s for group in result.spans.values() for s in group), key=lambda s: s.start)


# --- findings -------------------------------------------------------------------------------

_NOUNS = {
    "EMAIL": "e-mail addresses",
    "PHONE": "phone numbers",
    "CARD": "payment card numbers",
    "SSN": "US Social Security numbers",
    "IBAN": "IBANs",
    "IP": "IP addresses",
    "DOB": "dates of birth",
    "ID_DOCUMENT": "passport / driving-licence numbers",
    "SECRET": "credentials",
}


_NOUN = {
    "EMAIL": "e-mail address",
    "PHONE": "phone number",
    "CARD": "payment card number",
    "SSN": "US Social Security number",
    "IBAN": "IBAN",
    "IP": "IP address",
    "DOB": "date of birth",
    "ID_DOCUMENT": "passport / driving-licence number",
    "SECRET": "credential",
}


def _severity(entity: str, spans: Sequence[Span]) -> Severity:
    if entity == "IP" and all(s.kind == "private" for s in spans):
        return Severity.INFO
    return pii_rules.ENTITY_RULES[entity].severity


def _column_findings(
    result: ColumnPii, location: Location, row_map: np.ndarray | None
) -> Iterator[Finding]:
    def rows_of(rows: Sequence[int]) -> tuple[int, ...]:
        return tuple(int(row_map[r]) if row_map is not None else r for r in rows)

    def where(rows: Sequence[int]) -> Location:
        return Location(
            path=location.path,
            member=location.member,
            column=result.column,
            rows=rows_of(rows[:_ROW_CAP]),
        )

    for entity in result.verdicts:
        group = result.spans[entity]
        share = result.shares[entity]
        examples = sorted({redact(entity, _value(result, s)) for s in group[:200]})[:3]
        hinted = entity in result.hints
        yield pii_rules.COLUMN.finding(
            where(result.rows(entity)),
            f"column {result.column!r} holds {_NOUNS[entity]}: {share:.1%} of "
            f"{result.non_null:,} non-empty cells"
            + (" (header names it)" if hinted else "")
            + (" (estimated from a sample)" if entity in result.estimated else ""),
            {
                "entity": entity,
                "share": round(share, 4),
                "non_null": result.non_null,
                "header_hint": hinted,
                "examples": examples,
            },
            severity=_severity(entity, group),
        )


def _cell_findings(
    result: ColumnPii, location: Location, cap: int, row_map: np.ndarray | None
) -> Iterator[Finding]:
    for entity, group in result.spans.items():
        if entity in result.verdicts:
            continue
        rule = pii_rules.ENTITY_RULES[entity]
        by_row: dict[int, Span] = {}
        for span in group:
            by_row.setdefault(span.row, span)
        rows = sorted(by_row)
        for row in rows[:cap]:
            span = by_row[row]
            shown = int(row_map[row]) if row_map is not None else row
            evidence: dict[str, Any] = {
                "entity": entity,
                "row": shown,
                "redacted": redact(entity, _value(result, span)),
            }
            if span.kind:
                evidence["kind"] = span.kind
            yield rule.finding(
                Location(path=location.path, member=location.member, column=result.column,
                         rows=(shown,)),
                f"{_NOUN[entity]} in row "
                f"{shown} of column {result.column!r}",
                evidence,
                severity=_severity(entity, [span]),
            )  # fmt: skip
        rest = rows[cap:]
        if rest:
            shown_rows = tuple(int(row_map[r]) if row_map is not None else r for r in rest)
            yield rule.finding(
                Location(path=location.path, member=location.member, column=result.column,
                         rows=shown_rows[:_ROW_CAP]),
                f"{len(rest):,} more cells of column {result.column!r} hold "
                f"{_NOUNS[entity]}",
                {"entity": entity, "more": len(rest)},
                severity=_severity(entity, [by_row[r] for r in rest]),
            )  # fmt: skip


def _value(result: ColumnPii, span: Span) -> str:
    return result.texts.get(span.row, "")[span.start : span.end]


def _name_address_finding(result: ColumnPii, location: Location) -> Finding | None:
    what = [w for w in ("NAME", "ADDRESS") if w in result.hints]
    if not what or result.verdicts or not result.non_null:
        return None
    noun = " or ".join({"NAME": "person names", "ADDRESS": "postal addresses"}[w] for w in what)
    return pii_rules.NAME_ADDRESS.finding(
        Location(path=location.path, member=location.member, column=result.column),
        f"column {result.column!r} is named like {noun}; names and addresses need an NER "
        "model and are not checked by content (only context patterns are)",
        {"kinds": [w.lower() for w in what], "non_null": result.non_null},
    )


def findings_for(
    results: Sequence[ColumnPii],
    location: Location,
    settings: PiiSettings | None = None,
    row_map: np.ndarray | None = None,
) -> list[Finding]:
    """Column verdicts, capped cell findings and name/address notes for analysed columns."""
    settings = settings or PiiSettings()
    out: list[Finding] = []
    for result in results:
        out.extend(_column_findings(result, location, row_map))
        out.extend(_cell_findings(result, location, settings.max_cell_findings, row_map))
        note = _name_address_finding(result, location)
        if note is not None:
            out.append(note)
    return out


def scan_frame_pii(
    frame: pd.DataFrame,
    location: Location,
    *,
    sample_rows: int | None = None,
    settings: PiiSettings | None = None,
) -> list[Finding]:
    """PII findings for one table: PII-COLUMN verdicts, cell findings, name/address notes.

    `sample_rows` scans a deterministic random sample of that many rows (row indices in the
    findings still refer to the whole frame). Raises ScanError when a column cannot be read.
    """
    if not isinstance(frame, pd.DataFrame):
        raise ScanError(f"expected a pandas DataFrame, got {type(frame).__name__}")
    row_map: np.ndarray | None = None
    if sample_rows is not None and 0 < sample_rows < len(frame):
        rng = np.random.default_rng(0)
        row_map = np.sort(rng.choice(len(frame), size=sample_rows, replace=False))
        frame = frame.iloc[row_map]
    return findings_for(analyze_frame(frame, settings), location, settings, row_map)
