"""Declarative data schemas (YAML) compiled to pandera checks, and their findings.

A schema names each column with its type, nullability, range, allowed values, pattern,
uniqueness and statistical expectations, plus bounds on the row count. `validate_frame` runs
the compiled pandera schema lazily (every check on every row) and turns each failing
(column, rule) pair into one finding that names the rule, the number of failing rows and up to
ten example row indices; values themselves are never copied into findings (they may be personal
data).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from secmlops.errors import DataError, first_problem
from secmlops.findings import Finding, Location, Rule
from secmlops.scan.data import rules

ColumnType = Literal["integer", "float", "string", "boolean", "datetime", "any"]
COLUMN_TYPES: tuple[str, ...] = ("integer", "float", "string", "boolean", "datetime", "any")
MAX_EXAMPLE_ROWS = 10
_NUMERIC = ("integer", "float")
_TRUE = frozenset({"true", "t", "yes", "y", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "0"})

Scalar = int | float | str | bool
Bounds = tuple[float | None, float | None]


@dataclass(frozen=True, slots=True)
class ColumnSchema:
    """What one column must satisfy. Unset fields are not checked."""

    name: str
    type: str = "any"
    nullable: bool = False
    required: bool = True
    unique: bool = False
    min: Scalar | None = None
    max: Scalar | None = None
    allowed: tuple[Scalar, ...] | None = None
    pattern: str | None = None
    min_length: int | None = None
    max_length: int | None = None
    mean: Bounds | None = None
    std: Bounds | None = None
    quantiles: tuple[tuple[float, Bounds], ...] = ()
    null_fraction: Bounds | None = None

    def to_dict(self) -> dict[str, Any]:
        """The column as it is written in a schema file (unset fields left out)."""
        out: dict[str, Any] = {"type": self.type, "nullable": self.nullable}
        if not self.required:
            out["required"] = False
        if self.unique:
            out["unique"] = True
        for key in ("min", "max", "pattern", "min_length", "max_length"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.allowed is not None:
            out["allowed"] = list(self.allowed)
        for key in ("mean", "std", "null_fraction"):
            bounds = getattr(self, key)
            if bounds is not None:
                out[key] = _bounds_dict(bounds)
        if self.quantiles:
            out["quantiles"] = {q: _bounds_dict(b) for q, b in self.quantiles}
        return out


@dataclass(frozen=True, slots=True)
class DataSchema:
    """A whole table's schema: its columns, row-count bounds and whether extra columns pass."""

    columns: tuple[ColumnSchema, ...]
    min_rows: int | None = None
    max_rows: int | None = None
    extra_columns: str = "allow"
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"version": 1}
        if self.description:
            out["description"] = self.description
        rows = {k: v for k, v in (("min", self.min_rows), ("max", self.max_rows)) if v is not None}
        if rows:
            out["rows"] = rows
        out["extra_columns"] = self.extra_columns
        out["columns"] = {c.name: c.to_dict() for c in self.columns}
        return out

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True, width=100)


def _bounds_dict(bounds: Bounds) -> dict[str, float]:
    return {k: v for k, v in zip(("min", "max"), bounds, strict=True) if v is not None}


