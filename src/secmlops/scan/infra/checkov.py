"""checkov (the `[iac]` extra) as an optional second opinion: run it, convert its JSON to findings.

checkov is large and pulls in much of the cloud SDK world, so it is never imported: it runs in a
subprocess (`checkov` on PATH, else `python -m checkov.main` when the module is installed) with
JSON output, and its failed checks become findings with rule ids `IAC-CHECKOV-<check id>`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from secmlops.errors import ScanError
from secmlops.findings import Finding, Location, Rule, ScanFailure, Severity

TIMEOUT_SECONDS = 900
_CONTROLS = ("NIST-AI-RMF:MEASURE-2.7", "ISO42001:A.6.2.6")


@dataclass(frozen=True, slots=True)
class CheckovResult:
    """What checkov reported: failed checks as findings, unparsable files as failures."""

    findings: tuple[Finding, ...]
    errors: tuple[ScanFailure, ...]
    rules: dict[str, Rule]


def checkov_command() -> list[str] | None:
    """How to run checkov here, or None when it is not installed."""
    exe = shutil.which("checkov")
    if exe:
        return [exe]
    if importlib.util.find_spec("checkov") is not None:
        return [sys.executable, "-m", "checkov.main"]
    return None


def rule_id(check_id: str) -> str:
    """CKV_AWS_20 -> IAC-CHECKOV-CKV-AWS-20 (our ids are upper case and dash-separated)."""
    return "IAC-CHECKOV-" + "".join(c if c.isalnum() else "-" for c in check_id.upper())


def _severity(value: Any) -> Severity:
    # Open-source checkov leaves severity empty (it comes from the commercial platform).
    if isinstance(value, str) and value.strip().upper() in Severity.__members__:
        return Severity[value.strip().upper()]
    return Severity.MEDIUM


def _blocks(data: Any) -> Iterable[dict[str, Any]]:
    """checkov prints one object per framework, a list of them, or a bare summary."""
    items = data if isinstance(data, list) else [data]
    for item in items:
        if not isinstance(item, dict):
            raise ScanError("checkov output is not a JSON object or list of objects")
        yield item


def _display(check: dict[str, Any], base: Path | None) -> str:
    path = str(check.get("file_abs_path") or check.get("file_path") or "")
    if base is not None and path:
        try:
            return str(base / Path(path).resolve().relative_to(base.resolve()))
        except ValueError:
            return path
    return path


def convert_checkov_output(text: str, base: Path | None = None) -> CheckovResult:
    """Findings and failures from checkov's `-o json` output; ScanError when it is not that."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ScanError(f"checkov did not print JSON: {exc}") from None
    findings: list[Finding] = []
    errors: list[ScanFailure] = []
    rules: dict[str, Rule] = {}
    for block in _blocks(data):
        results = block.get("results")
        results = results if isinstance(results, dict) else {}
        for check in results.get("failed_checks") or []:
            if not isinstance(check, dict):
                raise ScanError("checkov output has a failed check that is not an object")
            check_id = str(check.get("check_id", "UNKNOWN"))
            rid = rule_id(check_id)
            guideline = str(check.get("guideline") or "")
            rule = rules.setdefault(
                rid,
                Rule(
                    rid,
                    _severity(check.get("severity")),
                    str(check.get("check_name") or check_id),
                    f"checkov check {check_id}.",
                    f"See {guideline}"
                    if guideline
                    else f"See the checkov documentation of {check_id}.",
                    _CONTROLS,
                ),
            )
            lines = check.get("file_line_range")
            first = lines[0] if isinstance(lines, list) and lines else None
            line = first if isinstance(first, int) and first > 0 else None
            findings.append(
                rule.finding(
                    Location(path=_display(check, base), line=line),
                    f"{check.get('resource', '?')}: {rule.title}",
                    {
                        "check_id": check_id,
                        "check_type": block.get("check_type"),
                        "guideline": guideline,
                    },
                    severity=_severity(check.get("severity")),
                )
            )
        for path in results.get("parsing_errors") or []:
            errors.append(
                ScanFailure(Location(path=str(path)), "checkov could not parse this file")
            )
    return CheckovResult(tuple(findings), tuple(errors), rules)


def run_checkov(paths: Sequence[Path], timeout: float = TIMEOUT_SECONDS) -> CheckovResult:
    """Run checkov over `paths` and convert its results; ScanError when it is missing or fails."""
    command = checkov_command()
    if command is None:
        raise ScanError(
            "--checkov: checkov is not installed",
            hint="pip install 'secmlops[iac]' (or put checkov on PATH); the built-in rules ran",
        )
    findings: list[Finding] = []
    errors: list[ScanFailure] = []
    rules: dict[str, Rule] = {}
    for target in paths:
        flag = "-d" if target.is_dir() else "-f"
        args = [*command, flag, str(target), "-o", "json", "--soft-fail", "--skip-download"]
        # No telemetry, no platform calls: the scan stays offline.
        env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_ALLOW_TELEMETRY": "false"}
        try:
            done = subprocess.run(  # noqa: S603 - fixed argv, no shell
                args, capture_output=True, text=True, timeout=timeout, env=env, check=False
            )
        except subprocess.TimeoutExpired:
            raise ScanError(f"checkov did not finish within {timeout:.0f} s on {target}") from None
        except OSError as exc:
            raise ScanError(f"could not start checkov: {exc.strerror or exc}") from None
        if done.returncode != 0 or not done.stdout.strip():
            tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise ScanError(f"checkov failed on {target} (exit {done.returncode}): {tail}")
        result = convert_checkov_output(done.stdout, target if target.is_dir() else None)
        findings.extend(result.findings)
        errors.extend(result.errors)
        rules.update(result.rules)
    return CheckovResult(tuple(findings), tuple(errors), rules)
