"""Models the gateway serves: loaded from the registry only after their signature verifies and their
recorded gate decision allows, and only from safe formats (safetensors; never pickle)."""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping, Sequence
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


@dataclass(frozen=True, slots=True)
class TabularModel:
    """A linear or logistic model over named numeric features, with recorded input ranges."""

    name: str
    version: int
    tenants: frozenset[str]
    features: tuple[str, ...]
    coef: np.ndarray
    intercept: float
    mean: np.ndarray
    scale: np.ndarray
    ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    task: str = "binary-classification"

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
        z = ((matrix - self.mean) / self.scale) @ self.coef + self.intercept
        proba = 1.0 / (1.0 + np.exp(-z))
        return [{"score": round(float(p), 6), "label": int(p >= 0.5)} for p in proba]


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
        pickles = [
            p.name
            for p in folder.rglob("*")
            if p.is_file() and p.suffix not in (".safetensors", ".json")
        ]
        if pickles:
            raise GatewayError(
                f"{entry.name}@{info.version}: refusing files of unsafe or unknown format: {pickles}"
            )
        weights = read_safetensors(folder / "model.safetensors")
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    try:
        features = tuple(str(f) for f in config["features"])
        ranges = {str(k): (float(v[0]), float(v[1])) for k, v in config.get("ranges", {}).items()}
        coef, mean, scale = weights["coef"], weights["mean"], weights["scale"]
        intercept = float(weights["intercept"].reshape(-1)[0])
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise GatewayError(
            f"{entry.name}: model files lack features/coef/intercept/mean/scale"
        ) from exc
    if not coef.shape == mean.shape == scale.shape == (len(features),):
        raise GatewayError(f"{entry.name}: tensor shapes do not match the {len(features)} features")
    return TabularModel(entry.name, info.version, frozenset(entry.tenants), features, coef, intercept,
                        mean, scale, ranges, str(config.get("task", "binary-classification")))  # fmt: skip
