"""Immutable, content-addressed objects: a local directory or an S3-compatible store.

Every object is named by the SHA-256 of its bytes (`sha256/<hex>` under a prefix) and is
written once: putting bytes that are stored already writes nothing. What reads an object
always names the digest it expects (a row of the database, or a file whose own digest was
checked), and `get_verified` refuses bytes that hash to anything else with
`ObjectIntegrityError` — a store that was overwritten behind our back is never trusted.

Two implementations of `ObjectStore`: `DirectoryObjects` (files under a directory, written
atomically; tests and single-machine use) and `S3Objects` (boto3, any S3 API: AWS, MinIO,
Ceph, moto in tests). Credentials for S3 come from environment variables named in the
configuration (or boto3's own chain), never from the config file itself.

I/O: the directory's files, or HTTPS/HTTP to the S3 endpoint. Nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from pathlib import Path
from typing import Any, Protocol

from por.errors import StoreError
from por.fileio import write_atomic

_SHA_RE = re.compile(r"[0-9a-f]{64}")


class ObjectIntegrityError(StoreError):
    """An object's bytes do not hash to the digest that names it (never served)."""


class ObjectMissingError(StoreError):
    """No object under that name."""


class ObjectStore(Protocol):
    """Write-once objects by key; `where` names the store in errors."""

    where: str

    def put(self, key: str, data: bytes) -> None:
        """Store `data` under `key` durably before returning (StoreError on refusal)."""
        ...

    def get(self, key: str) -> bytes:
        """The bytes under `key` (ObjectMissingError when there are none)."""
        ...

    def exists(self, key: str) -> bool: ...


def content_key(sha256_hex: str) -> str:
    """The key of the object whose bytes hash to `sha256_hex`."""
    if not _SHA_RE.fullmatch(sha256_hex):
        raise StoreError(f"not a lowercase hex SHA-256: {sha256_hex[:80]!r}", where="object key")
    return f"sha256/{sha256_hex}"


def put_content(objects: ObjectStore, data: bytes) -> str:
    """Store `data` under its SHA-256 (once) and return the hex digest."""
    sha = hashlib.sha256(data).hexdigest()
    key = content_key(sha)
    if not objects.exists(key):
        objects.put(key, data)
    return sha


def get_verified(objects: ObjectStore, sha256_hex: str, *, what: str) -> bytes:
    """The object named by `sha256_hex`, its bytes checked against that digest."""
    key = content_key(sha256_hex)
    data = objects.get(key)
    computed = hashlib.sha256(data).hexdigest()
    if computed != sha256_hex:
        raise ObjectIntegrityError(
            f"{what} is corrupt in the object store (SHA-256 expected {sha256_hex}, "
            f"computed {computed}); it is not served and is fetched again on the next request",
            where=f"{objects.where}/{key}",
        )
    return data


class DirectoryObjects:
    """Objects as files `<directory>/<key>`, each written atomically (temp, fsync, rename)."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.where = str(self.directory)

    def _path(self, key: str) -> Path:
        if not key or key.startswith("/") or ".." in key.split("/"):
            raise StoreError(f"bad object key {key!r}", where=self.where)
        return self.directory / key

    def put(self, key: str, data: bytes) -> None:
        write_atomic(self._path(key), data)

    def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except FileNotFoundError as e:
            raise ObjectMissingError(f"no object {key}", where=str(path)) from e
        except OSError as e:
            raise StoreError(f"cannot read object {key}: {e.strerror}", where=str(path)) from e

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()


class S3Objects:
    """Objects in one bucket of an S3-compatible store, under `prefix`.

    Each put sends the SHA-256 of the body (`ChecksumSHA256`), so the server itself
    refuses a body damaged in transit; every failure (refused, unreachable, denied)
    becomes a StoreError naming the bucket and key.
    """

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        timeout_s: float = 30.0,
        retries: int = 3,
    ) -> None:
        try:
            import boto3
            from botocore.config import Config as BotoConfig
        except ImportError as e:  # pragma: no cover - depends on the install
            raise StoreError(
                "the S3 object store needs boto3: pip install 'por[s3]'", where="artifacts"
            ) from e
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        self.bucket = bucket
        self.prefix = prefix
        self.where = f"s3://{bucket}/{prefix}".rstrip("/")
        self._client: Any = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=BotoConfig(
                connect_timeout=timeout_s,
                read_timeout=timeout_s,
                retries={"max_attempts": retries, "mode": "standard"},
                max_pool_connections=32,
            ),
        )

    def _fail(self, key: str, action: str, e: Exception) -> StoreError:
        from botocore.exceptions import ClientError

        if isinstance(e, ClientError):
            err = e.response.get("Error", {})
            detail = f"{err.get('Code', '?')}: {err.get('Message', '')}".rstrip(": ")
        else:
            detail = str(e) or type(e).__name__
        return StoreError(f"object store refused to {action} {key}: {detail}", where=self.where)

    def put(self, key: str, data: bytes) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        checksum = base64.b64encode(hashlib.sha256(data).digest()).decode()
        try:
            self._client.put_object(
                Bucket=self.bucket,
                Key=self.prefix + key,
                Body=data,
                ChecksumSHA256=checksum,
            )
        except (BotoCoreError, ClientError) as e:
            raise self._fail(key, "write", e) from e

    def get(self, key: str) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = self._client.get_object(Bucket=self.bucket, Key=self.prefix + key)
            return bytes(answer["Body"].read())
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise ObjectMissingError(f"no object {key}", where=self.where) from e
            raise self._fail(key, "read", e) from e
        except BotoCoreError as e:
            raise self._fail(key, "read", e) from e

    def exists(self, key: str) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._client.head_object(Bucket=self.bucket, Key=self.prefix + key)
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return False
            raise self._fail(key, "look up", e) from e
        except BotoCoreError as e:
            raise self._fail(key, "look up", e) from e
        return True


__all__ = [
    "DirectoryObjects",
    "ObjectIntegrityError",
    "ObjectMissingError",
    "ObjectStore",
    "S3Objects",
    "content_key",
    "get_verified",
    "put_content",
]
