"""--fix: the smallest safe upgrade, as a diff that is printed and never applied."""

from __future__ import annotations

from pathlib import Path

from secmlops.scan.deps.engine import DepsSettings, scan_deps
from secmlops.scan.deps.fix import Upgrade, upgrade_diff
from secmlops.scan.deps.inventory import Dependency


def test_requirements_diff_is_minimal_and_not_applied(tmp_path: Path, osv_db: Path) -> None:
    req = tmp_path / "requirements.txt"
    text = "requests==2.28.0  # pinned\njinja2 == 2.10 ; python_version >= '3'\nsix==1.16.0\n"
    req.write_text(text)
    result = scan_deps([req], DepsSettings(db_dir=osv_db))
    diff = upgrade_diff(result.upgrades)
    assert "-requests==2.28.0  # pinned\n" in diff and "+requests==2.32.0  # pinned\n" in diff
    assert "-jinja2 == 2.10 ; python_version >= '3'\n" in diff
    assert "+jinja2 == 2.11.3 ; python_version >= '3'\n" in diff
    assert "six" not in diff.replace(" six==1.16.0", "")
    assert diff.startswith(f"--- {req}\n+++ {req}\n")
    assert req.read_text() == text  # never applied


def test_pyproject_pep621_and_poetry_pins(tmp_path: Path, osv_db: Path) -> None:
    py = tmp_path / "pyproject.toml"
    py.write_text(
        '[project]\nname = "x"\ndependencies = ["requests==2.28.0"]\n'
        '[tool.poetry.dependencies]\njinja2 = "2.10"\n'
    )
    result = scan_deps([py], DepsSettings(db_dir=osv_db))
    diff = upgrade_diff(result.upgrades)
    assert '+dependencies = ["requests==2.32.0"]' in diff
    assert '+jinja2 = "2.11.3"' in diff


def test_lockfiles_get_commands_not_diffs(tmp_path: Path, osv_db: Path) -> None:
    lock = tmp_path / "uv.lock"
    lock.write_text('version = 1\n[[package]]\nname = "requests"\nversion = "2.28.0"\n')
    result = scan_deps([lock], DepsSettings(db_dir=osv_db))
    assert (
        upgrade_diff(result.upgrades) == f"# {lock}: uv lock --upgrade-package requests==2.32.0\n"
    )


def test_no_fixed_version_means_no_upgrade(tmp_path: Path, osv_db: Path) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text("evilpkg==1.0\n")
    assert scan_deps([req], DepsSettings(db_dir=osv_db)).upgrades == []


def test_unreadable_file_falls_back_to_a_comment(tmp_path: Path) -> None:
    dep = Dependency("requests", "2.28.0", "==2.28.0", str(tmp_path / "gone.txt"), 1)
    assert (
        upgrade_diff([Upgrade(dep, "2.32.0")])
        == f"# {tmp_path / 'gone.txt'}: set requests==2.32.0\n"
    )
