from __future__ import annotations

import json
from pathlib import Path

import pytest

from secmlops.errors import ConfigError
from secmlops.evidence.attest import open_envelope
from secmlops.evidence.keys import generate_private_key, load_public_key, write_key_pair
from secmlops.pipeline.runner import (
    ControlResult,
    PipelineDenied,
    StageContext,
    run_pipeline,
    tree_digest,
)
from secmlops.pipeline.spec import load_pipeline
from secmlops.store.artifacts import LocalStore

CODE = """
import json
CALLS = []
def make(ctx):
    CALLS.append(ctx.stage.name)
    out = ctx.outputs[0]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"n": ctx.params.get("n", 1)}))
    return {"metrics": {"n": ctx.params.get("n", 1)}}
def copy(ctx):
    CALLS.append(ctx.stage.name)
    ctx.outputs[0].write_text(ctx.inputs[0].read_text() + "!")
def forgetful(ctx):
    return None
def bad_return(ctx):
    return [1]
"""

SPEC = """
name: tiny
model: tiny
model_path: out/b.txt
stages:
  - {name: a, run: "steps:make", outputs: [out/a.txt], params: {n: 1}}
  - {name: b, run: "steps:copy", inputs: [out/a.txt], outputs: [out/b.txt], controls: [flag]}
"""


def flag(ctx: StageContext) -> ControlResult:
    text = ctx.outputs[0].read_text()
    if "poison" in text:
        return ControlResult(findings=({"rule_id": "DATA-POISON-LABEL", "severity": "high",
                                        "message": "labels flipped", "controls": []},))  # fmt: skip
    return ControlResult(facts={"checked": True})


def _setup(tmp_path: Path, spec: str = SPEC) -> tuple[Path, Path]:
    (tmp_path / "steps.py").write_text(CODE)
    (tmp_path / "pipeline.yaml").write_text(spec)
    key = tmp_path / "key.pem"
    write_key_pair(generate_private_key(), key)
    return tmp_path, key


def _run(root: Path, key: Path, **kw: object) -> tuple[list, dict]:  # type: ignore[type-arg]
    return run_pipeline(load_pipeline(root / "pipeline.yaml"), root, key_path=key,
                        home=root / ".secmlops", controls={"flag": flag}, **kw)  # type: ignore[arg-type]  # fmt: skip


def test_runs_attests_and_skips_unchanged_stages(tmp_path: Path) -> None:
    root, key = _setup(tmp_path)
    outcomes, facts = _run(root, key)
    assert [o.skipped for o in outcomes] == [False, False]
    assert facts["metrics"] == {"n": 1} and facts["checked"] is True
    # The attestation is signed, stored by digest, and names the exact output bytes.
    store = LocalStore(root / ".secmlops" / "store")
    statement = open_envelope(
        store.read_bytes(outcomes[1].attestation), load_public_key(key.with_name("key.pem.pub"))
    )
    assert statement.subjects[0].digest["sha256"] == tree_digest(root / "out/b.txt")
    assert statement.predicate["inputs"][0]["digest"]["sha256"] == tree_digest(root / "out/a.txt")

    from secmlops.store.audit import verify_log
    from secmlops.store.db import open_database

    log = verify_log(open_database(f"sqlite:///{root / '.secmlops' / 'secmlops.db'}"))
    assert log.ok and log.records == 2  # each stage's gate decision is in the audit chain

    again, facts2 = _run(root, key)
    assert [o.skipped for o in again] == [True, True]
    assert facts2["metrics"] == {"n": 1}  # facts of skipped stages are restored

    (root / "out/b.txt").write_text("edited by hand")  # an output changed: its stage runs again
    third, _ = _run(root, key)
    assert [o.skipped for o in third] == [True, False]
    assert (root / "out/b.txt").read_text() == '{"n": 1}!'


def test_denied_stage_stops_the_run(tmp_path: Path) -> None:
    root, key = _setup(
        tmp_path,
        SPEC + '  - {name: c, run: "steps:copy", inputs: [out/b.txt], outputs: [out/c.txt]}\n',
    )
    (root / "out").mkdir()
    _run(root, key)
    (root / "steps.py").write_text(CODE.replace('"!"', '"poison"'))
    with pytest.raises(PipelineDenied) as info:
        _run(root, key)
    assert info.value.stage == "b"
    assert info.value.decision.deny[0].rule_id == "POLICY-STAGE-FINDING"
    assert "DATA-POISON-LABEL" in info.value.decision.deny[0].msg
    record = root / ".secmlops" / "runs" / "tiny" / "b.json"
    assert not record.exists()  # a denied stage never counts as done


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("name: t\nmodel: t\nmodel_path: x\nstages: []\n", "stages"),
        ("name: t\nmodel: t\nmodel_path: x\nstages: [{name: a, run: 'nope'}]\n", "module:function"),
        (
            "name: t\nmodel: t\nmodel_path: x\nstages: [{name: a, outputs: [../x]}]\n",
            "inside the pipeline",
        ),
        ("name: t\nmodel: t\nmodel_path: x\nstages: [{name: a, colour: red}]\n", "colour"),
        (
            "name: t\nmodel: t\nmodel_path: x\nstages: [{name: a, controls: [nosuch]}]\n",
            "unknown control",
        ),
        (
            "name: t\nmodel: t\nmodel_path: x\nstages: [{name: a, run: 'missing_mod:f'}]\n",
            "cannot import",
        ),
        (
            "name: t\nmodel: t\nmodel_path: x\nstages: [{name: a, run: 'steps:nosuch'}]\n",
            "no function",
        ),
        (
            "name: t\nmodel: t\nmodel_path: x\nstages: [{name: a, run: 'steps:forgetful', outputs: [o]}]\n",
            "did not write",
        ),
        (
            "name: t\nmodel: t\nmodel_path: x\nstages: [{name: a, run: 'steps:bad_return'}]\n",
            "not a dict",
        ),
        (
            "name: t\nmodel: t\nmodel_path: x\nstages: [{name: a, inputs: [missing.csv]}]\n",
            "does not exist",
        ),
        ("stages: [", "not valid YAML"),
    ],
)
def test_bad_pipelines_are_clear_errors(tmp_path: Path, spec: str, match: str) -> None:
    root, key = _setup(tmp_path, spec)
    with pytest.raises(ConfigError, match=match):
        _run(root, key)


def test_metrics_file_is_json(tmp_path: Path) -> None:
    root, key = _setup(tmp_path)
    _run(root, key)
    assert json.loads((root / "out/a.txt").read_text()) == {"n": 1}
