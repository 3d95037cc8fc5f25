"""The detectors and `scan_text`: one pass of cheap prefilters, regexes only where they can match.

Each detector names the literal anchors its pattern cannot match without; a file that contains none
of them costs one substring search per anchor. Validators (checksums, decoders, entropy) run only
on regex candidates. Overlapping candidates keep the most specific rule (detectors are ordered).
"""

from __future__ import annotations

import bisect
import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from secmlops.findings import Finding, Location, Rule, Severity
from secmlops.scan.secrets import rules
from secmlops.scan.secrets import validate as v

# Inline allowlist markers (ours, and detect-secrets' for repositories that already use it).
ALLOW_MARKERS = ("secmlops: allow-secret", "pragma: allowlist secret")
ALLOW_NEXT_LINE = ("secmlops: allow-secret-next-line", "pragma: allowlist nextline secret")


@dataclass(frozen=True, slots=True)
class Hit:
    """A validated candidate: which rule, where in the text, the secret and safe evidence.

    A hit without a rule is a veto: text recognised as NOT a secret (a token with a wrong
    checksum, a test key, a hash) that keeps later, vaguer rules from reporting it.
    """

    rule: Rule | None
    start: int
    end: int
    secret: str
    evidence: dict[str, Any]
    severity: Severity | None = None


Validator = Callable[[re.Match[str], str], "Hit | None"]


@dataclass(frozen=True, slots=True)
class Detector:
    """A rule's pattern, the anchors that must occur for it to match, and its validator."""

    rule: Rule
    anchors: tuple[str, ...]
    pattern: re.Pattern[str]
    check: Validator
    lower_anchors: bool = False  # anchors are searched in the lower-cased text
    # at_anchor: run the pattern only near each anchor occurrence (match at pos-back, or search
    # [pos-back, pos+window) when window is set) instead of over the whole text
    at_anchor: bool = False
    back: int = 0
    window: int = 0
    context: tuple[str, ...] = ()  # one of these must also occur (lower-cased) in the text
    # characters that must not touch the match on the left (a leading lookbehind in the pattern
    # would disable the regex engine's literal-prefix search, costing 20x on clean files)
    left: str = ""


def _hit(rule: Rule, m: re.Match[str], group: int | str = 0, **evidence: Any) -> Hit:
    return Hit(rule, m.start(group), m.end(group), m.group(group), evidence)


def _simple(rule: Rule, min_entropy: float, group: int | str = 0) -> Validator:
    """Accept a match whose token body looks generated (entropy, no placeholder)."""

    def check(m: re.Match[str], text: str) -> Hit | None:
        token = m.group(group)
        if token in v.KNOWN_EXAMPLES or not v.looks_random(token, min_entropy):
            return None
        return _hit(rule, m, group)

    return check


# --- cloud providers -----------------------------------------------------------------------------

_AWS_ID = re.compile(r"(A(?:KIA|SIA|BIA|CCA|3T[A-Z0-9])[A-Z2-7]{16})(?![A-Z0-9])")


def _aws_id(m: re.Match[str], text: str) -> Hit | None:
    key = m.group(1)
    if key in v.KNOWN_EXAMPLES or v.is_placeholder(key) or v.shannon_entropy(key) < 3.0:
        return None
    return _hit(
        rules.AWS_ACCESS_KEY, m, 1, kind="temporary" if key.startswith("ASIA") else "long-term"
    )


_AWS_SECRET = re.compile(
    r"(?i:secret[_ .-]?access[_ .-]?key|aws[_.-]?secret[\w.-]{0,20}|secretkey|"
    r"(?-i:(?:AKIA|ASIA)[A-Z2-7]{16}))"
    r"[\"'\]]{0,2}[ \t]{0,4}(?:[:=,|]|=>|:=)?[ \t\"']{0,4}"
    r"(?<![A-Za-z0-9/+])([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"
)


