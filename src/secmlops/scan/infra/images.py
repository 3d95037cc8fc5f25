"""How firmly a container image reference names one image: by digest, by tag, or not at all."""

from __future__ import annotations

import enum
import re

DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$", re.IGNORECASE)


class Pin(enum.Enum):
    """DIGEST names exactly one image; TAG a movable name; FLOATING no tag or :latest."""

    DIGEST = "digest"
    TAG = "tag"
    FLOATING = "floating"


def image_pin(reference: str) -> Pin:
    """Classify `reference` (registry[:port]/path[:tag][@sha256:digest])."""
    ref = reference.strip()
    if DIGEST.search(ref):
        return Pin.DIGEST
    last = ref.rsplit("/", 1)[-1]  # a registry port (host:5000/...) is not a tag
    if ":" not in last:
        return Pin.FLOATING
    tag = last.rsplit(":", 1)[1]
    return Pin.FLOATING if tag in ("", "latest") else Pin.TAG
