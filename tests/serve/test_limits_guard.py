"""The in-process limiter: exact under concurrent requests, no worker-thread hop per hit, expired
entries forgotten by the inline sweep and never a live one."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from limits.aio.storage import MemoryStorage

from secmlops.serve import limits_guard
from secmlops.serve.limits_guard import Exceeded, Limiter, LimitSettings


class _Clock:
    """Stands in for the `time` module of limits' memory storage and of the limiter."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


def _outcomes(limiter: Limiter, count: int, subject: str = "svc") -> list[str]:
    async def one() -> str:
        try:
            await limiter.check_request("bank-a", subject, "fraud")
        except Exceeded:
            return "limited"
        return "allowed"

    async def all_at_once() -> list[str]:
        return list(await asyncio.gather(*(one() for _ in range(count))))

    return asyncio.run(all_at_once())


def test_the_library_still_has_the_hook_the_storage_replaces() -> None:
    # An upgrade of `limits` that renames it would silently bring back the thread hops.
    assert "_MemoryStorage__schedule_expiry" in vars(MemoryStorage)


def test_limit_is_exact_under_concurrent_requests() -> None:
    limiter = Limiter(LimitSettings(requests="20/minute", tenant_requests="1000/minute"))
    outcomes = _outcomes(limiter, 50)
    assert outcomes.count("allowed") == 20 and outcomes.count("limited") == 30
    assert _outcomes(limiter, 5, subject="other") == ["allowed"] * 5  # per subject


def test_tenant_limit_spans_subjects() -> None:
    limiter = Limiter(LimitSettings(requests="100/minute", tenant_requests="7/minute"))
    outcomes = _outcomes(limiter, 5, "a") + _outcomes(limiter, 5, "b")
    assert outcomes.count("allowed") == 7


def test_hits_never_hop_to_a_worker_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    hops: list[object] = []

    async def record(function: Any, *args: Any) -> Any:
        hops.append(function)
        return function(*args)

    monkeypatch.setattr(asyncio, "to_thread", record)
    limiter = Limiter(LimitSettings(requests="10/minute", tokens="100/day"))

    async def hits() -> None:
        for _ in range(10):
            await limiter.check_request("bank-a", "svc", "fraud")
            await limiter.check_tokens("bank-a", "svc", 5)
            await asyncio.sleep(0.001)  # let any expiry task the storage scheduled run

    asyncio.run(hits())
    assert not hops
    assert _outcomes(limiter, 1) == ["limited"]


def test_sweep_forgets_expired_entries_and_the_window_reopens(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import limits.aio.storage.memory as memory

    clock = _Clock(1_000_000.0)
    monkeypatch.setattr(memory, "time", clock)
    monkeypatch.setattr(limits_guard, "time", clock)
    limiter = Limiter(LimitSettings(requests="3/minute", tenant_requests="1000/minute",
                                    tokens="10/day"))  # fmt: skip
    storage = limiter._moving.storage
    assert isinstance(storage, limits_guard._LoopMemoryStorage)
    assert _outcomes(limiter, 4) == ["allowed"] * 3 + ["limited"]
    asyncio.run(limiter.check_tokens("bank-a", "svc", 4))

    clock.now += 30  # inside the window: a sweep keeps every live entry, the limit still holds
    storage.sweep(clock.now)
    assert len(storage.events) == 2 and storage.expirations
    assert _outcomes(limiter, 1) == ["limited"]

    clock.now += 31  # every entry and the daily counter's expiry are in the past
    storage.sweep(clock.now + 86_400)
    assert not storage.events and not storage.expirations and not storage.storage
    assert _outcomes(limiter, 4) == ["allowed"] * 3 + ["limited"]
