"""Request and response shields: normalisation, prompt-injection scoring, parameter caps, redaction.

Every detector sees the normalised text: NFKC folds look-alike forms (full-width letters, ligatures),
and invisible characters (format controls, zero-width joiners, Unicode tag characters that smuggle
ASCII, variation selectors, bidi overrides) are removed, so "i\u200bgnore" and tag-encoded payloads
cannot slip past a pattern.
"""

from __future__ import annotations

import contextlib
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

from secmlops.errors import GatewayError


def normalize_text(text: str) -> tuple[str, int]:
    """(normalised text, number of invisible characters removed)."""
    folded = unicodedata.normalize("NFKC", text)
    kept = []
    removed = 0
    for ch in folded:
        cp = ord(ch)
        if (
            unicodedata.category(ch) == "Cf"  # zero-width, bidi controls, tags (U+E0000..E007F)
            or 0xFE00 <= cp <= 0xFE0F  # variation selectors
            or 0xE0100 <= cp <= 0xE01EF
        ):
            removed += 1
            continue
        kept.append(ch)
    return "".join(kept), removed


# (weight, pattern). Weights add up (capped at 1.0); one strong signal alone can block.
_SIGNALS: tuple[tuple[float, re.Pattern[str]], ...] = tuple(
    (w, re.compile(p, re.IGNORECASE | re.DOTALL))
    for w, p in (
        (0.8, r"\b(ignore|disregard|forget|override|bypass)\b.{0,40}\b(previous|prior|above|earlier|all|any|your|the)\b.{0,30}\b(instructions?|prompts?|rules?|directives?|guidelines?)"),
        (0.7, r"\b(ignore|disregard|forget)\s+(everything|all)\s+(above|before|you were told|we (discussed|talked about))"),
        # The same override in the other languages attackers switch to (de, fr, es, it).
        (0.8, r"\b(ignorier\w*|vergiss|ignorez|oubliez|oublie|ignora|olvida\w*|dimentica)\b.{0,50}\b(anweisungen|richtlinien|regeln|instructions|r[eè]gles|instrucciones|reglas|istruzioni|regole|besprochen|dit|dicho|detto)"),
        (0.7, r"\b(reveal|show|print|repeat|output|leak|tell me)\b.{0,40}(\b(system|hidden|initial|original|secret)\s+(prompt|instructions?)|\bsystem\s+message)"),
        (0.7, r"\b(zeig\w*|r[ée]v[ée]l\w*|montre\w*|muestra|revela|mostra)\b.{0,40}(system-?prompt|prompt (syst[eè]me|de sistema|di sistema)|instrucciones del sistema)"),
        (0.6, r"\b(you are now|from now on,? you|act as|pretend (to be|you are)|roleplay as)\b.{0,60}\b(unfiltered|unrestricted|jailbroken|dan|evil|no (rules|restrictions|limits|content policy))"),
        (0.7, r"\b(do anything now|(enable|enter|activate|switch to|now in)\s+(developer|dan|god) mode|dan mode|god mode)\b"),
        (0.6, r"(<\|im_start\|>\s*system|\[/?inst\]|<<sys>>|###\s*(system|instruction)\s*:|\bsystem\s*:\s*you are)"),
        (0.5, r"\b(new|updated|real)\s+(instructions?|rules?|task|directive)\s*(:|is\b|supersedes)"),
        (0.6, r"\b(safety|content|security)\s+(policy|policies|protocols?|rules|checks|guidelines)\b.{0,30}\b(disabled|do(es)? not apply|no longer apply|exempt|skip|off)\b"),
        (0.6, r"\b(exempt from|skip all|without) (the )?(usual )?(restrictions|safety checks|confirmations|content policy)"),
        (0.4, r"\b(without|no)\s+(any\s+)?(restrictions|filters|censorship|safety|content policy|limits)\b"),
        (0.4, r"\b(exfiltrate|send (it|this|them|the data) to|post (it|this) to)\b.{0,40}(https?://|\bwebhook\b|@)"),
        (0.6, r"\b(e-?mail|send|forward|upload)\b.{0,30}\b(full|entire|all)\s+(customer|user|client)\s+(list|data(base)?|records)"),
        (0.5, r"\b(call|invoke|use)\s+[a-z]+_[a-z_]+\b.{0,60}\b(before (you )?(respond|repl)|to send|on /|on \./|https?://)"),
        (0.3, r"!\[[^\]]*\]\(https?://[^)]*\?[^)]*=\s*\{?"),  # markdown image beacons with data params
        (0.5, r"\b(base64|rot13|hex)\b.{0,60}\b(decode|encoded)\b.{0,60}\b(instructions?|follow|execute|run|do (exactly )?what it says)\b"),
        (0.5, r"\bdecode\b.{0,40}\b(follow|do exactly what|execute)\b"),
    )
)  # fmt: skip
_QUOTED = re.compile(r"```.*?```|`[^`\n]*`|\"[^\"\n]{3,}\"|'[^'\n]{3,}'|“[^”\n]{3,}”", re.DOTALL)
_B64 = re.compile(r"[A-Za-z0-9+/]{24,}={0,2}")
_HEX = re.compile(r"\b(?:[0-9a-fA-F]{2}){12,}\b")
_UESC = re.compile(r"\\u([0-9a-fA-F]{4})")
_PCT = re.compile(r"%[0-9a-fA-F]{2}")
_MAX_DECODED = 8192


