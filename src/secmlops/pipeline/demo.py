"""`secmlops demo`: the example pipeline end to end, then the attacks it must stop.

Everything happens in a temporary folder: generated data (with made-up personal data), an offline
vulnerability database of two real advisories, a signing key. The clean run trains, signs, gates
and registers the model and writes the auditor's report; each attack then starts from a copy of
that project and must be stopped for the documented reason.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from secmlops.errors import Error
from secmlops.pipeline.example import EXAMPLE_DIR

if TYPE_CHECKING:
    from secmlops.store.registry import Registry

Say = Callable[[str], None]

# Two real advisories, as OSV records, so the demo's dependency check runs offline.
ADVISORIES = [
    {
        "id": "GHSA-53q9-r3pm-6pq6", "aliases": ["CVE-2025-32434"], "modified": "2025-04-18T00:00:00Z",
        "published": "2025-04-17T00:00:00Z",
        "summary": "PyTorch: torch.load with weights_only=True leads to remote code execution",
        "affected": [{"package": {"ecosystem": "PyPI", "name": "torch"},
                      "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.6.0"}]}]}],
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
    },
    {
        "id": "GHSA-jw8x-6495-233v", "aliases": ["CVE-2024-5206"], "modified": "2024-06-06T00:00:00Z",
        "published": "2024-06-06T00:00:00Z",
        "summary": "scikit-learn sensitive data leakage in TfidfVectorizer",
        "affected": [{"package": {"ecosystem": "PyPI", "name": "scikit-learn"},
                      "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.5.0"}]}]}],
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:N/A:N"}],
    },
]  # fmt: skip

MARKER = "secmlops-demo-payload-would-run-here"


class _Exec:
    """Pickles to os.system(<echo>) : what a trojaned model file carries (never loaded here)."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"echo {MARKER}",))


@dataclass(frozen=True, slots=True)
class AttackResult:
    attack: str
    blocked: bool
    stage: str
    rules: tuple[str, ...]
    detail: str


