"""The registry and the audit log on a real PostgreSQL server (the SQLite tests cover the logic;
these prove the same schema, migrations, transactions and chain work on the other backend, and
that concurrent writers neither fork the chain nor lose records)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from secmlops.errors import StoreError
from secmlops.policy import evaluate_gate
from secmlops.store import audit
from secmlops.store.artifacts import LocalStore
from secmlops.store.db import open_database
from secmlops.store.registry import GateDenied, Registry
from tests.store.conftest import GOOD_FACTS, KeySigner, make_model


@pytest.fixture
def engine(postgres_url: str) -> Iterator[Engine]:
    """A fresh database per test on the shared server."""
    name = "t_" + uuid.uuid4().hex[:12]
    admin = open_database(postgres_url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = postgres_url.rsplit("/", 1)[0] + "/" + name
    made = open_database(url)
    yield made
    made.dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def test_schema_is_migrated_once_and_reopening_is_idempotent(engine: Engine) -> None:
    reopened = open_database(engine.url.render_as_string(hide_password=False))
    with reopened.connect() as conn:
        versions = conn.execute(text("SELECT version FROM schema_version")).scalars().all()
        tables = set(
            conn.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            ).scalars()
        )
    assert versions == [1]
    assert {"audit_log", "schema_version"} <= tables
    reopened.dispose()


def test_registry_lifecycle_on_postgres(engine: Engine, tmp_path: Path) -> None:
    signer = KeySigner()
    reg = Registry(
        LocalStore(tmp_path / "store"), engine, verifier=signer.verify, gate=evaluate_gate
    )
    m1 = make_model(tmp_path / "m1", b"v1")
    v1 = reg.push(m1, "fraud", signer.sign(m1), "alice", facts=GOOD_FACTS,
                  lineage=[("package", "numpy==2.1.0", {})])  # fmt: skip
    m2 = make_model(tmp_path / "m2", b"v2")
    v2 = reg.push(m2, "fraud", signer.sign(m2), "alice", facts=GOOD_FACTS)
    assert (v1.version, v2.version) == (1, 2)
    reg.promote("fraud", "1", "production", "bob", approver="bob2")
    reg.promote("fraud", "2", "production", "bob", approver="bob2")
    assert reg.rollback("fraud", "production", "bob").version == 1
    reg.pull("fraud", "production", tmp_path / "out", "carol")
    assert (tmp_path / "out" / "weights.bin").read_bytes() == b"v1"
    assert [v.name for v in reg.affected_by("numpy==2.1.0")] == ["fraud"]
    unsigned = make_model(tmp_path / "m3", b"v3")
    with pytest.raises(GateDenied):
        reg.push(unsigned, "fraud", unsigned / "model.sig", "mallory", facts=GOOD_FACTS)
    log = audit.verify_log(engine)
    assert log.ok, log.problems
    assert log.records == 7  # 2 pushes, 2 promotions, rollback, pull, refused push


def test_tampering_is_detected_on_postgres(engine: Engine) -> None:
    with engine.begin() as conn:
        audit.append_many(conn, [("a", "x", "s", {"i": i}) for i in range(4)])
        conn.execute(text("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2"))
    assert not audit.verify_log(engine).ok


def _all_at_once(work: Callable[[int], object], n: int) -> list[object]:
    """Run work(0..n-1) in n threads at the same time; return the results, raise the first error."""
    results: list[object] = []
    errors: list[BaseException] = []

    def run(k: int) -> None:
        try:
            results.append(work(k))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    return results


def test_concurrent_writers_keep_one_chain(engine: Engine) -> None:
    """Eight threads append at once: no forked chain, no lost record, no failed writer."""

    def writer(k: int) -> None:
        for i in range(15):
            with engine.begin() as conn:
                audit.append_many(conn, [(f"w{k}", "write", "s", {"i": i})])

    _all_at_once(writer, 8)
    log = audit.verify_log(engine)
    assert log.ok, log.problems
    assert log.records == 8 * 15


def test_batch_appender_on_postgres(engine: Engine) -> None:
    appender = audit.BatchAppender(engine)
    appender.append([("gw", "predict", "m@1", {"k": i}) for i in range(3)])
    appender.close()
    assert audit.verify_log(engine).records == 3


def test_unreachable_server_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match="metadata database"):
        open_database("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")


def test_concurrent_pushes_get_distinct_versions(engine: Engine, tmp_path: Path) -> None:
    signer = KeySigner()
    reg = Registry(
        LocalStore(tmp_path / "store"), engine, verifier=signer.verify, gate=evaluate_gate
    )
    models = [make_model(tmp_path / f"m{k}", f"v{k}".encode()) for k in range(6)]
    signatures = [signer.sign(m) for m in models]

    def push(k: int) -> int:
        return reg.push(models[k], "fraud", signatures[k], "alice", facts=GOOD_FACTS).version

    assert sorted(_all_at_once(push, 6)) == [1, 2, 3, 4, 5, 6]  # type: ignore[type-var]
    assert audit.verify_log(engine).ok
