"""Stable rule ids of this check (documented in docs/rules.md; a test keeps them in sync)."""

from __future__ import annotations

from secmlops.findings import Rule

ALL: dict[str, Rule] = {}
