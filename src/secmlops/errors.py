"""The error hierarchy: one root with a user-facing message and a hint, one subclass per domain.

The CLI catches `Error` and prints one line plus the hint; anything else is a bug.
"""

from __future__ import annotations

from typing import Any


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


class SignatureError(Error):
    """A key, signature or certificate could not be made or does not verify."""


class EvidenceError(Error):
    """An attestation or bill of materials could not be built or read."""


class DataError(Error):
    """A data set could not be read, validated or written."""


class DatabaseError(Error):
    """The offline vulnerability database is missing, stale or damaged."""


class PolicyError(Error):
    """A policy bundle could not be loaded or evaluated."""


class StoreError(Error):
    """The artifact store or metadata database failed."""


class GatewayError(Error):
    """The inference gateway could not start or serve."""


def first_problem(exc: Any) -> str:
    """`field.path: message` of a pydantic ValidationError's first error, for one-line errors
    about a file a user wrote (the rest usually follows from the first)."""
    first = exc.errors()[0]
    return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
