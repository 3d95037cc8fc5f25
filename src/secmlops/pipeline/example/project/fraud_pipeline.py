"""The example's ML code: what a user would write. secmlops runs it and wraps controls around it.

Synthetic card transactions with personal data (e-mail, card number, phone), a logistic-regression
fraud model saved as safetensors (never pickle), metrics and a per-region fairness table.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

FEATURES = ["amount", "hour", "distance_km", "foreign", "card_age_days", "merchant_risk"]
REGIONS = ["north", "south", "east", "west"]


def _card_number(rng: np.random.Generator) -> str:
    digits = [4, *rng.integers(0, 10, 14).tolist()]
    total = 0
    for i, d in enumerate(reversed(digits)):  # Luhn check digit, so the PII is realistic
        d = d * 2 if i % 2 == 0 else d
        total += d - 9 if d > 9 else d
    return "".join(map(str, digits)) + str((10 - total % 10) % 10)


def generate_transactions(path: Path, rows: int = 40000, seed: int = 7) -> None:
    """The bank's export the example starts from (made up: e-mails, Luhn-valid card numbers)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "transaction_id": np.arange(rows),
            "email": [f"customer{i % 5000}@example.com" for i in range(rows)],
            "card_number": [_card_number(rng) for _ in range(rows)],
            "phone": [f"+1 202 555 {int(x):04d}" for x in rng.integers(0, 10000, rows)],
            "amount": rng.lognormal(3.5, 1.0, rows).round(2),
            "hour": rng.integers(0, 24, rows),
            "distance_km": rng.exponential(20, rows).round(1),
            "foreign": rng.random(rows) < 0.1,
            "card_age_days": rng.integers(1, 3000, rows),
            "merchant_risk": rng.beta(2, 8, rows).round(3),
            "region": rng.choice(REGIONS, rows),
        }
    )
    score = (
        0.012 * frame["amount"] + 2.5 * frame["foreign"] + 0.03 * frame["distance_km"]
        + 4.0 * frame["merchant_risk"] - 0.0008 * frame["card_age_days"]
        + 0.8 * ((frame["hour"] < 5) | (frame["hour"] > 22))
    )  # fmt: skip
    frame["is_fraud"] = (score + rng.normal(0, 0.7, rows) > 3.6).astype(int)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)


def ingest(ctx: Any) -> dict[str, Any]:
    frame = pd.read_csv(ctx.inputs[0])
    out = ctx.outputs[0]
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out, index=False)
    return {"data": {"rows": {"raw": len(frame)}}}


def prepare(ctx: Any) -> dict[str, Any]:
    frame = pd.read_csv(ctx.inputs[0])
    # Personal data never reaches training: a keyed hash keeps a stable customer key for joins.
    secret = b"example-pseudonymisation-key"  # a real pipeline reads this from a secret store
    frame["customer_key"] = [
        hmac.new(secret, e.encode(), hashlib.sha256).hexdigest()[:16] for e in frame["email"]
    ]
    frame = frame.drop(columns=["email", "card_number", "phone"])
    rng = np.random.default_rng(11)
    test = rng.random(len(frame)) < 0.25
    train_path, test_path = ctx.outputs
    frame[~test].to_csv(train_path, index=False)
    frame[test].to_csv(test_path, index=False)
    return {}


def _write_safetensors(
    tensors: dict[str, np.ndarray], path: Path, metadata: dict[str, str]
) -> None:
    header: dict[str, Any] = {"__metadata__": metadata}
    offset, blobs = 0, []
    for name, array in tensors.items():
        data = np.ascontiguousarray(array, dtype="<f8").tobytes()
        header[name] = {
            "dtype": "F64",
            "shape": list(array.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def _read_safetensors(path: Path) -> dict[str, np.ndarray]:
    raw = path.read_bytes()
    (size,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + size])
    body = raw[8 + size :]
    return {
        name: np.frombuffer(body[s:e], dtype="<f8").reshape(meta["shape"])
        for name, meta in header.items()
        if name != "__metadata__"
        for s, e in [meta["data_offsets"]]
    }


def train(ctx: Any) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression

    frame = pd.read_csv(ctx.inputs[0])
    x = frame[FEATURES].astype(float).to_numpy()
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-12
    model = LogisticRegression(max_iter=1000).fit((x - mean) / scale, frame["is_fraud"])
    folder = ctx.outputs[0]
    folder.mkdir(parents=True, exist_ok=True)
    _write_safetensors(
        {"coef": model.coef_[0], "intercept": model.intercept_, "mean": mean, "scale": scale},
        folder / "model.safetensors",
        {"format": "logistic-regression"},
    )
    (folder / "config.json").write_text(
        json.dumps(
            {"features": FEATURES, "threshold": 0.5, "task": "binary-classification"}, indent=2
        )
    )
    return {}


def evaluate(ctx: Any) -> dict[str, Any]:
    from sklearn.metrics import accuracy_score, precision_score, recall_score, roc_auc_score

    model_dir, test_path = ctx.inputs
    weights = _read_safetensors(model_dir / "model.safetensors")
    frame = pd.read_csv(test_path)
    x = (frame[FEATURES].astype(float).to_numpy() - weights["mean"]) / weights["scale"]
    proba = 1 / (1 + np.exp(-(x @ weights["coef"] + weights["intercept"][0])))
    pred = (proba >= 0.5).astype(int)
    y = frame["is_fraud"].to_numpy()
    metrics = {
        "accuracy": round(float(accuracy_score(y, pred)), 4),
        "precision": round(float(precision_score(y, pred, zero_division=0)), 4),
        "recall": round(float(recall_score(y, pred, zero_division=0)), 4),
        "roc_auc": round(float(roc_auc_score(y, proba)), 4),
    }
    tpr = {}
    for region in REGIONS:
        mask = (frame["region"] == region).to_numpy() & (y == 1)
        tpr[region] = round(float(pred[mask].mean()), 4) if mask.any() else 0.0
    ctx.outputs[0].write_text(json.dumps({"metrics": metrics, "fairness": {"tpr": tpr}}, indent=2))
    return {"metrics": metrics, "fairness": {"tpr": tpr}}
