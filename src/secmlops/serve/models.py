"""Models the gateway serves: loaded from the registry only after their signature verifies and their
recorded gate decision allows, and only from formats that cannot run code when loaded:

- `linear`: a linear/logistic model as safetensors (`coef`, `intercept`, `mean`, `scale`);
- `onnx`: `model.onnx` run by onnxruntime (the `[onnx]` extra), operators of the standard ONNX and
  ONNX-ML domains only (a custom-op library is never loaded);
- `skops`: `model.skops` loaded by skops.io with an explicit list of trusted types: a file that
  names any other type is refused, never loaded (the `[skops]` extra).

`config.json` beside the model names its `features` (order of the input columns), optional
`ranges` per feature, `task` (`binary-classification` or `regression`) and, for onnx/skops,
optional `mean`/`scale` per feature for the extraction monitor's standardised space.
Never pickle."""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from secmlops.errors import GatewayError
from secmlops.store.registry import Registry

MAX_HEADER = 16 << 20
MAX_BATCH = 256
_DTYPES = {"F64": "<f8", "F32": "<f4"}


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Tensors of a safetensors file, every offset checked; F32/F64 only (what linear models need)."""
    raw = path.read_bytes()
    if len(raw) < 8:
        raise GatewayError(f"{path.name} is not a safetensors file (too short)")
    (size,) = struct.unpack("<Q", raw[:8])
    if size > min(MAX_HEADER, len(raw) - 8):
        raise GatewayError(f"{path.name}: safetensors header length {size} is invalid")
    try:
        header = json.loads(raw[8 : 8 + size])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise GatewayError(f"{path.name}: safetensors header is not JSON") from exc
    if not isinstance(header, dict):
        raise GatewayError(f"{path.name}: safetensors header is not an object")
    body = memoryview(raw)[8 + size :]
    tensors: dict[str, np.ndarray] = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype = _DTYPES[meta["dtype"]]
            shape = [int(d) for d in meta["shape"]]
            start, end = (int(x) for x in meta["data_offsets"])
        except (KeyError, TypeError, ValueError) as exc:
            raise GatewayError(
                f"{path.name}: tensor {name!r} has an unsupported or invalid entry"
            ) from exc
        count = math.prod(shape)
        if not 0 <= start <= end <= len(body) or end - start != count * np.dtype(dtype).itemsize:
            raise GatewayError(f"{path.name}: tensor {name!r} has inconsistent offsets")
        tensors[name] = np.frombuffer(body[start:end], dtype=dtype).reshape(shape).astype("<f8")
    return tensors


Scorer = Callable[[np.ndarray], np.ndarray]  # float64 matrix -> one score per row


@dataclass(frozen=True, slots=True)
class TabularModel:
    """A model over named numeric features, with recorded input ranges, behind one scorer."""

    name: str
    version: int
    tenants: frozenset[str]
    features: tuple[str, ...]
    scorer: Scorer
    mean: np.ndarray  # the extraction monitor's standardisation (zeros/ones when unknown)
    scale: np.ndarray
    ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    task: str = "binary-classification"
    format: str = "linear"

    def validate(self, body: Any) -> np.ndarray:
        """`{"instances": [[...], ...]}` or `{"instances": [{feature: value}, ...]}` → matrix."""
        if not isinstance(body, Mapping) or set(body) != {"instances"}:
            raise GatewayError('body must be {"instances": [...]}')
        rows = body["instances"]
        if not isinstance(rows, list) or not 1 <= len(rows) <= MAX_BATCH:
            raise GatewayError(f"instances must be a list of 1..{MAX_BATCH} rows")
        matrix = np.empty((len(rows), len(self.features)))
        for i, row in enumerate(rows):
            values: Sequence[Any]
            if isinstance(row, Mapping):
                if set(row) != set(self.features):
                    raise GatewayError(
                        f"row {i}: expected exactly the features {list(self.features)}"
                    )
                values = [row[f] for f in self.features]
            elif isinstance(row, list) and len(row) == len(self.features):
                values = row
            else:
                raise GatewayError(f"row {i}: expected {len(self.features)} values")
            for j, v in enumerate(values):
                if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                    raise GatewayError(f"row {i}: {self.features[j]} must be a finite number")
                low, high = self.ranges.get(self.features[j], (-math.inf, math.inf))
                if not low <= v <= high:
                    raise GatewayError(f"row {i}: {self.features[j]}={v} outside [{low}, {high}]")
                matrix[i, j] = v
        return matrix

    def predict(self, matrix: np.ndarray) -> list[dict[str, float]]:
        scores = np.asarray(self.scorer(matrix), dtype=np.float64).reshape(-1)
        if scores.shape[0] != matrix.shape[0] or not np.all(np.isfinite(scores)):
            raise GatewayError(f"{self.name}: the model returned {scores.shape[0]} scores "
                               f"for {matrix.shape[0]} rows, or a non-finite score")  # fmt: skip
        if self.task == "regression":
            return [{"score": round(float(p), 6)} for p in scores]
        return [{"score": round(float(p), 6), "label": int(p >= 0.5)} for p in scores]


@dataclass(frozen=True, slots=True)
class ModelEntry:
    name: str
    ref: str
    tenants: tuple[str, ...]


@dataclass
class LoadResult:
    loaded: dict[str, TabularModel] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)


def load_models(registry: Registry, entries: Sequence[ModelEntry]) -> LoadResult:
    """Verify and load every configured model; refusals keep their reason (admin endpoint, audit)."""
    result = LoadResult()
    for entry in entries:
        try:
            result.loaded[entry.name] = _load_one(registry, entry)
        except Exception as exc:  # any failure refuses the model; the reason is what operators need
            result.refused[entry.name] = (
                getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            )
    return result


FORMATS = {"linear": "model.safetensors", "onnx": "model.onnx", "skops": "model.skops"}
# Types a skops file may name unless the model's config.json trusts more (each must be in the
# scikit-learn or numpy namespaces): the estimators the built-in pipelines produce.
DEFAULT_SKOPS_TRUSTED = (
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.linear_model._base.LinearRegression",
    "sklearn.linear_model._ridge.Ridge",
    "sklearn.pipeline.Pipeline",
    "sklearn.preprocessing._data.StandardScaler",
    "sklearn.ensemble._forest.RandomForestClassifier",
    "sklearn.ensemble._forest.RandomForestRegressor",
    "sklearn.tree._classes.DecisionTreeClassifier",
    "sklearn.tree._classes.DecisionTreeRegressor",
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._gb.GradientBoostingClassifier",
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
)


def _load_one(registry: Registry, entry: ModelEntry) -> TabularModel:
    info = registry.show(entry.name, entry.ref)
    if not info.decision.get("allow"):
        raise GatewayError(f"{entry.name}@{info.version}: its registration gate decision denies it")
    with registry.materialize(info) as (folder, signature):
        target = registry.signature_target(info, folder)
        facts = registry.verifier(target, signature)
        if not facts.verified:
            raise GatewayError(
                f"{entry.name}@{info.version}: signature does not verify: {facts.reason}"
            )
        unsafe = [
            p.name
            for p in folder.rglob("*")
            if p.is_file() and p.suffix not in (".safetensors", ".json", ".onnx", ".skops")
        ]
        if unsafe:
            raise GatewayError(
                f"{entry.name}@{info.version}: refusing files of unsafe or unknown format: {unsafe}"
            )
        try:
            config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
            features = tuple(str(f) for f in config["features"])
            ranges = {
                str(k): (float(v[0]), float(v[1])) for k, v in config.get("ranges", {}).items()
            }
            task = str(config.get("task", "binary-classification"))
            fmt = str(config.get("format", "linear"))
        except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
            raise GatewayError(f"{entry.name}: config.json lacks features or is malformed") from exc
        if fmt not in FORMATS:
            raise GatewayError(f"{entry.name}: unknown model format {fmt!r}",
                               hint=f"config.json format: one of {', '.join(FORMATS)}")  # fmt: skip
        if task not in ("binary-classification", "regression"):
            raise GatewayError(f"{entry.name}: unknown task {task!r}")
        path = folder / FORMATS[fmt]
        if not path.is_file():
            raise GatewayError(f"{entry.name}: format {fmt} needs {FORMATS[fmt]} in the model")
        if fmt == "linear":
            scorer, mean, scale = _linear(entry.name, path, len(features), task)
        else:
            loader = _onnx if fmt == "onnx" else _skops
            scorer = loader(entry.name, path, len(features), task, config)
            mean, scale = _standardisation(entry.name, config, len(features))
        try:  # a model that cannot score a row of zeros would fail every request: refuse it now
            scorer(np.zeros((1, len(features))))
        except Exception as exc:
            raise GatewayError(f"{entry.name}: {path.name} does not accept "
                               f"{len(features)} features: {exc}") from exc  # fmt: skip
    return TabularModel(entry.name, info.version, frozenset(entry.tenants), features, scorer, mean,
                        scale, ranges, task, fmt)  # fmt: skip


def _linear(name: str, path: Path, width: int, task: str) -> tuple[Scorer, np.ndarray, np.ndarray]:
    weights = read_safetensors(path)
    try:
        coef, mean, scale = weights["coef"], weights["mean"], weights["scale"]
        intercept = float(weights["intercept"].reshape(-1)[0])
    except (KeyError, IndexError) as exc:
        raise GatewayError(f"{name}: model files lack features/coef/intercept/mean/scale") from exc
    if not coef.shape == mean.shape == scale.shape == (width,):
        raise GatewayError(f"{name}: tensor shapes do not match the {width} features")

    def score(matrix: np.ndarray) -> np.ndarray:
        z: np.ndarray = ((matrix - mean) / scale) @ coef + intercept
        return z if task == "regression" else 1.0 / (1.0 + np.exp(-z))

    return score, mean, scale


def _standardisation(
    name: str, config: Mapping[str, Any], width: int
) -> tuple[np.ndarray, np.ndarray]:
    try:
        mean = np.asarray(config.get("mean", [0.0] * width), dtype=np.float64)
        scale = np.asarray(config.get("scale", [1.0] * width), dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise GatewayError(f"{name}: config.json mean/scale must be numbers") from exc
    if mean.shape != (width,) or scale.shape != (width,) or not np.all(scale > 0):
        raise GatewayError(f"{name}: config.json mean/scale need {width} values, scale > 0")
    return mean, scale


def _onnx(name: str, path: Path, width: int, task: str, config: Mapping[str, Any]) -> Scorer:
    """onnxruntime on the CPU; only the standard operator domains, one float input of WIDTH."""
    try:
        import onnx
        import onnxruntime as ort
    except ImportError as exc:
        raise GatewayError(f"{name}: serving ONNX needs the onnx extra",
                           hint="pip install 'secmlops[onnx]'") from exc  # fmt: skip
    try:
        graph = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and others for broken files
        raise GatewayError(f"{name}: model.onnx cannot be read: {exc}") from exc
    domains = {o.domain for o in graph.opset_import} | {n.domain for n in graph.graph.node}
    foreign = sorted(d for d in domains if d not in ("", "ai.onnx", "ai.onnx.ml"))
    if foreign:
        raise GatewayError(
            f"{name}: model.onnx uses operators outside the standard domains: {foreign}"
        )
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in graph.graph.initializer):
        raise GatewayError(f"{name}: model.onnx refers to external weight files")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # requests are small; threads would fight the event loop
    try:
        session = ort.InferenceSession(
            graph.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime's errors are its own types
        raise GatewayError(f"{name}: onnxruntime cannot load model.onnx: {exc}") from exc
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise GatewayError(f"{name}: model.onnx must take one input (a {width}-column matrix)")
    input_name = inputs[0].name
    outputs = [o.name for o in session.get_outputs()]
    wanted = str(
        config.get("output", "probabilities" if "probabilities" in outputs else outputs[-1])
    )
    if wanted not in outputs:
        raise GatewayError(f"{name}: model.onnx has no output {wanted!r} (it has {outputs})")
    dtype = np.float64 if "double" in inputs[0].type else np.float32

    def score(matrix: np.ndarray) -> np.ndarray:
        (out,) = session.run([wanted], {input_name: matrix.astype(dtype)})
        result = np.asarray(out, dtype=np.float64)
        if task != "regression" and result.ndim == 2 and result.shape[1] == 2:
            return result[:, 1]  # probability of the positive class
        return result.reshape(-1)

    return score


def _skops(name: str, path: Path, width: int, task: str, config: Mapping[str, Any]) -> Scorer:
    """skops.io with an explicit trusted list: any other type named in the file refuses it."""
    try:
        import skops.io as sio
    except ImportError as exc:
        raise GatewayError(f"{name}: serving skops files needs the skops extra",
                           hint="pip install 'secmlops[skops]'") from exc  # fmt: skip
    extra = config.get("trusted_types", [])
    if not isinstance(extra, list) or not all(
        isinstance(t, str) and t.split(".", 1)[0] in ("sklearn", "numpy") for t in extra
    ):
        raise GatewayError(
            f"{name}: config.json trusted_types may only name sklearn or numpy types"
        )
    trusted = set(DEFAULT_SKOPS_TRUSTED) | set(extra)
    try:
        named = sorted(set(sio.get_untrusted_types(file=str(path))))
    except Exception as exc:  # skops raises zip, JSON and its own errors for broken files
        raise GatewayError(f"{name}: model.skops cannot be read: {exc}") from exc
    untrusted = [t for t in named if t not in trusted]
    if untrusted:
        raise GatewayError(f"{name}: model.skops names types that are not trusted: {untrusted}",
                           hint="add reviewed sklearn/numpy types to config.json trusted_types")  # fmt: skip
    try:
        estimator = sio.load(str(path), trusted=named)  # every name in it was checked above
    except Exception as exc:
        raise GatewayError(f"{name}: model.skops cannot be loaded: {exc}") from exc
    classify = task != "regression"
    if classify and not hasattr(estimator, "predict_proba"):
        raise GatewayError(f"{name}: a classification model needs predict_proba")

    def score(matrix: np.ndarray) -> np.ndarray:
        if classify:
            return np.asarray(estimator.predict_proba(matrix))[:, 1]
        return np.asarray(estimator.predict(matrix), dtype=np.float64)

    return score