def _aws_secret(m: re.Match[str], text: str) -> Hit | None:
    key = m.group(1)
    if (
        key in v.KNOWN_EXAMPLES
        or v.is_hex(key)
        or v.is_placeholder(key)
        or v.char_classes(key) < 3
        or v.shannon_entropy(key) < 4.0
    ):
        return None
    return _hit(rules.AWS_SECRET_KEY, m, 1)


_GCP_SA = re.compile(
    r"\"private_key\"\s*:\s*\"(-----BEGIN PRIVATE KEY-----(?:\\n|\n)(.{40,10000}?)-----END PRIVATE KEY-----"
    r"(?:\\n)?)\"",
    re.DOTALL,
)
_GCP_EMAIL = re.compile(r"\"client_email\"\s*:\s*\"([^\"@]{1,100}@[^\"]{1,200})\"")


def _gcp_sa(m: re.Match[str], text: str) -> Hit | None:
    if not re.search(r"\"type\"\s*:\s*\"service_account\"", text):
        return None
    key = v.pem_private_key("PRIVATE KEY", m.group(2))
    if key is None:
        return None
    email = _GCP_EMAIL.search(text)
    extra = {"client_email": email.group(1)} if email else {}
    return _hit(rules.GCP_SERVICE_ACCOUNT, m, 1, **extra)


_GCP_API = re.compile(r"(AIza[0-9A-Za-z_-]{35})(?![\w-])")

_AZURE_KEY = re.compile(r"([A-Za-z0-9+/]{86}==)")
_B64_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


def _azure_key(m: re.Match[str], text: str) -> Hit | None:
    start = m.start(1)
    if start > 0 and text[start - 1] in _B64_CHARS:
        return None
    before = text[max(0, start - 100) : start].lower()
    named = "accountkey" in before or (
        "key" in before and any(word in before for word in ("azure", "storage", "account"))
    )
    if not named or not v.azure_account_key(m.group(1)) or v.is_placeholder(m.group(1)):
        return None
    return _hit(rules.AZURE_STORAGE_KEY, m, 1, kind="storage account key")


_AZURE_SAS = re.compile(r"SharedAccessKey=([A-Za-z0-9+/]{43}=)")


def _azure_sas(m: re.Match[str], text: str) -> Hit | None:
    if not v.azure_shared_access_key(m.group(1)) or v.is_placeholder(m.group(1)):
        return None
    return _hit(rules.AZURE_STORAGE_KEY, m, 1, kind="shared access key")


_AZURE_CLIENT = re.compile(r"([A-Za-z0-9_~.-]{3}\dQ~[A-Za-z0-9_~.-]{31,34})(?![\w~.-])")
_AZURE_CLIENT_CTX = re.compile(
    r"(?i:client[_-]?secret)[\"']?[ \t]*[:=][ \t]*[\"']?"
    r"([A-Za-z0-9_~.\-]{32,44})(?![\w~.-])"
)


def _azure_client_ctx(m: re.Match[str], text: str) -> Hit | None:
    value = m.group(1)
    if v.is_placeholder(value) or v.is_uuid(value) or v.char_classes(value) < 3:
        return None
    if v.shannon_entropy(value) < 3.8:
        return None
    return _hit(rules.AZURE_CLIENT_SECRET, m, 1)


# --- code hosting and registries -----------------------------------------------------------------

_GITHUB = re.compile(r"(gh[pousr]_[A-Za-z0-9]{36})(?![A-Za-z0-9_])")


def _veto(m: re.Match[str], text: str) -> Hit | None:
    return Hit(None, m.start(), m.end(), m.group(0), {})


def _github(m: re.Match[str], text: str) -> Hit | None:
    token = m.group(1)
    if not v.crc32_token_ok(token):
        return _veto(m, text)
    return _hit(rules.GITHUB_TOKEN, m, 1, checksum="valid")


_GITHUB_FG = re.compile(r"(github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59})(?![A-Za-z0-9_])")
_GITLAB = re.compile(
    r"((?:glpat|gldt|glrt|glptt|glft|glsoat|glcbt|gloas)-[0-9A-Za-z_-]{20,80}"
    r"(?:\.[0-9a-z]{2}\.[0-9a-z]{9,12})?)(?![A-Za-z0-9_-])"
)
_NPM = re.compile(r"(npm_[A-Za-z0-9]{36})(?![A-Za-z0-9_])")


