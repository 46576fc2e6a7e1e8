"""Leader election between service instances that share one store.

Only the leader runs attestations; every instance serves the API (DESIGN §8).

- PostgreSQL: a session-level `pg_try_advisory_lock` held on a dedicated connection.
  The lock lives exactly as long as that database session, so a leader that dies
  (process killed, connection dropped) loses it without anyone cleaning up.
- SQLite: an exclusive `flock` on a file next to the database. The kernel releases it
  when the holding file descriptor closes, including when the process dies. `flock`
  (not POSIX `lockf`) locks per open file, so two instances in one process exclude
  each other too.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from por.errors import StoreError


def _lock_key(namespace: str, name: str) -> int:
    """A signed 64-bit advisory-lock key from the schema and the lock name."""
    digest = hashlib.sha256(f"por-leader\x00{namespace}\x00{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class Leadership:
    """One instance's claim to leadership `name`. Not acquired until `try_acquire()`.

    Use as a context manager to release on exit::

        with store.leadership("scheduler") as lead:
            if lead.try_acquire():
                run_one_attestation()
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._mutex = threading.Lock()

    def try_acquire(self) -> bool:  # pragma: no cover - overridden
        raise NotImplementedError

    def is_held(self) -> bool:  # pragma: no cover - overridden
        raise NotImplementedError

    def release(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def __enter__(self) -> Leadership:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


class PostgresLeadership(Leadership):
    """`pg_try_advisory_lock` on a connection of its own (never returned to a pool)."""

    def __init__(self, name: str, *, url: Any, connect_args: dict[str, Any]) -> None:
        super().__init__(name)
        # NullPool: closing the connection really ends the session, which frees the lock.
        self._engine: Engine = create_engine(url, poolclass=NullPool, connect_args=connect_args)
        self._conn: Connection | None = None
        self._key: int | None = None

    def try_acquire(self) -> bool:
        with self._mutex:
            if self._conn is not None and self._alive():
                return True
            self._drop()
            try:
                conn = self._engine.connect()
                # Autocommit: a session-level lock must not sit inside a transaction
                # that someone might roll back.
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                schema = conn.execute(text("SELECT current_schema()")).scalar_one()
                key = _lock_key(str(schema), self.name)
                got = bool(
                    conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar_one()
                )
            except SQLAlchemyError as e:
                raise StoreError(f"leader lock {self.name!r}: {e}", where="postgresql") from e
            if not got:
                conn.close()
                return False
            self._conn, self._key = conn, key
            return True

    def _alive(self) -> bool:
        conn = self._conn
        if conn is None:
            return False
        try:
            conn.execute(text("SELECT 1"))
        except SQLAlchemyError:
            return False
        return True

    def is_held(self) -> bool:
        """True while our session is alive (a dropped session has lost the lock)."""
        with self._mutex:
            if self._alive():
                return True
            self._drop()
            return False

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(SQLAlchemyError):
                self._conn.invalidate()
                self._conn.close()
        self._conn, self._key = None, None

    def release(self) -> None:
        with self._mutex:
            if self._conn is not None and self._key is not None:
                with contextlib.suppress(SQLAlchemyError):
                    self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self._key})
            if self._conn is not None:
                with contextlib.suppress(SQLAlchemyError):
                    self._conn.close()
            self._conn, self._key = None, None

    def backend_pid(self) -> int | None:
        """The PostgreSQL backend process holding the lock (for tests and diagnostics)."""
        with self._mutex:
            if self._conn is None:
                return None
            return int(self._conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


class FileLeadership(Leadership):
    """An exclusive, non-blocking `flock` on `<lock_path>`."""

    def __init__(self, name: str, *, lock_path: Path) -> None:
        super().__init__(name)
        self.lock_path = lock_path
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        with self._mutex:
            if self._fd is not None:
                return True
            try:
                self.lock_path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as e:
                raise StoreError(
                    f"cannot open lock file: {e.strerror}", where=str(self.lock_path)
                ) from e
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            except OSError as e:
                os.close(fd)
                raise StoreError(f"cannot lock: {e.strerror}", where=str(self.lock_path)) from e
            self._fd = fd
            return True

    def is_held(self) -> bool:
        with self._mutex:
            return self._fd is not None

    def release(self) -> None:
        with self._mutex:
            if self._fd is not None:
                with contextlib.suppress(OSError):
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
                os.close(self._fd)
                self._fd = None
