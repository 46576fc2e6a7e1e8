"""File access for the store: atomic writes (from por.fileio), reads that wrap errors, and
the permissions of what holds secrets (the data directory 0700, database files 0600)."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from por.errors import StoreError
from por.fileio import TEMP_SUFFIX, write_atomic

__all__ = [
    "DATA_DIR_MODE",
    "SECRET_FILE_MODE",
    "TEMP_SUFFIX",
    "read_file",
    "secure_dir",
    "secure_file",
    "write_atomic",
]

log = logging.getLogger("por.store")

DATA_DIR_MODE = 0o700
SECRET_FILE_MODE = 0o600


def secure_dir(path: Path) -> None:
    """Create `path` as 0700, or make an existing one 0700 (logged when it was looser):
    it holds the database with every round secret, from which every holder's salt follows."""
    try:
        path.mkdir(mode=DATA_DIR_MODE, parents=True, exist_ok=True)
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            os.chmod(path, DATA_DIR_MODE)
            log.warning(
                "data directory %s was mode %04o (readable by others): made 0700", path, mode
            )
    except OSError as e:
        raise StoreError(f"cannot secure the data directory: {e.strerror}", where=str(path)) from e


def secure_file(path: Path, *, create: bool = False) -> None:
    """Make `path` 0600 (logged when it was looser); with `create`, create it empty and
    0600 first if it does not exist (so SQLite, which gives its -wal, -shm and -journal
    the database file's mode, never makes them readable by others)."""
    try:
        if create:
            fd = os.open(path, os.O_CREAT | os.O_WRONLY, SECRET_FILE_MODE)
            os.close(fd)
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    except OSError as e:
        raise StoreError(f"cannot secure a database file: {e.strerror}", where=str(path)) from e
    if mode & 0o077:
        try:
            os.chmod(path, SECRET_FILE_MODE)
        except OSError as e:
            raise StoreError(f"cannot make it 0600: {e.strerror}", where=str(path)) from e
        log.warning("%s was mode %04o (readable by others): made 0600", path, mode)


def read_file(path: Path) -> bytes | None:
    """The file's bytes, or None when it does not exist."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise StoreError(f"cannot read file: {e.strerror or e}", where=str(path)) from e
