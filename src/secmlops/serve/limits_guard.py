"""Request limits and token budgets per tenant, key and model (the `limits` library).

In-process memory by default; a Redis URL shares the counters between gateway replicas, so a
tenant cannot multiply its quota by spreading requests over replicas.
"""

from __future__ import annotations

import bisect
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter
from limits.storage import storage_from_string

from secmlops.errors import GatewayError


@dataclass(frozen=True, slots=True)
class LimitSettings:
    requests: str = "120/minute"  # per tenant + subject + model
    tenant_requests: str = "1000/minute"  # per tenant, all subjects
    tokens: str = "200000/day"  # chat token budget per tenant + subject
    storage_url: str = "memory://"


class Exceeded(GatewayError):
    """A limit was reached (the gateway answers 429 with Retry-After)."""

    def __init__(self, what: str, retry_after: int) -> None:
        super().__init__(f"{what} limit reached; retry in {retry_after} s")
        self.retry_after = retry_after


class LimitStoreUnavailable(GatewayError):
    """The shared limit store cannot be reached (the gateway answers 503 rather than unlimited)."""


def _item(text: str) -> RateLimitItem:
    try:
        return parse(text)
    except ValueError as exc:
        raise GatewayError(f"invalid limit {text!r}", hint='use e.g. "60/minute"') from exc


class _LoopMemoryStorage(MemoryStorage):
    """limits' in-process storage with its expiry sweep run inline, at most once per `SWEEP_EVERY`.

    The library schedules its sweep as a new task after nearly every hit, and the sweep hops to a
    worker thread (`asyncio.to_thread`) for every key: about four thread round trips per request,
    most of the limiter's cost and a source of tail latency. The sweep only forgets expired
    entries; `acquire_entry` and `get_moving_window` decide from the entries' own timestamps, so
    when it runs changes no decision. It runs on the event loop without awaiting, so no hit can
    interleave with it (the library never holds a key's lock across an await).
    """

    SWEEP_EVERY = 1.0

    def __init__(self) -> None:
        super().__init__()
        self.next_sweep = 0.0

    async def _MemoryStorage__schedule_expiry(self) -> None:  # the library's private hook
        now = time.time()
        if now >= self.next_sweep:
            self.next_sweep = now + self.SWEEP_EVERY
            self.sweep(now)

    def sweep(self, now: float) -> None:
        """Forget moving-window entries and fixed-window counters that expired before NOW."""
        for key, events in list(self.events.items()):
            # newest first, so expiries descend: keep the prefix that expires after now
            keep = bisect.bisect_left(events, -now, key=lambda event: -event.expiry)
            if keep:
                self.events[key] = events[:keep]
            else:
                del self.events[key]
                self.locks.pop(key, None)
        for key, expires in list(self.expirations.items()):
            if expires <= now:
                self.storage.pop(key, None)
                del self.expirations[key]
                self.locks.pop(key, None)


class Limiter:
    def __init__(self, settings: LimitSettings) -> None:
        url = settings.storage_url.removeprefix("async+")
        options: dict[str, float | str | bool] = {}
        if url.startswith(("redis://", "rediss://", "redis+unix://")):
            # redis-py (the `redis` package) rather than the default coredis; short timeouts so
            # an unreachable store fails a request fast (503) instead of hanging it.
            options = {
                "implementation": "redispy",
                "socket_connect_timeout": 2,
                "socket_timeout": 2,
            }
        try:
            made = (
                _LoopMemoryStorage()
                if url == "memory://"
                else storage_from_string("async+" + url, **options)
            )
        except Exception as exc:  # the limits library raises several types for bad URLs
            raise GatewayError(f"cannot use limit storage {settings.storage_url}: {exc}") from exc
        if not isinstance(made, Storage):
            raise GatewayError(f"limit storage {settings.storage_url} has no asynchronous backend")
        storage: Storage = made
        # Moving windows for request rates (no burst at window edges), fixed for daily budgets.
        self._moving = MovingWindowRateLimiter(storage)
        self._fixed = FixedWindowRateLimiter(storage)
        self.requests = _item(settings.requests)
        self.tenant_requests = _item(settings.tenant_requests)
        self.tokens = _item(settings.tokens)

    async def _hit(self, limiter: MovingWindowRateLimiter | FixedWindowRateLimiter,
                   item: RateLimitItem, what: str, keys: tuple[str, ...], cost: int = 1) -> None:  # fmt: skip
        try:
            allowed = await limiter.hit(item, *keys, cost=cost)
            stats = None if allowed else await limiter.get_window_stats(item, *keys)
        except Exception as exc:  # redis/network errors of several types: fail closed
            raise LimitStoreUnavailable(f"limit store unavailable: {type(exc).__name__}") from exc
        if stats is not None:
            raise Exceeded(what, max(1, int(stats.reset_time - time.time()) + 1))

    async def check_request(self, tenant: str, subject: str, model: str) -> None:
        await self._hit(self._moving, self.tenant_requests, "tenant request", ("tenant", tenant))
        await self._hit(self._moving, self.requests, "request", ("key", tenant, subject, model))

    async def check_tokens(self, tenant: str, subject: str, tokens: int) -> None:
        """Charge a request's token estimate to the budget; refuse when it would overrun."""
        if tokens > 0:
            await self._hit(
                self._fixed, self.tokens, "token budget", ("tokens", tenant, subject), tokens
            )
