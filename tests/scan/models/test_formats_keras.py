"""Keras `.keras` archives: Lambda bytecode, dangerous modules, safe-mode bypasses; real files pass."""

from __future__ import annotations

import base64
import contextlib
import copy
import io
import json
import marshal
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import secmlops.scan.models.formats.keras as keras_format
from secmlops.errors import ScanError
from secmlops.findings import Location, Report, Severity
from secmlops.scan.models import ModelScanSettings, scan_paths
from secmlops.scan.models.engine import Blob, ScanContext
from secmlops.scan.models.formats.keras import (
    KerasScanner,
    check_keras_config,
    decode_function_code,
)

LAMBDA = "MODEL-KERAS-LAMBDA"
DANGEROUS = "MODEL-KERAS-DANGEROUS-CALLABLE"
SAFE_MODE = "MODEL-KERAS-SAFE-MODE-BYPASS"
CUSTOM = "MODEL-KERAS-CUSTOM-OBJECT"
TFOP = "MODEL-KERAS-TFOPLAMBDA"
EXTERNAL = "MODEL-KERAS-EXTERNAL-RESOURCE"

DTYPE = {
    "module": "keras",
    "class_name": "DTypePolicy",
    "config": {"name": "float32"},
    "registered_name": None,
}


def layer(class_name: str, config: dict[str, Any], module: str = "keras.layers") -> dict[str, Any]:
    return {"module": module, "class_name": class_name, "config": config, "registered_name": None}


def dense(name: str, units: int, activation: Any = "relu") -> dict[str, Any]:
    return layer(
        "Dense",
        {
            "name": name,
            "trainable": True,
            "dtype": DTYPE,
            "units": units,
            "activation": activation,
            "use_bias": True,
            "kernel_initializer": layer("GlorotUniform", {"seed": None}, "keras.initializers"),
            "bias_initializer": layer("Zeros", {}, "keras.initializers"),
            "kernel_regularizer": None,
            "bias_regularizer": None,
        },
    )


def sequential(*layers: dict[str, Any]) -> dict[str, Any]:
    """A Keras 3 Sequential config laid out the way `model.save()` writes it."""
    return {
        "module": "keras",
        "class_name": "Sequential",
        "config": {
            "name": "sequential",
            "trainable": True,
            "dtype": DTYPE,
            "layers": [
                layer(
                    "InputLayer",
                    {"batch_shape": [None, 4], "dtype": "float32", "name": "input_layer"},
                ),
                *layers,
            ],
            "build_input_shape": [None, 4],
        },
        "registered_name": None,
        "build_config": {"input_shape": [None, 4]},
        "compile_config": {
            "optimizer": layer(
                "Adam", {"name": "adam", "learning_rate": 0.001}, "keras.optimizers"
            ),
            "loss": "mean_squared_error",
            "metrics": ["mae"],
            "loss_weights": None,
            "jit_compile": False,
        },
    }


def weights_h5() -> bytes:
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        f.create_group("layers/dense/vars").create_dataset("0", data=np.zeros((4, 3), np.float32))
        f["layers/dense/vars"].create_dataset("1", data=np.zeros(3, np.float32))
        f.create_group("optimizer/vars")
    return buf.getvalue()


def keras_file(path: Path, config: Any, members: dict[str, bytes] | None = None) -> Path:
    """A `.keras` zip with the members Keras writes, in Keras' order."""
    raw = config if isinstance(config, bytes) else json.dumps(config).encode()
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(
            "metadata.json",
            json.dumps({"keras_version": "3.10.0", "date_saved": "2025-01-01@00:00:00"}),
        )
        z.writestr("config.json", raw)
        z.writestr("model.weights.h5", weights_h5())
        for name, data in (members or {}).items():
            z.writestr(name, data)
    return path


def lambda_code(fn: Any) -> str:
    return base64.b64encode(marshal.dumps(fn.__code__)).decode("ascii")


def keras3_lambda(fn: Any, name: str = "lambda") -> dict[str, Any]:
    function = {
        "class_name": "__lambda__",
        "config": {"code": lambda_code(fn), "defaults": None, "closure": None},
    }
    return layer(
        "Lambda",
        {"name": name, "trainable": True, "dtype": DTYPE, "function": function, "arguments": {}},
    )


def function_ref(module: str, name: str) -> dict[str, Any]:
    return {
        "module": module,
        "class_name": "function",
        "config": name,
        "registered_name": "function",
    }


def findings(path: Path, floor: Severity = Severity.MEDIUM) -> dict[str, Severity]:
    report = scan_paths([path])
    assert not report.errors, report.errors
    return {f.rule_id: f.severity for f in report.findings if f.severity >= floor}


# -- benign ---------------------------------------------------------------------------------


def test_sequential_model_is_clean_and_recognised(tmp_path: Path) -> None:
    path = keras_file(
        tmp_path / "m.keras",
        sequential(dense("dense", 3), layer("Dropout", {"name": "d", "rate": 0.1})),
    )
    assert KerasScanner().sniff(Blob.from_path(path, str(path)))
    report = scan_paths([path])
    assert report.findings == [] and not report.errors


