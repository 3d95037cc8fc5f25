"""The metadata database (SQLAlchemy 2): registry versions, aliases, lineage, decisions, audit log.

SQLite by default (`.secmlops/secmlops.db`); PostgreSQL through a `postgresql+psycopg://` URL with
the same schema. Schema changes are numbered migrations applied in order and recorded in
`schema_version`, so an old database is upgraded in place and a newer one is refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import (
    Boolean,
    Connection,
    DateTime,
    Engine,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    insert,
    select,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from secmlops.errors import StoreError


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class SchemaVersion(Base):
    __tablename__ = "schema_version"
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    applied_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ModelVersion(Base):
    """One immutable registered version: its content is the manifest digest."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("name", "version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    version: Mapped[int] = mapped_column(Integer)
    manifest_digest: Mapped[str] = mapped_column(String(64))
    signature_digest: Mapped[str] = mapped_column(String(64))
    registrant: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    decision: Mapped[str] = mapped_column(Text)  # the register gate's Decision as JSON
    facts: Mapped[str] = mapped_column(Text)  # what the gate saw, for audits and re-evaluation


class Alias(Base):
    __tablename__ = "aliases"
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    alias: Mapped[str] = mapped_column(String(100), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AliasHistory(Base):
    """Every alias move, so rollback knows where an alias pointed before."""

    __tablename__ = "alias_history"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    alias: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    rolled_back: Mapped[bool] = mapped_column(Boolean, default=False)


class LineageEdge(Base):
    """An input of a model version: a dataset, package, base model, code commit, scan or attestation."""

    __tablename__ = "lineage_edges"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    ref: Mapped[str] = mapped_column(String(400), index=True)
    detail: Mapped[str] = mapped_column(Text, default="{}")


class AuditRecord(Base):
    """Append-only, hash-chained: hash = SHA-256(prev_hash || canonical record)."""

    __tablename__ = "audit_log"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(60))
    subject: Mapped[str] = mapped_column(String(400))
    payload: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditCheckpoint(Base):
    """A signature over the chain head at one sequence number."""

    __tablename__ = "audit_checkpoints"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    head_hash: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(Text)
    at: Mapped[str] = mapped_column(String(40))


def _migration_1(conn: Connection) -> None:
    Base.metadata.create_all(conn)


# Append new migrations; never edit a released one. Each runs in one transaction with its record.
MIGRATIONS: tuple[Callable[[Connection], None], ...] = (_migration_1,)


# PostgreSQL advisory-lock id for metadata writers (any constant 64-bit value, fixed forever).
_PG_WRITE_LOCK = int.from_bytes(
    hashlib.sha256(b"secmlops metadata").digest()[:8], "big", signed=True
)


def home_database_url(home: Path) -> str:
    """The default metadata database of a secmlops home folder (SQLite)."""
    return f"sqlite:///{home / 'secmlops.db'}"


def open_database(url: str) -> Engine:
    """Connect and bring the schema up to date; refuse a database from a newer secmlops."""
    try:
        engine = create_engine(url, future=True)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise StoreError(f"cannot open the metadata database {url}: {exc}") from exc
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(conn, _record):  # type: ignore[no-untyped-def]
            conn.isolation_level = None  # let the "begin" hook below issue BEGIN itself
            cur = conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")  # readers never block the one writer
            cur.execute("PRAGMA synchronous=FULL")  # a committed version survives power loss
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin_immediate(conn):  # type: ignore[no-untyped-def]
            # Take the write lock at BEGIN: two writers that both read the audit head and then
            # upgrade would otherwise fail with SQLITE_BUSY instead of waiting their turn.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    elif engine.dialect.name == "postgresql":

        @event.listens_for(engine, "begin")
        def _one_writer(conn):  # type: ignore[no-untyped-def]
            # The same rule as SQLite's BEGIN IMMEDIATE: one transaction at a time holds the
            # metadata write lock (released at commit or rollback), so version numbers and the
            # audit chain's head are read and extended without a race.
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_WRITE_LOCK})")

    try:
        SchemaVersion.__table__.create(engine, checkfirst=True)  # type: ignore[attr-defined]
        with Session(engine) as session:
            current = max(session.scalars(select(SchemaVersion.version)).all(), default=0)
        if current > len(MIGRATIONS):
            raise StoreError(
                f"the metadata database is at schema {current}; this secmlops knows {len(MIGRATIONS)}",
                hint="upgrade secmlops",
            )
        for number in range(current + 1, len(MIGRATIONS) + 1):
            with engine.begin() as conn:
                MIGRATIONS[number - 1](conn)
                conn.execute(insert(SchemaVersion).values(version=number, applied_at=utcnow()))
    except SQLAlchemyError as exc:
        raise StoreError(f"the metadata database {url} cannot be used: {exc}") from exc
    return engine


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """One atomic unit of work: everything in it commits together or not at all."""
    try:
        with Session(engine, expire_on_commit=False) as session, session.begin():
            yield session
    except SQLAlchemyError as exc:
        raise StoreError(f"metadata database error: {exc}") from exc
