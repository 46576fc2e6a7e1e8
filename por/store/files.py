"""File access for the store: atomic writes (from por.fileio) and reads that wrap errors."""

from __future__ import annotations

from pathlib import Path

from por.errors import StoreError
from por.fileio import TEMP_SUFFIX, write_atomic

__all__ = ["TEMP_SUFFIX", "read_file", "write_atomic"]


def read_file(path: Path) -> bytes | None:
    """The file's bytes, or None when it does not exist."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise StoreError(f"cannot read file: {e.strerror or e}", where=str(path)) from e
