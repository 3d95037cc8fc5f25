"""The AI bill of materials: a CycloneDX 1.6 ML-BOM of a model, its data and its packages.

What the files prove (digests, sizes, formats sniffed from bytes) is derived; what only people
know (task, architecture, metrics, intended use, considerations) comes from the model-card file
and nothing else. Every BOM is validated against the CycloneDX 1.6 JSON schema before it is
returned: an invalid BOM is an error, never an output.
"""

from __future__ import annotations

import functools
import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from secmlops import __version__
from secmlops.errors import EvidenceError
from secmlops.evidence import bom_rules
from secmlops.evidence.attest import Progress, artifact_files, file_digest
from secmlops.evidence.bom_card import (
    RECOMMENDED_FIELDS,
    CardDataset,
    LoadedCard,
    ModelCardFile,
    missing_fields,
)
from secmlops.evidence.packages import Package
from secmlops.findings import Finding, Location, Report, Severity

if TYPE_CHECKING:
    from cyclonedx.validation.json import JsonStrictValidator

SPEC_VERSION = "1.6"
MODEL_REF = "model"


@dataclass(frozen=True, slots=True)
class BomResult:
    """A schema-valid BOM, how complete its model card is, and the findings about it."""

    bom: dict[str, Any]
    completeness: float  # share of RECOMMENDED_FIELDS the card fills, 0..1
    missing: tuple[str, ...]
    report: Report

    def to_json(self) -> str:
        return json.dumps(self.bom, indent=2, ensure_ascii=False) + "\n"


@dataclass(frozen=True, slots=True)
class _FileFacts:
    name: str  # path inside the model or dataset folder (or the file name)
    sha256: str
    size: int
    formats: tuple[str, ...]


def sniff_formats(path: Path) -> tuple[str, ...]:
    """Model formats the bytes of `path` match (the model scanner's sniffers; never the name)."""
    from secmlops.scan.models.engine import Blob
    from secmlops.scan.models.formats import SCANNERS

    try:
        blob = Blob.from_path(path, str(path))
        return tuple(s.name for s in SCANNERS if s.sniff(blob))
    except (OSError, ValueError, IndexError, KeyError, EOFError):
        return ()  # unreadable as a model: the digest still identifies it


def _facts(path: Path, *, sniff: bool, progress: Progress | None) -> list[_FileFacts]:
    facts = []
    files = list(artifact_files(path))
    for file, name in files:
        rel = name if path.is_file() else name.split("/", 1)[1]
        try:
            size = file.stat().st_size
        except OSError as exc:
            raise EvidenceError(f"cannot read {file}: {exc.strerror or exc}") from None
        facts.append(_FileFacts(rel, file_digest(file), size, sniff_formats(file) if sniff else ()))
        if progress is not None:
            progress(str(file), len(facts), len(files))
    return facts


def _sha256(content: str) -> list[dict[str, str]]:
    return [{"alg": "SHA-256", "content": content}]


def _prop(name: str, value: object) -> dict[str, str]:
    return {"name": f"secmlops:{name}", "value": str(value)}


def _file_properties(facts: _FileFacts) -> list[dict[str, str]]:
    props = [_prop("size", facts.size)]
    props += [_prop("format", f) for f in facts.formats]
    return props


def _artifact_component(
    kind: str, ref: str, name: str, path: Path, *, sniff: bool, progress: Progress | None = None
) -> tuple[dict[str, Any], int, int]:
    """A file becomes one component with its hash; a folder one component with file children."""
    facts = _facts(path, sniff=sniff, progress=progress)
    if not facts:
        raise EvidenceError(f"{path} holds no files")
    component: dict[str, Any] = {"type": kind, "bom-ref": ref, "name": name}
    if path.is_file():
        component["hashes"] = _sha256(facts[0].sha256)
        component["properties"] = _file_properties(facts[0])
    else:
        component["components"] = [
            {
                "type": "file",
                "bom-ref": f"{ref}/file/{f.name}",
                "name": f.name,
                "hashes": _sha256(f.sha256),
                "properties": _file_properties(f),
            }
            for f in facts
        ]
        component["properties"] = [_prop("files", len(facts))]
    return component, len(facts), sum(f.size for f in facts)


