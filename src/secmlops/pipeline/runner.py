"""Run a pipeline: each stage's code, its controls, a signed attestation, then the stage gate.

A stage whose code, parameters and input digests are unchanged since its last allowed run, and
whose outputs are still the bytes it produced, is skipped. A denied gate stops the run with every
reason; nothing after it runs.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from secmlops.errors import ConfigError, Error
from secmlops.evidence.attest import (
    Subject,
    artifact_files,
    file_digest,
    make_statement,
    sign_envelope,
)
from secmlops.evidence.keys import PrivateKey, load_private_key
from secmlops.evidence.signing import DEFAULT_SIGNATURE_NAME
from secmlops.pipeline.spec import PipelineSpec, StageSpec
from secmlops.policy.decision import Decision
from secmlops.policy.gate import evaluate_gate
from secmlops.store import audit
from secmlops.store.artifacts import LocalStore
from secmlops.store.db import home_database_url, open_database, transaction
from secmlops.store.registry import GateDenied

STAGE_PREDICATE = "https://secmlops.dev/attestation/stage/v1"
DATA_SUFFIXES = (".csv", ".parquet", ".jsonl", ".arrow", ".feather", ".tsv")


def tree_digest(path: Path) -> str:
    """SHA-256 of a file, or of the sorted (relative path, file digest) list of a folder.

    A folder's own signature file is not part of its content (as in the model-signing format).
    """
    if path.is_file():
        return file_digest(path)
    listing = [
        (name, file_digest(file))
        for file, name in artifact_files(path)
        if file != path / DEFAULT_SIGNATURE_NAME
    ]
    return hashlib.sha256(json.dumps(sorted(listing)).encode()).hexdigest()


@dataclass
class StageContext:
    """What a stage's code and controls see."""

    root: Path
    spec: PipelineSpec
    stage: StageSpec
    facts: dict[str, Any]
    key: PrivateKey
    key_path: Path
    home: Path
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def inputs(self) -> list[Path]:
        return [self.root / p for p in self.stage.inputs]

    @property
    def outputs(self) -> list[Path]:
        return [self.root / p for p in self.stage.outputs]

    @property
    def params(self) -> Mapping[str, Any]:
        return self.stage.params

    def path(self, relative: str) -> Path:
        return self.root / relative


@dataclass(frozen=True, slots=True)
class ControlResult:
    """Findings and errors as JSON-report dicts; `facts` merge into what later gates see."""

    findings: tuple[Mapping[str, Any], ...] = ()
    errors: tuple[Mapping[str, Any], ...] = ()
    facts: Mapping[str, Any] = field(default_factory=dict)


Control = Callable[[StageContext], ControlResult]


@dataclass(frozen=True, slots=True)
class StageOutcome:
    name: str
    skipped: bool
    seconds: float
    findings: tuple[Mapping[str, Any], ...] = ()
    decision: Decision | None = None
    attestation: str = ""


class PipelineDenied(Error):
    """A stage gate (or the registry gate) refused; the run stopped there."""

    def __init__(self, stage: str, decision: Decision, outcomes: list[StageOutcome]) -> None:
        reasons = "; ".join(f"{v.rule_id}: {v.msg}" for v in decision.deny)
        super().__init__(f"stage {stage} denied: {reasons}")
        self.stage, self.decision, self.outcomes = stage, decision, outcomes


@contextmanager
def _on_path(folder: Path) -> Iterator[None]:
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        sys.path.remove(str(folder))


def _entry(root: Path, entry: str) -> tuple[Callable[[StageContext], Any], str]:
    module_name, func_name = entry.split(":")
    local = root / module_name.replace(".", "/")
    if local.with_suffix(".py").is_file() or (local / "__init__.py").is_file():
        # The pipeline's own code: load it anew (it may have changed, or another pipeline's
        # module of the same name may be cached).
        for name in [m for m in sys.modules if m == module_name or m.startswith(module_name + ".")]:
            del sys.modules[name]
    with _on_path(root):
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ConfigError(f"cannot import {module_name} for {entry}: {exc}") from exc
    func = getattr(module, func_name, None)
    if not callable(func):
        raise ConfigError(f"{entry}: {module_name} has no function {func_name}")
    source = getattr(module, "__file__", None)
    code = file_digest(Path(source)) if source else hashlib.sha256(entry.encode()).hexdigest()
    return func, code


