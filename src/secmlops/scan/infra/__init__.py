"""Infrastructure-as-code checks: Kubernetes manifests, Dockerfiles and Terraform.

`scan_infra(paths)` walks the paths, recognises each file by content where it can (a Dockerfile
by its first instruction, a manifest by apiVersion and kind) and by name where it must (.tf), and
returns one Report. Files it recognises but cannot read or parse are failures (exit 2).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from secmlops.errors import ScanError
from secmlops.findings import Location, Report, ScanFailure
from secmlops.scan.infra import rules
from secmlops.scan.infra.dockerfile import check_dockerfile, looks_like_dockerfile
from secmlops.scan.infra.files import (
    MAX_TEXT_BYTES,
    read_text,
    require_paths,
    scan_failure,
    walk_files,
)
from secmlops.scan.infra.kubernetes import check_manifests, is_kubernetes_object
from secmlops.scan.infra.terraform import Block, check_module, parse_terraform
from secmlops.scan.infra.yaml_docs import load_yaml_documents

__all__ = ["scan_infra"]

YAML_SUFFIXES = (".yaml", ".yml")
SNIFF_BYTES = 4096
# A malformed YAML file is only ours to fail on when it looks like a Kubernetes object.
LOOKS_KUBERNETES = re.compile(
    r"^\s*[\"']?apiVersion[\"']?\s*:.*^\s*[\"']?kind[\"']?\s*:", re.M | re.S
)
LOOKS_KUBERNETES_ANY_ORDER = re.compile(
    r"^\s*[\"']?kind[\"']?\s*:.*^\s*[\"']?apiVersion", re.M | re.S
)


def _head(path: Path) -> str:
    try:
        with path.open("rb") as f:
            return f.read(SNIFF_BYTES).decode("utf-8", "replace")
    except OSError:
        return ""


def _is_helm_template(path: Path) -> bool:
    """Files under templates/ of a Helm chart are Go templates, not manifests, until rendered."""
    return any(
        parent.name == "templates" and (parent.parent / "Chart.yaml").is_file()
        for parent in path.parents
    )


def _kind(path: Path, explicit: bool) -> str | None:
    """terraform, kubernetes, dockerfile or None (not an infrastructure file)."""
    if path.suffix == ".tf":
        return "terraform"
    if path.suffix in YAML_SUFFIXES:
        return None if _is_helm_template(path) else "kubernetes"
    if path.suffix == ".json":
        head = _head(path)
        return "kubernetes" if '"apiVersion"' in head and '"kind"' in head else None
    try:
        small = path.stat().st_size <= MAX_TEXT_BYTES
    except OSError:
        small = explicit
    if looks_like_dockerfile(path.name, _head(path) if small else ""):
        return "dockerfile"
    return None


class _InfraScan:
    """One run: the report, the Terraform modules gathered by folder."""

    def __init__(self) -> None:
        self.report = Report(kind="infra", rules=dict(rules.ALL))
        self.modules: dict[Path, list[Block]] = {}

    def fail(self, path: Path, message: str) -> None:
        self.report.errors.append(ScanFailure(Location(path=str(path)), message))

    def check(self, path: Path, kind: str) -> None:
        display = str(path)
        text = read_text(path)
        self.report.bytes_scanned += len(text)
        if kind == "terraform":
            self.modules.setdefault(path.parent, []).extend(parse_terraform(text, display))
        elif kind == "dockerfile":
            self.report.extend(check_dockerfile(text, display))
        else:
            try:
                documents = load_yaml_documents(text)
            except ScanError:
                if LOOKS_KUBERNETES.search(text) or LOOKS_KUBERNETES_ANY_ORDER.search(text):
                    raise
                self.report.files_skipped += 1  # malformed YAML of some other tool
                return
            if not any(is_kubernetes_object(d) for d in documents):
                self.report.files_skipped += 1
                return
            self.report.extend(check_manifests(documents, display))
        self.report.files_scanned += 1


def scan_infra(
    paths: Sequence[Path],
    progress: Callable[[str, int, int], None] | None = None,
    *,
    checkov: bool = False,
) -> Report:
    """Check the infrastructure files under `paths` with the built-in rules (and checkov)."""
    started = time.perf_counter()
    require_paths(paths)
    run = _InfraScan()
    explicit = {p for p in paths if not p.is_dir()}
    files = list(walk_files(paths))
    for done, path in enumerate(files, start=1):
        kind = _kind(path, path in explicit)
        if kind is None:
            if path in explicit:
                run.fail(path, "not a Kubernetes manifest, Dockerfile or Terraform file")
            else:
                run.report.files_skipped += 1
        else:
            try:
                run.check(path, kind)
            except ScanError as exc:
                run.report.errors.append(scan_failure(Location(path=str(path)), exc))
        if progress is not None:
            progress(str(path), done, len(files))
    for blocks in run.modules.values():
        run.report.extend(check_module(blocks))
    if checkov:
        from secmlops.scan.infra.checkov import run_checkov

        try:
            result = run_checkov(paths)
        except ScanError as exc:
            # The built-in findings stand; the missing second opinion makes the run incomplete.
            run.report.errors.append(scan_failure(Location(path="--checkov"), exc))
        else:
            run.report.extend(result.findings)
            run.report.errors.extend(result.errors)
            run.report.rules.update(result.rules)
    run.report.errors.sort(key=lambda e: e.location.path or "")
    run.report.seconds = time.perf_counter() - started
    return run.report
