"""Data checks: reading tables, schema and quality, integrity snapshots, PII, poisoning, drift.

The public surface is re-exported lazily so that importing the rule catalogues (for
`secmlops rules`) does not pay for importing pandas.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from secmlops.scan.data.integrity import (
        Manifest,
        snapshot,
        verify,
    )
    from secmlops.scan.data.schema import DataSchema, load_schema, validate_frame
    from secmlops.scan.data.tables import LoadedTable, iter_tables, load_table, read_table

_EXPORTS = {
    "LoadedTable": "tables",
    "iter_tables": "tables",
    "load_table": "tables",
    "read_table": "tables",
    "DataSchema": "schema",
    "load_schema": "schema",
    "validate_frame": "schema",
    "Manifest": "integrity",
    "snapshot": "integrity",
    "verify": "integrity",
}

__all__ = [
    "DataSchema",
    "LoadedTable",
    "Manifest",
    "iter_tables",
    "load_schema",
    "load_table",
    "read_table",
    "snapshot",
    "validate_frame",
    "verify",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'secmlops.scan.data' has no attribute {name!r}")
    return getattr(importlib.import_module(f"secmlops.scan.data.{module}"), name)
