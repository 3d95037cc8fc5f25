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
import json
import queue
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select

from secmlops.errors import StoreError
from secmlops.store.db import AuditRecord

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


def _chain(conn: Connection, batch: list[_Pending]) -> list[dict[str, Any]]:
    """The batch as hash-chained rows after the current head, exactly as `audit.append` links
    them (same canonical form and link), computed once per batch instead of one ORM round trip
    per record: the head is read once, inside the write transaction, so another replica writing
    to the same database cannot fork the chain."""
    from secmlops.store.audit import GENESIS, _canonical, _link

    head = conn.execute(
        select(AuditRecord.seq, AuditRecord.hash).order_by(AuditRecord.seq.desc()).limit(1)
    ).first()
    seq, prev = (0, GENESIS) if head is None else (int(head[0]), str(head[1]))
    rows = []
    for item in batch:
        seq += 1
        at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        body = json.dumps(dict(item.payload), sort_keys=True, default=str)
        digest = _link(prev, _canonical(seq, at, item.actor, item.action, item.subject, body))
        rows.append({"seq": seq, "at": at, "actor": item.actor, "action": item.action,
                     "subject": item.subject, "payload": body, "prev_hash": prev, "hash": digest})  # fmt: skip
        prev = digest
    return rows


class AuditWriter:
    """Serialises audit appends through one thread; `write` resolves after its batch commits."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
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
            self._commit(batch)
            if stop:
                return

    def _commit(self, batch: list[_Pending]) -> None:
        error: BaseException | None = None
        try:
            with self.engine.begin() as conn:  # BEGIN IMMEDIATE (store.db): one writer at a time
                conn.execute(insert(AuditRecord), _chain(conn, batch))
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
