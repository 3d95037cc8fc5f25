"""Files written the ordinary way by the real libraries pass with no finding at medium or above."""

from __future__ import annotations

import functools
import pickle
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from sklearn.svm import SVC

from secmlops.findings import Severity
from secmlops.scan.models import scan_paths

RNG = np.random.default_rng(0)
X = RNG.normal(size=(80, 4))
Y = (X[:, 0] + X[:, 1] > 0).astype(int)


def assert_clean(path: Path) -> None:
    report = scan_paths([path])
    bad = [f for f in report.findings if f.severity >= Severity.MEDIUM]
    assert not bad, [(f.rule_id, f.message) for f in bad]
    assert not report.errors, report.errors


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = torch.nn.Embedding(10, 4)
        self.lin = torch.nn.Linear(4, 10, bias=False)
        self.lin.weight = self.emb.weight  # tied
        self.norm = torch.nn.LayerNorm(4)
        self.conv = torch.nn.Conv1d(4, 4, 3)
        self.bn = torch.nn.BatchNorm1d(4)


@pytest.mark.parametrize("zip_format", [True, False])
def test_torch_state_dicts(tmp_path: Path, zip_format: bool) -> None:
    state = Net().state_dict()
    state["half"] = torch.ones(3, dtype=torch.float16)
    state["bf16"] = torch.ones(3, dtype=torch.bfloat16)
    state["view"] = torch.arange(20.0).reshape(4, 5).t()
    state["int"] = torch.arange(5)
    state["bool"] = torch.tensor([True, False])
    torch.save(state, tmp_path / "m.pt", _use_new_zipfile_serialization=zip_format)
    assert_clean(tmp_path / "m.pt")


def test_torch_optimizer_checkpoint(tmp_path: Path) -> None:
    net = Net()
    opt = torch.optim.Adam(net.parameters())
    net.lin.weight.sum().backward()
    opt.step()
    torch.save(
        {"model": net.state_dict(), "optim": opt.state_dict(), "epoch": 3, "lr": 0.1},
        tmp_path / "c.pt",
    )
    assert_clean(tmp_path / "c.pt")


def test_torchscript_module_is_only_informational(tmp_path: Path) -> None:
    scripted = torch.jit.script(torch.nn.Sequential(torch.nn.Linear(4, 2), torch.nn.ReLU()))
    scripted.save(str(tmp_path / "s.pt"))
    report = scan_paths([tmp_path / "s.pt"])
    assert not [f for f in report.findings if f.severity >= Severity.HIGH], report.findings
    assert "MODEL-TORCHSCRIPT-CODE" in {f.rule_id for f in report.findings}


ESTIMATORS = {
    "logreg": lambda: make_pipeline(StandardScaler(), LogisticRegression()),
    "forest": lambda: RandomForestClassifier(n_estimators=5, random_state=0),
    "gbm": lambda: GradientBoostingClassifier(n_estimators=5),
    "hgb": lambda: HistGradientBoostingClassifier(max_iter=5),
    "svc": lambda: SVC(probability=True),
    "knn": lambda: KNeighborsClassifier(),
    "log1p": lambda: make_pipeline(FunctionTransformer(np.log1p), LogisticRegression()),
}


@functools.cache
def fitted(name: str) -> object:
    return ESTIMATORS[name]().fit(np.abs(X) if name == "log1p" else X, Y)


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
@pytest.mark.parametrize("compress", [0, 3, "gzip", "bz2", "lzma", "xz"])
def test_joblib_sklearn(tmp_path: Path, name: str, compress: object) -> None:
    joblib.dump(fitted(name), tmp_path / "m.joblib", compress=compress)
    assert_clean(tmp_path / "m.joblib")


def test_column_transformer_with_categories(tmp_path: Path) -> None:
    frame = pd.DataFrame({"num": X[:, 0], "cat": RNG.choice(["a", "b", "c"], size=len(X))})
    model = make_pipeline(
        ColumnTransformer([("n", StandardScaler(), ["num"]), ("c", OneHotEncoder(), ["cat"])]),
        LogisticRegression(),
    ).fit(frame, Y)
    for protocol in (2, 4, 5):
        (tmp_path / f"p{protocol}.pkl").write_bytes(pickle.dumps(model, protocol=protocol))
        assert_clean(tmp_path / f"p{protocol}.pkl")


def test_numpy_files(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", X)
    np.savez(tmp_path / "b.npz", x=X, y=Y)
    np.savez_compressed(tmp_path / "c.npz", x=X)
    np.save(tmp_path / "s.npy", np.zeros(3, dtype=[("a", "<i4"), ("b", "<f8")]))
    assert_clean(tmp_path)


def test_pandas_pickles(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "f": X[:, 0],
            "i": np.arange(len(X)),
            "s": ["x"] * len(X),
            "c": pd.Categorical(["a", "b"] * (len(X) // 2)),
            "t": pd.date_range("2024-01-01", periods=len(X), tz="UTC"),
        }
    )
    frame.to_pickle(tmp_path / "df.pkl")
    frame.to_pickle(tmp_path / "df.pkl.gz")
    assert_clean(tmp_path)
