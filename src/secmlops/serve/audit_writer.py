"""Group commit for the gateway's audit log: one writer thread, one transaction per batch.

A request's audit record must be durable before its response is sent. Committing each record in
its own transaction costs one fsync per request and serialises every request on the SQLite write
lock. The writer instead drains every record queued while the previous commit was running, appends
them in one transaction, commits once, and only then wakes the waiting requests: throughput grows
with concurrency and the guarantee "no acknowledged request without its record" still holds, since
a request's future resolves only after the commit that contains its record.

When the writer is idle and no other request is in flight, `write` commits on the caller's
thread instead (same appender, same lock): with one request at a time there is nothing to group,
and the two thread hand-offs (to the writer, back to the event loop) cost more than a
non-fsynced commit and, on a busy host, wait for a CPU. Only for SQLite: a local file, where
the event loop never waits on a network. A durable (fsynced) commit first lets the requests that
are ready to run start: under load they then share one group commit instead of each blocking
the event loop for its own fsync.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from secmlops.errors import StoreError
from secmlops.store.audit import BatchAppender, Entry, WriterBusy

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
        self._appender = BatchAppender(engine, durable=durable)
        self._lock = threading.Lock()  # one commit at a time on the appender's connection
        self._may_inline = engine.dialect.name == "sqlite"
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()
        self.batches = 0  # observable: how many commits served how many records
        self.records = 0
        self.inline = 0  # of `batches`, how many were committed on the caller's thread
        self.inline_deferred = 0  # inline attempts that found another writer and queued instead

    async def write(self, actor: str, action: str, subject: str, payload: dict[str, Any], *,
                    alone: Callable[[], bool] | None = None) -> None:  # fmt: skip
        """Return once the record is committed. ALONE tells whether no other request is in
        flight: then the record is committed now on this thread if the writer is idle (blocking
        the event loop for one commit)."""
        if alone is not None and self._may_inline:
            if self.durable:
                await asyncio.sleep(0)  # requests ready to run start now and see this one
            if (
                alone()
                and self._queue.empty()
                and self._lock.acquire(blocking=False)
                and self._commit_inline([(actor, action, subject, payload)])
            ):
                return
        loop = asyncio.get_running_loop()
        item = _Pending(actor, action, subject, payload, future=loop.create_future())
        self._queue.put(item)
        assert item.future is not None
        await item.future

    def _commit_inline(self, entries: list[Entry]) -> bool:
        """Commit ENTRIES on this thread; the caller has taken the lock. False, with nothing
        written, when another process (the CLI, another replica) holds the database's write
        lock: the event loop must not wait for it, the writer thread will."""
        try:
            error = self._append(entries, wait=False)
            if error is None:
                self.inline += 1
        except WriterBusy:
            self.inline_deferred += 1
            return False
        finally:
            self._lock.release()
        if error is not None:
            raise error
        return True

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
        try:
            self._serve()
        finally:
            with self._lock:
                self._appender.close()

    def _serve(self) -> None:
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
            with self._lock:
                error = self._append([(i.actor, i.action, i.subject, i.payload) for i in batch])
            self._settle(batch, error)
            if stop:
                return

    def _append(self, entries: list[Entry], *, wait: bool = True) -> StoreError | None:
        """Commit ENTRIES in one transaction (the caller holds the lock); the error, if any.
        `wait=False` raises WriterBusy instead of waiting for another writer."""
        try:  # BEGIN IMMEDIATE: one writer at a time, also against the CLI's registry writes
            self._appender.append(entries, wait=wait)
        except WriterBusy:
            raise
        except Exception as exc:  # any failure: every waiting request fails closed (503, no answer)
            return StoreError(f"audit log unavailable: {exc}")
        self.batches += 1
        self.records += len(entries)
        return None

    def _settle(self, batch: list[_Pending], error: BaseException | None) -> None:
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
