from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from secmlops.evidence.keys import generate_private_key
from secmlops.store import audit
from secmlops.store.db import open_database, transaction


def _log(tmp_path: Path, n: int = 5) -> Engine:
    engine = open_database(f"sqlite:///{tmp_path / 'a.db'}")
    for i in range(n):
        with transaction(engine) as s:
            audit.append(s, "alice", "register", f"m@{i + 1}", {"i": i})
    return engine


def test_intact_log_verifies_with_checkpoint(tmp_path: Path) -> None:
    key = generate_private_key()
    engine = _log(tmp_path)
    assert audit.checkpoint(engine, key) is not None
    result = audit.verify_log(engine, key.public_key())
    assert result.ok, result.problems
    assert (result.records, result.checkpoints) == (5, 1)


@pytest.mark.parametrize("seq", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("column", ["actor", "action", "subject", "payload", "at"])
def test_every_single_record_edit_is_detected(tmp_path: Path, seq: int, column: str) -> None:
    engine = _log(tmp_path)
    value = '{"i": 99}' if column == "payload" else "mallory"
    with engine.begin() as conn:
        conn.execute(
            text(f"UPDATE audit_log SET {column} = :v WHERE seq = :s"),  # noqa: S608 - fixed column names
            {"v": value, "s": seq},
        )
    problems = audit.verify_log(engine).problems
    assert any(f"record {seq}" in p and "edited" in p for p in problems), problems


@pytest.mark.parametrize("seq", [1, 2, 3, 4])
def test_every_deletion_is_detected(tmp_path: Path, seq: int) -> None:
    engine = _log(tmp_path)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE seq = :s"), {"s": seq})
    assert not audit.verify_log(engine).ok


def test_tail_truncation_is_detected_by_checkpoint(tmp_path: Path) -> None:
    key = generate_private_key()
    engine = _log(tmp_path)
    audit.checkpoint(engine, key)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE seq = 5"))
    problems = audit.verify_log(engine, key.public_key()).problems
    assert any("truncated" in p for p in problems)


@pytest.mark.parametrize(("a", "b"), [(1, 2), (2, 4), (4, 5)])
def test_every_reorder_is_detected(tmp_path: Path, a: int, b: int) -> None:
    engine = _log(tmp_path)
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET seq = -1 WHERE seq = :a"), {"a": a})
        conn.execute(text("UPDATE audit_log SET seq = :a WHERE seq = :b"), {"a": a, "b": b})
        conn.execute(text("UPDATE audit_log SET seq = :b WHERE seq = -1"), {"b": b})
    assert not audit.verify_log(engine).ok


def test_rewritten_chain_fails_the_signed_checkpoint(tmp_path: Path) -> None:
    key = generate_private_key()
    engine = _log(tmp_path, 3)
    audit.checkpoint(engine, key)
    # An attacker with database access rewrites everything consistently ...
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log"))
    for i in range(3):
        with transaction(engine) as s:
            audit.append(s, "mallory", "register", f"m@{i + 1}", {"i": i})
    problems = audit.verify_log(engine, key.public_key()).problems
    assert any("rewritten" in p for p in problems)  # ... but cannot re-sign the checkpoint


def test_checkpoint_by_another_key_is_detected(tmp_path: Path) -> None:
    engine = _log(tmp_path, 2)
    audit.checkpoint(engine, generate_private_key())
    problems = audit.verify_log(engine, generate_private_key().public_key()).problems
    assert any("expected key" in p for p in problems)


@pytest.mark.parametrize("durable", [True, False])
def test_batch_appender_and_transactions_share_one_chain(tmp_path: Path, durable: bool) -> None:
    """The gateway's driver-level appender and ordinary transactions interleave on one chain."""
    engine = _log(tmp_path, n=2)
    appender = audit.BatchAppender(engine, durable=durable)
    appender.append([("gw", "predict", "m@1", {"k": i}) for i in range(3)])
    with transaction(engine) as s:
        audit.append(s, "alice", "promote", "m@1", {})
    appender.append([("gw", "predict", "m@1", {"k": 9})])
    appender.close()
    result = audit.verify_log(engine)
    assert result.ok, result.problems
    assert result.records == 7
    with engine.connect() as conn:
        actions = [r[0] for r in conn.execute(text("SELECT action FROM audit_log ORDER BY seq"))]
    assert actions == ["register"] * 2 + ["predict"] * 3 + ["promote", "predict"]


def test_batch_appender_failure_leaves_the_chain_intact(tmp_path: Path) -> None:
    engine = _log(tmp_path, n=1)
    appender = audit.BatchAppender(engine)
    with pytest.raises(TypeError):  # a payload that cannot become JSON fails the whole batch
        appender.append([("gw", "ok", "m", {}), ("gw", "bad", "m", {object(): 1})])
    appender.append([("gw", "after", "m", {})])
    appender.close()
    result = audit.verify_log(engine)
    assert result.ok and result.records == 2