def test_functional_model_is_clean(tmp_path: Path) -> None:
    tensor = {
        "class_name": "__keras_tensor__",
        "config": {"shape": [None, 4], "dtype": "float32", "keras_history": ["input_layer", 0, 0]},
    }
    out = dense("dense", 2, activation="softmax")
    out["inbound_nodes"] = [{"args": [tensor], "kwargs": {}}]
    config = {
        "module": "keras.src.models.functional",
        "class_name": "Functional",
        "config": {
            "name": "functional",
            "layers": [out],
            "input_layers": [["input_layer", 0, 0]],
            "output_layers": [["dense", 0, 0]],
        },
        "registered_name": "Functional",
    }
    assert findings(keras_file(tmp_path / "f.keras", config)) == {}


def test_official_add_on_package_is_low_only(tmp_path: Path) -> None:
    backbone = {
        "module": "keras_hub.src.models.gemma.gemma_backbone",
        "class_name": "GemmaBackbone",
        "config": {"name": "gemma_backbone", "vocabulary_size": 256},
        "registered_name": "keras_hub>GemmaBackbone",
    }
    path = keras_file(tmp_path / "hub.keras", backbone)
    assert findings(path) == {}
    assert findings(path, Severity.INFO) == {CUSTOM: Severity.LOW}


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_real_keras_files_are_clean_and_real_lambda_is_caught(tmp_path: Path) -> None:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    plain = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3, activation="relu"), keras.layers.Dense(1)]
    )
    plain.compile(optimizer="adam", loss="mse", metrics=["mae"])
    plain.save(tmp_path / "plain.keras")
    plain.save_weights(tmp_path / "plain.weights.h5")
    assert findings(tmp_path / "plain.keras") == {}
    assert findings(tmp_path / "plain.weights.h5") == {}
    lam = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda x: x * 2)])
    lam.save(tmp_path / "lambda.keras")
    assert findings(tmp_path / "lambda.keras") == {LAMBDA: Severity.CRITICAL}


# -- attacks ---------------------------------------------------------------------------------


def test_lambda_bytecode_is_critical_and_named(tmp_path: Path) -> None:
    config = sequential(keras3_lambda(lambda x: __import__("os").system("id") or x, name="pwn"))
    report = scan_paths([keras_file(tmp_path / "m.keras", config)])
    hit = next(f for f in report.findings if f.rule_id == LAMBDA)
    assert hit.severity is Severity.CRITICAL
    assert {"os", "system", "__import__"} <= set(hit.evidence["suspicious"])
    assert "'pwn'" in hit.message and hit.location.member == "config.json"
    assert len([f for f in report.findings if f.rule_id == LAMBDA]) == 1


def test_lambda_in_output_shape_and_activation_is_critical(tmp_path: Path) -> None:
    lam = keras3_lambda(lambda x: x)
    lam["config"]["output_shape"] = {
        "class_name": "__lambda__",
        "config": {"code": lambda_code(lambda s: s)},
    }
    act = dense(
        "dense",
        3,
        activation={"class_name": "__lambda__", "config": {"code": lambda_code(lambda x: x)}},
    )
    report = scan_paths([keras_file(tmp_path / "m.keras", sequential(lam, act))])
    assert len([f for f in report.findings if f.rule_id == LAMBDA]) == 2


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        (function_ref("builtins", "exec"), DANGEROUS),
        (function_ref("os", "system"), DANGEROUS),
        (
            {
                "module": "subprocess",
                "class_name": "Popen",
                "config": {"args": "id"},
                "registered_name": None,
            },
            DANGEROUS,
        ),
        (function_ref("keras.src.utils.file_utils", "get_file"), DANGEROUS),
        (function_ref("keras.src.saving.saving_api", "load_model"), DANGEROUS),
        (
            function_ref("keras.src.saving.serialization_lib", "enable_unsafe_deserialization"),
            SAFE_MODE,
        ),
        (
            {
                "module": "my_company.layers",
                "class_name": "MyLayer",
                "config": {},
                "registered_name": "MyCo>MyLayer",
            },
            CUSTOM,
        ),
        ({"class_name": "MyCo>MyLayer", "config": {}}, CUSTOM),
    ],
)
def test_objects_outside_keras(tmp_path: Path, ref: dict[str, Any], expected: str) -> None:
    path = keras_file(tmp_path / "m.keras", sequential(dense("dense", 3, activation=ref)))
    got = findings(path)
    assert expected in got
    assert got[expected] is (Severity.HIGH if expected == CUSTOM else Severity.CRITICAL)


def test_nested_loader_with_safe_mode_off(tmp_path: Path) -> None:
    nested = layer(
        "Wrapper",
        {
            "name": "w",
            "loader": function_ref("keras.src.saving.saving_api", "load_model"),
            "filepath": "/tmp/evil.h5",
            "safe_mode": False,
        },
    )
    got = findings(keras_file(tmp_path / "m.keras", sequential(nested)))
    assert {SAFE_MODE, DANGEROUS, EXTERNAL} <= set(got)


