"""Stable rule ids of data reading, schema and integrity checks (documented in docs/rules.md)."""

from __future__ import annotations

from secmlops.findings import Rule, Severity

_QUALITY = ("NIST-AI-RMF:MEASURE-2.1", "ISO42001:A.7.4", "OWASP-ML:ML02")
_INTEGRITY = ("NIST-AI-RMF:MANAGE-2.2", "ISO42001:A.7.5", "OWASP-ML:ML02", "CWE-345")
_SCHEMA_FIX = (
    "Find out why the rows differ from the schema (a broken upstream job, a changed source, "
    "tampering) and fix the data; change the schema only if the new data is known to be right."
)

READ_ERROR = Rule(
    "DATA-READ-ERROR",
    Severity.HIGH,
    "Data file cannot be read",
    "A table that cannot be parsed (truncated, wrong encoding, ragged rows, no rows, an absurd "
    "number of columns, not a table at all) cannot be checked; it must never pass as clean.",
    "Fix or re-fetch the file; pass --encoding for text in another encoding than UTF-8.",
    _QUALITY,
)
READ_PARTIAL = Rule(
    "DATA-READ-PARTIAL",
    Severity.HIGH,
    "Only part of a data file was checked",
    "The table has more rows than --max-rows; the rows after the limit were not checked and "
    "could hold anything.",
    "Raise --max-rows (memory permitting) or split the file into parts and check each.",
    _QUALITY,
)
SCHEMA_MISSING_COLUMN = Rule(
    "DATA-SCHEMA-MISSING-COLUMN",
    Severity.HIGH,
    "A required column is missing",
    "Training or serving code that expects the column fails or silently uses defaults.",
    _SCHEMA_FIX,
    _QUALITY,
)
SCHEMA_UNEXPECTED_COLUMN = Rule(
    "DATA-SCHEMA-UNEXPECTED-COLUMN",
    Severity.MEDIUM,
    "A column is not in the schema",
    "With `extra_columns: forbid` every column must be declared: an unknown column can carry "
    "leaked labels, personal data or an injected feature.",
    "Declare the column in the schema or remove it from the data.",
    _QUALITY,
)
SCHEMA_TYPE = Rule(
    "DATA-SCHEMA-TYPE",
    Severity.HIGH,
    "Values do not have the declared type",
    "Values that are not of the declared type (text in a numeric column, fractions in an "
    "integer column, unparseable dates) are dropped or coerced silently by most pipelines.",
    _SCHEMA_FIX,
    _QUALITY,
)
SCHEMA_NULL = Rule(
    "DATA-SCHEMA-NULL",
    Severity.HIGH,
    "Missing values in a non-nullable column",
    "Missing values in a column declared `nullable: false` break the assumptions of the code "
    "that reads it.",
    _SCHEMA_FIX,
    _QUALITY,
)
SCHEMA_RANGE = Rule(
    "DATA-SCHEMA-RANGE",
    Severity.HIGH,
    "Values outside the declared range",
    "Values below `min` or above `max` (or strings outside min_length/max_length) are corrupt "
    "or adversarial inputs; extreme values are a classic poisoning vector.",
    _SCHEMA_FIX,
    _QUALITY,
)
SCHEMA_ALLOWED = Rule(
    "DATA-SCHEMA-ALLOWED",
    Severity.HIGH,
    "Values outside the allowed set",
    "A categorical column holds a value that is not in its declared set of allowed values.",
    _SCHEMA_FIX,
    _QUALITY,
)
SCHEMA_PATTERN = Rule(
    "DATA-SCHEMA-PATTERN",
    Severity.HIGH,
    "Values do not match the declared pattern",
    "A value that does not fully match the column's regular expression is malformed.",
    _SCHEMA_FIX,
    _QUALITY,
)
SCHEMA_UNIQUE = Rule(
    "DATA-SCHEMA-UNIQUE",
    Severity.HIGH,
    "Duplicate values in a unique column",
    "Duplicate keys mean duplicated or injected records; duplicates in a training set also "
    "leak between training and test splits.",
    _SCHEMA_FIX,
    _QUALITY,
)
SCHEMA_ROW_COUNT = Rule(
    "DATA-SCHEMA-ROW-COUNT",
    Severity.HIGH,
    "Row count outside the declared bounds",
    "Too few rows signal a truncated extract; too many signal duplication or injected records.",
    _SCHEMA_FIX,
    _QUALITY,
)
SCHEMA_STATISTIC = Rule(
    "DATA-SCHEMA-STATISTIC",
    Severity.MEDIUM,
    "A column statistic is outside its expected range",
    "A mean, standard deviation, quantile or share of missing values outside its expected "
    "range means the distribution changed: a broken source, drift or poisoning.",
    "Compare the data with the trusted snapshot the schema was inferred from; re-infer the "
    "schema only if the change is known to be legitimate.",
    _QUALITY,
)
INTEGRITY_MODIFIED = Rule(
    "DATA-INTEGRITY-MODIFIED",
    Severity.CRITICAL,
    "A data file differs from its snapshot",
    "The bytes of the file no longer match the SHA-256 digest recorded in the manifest: the "
    "data set was changed after it was snapshotted (corruption or tampering).",
    "Restore the file from the snapshot's source, or take and review a new snapshot if the "
    "change is intended.",
    _INTEGRITY,
)
INTEGRITY_ADDED = Rule(
    "DATA-INTEGRITY-ADDED",
    Severity.HIGH,
    "A file was added to a snapshotted data set",
    "A file that is not in the manifest is present: injected records would be trained on.",
    "Remove the file, or take and review a new snapshot if it belongs to the data set.",
    _INTEGRITY,
)
INTEGRITY_REMOVED = Rule(
    "DATA-INTEGRITY-REMOVED",
    Severity.HIGH,
    "A file of a snapshotted data set is missing",
    "A file recorded in the manifest is gone: the data set is incomplete.",
    "Restore the file, or take and review a new snapshot if it was removed on purpose.",
    _INTEGRITY,
)
INTEGRITY_RENAMED = Rule(
    "DATA-INTEGRITY-RENAMED",
    Severity.HIGH,
    "A file of a snapshotted data set was renamed",
    "A file recorded in the manifest is missing and a file with identical bytes appeared under "
    "another name: the content is intact but paths the pipeline relies on changed.",
    "Move the file back, or take and review a new snapshot if the rename is intended.",
    _INTEGRITY,
)
INTEGRITY_UNSAFE_PATH = Rule(
    "DATA-INTEGRITY-UNSAFE-PATH",
    Severity.HIGH,
    "A data set contains a symbolic link or special file",
    "Symbolic links and special files make the bytes that are read depend on things outside "
    "the data set; they are refused when snapshotting and verifying.",
    "Replace the link with the file it points to, or remove it.",
    _INTEGRITY,
)

ALL: dict[str, Rule] = {
    r.rule_id: r
    for r in (
        READ_ERROR,
        READ_PARTIAL,
        SCHEMA_MISSING_COLUMN,
        SCHEMA_UNEXPECTED_COLUMN,
        SCHEMA_TYPE,
        SCHEMA_NULL,
        SCHEMA_RANGE,
        SCHEMA_ALLOWED,
        SCHEMA_PATTERN,
        SCHEMA_UNIQUE,
        SCHEMA_ROW_COUNT,
        SCHEMA_STATISTIC,
        INTEGRITY_MODIFIED,
        INTEGRITY_ADDED,
        INTEGRITY_REMOVED,
        INTEGRITY_RENAMED,
        INTEGRITY_UNSAFE_PATH,
    )
}
