"""`scan data`, `data infer-schema`, `data snapshot`, `data verify` through the real CLI."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from secmlops.cli.main import app
from secmlops.errors import DataError
from secmlops.findings import Finding, Location
from secmlops.scan.data import engine
from secmlops.scan.data.engine import DataScanSettings, optional_module, scan_data
from tests.cli import run_cli as run


def invoke(*args: str) -> tuple[int, str, BaseException | None]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.exception


SCHEMA = """
version: 1
rows: {min: 2}
extra_columns: forbid
columns:
  id: {type: integer, unique: true}
  age: {type: integer, min: 0, max: 120}
  plan: {type: string, allowed: [free, pro]}
"""


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    pd.DataFrame({"id": [1, 2, 3], "age": [30, 41, 25], "plan": ["free", "pro", "pro"]}).to_csv(
        folder / "good.csv", index=False
    )
    (tmp_path / "schema.yaml").write_text(SCHEMA)
    return folder


def test_scan_data_with_schema_violations_exits_1_with_rows(data: Path) -> None:
    pd.DataFrame(
        {"id": [1, 1, 3], "age": [30, -4, 25], "plan": ["free", "gold", "pro"]}
    ).to_parquet(
        data / "bad.csv"  # Parquet under a CSV name: sniffed from the bytes
    )
    schema = data.parent / "schema.yaml"
    result = run("scan", "data", str(data), "--schema", str(schema), "--no-pii", "-f", "json")
    assert result.returncode == 1, result.stderr
    doc = json.loads(result.stdout)
    assert doc["errors"] == []
    got = {(f["rule_id"], f["location"]["column"]): f["location"]["rows"] for f in doc["findings"]}
    assert got == {
        ("DATA-SCHEMA-UNIQUE", "id"): [0, 1],
        ("DATA-SCHEMA-RANGE", "age"): [1],
        ("DATA-SCHEMA-ALLOWED", "plan"): [1],
    }
    assert all(f["location"]["path"].endswith("bad.csv") for f in doc["findings"])
    assert doc["summary"]["files_scanned"] == 2

    code, stdout, _ = invoke(
        "scan", "data", str(data), "--schema", str(schema), "--no-pii", "-f", "sarif"
    )
    assert code == 1
    results = json.loads(stdout)["runs"][0]["results"]
    assert {r["ruleId"] for r in results} == {
        "DATA-SCHEMA-UNIQUE", "DATA-SCHEMA-RANGE", "DATA-SCHEMA-ALLOWED"
    }  # fmt: skip


def test_broken_file_exits_2_never_clean(tmp_path: Path) -> None:
    (tmp_path / "latin.csv").write_bytes("name\nJosé\n".encode("latin-1"))
    result = run("scan", "data", str(tmp_path), "--no-pii", "-f", "json")
    assert result.returncode == 2, result.stderr
    doc = json.loads(result.stdout)
    assert doc["errors"] and "not valid UTF-8" in doc["errors"][0]["message"]
    assert doc["findings"][0]["rule_id"] == "DATA-READ-ERROR"
    assert "Traceback" not in result.stderr
    code, stdout, exc = invoke(
        "scan", "data", str(tmp_path), "--no-pii", "--encoding", "latin-1", "-q"
    )
    assert code == 0, (stdout, exc)


def test_snapshot_verify_round_trip_and_tamper(tmp_path: Path, data: Path) -> None:
    manifest = tmp_path / "manifest.json"
    snap = run("data", "snapshot", str(data), "-o", str(manifest), cwd=tmp_path)
    assert snap.returncode == 0, snap.stderr
    digest = snap.stdout.strip()
    assert digest.startswith("sha256:") and len(digest) == 71
    stored = tmp_path / ".secmlops" / "store" / "sha256" / digest[7:9] / digest[7:]
    assert stored.read_bytes() == manifest.read_bytes()

    ok = run("data", "verify", str(data), "--digest", digest, "-f", "json", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["findings"] == []

    (data / "good.csv").write_text((data / "good.csv").read_text().replace("41", "14"))
    (data / "new.csv").write_text("id\n9\n")
    code, stdout, _ = invoke("data", "verify", str(data), "--manifest", str(manifest), "-f", "json")
    assert code == 1
    got = {(f["rule_id"], Path(f["location"]["path"]).name) for f in json.loads(stdout)["findings"]}
    assert got == {("DATA-INTEGRITY-MODIFIED", "good.csv"), ("DATA-INTEGRITY-ADDED", "new.csv")}

    manifest.write_bytes(manifest.read_bytes().replace(b'"size":', b'"size": ', 1))
    tampered = run("data", "verify", str(data), "--manifest", str(manifest), "--digest", digest)
    assert tampered.returncode == 2
    assert "digest mismatch" in tampered.stderr and "Traceback" not in tampered.stderr


def test_infer_schema_then_scan_passes(tmp_path: Path, data: Path) -> None:
    out = tmp_path / "inferred.yaml"
    code, _, exc = invoke("data", "infer-schema", str(data), "-o", str(out), "-q")
    assert code == 0, exc
    assert "columns:" in out.read_text()
    code, stdout, exc = invoke(
        "scan", "data", str(data), "--schema", str(out), "--no-pii", "-f", "json"
    )
    assert code == 0, (stdout, exc)


def test_verify_needs_a_manifest_or_digest(data: Path) -> None:
    _, _, exc = invoke("data", "verify", str(data))
    assert isinstance(exc, Exception) and "--manifest" in str(exc)


def test_snapshot_refuses_symlink(tmp_path: Path, data: Path) -> None:
    (data / "link.csv").symlink_to(data / "good.csv")
    _, _, exc = invoke("data", "snapshot", str(data), "--no-store")
    assert isinstance(exc, DataError) and "symbolic links" in exc.message


def test_partial_read_is_a_high_finding(tmp_path: Path) -> None:
    pd.DataFrame({"a": range(100)}).to_csv(tmp_path / "t.csv", index=False)
    code, stdout, _ = invoke(
        "scan", "data", str(tmp_path), "--no-pii", "--max-rows", "10", "-f", "json"
    )
    assert code == 1
    assert [f["rule_id"] for f in json.loads(stdout)["findings"]] == ["DATA-READ-PARTIAL"]


def test_pii_and_poisoning_are_called_when_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pd.DataFrame({"x": [1, 2], "y": ["a", "b"]}).to_csv(tmp_path / "t.csv", index=False)
    calls: list[str] = []

    def fake_pii(frame: pd.DataFrame, location: Location, *, settings: object) -> list[Finding]:
        calls.append(f"pii {len(frame)} {location.path} {settings}")
        return []

    def fake_poison(
        frame: pd.DataFrame, *, label: str, reference: object, location: Location, settings: object
    ) -> list[Finding]:
        calls.append(f"poison {label} {reference is not None} {settings}")
        raise DataError("label column missing")

    def settings_type(**values: object) -> dict[str, object]:
        return values

    monkeypatch.setitem(
        sys.modules,
        engine.PII_MODULE,
        types.SimpleNamespace(scan_frame_pii=fake_pii, PiiSettings=settings_type),
    )
    monkeypatch.setitem(
        sys.modules,
        engine.POISONING_MODULE,
        types.SimpleNamespace(scan_poisoning=fake_poison, PoisonSettings=settings_type),
    )
    layers = {"pii": {"column_share": 0.3}}  # as [pii] of secmlops.toml gives it
    report = scan_data(
        [tmp_path],
        DataScanSettings(label="y", reference=pd.DataFrame({"y": ["a"]}), layers=layers),
    )
    assert calls == [
        f"pii 2 {tmp_path / 't.csv'} {{'column_share': 0.3}}",
        "poison y True {}",
    ]
    assert report.errors and "poisoning checks could not run" in report.errors[0].message

    calls.clear()
    report = scan_data([tmp_path], DataScanSettings(pii=False))
    assert calls == [] and report.errors == []


def test_optional_module_only_hides_its_own_absence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert optional_module("secmlops.scan.data.no_such_module") is None
    # A check module that exists but fails to import a dependency is a bug: it must surface.
    (tmp_path / "check_with_missing_dep.py").write_text("import dependency_that_is_not_there\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="dependency_that_is_not_there"):
        optional_module("check_with_missing_dep")