def _npm(m: re.Match[str], text: str) -> Hit | None:
    if not v.crc32_token_ok(m.group(1)):
        return _veto(m, text)
    return _hit(rules.NPM_TOKEN, m, 1, checksum="valid")


_PYPI = re.compile(r"(pypi-AgE[A-Za-z0-9_-]{70,2000})")


def _pypi(m: re.Match[str], text: str) -> Hit | None:
    info = v.pypi_macaroon(m.group(1))
    if info is None:
        return None
    return _hit(rules.PYPI_TOKEN, m, 1, **info)


_HF = re.compile(r"((?:hf_|api_org_)[A-Za-z0-9]{34})(?![A-Za-z0-9_])")


def _hf(m: re.Match[str], text: str) -> Hit | None:
    token = m.group(1)
    body = token.split("_")[-1]
    if v.char_classes(body) < 2 or not v.looks_random(body, 3.6):
        return None
    return _hit(rules.HUGGINGFACE_TOKEN, m, 1)


# --- AI APIs -------------------------------------------------------------------------------------

_ANTHROPIC = re.compile(
    r"(sk-ant-(?:api|admin|sid|oat)\d{2}-[A-Za-z0-9_-]{80,120})(?![A-Za-z0-9_-])"
)
_OPENAI = re.compile(r"(sk-(?:(proj|svcacct|admin|None)-)?[A-Za-z0-9_-]{20,200})(?![A-Za-z0-9_-])")


def _openai(m: re.Match[str], text: str) -> Hit | None:
    token = m.group(1)
    if token.startswith("sk-ant-"):
        return None
    body = token[3:] if m.group(2) is None else token[4 + len(m.group(2)) :]
    if "T3BlbkFJ" in body:
        return _hit(rules.OPENAI_KEY, m, 1, marker="T3BlbkFJ")
    if m.group(2) is None or len(body) < 40 or not v.looks_random(body, 4.2):
        return None
    return _hit(rules.OPENAI_KEY, m, 1)


# --- messaging and payments ----------------------------------------------------------------------

_SLACK = re.compile(
    r"(xox[baprs]-(?:\d{1,14}-){1,3}[0-9A-Za-z]{20,64}|"
    r"xapp-\d-[A-Z0-9]{9,12}-\d{10,14}-[a-f0-9]{64})(?![A-Za-z0-9_-])"
)
_SLACK_HOOK = re.compile(
    r"(https://hooks\.slack\.com/(?:services|workflows|triggers)/T[A-Z0-9]{8,12}/[AB][A-Z0-9]{8,12}/"
    r"[A-Za-z0-9]{20,34})(?![A-Za-z0-9])"
)
_STRIPE = re.compile(r"((?:sk|rk)_live_[0-9A-Za-z]{20,247})(?![A-Za-z0-9_])")
_SENDGRID = re.compile(r"(SG\.[0-9A-Za-z_-]{22}\.[0-9A-Za-z_-]{43})(?![A-Za-z0-9_-])")
_TWILIO_SK = re.compile(r"(SK[0-9a-f]{32})(?![A-Za-z0-9_])")
_TWILIO_TOKEN = re.compile(
    r"(?i:auth[_-]?token|twilio[\w-]{0,20}token|twilio[\w-]{0,20}secret)[\"']?[ \t]*[:=][ \t]*[\"']?"
    r"([0-9a-f]{32})(?![0-9A-Za-z])"
)


def _twilio(m: re.Match[str], text: str) -> Hit | None:
    if "twilio" not in text.lower() or v.is_placeholder(m.group(1)):
        return None
    if v.shannon_entropy(m.group(1)) < 3.0:
        return None
    return _hit(rules.TWILIO_API_KEY, m, 1)


# --- keys and tokens with structure --------------------------------------------------------------

