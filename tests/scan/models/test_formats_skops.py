"""skops files: a FunctionTransformer holding os.system is caught (and proven to run a command
when loaded the way users load skops files), real scikit-learn models pass, broken schemas fail
closed."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from secmlops.scan.models import scan_paths

sio = pytest.importorskip("skops.io", reason="skops (test extra) is not installed")


def _ids(path: Path) -> list[str]:
    return sorted({f.rule_id for f in scan_paths([path]).findings})


def test_os_system_transformer_is_critical_and_really_runs(tmp_path: Path) -> None:
    from sklearn.preprocessing import FunctionTransformer

    evil = tmp_path / "model.skops"
    sio.dump(FunctionTransformer(func=os.system), evil)
    report = scan_paths([evil])
    assert [(f.rule_id, f.severity.name) for f in report.findings] == [
        ("MODEL-SKOPS-DANGEROUS-TYPE", "CRITICAL")
    ]
    # Proof, in a subprocess: loaded as users do (trusting what get_untrusted_types lists), the
    # model runs a shell command on its input.
    marker = tmp_path / "ran"
    code = (
        "import skops.io as sio, sys\n"
        f"m = sio.load({str(evil)!r}, trusted=sio.get_untrusted_types(file={str(evil)!r}))\n"
        f"m.transform('touch {marker}')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120, capture_output=True)
    assert marker.exists()


def test_real_scikit_learn_models_pass(tmp_path: Path) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 3))
    y = (x[:, 0] > 0).astype(int)
    for i, model in enumerate([
        LogisticRegression().fit(x, y),
        make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y),
        RandomForestClassifier(n_estimators=3, random_state=0).fit(x, y),
        HistGradientBoostingClassifier(max_iter=3).fit(x, y),
        FunctionTransformer(func=np.log1p),  # a NumPy ufunc is data, not code of the author's
    ]):  # fmt: skip
        path = tmp_path / f"m{i}.skops"
        sio.dump(model, path)
        assert _ids(path) == [], type(model).__name__


@pytest.mark.parametrize(
    "schema",
    [b'{"__loader__": "ObjectNode", "__module__": "sklearn', b"[" * 200_000 + b"]" * 200_000,
     b'{"__loader__": 1, "content": ' + b"[" * 100_000],
)  # fmt: skip
def test_broken_schema_fails_closed(tmp_path: Path, schema: bytes) -> None:
    path = tmp_path / "broken.skops"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(
            "schema.json",
            b'{"__loader__": "x", "content": ' + schema if schema[:1] == b"[" else schema,
        )
    report = scan_paths([path])
    assert report.errors, "a schema that cannot be checked must not be reported clean"
    assert "MODEL-SKOPS-MALFORMED" in {f.rule_id for f in report.findings}
