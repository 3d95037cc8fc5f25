"""Drift profiles: what monitoring keeps of a reference data set instead of its rows.

A profile holds, per column, counts, the mean and standard deviation, 1,000 quantiles on a
mid-point grid (the minimum and maximum themselves are never stored), decile-bin counts, and
category counts of values seen at least `min_category_count` times (rarer values are pooled as
one "other" bucket). Nearly unique integer columns (identifiers) and free text are profiled by
the length of their values only. No raw row is stored, so no personal data reaches monitoring
through it.
"""

from __future__ import annotations

import json
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from secmlops.errors import DataError, first_problem

PROFILE_FORMAT = "secmlops-drift-profile"
PROFILE_VERSION = 1
QUANTILES = 1000
DECILES = 10
MIN_CATEGORY_COUNT = 10
MAX_CATEGORIES = 200
DISCRETE_MAX_VALUES = 20  # numeric columns with this few distinct values are compared as categories
IDENTIFIER_SHARE = 0.95  # integer columns with this share of distinct values are identifiers
OTHER = "\0other"  # the pooled bucket of rare categories (a NUL never appears in a category name)

Kind = Literal["numeric", "categorical", "text"]


@dataclass(frozen=True, slots=True)
class ColumnProfile:
    """Summary statistics of one column."""

    kind: Kind
    count: int  # non-missing values
    missing: int
    mean: float = 0.0
    std: float = 0.0
    quantiles: tuple[float, ...] = ()  # numeric: values; text: string lengths
    edges: tuple[float, ...] = ()  # decile edges of the reference (used to bin the current data)
    bin_counts: tuple[int, ...] = ()  # counts per bin between edges (len(edges) + 1 bins)
    categories: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "count": self.count, "missing": self.missing}
        if self.kind != "categorical":
            out.update(
                mean=self.mean,
                std=self.std,
                quantiles=list(self.quantiles),
                edges=list(self.edges),
                bin_counts=list(self.bin_counts),
            )
        else:
            out["categories"] = dict(self.categories)
        return out


@dataclass(frozen=True, slots=True)
class Profile:
    """A data set's profile: JSON-serialisable, no raw rows."""

    rows: int
    columns: dict[str, ColumnProfile]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": PROFILE_FORMAT,
            "version": PROFILE_VERSION,
            "rows": self.rows,
            "quantile_grid": QUANTILES,
            "min_category_count": MIN_CATEGORY_COUNT,
            "columns": {name: col.to_dict() for name, col in self.columns.items()},
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), allow_nan=False, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Any, source: str = "profile") -> Profile:
        """Validate a parsed profile (a boundary: pydantic, extra keys forbidden)."""
        from pydantic import BaseModel, ConfigDict, Field, ValidationError

        class ColumnSchema(BaseModel):
            model_config = ConfigDict(extra="forbid")
            kind: Literal["numeric", "categorical", "text"]
            count: int = Field(ge=0)
            missing: int = Field(ge=0)
            mean: float = 0.0
            std: float = Field(default=0.0, ge=0)
            quantiles: list[float] = Field(default_factory=list)
            edges: list[float] = Field(default_factory=list)
            bin_counts: list[int] = Field(default_factory=list)
            categories: dict[str, int] = Field(default_factory=dict)

        class Schema(BaseModel):
            model_config = ConfigDict(extra="forbid")
            format: Literal["secmlops-drift-profile"]
            version: Literal[1]
            rows: int = Field(ge=0)
            quantile_grid: Literal[1000]
            min_category_count: int = Field(ge=1)
            columns: dict[str, ColumnSchema]

        try:
            parsed = Schema.model_validate(data)
        except ValidationError as exc:
            raise DataError(
                f"{source}: not a valid drift profile ({first_problem(exc)})",
                hint="write one with `secmlops monitor profile DATA -o profile.json`",
            ) from None
        columns = {}
        for name, c in parsed.columns.items():
            if c.kind != "categorical" and (
                len(c.quantiles) != QUANTILES * (c.count > 0)
                or len(c.bin_counts) != (len(c.edges) + 1) * (c.count > 0)
            ):
                raise DataError(f"{source}: column {name!r} has damaged quantiles or bins")
            columns[name] = ColumnProfile(
                c.kind, c.count, c.missing, c.mean, c.std, tuple(c.quantiles), tuple(c.edges),
                tuple(c.bin_counts), dict(c.categories),
            )  # fmt: skip
        return cls(parsed.rows, columns)