_PEM = re.compile(
    r"-----BEGIN ((?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?)-----"
    r"(.{0,60000}?)-----END \1-----",
    re.DOTALL,
)


def _pem(m: re.Match[str], text: str) -> Hit | None:
    info = v.pem_private_key(m.group(1), m.group(2))
    if info is None:
        return None
    return _hit(rules.PRIVATE_KEY, m, 0, **info)


_JWT = re.compile(
    r"(eyJ[A-Za-z0-9_-]{8,4000}\.eyJ[A-Za-z0-9_-]{8,8000}\.[A-Za-z0-9_-]{16,1000})"
    r"(?![A-Za-z0-9_-])"
)


def _jwt(m: re.Match[str], text: str) -> Hit | None:
    token = m.group(1)
    if token in v.KNOWN_EXAMPLES:
        return None
    claims = v.jwt_claims(token)
    if claims is None:
        return None
    hit = _hit(rules.JWT, m, 1, **claims)
    return replace(hit, severity=Severity.LOW) if claims.get("expired") else hit


_DB_URL = re.compile(
    r"(?i:\b(postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|rediss?|amqps?|mssql|sqlserver|"
    r"oracle|cockroachdb|clickhouse)(?:\+[a-z0-9]+)?)://"
    r"([^\s:/@'\"`<>]{0,128}):([^\s@'\"`/<>]{1,256})@([^\s/'\"`:?<>,;]{1,253})"
)
_DB_DEFAULT_HOSTS = ("example.", "host", "hostname", "server", "<")


def _db_url(m: re.Match[str], text: str) -> Hit | None:
    user, password, host = m.group(2), m.group(3), m.group(4)
    if v.is_placeholder(password) or password.lower() == user.lower():
        return None
    if host.lower().startswith(_DB_DEFAULT_HOSTS) or len(password) < 4:
        return None
    return _hit(rules.DATABASE_URL, m, 3, scheme=m.group(1).lower(), user_present=bool(user))


# Not credentials, though a keyword may name them: Stripe test and publishable keys, subresource
# integrity digests, bcrypt/argon2 password hashes.
_NOT_SECRETS = re.compile(
    r"(?:sk|rk|pk)_test_[0-9A-Za-z]{10,247}|pk_live_[0-9A-Za-z]{10,247}|"
    r"sha(?:256|384|512)-[A-Za-z0-9+/]{40,88}={0,2}|"
    r"\$2[abxy]?\$\d\d\$[./A-Za-z0-9+]{40,60}|\$argon2(?:id|i|d)\$[^\s\"']{20,200}"
)

# a GitHub/npm-shaped value reaching the generic rule failed its checksum in the specific rule
_CRC_TOKEN = re.compile(r"(?:gh[pousr]|npm)_[A-Za-z0-9]{36}")

# --- generic assignments -------------------------------------------------------------------------

_GENERIC = re.compile(
    r"(?P<name>(?i:pass(?:word|wd|phrase)?|pwd|secret|token|key|credentials?)[\w.-]{0,30}?)"
    r"[\"'\]]{0,2}"
    r"(?:[ \t]*:[ \t]*[A-Za-z_][\w\[\]., |]{0,40}?[ \t]*=(?!=)|[ \t]*(?:=>|:=|==|=|:))[ \t]*"
    r"(?:(?P<q>[\"'`])(?P<qv>[^\"'`\r\n]{1,256}?)(?P=q)|(?P<uv>[^\s\"'`,;)\]}<>#]{1,256}))"
)
# a bare "key" is too common; it counts only with one of these in the name
_KEY_QUALIFIERS = (
    "api",
    "access",
    "auth",
    "private",
    "client",
    "signing",
    "secret",
    "master",
    "encryption",
    "app",
    "service",
    "account",
    "subscription",
)
_CODE_CHARS = frozenset("([{")
_CODE_FOLLOWERS = frozenset("([,)|=]")
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
_NOT_SECRET_NAMES = (
    "tokeniz",
    "_id",
    "count",
    "max",
    "min_",
    "num",
    "len",
    "size",
    "type",
    "path",
    "file",
    "name",
    "prompt",
    "field",
    "label",
    "hash",
    "digest",
    "checksum",
    "sha",
    "salt",
    "pattern",
    "regex",
    "format",
    "policy",
    "reset",
    "forgot",
    "expir",
    "timeout",
    "ttl",
    "url",
    "uri",
    "endpoint",
    "header",
    "prefix",
    "pad_",
    "eos_",
    "bos_",
    "unk_",
    "sep_",
    "cls_",
    "mask_",
    "special",
    "_ids",
    "budget",
    "limit",
    "usage",
    "bypass",
    "compass",
    "passage",
    "passenger",
)
_IDENTIFIER = re.compile(r"^[A-Za-z_$][\w$]*(?:(?:\.|->|::)[A-Za-z_$][\w$]*)*$")
_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)+$")
_SNAKE_OR_CONST = re.compile(
    r"^_*(?:[a-z][a-z0-9]*(?:_[a-z0-9]+)+|[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)_*$"
)


