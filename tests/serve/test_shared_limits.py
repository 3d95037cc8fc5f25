"""Two gateway replicas share their limit counters through Redis: a 40/minute limit holds exactly
across both, so a client cannot multiply its quota by spreading requests over replicas."""

from __future__ import annotations

import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.serve.conftest import Env, free_port, start_gateway, write_gateway

REDIS = shutil.which("redis-server")
ROW = {"amount": 120.5, "hour": 3, "risk": 0.4}


@pytest.mark.skipif(
    REDIS is None, reason="redis-server binary not installed (apt-get install -y redis-server)"
)
def test_limit_holds_exactly_across_two_replicas(tmp_path: Path) -> None:
    port = free_port()
    assert REDIS is not None
    redis = subprocess.Popen([REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no", "--dir", str(tmp_path)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    replicas: list[subprocess.Popen] = []  # type: ignore[type-arg]
    try:
        config = write_gateway(tmp_path, limits={"requests": "40/minute", "tenant_requests": "1000/minute",
                                                 "storage_url": f"redis://127.0.0.1:{port}"})  # fmt: skip
        urls = []
        for _ in range(2):
            proc, url = start_gateway(config)
            replicas.append(proc)
            urls.append(url)
        token = Env(urls[0], tmp_path, tmp_path / "token.pem", replicas[0]).token(sub="spread")

        def call(i: int) -> int:
            r = httpx.post(urls[i % 2] + "/v1/models/fraud/predict", json={"instances": [ROW]},
                           headers={"Authorization": f"Bearer {token}"}, timeout=30)  # fmt: skip
            return r.status_code

        with ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(call, range(90)))
        assert codes.count(200) == 40 and codes.count(429) == 50, codes
        per_replica = [[c for i, c in enumerate(codes) if i % 2 == k].count(200) for k in (0, 1)]
        assert all(n > 0 for n in per_replica)  # both replicas served: the counter really is shared
    finally:
        for proc in replicas:
            proc.terminate()
            proc.wait(timeout=30)
        redis.terminate()
        redis.wait(timeout=30)


def test_unreachable_redis_fails_closed(tmp_path: Path) -> None:
    """A limit store that cannot be reached refuses requests rather than serving them unlimited."""
    config = write_gateway(tmp_path, limits={"storage_url": f"redis://127.0.0.1:{free_port()}"})
    proc, url = start_gateway(config)
    try:
        token = Env(url, tmp_path, tmp_path / "token.pem", proc).token(sub="nolimits")
        r = httpx.post(url + "/v1/models/fraud/predict", json={"instances": [ROW]},
                       headers={"Authorization": f"Bearer {token}"}, timeout=30)  # fmt: skip
        assert r.status_code == 503, r.text
    finally:
        proc.terminate()
        proc.wait(timeout=30)
