"""A small imported OSV database shared by the tests of this folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from secmlops.scan.deps.osv import import_zip
from tests.scan.deps.osv_fixtures import STANDARD, write_zip


@pytest.fixture
def osv_db(tmp_path: Path) -> Path:
    import_zip(write_zip(tmp_path / "all.zip", STANDARD), tmp_path / "osv-db")
    return tmp_path / "osv-db"
