"""The upstream circuit breaker: opens after consecutive failures, refuses during the cooldown,
lets one trial through, closes on success; over a real socket it answers 503 and audits the event."""

from __future__ import annotations

from pathlib import Path

import httpx

from secmlops.serve.breaker import CircuitBreaker
from secmlops.store import audit
from secmlops.store.db import AuditRecord, open_database
from tests.serve.conftest import Env, free_port, start_gateway, write_gateway


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_cools_down_and_recovers() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=3, cooldown=10, clock=clock)
    assert [breaker.record(False) for _ in range(3)] == [False, False, True]
    assert not breaker.allow() and breaker.retry_after() == 11
    clock.now = 10
    assert breaker.allow() and not breaker.allow()  # exactly one trial in half-open
    assert breaker.record(False)  # the trial failed: open again
    clock.now = 20
    assert breaker.allow()
    assert not breaker.record(True) and breaker.allow() and breaker.allow()


def test_success_resets_the_count() -> None:
    breaker = CircuitBreaker(failures=2)
    assert not breaker.record(False) and not breaker.record(True) and not breaker.record(False)
    assert breaker.allow()


def test_dead_upstream_trips_the_breaker_over_a_socket(tmp_path: Path) -> None:
    config = write_gateway(tmp_path, chat={"upstream_url": f"http://127.0.0.1:{free_port()}", "tenants": ["bank-a"],
                                           "breaker_failures": 3, "breaker_cooldown": 600})  # fmt: skip
    proc, url = start_gateway(config)
    try:
        env = Env(url, tmp_path, tmp_path / "token.pem", proc)
        token = env.token(sub="chat-breaker", scopes=("chat",))
        codes = [env.post("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]}, token)
                 for _ in range(5)]  # fmt: skip
        assert [r.status_code for r in codes] == [502, 502, 502, 503, 503]
        assert int(codes[-1].headers["retry-after"]) > 500
        assert 'shield="circuit-breaker"' in httpx.get(url + "/metrics").text
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    engine = open_database(f"sqlite:///{tmp_path / 'home' / 'secmlops.db'}")
    assert audit.verify_log(engine).ok
    from sqlalchemy.orm import Session

    with Session(engine) as session:
        actions = [r.action for r in session.query(AuditRecord).order_by(AuditRecord.seq)]
    assert actions.count("circuit-open") == 1 and actions.count("circuit-open-refused") == 2
