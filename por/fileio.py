"""Atomic, durable file writes — the one implementation every part of por uses.

`write_atomic` writes a temp file in the target's directory, fsyncs it, renames it over
the target (POSIX rename is atomic) and fsyncs the directory, so a reader or a crash
sees either the old file or the complete new one, never a torn write. Errors become a
StoreError naming the path.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from por.errors import StoreError

TEMP_SUFFIX = ".part"


def write_atomic(
    path: Path, data: bytes | Iterable[bytes | memoryview], *, mode: int | None = None
) -> None:
    """Replace `path` with `data` atomically and durably; `mode` sets its permissions
    before it becomes visible (mkstemp creates 0600). `data` may come in pieces (a
    large tree file is written without joining it into one more copy)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
        try:
            with os.fdopen(fd, "wb") as f:
                if isinstance(data, bytes):
                    f.write(data)
                else:
                    for piece in data:
                        f.write(piece)
                f.flush()
                os.fsync(f.fileno())
            if mode is not None:
                os.chmod(tmp, mode)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        fsync_dir(path.parent)
    except OSError as e:
        raise StoreError(f"cannot write file: {e.strerror or e}", where=str(path)) from e


def fsync_dir(directory: Path) -> None:
    """Make a rename or link in `directory` durable: its entry is on disk only after this."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
