"""Atomic file writes for the store: temp file, fsync, rename, fsync of the directory.

A reader (or a crash) sees either the old file or the complete new one, never a torn
write. Errors are wrapped once here into StoreError naming the path.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from por.errors import StoreError

TEMP_SUFFIX = ".part"


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` atomically (POSIX rename) and durably (fsync)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        _fsync_dir(path.parent)
    except OSError as e:
        raise StoreError(f"cannot write file: {e.strerror or e}", where=str(path)) from e


def _fsync_dir(directory: Path) -> None:
    # The rename is durable only once the directory entry is on disk.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_file(path: Path) -> bytes | None:
    """The file's bytes, or None when it does not exist."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise StoreError(f"cannot read file: {e.strerror or e}", where=str(path)) from e
