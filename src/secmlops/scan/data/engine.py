"""`scan data`: read every table under the given paths and run the data checks on each.

Schema validation runs when a schema is given; PII checks and poisoning checks run when their
modules are installed (and, for poisoning, when a label column is named). A file that cannot be
read or checked is a DATA-READ-ERROR finding plus a failure: the gate exits 2, never "clean".
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from secmlops.errors import DataError, Error
from secmlops.findings import Location, Report, Rule, ScanFailure
from secmlops.scan.data import rules
from secmlops.scan.data.schema import DataSchema, validate_frame
from secmlops.scan.data.tables import DEFAULT_MAX_COLUMNS, load_table, table_files

PII_MODULE = "secmlops.scan.data.pii"
POISONING_MODULE = "secmlops.scan.data.poisoning"
_RULE_CATALOGUES = (
    "secmlops.scan.data.rules",
    "secmlops.scan.data.pii_rules",
    "secmlops.scan.data.stats_rules",
)

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True, slots=True)
class DataScanSettings:
    """What `scan data` checks and how far it reads."""

    schema: DataSchema | None = None
    reference: Any = None  # a pandas DataFrame of trusted data, for checks that compare
    label: str | None = None
    pii: bool = True
    encoding: str | None = None
    max_columns: int = DEFAULT_MAX_COLUMNS
    max_rows: int | None = None
    # settings of the layer checks by section, as the configuration file gives them
    # ({"pii": {"column_share": 0.3}, "poisoning": {...}}): see layer_settings
    layers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def layer_settings(module: ModuleType, class_name: str, values: Mapping[str, Any]) -> Any:
    """The settings class `class_name` of a check module, built from a plain dict of values
    (a section of secmlops.toml; unknown keys and bad values are refused there)."""
    return getattr(module, class_name)(**values)


def optional_module(name: str) -> ModuleType | None:
    """Import a check module that may not be installed; a broken module still raises."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        return None


def data_rules() -> dict[str, Rule]:
    """Every rule a data scan can report (for the report's rule metadata)."""
    found: dict[str, Rule] = {}
    for name in _RULE_CATALOGUES:
        module = optional_module(name)
        if module is not None:
            found.update(getattr(module, "ALL", {}))
    return found


def scan_data(
    paths: Sequence[Path], settings: DataScanSettings, progress: Progress | None = None
) -> Report:
    """Run the data checks on every table file under `paths`."""
    started = time.perf_counter()
    report = Report(kind="data", rules=data_rules())
    files: list[Path] = []
    for path in paths:
        try:
            found = table_files(path)
        except DataError as exc:
            _fail(report, Location(path=str(path)), exc)
            continue
        if not found:
            _fail(report, Location(path=str(path)), DataError("no table files found"))
        files.extend(found)
    pii = optional_module(PII_MODULE) if settings.pii else None
    poisoning = optional_module(POISONING_MODULE) if settings.label else None
    if settings.label and poisoning is None:
        report.errors.append(
            ScanFailure(Location(), "poisoning checks are not installed; --label was not used")
        )
    for done, file in enumerate(files, start=1):
        if progress is not None:
            progress(str(file), done - 1, len(files))
        _scan_file(report, file, settings, pii, poisoning)
    if progress is not None and files:
        progress(str(files[-1]), len(files), len(files))
    report.seconds = time.perf_counter() - started
    return report


def _scan_file(
    report: Report,
    file: Path,
    settings: DataScanSettings,
    pii: ModuleType | None,
    poisoning: ModuleType | None,
) -> None:
    location = Location(path=str(file))
    try:
        table = load_table(
            file,
            encoding=settings.encoding,
            max_columns=settings.max_columns,
            max_rows=settings.max_rows,
        )
    except DataError as exc:
        _fail(report, location, exc)
        return
    report.files_scanned += 1
    report.bytes_scanned += file.stat().st_size
    if table.truncated:
        report.add(
            rules.READ_PARTIAL.finding(
                location,
                f"only the first {table.rows} rows were read and checked",
                {"rows_checked": table.rows},
            )
        )
    checks: list[tuple[str, Callable[[], list[Any]]]] = []
    if settings.schema is not None:
        schema = settings.schema
        checks.append(("schema", lambda: validate_frame(table.frame, schema, location)))
    if pii is not None:
        pii_settings = layer_settings(pii, "PiiSettings", settings.layers.get("pii", {}))
        checks.append(
            ("PII", lambda: pii.scan_frame_pii(table.frame, location, settings=pii_settings))
        )
    if poisoning is not None:
        poison_settings = layer_settings(
            poisoning, "PoisonSettings", settings.layers.get("poisoning", {})
        )
        checks.append(
            (
                "poisoning",
                lambda: poisoning.scan_poisoning(
                    table.frame,
                    label=settings.label,
                    reference=settings.reference,
                    location=location,
                    settings=poison_settings,
                ),
            )
        )
    for name, check in checks:
        try:
            report.extend(check())
        except Error as exc:
            _fail(report, location, exc, f"{name} checks could not run: ")


def _fail(report: Report, location: Location, exc: Error, prefix: str = "") -> None:
    # The location already names the file; the error text repeats it for one-line CLI errors.
    text = exc.message.removeprefix(f"{location.path}: ")
    message = prefix + text + (f" ({exc.hint})" if exc.hint else "")
    report.add(rules.READ_ERROR.finding(location, message))
    report.errors.append(ScanFailure(location, message))
