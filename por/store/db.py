"""The store's database handle: one engine over a URL, read and write sessions.

SQLite (WAL, busy timeout, durable commits, writers take `BEGIN IMMEDIATE`) or
PostgreSQL (psycopg 3). Shared by the parts of the store — the core store
(`por.store.store`), the attestation log (`por.store.log`) and the publication state
(`por.store.publications`) — so they all work on one database. Every SQLAlchemy error
leaves here (or from the parts) as a StoreError naming the database.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from por.errors import StoreError

T = TypeVar("T")


def _configure_sqlite(engine: Engine) -> None:
    """WAL, busy timeout, durable commits, and explicit BEGINs (see `Database.writes`)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control away from pysqlite so that our BEGIN is the one used.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # BEGIN IMMEDIATE takes the write lock up front: a deferred read-then-write
        # transaction could otherwise fail to upgrade instead of waiting its turn.
        conn.exec_driver_sql(conn.get_execution_options().get("sqlite_begin", "BEGIN"))


class Database:
    """An engine with `reads` (plain BEGIN) and `writes` (BEGIN IMMEDIATE on SQLite)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.reads = sessionmaker(engine, expire_on_commit=False)
        self.writes = sessionmaker(
            engine.execution_options(sqlite_begin="BEGIN IMMEDIATE"), expire_on_commit=False
        )
        self.is_postgres = engine.dialect.name == "postgresql"

    @classmethod
    def connect(cls, url: str) -> Database:
        """An engine for a `sqlite:///…` or `postgresql+psycopg://…` URL (not yet connected)."""
        try:
            parsed = make_url(url)
        except Exception as e:  # SQLAlchemy raises ArgumentError / ValueError here
            raise StoreError(f"not a database URL: {url!r}", where="store url") from e
        kwargs: dict[str, Any] = {}
        if parsed.get_backend_name() == "sqlite":
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        elif parsed.get_backend_name() == "postgresql":
            kwargs["pool_pre_ping"] = True
        else:
            raise StoreError(
                f"unsupported database {parsed.get_backend_name()!r}; use sqlite or postgresql",
                where="store url",
            )
        try:
            engine = create_engine(parsed, **kwargs)
        except Exception as e:  # missing driver, bad option
            raise StoreError(f"cannot open database: {e}", where=parsed.render_as_string()) from e
        if parsed.get_backend_name() == "sqlite":
            _configure_sqlite(engine)
        return cls(engine)

    @property
    def url(self) -> URL:
        return self.engine.url

    @property
    def where(self) -> str:
        """The URL without its password, for error messages."""
        return self.engine.url.render_as_string(hide_password=True)

    def read(self, fn: Callable[[Session], T]) -> T:
        """`fn(session)` in a read session; database errors become StoreError."""
        try:
            with self.reads() as s:
                return fn(s)
        except SQLAlchemyError as e:
            raise StoreError(f"database read failed: {e}", where=self.where) from e

    def close(self) -> None:
        self.engine.dispose()


__all__ = ["Database"]