def _decodings(text: str) -> list[str]:
    """Hidden forms of the same text: base64, hex, \\u escapes, percent-encoding, rot13, reversed.

    Decoding is part of normalisation: an instruction smuggled in an encoding is the same
    instruction. Benign text decoded this way is gibberish and matches nothing."""
    import base64
    import binascii
    import codecs
    from urllib.parse import unquote

    out = [codecs.decode(text[:_MAX_DECODED], "rot13"), text[:_MAX_DECODED][::-1]]
    for blob in _B64.findall(text)[:8]:
        with contextlib.suppress(binascii.Error, ValueError):  # not base64 or not text: skip
            out.append(base64.b64decode(blob + "=" * (-len(blob) % 4)).decode("utf-8"))
    for blob in _HEX.findall(text)[:8]:
        with contextlib.suppress(ValueError):
            out.append(bytes.fromhex(blob).decode("utf-8"))
    if _UESC.search(text):
        out.append(_UESC.sub(lambda m: chr(int(m.group(1), 16)), text[:_MAX_DECODED]))
    if _PCT.search(text):
        out.append(unquote(text[:_MAX_DECODED]))
    return out


def _signals(text: str) -> tuple[float, list[str]]:
    hits = [p.pattern[:40] for _w, p in _SIGNALS if p.search(text)]
    return sum(w for w, p in _SIGNALS if p.pattern[:40] in hits), hits


@dataclass(frozen=True, slots=True)
class InjectionVerdict:
    score: float
    signals: tuple[str, ...]
    invisible_removed: int
    action: str  # allow | flag | block


def score_injection(text: str, *, flag_at: float = 0.4, block_at: float = 0.7) -> InjectionVerdict:
    normalised, removed = normalize_text(text)
    score, hits = _signals(normalised)
    # An attack phrase only inside quotes or code ("translate 'ignore all previous instructions'",
    # a unit test for the filter) counts half: still flagged, no longer blocked on its own.
    unquoted, _ = _signals(_QUOTED.sub(" ", normalised))
    score = max(unquoted, score / 2)
    for decoded in _decodings(normalised):
        hidden, found = _signals(normalize_text(decoded)[0])
        if hidden > 0:
            score = max(score, hidden + 0.2)  # hiding an instruction is itself a signal
            hits += [f"encoded: {h}" for h in found]
    if removed >= 8:  # a run of invisible characters is itself a smuggling signal
        score += 0.3
        hits.append(f"{removed} invisible characters")
    score = min(score, 1.0)
    action = "block" if score >= block_at else "flag" if score >= flag_at else "allow"
    return InjectionVerdict(round(score, 3), tuple(hits), removed, action)


@dataclass(frozen=True, slots=True)
class ChatLimits:
    max_tokens: int = 1024
    max_top_logprobs: int = 0  # 0: logprobs refused (they speed up model extraction)
    max_messages: int = 64
    max_chars: int = 32_000


def _is_integer(value: object) -> TypeGuard[int | float]:
    """JSON integers, including the integral floats (`5.0`) that JSON Schema also calls integers."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def check_chat_parameters(body: Mapping[str, Any], limits: ChatLimits) -> None:
    """Refuse parameters that aid extraction or abuse; raises GatewayError (answered as 422)."""
    # Identity checks, not truthiness: `"stream": 1` or `"logit_bias": [..]` must not slip through.
    if body.get("stream") is not None and body["stream"] is not False:
        raise GatewayError("streaming is not supported by this gateway")
    bias = body.get("logit_bias")
    if bias is not None and not (isinstance(bias, dict) and not bias):
        raise GatewayError("logit_bias is not allowed")
    if body.get("model") is not None and not isinstance(body["model"], str):
        raise GatewayError("model must be a string")
    logprobs = body.get("logprobs")
    if logprobs is not None and not isinstance(logprobs, bool):
        raise GatewayError("logprobs must be true or false")
    for key in ("max_tokens", "max_completion_tokens"):
        value = body.get(key)
        if value is not None and not (_is_integer(value) and 0 < value <= limits.max_tokens):
            raise GatewayError(f"{key} must be an integer in 1..{limits.max_tokens}")
    if body.get("logprobs") and limits.max_top_logprobs == 0:
        raise GatewayError("logprobs are not allowed")
    top = body.get("top_logprobs")
    if top is not None and not (_is_integer(top) and 0 <= top <= limits.max_top_logprobs):
        raise GatewayError(f"top_logprobs must be at most {limits.max_top_logprobs}")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or len(messages) > limits.max_messages:
        raise GatewayError(f"messages must be a list of 1..{limits.max_messages} messages")
    total = 0
    for m in messages:
        if not isinstance(m, Mapping) or m.get("role") not in (
            "system",
            "user",
            "assistant",
            "tool",
        ):
            raise GatewayError("each message needs a role (system, user, assistant, tool)")
        content = m.get("content", "")
        if not isinstance(content, str):
            raise GatewayError("message content must be a string")
        total += len(content)
    if total > limits.max_chars:
        raise GatewayError(f"messages exceed {limits.max_chars} characters")


Redactor = Callable[[str], tuple[str, Sequence[str]]]


def make_redactor() -> Redactor:
    """Redact personal data and secrets in model output, reusing the data and secrets detectors."""
    from secmlops.scan.data.pii import find_pii

    def redact(text: str) -> tuple[str, Sequence[str]]:
        spans = find_pii(text)
        if not spans:
            return text, ()
        out, last, entities = [], 0, []
        for span in spans:
            if span.start < last:
                continue  # overlapping detections: the first (leftmost) wins
            out += [text[last : span.start], f"[REDACTED:{span.entity}]"]
            last = span.end
            entities.append(span.entity)
        out.append(text[last:])
        return "".join(out), tuple(entities)

    return redact