def _license(text: str) -> list[dict[str, Any]]:
    from cyclonedx.spdx import fixup_id, is_expression

    spdx = fixup_id(text)
    if spdx:
        return [{"license": {"id": spdx}}]
    if is_expression(text) and " " in text:
        return [{"expression": text}]
    return [{"license": {"name": text}}]


def _model_card(card: ModelCardFile | None, dataset_refs: list[str]) -> dict[str, Any]:
    """CycloneDX modelCard from the card file only; absent fields stay absent."""
    out: dict[str, Any] = {}
    if card is None:
        return out
    params: dict[str, Any] = {}
    if card.approach:
        params["approach"] = {"type": card.approach}
    for key in ("task", "architectureFamily", "modelArchitecture"):
        if getattr(card, key):
            params[key] = getattr(card, key)
    if dataset_refs:
        params["datasets"] = [{"ref": r} for r in dataset_refs]
    if card.inputs:
        params["inputs"] = [{"format": f} for f in card.inputs]
    if card.outputs:
        params["outputs"] = [{"format": f} for f in card.outputs]
    if params:
        out["modelParameters"] = params
    if card.metrics:
        metrics = []
        for m in card.metrics:
            metric: dict[str, Any] = {"type": m.type, "value": str(m.value)}
            if m.slice:
                metric["slice"] = m.slice
            if m.confidenceInterval:
                metric["confidenceInterval"] = {
                    "lowerBound": str(m.confidenceInterval.lowerBound),
                    "upperBound": str(m.confidenceInterval.upperBound),
                }
            metrics.append(metric)
        out["quantitativeAnalysis"] = {"performanceMetrics": metrics}
    if card.considerations:
        considerations = card.considerations.model_dump(exclude_none=True)
        considerations = {k: v for k, v in considerations.items() if v}
        if considerations:
            out["considerations"] = considerations
    return out


def _dataset_component(
    dataset: CardDataset, ref: str, base: Path, report: Report, card_path: str
) -> dict[str, Any]:
    name = dataset.name or (Path(dataset.path).name if dataset.path else None) or dataset.url
    assert name is not None  # the card schema requires a path, a url or a name
    if dataset.path:
        target = Path(dataset.path)
        target = target if target.is_absolute() else base / target
        if not target.exists() and not target.is_symlink():
            raise EvidenceError(
                f"dataset {name!r}: {target} does not exist",
                hint="dataset paths in the card are relative to the card file",
            )
        component, _, _ = _artifact_component("data", ref, name, target, sniff=False)
    else:
        component = {"type": "data", "bom-ref": ref, "name": name}
        report.add(
            bom_rules.DATASET_NO_DIGEST.finding(
                Location(path=card_path),
                f"dataset {name!r} has no local path, so the BOM holds no digest of it",
                {"dataset": name},
            )
        )
    data: dict[str, Any] = {"type": "dataset", "name": name}
    if dataset.url:
        data["contents"] = {"url": dataset.url}
    if dataset.classification:
        data["classification"] = dataset.classification
    if dataset.sensitiveData:
        data["sensitiveData"] = list(dataset.sensitiveData)
    if dataset.description:
        data["description"] = dataset.description
    component["data"] = [data]
    if dataset.use:
        component.setdefault("properties", []).append(_prop("use", dataset.use))
    return component


def _package_component(package: Package) -> dict[str, Any]:
    component: dict[str, Any] = {
        "type": "library",
        "bom-ref": package.purl,
        "name": package.name,
        "version": package.version,
        "purl": package.purl,
        "properties": [_prop("source", package.source or "unknown")],
    }
    sha256 = [h.split(":", 1)[1] for h in package.hashes if h.startswith("sha256:")]
    if len(sha256) == 1:
        component["hashes"] = _sha256(sha256[0])
    else:  # several wheels are acceptable: which one is installed is not recorded
        component["properties"] += [_prop("accepted-sha256", h) for h in sha256]
    return component


def _unique_ref(base: str, taken: set[str]) -> str:
    ref, n = base, 2
    while ref in taken:
        ref, n = f"{base}-{n}", n + 1
    taken.add(ref)
    return ref


