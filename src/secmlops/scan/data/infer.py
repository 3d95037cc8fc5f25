"""Infer a starting schema from a trusted data set (`secmlops data infer-schema`).

The inferred schema accepts the data it was inferred from exactly; ranges are the observed
ones and statistical expectations get a tolerance, so review and widen them before using the
schema as a gate on new data.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from secmlops.errors import DataError
from secmlops.scan.data.schema import Bounds, ColumnSchema, DataSchema, coerce_column

# A text column with at most this many distinct values (and few per row) is categorical.
MAX_CATEGORIES = 50
DEFAULT_TOLERANCE = 0.1  # mean, std and quantile ranges: +/- this many standard deviations
_QUANTILES = (0.01, 0.5, 0.99)


def infer_schema(
    frame: pd.DataFrame,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    statistics: bool = True,
    description: str = "",
) -> DataSchema:
    """A schema that the trusted `frame` satisfies, with statistical expectations around it."""
    if len(frame) == 0:
        raise DataError("cannot infer a schema from a table with no rows")
    if tolerance < 0:
        raise DataError(f"tolerance must not be negative, not {tolerance}")
    columns = tuple(
        _infer_column(str(name), frame[name], tolerance, statistics) for name in frame.columns
    )
    return DataSchema(columns, min_rows=1, extra_columns="forbid", description=description)


def _kind(series: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(series):
        return "boolean"
    if pd.api.types.is_integer_dtype(series):
        return "integer"
    if pd.api.types.is_float_dtype(series):
        values = series.dropna()
        if len(values) and bool(((values % 1) == 0).all()) and values.abs().max() < 2**53:
            return "integer"  # integers with gaps: CSV readers turn them into floats
        return "float"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "datetime"
    if pd.api.types.is_string_dtype(series) or pd.api.types.is_object_dtype(series):
        if isinstance(series.dtype, pd.StringDtype):
            return "string"
        if pd.api.types.infer_dtype(series, skipna=True) == "string":
            return "string"
    return "any"


def _infer_column(name: str, series: pd.Series, tolerance: float, statistics: bool) -> ColumnSchema:
    kind = _kind(series)
    nulls = int(series.isna().sum())
    present = series.dropna()
    fields: dict[str, Any] = {"name": name, "type": kind, "nullable": nulls > 0}
    if len(present) > 1 and kind in ("integer", "string") and present.is_unique:
        fields["unique"] = True
    if kind in ("integer", "float") and len(present):
        values, _ = coerce_column(series, kind)
        values = values.dropna()
        lo, hi = values.min(), values.max()
        # floats are widened outward to 6 decimals: a CSV or JSON export of the same data
        # rounds the last digits, and must still pass
        fields["min"] = int(lo) if kind == "integer" else _round_down(float(lo))
        fields["max"] = int(hi) if kind == "integer" else _round_up(float(hi))
        if statistics and len(values) > 1:
            fields.update(_statistics(values.astype("float64"), tolerance))
    elif kind == "datetime" and len(present):
        fields["min"] = pd.Timestamp(present.min()).isoformat()
        fields["max"] = pd.Timestamp(present.max()).isoformat()
    elif kind == "string" and len(present):
        lengths = present.str.len()
        fields["min_length"] = int(lengths.min())
        fields["max_length"] = int(lengths.max())
        distinct = present.nunique()
        if distinct <= MAX_CATEGORIES and distinct * 2 <= len(present) and not fields.get("unique"):
            fields["allowed"] = tuple(sorted(str(v) for v in present.unique()))
    if statistics and nulls:
        share = nulls / len(series)
        fields["null_fraction"] = (None, _round_up(min(1.0, share + tolerance * math.sqrt(share))))
    return ColumnSchema(**fields)


def _statistics(values: pd.Series, tolerance: float) -> dict[str, Any]:
    std = float(values.std())
    if not (math.isfinite(std) and math.isfinite(float(values.mean()))):
        return {}  # infinities in trusted data: expectations around them mean nothing
    margin = tolerance * std
    mean = float(values.mean())
    found = values.quantile(list(_QUANTILES))  # one sort for all quantiles
    quantiles = tuple((q, _around(float(found[q]), margin)) for q in _QUANTILES)
    return {
        "mean": _around(mean, margin),
        "std": (_round_down(std * (1 - tolerance)), _round_up(std * (1 + tolerance))),
        "quantiles": quantiles,
    }


def _around(value: float, margin: float) -> Bounds:
    return (_round_down(value - margin), _round_up(value + margin))


def _round_down(value: float) -> float:
    return math.floor(value * 1e6) / 1e6 if math.isfinite(value * 1e6) else value


def _round_up(value: float) -> float:
    return math.ceil(value * 1e6) / 1e6 if math.isfinite(value * 1e6) else value