def _name_before(text: str, start: int) -> str:
    i = start
    while i > 0 and start - i < 60 and text[i - 1] in _NAME_CHARS:
        i -= 1
    return text[i:start].lower()


def _generic_value_ok(value: str, quoted: bool) -> bool:
    if len(value) < 8 or v.is_placeholder(value) or v.is_uuid(value) or value.isdigit():
        return False
    if _NOT_SECRETS.match(value) or _CRC_TOKEN.fullmatch(value):
        return False  # test keys, digests, password hashes; checksummed tokens that failed
    if "://" in value or value.startswith("http"):
        return False
    if value.startswith(("/", "./", "~/")) and (value.count("/") >= 2 or "." in value[-6:]):
        return False  # a file path
    entropy = v.shannon_entropy(value)
    classes = v.char_classes(value)
    if _SNAKE_OR_CONST.match(value) or _SLUG.match(value):
        return False  # a variable, environment-variable or slug name
    if "." in value and _IDENTIFIER.match(value):
        return False  # an attribute path or dotted name
    if not quoted:
        mixed = any(c.isdigit() for c in value) and any(c.isalpha() for c in value)
        if not mixed and not (classes >= 3 and len(value) >= 16):
            return False
    elif " " in value:
        return False
    if v.is_hex(value):
        return len(value) >= 16 and entropy >= 3.0
    if value.isalpha() and (value.islower() or value.isupper() or len(value) < 20):
        return False
    if len(value) < 16:
        return classes >= 3 and entropy >= 2.9
    return classes >= 2 and entropy >= 3.3


def _generic(m: re.Match[str], text: str) -> Hit | None:
    quoted = m.group("q") is not None
    group = "qv" if quoted else "uv"
    value = m.group(group)
    if not quoted:
        after = text[m.end() : m.end() + 4].lstrip(" \t")[:1]
        if after in _CODE_FOLLOWERS or _CODE_CHARS & set(value):
            return None  # a call, subscript, annotation or literal of code, not a value
    name = _name_before(text, m.start()) + m.group("name").lower()
    if any(word in name for word in _NOT_SECRET_NAMES):
        return None
    bare_key = not any(w in name for w in ("pass", "pwd", "secret", "token", "credential"))
    if bare_key and not any(q in name for q in _KEY_QUALIFIERS):
        return None
    if not _generic_value_ok(value, quoted):
        return None
    return _hit(rules.GENERIC, m, group)


_WORD = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_"
_TOKEN = _WORD + "-"

