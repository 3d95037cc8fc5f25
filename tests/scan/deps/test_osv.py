"""The offline OSV database: atomic import, PEP 440 range evaluation, aliases, withdrawn records."""

from __future__ import annotations

import sqlite3
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secmlops.errors import DatabaseError
from secmlops.findings import Severity
from secmlops.scan.deps.osv import (
    DB_FILE,
    OsvDatabase,
    Verdict,
    check,
    evaluate,
    fetch,
    import_zip,
    merge,
    record_rating,
    smallest_fix,
)
from tests.scan.deps.osv_fixtures import STANDARD, record, write_zip


def _eval(events: list[dict[str, str]], version: str, **kw: object) -> Verdict:
    return evaluate(record("X-1", "pkg", events, **kw), "pkg", version)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("0.9", Verdict.UNAFFECTED),
        ("1.0", Verdict.AFFECTED),
        ("1.4.9", Verdict.AFFECTED),
        ("1.5", Verdict.UNAFFECTED),
        ("1.7", Verdict.UNAFFECTED),
        ("2.0", Verdict.AFFECTED),
        ("2.1.post1", Verdict.UNAFFECTED),  # after last_affected 2.1
        ("3.0", Verdict.UNAFFECTED),
    ],
)
def test_introduced_fixed_last_affected(version: str, expected: Verdict) -> None:
    events = [
        {"introduced": "1.0"},
        {"fixed": "1.5"},
        {"introduced": "2.0"},
        {"last_affected": "2.1"},
    ]
    assert _eval(events, version) is expected


def test_events_out_of_order_are_sorted() -> None:
    events = [{"fixed": "1.5"}, {"introduced": "1.0"}]
    assert _eval(events, "1.2") is Verdict.AFFECTED
    assert _eval(events, "1.6") is Verdict.UNAFFECTED


def test_pre_releases_follow_pep440_order() -> None:
    events = [{"introduced": "0"}, {"fixed": "2.0"}]
    assert _eval(events, "2.0rc1") is Verdict.AFFECTED  # before the final fix
    assert _eval(events, "2.0") is Verdict.UNAFFECTED
    assert _eval(events, "0.0.dev1") is Verdict.AFFECTED  # introduced 0 covers dev releases
    introduced_rc = [{"introduced": "3.0rc1"}, {"fixed": "3.0.1"}]
    assert _eval(introduced_rc, "3.0b9") is Verdict.UNAFFECTED
    assert _eval(introduced_rc, "3.0") is Verdict.AFFECTED


def test_limit_bounds_the_range() -> None:
    events = [{"introduced": "0"}, {"limit": "2.0"}]
    assert _eval(events, "1.9") is Verdict.AFFECTED
    assert _eval(events, "2.0") is Verdict.UNAFFECTED
    assert _eval([{"introduced": "0"}, {"limit": "*"}], "99") is Verdict.AFFECTED


def test_explicit_versions_and_normalised_spellings() -> None:
    r = record("X-2", "pkg", versions=["0.12.01", "1.0"])
    assert evaluate(r, "pkg", "0.12.1") is Verdict.AFFECTED  # 0.12.01 == 0.12.1 under PEP 440
    assert evaluate(r, "pkg", "1.0.0") is Verdict.AFFECTED
    assert evaluate(r, "pkg", "1.1") is Verdict.UNAFFECTED


def test_other_packages_and_ecosystems_do_not_match() -> None:
    r = record("X-3", "pkg", [{"introduced": "0"}])
    assert evaluate(r, "other", "1.0") is Verdict.UNAFFECTED
    r["affected"][0]["package"]["ecosystem"] = "npm"
    assert evaluate(r, "pkg", "1.0") is Verdict.UNAFFECTED


def test_withdrawn_records_are_ignored() -> None:
    r = record("X-4", "pkg", [{"introduced": "0"}], withdrawn="2024-01-01T00:00:00Z")
    assert evaluate(r, "pkg", "1.0") is Verdict.UNAFFECTED


