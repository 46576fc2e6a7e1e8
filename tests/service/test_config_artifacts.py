"""`[artifacts]` and `[service] state`: where trees, raw statements and run state live."""

from __future__ import annotations

from pathlib import Path

import pytest

from por.errors import ConfigError
from por.service.check import describe
from por.service.config import load_config
from por.service.storage import open_store, raw_store, state_blobs
from por.store.objects import S3Objects
from tests.s3 import KEY_ID, SECRET, S3Server
from tests.service.test_config import MINIMAL, SOURCES, write


@pytest.mark.parametrize(
    ("extra", "where", "what"),
    [
        ("[artifacts]\nkind = 's3'\n", "artifacts", "needs a bucket"),
        ("[artifacts]\nkind = 'gcs'\n", "artifacts.kind", "'local' or 's3'"),
        ("[artifacts]\nshard_leaves = 1000\n", "artifacts.shard_leaves", "power of two"),
        ("[service]\nstate = 'redis'\n", "service.state", "'files' or 'database'"),
    ],
)
def test_bad_settings_name_the_key(tmp_path: Path, extra: str, where: str, what: str) -> None:
    p = write(tmp_path, MINIMAL + extra)
    with pytest.raises(ConfigError) as ei:
        load_config(p)
    assert where in str(ei.value) and what in str(ei.value), str(ei.value)


def test_defaults_keep_everything_local(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, MINIMAL + SOURCES))
    assert cfg.artifacts.kind == "local" and cfg.service.state == "files"
    store = open_store(cfg, migrate=True)
    assert store.objects is None and state_blobs(cfg, store) is None
    assert raw_store(cfg, store).directory == cfg.service.data_dir / "raw"
    store.close()


def test_s3_and_database_state(
    tmp_path: Path, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = s3_server.new_bucket()
    monkeypatch.setenv("POR_TEST_S3_KEY", KEY_ID)
    monkeypatch.setenv("POR_TEST_S3_SECRET", SECRET)
    cfg = load_config(
        write(
            tmp_path,
            MINIMAL
            + SOURCES
            + f"""
[service]
state = "database"

[artifacts]
kind = "s3"
endpoint = "{s3_server.endpoint}"
bucket = "{bucket}"
prefix = "cnhc/prod"
access_key_id_env = "POR_TEST_S3_KEY"
secret_access_key_env = "POR_TEST_S3_SECRET"
shard_leaves = 1024
""",
        )
    )
    lines, _ = describe(cfg)
    assert f"tree artifacts: s3://{bucket}/cnhc/prod at {s3_server.endpoint}" in "\n".join(lines)
    assert "run state: database rows" in "\n".join(lines)
    store = open_store(cfg, migrate=True)
    assert isinstance(store.objects, S3Objects) and store.shard_leaves == 1024
    assert state_blobs(cfg, store) is store.state
    raw = raw_store(cfg, store)
    sha = raw.put(b"statement")
    assert raw.where(sha) == f"s3://{bucket}/cnhc/prod/sha256/{sha}"
    store.close()


@pytest.mark.parametrize("state", ["files", "database"])
def test_readers_keep_their_state_where_configured(tmp_path: Path, state: str) -> None:
    from por.chains.evm import BlobCheckpointStore, FileCheckpointStore
    from por.service.wiring import build_chain

    cfg = load_config(write(tmp_path, MINIMAL + SOURCES + f'[service]\nstate = "{state}"\n'))
    store = open_store(cfg, migrate=True)
    try:
        reader, _ = build_chain(cfg.chains[0], cfg=cfg, where="t", store=store, publish=False)
        kept = reader.store  # type: ignore[attr-defined]
        want = BlobCheckpointStore if state == "database" else FileCheckpointStore
        assert isinstance(kept, want)
        if hasattr(reader, "close"):
            reader.close()
    finally:
        store.close()
