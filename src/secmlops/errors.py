"""The error hierarchy: one root with a user-facing message and a hint, one subclass per domain.

The CLI catches `Error` and prints one line plus the hint; anything else is a bug.
"""

from __future__ import annotations


class Error(Exception):
    """Root of every error secmlops raises on purpose."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(Error):
    """The command line or an argument is wrong."""


class ConfigError(Error):
    """A configuration file or setting is invalid."""


class ScanError(Error):
    """A check could not be completed (the gate treats this as a failure)."""


class ConvertError(Error):
    """A model could not be converted safely."""