DETECTORS: tuple[Detector, ...] = (
    # Most specific first: an overlapping later candidate is dropped. Patterns without anchors
    # start with one literal, which the regex engine finds as fast as a substring search;
    # patterns that start with an alternation run only where a substring search found an anchor.
    Detector(rules.GCP_SERVICE_ACCOUNT, (), _GCP_SA, _gcp_sa),
    Detector(rules.PRIVATE_KEY, (), _PEM, _pem),
    Detector(rules.PYPI_TOKEN, (), _PYPI, _pypi, left=_TOKEN),
    Detector(rules.GITHUB_TOKEN, (), _GITHUB, _github, left=_WORD),
    Detector(
        rules.GITHUB_FINE_GRAINED,
        (),
        _GITHUB_FG,
        _simple(rules.GITHUB_FINE_GRAINED, 4.0, 1),
        left=_WORD,
    ),
    Detector(rules.GITLAB_TOKEN, (), _GITLAB, _simple(rules.GITLAB_TOKEN, 3.5, 1), left=_TOKEN),
    Detector(rules.NPM_TOKEN, (), _NPM, _npm, left=_WORD),
    Detector(rules.HUGGINGFACE_TOKEN, ("hf_", "api_org_"), _HF, _hf, left=_WORD),
    Detector(
        rules.ANTHROPIC_KEY, (), _ANTHROPIC, _simple(rules.ANTHROPIC_KEY, 4.2, 1), left=_TOKEN
    ),
    Detector(rules.OPENAI_KEY, (), _OPENAI, _openai, left=_TOKEN),
    Detector(rules.SLACK_WEBHOOK, (), _SLACK_HOOK, _simple(rules.SLACK_WEBHOOK, 3.0, 1)),
    Detector(
        rules.SLACK_TOKEN, ("xox", "xapp-"), _SLACK, _simple(rules.SLACK_TOKEN, 3.0, 1), left=_TOKEN
    ),
    Detector(
        rules.STRIPE_KEY, ("k_live_",), _STRIPE, _simple(rules.STRIPE_KEY, 3.5, 1), left=_WORD
    ),
    Detector(rules.SENDGRID_KEY, (), _SENDGRID, _simple(rules.SENDGRID_KEY, 4.0, 1), left=_WORD),
    Detector(
        rules.AWS_SECRET_KEY,
        ("secret", "akia", "asia"),
        _AWS_SECRET,
        _aws_secret,
        lower_anchors=True,
        at_anchor=True,
        back=4,
        window=160,
    ),
    Detector(rules.AWS_ACCESS_KEY, (), _AWS_ID, _aws_id, left=_WORD[:26] + _WORD[52:62]),
    Detector(rules.GCP_API_KEY, (), _GCP_API, _simple(rules.GCP_API_KEY, 3.5, 1), left=_TOKEN),
    Detector(rules.AZURE_STORAGE_KEY, ("==",), _AZURE_KEY, _azure_key, at_anchor=True, back=86),
    Detector(rules.AZURE_STORAGE_KEY, (), _AZURE_SAS, _azure_sas),
    Detector(
        rules.AZURE_CLIENT_SECRET,
        ("Q~",),
        _AZURE_CLIENT,
        _simple(rules.AZURE_CLIENT_SECRET, 3.8, 1),
        at_anchor=True,
        back=4,
        left=_TOKEN + "~.",
    ),
    Detector(
        rules.AZURE_CLIENT_SECRET,
        ("client",),
        _AZURE_CLIENT_CTX,
        _azure_client_ctx,
        lower_anchors=True,
        at_anchor=True,
        context=("azure", "tenant"),
    ),
    Detector(rules.TWILIO_API_KEY, (), _TWILIO_SK, _twilio, context=("twilio",), left=_WORD),
    Detector(rules.TWILIO_API_KEY, ("twilio",), _TWILIO_TOKEN, _twilio, lower_anchors=True),
    Detector(rules.JWT, (), _JWT, _jwt, left=_TOKEN),
    Detector(rules.DATABASE_URL, ("://",), _DB_URL, _db_url, at_anchor=True, back=32, window=700),
    Detector(
        rules.GENERIC,
        ("pass", "pwd", "secret", "token", "key", "credential"),
        _GENERIC,
        _generic,
        lower_anchors=True,
        at_anchor=True,
    ),
)


def _positions(hay: str, anchor: str) -> Iterator[int]:
    pos = hay.find(anchor)
    while pos != -1:
        yield pos
        pos = hay.find(anchor, pos + 1)