def load_profile(path: Path) -> Profile:
    """Read a profile JSON file; DataError if it is not one."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read profile {path}: {exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{path}: not JSON ({exc.msg} at line {exc.lineno})",
            hint="a profile is written by `secmlops monitor profile`",
        ) from None
    return Profile.from_dict(data, str(path))


def is_profile_file(path: Path) -> bool:
    """True when `path` starts like a profile JSON (decided from bytes, not the name)."""
    try:
        with path.open("rb") as f:
            head = f.read(200)
    except OSError:
        return False
    return head.lstrip().startswith(b"{") and PROFILE_FORMAT.encode() in head


_GRID = (np.arange(QUANTILES) + 0.5) / QUANTILES


def _sorted_quantiles(values: np.ndarray) -> np.ndarray:
    """Quantiles on the mid-point grid of sorted `values` (linear interpolation)."""
    position = _GRID * (len(values) - 1)
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, len(values) - 1)
    weight = position - low
    out: np.ndarray = values[low] * (1 - weight) + values[high] * weight
    return out


def _bin_counts(sorted_values: np.ndarray, edges: np.ndarray) -> tuple[int, ...]:
    cuts = np.searchsorted(sorted_values, edges, side="right")
    return tuple(int(c) for c in np.diff(np.concatenate([[0], cuts, [len(sorted_values)]])))


def _numeric(values: np.ndarray, missing: int, like: ColumnProfile | None) -> ColumnProfile:
    finite = np.isfinite(values)
    values = values.copy() if finite.all() else values[finite]  # never sort the caller's data
    if values.size == 0:
        return ColumnProfile("numeric", 0, missing)
    values.sort()
    if like is not None and like.count > 0:
        edges = np.asarray(like.edges)
    else:
        edges = np.unique(_sorted_quantiles(values)[np.arange(1, DECILES) * QUANTILES // DECILES])
    return ColumnProfile(
        "numeric",
        int(values.size),
        missing,
        float(values.mean()),
        float(values.std()),
        tuple(float(q) for q in _sorted_quantiles(values)),
        tuple(float(e) for e in edges),
        _bin_counts(values, edges),
    )


def _categorical(series: pd.Series, missing: int) -> ColumnProfile:
    counts = series.dropna().astype(str).value_counts()
    kept = counts[counts >= MIN_CATEGORY_COUNT].head(MAX_CATEGORIES)
    categories = {str(k): int(v) for k, v in kept.items()}
    pooled = int(counts.sum() - kept.sum())
    if pooled:
        categories[OTHER] = pooled
    return ColumnProfile("categorical", int(counts.sum()), missing, categories=categories)


def _kind(series: pd.Series) -> Kind:
    if pd.api.types.is_bool_dtype(series):
        return "categorical"
    if pd.api.types.is_numeric_dtype(series):
        head = series.to_numpy()[:10_000]
        few = len(np.unique(head[~pd.isna(head)])) <= DISCRETE_MAX_VALUES
        if few and series.nunique() <= DISCRETE_MAX_VALUES:
            return "categorical"
        # nearly unique integers are identifiers (account, phone, record numbers): their
        # quantiles would be real values, so only their digit counts are profiled
        identifier = (
            not few
            and pd.api.types.is_integer_dtype(series)
            and len(series) >= 100
            and series.nunique() >= IDENTIFIER_SHARE * series.notna().sum()
        )
        return "text" if identifier else "numeric"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "numeric"
    sample = series.dropna().astype(str).head(10_000)
    return "text" if sample.nunique() > max(MAX_CATEGORIES, 0.5 * len(sample)) else "categorical"


def _column(series: pd.Series, like: ColumnProfile | None) -> ColumnProfile:
    kind = like.kind if like is not None else _kind(series)
    missing = int(series.isna().sum())
    if kind == "categorical":
        if pd.api.types.is_float_dtype(series):
            # discrete numbers must print the same in both data sets (1.0 not 1)
            series = series.map(lambda v: v if pd.isna(v) else repr(float(v)))
        return _categorical(series, missing)
    if kind == "text":
        lengths = series.dropna().astype(str).str.len().to_numpy(dtype="float64")
        return _as_text(_numeric(lengths, missing, like))
    if pd.api.types.is_datetime64_any_dtype(series):
        values = series.to_numpy(dtype="datetime64[ns]").astype("int64").astype("float64") / 1e9
        values[series.isna().to_numpy()] = np.nan
    else:
        try:
            values = series.to_numpy(dtype="float64", na_value=np.nan)
        except (TypeError, ValueError):
            raise DataError(
                f"column {series.name!r} is numeric in the reference but holds non-numbers now",
            ) from None
    return _numeric(values, missing, like)


def _as_text(profile: ColumnProfile) -> ColumnProfile:
    return ColumnProfile(
        "text", profile.count, profile.missing, profile.mean, profile.std, profile.quantiles,
        profile.edges, profile.bin_counts,
    )  # fmt: skip


def build_profile(
    frame: pd.DataFrame, like: Profile | None = None, columns: list[str] | None = None
) -> Profile:
    """Profile the columns of `frame` (all, or `columns`; with `like`: the same kinds and bin
    edges as that profile, for the columns it has).

    Columns are profiled in parallel threads; numpy's sort releases the GIL.
    """
    if frame.shape[1] == 0:
        raise DataError("the table has no columns")
    names = [str(c) for c in frame.columns]
    if len(set(names)) != len(names):
        raise DataError("the table has duplicate column names")
    wanted = [n for n in (columns or names) if like is None or n in like.columns]

    def one(name: str) -> tuple[str, ColumnProfile]:
        return name, _column(frame[name], like.columns[name] if like is not None else None)

    workers = max(1, min(len(wanted), os.cpu_count() or 1))
    with ThreadPoolExecutor(workers) as pool:
        profiles = dict(pool.map(one, wanted))
    return Profile(len(frame), profiles)


def quantile_grid() -> np.ndarray:
    """The probabilities at which profiles store quantiles."""
    return _GRID.copy()


def effective_size(n: int, cap: int) -> int:
    """The sample size a p-value is computed at: huge samples make every shift significant."""
    return max(1, min(n, cap))


def finite(value: float) -> float:
    """JSON has no NaN or infinity: clamp for evidence fields."""
    if math.isnan(value):
        return 0.0
    return max(min(value, 1e300), -1e300)