def _record_path(home: Path, spec: PipelineSpec, stage: str) -> Path:
    return home / "runs" / spec.name / f"{stage}.json"


def _write_json(path: Path, doc: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True, default=str), encoding="utf-8")
    os.replace(tmp, path)


def run_pipeline(
    spec: PipelineSpec,
    root: Path,
    *,
    key_path: Path,
    passphrase: bytes | None = None,
    home: Path,
    controls: Mapping[str, Control],
    force: bool = False,
    on_stage: Callable[[StageOutcome], None] | None = None,
    facts: Mapping[str, Any] | None = None,
) -> tuple[list[StageOutcome], dict[str, Any]]:
    """Run every stage in order; returns the outcomes and the accumulated facts."""
    known = set(controls)
    for stage in spec.stages:
        for c in stage.controls:
            if c.control not in known:
                raise ConfigError(
                    f"stage {stage.name}: unknown control {c.control!r}",
                    hint=f"known controls: {', '.join(sorted(known))}",
                )
    key = load_private_key(key_path, passphrase)
    store = LocalStore(home / "store")
    home.mkdir(parents=True, exist_ok=True)
    audit_db = open_database(home_database_url(home))
    accumulated: dict[str, Any] = {"findings": [], "data": {"findings": []}, "lineage": [],
                                   **dict(facts or {})}  # fmt: skip
    outcomes: list[StageOutcome] = []
    for stage in spec.stages:
        started = time.perf_counter()
        ctx = StageContext(root, spec, stage, accumulated, key, key_path, home)
        missing = [p for p in stage.inputs if not (root / p).exists()]
        if missing:
            raise ConfigError(f"stage {stage.name}: input {missing[0]} does not exist")
        func, code = _entry(root, stage.run) if stage.run else (None, "")
        # What earlier stages established (findings, metrics…) is an input too: a new
        # vulnerability found upstream must reach the register gate even if the model is unchanged.
        upstream = hashlib.sha256(
            json.dumps(
                {k: v for k, v in accumulated.items() if k != "lineage"},
                sort_keys=True,
                default=str,
            ).encode()
        ).hexdigest()
        inputs = {p: tree_digest(root / p) for p in stage.inputs}
        record_path = _record_path(home, spec, stage.name)
        previous = _read_record(record_path)
        if (
            not force
            and previous
            and previous.get("upstream") == upstream
            and _unchanged(previous, root, stage, inputs, code)
        ):
            _merge_facts(accumulated, previous.get("facts", {}))
            accumulated["lineage"] += previous.get("lineage", [])
            outcome = StageOutcome(stage.name, True, time.perf_counter() - started,
                                   attestation=previous.get("attestation", ""))  # fmt: skip
            outcomes.append(outcome)
            if on_stage:
                on_stage(outcome)
            continue
        stage_facts: dict[str, Any] = {}
        if func is not None:
            returned = func(ctx)
            if returned is not None and not isinstance(returned, Mapping):
                raise ConfigError(
                    f"stage {stage.name}: {stage.run} returned {type(returned).__name__}, not a dict"
                )
            stage_facts.update(returned or {})
        absent = [p for p in stage.outputs if not (root / p).exists()]
        if absent:
            raise ConfigError(f"stage {stage.name}: {stage.run} did not write {absent[0]}")
        findings: list[Mapping[str, Any]] = []
        errors: list[Mapping[str, Any]] = []
        _merge_facts(accumulated, stage_facts)
        for control in stage.controls:
            ctx.options = control.model_dump(exclude={"control"})
            try:
                result = controls[control.control](ctx)
            except GateDenied as exc:
                denied = StageOutcome(stage.name, False, time.perf_counter() - started,
                                      tuple(findings), exc.decision)  # fmt: skip
                outcomes.append(denied)
                if on_stage:
                    on_stage(denied)
                raise PipelineDenied(stage.name, exc.decision, outcomes) from exc
            findings += result.findings
            errors += result.errors
            _merge_facts(stage_facts, result.facts)
            _merge_facts(accumulated, result.facts)
        outputs = {p: tree_digest(root / p) for p in stage.outputs}
        decision = evaluate_gate(
            {"stage": stage.name, "findings": findings, "errors": errors},
            query="data.secmlops.stage",
        )
        lineage = [
            ["dataset" if p.endswith(DATA_SUFFIXES) else "artifact", f"sha256:{d}", {"stage": stage.name, "path": p}]
            for p, d in {**inputs, **outputs}.items()
        ]  # fmt: skip
        statement = make_statement(
            [Subject(p, {"sha256": d}) for p, d in outputs.items()]
            or [Subject(f"{spec.name}/{stage.name}", {"sha256": hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()})],
            STAGE_PREDICATE,
            {"pipeline": spec.name, "stage": stage.name, "entryPoint": stage.run or "",
             "code": {"sha256": code} if code else {}, "params": stage.params,
             "inputs": [{"name": p, "digest": {"sha256": d}} for p, d in inputs.items()],
             "findings": {"count": len(findings), "errors": len(errors),
                          "ruleIds": sorted({str(f.get("rule_id")) for f in findings})},
             "decision": decision.to_dict()},
        )  # fmt: skip
        envelope = json.dumps(sign_envelope(statement, key), sort_keys=True).encode()
        attestation = store.put_bytes(envelope)
        lineage.append(["attestation", f"sha256:{attestation}", {"stage": stage.name}])
        accumulated["lineage"] += lineage
        with transaction(audit_db) as session:
            audit.append(session, "pipeline", "stage-gate", f"{spec.name}/{stage.name}",
                         {"decision": decision.to_dict(), "attestation": attestation,
                          "outputs": outputs})  # fmt: skip
        outcome = StageOutcome(stage.name, False, time.perf_counter() - started, tuple(findings),
                               decision, attestation)  # fmt: skip
        outcomes.append(outcome)
        if on_stage:
            on_stage(outcome)
        if not decision.allow:
            record_path.unlink(missing_ok=True)
            raise PipelineDenied(stage.name, decision, outcomes)
        _write_json(record_path, {"inputs": inputs, "outputs": outputs, "code": code, "upstream": upstream,
                                  "params": stage.params, "facts": stage_facts, "lineage": lineage,
                                  "attestation": attestation})  # fmt: skip
    return outcomes, accumulated


def _read_record(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # no record or a damaged one: the stage simply runs again
    return doc if isinstance(doc, dict) else None


def _unchanged(
    record: Mapping[str, Any], root: Path, stage: StageSpec, inputs: Mapping[str, str], code: str
) -> bool:
    if (
        record.get("inputs") != inputs
        or record.get("code") != code
        or record.get("params") != stage.params
    ):
        return False
    outputs = record.get("outputs", {})
    if set(outputs) != set(stage.outputs):
        return False
    return all((root / p).exists() and tree_digest(root / p) == d for p, d in outputs.items())


def _merge_facts(into: dict[str, Any], new: Mapping[str, Any]) -> None:
    """Lists extend, mappings merge, everything else is replaced."""
    for key, value in new.items():
        if isinstance(value, list) and isinstance(into.get(key), list):
            into[key] = [*into[key], *value]
        elif isinstance(value, Mapping) and isinstance(into.get(key), dict):
            merged = dict(into[key])
            _merge_facts(merged, value)
            into[key] = merged
        else:
            into[key] = value
