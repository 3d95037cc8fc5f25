"""Request and response shields: normalisation, prompt-injection scoring, parameter caps, redaction.

Every detector sees the normalised text: NFKC folds look-alike forms (full-width letters, ligatures),
and invisible characters (format controls, zero-width joiners, Unicode tag characters that smuggle
ASCII, variation selectors, bidi overrides) are removed, so "i\u200bgnore" and tag-encoded payloads
cannot slip past a pattern.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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
        (0.8, r"\b(ignore|disregard|forget|override|bypass)\b.{0,40}\b(previous|prior|above|earlier|all|any|your|the)\b.{0,30}\b(instructions?|prompts?|rules?|directives?|guidelines?|messages?)"),
        (0.7, r"\b(reveal|show|print|repeat|output|leak|tell me)\b.{0,40}\b(system|hidden|initial|original|secret)\s+(prompt|instructions?|message)"),
        (0.6, r"\b(you are now|from now on,? you|act as|pretend (to be|you are)|roleplay as)\b.{0,60}\b(unfiltered|unrestricted|jailbroken|dan|evil|no (rules|restrictions|limits))"),
        (0.7, r"\b(do anything now|developer mode|jailbreak|dan mode|god mode)\b"),
        (0.6, r"(<\|im_start\|>\s*system|\[/?inst\]|<<sys>>|###\s*(system|instruction)\s*:|\bsystem\s*:\s*you are)"),
        (0.5, r"\b(new|updated|real)\s+(instructions?|rules?|task)\s*:"),
        (0.4, r"\b(without|no)\s+(any\s+)?(restrictions|filters|censorship|safety)\b"),
        (0.4, r"\b(exfiltrate|send (it|this|them|the data) to|post (it|this) to)\b.{0,40}(https?://|\bwebhook\b|@)"),
        (0.3, r"!\[[^\]]*\]\(https?://[^)]*\?[^)]*=\s*\{?"),  # markdown image beacons with data params
        (0.3, r"\b(base64|rot13|hex)[- ]?(decode|encoded)\b.{0,40}\b(instructions?|follow|execute|run)\b"),
    )
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class InjectionVerdict:
    score: float
    signals: tuple[str, ...]
    invisible_removed: int
    action: str  # allow | flag | block


def score_injection(text: str, *, flag_at: float = 0.4, block_at: float = 0.7) -> InjectionVerdict:
    normalised, removed = normalize_text(text)
    hits: list[str] = []
    score = 0.0
    for weight, pattern in _SIGNALS:
        if pattern.search(normalised):
            hits.append(pattern.pattern[:40])
            score += weight
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


def check_chat_parameters(body: Mapping[str, Any], limits: ChatLimits) -> None:
    """Refuse parameters that aid extraction or abuse; raises GatewayError (answered as 422)."""
    if body.get("logit_bias"):
        raise GatewayError("logit_bias is not allowed")
    max_tokens = body.get("max_tokens", body.get("max_completion_tokens"))
    if max_tokens is not None and (not isinstance(max_tokens, int) or isinstance(max_tokens, bool)
                                   or not 0 < max_tokens <= limits.max_tokens):  # fmt: skip
        raise GatewayError(f"max_tokens must be an integer in 1..{limits.max_tokens}")
    if body.get("logprobs") and limits.max_top_logprobs == 0:
        raise GatewayError("logprobs are not allowed")
    top = body.get("top_logprobs")
    if top is not None and (not isinstance(top, int) or not 0 <= top <= limits.max_top_logprobs):
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