def load_schema(path: Path) -> DataSchema:
    """Read and validate a YAML schema file (DataError naming the bad field)."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read schema file {path}: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DataError(f"schema file {path} is not valid YAML: {exc}") from None
    return parse_schema(data, str(path))


def parse_schema(data: Any, source: str = "schema") -> DataSchema:
    """Validate the parsed content of a schema file (pydantic at this boundary)."""
    from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

    class RangeSpec(BaseModel):
        model_config = ConfigDict(extra="forbid")
        min: float | None = None
        max: float | None = None

        @model_validator(mode="after")
        def ordered(self) -> RangeSpec:
            if self.min is None and self.max is None:
                raise ValueError("give min, max or both")
            if self.min is not None and self.max is not None and self.min > self.max:
                raise ValueError(f"min {self.min} is greater than max {self.max}")
            return self

    class RowSpec(BaseModel):
        model_config = ConfigDict(extra="forbid")
        min: int | None = Field(default=None, ge=0)
        max: int | None = Field(default=None, ge=0)

    class ColumnSpec(BaseModel):
        model_config = ConfigDict(extra="forbid")
        type: ColumnType = "any"
        nullable: bool = False
        required: bool = True
        unique: bool = False
        min: int | float | dt.datetime | dt.date | str | None = None
        max: int | float | dt.datetime | dt.date | str | None = None
        allowed: list[bool | int | float | str] | None = Field(default=None, min_length=1)
        pattern: str | None = None
        min_length: int | None = Field(default=None, ge=0)
        max_length: int | None = Field(default=None, ge=0)
        mean: RangeSpec | None = None
        std: RangeSpec | None = None
        quantiles: dict[float, RangeSpec] | None = None
        null_fraction: RangeSpec | None = None

    class SchemaSpec(BaseModel):
        model_config = ConfigDict(extra="forbid")
        version: Literal[1] = 1
        description: str = ""
        rows: RowSpec | None = None
        extra_columns: Literal["allow", "forbid"] = "allow"
        columns: dict[str, ColumnSpec] = Field(min_length=1)

    if not isinstance(data, Mapping):
        raise DataError(f"{source}: a schema file must be a YAML mapping with `columns`")
    try:
        spec = SchemaSpec.model_validate(data)
    except ValidationError as exc:
        raise DataError(f"{source}: {first_problem(exc)}", hint="see docs/data.md") from None

    def bounds(r: RangeSpec | None) -> Bounds | None:
        return None if r is None else (r.min, r.max)

    columns = []
    for name, c in spec.columns.items():
        where = f"{source}: columns.{name}"
        column = ColumnSchema(
            name=str(name),
            type=c.type,
            nullable=c.nullable,
            required=c.required,
            unique=c.unique,
            min=_limit(c.min, c.type, f"{where}.min"),
            max=_limit(c.max, c.type, f"{where}.max"),
            allowed=None if c.allowed is None else tuple(c.allowed),
            pattern=c.pattern,
            min_length=c.min_length,
            max_length=c.max_length,
            mean=bounds(c.mean),
            std=bounds(c.std),
            quantiles=tuple(sorted((q, (b.min, b.max)) for q, b in (c.quantiles or {}).items())),
            null_fraction=bounds(c.null_fraction),
        )
        _check_column(column, where)
        columns.append(column)
    rows = spec.rows or RowSpec()
    if rows.min is not None and rows.max is not None and rows.min > rows.max:
        raise DataError(f"{source}: rows.min {rows.min} is greater than rows.max {rows.max}")
    return DataSchema(tuple(columns), rows.min, rows.max, spec.extra_columns, spec.description)


def _limit(value: Any, kind: str, where: str) -> Scalar | None:
    if value is None:
        return None
    if kind == "datetime":
        try:
            return str(pd.Timestamp(value).isoformat())
        except (ValueError, TypeError):
            raise DataError(f"{where}: {value!r} is not a date or time") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DataError(f"{where}: must be a number for a {kind} column")
    return value


def _check_column(c: ColumnSchema, where: str) -> None:
    numeric = c.type in _NUMERIC
    if (c.min is not None or c.max is not None) and not (numeric or c.type == "datetime"):
        raise DataError(
            f"{where}: min/max need type integer, float or datetime (not {c.type})",
            hint="use min_length/max_length for strings",
        )
    if (c.mean or c.std or c.quantiles) and not numeric:
        raise DataError(f"{where}: mean/std/quantiles need type integer or float")
    for q, _ in c.quantiles:
        if not 0.0 <= q <= 1.0:
            raise DataError(f"{where}.quantiles: {q} is not between 0 and 1")
    if c.pattern is not None:
        try:
            re.compile(c.pattern)
        except re.error as exc:
            raise DataError(f"{where}.pattern: invalid regular expression: {exc}") from None
    if c.min_length is not None and c.max_length is not None and c.min_length > c.max_length:
        raise DataError(f"{where}: min_length is greater than max_length")


@dataclass(frozen=True, slots=True)
class _CheckInfo:
    """What a compiled pandera check means, to turn its failures into a finding."""

    rule: Rule
    column: str | None
    what: str
    observe: Callable[[], Any] | None = None
    evidence: Mapping[str, Any] = field(default_factory=dict)
    failing: list[int] = field(default_factory=lambda: [0])  # set while the check runs


@dataclass(slots=True)
class _Compiler:
    frame: pd.DataFrame
    checks: dict[str, _CheckInfo] = field(default_factory=dict)

    def name(self, info: _CheckInfo) -> str:
        key = f"secmlops-{len(self.checks)}"
        self.checks[key] = info
        return key


def coerce_column(series: pd.Series, kind: str) -> tuple[pd.Series, pd.Series]:
    """The column converted to its declared type, and the mask of values that did not convert."""
    present = series.notna()
    if kind in _NUMERIC:
        if pd.api.types.is_bool_dtype(series):
            return series.astype("float64"), present
        numeric = (
            series
            if pd.api.types.is_numeric_dtype(series)
            else pd.to_numeric(series, errors="coerce")
        )
        bad = present & numeric.isna()
        if kind == "integer" and pd.api.types.is_float_dtype(numeric):
            values = numeric.to_numpy(dtype="float64", na_value=0.0)
            with np.errstate(invalid="ignore"):
                fraction = ~np.isfinite(values) | (np.mod(values, 1.0) != 0)
            bad = bad | (present & pd.Series(fraction, index=series.index))
        return numeric, bad
    if kind == "boolean":
        if pd.api.types.is_bool_dtype(series):
            return series, present & False
        text = series.astype("string").str.strip().str.lower()
        converted = pd.Series(pd.NA, index=series.index, dtype="boolean")
        converted[text.isin(_TRUE).fillna(False).astype(bool)] = True
        converted[text.isin(_FALSE).fillna(False).astype(bool)] = False
        return converted, present & converted.isna()
    if kind == "datetime":
        if pd.api.types.is_datetime64_any_dtype(series):
            return series, present & False
        converted = pd.to_datetime(series, errors="coerce", format="ISO8601", utc=True)
        return converted, present & converted.isna()
    if kind == "string" and not (
        pd.api.types.is_string_dtype(series) or pd.api.types.is_object_dtype(series)
    ):
        return series.astype("string"), present & False
    return series, present & False


def compile_schema(schema: DataSchema, frame: pd.DataFrame) -> tuple[Any, pd.DataFrame, _Compiler]:
    """The pandera schema for `frame`, the frame with columns converted to their types."""
    import pandera.pandas as pa

    compiler = _Compiler(frame)
    converted: dict[str, pd.Series] = {}
    columns: dict[str, Any] = {}
    for spec in schema.columns:
        if spec.name not in frame.columns:
            columns[spec.name] = pa.Column(None, required=spec.required, nullable=True)
            continue
        series, bad = coerce_column(frame[spec.name], spec.type)
        if series is not frame[spec.name]:
            converted[spec.name] = series  # only changed columns: assign copies the frame
        checks = _column_checks(spec, series, bad, str(frame[spec.name].dtype), compiler)
        # nulls and uniqueness are our own checks: they know conversion failures and count
        # every failing row without pandera listing all of them
        columns[spec.name] = pa.Column(None, checks=checks, nullable=True, required=spec.required)
    frame_checks = []
    if schema.min_rows is not None or schema.max_rows is not None:
        lo, hi = schema.min_rows, schema.max_rows
        key = compiler.name(
            _CheckInfo(
                rules.SCHEMA_ROW_COUNT,
                None,
                "the row count",
                lambda: len(frame),
                {"min": lo, "max": hi},
            )
        )
        frame_checks.append(pa.Check(lambda d: _within(len(d), (lo, hi)), name=key))
    working = frame.assign(**converted) if converted else frame
    compiled = pa.DataFrameSchema(
        columns,
        checks=frame_checks,
        strict=schema.extra_columns == "forbid",
    )
    return compiled, working, compiler


def _within(value: float, bounds: Bounds) -> bool:
    lo, hi = bounds
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    return (lo is None or value >= lo) and (hi is None or value <= hi)


def _column_checks(
    spec: ColumnSchema, series: pd.Series, bad: pd.Series, dtype: str, compiler: _Compiler
) -> list[Any]:
    import pandera.pandas as pa

    name = spec.name
    checks: list[Any] = []

    def element(
        rule: Rule,
        what: str,
        test: Callable[[pd.Series], pd.Series],
        ignore_na: bool = True,
        **ev: Any,
    ) -> None:
        info = _CheckInfo(rule, name, what, evidence=ev)
        key = compiler.name(info)

        def counted(s: pd.Series) -> pd.Series:
            # pandera keeps only the first failing rows (n_failure_cases); count them all here.
            ok = test(s)
            ok = ok.fillna(ignore_na).astype(bool) if ok.dtype != bool else ok
            if ignore_na:
                ok = ok | s.isna()
            info.failing[0] = int((~ok).sum())
            return ok

        checks.append(
            pa.Check(counted, name=key, ignore_na=ignore_na, n_failure_cases=MAX_EXAMPLE_ROWS)
        )

    def statistic(what: str, value: Callable[[], Any], bounds: Bounds, **ev: Any) -> None:
        key = compiler.name(
            _CheckInfo(
                rules.SCHEMA_STATISTIC,
                name,
                what,
                value,
                {"min": bounds[0], "max": bounds[1], **ev},
            )
        )
        checks.append(pa.Check(lambda s: _within(value(), bounds), name=key))

    if spec.type != "any":
        element(rules.SCHEMA_TYPE, f"values are not {spec.type}", lambda s: ~bad,
                ignore_na=False, type=spec.type, dtype=dtype)  # fmt: skip
    if not spec.nullable:
        element(rules.SCHEMA_NULL, "values are missing", lambda s: s.notna() | bad,
                ignore_na=False)  # fmt: skip
    if spec.unique:
        element(rules.SCHEMA_UNIQUE, "values are duplicated",
                lambda s: ~s.duplicated(keep=False))  # fmt: skip
    low: Any = pd.Timestamp(spec.min) if spec.type == "datetime" and spec.min else spec.min
    high: Any = pd.Timestamp(spec.max) if spec.type == "datetime" and spec.max else spec.max
    if low is not None:
        low = _tz_like(low, series)
        element(rules.SCHEMA_RANGE, f"values are below the minimum {spec.min}",
                lambda s: s >= low, min=spec.min)  # fmt: skip
    if high is not None:
        high = _tz_like(high, series)
        element(rules.SCHEMA_RANGE, f"values are above the maximum {spec.max}",
                lambda s: s <= high, max=spec.max)  # fmt: skip
    if spec.min_length is not None:
        n = spec.min_length
        element(rules.SCHEMA_RANGE, f"values are shorter than {n} characters",
                lambda s: s.astype("string").str.len() >= n, min_length=n)  # fmt: skip
    if spec.max_length is not None:
        m = spec.max_length
        element(rules.SCHEMA_RANGE, f"values are longer than {m} characters",
                lambda s: s.astype("string").str.len() <= m, max_length=m)  # fmt: skip
    if spec.allowed is not None:
        allowed = list(spec.allowed)
        shown = ", ".join(map(str, allowed[:8])) + (", ..." if len(allowed) > 8 else "")
        element(rules.SCHEMA_ALLOWED, f"values are not one of the allowed values ({shown})",
                lambda s: s.isin(allowed), allowed_count=len(allowed))  # fmt: skip
    if spec.pattern is not None:
        pattern = spec.pattern
        element(rules.SCHEMA_PATTERN, f"values do not match the pattern {pattern!r}",
                lambda s: s.astype("string").str.fullmatch(pattern), pattern=pattern)  # fmt: skip
    if spec.null_fraction is not None:
        statistic("the share of missing values", lambda: float(series.isna().mean()),
                  spec.null_fraction)  # fmt: skip
    numeric = series if pd.api.types.is_numeric_dtype(series) else None
    if numeric is not None:
        stats = _ColumnStats(numeric, bad, tuple(q for q, _ in spec.quantiles))
        if spec.mean is not None:
            statistic("the mean", lambda: stats.get("mean"), spec.mean)
        if spec.std is not None:
            statistic("the standard deviation", lambda: stats.get("std"), spec.std)
        for q, b in spec.quantiles:
            statistic(f"the {q:g} quantile", stats.quantile(q), b, q=q)
    return checks


class _ColumnStats:
    """A numeric column's statistics, computed once on first use (one sort for all quantiles)."""

    def __init__(self, series: pd.Series, bad: pd.Series, quantiles: tuple[float, ...]) -> None:
        self._series = series
        self._bad = bad
        self._quantiles = quantiles
        self._values: dict[str, float] | None = None

    def get(self, name: str) -> float:
        if self._values is None:
            data = self._series[~self._bad].to_numpy(dtype="float64", na_value=np.nan)
            data = data[~np.isnan(data)]
            values = {"mean": float("nan"), "std": float("nan")}
            if len(data):
                values["mean"] = float(data.mean())
                values["std"] = float(data.std(ddof=1)) if len(data) > 1 else float("nan")
                if self._quantiles:
                    found = np.quantile(data, self._quantiles)
                    values.update(
                        {f"q{q}": float(v) for q, v in zip(self._quantiles, found, strict=True)}
                    )
            self._values = values
        return self._values.get(name, float("nan"))

    def quantile(self, q: float) -> Callable[[], float]:
        return lambda: self.get(f"q{q}")


