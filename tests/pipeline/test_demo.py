"""The README's first command: the example pipeline passes and every replayed attack is blocked
for its documented reason — and no attack payload ever runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from secmlops.pipeline.demo import MARKER

EXPECTED = {
    "Poisoned training data": "POLICY-POISONED-DATA",
    "Leaked token": "SECRET-HUGGINGFACE-TOKEN",
    "Vulnerable dependency": "POLICY-VULNERABLE-DEPENDENCY",
    "Trojaned model": "POLICY-UNSAFE-SERIALIZATION",
    "Tampered model": "POLICY-SIGNATURE-INVALID",
    "Unsigned model": "POLICY-SIGNATURE-REQUIRED",
}


def test_demo_blocks_every_attack(tmp_path: Path) -> None:
    work = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "secmlops", "demo", "--keep", str(work)],
        capture_output=True, text=True, timeout=900, cwd=tmp_path,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "registered and promoted fraud-detector@1 to production" in out
    verdicts = out.split("3. Verdicts", 1)[1]
    for attack, rule in EXPECTED.items():
        line = next(i for i, text in enumerate(verdicts.splitlines()) if attack in text)
        block = "\n".join(verdicts.splitlines()[line : line + 2])
        assert "BLOCKED" in block and "NOT BLOCKED" not in block, block
        assert rule in block, block
    assert "chain intact" in out
    assert (work / "clean" / "report.html").is_file()
    assert MARKER not in out + result.stderr  # the trojaned pickle was never loaded
