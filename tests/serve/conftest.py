"""A real gateway over a real socket: registry with a signed model, a real upstream chat server."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import httpx
import numpy as np
import pytest

from secmlops.evidence.keys import generate_private_key, write_key_pair
from secmlops.evidence.signing import KeySigner, PublicKeyTrust, sign_model
from secmlops.pipeline.example.project.fraud_pipeline import _write_safetensors
from secmlops.policy import evaluate_gate
from secmlops.serve.tokens import issue_token, load_signing_key
from secmlops.store.artifacts import LocalStore
from secmlops.store.db import open_database
from secmlops.store.registry import Registry, signature_verifier

ISSUER, AUDIENCE = "https://issuer.test", "secmlops-gateway"
FEATURES = ["amount", "hour", "risk"]


class Upstream(BaseHTTPRequestHandler):
    received: ClassVar[list[dict]] = []  # type: ignore[type-arg]

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Upstream.received.append(body)
        answer = {"id": "x", "object": "chat.completion", "choices": [{"index": 0, "message": {
            "role": "assistant", "content": "Sure. Write to jane.doe@corp-mail.com for the file."}}],
            "usage": {"total_tokens": 12}}  # fmt: skip
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Env:
    url: str
    root: Path
    token_key: Path
    proc: subprocess.Popen  # type: ignore[type-arg]

    def token(self, tenant: str = "bank-a", sub: str = "svc", scopes: tuple[str, ...] = ("model:fraud:predict",),
              ttl: int = 600, **kw: object) -> str:  # fmt: skip
        return issue_token(load_signing_key(self.token_key), issuer=kw.get("issuer", ISSUER),  # type: ignore[arg-type]
                           audience=kw.get("audience", AUDIENCE), subject=sub, tenant=tenant,  # type: ignore[arg-type]
                           scopes=scopes, ttl=ttl, now=kw.get("now"))  # type: ignore[arg-type]  # fmt: skip

    def post(self, path: str, body: object, token: str | None, **kw: object) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.post(self.url + path, json=body, headers=headers, timeout=30, **kw)  # type: ignore[arg-type]


def build_registry(root: Path) -> Path:
    signing = root / "signing.pem"
    write_key_pair(generate_private_key(), signing)
    model = root / "model"
    model.mkdir()
    rng = np.random.default_rng(0)
    _write_safetensors({"coef": rng.normal(size=3), "intercept": np.array([0.1]),
                        "mean": np.array([50.0, 12.0, 0.2]), "scale": np.array([30.0, 7.0, 0.1])},
                       model / "model.safetensors", {"format": "logistic-regression"})  # fmt: skip
    (model / "config.json").write_text(json.dumps({"features": FEATURES, "ranges": {
        "amount": [0, 10000], "hour": [0, 23], "risk": [0, 1]}}))  # fmt: skip
    sign_model(model, KeySigner(signing))
    reg = Registry(LocalStore(root / "home" / "store"), open_database(f"sqlite:///{root / 'home' / 'secmlops.db'}"),
                   verifier=signature_verifier(PublicKeyTrust(signing.with_name("signing.pem.pub"))),
                   gate=evaluate_gate)  # fmt: skip
    reg.push(model, "fraud", model / "model.sig", "alice",
             facts={"metrics": {"accuracy": 0.9}, "model_card": {"completeness": 1.0, "missing": []}})  # fmt: skip
    reg.promote("fraud", "1", "production", "bob", approver="carol")
    return signing


def write_gateway(root: Path, **overrides: object) -> Path:
    """A registry with the signed `fraud` model, a token key and gateway.yaml under `root`."""
    (root / "home").mkdir(parents=True)
    build_registry(root)
    write_key_pair(generate_private_key("ed25519"), root / "token.pem")
    config = {
        "issuer": ISSUER, "audience": AUDIENCE, "token_keys": ["token.pem.pub"], "max_token_ttl": 900,
        "home": "home", "trust_key": "signing.pem.pub",
        "models": [{"name": "fraud", "ref": "production", "tenants": ["bank-a"]},
                   {"name": "ghost", "ref": "production", "tenants": ["bank-a"]}],
        "limits": {"requests": "40/minute", "tenant_requests": "1000/minute", "tokens": "5000/day"},
        "max_body_bytes": 8192,
        **overrides,
    }  # fmt: skip
    (root / "gateway.yaml").write_text(json.dumps(config))
    return root / "gateway.yaml"


def start_gateway(config: Path, port: int | None = None) -> tuple[subprocess.Popen, str]:  # type: ignore[type-arg]
    """`python -m secmlops serve` on loopback; returns once /healthz answers."""
    port = port or free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "secmlops", "serve", "--config", str(config), "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.3)
        if proc.poll() is not None:
            raise RuntimeError(proc.stderr.read().decode() if proc.stderr else "gateway exited")
    proc.kill()
    raise RuntimeError("gateway did not start")


@contextmanager
def serving(config: Path) -> Iterator[Env]:
    """A gateway started on `config` (its folder holds token.pem), stopped on exit."""
    proc, url = start_gateway(config)
    try:
        yield Env(url, config.parent, config.parent / "token.pem", proc)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    root = tmp_path_factory.mktemp("gateway")
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    config = write_gateway(root, chat={"upstream_url": f"http://127.0.0.1:{upstream.server_address[1]}",
                                       "tenants": ["bank-a"], "max_tokens": 256})  # fmt: skip
    proc, url = start_gateway(config)
    yield Env(url, root, root / "token.pem", proc)
    proc.terminate()
    proc.wait(timeout=30)
    upstream.shutdown()
