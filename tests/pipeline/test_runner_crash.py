"""SIGKILL the pipeline runner at random moments; the next run must finish from a consistent state:
no stage counts as done unless its outputs are the bytes it recorded, and every stored attestation
is complete and verifies."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from secmlops.evidence.attest import open_envelope
from secmlops.evidence.keys import generate_private_key, load_public_key, write_key_pair
from secmlops.pipeline.runner import run_pipeline, tree_digest
from secmlops.pipeline.spec import load_pipeline
from secmlops.store.artifacts import LocalStore

STEPS = """
import time
def slow(ctx):
    out = ctx.outputs[0]
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w") as f:           # written in pieces: a kill can leave a partial file
        for i in range(20):
            f.write(ctx.stage.name * 1000)
            f.flush()
            time.sleep(0.01)
"""
SPEC = """
name: crash
model: crash
model_path: out/c.txt
stages:
  - {name: a, run: "steps:slow", outputs: [out/a.txt]}
  - {name: b, run: "steps:slow", inputs: [out/a.txt], outputs: [out/b.txt]}
  - {name: c, run: "steps:slow", inputs: [out/b.txt], outputs: [out/c.txt]}
"""
WORKER = """
import sys
from pathlib import Path
from secmlops.pipeline.runner import run_pipeline
from secmlops.pipeline.spec import load_pipeline
root = Path(sys.argv[1])
print("ready", flush=True)
run_pipeline(load_pipeline(root / "pipeline.yaml"), root, key_path=root / "key.pem",
             home=root / ".secmlops", controls={}, force=True)
"""


def test_sigkill_leaves_a_consistent_run_state(tmp_path: Path) -> None:
    (tmp_path / "steps.py").write_text(STEPS)
    (tmp_path / "pipeline.yaml").write_text(SPEC)
    write_key_pair(generate_private_key(), tmp_path / "key.pem")
    rng = random.Random(7)
    for _ in range(6):
        proc = subprocess.Popen(
            [sys.executable, "-c", WORKER, str(tmp_path)], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 1.2))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    # Every record that survived names outputs whose bytes it recorded, or the stage reruns.
    outcomes, _ = run_pipeline(load_pipeline(tmp_path / "pipeline.yaml"), tmp_path,
                               key_path=tmp_path / "key.pem", home=tmp_path / ".secmlops", controls={})  # fmt: skip
    assert [o.name for o in outcomes] == ["a", "b", "c"]
    for name in "abc":
        assert (tmp_path / f"out/{name}.txt").read_text() == name * 20_000
        record = json.loads(
            (tmp_path / ".secmlops" / "runs" / "crash" / f"{name}.json").read_text()
        )
        assert record["outputs"] == {f"out/{name}.txt": tree_digest(tmp_path / f"out/{name}.txt")}
    store = LocalStore(tmp_path / ".secmlops" / "store")
    public = load_public_key(tmp_path / "key.pem.pub")
    digests = list(store.iter_digests())
    assert digests
    for digest in digests:  # no partial object: each one re-hashes to its name and verifies
        open_envelope(store.read_bytes(digest), public)
