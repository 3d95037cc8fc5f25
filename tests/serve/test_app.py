"""The gateway application in-process (ASGI, no socket) for what a client cannot see: start-up
takes the loaded objects out of the collector's sight, requests served one at a time commit their
audit records on the event loop, overlapping ones through the writer thread, and the in-flight
count follows the requests being served."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from secmlops.serve.app import CountInFlight, Gateway, Scope, create_app
from secmlops.serve.config import load_gateway_config
from secmlops.store import audit
from tests.serve.conftest import Env, write_gateway


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # the test process keeps collecting what the app left behind


@pytest.mark.parametrize("durability", ["power-loss", "process-crash"])
def test_requests_alone_commit_inline_and_overlapping_ones_through_the_writer(
    tmp_path: Path, unfrozen: None, durability: str
) -> None:
    config = write_gateway(
        tmp_path, limits={"requests": "1000/minute"}, audit_durability=durability
    )
    app = create_app(load_gateway_config(config))
    gw: Gateway = app.state.gateway
    token = Env("", tmp_path, tmp_path / "token.pem", None).token()  # type: ignore[arg-type]
    body = {"instances": [{"amount": 10.0, "hour": 3, "risk": 0.1}]}

    async def traffic() -> None:
        async with app.router.lifespan_context(app):
            assert gc.get_freeze_count() > 0
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gw",
                                         headers={"Authorization": f"Bearer {token}"}) as http:  # fmt: skip
                before = gw.audit_writer.inline
                for _ in range(5):
                    r = await http.post("/v1/models/fraud/predict", json=body)
                    assert r.status_code == 200 and r.json()["predictions"][0]["label"] in (0, 1)
                assert gw.audit_writer.inline - before == 5
                assert gw.in_flight == 0
                gw.in_flight = 2  # another request is being served: the writer thread commits
                await gw.audit("bank-a/svc", "predict", "fraud@1", {"overlapping": True})
                gw.in_flight = 0
                assert gw.audit_writer.inline - before == 5

    asyncio.run(traffic())
    assert gw.audit_writer.records >= 6
    result = audit.verify_log(gw.engine)
    assert result.ok, result.problems


def test_in_flight_counts_overlapping_requests() -> None:
    class Counted:
        in_flight = 0

    seen: list[int] = []
    release = asyncio.Event()

    async def slow_app(scope: Scope, receive: object, send: object) -> None:
        seen.append(counted.in_flight)
        await release.wait()

    counted = Counted()
    middleware = CountInFlight(slow_app, counted)  # type: ignore[arg-type]

    async def overlapping() -> None:
        calls = [asyncio.ensure_future(middleware({"type": "http"}, None, None))  # type: ignore[arg-type]
                 for _ in range(3)]  # fmt: skip
        await asyncio.sleep(0.01)
        assert counted.in_flight == 3
        release.set()
        await asyncio.gather(*calls)

    asyncio.run(overlapping())
    assert seen == [1, 2, 3] and counted.in_flight == 0
