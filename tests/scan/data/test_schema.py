"""Schema files compiled to pandera checks: each rule catches, benign data passes, bad files fail."""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from secmlops.errors import DataError
from secmlops.findings import Finding, Location
from secmlops.scan.data.infer import infer_schema
from secmlops.scan.data.schema import load_schema, parse_schema, validate_frame
from secmlops.scan.data.tables import read_table

ADVISORIES = Path("/work/shared/data/pypa-advisory-database-3ccb612.tar.gz")
AT = Location(path="t.csv")


def _check(frame: pd.DataFrame, columns: dict[str, Any], **top: Any) -> list[Finding]:
    return validate_frame(frame, parse_schema({"columns": columns, **top}), AT)


def _only(findings: list[Finding], rule_id: str) -> Finding:
    assert [f.rule_id for f in findings] == [rule_id], [f.message for f in findings]
    return findings[0]


def test_range_violation_names_column_rule_count_and_rows() -> None:
    frame = pd.DataFrame({"age": [30, -1, 40, 200, 55, -5]})
    findings = _check(frame, {"age": {"type": "integer", "min": 0, "max": 120}})
    assert sorted(f.message for f in findings) == sorted(
        [
            "column 'age': 2 rows: values are below the minimum 0 (rows 1, 5)",
            "column 'age': 1 row: values are above the maximum 120 (rows 3)",
        ]
    )
    low = next(f for f in findings if "below" in f.message)
    assert low.rule_id == "DATA-SCHEMA-RANGE"
    assert low.location.column == "age" and low.location.rows == (1, 5)
    assert low.evidence["failing_rows"] == 2


def test_example_rows_are_capped_at_ten_but_counted_in_full() -> None:
    frame = pd.DataFrame({"x": [-1] * 25 + [1] * 5})
    f = _only(_check(frame, {"x": {"type": "integer", "min": 0}}), "DATA-SCHEMA-RANGE")
    assert f.location.rows == tuple(range(10))
    assert f.evidence["failing_rows"] == 25
    assert "25 rows" in f.message and ", ..." in f.message


def test_type_violations() -> None:
    frame = pd.DataFrame(
        {
            "n": ["1", "2", "three", "4"],
            "i": [1.0, 2.5, 3.0, np.nan],
            "b": ["yes", "no", "maybe", "true"],
            "d": ["2024-01-01", "2024-02-30", "2024-03-01", "2024-04-01"],
        }
    )
    findings = _check(
        frame,
        {
            "n": {"type": "float"},
            "i": {"type": "integer", "nullable": True},
            "b": {"type": "boolean"},
            "d": {"type": "datetime"},
        },
    )
    got = {(f.location.column, f.location.rows) for f in findings}
    assert got == {("n", (2,)), ("i", (1,)), ("b", (2,)), ("d", (1,))}
    assert {f.rule_id for f in findings} == {"DATA-SCHEMA-TYPE"}


def test_nulls_in_non_nullable_column_but_not_in_nullable_one() -> None:
    frame = pd.DataFrame({"a": [1.0, np.nan, 3.0], "b": [np.nan, 2.0, np.nan]})
    findings = _check(frame, {"a": {"type": "float"}, "b": {"type": "float", "nullable": True}})
    f = _only(findings, "DATA-SCHEMA-NULL")
    assert f.location.column == "a" and f.location.rows == (1,)


def test_unparseable_value_is_a_type_finding_not_also_a_null() -> None:
    frame = pd.DataFrame({"a": ["1", "x", "3"]})
    _only(_check(frame, {"a": {"type": "integer"}}), "DATA-SCHEMA-TYPE")


def test_allowed_values_pattern_and_lengths() -> None:
    frame = pd.DataFrame(
        {
            "country": ["FR", "DE", "XX", "FR", None],
            "code": ["AB-12", "AB-1", "ab-12", "AB-99", "AB-00"],
        }
    )
    findings = _check(
        frame,
        {
            "country": {"type": "string", "allowed": ["FR", "DE"], "nullable": True},
            "code": {"type": "string", "pattern": r"[A-Z]{2}-\d{2}", "max_length": 5,
                     "min_length": 5},
        },
    )  # fmt: skip
    by = {(f.rule_id, f.location.column): f.location.rows for f in findings}
    assert by == {
        ("DATA-SCHEMA-ALLOWED", "country"): (2,),
        ("DATA-SCHEMA-PATTERN", "code"): (1, 2),
        ("DATA-SCHEMA-RANGE", "code"): (1,),
    }


