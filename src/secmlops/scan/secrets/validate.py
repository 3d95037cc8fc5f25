"""Validators that turn a regex candidate into a credential: checksums, decoders, entropy, placeholders.

Every function here is pure and cheap; they run only on regex candidates, never on whole files.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import time
import zlib
from collections import Counter
from typing import Any

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_BASE62_INDEX = {c: i for i, c in enumerate(BASE62)}

# Values published in vendor documentation: they match the formats but are nobody's credential.
KNOWN_EXAMPLES = frozenset(
    {
        "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "AKIAI44QH8DHBEXAMPLE",
        "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY",
        "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
        "rk_live_4eC39HqLyjWDarjtT1zdp7dc",
        # jwt.io's default token, in countless tutorials
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwia"
        "WF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
    }
)

_PLACEHOLDER_WORDS = (
    "example",
    "changeme",
    "change_me",
    "change-me",
    "placeholder",
    "your_",
    "your-",
    "yourkey",
    "yoursecret",
    "yourpassword",
    "<your",
    "dummy",
    "redacted",
    "fake",
    "sample",
    "insert",
    "replace",
    "xxxx",
    "****",
    "....",
    "1234567",
    "abcdefgh",
    "secret_here",
    "key_here",
    "token_here",
    "notreal",
    "not_real",
    "not-a-real",
    "todo",
)
# Whole values that are words, defaults or templating rather than credentials.
_PLACEHOLDER_VALUES = frozenset(
    {
        "password",
        "passwd",
        "pass",
        "secret",
        "token",
        "apikey",
        "api_key",
        "none",
        "null",
        "nil",
        "true",
        "false",
        "undefined",
        "test",
        "testing",
        "admin",
        "root",
        "guest",
        "user",
        "postgres",
        "mysql",
        "default",
        "empty",
        "required",
        "optional",
        "string",
        "str",
        "bytes",
        "hidden",
        "masked",
        "tiger",  # scott/tiger, the Oracle and SQLAlchemy documentation account
    }
)
_TEMPLATE = re.compile(
    r"\$\{|\$\(|\{\{|\}\}|%\(|%s\b|^\$[A-Za-z_]|\{[A-Za-z_][^{}]*\}|^<[^>]*>$|^%[A-Z_]+%$"
)
_RUN = re.compile(r"(.)\1{5,}")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_ENV_REF = re.compile(
    r"os\.environ|os\.getenv|getenv\(|process\.env|ENV\[|System\.getenv|secrets\.|vault:|"
    r"env\(|Environment\.|config\[|settings\.|\bvar\.|\blocal\.|data\.|ssm:|arn:aws",
    re.IGNORECASE,
)


def shannon_entropy(value: str) -> float:
    """Bits per character of `value` (0 for the empty string)."""
    if not value:
        return 0.0
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in Counter(value).values())


def char_classes(value: str) -> int:
    """How many of lower, upper, digit and other characters `value` uses."""
    return (
        any(c.islower() for c in value)
        + any(c.isupper() for c in value)
        + any(c.isdigit() for c in value)
        + any(not c.isalnum() for c in value)
    )


def is_placeholder(value: str) -> bool:
    """True for documentation examples, templating, variable references and obvious dummies."""
    if value in KNOWN_EXAMPLES:
        return True
    low = value.lower()
    if low.strip("\"'`") in _PLACEHOLDER_VALUES:
        return True
    if any(word in low for word in _PLACEHOLDER_WORDS):
        return True
    if _TEMPLATE.search(value) or _ENV_REF.search(value):
        return True
    return _RUN.search(value) is not None


def looks_random(body: str, min_entropy: float) -> bool:
    """A token body that is neither a placeholder nor too regular to be generated."""
    return not is_placeholder(body) and shannon_entropy(body) >= min_entropy


def is_uuid(value: str) -> bool:
    return _UUID.match(value) is not None


def is_hex(value: str) -> bool:
    return _HEX.match(value) is not None


def base62_decode(text: str) -> int:
    number = 0
    for char in text:
        number = number * 62 + _BASE62_INDEX[char]
    return number


def base62_encode(number: int, width: int) -> str:
    chars = []
    while number:
        number, rest = divmod(number, 62)
        chars.append(BASE62[rest])
    return "".join(reversed(chars)).rjust(width, "0")


def crc32_token_ok(token: str) -> bool:
    """GitHub classic and npm tokens: prefix_ + 30 random base62 + 6 base62 digits of CRC32."""
    prefix_end = token.index("_") + 1
    body, check = token[prefix_end:-6], token[-6:]
    try:
        return base62_decode(check) == zlib.crc32(body.encode("ascii"))
    except (KeyError, UnicodeEncodeError):
        return False


def _b64decode(text: str, *, urlsafe: bool = False) -> bytes | None:
    padded = text + "=" * (-len(text) % 4)
    try:
        if urlsafe:
            return base64.urlsafe_b64decode(padded)
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        return None


def pypi_macaroon(token: str) -> dict[str, Any] | None:
    """Decode a pypi- token: a version-2 macaroon for pypi.org or test.pypi.org with a signature."""
    raw = _b64decode(token[len("pypi-") :], urlsafe=True)
    if raw is None or len(raw) < 60 or raw[0] != 2 or raw[1] != 1:
        return None
    length = raw[2]
    location = raw[3 : 3 + length]
    if location not in (b"pypi.org", b"test.pypi.org"):
        return None
    # the signature field closes every v2 macaroon: type 6, length 32, 32 bytes
    if raw[-34:-32] != b"\x06\x20":
        return None
    return {"index": location.decode()}


def azure_account_key(text: str) -> bool:
    """An Azure storage account key is 64 random bytes in base64."""
    raw = _b64decode(text)
    return raw is not None and len(raw) == 64 and len(set(raw)) > 32


def azure_shared_access_key(text: str) -> bool:
    """Service Bus / Event Hubs shared access keys are 32 random bytes in base64."""
    raw = _b64decode(text)
    return raw is not None and len(raw) == 32 and len(set(raw)) > 16


_PEM_HEADER = re.compile(r"^[A-Za-z-]+:.*$", re.MULTILINE)
_B64_BODY = re.compile(r"^[A-Za-z0-9+/]+={0,2}$")
_MIN_KEY_BYTES = 40  # an Ed25519 PKCS#8 key is 48 bytes, the smallest real key


def pem_private_key(label: str, body: str) -> dict[str, Any] | None:
    """Check that a PEM/OpenSSH/PGP block body is base64 of a plausible key; None if not."""
    # keys pasted into JSON or code carry literal \n escapes and string concatenation
    text = body.replace("\\r", "\n").replace("\\n", "\n").replace('"', "").replace("'", "")
    text = _PEM_HEADER.sub("", text)
    if "PGP" in label:
        # armour: drop the CRC line (=XXXX) at the end
        text = re.sub(r"^=[A-Za-z0-9+/]{4}\s*$", "", text, flags=re.MULTILINE)
    compact = "".join(text.split())
    if not compact or _B64_BODY.match(compact) is None:
        return None
    raw = _b64decode(compact)
    if raw is None or len(raw) < _MIN_KEY_BYTES:
        return None
    if "OPENSSH" in label:
        kind_ok = raw.startswith(b"openssh-key-v1\x00")
    elif "PGP" in label:
        kind_ok = bool(raw[0] & 0x80)  # an OpenPGP packet tag
    else:
        kind_ok = raw[0] == 0x30  # a DER SEQUENCE
    if not kind_ok or len(set(raw)) < 24:
        return None
    encrypted = "ENCRYPTED" in label or "Proc-Type: 4,ENCRYPTED" in body
    if "OPENSSH" in label:
        encrypted = b"\x00\x00\x00\x04none" not in raw[:64]
    return {"key_type": label, "key_bytes": len(raw), "encrypted": encrypted}


def jwt_claims(token: str) -> dict[str, Any] | None:
    """Decode a JWT's header and payload; None unless both are JSON objects and it is signed."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    decoded = []
    for part in parts[:2]:
        raw = _b64decode(part, urlsafe=True)
        if raw is None:
            return None
        try:
            value = json.loads(raw)
        except ValueError:
            return None
        if not isinstance(value, dict):
            return None
        decoded.append(value)
    header, payload = decoded
    alg = header.get("alg")
    if not isinstance(alg, str) or alg.lower() == "none":
        return None
    out: dict[str, Any] = {"alg": alg}
    exp = payload.get("exp")
    if isinstance(exp, int | float):
        out["expired"] = exp < time.time()
    return out
