"""scan_deps end to end: every rule catches its case, passes the look-alike, fails closed."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest

from secmlops.errors import UsageError
from secmlops.findings import Finding, Severity
from secmlops.scan.deps.engine import DepsSettings, classify, discover, scan_deps
from secmlops.scan.deps.osv import DB_FILE
from secmlops.scan.deps.rules import ALL

HASH = "--hash=sha256:" + "a" * 64


def _scan(osv_db: Path, *paths: Path, **kw: object) -> list[Finding]:
    result = scan_deps(list(paths), DepsSettings(db_dir=osv_db, **kw))  # type: ignore[arg-type]
    assert result.report.errors == [], result.report.errors
    return result.report.findings


def _req(tmp_path: Path, text: str, name: str = "requirements.txt") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _ids(findings: list[Finding]) -> list[str]:
    return sorted(f.rule_id for f in findings)


def test_vulnerable_pin_one_finding_per_vulnerability(tmp_path: Path, osv_db: Path) -> None:
    findings = _scan(osv_db, _req(tmp_path, f"requests==2.28.0 {HASH}\n"))
    vulns = [f for f in findings if f.rule_id == "DEPS-VULN"]
    assert len(vulns) == 2  # PYSEC-2023-74 and GHSA-j8r2 are one vulnerability
    leak = next(f for f in vulns if "CVE-2023-32681" in f.message)
    assert leak.location.package == "requests==2.28.0" and leak.location.line == 1
    assert leak.severity is Severity.MEDIUM and leak.evidence["cvss_score"] == 6.1
    assert set(leak.evidence["aliases"]) == {"PYSEC-2023-74", "CVE-2023-32681"}
    assert leak.evidence["fix_version"] == "2.32.0"
    other = next(f for f in vulns if f is not leak)
    assert other.severity is Severity.MEDIUM  # database severity MODERATE


def test_fixed_pin_is_clean(tmp_path: Path, osv_db: Path) -> None:
    assert _scan(osv_db, _req(tmp_path, f"requests==2.32.0 {HASH}\njinja2==3.1.4 {HASH}\n")) == []


def test_unrated_vulnerability_is_high(tmp_path: Path, osv_db: Path) -> None:
    findings = _scan(osv_db, _req(tmp_path, f"jinja2==2.10 {HASH}\n"))
    assert [(f.rule_id, f.severity) for f in findings] == [("DEPS-VULN", Severity.HIGH)]


def test_odd_version_is_unknown_not_clean(tmp_path: Path, osv_db: Path) -> None:
    findings = _scan(osv_db, _req(tmp_path, f"requests===1.0.0-custom+weird {HASH}\n"))
    assert _ids(findings) == ["DEPS-VERSION-UNKNOWN"]
    # the same odd version of a package without advisories has nothing to be unknown about
    assert _scan(osv_db, _req(tmp_path, f"quiet===1.0.0-custom+weird {HASH}\n", "r2.txt")) == []


def test_malicious_records_pinned_and_unpinned(tmp_path: Path, osv_db: Path) -> None:
    findings = _scan(osv_db, _req(tmp_path, f"torchtriton==3.0.0 {HASH}\nevilpkg>=1 {HASH}\n"))
    assert _ids(findings) == [
        "DEPS-COMPROMISED",
        "DEPS-MALICIOUS",
        "DEPS-MALICIOUS",
        "DEPS-UNPINNED",
    ]
    assert all(f.severity is Severity.CRITICAL for f in findings if f.rule_id != "DEPS-UNPINNED")


def test_compromised_list_works_without_mal_records(tmp_path: Path, osv_db: Path) -> None:
    findings = _scan(
        osv_db, _req(tmp_path, f"ultralytics==8.3.41 {HASH}\nultralytics==8.3.40 {HASH}\n")
    )
    assert [(f.rule_id, f.location.line) for f in findings] == [("DEPS-COMPROMISED", 1)]


def test_torch_is_fine_torchtriton_is_not(tmp_path: Path, osv_db: Path) -> None:
    assert _scan(osv_db, _req(tmp_path, f"torch==2.3.0 {HASH}\n")) == []


def test_typosquat_and_look_alike(tmp_path: Path, osv_db: Path) -> None:
    findings = _scan(osv_db, _req(tmp_path, f"reqeusts==2.31.0 {HASH}\nrequests==2.32.3 {HASH}\n"))
    assert [(f.rule_id, f.location.package) for f in findings] == [
        ("DEPS-TYPOSQUAT", "reqeusts==2.31.0")
    ]


def test_unpinned_and_no_hashes(tmp_path: Path, osv_db: Path) -> None:
    findings = _scan(osv_db, _req(tmp_path, "numpy>=1.0\nsix==1.16.0\n"))
    assert _ids(findings) == ["DEPS-NO-HASHES", "DEPS-UNPINNED"]
    no_hash = next(f for f in findings if f.rule_id == "DEPS-NO-HASHES")
    assert no_hash.severity is Severity.LOW and no_hash.evidence["without_hash"] == 2


def test_pyproject_beside_a_lockfile_is_not_unpinned(tmp_path: Path, osv_db: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\ndependencies = ["numpy>=1"]\n')
    assert _ids(_scan(osv_db, tmp_path)) == ["DEPS-UNPINNED"]
    (tmp_path / "uv.lock").write_text(
        'version = 1\n[[package]]\nname = "numpy"\nversion = "1.26.4"\n'
        'sdist = { url = "https://x", hash = "sha256:aa" }\n'
    )
    assert _scan(osv_db, tmp_path) == []


def test_index_risks(tmp_path: Path, osv_db: Path) -> None:
    text = "--extra-index-url http://corp/simple\n--trusted-host corp\n"
    findings = _scan(osv_db, _req(tmp_path, text))
    assert _ids(findings) == ["DEPS-EXTRA-INDEX", "DEPS-HTTP-INDEX", "DEPS-TRUSTED-HOST"]
    assert _scan(osv_db, _req(tmp_path, "--index-url https://corp/simple\n", "r2.txt")) == []


def test_dependency_confusion(tmp_path: Path, osv_db: Path) -> None:
    req = _req(tmp_path, f"--extra-index-url https://corp/simple\ncorp-utils==1.0 {HASH}\n")
    findings = _scan(osv_db, req, private_names=frozenset({"corp-utils"}))
    confusion = [f for f in findings if f.rule_id == "DEPS-CONFUSION"]
    assert len(confusion) == 1 and confusion[0].severity is Severity.CRITICAL
    # only one index: the internal name cannot be shadowed from PyPI by pip
    single = _req(tmp_path, f"--index-url https://corp/simple\ncorp-utils==1.0 {HASH}\n", "r2.txt")
    findings = _scan(osv_db, single, private_names=frozenset({"corp-utils"}))
    assert [f.severity for f in findings if f.rule_id == "DEPS-CONFUSION"] == [Severity.MEDIUM]


def test_malformed_line_reported_with_its_number(tmp_path: Path, osv_db: Path) -> None:
    findings = _scan(osv_db, _req(tmp_path, f"six==1.16.0 {HASH}\nnot valid!!\n"))
    assert [(f.rule_id, f.location.line) for f in findings] == [("DEPS-MALFORMED", 2)]


def test_missing_database_fails_closed(tmp_path: Path) -> None:
    req = _req(tmp_path, f"requests==2.32.0 {HASH}\n")
    result = scan_deps([req], DepsSettings(db_dir=tmp_path / "none"))
    assert [f.rule_id for f in result.report.findings] == ["DEPS-DB-MISSING"]
    assert result.report.errors and result.report.exit_code(Severity.CRITICAL) == 2


def test_damaged_database_fails_closed(tmp_path: Path, osv_db: Path) -> None:
    with sqlite3.connect(osv_db / DB_FILE) as db:
        db.execute("DROP TABLE meta")
    result = scan_deps([_req(tmp_path, "six==1.0\n")], DepsSettings(db_dir=osv_db))
    assert result.report.exit_code(Severity.CRITICAL) == 2


def test_stale_database_is_a_finding(tmp_path: Path, osv_db: Path) -> None:
    old = time.time() - 30 * 86400
    with sqlite3.connect(osv_db / DB_FILE) as db:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(old))
        db.execute("UPDATE meta SET value = ? WHERE key = 'imported_at'", (stamp,))
    req = _req(tmp_path, f"six==1.16.0 {HASH}\n")
    findings = _scan(osv_db, req)
    assert [(f.rule_id, f.severity) for f in findings] == [("DEPS-DB-STALE", Severity.HIGH)]
    findings = _scan(osv_db, req, max_db_age_days=60.0)
    assert findings == []
    findings = _scan(osv_db, req, stale_severity=Severity.LOW)
    assert findings[0].severity is Severity.LOW


def test_no_database_needed_without_packages(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM python:3.11\nRUN pip install --trusted-host x y\n")
    result = scan_deps([tmp_path], DepsSettings(db_dir=tmp_path / "none"))
    assert [f.rule_id for f in result.report.findings] == ["DEPS-TRUSTED-HOST"]
    assert result.report.errors == []


def test_broken_lockfile_fails_closed(tmp_path: Path, osv_db: Path) -> None:
    (tmp_path / "poetry.lock").write_bytes(b"\x00\x01\x02")
    result = scan_deps([tmp_path], DepsSettings(db_dir=osv_db))
    assert result.report.exit_code(Severity.CRITICAL) == 2


def test_discovery_skips_virtualenvs_and_finds_every_kind(tmp_path: Path) -> None:
    for rel in [
        "requirements.txt",
        "requirements/dev.in",
        "pyproject.toml",
        "uv.lock",
        "pylock.dev.toml",
        "Dockerfile.gpu",
        ".github/workflows/ci.yml",
        "pip.conf",
        ".venv/requirements.txt",
        "node_modules/x/requirements.txt",
        "notes.txt",
    ]:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    found = sorted(os.path.relpath(p, tmp_path) for p, _ in discover(tmp_path))
    assert found == sorted(
        [
            ".github/workflows/ci.yml",
            "Dockerfile.gpu",
            "pip.conf",
            "pylock.dev.toml",
            "pyproject.toml",
            "requirements.txt",
            "requirements/dev.in",
            "uv.lock",
        ]
    )
    assert classify(Path("x/pylock.dev.toml")) == "pylock.toml"


def test_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        scan_deps([tmp_path / "nope"], DepsSettings())


def test_environment_scan(osv_db: Path) -> None:
    result = scan_deps([], DepsSettings(db_dir=osv_db, environment=True))
    assert result.report.errors == []
    assert not [
        f for f in result.report.findings if f.rule_id in ("DEPS-UNPINNED", "DEPS-NO-HASHES")
    ]


def test_every_rule_is_well_formed() -> None:
    for rule_id, rule in ALL.items():
        assert rule_id == rule.rule_id and rule_id.startswith("DEPS-")
        assert rule.title and rule.rationale and rule.fix and rule.controls


def test_project_with_advisories_is_established_not_a_typosquat(
    tmp_path: Path, osv_db: Path
) -> None:
    from secmlops.scan.deps.osv import import_zip
    from tests.scan.deps.osv_fixtures import record, write_zip

    req = _req(tmp_path, f"pyamf==0.8.0 {HASH}\n")  # one edit from the popular pyaml
    assert _ids(_scan(osv_db, req)) == ["DEPS-TYPOSQUAT"]
    history = [record("PYSEC-2013-1", "pyamf", [{"introduced": "0"}, {"fixed": "0.6.2"}])]
    import_zip(write_zip(tmp_path / "h.zip", history), tmp_path / "hdb")
    assert _scan(tmp_path / "hdb", req) == []