def _tz_like(value: Any, series: pd.Series) -> Any:
    """Compare times in the time zone of the column (naive with naive, aware with aware)."""
    if not isinstance(value, pd.Timestamp):
        return value
    aware = getattr(series.dtype, "tz", None) is not None
    if aware and value.tzinfo is None:
        return value.tz_localize("UTC")
    if not aware and value.tzinfo is not None:
        return value.tz_convert("UTC").tz_localize(None)
    return value


def validate_frame(frame: pd.DataFrame, schema: DataSchema, location: Location) -> list[Finding]:
    """Check `frame` against `schema`: one finding per failing (column, rule)."""
    import pandera.pandas as pa

    if not isinstance(frame.index, pd.RangeIndex) or frame.index.start != 0:
        frame = frame.reset_index(drop=True)
    compiled, working, compiler = compile_schema(schema, frame)
    try:
        # inplace: nothing is coerced by pandera, and a copy of a wide frame costs seconds
        compiled.validate(working, lazy=True, inplace=True)
    except pa.errors.SchemaErrors as exc:
        return _findings(exc.failure_cases, compiler, location)
    except pa.errors.SchemaError as exc:
        raise DataError(f"{location.path}: schema validation could not run: {exc}") from None
    return []


def _findings(cases: pd.DataFrame, compiler: _Compiler, location: Location) -> list[Finding]:
    out: list[Finding] = []
    for (column, check), group in cases.groupby(["column", "check"], dropna=False, sort=False):
        col = None if pd.isna(column) else str(column)
        info = compiler.checks.get(str(check))
        if check == "column_in_dataframe":
            for missing in group["failure_case"]:
                out.append(
                    rules.SCHEMA_MISSING_COLUMN.finding(
                        _at(location, str(missing)), f"required column {missing!r} is missing"
                    )
                )
            continue
        if check == "column_in_schema":
            for extra in group["failure_case"]:
                out.append(
                    rules.SCHEMA_UNEXPECTED_COLUMN.finding(
                        _at(location, str(extra)),
                        f"column {extra!r} is not in the schema (extra_columns: forbid)",
                    )
                )
            continue
        if info is None:
            # A check pandera added on its own: report it rather than hide it.
            info = _CheckInfo(rules.SCHEMA_TYPE, col, f"failed pandera check {check}")
        out.append(_finding(info, group, location))
    return sorted(out, key=lambda f: (f.location.column or "", f.rule_id, f.message))


