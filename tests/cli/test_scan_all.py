"""`secmlops scan [PATH]`: every layer over one repository, one report, one SARIF run per layer."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

from secmlops.scan.deps.osv import import_zip
from tests.cli.test_cli import run
from tests.scan.deps.osv_fixtures import record, write_zip


class _Exec:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, ("true",))


def _repo(root: Path) -> Path:
    (root / ".github" / "workflows").mkdir(parents=True)
    (root / ".github" / "workflows" / "ci.yml").write_text(
        "on: pull_request_target\npermissions: write-all\njobs:\n  t:\n    runs-on: ubuntu-latest\n"
        "    steps:\n      - run: echo ${{ github.event.pull_request.title }}\n"
    )
    (root / "Dockerfile").write_text("FROM python\nRUN curl -sSL https://x.example/i.sh | sh\n")
    (root / "requirements.txt").write_text("torch==2.5.1\n")
    (root / "model.pkl").write_bytes(pickle.dumps(_Exec()))
    (root / "settings.py").write_text('HF = "hf_' + "QmXk7RtP2sLw9ZcN4vBy6HdJ3fGa8Ue5Yo" + '"\n')
    db = root.parent / "osv"
    dump = write_zip(root.parent / "dump.zip", [record("GHSA-53q9-r3pm-6pq6", "torch",
                     [{"introduced": "0"}, {"fixed": "2.6.0"}], database_severity="CRITICAL")])  # fmt: skip
    import_zip(dump, db)
    return db


def test_scan_all_layers_one_sarif(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    db = _repo(repo)
    result = run("scan", str(repo), "--db", str(db), "--format", "sarif", "-q")
    assert result.returncode == 1, result.stderr
    runs = json.loads(result.stdout)["runs"]
    assert len(runs) == 6
    rules = {r["ruleId"] for run_ in runs for r in run_["results"]}
    for expected in ("MODEL-PICKLE-EXEC", "DEPS-VULN", "SECRET-HUGGINGFACE-TOKEN"):
        assert expected in rules, rules
    assert any(r.startswith("WORKFLOW-") for r in rules)
    assert any(r.startswith("INFRA-DOCKER-") for r in rules)


def test_scan_all_fails_closed_without_a_database(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    _repo(repo)
    result = run(
        "scan", str(repo), "--db", str(tmp_path / "no-db"), "--layers", "deps", "-f", "json"
    )
    assert result.returncode == 2, result.stdout


def test_scan_all_usage_errors(tmp_path: Path) -> None:
    bad = run("scan", str(tmp_path), "--layers", "models,nope")
    assert bad.returncode == 2 and "unknown layer" in bad.stderr and "Traceback" not in bad.stderr
    missing = run("scan", str(tmp_path / "absent"))
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
