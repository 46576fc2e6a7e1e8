"""Tree artifacts in an S3-compatible object store (moto's server on 127.0.0.1).

A tree is stored as content-addressed shards: aligned subtrees, an account index sharded
by account-hash prefix, and a small top file whose SHA-256 the attestation row records.
Any store instance serves any proof from them, through an LRU of shards verified against
that chain of digests; a shard overwritten in the store is never served.
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from por.api import ApiDeps, create_app
from por.core.mst import Leaf
from por.core.sumtree import SumTree
from por.errors import StoreError
from por.store import Store
from por.store.objects import DirectoryObjects, ObjectIntegrityError, content_key
from por.store.shards import ShardCache, load_top, write_sharded
from tests.s3 import S3Server
from tests.store.factory import World, keyset


def _tree(n: int, seed: int = 1) -> tuple[SumTree, list[Leaf]]:
    rnd = random.Random(seed)
    leaves = [
        Leaf(
            account=f"eip155:1:0x{rnd.getrandbits(160):040x}",
            balance=rnd.randrange(0, 10**12),
            salt=rnd.randbytes(32),
        )
        for _ in range(n)
    ]
    return SumTree.build(leaves), leaves


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 9, 31, 64, 65, 200])
@pytest.mark.parametrize("shard_leaves", [2, 8, 64])
def test_sharded_proofs_equal_the_whole_trees(tmp_path: Path, n: int, shard_leaves: int) -> None:
    """Aligned 2^k chunks are subtrees of the RFC 9162 shape: every proof is identical."""
    tree, leaves = _tree(n, seed=n)
    objects = DirectoryObjects(tmp_path)
    sha, _ = write_sharded(tree, objects, shard_leaves=shard_leaves)
    sharded = load_top(objects, sha, cache=ShardCache(), what="t")
    assert sharded.root == tree.root and sharded.size == n
    for leaf in leaves:
        assert sharded.prove(leaf.account) == tree.prove(leaf.account)
    assert sharded.assemble().root == tree.root


def test_objects_are_keyed_by_content_and_a_proof_reads_two_shards(
    s3_server: S3Server,
) -> None:
    tree, leaves = _tree(1000)
    bucket = s3_server.new_bucket()
    objects = s3_server.objects(bucket, prefix="trees")
    sha, top = write_sharded(tree, objects, shard_leaves=64)
    listed = s3_server.client().list_objects_v2(Bucket=bucket)["Contents"]
    assert len(listed) == 16 + 16 + 1  # tree shards, index shards (4 bits), top
    for obj in listed:
        body = s3_server.client().get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
        assert obj["Key"] == "trees/" + content_key(hashlib.sha256(body).hexdigest())
    assert len(top) < 150 * 32  # the top file: ~150 bytes per shard, no leaf data
    # idempotent: writing it again writes nothing new and names the same top
    assert write_sharded(tree, objects, shard_leaves=64)[0] == sha

    cache = ShardCache()
    sharded = load_top(objects, sha, cache=cache, what="t")
    assert not sharded.cached_for(leaves[0].account)  # the API's hot path waits
    sharded.prefetch(leaves[0].account)
    assert sharded.cached_for(leaves[0].account)  # ... until the shards are in memory
    for leaf in leaves[:20]:
        before = cache.fetches
        if sharded.prove(leaf.account) != tree.prove(leaf.account):
            raise AssertionError(leaf.account)
        assert cache.fetches - before <= 2  # one index shard, one tree shard (or cached)
    assert cache.fetches <= 40


def _s3_store(tmp_path: Path, s3: S3Server, bucket: str, name: str, **kw: Any) -> Store:
    return Store.open(
        f"sqlite:///{tmp_path / 'por.db'}",
        data_dir=tmp_path / name,
        attestations_dir=tmp_path / name / "att",
        migrate=True,
        objects=s3.objects(bucket),
        shard_leaves=8,
        **kw,
    )


def test_any_instance_serves_any_proof_from_the_object_store(
    tmp_path: Path, s3_server: S3Server
) -> None:
    bucket = s3_server.new_bucket()
    writer = _s3_store(tmp_path, s3_server, bucket, "a")
    world = World()
    built = world.record(writer)
    row = writer.get(1)
    assert row.tree_file == f"objects:{row.tree_sha256}"
    assert not (tmp_path / "a" / "trees").exists()  # nothing on the writer's disk

    reader = _s3_store(tmp_path, s3_server, bucket, "b")  # another machine: empty data dir
    app = create_app(ApiDeps(store=reader, keys=keyset().to_dict(), proof_rate_limit=None))
    with TestClient(app) as c:
        for account in world.holders:
            r = c.get(f"/v1/proofs/{account}")
            assert r.status_code == 200, r.text
            assert r.json()["proof"] == built.tree.prove(account).to_dict()
        assert c.get("/v1/proofs/eip155:1:0x" + "ab" * 20).status_code == 404
    # the operator tools read the whole tree back
    assert reader.tree(1).root == built.tree.root
    writer.close()
    reader.close()


def test_a_shard_fetch_takes_a_costly_request_slot(tmp_path: Path, s3_server: S3Server) -> None:
    """Fetching shards is a costly request like a tree load: with every slot taken it is
    a 503 at once; a proof whose shards are cached needs no slot."""
    bucket = s3_server.new_bucket()
    writer = _s3_store(tmp_path, s3_server, bucket, "a")
    world = World()
    world.record(writer)
    reader = _s3_store(tmp_path, s3_server, bucket, "b")
    app = create_app(
        ApiDeps(
            store=reader,
            keys=keyset().to_dict(),
            proof_rate_limit=None,
            max_expensive_requests=1,
            warm_up=False,
        )
    )
    first, *_ = sorted(world.holders)
    with TestClient(app) as c:
        assert c.get(f"/v1/proofs/{first}").status_code == 200  # top file + shards cached
        with app.state.por.expensive.slot(RuntimeError):  # a slow load holds the only slot
            assert c.get(f"/v1/proofs/{first}").status_code == 200  # cached: no slot
            reader.cached_tree(1)._cache.clear()  # type: ignore[union-attr]
            r = c.get(f"/v1/proofs/{first}")
            assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert c.get(f"/v1/proofs/{first}").status_code == 200
    writer.close()
    reader.close()


def test_an_overwritten_shard_is_never_served(tmp_path: Path, s3_server: S3Server) -> None:
    """Someone with write access to the bucket replaces a tree shard with another valid
    tree file: the bytes parse, but their SHA-256 is not the one recorded."""
    bucket = s3_server.new_bucket()
    store = _s3_store(tmp_path, s3_server, bucket, "a")
    world = World()
    world.record(store)
    api_store = _s3_store(tmp_path, s3_server, bucket, "b")
    top = load_top(api_store.objects, api_store.get(1).tree_sha256, cache=ShardCache(), what="t")  # type: ignore[arg-type]
    account = next(iter(world.holders))
    shard = top.index_of(account) // 8
    key = "por/" + content_key(top._shards[shard]["sha256"])
    client = s3_server.client()
    original = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    forged, _ = _tree(8, seed=99)
    client.put_object(Bucket=bucket, Key=key, Body=forged.to_bytes())

    app = create_app(ApiDeps(store=api_store, keys=keyset().to_dict(), proof_rate_limit=None))
    with TestClient(app) as c:
        r = c.get(f"/v1/proofs/{account}")
        assert r.status_code == 503, r.text
        assert "corrupt in the object store (SHA-256 expected" in r.json()["detail"]
        assert "fetched again" in r.json()["detail"]
        with pytest.raises(ObjectIntegrityError):
            top.prove(account)
        # repaired in the store: the next request fetches it again (nothing bad was cached)
        client.put_object(Bucket=bucket, Key=key, Body=original)
        r = c.get(f"/v1/proofs/{account}")
        assert r.status_code == 200, r.text
    store.close()
    api_store.close()


def test_a_refused_write_records_nothing(tmp_path: Path, s3_server: S3Server) -> None:
    store = _s3_store(tmp_path, s3_server, "no-such-bucket-por", "a")
    with pytest.raises(StoreError, match=r"storing the tree of attestation 1 failed.*NoSuchBucket"):
        World().record(store)
    assert store.latest() is None
    assert store.log_tree().size == 0
    store.close()


def test_an_instance_without_the_object_store_says_so(tmp_path: Path, s3_server: S3Server) -> None:
    bucket = s3_server.new_bucket()
    store = _s3_store(tmp_path, s3_server, bucket, "a")
    World().record(store)
    local = Store.open(
        f"sqlite:///{tmp_path / 'por.db'}",
        data_dir=tmp_path / "c",
        attestations_dir=tmp_path / "c" / "att",
    )
    with pytest.raises(StoreError, match=r"object store; configure \[artifacts\]"):
        local.tree(1, checked=False)
    local.close()
    store.close()


def test_index_order_holds_for_hashes_ending_in_zero_bytes(tmp_path: Path) -> None:
    """numpy's fixed-width byte strings drop trailing NULs when read back as values: the
    index must still sort and cut exactly as bytes compare (the reader's binary search)."""
    chosen: list[str] = []
    i = 0
    while len(chosen) < 6:  # ids whose SHA-256 ends in 0x00 (one in 256)
        account = f"eip155:1:0x{i:040x}"
        if hashlib.sha256(account.encode()).digest()[-1] == 0:
            chosen.append(account)
        i += 1
    filler = [f"eip155:56:0x{j:040x}" for j in range(40)]
    leaves = [
        Leaf(account=a, balance=k + 1, salt=hashlib.sha256(a.encode()).digest())
        for k, a in enumerate(chosen + filler)
    ]
    tree = SumTree.build(leaves)
    objects = DirectoryObjects(tmp_path)
    sha, _ = write_sharded(tree, objects, shard_leaves=4)
    sharded = load_top(objects, sha, cache=ShardCache(), what="t")
    for leaf in leaves:
        assert sharded.index_of(leaf.account) == tree.index_of(leaf.account)


def test_the_shard_cache_is_bounded_by_bytes(tmp_path: Path) -> None:
    tree, leaves = _tree(300, seed=3)
    objects = DirectoryObjects(tmp_path)
    sha, _ = write_sharded(tree, objects, shard_leaves=16)
    cache = ShardCache(max_bytes=20_000)  # a few shards of 16 leaves
    sharded = load_top(objects, sha, cache=cache, what="t")
    for leaf in leaves:
        assert sharded.prove(leaf.account) == tree.prove(leaf.account)
        assert cache.size_bytes <= 20_000 + 16 * 1024  # at most one shard over the budget
    assert cache.fetches > 2 * 19  # shards were evicted and fetched again


def test_a_replaced_or_malformed_top_file_is_refused(tmp_path: Path) -> None:
    from por.errors import FormatError
    from por.store.objects import put_content

    tree, _ = _tree(20)
    objects = DirectoryObjects(tmp_path)
    sha, top = write_sharded(tree, objects, shard_leaves=4)
    (tmp_path / content_key(sha)).write_bytes(top.replace(b'"size":20', b'"size":21'))
    with pytest.raises(ObjectIntegrityError, match="top file of t is corrupt"):
        load_top(objects, sha, cache=ShardCache(), what="t")
    # bytes that hash right but say something impossible (a bug, or a forged row)
    bad = put_content(objects, top.replace(b'"size":20', b'"size":21'))
    with pytest.raises(FormatError, match="21 leaves need 6 shards of 4"):
        load_top(objects, bad, cache=ShardCache(), what="t")
