"""Content-addressed store of raw custodian documents: `<dir>/<aa>/<sha256>`, write-once.

Every statement an attestation references is kept here under the SHA-256 of its exact
bytes, so an auditor can fetch the file and recompute the hash. A file is written
atomically (temporary file in the same directory, fsync, rename, fsync of the
directory) and never changed afterwards: putting bytes that are already stored only
verifies the stored copy. A stored file whose content no longer matches its name is
reported as a StoreError, never silently replaced.

With `objects` (an `ObjectStore`: the S3 store of `[artifacts]`, or the database with
`[service] state = "database"`) the documents are objects `sha256/<hex>` there instead, so
an instance that takes over the leadership finds them; reads check the hash the same way.

I/O: local files under the store's directory, or the object store handed in.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path

from por.custodians.base import RawDocument
from por.errors import StoreError
from por.store.objects import ObjectStore, content_key, get_verified, put_content

_SHA_RE = re.compile(r"[0-9a-f]{64}")


class RawStore:
    """Write-once, content-addressed directory of raw statement bytes."""

    def __init__(
        self, directory: str | os.PathLike[str] | None, *, objects: ObjectStore | None = None
    ) -> None:
        if (directory is None) == (objects is None):
            raise StoreError("a raw store needs a directory or an object store", where="raw")
        self.directory = Path(directory) if directory is not None else Path()
        self.objects = objects

    def where(self, sha256: str) -> str:
        """Where the document of `sha256` is kept (for messages)."""
        if self.objects is not None:
            return f"{self.objects.where}/{content_key(sha256)}"
        return str(self.path(sha256))

    def path(self, sha256: str) -> Path:
        if not _SHA_RE.fullmatch(sha256):
            raise StoreError(
                f"not a lowercase hex SHA-256: {sha256[:80]!r}", where=str(self.directory)
            )
        return self.directory / sha256[:2] / sha256

    def put(self, raw: bytes) -> str:
        """Store `raw`; return its SHA-256. An existing copy is verified, never rewritten."""
        if self.objects is not None:
            return put_content(self.objects, raw)
        sha = hashlib.sha256(raw).hexdigest()
        target = self.path(sha)
        if target.exists():
            self._verify(target, sha)
            return sha
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(raw)
                f.flush()
                os.fsync(f.fileno())
            # os.link refuses to replace an existing file: if another writer won the
            # race, its copy (same bytes, by construction) stays and is verified below.
            try:
                os.link(tmp, target)
            except FileExistsError:
                self._verify(target, sha)
            dir_fd = os.open(target.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as e:
            raise StoreError(f"cannot store raw document: {e}", where=str(target)) from e
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        return sha

    def put_all(self, documents: Iterable[RawDocument]) -> list[str]:
        """Store every document of a fully parsed report (call only after parsing succeeded)."""
        out = []
        for d in documents:
            sha = self.put(d.data)
            if sha != d.sha256:  # RawDocument checks this too; a store must not trust it
                raise StoreError(
                    f"hash mismatch for {d.name} (expected {d.sha256}, computed {sha})",
                    where=d.name,
                )
            out.append(sha)
        return out

    def get(self, sha256: str) -> bytes:
        """The stored bytes; StoreError if absent or if they no longer hash to `sha256`."""
        if self.objects is not None:
            return get_verified(self.objects, sha256, what=f"raw document {sha256}")
        target = self.path(sha256)
        try:
            data = target.read_bytes()
        except FileNotFoundError as e:
            raise StoreError(f"no raw document {sha256}", where=str(target)) from e
        except OSError as e:
            raise StoreError(f"cannot read raw document: {e}", where=str(target)) from e
        computed = hashlib.sha256(data).hexdigest()
        if computed != sha256:
            raise StoreError(
                f"stored document is corrupt (expected {sha256}, computed {computed})",
                where=str(target),
            )
        return data

    def __contains__(self, sha256: object) -> bool:
        if self.objects is not None:
            return (
                isinstance(sha256, str)
                and _SHA_RE.fullmatch(sha256) is not None
                and self.objects.exists(content_key(sha256))
            )
        return (
            isinstance(sha256, str)
            and _SHA_RE.fullmatch(sha256) is not None
            and self.path(sha256).exists()
        )

    def _verify(self, target: Path, sha: str) -> None:
        computed = hashlib.sha256(target.read_bytes()).hexdigest()
        if computed != sha:
            raise StoreError(
                f"existing file does not match its name (expected {sha}, computed {computed}); "
                "refusing to overwrite",
                where=str(target),
            )


__all__ = ["RawStore"]
