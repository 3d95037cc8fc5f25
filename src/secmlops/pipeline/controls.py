"""The controls a stage can list in pipeline.yaml. Each returns findings and facts for the gates."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

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
    from secmlops.evidence.signing import PublicKeyTrust, default_signature_path
    from secmlops.policy import evaluate_gate
    from secmlops.store.artifacts import LocalStore
    from secmlops.store.db import open_database
    from secmlops.store.registry import Registry, signature_verifier

    public = ctx.key_path.with_name(ctx.key_path.name + ".pub")
    if not public.is_file():
        raise ConfigError(f"register needs the public key next to the signing key: {public}")
    registry = Registry(
        LocalStore(ctx.home / "store"),
        open_database(f"sqlite:///{ctx.home / 'secmlops.db'}"),
        verifier=signature_verifier(PublicKeyTrust(public)),
        gate=evaluate_gate,
    )
    model = _model_path(ctx)
    facts = {k: v for k, v in ctx.facts.items() if k not in ("lineage", "model_digest")}
    lineage = [(str(k), str(r), dict(d)) for k, r, d in ctx.facts.get("lineage", [])]
    info = registry.push(
        model, ctx.spec.model, default_signature_path(model), str(ctx.options.get("actor", "pipeline")),
        facts=facts, lineage=lineage,
    )  # fmt: skip
    return ControlResult(facts={"registered": {"name": info.name, "version": info.version}})


CONTROLS: Mapping[str, Control] = {
    "model_scan": model_scan,
    "sign": sign,
    "register": register,
}
