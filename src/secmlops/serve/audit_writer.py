"""Group commit for the gateway's audit log: one writer thread, one transaction per batch.

A request's audit record must be durable before its response is sent. Committing each record in
its own transaction costs one fsync per request and serialises every request on the SQLite write
lock. The writer instead drains every record queued while the previous commit was running, appends
them in one transaction, commits once, and only then wakes the waiting requests: throughput grows
with concurrency and the guarantee "no acknowledged request without its record" still holds, since
a request's future resolves only after the commit that contains its record.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from secmlops.errors import StoreError
from secmlops.store.audit import BatchAppender

MAX_BATCH = 512


@dataclass(slots=True)
class _Pending:
    actor: str
    action: str
    subject: str
    payload: dict[str, Any]
    done: threading.Event = field(default_factory=threading.Event)
    future: asyncio.Future[None] | None = None
    error: BaseException | None = None


class AuditWriter:
    """Serialises audit appends through one thread; `write` resolves after its batch commits."""

    def __init__(self, engine: Engine, *, durable: bool = True) -> None:
        self.engine = engine
        self.durable = durable
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()
        self.batches = 0  # observable: how many commits served how many records
        self.records = 0

    async def write(self, actor: str, action: str, subject: str, payload: dict[str, Any]) -> None:
        loop = asyncio.get_running_loop()
        item = _Pending(actor, action, subject, payload, future=loop.create_future())
        self._queue.put(item)
        assert item.future is not None
        await item.future

    def write_sync(self, actor: str, action: str, subject: str, payload: dict[str, Any]) -> None:
        item = _Pending(actor, action, subject, payload)
        self._queue.put(item)
        item.done.wait()
        if item.error is not None:
            raise item.error

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        appender = BatchAppender(self.engine, durable=self.durable)  # owned by this thread
        try:
            self._serve(appender)
        finally:
            appender.close()

    def _serve(self, appender: BatchAppender) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < MAX_BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            self._commit(appender, batch)
            if stop:
                return

    def _commit(self, appender: BatchAppender, batch: list[_Pending]) -> None:
        error: BaseException | None = None
        try:  # BEGIN IMMEDIATE: one writer at a time, also against the CLI's registry writes
            appender.append([(i.actor, i.action, i.subject, i.payload) for i in batch])
            self.batches += 1
            self.records += len(batch)
        except Exception as exc:  # any failure: every waiting request fails closed (503, no answer)
            error = StoreError(f"audit log unavailable: {exc}")
        for item in batch:
            item.error = error
            if item.future is not None:
                self._resolve(item.future, error)
            item.done.set()

    @staticmethod
    def _resolve(future: asyncio.Future[None], error: BaseException | None) -> None:
        def settle() -> None:
            if future.done():
                return  # the request was cancelled (client went away); the record is still written
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)

        with contextlib.suppress(RuntimeError):  # the event loop is closed: shutting down
            future.get_loop().call_soon_threadsafe(settle)
