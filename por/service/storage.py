"""The store, object store and run-state places a configuration names.

`open_store(cfg)` opens the `Store` with the object store of `[artifacts]` (trees as
shards there when kind = "s3"); `raw_store(cfg, store)` and `state_blobs(cfg, store)` say
where raw statements and between-run state live (`[service] state`): files under
data_dir, or the database / object store that every instance shares.

I/O: only what the objects it builds do.
"""

from __future__ import annotations

import os
from typing import Any

from por.custodians.rawstore import RawStore
from por.service.config import Config
from por.statekv import StateBlobs
from por.store.objects import ObjectStore, S3Objects
from por.store.state import DbObjects
from por.store.store import Store


def object_store(cfg: Config) -> ObjectStore | None:
    """The S3 store of `[artifacts]`, or None for the local default (tree files)."""
    a = cfg.artifacts
    if a.kind == "local":
        return None
    return S3Objects(
        bucket=a.bucket,
        prefix=a.prefix,
        endpoint_url=a.endpoint or None,
        region=a.region,
        access_key_id=os.environ.get(a.access_key_id_env) or None,
        secret_access_key=os.environ.get(a.secret_access_key_env) or None,
        timeout_s=a.timeout_s,
    )


def open_store(cfg: Config, **kw: Any) -> Store:
    """`Store.open` over the configured database, directories and object store."""
    return Store.open(
        cfg.database_url,
        data_dir=cfg.service.data_dir,
        attestations_dir=cfg.service.attestations_dir,
        objects=object_store(cfg),
        shard_leaves=cfg.artifacts.shard_leaves,
        shard_cache_bytes=cfg.artifacts.cache_mb << 20,
        **kw,
    )


def state_blobs(cfg: Config, store: Store) -> StateBlobs | None:
    """Between-run state in the database (`[service] state = "database"`), else None
    (each reader keeps its files under data_dir as before)."""
    return store.state if cfg.service.state == "database" else None


def raw_store(cfg: Config, store: Store) -> RawStore:
    """Raw statements: files under data_dir/raw, or (state = "database") objects in the
    S3 store when there is one, else in the database."""
    if cfg.service.state == "files":
        return RawStore(cfg.service.data_dir / "raw")
    return RawStore(None, objects=store.objects or DbObjects(store.state, "raw"))


__all__ = ["object_store", "open_store", "raw_store", "state_blobs"]