def _matches(det: Detector, text: str, hay: str) -> Iterator[re.Match[str]]:
    if not det.at_anchor or len(hay) != len(text):
        # lower-casing changed offsets (rare non-ASCII case folds): scan the whole text
        yield from det.pattern.finditer(text)
        return
    seen: set[int] = set()
    for anchor in det.anchors:
        for pos in _positions(hay, anchor):
            begin = max(0, pos - det.back)
            if det.window:
                m = det.pattern.search(text, begin, pos + det.window)
            else:
                m = det.pattern.match(text, begin)
            if m is not None and m.start() not in seen:
                seen.add(m.start())
                yield m


def _candidates(text: str) -> Iterator[Hit]:
    low: str | None = None
    for det in DETECTORS:
        if det.lower_anchors or det.context:
            if low is None:
                low = text.lower()
            if det.context and not any(word in low for word in det.context):
                continue
        hay = low if det.lower_anchors and low is not None else text
        if det.anchors:
            if not any(anchor in hay for anchor in det.anchors):
                continue
            found = _matches(det, text, hay)
        else:
            found = det.pattern.finditer(text)
        for m in found:
            start = m.start()
            if det.left and start > 0 and text[start - 1] in det.left:
                continue
            hit = det.check(m, text)
            if hit is not None:
                yield hit


def _without_overlaps(hits: Iterator[Hit]) -> list[Hit]:
    kept: list[Hit] = []
    for hit in hits:
        if not any(hit.start < k.end and k.start < hit.end for k in kept):
            kept.append(hit)
    return kept


def redact(secret: str) -> str:
    """First characters (at most 4, fewer for short secrets) and the length, never the secret."""
    keep = min(4, len(secret) // 4)
    return f"{secret[:keep]}…({len(secret)} chars)"


def fingerprint(rule_id: str, secret: str) -> str:
    """Stable id of a finding for baselines: a hash of rule and secret, not of the location."""
    return hashlib.sha256(f"{rule_id}:{secret}".encode("utf-8", "surrogatepass")).hexdigest()


class _Lines:
    """Line numbers of offsets, computed only once a file has a finding."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.starts: list[int] | None = None

    def number(self, offset: int) -> int:
        if self.starts is None:
            self.starts = [0]
            find = self.text.find
            pos = find("\n")
            while pos != -1:
                self.starts.append(pos + 1)
                pos = find("\n", pos + 1)
        return bisect.bisect_right(self.starts, offset)

    def line(self, number: int) -> str:
        assert self.starts is not None
        if number < 1 or number > len(self.starts):
            return ""
        start = self.starts[number - 1]
        end = self.starts[number] if number < len(self.starts) else len(self.text)
        return self.text[start:end]


def _allowed(lines: _Lines, number: int) -> bool:
    here = lines.line(number)
    if any(marker in here for marker in ALLOW_MARKERS):
        return True
    before = lines.line(number - 1)
    return any(marker in before for marker in ALLOW_NEXT_LINE)


def scan_text(text: str, location: Location) -> list[Finding]:
    """Find secrets in `text`. Stable library API (the data layer reuses it for cells).

    `location` is where the text is; each finding gets it with `line` set to the line of the
    secret (counted from `location.line` when that is set, else from 1). Secrets are redacted in
    messages and evidence; `evidence["fingerprint"]` identifies the finding for baselines.
    """
    hits = _without_overlaps(_candidates(text))
    if not hits:
        return []
    lines = _Lines(text)
    first = (location.line or 1) - 1
    findings = []
    for hit in sorted(hits, key=lambda h: h.start):
        if hit.rule is None:
            continue
        number = lines.number(hit.start)
        if _allowed(lines, number):
            continue
        shown = redact(hit.secret)
        evidence = {
            "secret": shown,
            "length": len(hit.secret),
            "fingerprint": fingerprint(hit.rule.rule_id, hit.secret),
            **hit.evidence,
        }
        findings.append(
            hit.rule.finding(
                replace(location, line=first + number),
                f"{hit.rule.title}: {shown}",
                evidence,
                severity=hit.severity,
            )
        )
    return findings
