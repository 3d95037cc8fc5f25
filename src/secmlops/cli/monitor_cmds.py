"""Commands of this layer (placeholder: the module attaches its commands to secmlops.cli.app)."""

from __future__ import annotations
