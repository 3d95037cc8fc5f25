"""The controls a stage can list in pipeline.yaml. Each returns findings and facts for the gates."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from secmlops.config import Config
from secmlops.errors import ConfigError
from secmlops.findings import Report
from secmlops.pipeline.runner import Control, ControlResult, StageContext


def _report_result(report: Report, **facts: Any) -> ControlResult:
    return ControlResult(
        tuple(f.to_dict() for f in report.findings),
        tuple(e.to_dict() for e in report.errors),
        facts,
    )


def _model_path(ctx: StageContext) -> Path:
    return ctx.path(str(ctx.options.get("path", ctx.spec.model_path)))


def model_scan(ctx: StageContext) -> ControlResult:
    """Scan the model artifact for code execution and evasions (MODEL-* rules)."""
    from secmlops.scan.models import scan_paths

    report = scan_paths([_model_path(ctx)])
    result = _report_result(report)
    return ControlResult(result.findings, result.errors, {"findings": list(result.findings)})


def sign(ctx: StageContext) -> ControlResult:
    """Sign the model in the OpenSSF model-signing format with the pipeline's key."""
    from secmlops.evidence.signing import KeySigner, sign_model

    result = sign_model(_model_path(ctx), KeySigner(ctx.key_path))
    return ControlResult(facts={"model_digest": result.model_digest})


def register(ctx: StageContext) -> ControlResult:
    """Push the signed model to the registry; the registry's own gate decides (GateDenied stops)."""
    from secmlops.evidence.keys import public_key_path
    from secmlops.evidence.signing import PublicKeyTrust, default_signature_path
    from secmlops.store.registry import open_registry, signature_verifier

    public = public_key_path(ctx.key_path)
    if not public.is_file():
        raise ConfigError(f"register needs the public key next to the signing key: {public}")
    registry = open_registry(ctx.home, signature_verifier(PublicKeyTrust(public)))
    model = _model_path(ctx)
    facts = {k: v for k, v in ctx.facts.items() if k not in ("lineage", "model_digest")}
    lineage = [(str(k), str(r), dict(d)) for k, r, d in ctx.facts.get("lineage", [])]
    info = registry.push(
        model, ctx.spec.model, default_signature_path(model), str(ctx.options.get("actor", "pipeline")),
        facts=facts, lineage=lineage,
    )  # fmt: skip
    return ControlResult(facts={"registered": {"name": info.name, "version": info.version}})


def bom(ctx: StageContext) -> ControlResult:
    """CycloneDX ML-BOM of the model (card from `card:`, packages from `lockfile:`), written to
    `output:`; its card completeness becomes the gate's model_card fact."""
    import json

    from secmlops.evidence.bom import build_bom
    from secmlops.evidence.bom_card import load_card
    from secmlops.evidence.packages import lockfile_packages

    card = ctx.options.get("card")
    lockfile = ctx.options.get("lockfile")
    result = build_bom(
        _model_path(ctx),
        load_card(ctx.path(str(card))) if card else None,
        lockfile_packages(ctx.path(str(lockfile))) if lockfile else [],
        card_path=ctx.path(str(card)) if card else None,
    )
    output = ctx.path(str(ctx.options.get("output", "bom.json")))
    output.write_text(json.dumps(result.bom, indent=2), encoding="utf-8")
    reported = _report_result(result.report)
    return ControlResult(
        reported.findings, reported.errors,
        {"model_card": {"completeness": result.completeness, "missing": list(result.missing)}},
    )  # fmt: skip


def deps(ctx: StageContext) -> ControlResult:
    """Vulnerable, malicious and typosquatted packages in the dependency files under `path:`
    (offline OSV database from `db:`). The findings go to the register gate, not the stage gate,
    so that a waiver (rule, scope, expiry) can accept a vulnerability that does not apply."""
    from secmlops.scan.deps.engine import DepsSettings, scan_deps

    db = ctx.options.get("db")
    settings = DepsSettings(db_dir=ctx.path(str(db)) if db else None)
    result = scan_deps([ctx.path(str(ctx.options.get("path", ".")))], settings)
    reported = _report_result(result.report)
    packages = [
        str(f["location"].get("package")) for f in reported.findings if f["location"].get("package")
    ]
    return ControlResult(errors=reported.errors,
                         facts={"findings": list(reported.findings),
                                "dependencies": {"checked": True, "flagged": sorted(set(packages))}})  # fmt: skip


