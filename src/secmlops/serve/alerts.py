"""Alerts to an operator's webhook, sent off the request path.

Every alert is also an audit record (written by the caller, which already has the record's
payload: hashes and numbers only). `notify` only puts the alert on a bounded queue: a sender
thread POSTs it as JSON with a short timeout. A slow, failing or dead webhook therefore never
delays or fails a request; undelivered alerts are counted (`failures`, `dropped`) and the first
failure is logged once. The same alert for the same subject is sent at most once per
`repeat_after` seconds, so a blocked client's every retry does not page anyone.

With a secret, every POST carries `X-Secmlops-Timestamp` (Unix seconds) and
`X-Secmlops-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>." + body>`, so the receiver can
refuse forged or replayed alerts. A transport error, 429 or 5xx is retried `retries` times with
exponential backoff (0.25 s, 0.5 s, ...); other answers are final.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger("secmlops.serve.alerts")

MAX_REMEMBERED = 10_000  # distinct (alert, subject) keys kept for repeat suppression


class AlertSink:
    """Deduplicates alerts and delivers them to `webhook_url` from one daemon thread."""

    def __init__(self, webhook_url: str | None, *, timeout: float = 2.0, queue_size: int = 1000,
                 repeat_after: float = 300.0, secret: bytes | None = None, retries: int = 2,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.webhook_url, self.timeout, self.repeat_after = webhook_url, timeout, repeat_after
        self.secret, self.retries = secret, retries
        self.clock = clock
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=queue_size)
        self._last: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()
        self.sent = self.failures = self.dropped = self.suppressed = 0
        self._warned = False
        self._thread: threading.Thread | None = None
        if webhook_url:
            self._thread = threading.Thread(target=self._run, name="alert-webhook", daemon=True)
            self._thread.start()

    def notify(self, alert: str, subject: str, details: dict[str, Any]) -> str:
        """Queue an alert for the webhook: "queued", "repeat" (suppressed), "dropped" (queue
        full) or "no-webhook". Never blocks, never raises."""
        now = self.clock()
        key = (alert, subject)
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.repeat_after:
                self.suppressed += 1
                return "repeat"
            if len(self._last) >= MAX_REMEMBERED:
                self._last.clear()
            self._last[key] = now
        if self._thread is None:
            return "no-webhook"
        body = {"source": "secmlops-gateway", "alert": alert, "subject": subject,
                "details": details, "time": datetime.now(UTC).isoformat()}  # fmt: skip
        try:
            self._queue.put_nowait(body)
        except queue.Full:
            self.dropped += 1
            return "dropped"
        return "queued"

    def forget(self, alert: str, subject: str) -> None:
        """Allow the next `alert` for `subject` at once (its condition cleared)."""
        with self._lock:
            self._last.pop((alert, subject), None)

    def close(self, wait: float = 2.0) -> None:
        """Stop the sender after the queued alerts (bounded by `wait` seconds)."""
        if self._thread is not None:
            try:
                self._queue.put(None, timeout=wait)
            except queue.Full:
                return
            self._thread.join(timeout=wait)

    def _headers(self, data: bytes) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.secret:
            stamp = str(int(time.time()))
            mac = hmac.new(self.secret, stamp.encode() + b"." + data, hashlib.sha256).hexdigest()
            headers |= {"X-Secmlops-Timestamp": stamp, "X-Secmlops-Signature": f"sha256={mac}"}
        return headers

    def _deliver(self, client: Any, body: dict[str, Any]) -> str | None:
        """POST with retries; None when delivered, else what went wrong the last time."""
        import httpx

        assert self.webhook_url is not None
        data = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        problem = "not sent"
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(min(0.25 * 2 ** (attempt - 1), 5.0))
            try:
                response = client.post(self.webhook_url, content=data, headers=self._headers(data))
            except httpx.HTTPError as exc:
                problem = type(exc).__name__
                continue
            if response.status_code < 300:
                return None
            problem = f"HTTP {response.status_code}"
            if response.status_code != 429 and response.status_code < 500:
                return problem  # the receiver refused it: sending again will not help
        return problem

    def _run(self) -> None:
        import httpx

        with httpx.Client(timeout=self.timeout, follow_redirects=False) as client:
            while (body := self._queue.get()) is not None:
                problem = self._deliver(client, body)
                if problem is None:
                    self.sent += 1
                    continue
                self.failures += 1
                if not self._warned:  # once: a dead webhook must not flood the log
                    self._warned = True
                    log.warning("alert webhook failed (%s); further failures are only counted "
                                "in secmlops_gateway_alert_failures", problem)  # fmt: skip
