"""The gateway serves ONNX and skops models as well as its linear safetensors format: scores equal
scikit-learn's own, and files that could run code or name untrusted types are refused with a
reason (never loaded)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import FunctionTransformer

from secmlops.evidence.keys import generate_private_key, write_key_pair
from secmlops.evidence.signing import KeySigner, PublicKeyTrust, sign_model
from secmlops.policy import evaluate_gate
from secmlops.serve.models import ModelEntry, load_models
from secmlops.store.artifacts import LocalStore
from secmlops.store.db import open_database
from secmlops.store.registry import GateDenied, Registry, signature_verifier

FEATURES = ["amount", "hour", "risk"]
FACTS = {"metrics": {"accuracy": 0.9}, "model_card": {"completeness": 1.0, "missing": []}}


@pytest.fixture(scope="module")
def trained() -> tuple[LogisticRegression, np.ndarray]:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 3))
    y = (x @ np.array([1.5, -2.0, 0.7]) + rng.normal(scale=0.5, size=300) > 0).astype(int)
    return LogisticRegression().fit(x, y), rng.normal(size=(20, 3))


def _serve(root: Path, files: dict[str, bytes], config: dict[str, object]) -> tuple[object, str]:
    """Sign and register a model folder; returns (loaded model or None, refusal reason)."""
    root.mkdir(parents=True, exist_ok=True)
    signing = root / "signing.pem"
    write_key_pair(generate_private_key(), signing)
    model = root / "model"
    model.mkdir()
    for name, data in files.items():
        (model / name).write_bytes(data)
    (model / "config.json").write_text(json.dumps({"features": FEATURES, **config}))
    sign_model(model, KeySigner(signing))
    trust = signature_verifier(PublicKeyTrust(signing.with_name("signing.pem.pub")))
    reg = Registry(LocalStore(root / "store"), open_database(f"sqlite:///{root / 'meta.db'}"),
                   verifier=trust, gate=evaluate_gate)  # fmt: skip
    try:
        reg.push(model, "m", model / "model.sig", "alice", facts=FACTS)
    except GateDenied as exc:  # the registry's own scan refused it: it never gets served either
        return None, exc.message
    reg.promote("m", "1", "production", "bob", approver="carol")
    result = load_models(reg, [ModelEntry("m", "production", ("bank-a",))])
    return result.loaded.get("m"), result.refused.get("m", "")


def _onnx_logistic(coef: np.ndarray, intercept: float, domain: str = "") -> bytes:
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(coef.reshape(3, 1).astype(np.float32), "W")
    b = numpy_helper.from_array(np.array([intercept], dtype=np.float32), "B")
    nodes = [helper.make_node("MatMul", ["X", "W"], ["z0"]), helper.make_node("Add", ["z0", "B"], ["z"]),
             helper.make_node("Sigmoid", ["z"], ["probabilities"], domain=domain)]  # fmt: skip
    graph = helper.make_graph(
        nodes, "logistic",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 1])],
        initializer=[w, b],
    )  # fmt: skip
    imports = [helper.make_opsetid("", 17)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    model = helper.make_model(graph, opset_imports=imports)
    model.ir_version = 8
    return model.SerializeToString()


def test_onnx_model_scores_like_scikit_learn(tmp_path: Path, trained) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    clf, x = trained
    onnx_bytes = _onnx_logistic(clf.coef_[0], float(clf.intercept_[0]))
    model, reason = _serve(tmp_path, {"model.onnx": onnx_bytes}, {"format": "onnx"})
    assert model is not None, reason
    served = [p["score"] for p in model.predict(x)]  # type: ignore[attr-defined]
    np.testing.assert_allclose(served, clf.predict_proba(x)[:, 1], atol=1e-5)


def test_onnx_with_a_custom_operator_domain_is_refused(tmp_path: Path, trained) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    clf, _ = trained
    onnx_bytes = _onnx_logistic(clf.coef_[0], 0.0, domain="com.evil.customops")
    model, reason = _serve(tmp_path, {"model.onnx": onnx_bytes}, {"format": "onnx"})
    assert model is None and "outside the standard domains" in reason


def test_skops_model_scores_like_scikit_learn(tmp_path: Path, trained) -> None:  # type: ignore[no-untyped-def]
    sio = pytest.importorskip("skops.io", reason="the skops extra is not installed")
    clf, x = trained
    model, reason = _serve(tmp_path, {"model.skops": sio.dumps(clf)}, {"format": "skops"})
    assert model is not None, reason
    served = [p["score"] for p in model.predict(x)]  # type: ignore[attr-defined]
    np.testing.assert_allclose(served, clf.predict_proba(x)[:, 1], atol=1e-6)


def test_skops_with_os_system_never_reaches_the_gateway(tmp_path: Path) -> None:
    sio = pytest.importorskip("skops.io", reason="the skops extra is not installed")
    # A transformer whose function is os.system: the registry's own scan refuses it at push.
    data = sio.dumps(FunctionTransformer(func=os.system))
    model, reason = _serve(tmp_path, {"model.skops": data},
                           {"format": "skops", "task": "regression"})  # fmt: skip
    assert model is None and "MODEL-SKOPS-DANGEROUS-TYPE" in reason


def test_skops_types_outside_the_trusted_list_need_config(tmp_path: Path, trained) -> None:  # type: ignore[no-untyped-def]
    sio = pytest.importorskip("skops.io", reason="the skops extra is not installed")
    from sklearn.neighbors import KNeighborsClassifier

    _, x = trained
    rng = np.random.default_rng(5)
    fit_x = rng.normal(size=(60, 3))
    knn = KNeighborsClassifier(algorithm="kd_tree").fit(fit_x, (fit_x[:, 0] > 0).astype(int))
    data = sio.dumps(knn)
    model, reason = _serve(tmp_path / "a", {"model.skops": data}, {"format": "skops"})
    assert model is None and "not trusted" in reason and "KDTree" in reason
    extra = sorted(sio.get_untrusted_types(data=data))  # reviewed: scikit-learn's own types
    model, reason = _serve(tmp_path / "b", {"model.skops": data},
                           {"format": "skops", "trusted_types": extra})  # fmt: skip
    assert model is not None, reason
    served = [p["score"] for p in model.predict(x)]  # type: ignore[attr-defined]
    np.testing.assert_allclose(served, knn.predict_proba(x)[:, 1])


@pytest.mark.parametrize(
    ("files", "config", "message"),
    [
        ({"model.onnx": b"\x08\x07garbage"}, {"format": "onnx"}, "model.onnx"),
        ({"model.skops": b"PK\x03\x04broken"}, {"format": "skops"}, "MODEL-SCAN"),
        ({"x.bin": b"1"}, {"format": "onnx"}, "unsafe or unknown format"),
        ({"model.onnx": b""}, {"format": "tflite"}, "unknown model format"),
        ({"model.skops": b""}, {"format": "onnx"}, "needs model.onnx"),
        ({"model.skops": b""}, {"format": "skops", "trusted_types": ["builtins.eval"]}, "trusted_types"),
        ({"model.onnx": b""}, {"format": "onnx", "task": "ranking"}, "unknown task"),
    ],
)  # fmt: skip
def test_broken_or_hostile_models_are_refused_with_a_reason(
    tmp_path: Path, files: dict[str, bytes], config: dict[str, object], message: str
) -> None:
    pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    pytest.importorskip("skops", reason="the skops extra is not installed")
    model, reason = _serve(tmp_path, files, config)
    assert model is None and message in reason, reason