def test_invalid_versions_are_unknown_never_clean() -> None:
    events = [{"introduced": "0"}, {"fixed": "2.0"}]
    assert _eval(events, "1.0.0-custom+weird") is Verdict.UNKNOWN
    assert _eval([{"introduced": "0"}, {"fixed": "not-a-version"}], "1.0") is Verdict.UNKNOWN
    # an explicit list naming the odd string exactly is still a match
    r = record("X-5", "pkg", versions=["1.0.0-custom+weird"])
    assert evaluate(r, "pkg", "1.0.0-custom+weird") is Verdict.AFFECTED


def test_unbounded_entry_affects_every_version() -> None:
    r = record("MAL-1", "pkg")
    assert evaluate(r, "pkg", "0.0.1") is Verdict.AFFECTED


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(0, 30), min_size=2, max_size=6, unique=True).map(sorted),
    st.integers(0, 32),
)
def test_alternating_ranges_match_interval_arithmetic(bounds: list[int], probe: int) -> None:
    """introduced/fixed pairs: affected iff inside one half-open interval [a, b)."""
    events = []
    for i, b in enumerate(bounds):
        events.append({"introduced" if i % 2 == 0 else "fixed": f"1.{b}"})
    inside = any(
        bounds[i] <= probe and (i + 1 >= len(bounds) or probe < bounds[i + 1])
        for i in range(0, len(bounds), 2)
    )
    assert (_eval(events, f"1.{probe}") is Verdict.AFFECTED) == inside


def test_aliases_merge_into_one_advisory_with_max_severity() -> None:
    key = "requests"
    records = [r for r in STANDARD if r["affected"][0]["package"]["name"] == key]
    advisories = merge(records, key)
    assert len(advisories) == 2
    leak = next(a for a in advisories if "CVE-2023-32681" in a.ids)
    assert set(leak.ids) == {"GHSA-j8r2-6x86-q33q", "PYSEC-2023-74", "CVE-2023-32681"}
    assert leak.primary.startswith("GHSA-")
    assert leak.fixed == ("2.31.0",)
    assert leak.score == 6.1 and leak.severity is Severity.MEDIUM


def test_rating_prefers_cvss_then_database_severity() -> None:
    assert (
        record_rating(record("A", "p", database_severity="CRITICAL")).severity is Severity.CRITICAL
    )
    assert record_rating(record("B", "p")).severity is None
    v3 = [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]
    rated = record_rating(record("C", "p", severity=v3, database_severity="LOW"))
    assert rated.score == 9.8 and rated.severity is Severity.CRITICAL


@pytest.fixture
def db_dir(tmp_path: Path) -> Path:
    import_zip(write_zip(tmp_path / "all.zip", STANDARD), tmp_path / "db")
    return tmp_path / "db"


def test_import_and_query(db_dir: Path) -> None:
    db = OsvDatabase(db_dir)
    assert db.info.records == len(STANDARD)
    assert len(db.info.source_sha256) == 64
    result = check(db, "requests", "2.28.0")
    assert {a.primary for a in result.affected} == {"GHSA-j8r2-6x86-q33q", "GHSA-9wx4-h78v-vm56"}
    assert check(db, "requests", "2.32.0").affected == []
    assert check(db, "oldpkg", "0.5").affected == []  # withdrawn
    unknown = check(db, "requests", "1.0.0-custom+weird")
    assert unknown.affected == [] and unknown.unknown
    db.close()


def test_smallest_fix_clears_every_advisory(db_dir: Path) -> None:
    db = OsvDatabase(db_dir)
    assert smallest_fix(db.compiled("requests"), "requests", "2.28.0") == "2.32.0"
    assert smallest_fix(db.compiled("jinja2"), "jinja2", "2.10") == "2.11.3"
    assert smallest_fix(db.compiled("evilpkg"), "evilpkg", "1.0") is None


def test_corrupt_zip_keeps_previous_database(db_dir: Path, tmp_path: Path) -> None:
    before = (db_dir / DB_FILE).read_bytes()
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(DatabaseError, match="not a readable zip") as info:
        import_zip(bad, db_dir)
    assert info.value.hint and "kept" in info.value.hint
    assert (db_dir / DB_FILE).read_bytes() == before
    assert sorted(p.name for p in db_dir.iterdir()) == [DB_FILE]  # no temporary left behind