def test_pattern_is_a_full_match_not_a_prefix() -> None:
    frame = pd.DataFrame({"z": ["12345", "12345-evil"]})
    f = _only(_check(frame, {"z": {"type": "string", "pattern": r"\d{5}"}}), "DATA-SCHEMA-PATTERN")
    assert f.location.rows == (1,)


def test_unique_reports_every_duplicate_row() -> None:
    frame = pd.DataFrame({"id": [1, 2, 3, 2, 5, 1]})
    f = _only(_check(frame, {"id": {"type": "integer", "unique": True}}), "DATA-SCHEMA-UNIQUE")
    assert f.location.rows == (0, 1, 3, 5)


def test_row_count_bounds() -> None:
    frame = pd.DataFrame({"a": [1, 2, 3]})
    f = _only(_check(frame, {"a": {}}, rows={"min": 5}), "DATA-SCHEMA-ROW-COUNT")
    assert f.evidence["observed"] == 3 and f.location.rows is None
    _only(_check(frame, {"a": {}}, rows={"max": 2}), "DATA-SCHEMA-ROW-COUNT")
    assert _check(frame, {"a": {}}, rows={"min": 3, "max": 3}) == []


def test_statistical_expectations() -> None:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"x": rng.normal(10, 2, 5000)})
    ok = {"type": "float", "mean": {"min": 9.8, "max": 10.2}, "std": {"min": 1.8, "max": 2.2},
          "quantiles": {0.5: {"min": 9.7, "max": 10.3}}}  # fmt: skip
    assert _check(frame, {"x": ok}) == []
    shifted = frame.assign(x=frame["x"] + 1)
    findings = _check(shifted, {"x": ok})
    assert {f.rule_id for f in findings} == {"DATA-SCHEMA-STATISTIC"}
    assert len(findings) == 2  # the mean and the median moved; the spread did not
    assert all(f.evidence["observed"] > 10.3 for f in findings)


def test_null_fraction() -> None:
    frame = pd.DataFrame({"x": [1.0, np.nan, np.nan, 4.0]})
    f = _only(
        _check(frame, {"x": {"nullable": True, "null_fraction": {"max": 0.25}}}),
        "DATA-SCHEMA-STATISTIC",
    )
    assert f.evidence["observed"] == 0.5


def test_missing_and_unexpected_columns() -> None:
    frame = pd.DataFrame({"a": [1], "extra": [2]})
    cols = {"a": {}, "b": {}, "c": {"required": False}}
    findings = _check(frame, cols, extra_columns="forbid")
    assert {(f.rule_id, f.location.column) for f in findings} == {
        ("DATA-SCHEMA-MISSING-COLUMN", "b"),
        ("DATA-SCHEMA-UNEXPECTED-COLUMN", "extra"),
    }
    assert [f.rule_id for f in _check(frame, cols)] == ["DATA-SCHEMA-MISSING-COLUMN"]


def test_datetime_range_with_time_zones() -> None:
    frame = pd.DataFrame({"t": ["2024-01-01T10:00:00Z", "1999-12-31T23:00:00+00:00"]})
    f = _only(_check(frame, {"t": {"type": "datetime", "min": "2000-01-01"}}), "DATA-SCHEMA-RANGE")
    assert f.location.rows == (1,)


def test_benign_data_with_nullable_nan_passes() -> None:
    frame = pd.DataFrame(
        {
            "id": [1, 2, 3],
            "score": [0.5, np.nan, 0.7],
            "cat": ["a", None, "b"],
            "flag": [True, False, True],
            "n_from_csv": [1.0, np.nan, 3.0],  # a nullable integer read as float
        }
    )
    columns = {
        "id": {"type": "integer", "unique": True, "min": 1, "max": 3},
        "score": {"type": "float", "nullable": True, "min": 0, "max": 1},
        "cat": {"type": "string", "nullable": True, "allowed": ["a", "b"], "pattern": "[ab]"},
        "flag": {"type": "boolean"},
        "n_from_csv": {"type": "integer", "nullable": True, "min": 0},
    }
    assert _check(frame, columns, rows={"min": 1, "max": 10}, extra_columns="forbid") == []


