"""The pipeline's data controls read the project's secmlops.toml ([poisoning], [pii])."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from secmlops.errors import ConfigError
from secmlops.evidence.keys import generate_private_key
from secmlops.pipeline.controls import poisoning
from secmlops.pipeline.runner import StageContext
from secmlops.pipeline.spec import PipelineSpec, StageSpec


def _context(root: Path) -> StageContext:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3))
    y = (x[:, 0] > 0).astype(int)
    y[:40] = 1 - y[:40]  # 10 % flipped labels: many label-issue rows to list
    (root / "train.csv").parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": y}).to_csv(
        root / "train.csv", index=False
    )
    stage = StageSpec(name="prepare", outputs=["train.csv"])
    spec = PipelineSpec(name="p", model="m", model_path="model", stages=[stage])
    return StageContext(root, spec, stage, {}, generate_private_key(), root / "k.pem", root / ".h",
                        {"label": "y", "checks": ["label"]})  # fmt: skip


def _listed_rows(result: object) -> int:
    findings = [f for f in result.findings if f["rule_id"] == "DATA-POISON-LABEL"]  # type: ignore[attr-defined]
    assert findings
    return max(len(f["evidence"]["scores"]) for f in findings)


def test_poisoning_control_reads_the_project_config(tmp_path: Path) -> None:
    default_listed = _listed_rows(poisoning(_context(tmp_path / "a")))
    assert default_listed > 3
    project = tmp_path / "b"
    project.mkdir()
    (project / "secmlops.toml").write_text("[poisoning]\nmax_rows_listed = 3\n")
    assert _listed_rows(poisoning(_context(project))) == 3


def test_bad_project_config_stops_the_control(tmp_path: Path) -> None:
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "secmlops.toml").write_text("[poisoning]\nmax_rows_listd = 3\n")
    with pytest.raises(ConfigError, match="max_rows_listd"):
        poisoning(_context(tmp_path))