def _finding(info: _CheckInfo, group: pd.DataFrame, location: Location) -> Finding:
    index = pd.to_numeric(group["index"], errors="coerce").dropna()
    rows = sorted({int(i) for i in index})[:MAX_EXAMPLE_ROWS]
    where = f"column {info.column!r}: " if info.column else ""
    evidence: dict[str, Any] = {k: _plain(v) for k, v in info.evidence.items() if v is not None}
    at = _at(location, info.column)
    if info.observe is not None and not rows:
        observed = _plain(info.observe())
        evidence["observed"] = observed
        return info.rule.finding(at, f"{where}{info.what} is {observed}, outside "
                                 f"{_range_text(evidence)}", evidence)  # fmt: skip
    count = max(info.failing[0], len(rows))
    evidence["failing_rows"] = count
    at = Location(path=at.path, member=at.member, column=at.column, rows=tuple(rows))
    shown = ", ".join(map(str, rows)) + (", ..." if count > len(rows) else "")
    noun = "row" if count == 1 else "rows"
    return info.rule.finding(at, f"{where}{count} {noun}: {info.what} (rows {shown})", evidence)


def _range_text(evidence: Mapping[str, Any]) -> str:
    lo, hi = evidence.get("min"), evidence.get("max")
    if lo is not None and hi is not None:
        return f"[{lo}, {hi}]"
    return f">= {lo}" if lo is not None else f"<= {hi}"


def _plain(value: Any) -> Any:
    """A JSON-friendly scalar (numpy and pandas scalars become Python ones)."""
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 6)
    if isinstance(value, bool | int | str) or value is None:
        return value
    return str(value)


def _at(location: Location, column: str | None) -> Location:
    return Location(path=location.path, member=location.member, column=column)