def build_bom(
    model: Path,
    card: LoadedCard | None,
    packages: Sequence[Package],
    *,
    card_path: Path | None = None,
    timestamp: datetime | None = None,
    progress: Progress | None = None,
) -> BomResult:
    """The ML-BOM of a model file or folder, validated against the CycloneDX 1.6 schema.

    `progress(path, done, total)` is called after each model file is hashed.
    """
    started = time.perf_counter()
    report = Report(kind="bom", rules=dict(bom_rules.ALL))
    data = card.card if card else None
    where = str(card_path) if card_path else str(model)
    model_name = (data.name if data else None) or model.resolve().name
    model_component, n_files, n_bytes = _artifact_component(
        "machine-learning-model", MODEL_REF, model_name, model, sniff=True, progress=progress
    )
    report.files_scanned, report.bytes_scanned = n_files, n_bytes
    if data and data.version:
        model_component["version"] = data.version
    if data and data.description:
        model_component["description"] = data.description
    if data and data.supplier:
        model_component["supplier"] = {"name": data.supplier}
    if data and data.license:
        model_component["licenses"] = _license(data.license)

    taken = {MODEL_REF}
    datasets = []
    for dataset in (data.datasets or []) if data else []:
        label = dataset.name or dataset.path or dataset.url or "dataset"
        ref = _unique_ref(f"dataset/{label}", taken)
        assert card is not None
        datasets.append(_dataset_component(dataset, ref, card.base, report, where))
    dataset_refs = [d["bom-ref"] for d in datasets]

    missing = missing_fields(data)
    completeness = round(1 - len(missing) / len(RECOMMENDED_FIELDS), 3)
    card_json = _model_card(data, dataset_refs)
    card_json["properties"] = [_prop("card:completeness", completeness)] + [
        _prop("card:missing", m) for m in missing
    ]
    model_component["modelCard"] = card_json
    if missing:
        report.add(_incomplete(where, completeness, missing))

    libraries = [_package_component(p) for p in packages]
    required = {r for p in packages for r in p.requires}
    by_name = {p.name: p for p in packages}
    roots = [p.purl for p in packages if p.name not in required]
    dependencies = [
        {"ref": MODEL_REF, "dependsOn": [*dataset_refs, *roots]},
        *({"ref": r, "dependsOn": []} for r in dataset_refs),
        *(
            {"ref": p.purl, "dependsOn": [by_name[r].purl for r in p.requires if r in by_name]}
            for p in packages
        ),
    ]
    bom: dict[str, Any] = {
        "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "serialNumber": uuid.uuid4().urn,
        "version": 1,
        "metadata": {
            "timestamp": (timestamp or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "lifecycles": [{"phase": "post-build"}],
            "tools": {
                "components": [{"type": "application", "name": "secmlops", "version": __version__}]
            },
        },
        "components": [model_component, *datasets, *libraries],
        "dependencies": dependencies,
    }
    validate_bom(bom)
    report.seconds = time.perf_counter() - started
    return BomResult(bom, completeness, tuple(missing), report)


def _incomplete(where: str, completeness: float, missing: list[str]) -> Finding:
    severity = Severity.LOW if completeness >= 0.5 else Severity.MEDIUM
    return bom_rules.INCOMPLETE.finding(
        Location(path=where),
        f"model card is {completeness:.0%} complete; missing: {', '.join(missing)}",
        {"completeness": completeness, "missing": missing},
        severity=severity,
    )


@functools.cache
def _validator() -> JsonStrictValidator:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    return JsonStrictValidator(SchemaVersion.V1_6)


def validate_bom(bom: dict[str, Any]) -> None:
    """Raise EvidenceError unless `bom` is valid CycloneDX 1.6 JSON with resolvable refs."""
    error = _validator().validate_str(json.dumps(bom))
    if error is not None:
        detail = getattr(error, "data", None)
        message = getattr(detail, "message", str(error).splitlines()[0])
        path = getattr(detail, "json_path", "$")
        raise EvidenceError(f"the BOM is not valid CycloneDX 1.6 at {path}: {message}")
    refs: set[str] = set()
    stack = list(bom.get("components", []))
    while stack:
        component = stack.pop()
        ref = component.get("bom-ref")
        if ref in refs:
            raise EvidenceError(f"the BOM has two components with bom-ref {ref!r}")
        refs.add(ref)
        stack.extend(component.get("components", []))
    for dep in bom.get("dependencies", []):
        for ref in [dep["ref"], *dep.get("dependsOn", [])]:
            if ref not in refs:
                raise EvidenceError(f"the BOM's dependency graph names an unknown ref {ref!r}")