def test_values_are_never_copied_into_findings() -> None:
    frame = pd.DataFrame({"email": ["alice@example.com", "bob-secret-value"]})
    findings = _check(frame, {"email": {"type": "string", "pattern": r"[^@]+@[^@]+"}})
    text = repr([f.to_dict() for f in findings])
    assert "bob-secret-value" not in text


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("columns: {a: {type: int}}", "columns.a.type"),
        ("columns: {a: {typo: 1}}", "columns.a.typo"),
        ("columns: {a: {type: string, min: 1}}", "min/max need type"),
        ("columns: {a: {type: string, mean: {min: 1}}}", "mean/std/quantiles"),
        ("columns: {a: {pattern: '([a-'}}", "invalid regular expression"),
        ("columns: {a: {type: float, mean: {min: 2, max: 1}}}", "greater than max"),
        ("columns: {a: {type: float, quantiles: {1.5: {max: 1}}}}", "not between 0 and 1"),
        ("columns: {a: {type: datetime, min: yesterday}}", "not a date"),
        ("rows: {min: 5, max: 1}\ncolumns: {a: {}}", "rows.min"),
        ("columns: {}", "columns"),
        ("- a\n- b", "YAML mapping"),
        ("columns: [unclosed", "not valid YAML"),
        ("version: 2\ncolumns: {a: {}}", "version"),
    ],
)
def test_bad_schema_files_are_clear_errors(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "schema.yaml"
    path.write_text(content)
    with pytest.raises(DataError, match=expected.replace("(", r"\(").replace("[", r"\[")):
        load_schema(path)


def test_schema_file_round_trip(tmp_path: Path) -> None:
    frame = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "x"], "c": [0.1, None, 0.3]})
    schema = infer_schema(frame)
    path = tmp_path / "s.yaml"
    path.write_text(schema.to_yaml())
    again = load_schema(path)
    assert again == schema
    assert validate_frame(frame, again, AT) == []


# ---- a real data set: the PyPA advisory database, flattened to a table ----------------------


def _advisory_table(limit: int = 600) -> pd.DataFrame:
    rows = []
    with tarfile.open(ADVISORIES) as tar:
        for member in tar:
            if not member.name.endswith(".yaml"):
                continue
            stream = tar.extractfile(member)
            assert stream is not None
            doc = yaml.load(stream, Loader=yaml.CSafeLoader)
            affected = doc.get("affected") or [{}]
            rows.append(
                {
                    "id": doc["id"],
                    "package": affected[0].get("package", {}).get("name"),
                    "published": doc.get("published"),
                    "modified": doc.get("modified"),
                    "versions": sum(len(a.get("versions") or []) for a in affected),
                    "references": len(doc.get("references") or []),
                    "aliases": len(doc.get("aliases") or []),
                    "withdrawn": "withdrawn" in doc,
                }
            )
            if len(rows) == limit:
                break
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def advisories(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not ADVISORIES.is_file():
        pytest.fail(f"shared data set missing: {ADVISORIES}")
    path = tmp_path_factory.mktemp("adv") / "advisories.csv"
    _advisory_table().to_csv(path, index=False)
    return path


def test_real_dataset_infer_then_catch_corruption(advisories: Path, tmp_path: Path) -> None:
    trusted = read_table(advisories)
    schema = infer_schema(trusted)
    by_name = {c.name: c for c in schema.columns}
    assert by_name["id"].unique and by_name["id"].type == "string"
    assert by_name["versions"].type == "integer" and by_name["versions"].min == 0
    assert by_name["withdrawn"].type == "boolean"
    assert validate_frame(trusted, schema, AT) == [], "a schema must accept its own data"

    corrupted = advisories.read_text().splitlines()
    header = corrupted[0].split(",")
    vcol = header.index("versions")
    for line_no in (5, 17):  # text lines 6 and 18 = data rows 4 and 16
        cells = corrupted[line_no].split(",")
        cells[vcol] = "999999"
        corrupted[line_no] = ",".join(cells)
    corrupted.append(corrupted[1])  # a duplicated advisory (injected row)
    bad = tmp_path / "corrupted.csv"
    bad.write_text("\n".join(corrupted) + "\n")
    findings = validate_frame(read_table(bad), schema, Location(path=str(bad)))
    got = {(f.rule_id, f.location.column): f.location.rows for f in findings}
    assert got[("DATA-SCHEMA-RANGE", "versions")] == (4, 16)
    assert got[("DATA-SCHEMA-UNIQUE", "id")] == (0, len(corrupted) - 2)
    assert ("DATA-SCHEMA-STATISTIC", "versions") in got