def _project_config(ctx: StageContext) -> Config:
    """secmlops.toml (or [tool.secmlops] in pyproject.toml) of the pipeline's folder."""
    from secmlops.config import load_config

    return load_config(cwd=ctx.root)


def data(ctx: StageContext) -> ControlResult:
    """Data checks on the stage's table outputs (or `path:`): `schema:` file, PII (`pii:`, default
    true) and poisoning when `label:` names the label column (`reference:` a trusted table)."""
    from secmlops.scan.data.engine import DataScanSettings, scan_data
    from secmlops.scan.data.schema import load_schema
    from secmlops.scan.data.tables import read_table

    schema, reference = ctx.options.get("schema"), ctx.options.get("reference")
    settings = DataScanSettings(
        schema=load_schema(ctx.path(str(schema))) if schema else None,
        reference=read_table(ctx.path(str(reference))) if reference else None,
        label=ctx.options.get("label"),
        pii=bool(ctx.options.get("pii", True)),
        layers=_project_config(ctx).layers,  # [pii], [poisoning] thresholds
    )
    paths = [ctx.path(str(ctx.options["path"]))] if "path" in ctx.options else [
        p for p in ctx.outputs if p.is_file()
    ]  # fmt: skip
    result = _report_result(scan_data(paths, settings))
    return ControlResult(result.findings, result.errors,
                         {"data": {"findings": list(result.findings), "scanned": True}})  # fmt: skip


def poisoning(ctx: StageContext) -> ControlResult:
    """Poisoning checks on `path:` (default the stage's first output) with `label:`; `checks:`
    picks among label, cluster, duplicate, balance, trigger; `reference:` a trusted table. How
    much is too much is the stage policy's call (e.g. the share of rows with label issues)."""
    from secmlops.findings import Location
    from secmlops.scan.data.poisoning import CHECKS, PoisonSettings, scan_poisoning
    from secmlops.scan.data.tables import read_table

    if "label" not in ctx.options:
        raise ConfigError(f"stage {ctx.stage.name}: the poisoning control needs label: COLUMN")
    path = ctx.path(str(ctx.options["path"])) if "path" in ctx.options else ctx.outputs[0]
    reference = ctx.options.get("reference")
    findings = scan_poisoning(
        read_table(path), label=str(ctx.options["label"]),
        reference=read_table(ctx.path(str(reference))) if reference else None,
        location=Location(path=str(path.relative_to(ctx.root))),
        settings=_project_config(ctx).layer_settings("poisoning", PoisonSettings),
        checks=tuple(ctx.options.get("checks", CHECKS)),
    )  # fmt: skip
    found = tuple(f.to_dict() for f in findings)
    return ControlResult(found, facts={"data": {"findings": list(found), "scanned": True}})


def secrets(ctx: StageContext) -> ControlResult:
    """Leaked credentials in the pipeline's code and files (`path:`, default the pipeline folder;
    the secmlops home folder and the pipeline's own signing key are left out)."""
    from secmlops.scan.secrets import SecretScanSettings, scan_paths

    root = ctx.path(str(ctx.options.get("path", "."))).resolve()
    key = ctx.key_path.resolve()
    exclude = (f"{ctx.home.resolve()}/*", str(key), f"{key}.pub")
    report = scan_paths([root], SecretScanSettings(exclude=exclude))
    return _report_result(report)


CONTROLS: Mapping[str, Control] = {
    "data": data,
    "poisoning": poisoning,
    "secrets": secrets,
    "bom": bom,
    "deps": deps,
    "model_scan": model_scan,
    "sign": sign,
    "register": register,
}
