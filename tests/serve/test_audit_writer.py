"""The gateway's audit writer: a request served alone commits on its own thread, concurrent ones
are group-committed by the writer thread, both on one verifiable chain; failures fail closed."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from secmlops.errors import StoreError
from secmlops.serve.audit_writer import AuditWriter
from secmlops.store import audit
from secmlops.store.db import open_database


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return open_database(f"sqlite:///{tmp_path / 'audit.db'}")


@pytest.fixture(params=[True, False], ids=["power-loss", "process-crash"])
def writer(request: pytest.FixtureRequest, engine: Engine) -> Iterator[AuditWriter]:
    made = AuditWriter(engine, durable=request.param)
    yield made
    made.close()


def _alone() -> bool:
    return True


def _actions(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(text("SELECT action FROM audit_log ORDER BY seq"))]


def test_a_request_alone_commits_without_the_writer_thread(
    writer: AuditWriter, engine: Engine
) -> None:
    threads: list[str] = []
    append = writer._appender.append

    def spy(entries: Sequence[audit.Entry], *, wait: bool = True) -> None:
        threads.append(threading.current_thread().name)
        append(entries, wait=wait)

    writer._appender.append = spy  # type: ignore[method-assign]

    async def requests() -> None:
        for i in range(5):
            await writer.write("bank-a/svc", "predict", "fraud@1", {"i": i}, alone=_alone)

    asyncio.run(requests())
    assert threads == [threading.current_thread().name] * 5
    assert (writer.inline, writer.batches, writer.records) == (5, 5, 5)
    assert _actions(engine) == ["predict"] * 5
    assert audit.verify_log(engine).ok


def test_concurrent_requests_are_group_committed_by_the_writer(
    writer: AuditWriter, engine: Engine
) -> None:
    async def requests() -> None:
        await asyncio.gather(
            *(writer.write("bank-a/svc", "predict", "fraud@1", {"i": i}) for i in range(64))
        )

    asyncio.run(requests())
    assert writer.inline == 0 and writer.records == 64 and writer.batches <= 64
    result = audit.verify_log(engine)
    assert result.ok and result.records == 64


def test_requests_ready_together_share_a_durable_commit(
    writer: AuditWriter, engine: Engine
) -> None:
    """Requests that became ready together (the event loop read them in one go): a durable
    writer lets them all start before deciding, so they share the writer's group commit instead
    of each blocking the event loop for its own fsync; without fsync each commits inline."""
    in_flight = 0

    async def request(i: int) -> None:
        nonlocal in_flight
        in_flight += 1  # as CountInFlight: counted when the request starts being served
        try:
            await writer.write("bank-a/svc", "predict", "fraud@1", {"i": i},
                               alone=lambda: in_flight <= 1)  # fmt: skip
        finally:
            in_flight -= 1

    async def ready_together() -> None:
        await asyncio.gather(*(request(i) for i in range(6)))

    asyncio.run(ready_together())
    assert writer.inline == (0 if writer.durable else 6)
    result = audit.verify_log(engine)
    assert result.ok and result.records == 6


def test_inline_and_writer_thread_commits_share_one_chain(
    writer: AuditWriter, engine: Engine
) -> None:
    """Requests alone on the event loop while another thread (the monitor) writes through the
    writer thread: one commit at a time on the shared connection, nothing lost or forked."""

    def monitor() -> None:
        for i in range(100):
            writer.write_sync("gateway", "drift-check", "fraud", {"i": i})

    background = threading.Thread(target=monitor)

    async def requests() -> None:
        background.start()
        for i in range(100):
            await writer.write("bank-a/svc", "predict", "fraud@1", {"i": i}, alone=_alone)

    asyncio.run(requests())
    background.join()
    result = audit.verify_log(engine)
    assert result.ok, result.problems
    actions = _actions(engine)
    assert actions.count("predict") == 100 and actions.count("drift-check") == 100
    assert writer.records == 200


def test_a_busy_writer_takes_the_record_instead(writer: AuditWriter, engine: Engine) -> None:
    async def request_while_a_commit_runs() -> None:
        with writer._lock:  # the writer thread is in the middle of a commit
            pending = asyncio.ensure_future(
                writer.write("bank-a/svc", "predict", "fraud@1", {}, alone=_alone)
            )
            await asyncio.sleep(0.05)
            assert not pending.done()  # not answered before its record is committed
        await pending

    asyncio.run(request_while_a_commit_runs())
    assert writer.inline == 0 and _actions(engine) == ["predict"]


@pytest.mark.parametrize("alone", [True, False])
def test_a_failed_commit_fails_the_request_and_the_chain_stays_intact(
    writer: AuditWriter, engine: Engine, alone: bool
) -> None:
    check = _alone if alone else None
    unserialisable: dict[str, Any] = {object(): 1}  # type: ignore[dict-item]

    async def requests() -> None:
        with pytest.raises(StoreError, match="audit log unavailable"):
            await writer.write("bank-a/svc", "predict", "fraud@1", unserialisable, alone=check)
        await writer.write("bank-a/svc", "predict", "fraud@1", {"after": True}, alone=check)

    asyncio.run(requests())
    result = audit.verify_log(engine)
    assert result.ok and result.records == 1


def test_a_request_alone_never_waits_on_the_event_loop_for_another_writer(
    engine: Engine, tmp_path: Path
) -> None:
    """Another process (the CLI promoting a model) holds SQLite's write lock: the inline commit
    gives way at once and the writer thread waits for the lock, so the event loop keeps serving;
    the request is still not answered before its record is committed."""
    import sqlite3

    writer = AuditWriter(engine, durable=False)
    other = sqlite3.connect(tmp_path / "audit.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # holds the write lock
    ticks: list[int] = []

    async def scenario() -> None:
        task = asyncio.create_task(
            writer.write("bank-a/svc", "predict", "fraud@1", {"i": 0}, alone=_alone)
        )
        for i in range(20):  # the loop keeps running while the lock is held
            await asyncio.sleep(0.01)
            ticks.append(i)
        assert not task.done()  # not acknowledged without its record
        other.execute("COMMIT")
        await asyncio.wait_for(task, timeout=10)

    try:
        asyncio.run(scenario())
    finally:
        other.close()
        writer.close()
    assert len(ticks) == 20
    assert (writer.inline, writer.inline_deferred, writer.records) == (0, 1, 1)
    assert _actions(engine) == ["predict"]
    assert audit.verify_log(engine).ok
