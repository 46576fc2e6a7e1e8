"""Small durable state kept between runs, by (namespace, key): the protocol and a directory.

Readers and publishers keep a little state between runs — an EVM index checkpoint, a
Solana flow index, a memo intent. `StateBlobs` is what they need of a place to keep it:
`por.store.state.DbStateBlobs` keeps it in the store's database (so a leader can fail over
to a machine with an empty disk), `DirectoryBlobs` in files under a directory.

I/O: `DirectoryBlobs` reads and writes files under its directory only.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Protocol

from por.errors import StoreError
from por.fileio import write_atomic

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,254}")


class StateBlobs(Protocol):
    """Durable bytes by (namespace, key); `put` is durable before it returns."""

    where: str

    def get(self, namespace: str, key: str) -> bytes | None: ...

    def put(self, namespace: str, key: str, value: bytes) -> None: ...

    def delete(self, namespace: str, key: str) -> None: ...


def check_name(value: str, *, what: str) -> str:
    """A namespace or key: 1-255 of [A-Za-z0-9._:-], not starting with a dot."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise StoreError(f"bad state {what} {value!r}", where="state")
    return value


class DirectoryBlobs:
    """`<directory>/<namespace>/<key>`, each replaced atomically (fsync + rename)."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.where = str(self.directory)

    def _path(self, namespace: str, key: str) -> Path:
        return (
            self.directory / check_name(namespace, what="namespace") / check_name(key, what="key")
        )

    def get(self, namespace: str, key: str) -> bytes | None:
        path = self._path(namespace, key)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise StoreError(f"cannot read state: {e.strerror}", where=str(path)) from e

    def put(self, namespace: str, key: str, value: bytes) -> None:
        write_atomic(self._path(namespace, key), value)

    def delete(self, namespace: str, key: str) -> None:
        path = self._path(namespace, key)
        try:
            path.unlink(missing_ok=True)
        except OSError as e:
            raise StoreError(f"cannot delete state: {e.strerror}", where=str(path)) from e


__all__ = ["DirectoryBlobs", "StateBlobs", "check_name"]
