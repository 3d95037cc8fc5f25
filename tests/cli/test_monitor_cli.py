"""`monitor drift|profile`, `scan poisoning` and `data budget` through the real command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from unittest.mock import patch

import numpy as np
import pandas as pd
import pytest

from tests.cli import run_cli


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, cwd=cwd, timeout=180)


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The same entry point in this process (cheaper than a subprocess for the longer flows)."""
    from secmlops.cli.main import main

    with patch.object(sys, "argv", ["secmlops", *args]), pytest.raises(SystemExit) as exit_:
        main()
    captured = capsys.readouterr()
    return int(exit_.value.code or 0), captured.out, captured.err


@pytest.fixture
def tables(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    n = 3000
    ref = pd.DataFrame(
        {
            "amount": rng.normal(size=n),
            "channel": rng.choice(["web", "app"], n),
            "email": [f"person{i}@example.org" for i in range(n)],
        }
    )
    ref.to_csv(tmp_path / "ref.csv", index=False)
    cur = ref.copy()
    cur["amount"] = rng.normal(size=n) + 0.5
    cur.to_parquet(tmp_path / "cur.parquet")
    return tmp_path


def test_drift_against_a_stored_profile(tables: Path) -> None:
    made = run("monitor", "profile", "ref.csv", "-o", "ref.profile.json", cwd=tables)
    assert made.returncode == 0, made.stderr
    assert "person7@example.org" not in (tables / "ref.profile.json").read_text()
    result = run(
        "monitor", "drift", "--reference", "ref.profile.json", "--current", "cur.parquet",
        "--format", "json", "--fail-on", "medium", "--html", "drift.html", cwd=tables,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    doc = json.loads(result.stdout)
    # one of three features drifted: also the data-set verdict (threshold 30%)
    assert {(f["rule_id"], f["location"].get("column")) for f in doc["findings"]} == {
        ("DATA-DRIFT-FEATURE", "amount"),
        ("DATA-DRIFT-DATASET", None),
    }
    assert "data:image/png;base64," in (tables / "drift.html").read_text()
    same = run("monitor", "drift", "-r", "ref.csv", "-c", "ref.csv", "-f", "sarif", cwd=tables)
    assert same.returncode == 0, same.stderr
    assert json.loads(same.stdout)["runs"][0]["results"] == []


def test_broken_inputs_exit_2_without_traceback(tables: Path) -> None:
    (tables / "bad.json").write_text('{"format": "secmlops-drift-profile", "version": 9}')
    bad = run("monitor", "drift", "-r", "bad.json", "-c", "cur.parquet", cwd=tables)
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
    assert "not a valid drift profile" in bad.stderr
    poisoning = run("scan", "poisoning", "ref.csv", "--label", "missing", "-f", "json", cwd=tables)
    assert poisoning.returncode == 2
    assert (
        "label column 'missing' not found" in json.loads(poisoning.stdout)["errors"][0]["message"]
    )


def test_budget_flow(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = str(tmp_path / "ledgers")
    code, _, err = cli(capsys, "data", "budget", "init", "claims", "--epsilon", "3",
                       "--delta", "1e-5", "--rows", "50000", "--store", store)  # fmt: skip
    assert code == 0, err
    code, _, err = cli(capsys, "data", "budget", "spend", "claims", "-m", "gaussian",
                       "--noise-multiplier", "3", "--delta", "1e-6", "--store", store)  # fmt: skip
    assert code == 0, err
    over = run("data", "budget", "spend", "claims", "-m", "laplace", "--noise-multiplier", "0.1",
               "--store", store)  # fmt: skip
    assert over.returncode == 2
    assert "DP-BUDGET-EXCEEDED" in over.stderr
    assert "Traceback" not in over.stderr
    code, out, err = cli(capsys, "data", "budget", "show", "claims", "--store", store, "-f", "json")
    assert code == 0, err
    (status,) = json.loads(out)["findings"]
    assert status["rule_id"] == "DP-BUDGET-STATUS"
    assert status["evidence"]["entries"] == 1
    (tmp_path / "ledgers" / "claims.ledger.json").write_text("{broken")
    code, _, err = cli(capsys, "data", "budget", "show", "claims", "--store", store)
    assert code == 2
    assert "damaged privacy ledger" in err


def test_drift_and_poisoning_thresholds_come_from_the_config_file(
    tables: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tables / "secmlops.toml"
    config.write_text("[drift]\nwasserstein = 5.0\npsi = 5.0\njensen_shannon = 1.0\n")
    args = ["monitor", "drift", "-r", str(tables / "ref.csv"), "-c", str(tables / "cur.parquet")]
    code, out, _ = cli(capsys, *args, "-f", "json", "--config", str(config))
    assert code == 0 and json.loads(out)["findings"] == []  # a 0.5 sd shift is below 5 sd
    code, out, _ = cli(
        capsys, *args, "-f", "json", "--config", str(config), "--wasserstein", "0.05"
    )
    assert code == 1  # the flag wins over the file
    config.write_text("[poisoning]\ncluster_min_size = 1000\n")
    code, out, _ = cli(
        capsys, "scan", "poisoning", str(tables / "ref.csv"), "--label", "channel",
        "--check", "cluster", "-f", "json", "--config", str(config),
    )  # fmt: skip
    (finding,) = json.loads(out)["findings"]
    assert "fewer than 4000 distinct rows" in finding["message"]