def test_truncated_record_keeps_previous_database(db_dir: Path, tmp_path: Path) -> None:
    before = (db_dir / DB_FILE).read_bytes()
    zip_path = write_zip(
        tmp_path / "cut.zip", STANDARD[:2], {"PYSEC-9.json": b'{"id": "PYSEC-9", "aff'}
    )
    with pytest.raises(DatabaseError, match=r"PYSEC-9\.json: not a valid JSON record"):
        import_zip(zip_path, db_dir)
    assert (db_dir / DB_FILE).read_bytes() == before
    assert OsvDatabase(db_dir).info.records == len(STANDARD)


@pytest.mark.parametrize(
    "payload",
    [b"[1, 2]", b'{"no": "id"}', b'{"id": "X", "affected": {}}', b"\xff\xfe\x00garbage"],
)
def test_records_that_are_not_osv_are_refused(tmp_path: Path, payload: bytes) -> None:
    zip_path = write_zip(tmp_path / "odd.zip", [], {"X.json": payload})
    with pytest.raises(DatabaseError):
        import_zip(zip_path, tmp_path / "db")
    assert not (tmp_path / "db" / DB_FILE).exists()


def test_empty_archive_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DatabaseError, match="no PyPI OSV records"):
        import_zip(write_zip(tmp_path / "empty.zip", []), tmp_path / "db")


def test_truncated_zip_file_is_refused(tmp_path: Path) -> None:
    good = write_zip(tmp_path / "all.zip", STANDARD)
    cut = tmp_path / "cut.zip"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(DatabaseError):
        import_zip(cut, tmp_path / "db")


def test_missing_and_damaged_database(tmp_path: Path) -> None:
    with pytest.raises(DatabaseError, match="no vulnerability database"):
        OsvDatabase(tmp_path)
    (tmp_path / DB_FILE).write_bytes(b"SQLite format 3\x00" + b"\x00" * 100)
    with pytest.raises(DatabaseError, match="damaged"):
        OsvDatabase(tmp_path)
    sqlite3.connect(tmp_path / "other.sqlite3").close()


def test_fetch_fails_fast_and_clearly_without_a_server(tmp_path: Path) -> None:
    with pytest.raises(DatabaseError, match="cannot download") as info:
        fetch(tmp_path, "http://127.0.0.1:9/all.zip", timeout=2)
    assert info.value.hint and "--from" in info.value.hint
    assert not (tmp_path / DB_FILE).exists()
    with pytest.raises(DatabaseError, match="refusing"):
        fetch(tmp_path, "ftp://example.invalid/all.zip")


def test_non_pypi_records_are_not_stored(tmp_path: Path) -> None:
    npm = record("GHSA-npm", "left-pad", [{"introduced": "0"}])
    npm["affected"][0]["package"]["ecosystem"] = "npm"
    import_zip(write_zip(tmp_path / "all.zip", [npm, STANDARD[0]]), tmp_path / "db")
    assert OsvDatabase(tmp_path / "db").info.records == 1
    with zipfile.ZipFile(tmp_path / "all.zip") as z:
        assert len(z.namelist()) == 2


_VERSIONS = st.builds(
    lambda release, pre, post, dev, local: release + pre + post + dev + local,
    st.lists(st.sampled_from(["0", "1", "2", "10", "00", "01"]), min_size=1, max_size=4).map(
        ".".join
    ),
    st.sampled_from(["", "a1", "b0", "rc1", "RC2", "-alpha1"]),
    st.sampled_from(["", ".post0", ".post1", "-1", "post2"]),
    st.sampled_from(["", ".dev0", ".dev3"]),
    st.sampled_from(["", "+local", "+Ubuntu.1", "+0"]),
)


@settings(max_examples=120, deadline=None)
@given(_VERSIONS, _VERSIONS)
def test_listed_versions_match_exactly_when_pep440_says_equal(a: str, b: str) -> None:
    from packaging.version import Version

    r = record("X-9", "pkg", versions=[a])
    assert (evaluate(r, "pkg", b) is Verdict.AFFECTED) == (Version(a) == Version(b))