def build_project(root: Path) -> Path:
    """Write the example project into ROOT; returns the signing key path."""
    from secmlops.evidence.keys import generate_private_key, write_key_pair
    from secmlops.pipeline.example.project.fraud_pipeline import generate_transactions
    from secmlops.scan.deps.osv import import_zip

    shutil.copy(EXAMPLE_DIR / "pipeline.yaml", root / "pipeline.yaml")
    shutil.copytree(EXAMPLE_DIR / "project", root / "project",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    generate_transactions(root / "source" / "transactions.csv")
    keys = root / "keys"
    keys.mkdir()
    key = keys / "signing.pem"
    write_key_pair(generate_private_key(), key)
    dump = root / "osv-PyPI.zip"
    with zipfile.ZipFile(dump, "w") as z:
        for record in ADVISORIES:
            z.writestr(f"{record['id']}.json", json.dumps(record))
    import_zip(dump, root / ".secmlops" / "osv")
    return key


def _run(root: Path, key: Path, say: Say) -> tuple[bool, str, tuple[str, ...], str]:
    """Run the pipeline; (allowed, stage that stopped it, rule ids, first message)."""
    from secmlops.pipeline.controls import CONTROLS
    from secmlops.pipeline.runner import PipelineDenied, StageOutcome, run_pipeline
    from secmlops.pipeline.spec import load_pipeline

    def show(o: StageOutcome) -> None:
        state = "unchanged, skipped" if o.skipped else (
            "passed" if o.decision is None or o.decision.allow else "DENIED")  # fmt: skip
        say(f"    {o.name:9} {state:18} {o.seconds:5.1f}s")

    try:
        run_pipeline(load_pipeline(root / "pipeline.yaml"), root, key_path=key,
                     home=root / ".secmlops", controls=CONTROLS, on_stage=show)  # fmt: skip
    except PipelineDenied as exc:
        rules = tuple(dict.fromkeys(v.rule_id for v in exc.decision.deny))
        return False, exc.stage, rules, exc.decision.deny[0].msg
    return True, "", (), ""


def _registry(root: Path, key: Path) -> Registry:
    from secmlops.evidence.keys import public_key_path
    from secmlops.evidence.signing import PublicKeyTrust
    from secmlops.store.registry import open_registry, signature_verifier

    return open_registry(
        root / ".secmlops", signature_verifier(PublicKeyTrust(public_key_path(key)))
    )


def _push(root: Path, key: Path, model: Path) -> tuple[bool, tuple[str, ...], str]:
    from secmlops.store.registry import GateDenied

    reg = _registry(root, key)
    facts = {"metrics": json.loads((root / "metrics.json").read_text())["metrics"],
             "model_card": {"completeness": 1.0, "missing": []}}  # fmt: skip
    try:
        reg.push(model, "fraud-detector", model / "model.sig", "ml-engineer", facts=facts)
    except GateDenied as exc:
        return (
            False,
            tuple(dict.fromkeys(v.rule_id for v in exc.decision.deny)),
            exc.decision.deny[0].msg,
        )
    return True, (), ""


def _copy(clean: Path, name: str) -> Path:
    target = clean.parent / name
    shutil.copytree(clean, target, symlinks=True)
    return target


def run_attacks(clean: Path, key_name: str, say: Say) -> list[AttackResult]:
    results: list[AttackResult] = []

    def pipeline_attack(title: str, mutate: Callable[[Path], None]) -> None:
        say(f"\n  [bold]{title}[/]")
        root = _copy(clean, title.split(":")[0].replace(" ", "-").lower())
        mutate(root)
        allowed, stage, rules, msg = _run(root, root / "keys" / key_name, say)
        results.append(AttackResult(title, not allowed, stage, rules, msg))

    def registry_attack(title: str, mutate: Callable[[Path, Path], None]) -> None:
        say(f"\n  [bold]{title}[/]")
        root = _copy(clean, title.split(":")[0].replace(" ", "-").lower())
        model = root / "model"
        mutate(root, model)
        allowed, rules, msg = _push(root, root / "keys" / key_name, model)
        results.append(AttackResult(title, not allowed, "registry push", rules, msg))

    def poison(root: Path) -> None:
        import numpy as np
        import pandas as pd

        path = root / "source" / "transactions.csv"
        frame = pd.read_csv(path)
        rng = np.random.default_rng(3)
        rows = rng.choice(len(frame), size=len(frame) // 20, replace=False)
        frame.loc[rows, "is_fraud"] = 1 - frame.loc[rows, "is_fraud"]  # 5 % of labels flipped
        frame.to_csv(path, index=False)

    def leak_token(root: Path) -> None:
        token = "hf_" + "".join("QmXk7RtP2sLw9ZcN4vBy6HdJ3fGa8Ue5Yo"[i] for i in range(34))
        (root / "project" / "settings.py").write_text(
            f'HF_TOKEN = "{token}"  # pushed by mistake\n'
        )

    def vulnerable_dependency(root: Path) -> None:
        with (root / "project" / "requirements.txt").open("a") as f:
            f.write("torch==2.5.1\n")

    def malicious_pickle(root: Path, model: Path) -> None:
        from secmlops.evidence.signing import KeySigner, sign_model

        (model / "model.safetensors").write_bytes(pickle.dumps(_Exec(), protocol=4))
        sign_model(model, KeySigner(root / "keys" / key_name))  # an insider re-signs it

    def tamper(_root: Path, model: Path) -> None:
        weights = model / "model.safetensors"
        data = bytearray(weights.read_bytes())
        data[-3] ^= 0x40  # one bit of one weight, after signing
        weights.write_bytes(bytes(data))

    def unsigned(_root: Path, model: Path) -> None:
        (model / "model.sig").unlink()

    pipeline_attack(
        "Poisoned training data: 5% of fraud labels flipped in the source export", poison
    )
    pipeline_attack("Leaked token: a Hugging Face token committed with the code", leak_token)
    pipeline_attack(
        "Vulnerable dependency: torch==2.5.1 added to requirements.txt", vulnerable_dependency
    )
    registry_attack(
        "Trojaned model: weights swapped for a code-running pickle, re-signed by an insider",
        malicious_pickle,
    )
    registry_attack("Tampered model: one bit of a signed weight changed", tamper)
    registry_attack("Unsigned model: the signature removed", unsigned)
    return results


def run_demo(workdir: Path, say: Say) -> int:
    """The whole story; 0 when the clean run registered and every attack was stopped."""
    clean = workdir / "clean"
    clean.mkdir(parents=True)
    say(f"[bold]secmlops demo[/] in {workdir}")
    say("  building the example: 40,000 generated card transactions (with made-up e-mails, card")
    say("  numbers and phone numbers), the training code, an offline database of 2 real advisories")
    key = build_project(clean)
    say(
        "\n[bold]1. The secured pipeline[/] (each stage: your code, its controls, a signed attestation, a gate)"
    )
    allowed, stage, rules, msg = _run(clean, key, say)
    if not allowed:
        say(f"[bold red]the clean pipeline was denied at {stage}: {', '.join(rules)}: {msg}[/]")
        return 1
    from secmlops.store.audit import verify_log

    reg = _registry(clean, key)
    info = reg.promote(
        "fraud-detector", "latest", "production", "ml-engineer", approver="risk-officer"
    )
    say(f"  registered and promoted [green]fraud-detector@{info.version}[/] to production "
        f"(approved by risk-officer; registrant ml-engineer)")  # fmt: skip
    metrics = json.loads((clean / "metrics.json").read_text())
    say(
        f"  metrics {metrics['metrics']}; true-positive rate per region {metrics['fairness']['tpr']}"
    )
    try:
        from secmlops.report.model_report import build_model_report, render_html

        report = clean / "report.html"
        report.write_text(
            render_html(build_model_report(info, verify_log(reg.engine))), encoding="utf-8"
        )
        say(f"  auditor's report: {report}")
    except Error as exc:
        say(f"  [red]report failed: {exc.message}[/]")
        return 1
    say("\n[bold]2. Attacks[/] (each starts from a copy of the project above)")
    results = run_attacks(clean, key.name, say)
    say("\n[bold]3. Verdicts[/]")
    ok = True
    for r in results:
        mark = "[green]BLOCKED[/]" if r.blocked else "[bold red]NOT BLOCKED[/]"
        say(f"  {mark} {r.attack}")
        if r.blocked:
            say(f"          at {r.stage} by {', '.join(r.rules)}: {r.detail[:160]}")
        ok &= r.blocked
    log = verify_log(reg.engine)
    say(f"\n  audit log: {log.records} records, chain {'intact' if log.ok else 'BROKEN'}")
    return 0 if ok and log.ok else 1