def test_keras2_named_function_lambda_from_os(tmp_path: Path) -> None:
    lam = {
        "class_name": "Lambda",
        "config": {
            "name": "l",
            "function": "system",
            "function_type": "function",
            "module": "os",
            "arguments": {},
        },
    }
    report = scan_paths([keras_file(tmp_path / "m.keras", sequential(lam))])
    hit = next(f for f in report.findings if f.rule_id == LAMBDA)
    assert hit.evidence["function"] == "os.system" and "dangerous module" in hit.message


@pytest.mark.parametrize(
    ("function", "severity"), [("math.add", Severity.HIGH), ("io.write_file", Severity.CRITICAL)]
)
def test_tf_op_lambda(tmp_path: Path, function: str, severity: Severity) -> None:
    op = {"class_name": "TFOpLambda", "config": {"name": "tf.op", "function": function}}
    assert findings(keras_file(tmp_path / "m.keras", sequential(op))) == {TFOP: severity}


@pytest.mark.parametrize(
    ("class_name", "key", "value"),
    [
        ("StringLookup", "vocabulary", "/etc/passwd"),
        ("TFSMLayer", "filepath", "exported_model"),
        ("Dense", "origin", "https://example.invalid/payload"),
    ],
)
def test_layers_that_read_files_or_urls(
    tmp_path: Path, class_name: str, key: str, value: str
) -> None:
    lookup = layer(class_name, {"name": "x", key: value})
    assert findings(keras_file(tmp_path / "m.keras", sequential(lookup))) == {
        EXTERNAL: Severity.HIGH
    }


def test_every_copy_of_config_json_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "dup.keras"
    keras_file(path, sequential(dense("dense", 3)))
    with zipfile.ZipFile(path, "a") as z, pytest.warns(UserWarning, match="Duplicate name"):
        z.writestr("config.json", json.dumps(sequential(keras3_lambda(lambda x: x))))
    report = scan_paths([path])
    assert LAMBDA in {f.rule_id for f in report.findings}


def test_decoder_reads_names_without_unmarshalling() -> None:
    strings = decode_function_code(
        lambda_code(lambda x: __import__("subprocess").check_output(["id"]))
    )
    assert strings is not None and {"subprocess", "check_output", "id"} <= set(strings)
    assert decode_function_code("!!! not base64 !!!") in (None, [])


# -- sniffing and broken input ---------------------------------------------------------------


def test_zip_without_keras_members_is_not_claimed(tmp_path: Path) -> None:
    path = tmp_path / "other.keras"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("config.json", "{}")
    assert not KerasScanner().sniff(Blob.from_path(path, str(path)))


@pytest.mark.parametrize("config", [b"{not json", b"\xff\xfe", b"[" * 100_000])
def test_unreadable_config_fails_closed(tmp_path: Path, config: bytes) -> None:
    report = scan_paths([keras_file(tmp_path / "m.keras", config)])
    assert report.errors and report.exit_code(Severity.HIGH) == 2


def test_oversized_config_fails_closed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keras_format, "MAX_CONFIG_BYTES", 1000)
    config = sequential(*(dense(f"d{i}", 3) for i in range(20)))
    report = scan_paths([keras_file(tmp_path / "m.keras", config)])
    assert report.errors


def test_truncated_archive_is_never_clean(tmp_path: Path) -> None:
    data = keras_file(tmp_path / "full.keras", sequential(dense("dense", 3))).read_bytes()
    for cut in (100, len(data) // 2, len(data) - 10):
        path = tmp_path / "cut.keras"
        path.write_bytes(data[:cut])
        report = scan_paths([path])
        assert report.errors or any(f.severity >= Severity.MEDIUM for f in report.findings), cut


def _scan_directly(data: bytes) -> None:
    report = Report(kind="models")
    with tempfile.TemporaryDirectory() as tmp:
        ctx = ScanContext(report, ModelScanSettings(), (KerasScanner(),), Path(tmp))
        blob = Blob.from_bytes(data, Location(path="fuzz.keras"), 0, "fuzz.keras")
        scanner = KerasScanner()
        if scanner.sniff(blob):
            with contextlib.suppress(ScanError):
                scanner.scan(blob, ctx)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_random_config_bytes_only_ever_raise_scan_error(config: bytes) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("metadata.json", "{}")
        z.writestr("config.json", config)
    _scan_directly(buf.getvalue())


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=20)
    | st.sampled_from(
        [
            "Lambda",
            "__lambda__",
            "builtins",
            "keras.layers",
            "function",
            "enable_unsafe_deserialization",
        ]
    ),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "class_name",
                    "module",
                    "config",
                    "registered_name",
                    "function",
                    "function_type",
                    "safe_mode",
                    "vocabulary",
                    "layers",
                    "code",
                ]
            ),
            children,
            max_size=5,
        )
    ),
    max_leaves=30,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_json)
def test_random_configs_never_crash_the_walk(config: Any) -> None:
    report = Report(kind="models")
    with tempfile.TemporaryDirectory() as tmp:
        ctx = ScanContext(report, ModelScanSettings(), (), Path(tmp))
        check_keras_config(copy.deepcopy(config), Location(path="x.keras"), ctx)
