"""Schema migrations with Alembic: `por db upgrade`, and the check every service start makes.

The revisions live in `por/store/migrations/versions/` (a linear history; 0001 is the
baseline: the schema as it was before migrations). `upgrade(db)` brings a database to
the newest revision in one transaction, under a lock (an advisory lock on PostgreSQL,
`BEGIN IMMEDIATE` on SQLite) so two instances upgrading at once do it once. A database
that an older por created without Alembic (its tables, no `alembic_version`) is stamped
at the baseline first. `check(db)` raises a StoreError naming the command when the
database is not at the newest revision: the service never runs on a schema it was not
written for, and never changes a schema by itself.
"""

from __future__ import annotations

import functools
from pathlib import Path

from sqlalchemy import Connection, inspect, text
from sqlalchemy.exc import SQLAlchemyError

from por.errors import StoreError
from por.store.db import Database

MIGRATIONS = Path(__file__).parent / "migrations"
BASELINE = "0001_baseline"
UPGRADE_COMMAND = "por db upgrade --config <your por.toml>"
_PG_LOCK_KEY = 0x706F725F6D6967  # "por_mig": one advisory lock for every upgrader


def _alembic_config(connection: Connection | None = None) -> object:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


@functools.cache
def head_revision() -> str:
    from alembic.script import ScriptDirectory

    heads = ScriptDirectory.from_config(_alembic_config()).get_heads()  # type: ignore[arg-type]
    if len(heads) != 1:  # pragma: no cover - a packaging error
        raise StoreError(f"the migrations have {len(heads)} heads, need one", where=str(MIGRATIONS))
    return str(heads[0])


def _current(conn: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    rev = MigrationContext.configure(conn).get_current_revision()
    return None if rev is None else str(rev)


def current_revision(db: Database) -> str | None:
    try:
        with db.engine.connect() as conn:
            return _current(conn)
    except SQLAlchemyError as e:
        raise StoreError(f"cannot read the schema revision: {e}", where=db.where) from e


def check(db: Database) -> None:
    """Raise unless the database is at the newest revision (naming `por db upgrade`)."""
    current, head = current_revision(db), head_revision()
    if current == head:
        return
    if current is None:
        state = "has no por schema (or one from before migrations)"
    else:
        state = f"is at schema revision {current}, this por needs {head}"
    raise StoreError(f"the database {state}; run `{UPGRADE_COMMAND}` first", where=db.where)


def upgrade(db: Database) -> tuple[str | None, str]:
    """Bring the database to the newest revision; returns (revision before, after)."""
    from alembic import command

    try:
        with db.writes.begin() as session:  # BEGIN IMMEDIATE on SQLite
            conn = session.connection()
            if db.is_postgres:
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
            before = _current(conn)
            cfg = _alembic_config(conn)
            if before is None and inspect(conn).has_table("por_attestations"):
                command.stamp(cfg, BASELINE)  # type: ignore[arg-type]  # created before migrations
            command.upgrade(cfg, "head")  # type: ignore[arg-type]
            after = _current(conn)
    except SQLAlchemyError as e:
        raise StoreError(f"schema upgrade failed: {e}", where=db.where) from e
    return before, after or head_revision()


def upgrade_url(url: str) -> tuple[str | None, str]:
    db = Database.connect(url)
    try:
        return upgrade(db)
    finally:
        db.close()
