"""Runtime monitoring over a real socket: in-distribution traffic is quiet; shifted traffic is
detected as drift (audit record, gauge, webhook), stops the model (action `stop`: 503 with
Retry-After) until clean traffic clears it; an admin can reset; the host monitor says what it sees."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import numpy as np
import pandas as pd
import pytest
from sqlalchemy.orm import Session

from secmlops.scan.data.drift_profile import build_profile
from secmlops.store import audit
from secmlops.store.db import AuditRecord, open_database
from tests.serve.conftest import Env, free_port, serving, write_gateway

# The `fraud` model of conftest.build_registry: its coefficients come from default_rng(0).
COEF = np.random.default_rng(0).normal(size=3)
MEAN, SCALE = np.array([50.0, 12.0, 0.2]), np.array([30.0, 7.0, 0.1])


def _rows(rng: np.random.Generator, n: int, shift: float = 0.0) -> np.ndarray:
    return np.column_stack([rng.normal(50 + shift, 30, n).clip(0, 10000).round(2),
                            rng.integers(0, 24, n), rng.beta(2, 8, n).round(4)])  # fmt: skip


class Webhook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        Webhook.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def monitored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    root: Path = tmp_path_factory.mktemp("monitored")
    rows = _rows(np.random.default_rng(1), 5000)
    table = pd.DataFrame(rows, columns=["amount", "hour", "risk"])
    table["hour"] = table["hour"].astype(int)
    table["score"] = 1 / (1 + np.exp(-(((rows - MEAN) / SCALE) @ COEF + 0.1)))
    root.mkdir(exist_ok=True)
    (root / "reference.json").write_text(build_profile(table).to_json())
    hook = ThreadingHTTPServer(("127.0.0.1", 0), Webhook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    config = write_gateway(
        root,
        models=[{"name": "fraud", "tenants": ["bank-a"], "reference_profile": "reference.json"}],
        limits={"requests": "100000/minute", "tenant_requests": "100000/minute"},
        max_body_bytes=65536, extraction={"enabled": False},
        drift={"window": 400, "min_rows": 200, "check_every": 4, "check_interval": 0.3, "action": "stop"},
        alerts={"webhook_url": f"http://127.0.0.1:{hook.server_address[1]}/hook", "timeout": 1},
        host_monitor={"interval": 0.3},
        chat={"upstream_url": f"http://127.0.0.1:{free_port()}", "tenants": ["bank-a"], "max_tokens": 100,
              "breaker_failures": 100, "budget": {"limit": 300, "window": 3600}},
    )  # fmt: skip
    with serving(config) as env:
        yield env
    hook.shutdown()


def _send(
    env: Env, rng: np.random.Generator, batches: int, shift: float = 0.0
) -> list[httpx.Response]:
    token = env.token(sub="monitored")
    return [env.post("/v1/models/fraud/predict", {"instances": _rows(rng, 50, shift).tolist()}, token)
            for _ in range(batches)]  # fmt: skip


def _admin(env: Env) -> dict[str, Any]:
    r = httpx.get(
        env.url + "/admin/models",
        headers={"Authorization": f"Bearer {env.token(scopes=('admin',))}"},
    )
    assert r.status_code == 200
    return r.json()["loaded"]["fraud"]  # type: ignore[no-any-return]


def _wait_for(env: Env, state: str, rng: np.random.Generator, shift: float = 0.0) -> dict[str, Any]:
    """Keep traffic flowing until the drift monitor reaches `state` (bounded)."""
    for _ in range(40):
        drift = _admin(env)["drift"]
        if drift["state"] == state:
            return drift  # type: ignore[no-any-return]
        _send(env, rng, 2, shift)
        time.sleep(0.2)
    raise AssertionError(f"drift state never became {state}: {_admin(env)}")


def _actions(env: Env) -> list[str]:
    engine = open_database(f"sqlite:///{env.root / 'home' / 'secmlops.db'}")
    with Session(engine) as session:
        return [r.action for r in session.query(AuditRecord).order_by(AuditRecord.seq)]


def test_drift_is_detected_stops_the_model_and_clears(monitored: Env) -> None:
    rng = np.random.default_rng(2)
    assert all(r.status_code == 200 for r in _send(monitored, rng, 6))
    quiet = _wait_for(monitored, "ok", rng)
    assert quiet["prediction_reference"] and quiet["drifted_features"] == []
    assert "drift-detected" not in _actions(monitored)

    # The amount shifts by 6 standard deviations: inputs and predicted scores drift.
    _send(monitored, rng, 8, shift=180)
    drift = _wait_for(monitored, "drift", rng, shift=180)
    assert "amount" in drift["drifted_features"]
    refused = _send(monitored, rng, 1, shift=180)[0]
    assert refused.status_code == 503 and int(refused.headers["retry-after"]) >= 1
    assert "drift" in refused.json()["detail"]
    assert _admin(monitored)["circuit"]["holds"] == ["drift"]
    metrics = httpx.get(monitored.url + "/metrics").text
    assert 'secmlops_gateway_drift_detected{model="fraud"} 1.0' in metrics
    assert 'secmlops_gateway_drift_feature_drifted{feature="amount",model="fraud"} 1.0' in metrics
    assert 'secmlops_gateway_circuit_open{target="fraud"} 1.0' in metrics

    # Refused requests still bring their inputs: clean traffic clears the drift and reopens.
    _wait_for(monitored, "ok", rng)
    assert _send(monitored, rng, 1)[0].status_code == 200
    actions = _actions(monitored)
    for expected in ("drift-detected", "circuit-open", "drift-cleared", "circuit-closed"):
        assert expected in actions, expected
    assert audit.verify_log(
        open_database(f"sqlite:///{monitored.root / 'home' / 'secmlops.db'}")
    ).ok
    for _ in range(50):  # the webhook is fed from a background thread
        alerts = [b["alert"] for b in Webhook.received]
        if "drift-cleared" in alerts:
            break
        time.sleep(0.1)
    assert {"drift-detected", "circuit-open", "drift-cleared"} <= set(alerts)
    detected = next(b for b in Webhook.received if b["alert"] == "drift-detected")
    assert detected["subject"] == "fraud" and detected["details"]["action"] == "stop"
    assert set(detected["details"]) == {"rows", "share", "drifted_features", "max_effect", "action"}


def test_admin_reset_and_host_endpoint(monitored: Env) -> None:
    admin = {"Authorization": f"Bearer {monitored.token(scopes=('admin',))}"}
    r = httpx.post(monitored.url + "/admin/models/fraud/reset", headers=admin)
    assert r.status_code == 200 and r.json()["circuit"]["state"] == "closed", r.text
    assert r.json()["drift"]["state"] == "collecting", r.text
    assert httpx.post(monitored.url + "/admin/models/ghost/reset", headers=admin).status_code == 404
    stranger = {"Authorization": f"Bearer {monitored.token(tenant='bank-b', scopes=('admin',))}"}
    assert (
        httpx.post(monitored.url + "/admin/models/fraud/reset", headers=stranger).status_code == 404
    )
    user = {"Authorization": f"Bearer {monitored.token()}"}
    assert httpx.post(monitored.url + "/admin/models/fraud/reset", headers=user).status_code == 403
    assert "circuit-reset" in _actions(monitored)
    host = httpx.get(monitored.url + "/admin/host", headers=admin).json()
    assert host["enabled"] and host["source"] in ("psutil", "/proc")
    assert host["gpu"].startswith("no GPU") or host["gpu"].endswith("GPU(s)")
    time.sleep(0.5)
    metrics = httpx.get(monitored.url + "/metrics").text
    assert "secmlops_host_cpu_percent" in metrics and "secmlops_host_memory_percent" in metrics
    assert "secmlops_gateway_request_rate" in metrics


def test_chat_cost_budget_opens_the_circuit(monitored: Env) -> None:
    token = monitored.token(sub="spender", scopes=("chat",))
    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 100}
    codes = [monitored.post("/v1/chat/completions", body, token) for _ in range(5)]
    # ~100 tokens each against a 300-token budget: three calls reach the (dead) upstream, then 503
    assert [r.status_code for r in codes] == [502, 502, 502, 503, 503]
    assert int(codes[-1].headers["retry-after"]) > 3000
    assert (
        'secmlops_gateway_circuit_open{target="chat"} 1.0'
        in httpx.get(monitored.url + "/metrics").text
    )
    engine = open_database(f"sqlite:///{monitored.root / 'home' / 'secmlops.db'}")
    with Session(engine) as session:
        opened = [r for r in session.query(AuditRecord).filter(AuditRecord.action == "circuit-open")
                  if r.subject == "chat"]  # fmt: skip
    assert len(opened) == 1 and json.loads(opened[0].payload)["reason"] == "budget"


def test_model_circuit_opens_on_budget_and_on_error_spikes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In process (the failing model is patched in): a cost budget and consecutive model errors
    each open the model's circuit; an admin reset closes it."""
    from fastapi.testclient import TestClient

    from secmlops.serve.app import create_app
    from secmlops.serve.config import load_gateway_config
    from secmlops.serve.models import TabularModel

    config = write_gateway(
        tmp_path,
        models=[{"name": "fraud", "tenants": ["bank-a"], "budget": {"limit": 100, "window": 3600},
                 "breaker_failures": 2, "breaker_cooldown": 600}],
        limits={"requests": "100000/minute", "tenant_requests": "100000/minute"},
        max_body_bytes=65536, extraction={"enabled": False}, host_monitor={"enabled": False},
    )  # fmt: skip
    env = Env("", tmp_path, tmp_path / "token.pem", None)  # type: ignore[arg-type]
    user = {"Authorization": f"Bearer {env.token()}"}
    admin = {"Authorization": f"Bearer {env.token(scopes=('admin',))}"}
    body = {"instances": _rows(np.random.default_rng(3), 50).tolist()}
    with TestClient(create_app(load_gateway_config(config))) as client:
        codes = [client.post("/v1/models/fraud/predict", json=body, headers=user) for _ in range(4)]
        assert [r.status_code for r in codes] == [200, 200, 503, 503]  # 150 rows > 100
        assert "budget" in codes[2].json()["detail"] and int(codes[3].headers["retry-after"]) > 3000
        assert client.post("/admin/models/fraud/reset", headers=admin).status_code == 200
        assert client.post("/v1/models/fraud/predict", json=body, headers=user).status_code == 200

        def broken(self: TabularModel, matrix: np.ndarray) -> list[dict[str, float]]:
            raise FloatingPointError("model failed")

        monkeypatch.setattr(TabularModel, "predict", broken)
        client.post("/admin/models/fraud/reset", headers=admin)
        small = {"instances": body["instances"][:1]}
        codes = [
            client.post("/v1/models/fraud/predict", json=small, headers=user) for _ in range(3)
        ]
        assert [r.json()["detail"] for r in codes] == [
            "model failed",
            "model failed",
            "model circuit open (errors)",
        ]
        assert all(r.status_code == 503 for r in codes)
        state = client.get("/admin/models", headers=admin).json()["loaded"]["fraud"]["circuit"]
        assert state["state"] == "open" and state["consecutive_failures"] == 2
    engine = open_database(f"sqlite:///{tmp_path / 'home' / 'secmlops.db'}")
    with Session(engine) as session:
        opened = [json.loads(r.payload)["reason"] for r in session.query(AuditRecord).order_by(AuditRecord.seq)
                  if r.action == "circuit-open"]  # fmt: skip
        actions = [r.action for r in session.query(AuditRecord)]
    assert opened == ["budget", "errors"] and actions.count("model-error") == 2
    assert actions.count("circuit-reset") == 2
    assert audit.verify_log(engine).ok
