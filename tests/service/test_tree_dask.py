"""The liabilities tree on a real Dask cluster (por.service.tree_dask) is the local tree.

One LocalCluster of two worker processes on 127.0.0.1 serves the module; the tests that
kill things start their own (a worker killed mid-build; a scheduler and worker started as
separate processes, then killed, for a cluster that disappears). Small partitions and
buckets, so a few hundred leaves cross every partition and bucket edge.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("distributed")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from distributed import LocalCluster  # noqa: E402

from por.core.mst import DuplicateAccountError, verify_inclusion  # noqa: E402
from por.core.mst_build import (  # noqa: E402
    AccountColumn,
    Pieces,
    balance_words,
    derive_salts,
    encode_accounts,
)
from por.core.sumtree import SumTree  # noqa: E402
from por.errors import AmountError, ClusterError  # noqa: E402
from por.service.config import load_config  # noqa: E402
from por.service.run import build_tree_parts  # noqa: E402
from por.service.tree_dask import DaskSettings, DaskTreeEngine, ParquetShard  # noqa: E402
from por.service.wiring import build_service  # noqa: E402
from tests.service.conftest import SAMPLE_DAY, Clock, World  # noqa: E402

pytestmark = pytest.mark.xdist_group("dask")  # one cluster per module, on one xdist worker

SECRET = bytes(range(32))


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    ) as c:
        yield c


@pytest.fixture
def engine(cluster: LocalCluster) -> Iterator[DaskTreeEngine]:
    e = DaskTreeEngine(
        DaskSettings(scheduler=cluster.scheduler_address, partition_rows=61, bucket_rows=40)
    )
    yield e
    e.close()


def chains(sizes: list[int], rng: random.Random, *, big: bool = False) -> list[Any]:
    parts = []
    for c, n in enumerate(sizes):
        ids = [f"eip155:{c + 1}:0x{rng.getrandbits(160):040x}" for _ in range(n)]
        top = 2**90 if big else 10**12
        parts.append((encode_accounts(ids), balance_words([rng.randrange(top) for _ in ids], n)))
    return parts


def test_roots_levels_and_proofs_equal_the_local_build(engine: DaskTreeEngine) -> None:
    rng = random.Random(19)
    sizes = [[0], [1], [2], [3], [4], [39], [40, 1], [41], [60, 1], [61], [62], [64, 64, 1]]
    sizes += [[255], [300, 211]]
    sizes += [[rng.randrange(1, 300) for _ in range(rng.randrange(1, 4))] for _ in range(3)]
    for i, chain_sizes in enumerate(sizes):
        parts = chains(chain_sizes, rng, big=i % 2 == 1)
        local = build_tree_parts(list(parts), SECRET)
        tree = engine.build_parts(list(parts), SECRET)
        assert tree.root == local.root, chain_sizes
        assert tree.size == local.size
        for mine, theirs in zip(tree._levels, local._levels, strict=True):
            assert mine.tobytes() == theirs.tobytes()
        assert tree.to_bytes() == local.to_bytes()  # the tree file, byte for byte
        if tree.size > 1:
            a1, b1, s1 = tree.leaf_columns(1, tree.size)
            a2, b2, s2 = local.leaf_columns(1, local.size)
            assert (list(a1), list(b1.lo), list(b1.hi), s1) == (
                list(a2),
                list(b2.lo),
                list(b2.hi),
                s2,
            )
        tree.check_consistency()
        # several chains' columns are kept as they came, never joined into one
        assert isinstance(tree._blob, Pieces) == (sum(1 for m in chain_sizes if m) > 1)
        for j in rng.sample(range(local.size), min(local.size, 12)):
            account = local.leaf(j).account
            proof = tree.prove(account)
            assert proof == local.prove(account)
            verify_inclusion(proof, root=local.root)
        # the root-only paths (what a tree too big for one machine uses) agree
        assert engine.root_of_parts(list(parts), SECRET) == (local.root, local.size)
        accounts = AccountColumn.concat([a for a, _ in parts]) if parts else None
        if accounts is not None and len(accounts) and i % 3 == 0:
            from por.core.mst_build import BalanceWords

            balances = BalanceWords.concat([b for _, b in parts])
            root, n = engine.root_of_columns(accounts, balances, SECRET)
            assert (root, n) == (local.root, local.size)
    stats = engine.last_stats
    assert stats is not None and stats.partitions > 1 and stats.buckets > 1


def test_duplicate_account_in_two_partitions_is_refused(engine: DaskTreeEngine) -> None:
    """The same account twice, 60 rows apart (other partitions, other balances, so other
    buckets): both paths refuse it as the local build does."""
    ids = [f"ledger:bank:{i}" for i in range(100)]
    ids[77] = ids[12]
    accounts = encode_accounts(ids)
    balances = balance_words(list(range(100)), 100)
    with pytest.raises(DuplicateAccountError, match="ledger:bank:12"):
        engine.build_parts([(accounts, balances)], SECRET)
    with pytest.raises(DuplicateAccountError, match=r"leaves 12 and 77"):
        engine.root_of_columns(accounts, balances, SECRET)
    # across two chains' columns (kept apart): the rows of the whole, as the local build
    first, second = encode_accounts(ids[:50]), encode_accounts(ids[50:])
    parts = [(first, balance_words(list(range(50)), 50))]
    parts.append((second, balance_words(list(range(50)), 50)))
    with pytest.raises(DuplicateAccountError, match=r"leaves 12 and 77") as want:
        build_tree_parts(list(parts), SECRET)
    with pytest.raises(DuplicateAccountError, match=r"leaves 12 and 77") as got:
        engine.build_parts(parts, SECRET)
    assert str(got.value) == str(want.value)
    with pytest.raises(DuplicateAccountError, match=r"ledger:bank:12.*leaves 12 and 77"):
        engine.root_of_parts(parts, SECRET)


def test_total_reaching_2_127_is_refused(engine: DaskTreeEngine) -> None:
    accounts = encode_accounts([f"ledger:bank:{i}" for i in range(80)])
    balances = balance_words([2**121] * 80, 80)  # each partition is fine, the whole is not
    with pytest.raises(AmountError, match="not below 2\\^127"):
        engine.root_of_columns(accounts, balances, SECRET)


def test_sharded_parquet_exports_give_the_local_root(
    engine: DaskTreeEngine, tmp_path: Path
) -> None:
    rng = random.Random(4)
    parts = chains([90], rng, big=True) + chains([1], rng) + chains([140], rng, big=True)
    shards = []
    for k, (accounts, balances) in enumerate(parts):
        path = tmp_path / f"holders-{k}.parquet"
        values = [balances[i] for i in range(len(balances))]
        # an integer column where the balances fit, decimal strings where they may not
        column = pa.array([str(v) for v in values]) if k != 1 else pa.array(values, pa.uint64())
        pq.write_table(pa.table({"account": list(accounts), "balance": column}), path)
        shards.append(ParquetShard(path=str(path)))
    local = build_tree_parts(list(parts), SECRET)
    assert engine.root_of_parquet(shards, SECRET) == (local.root, local.size)


def test_bad_parquet_row_is_named(engine: DaskTreeEngine, tmp_path: Path) -> None:
    path = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"account": ["ledger:a:1", "no colons"], "balance": [1, 2]}), path)
    with pytest.raises(Exception, match=r"bad.parquet:account\[1\]"):
        engine.root_of_parquet([ParquetShard(path=str(path))], SECRET)


@pytest.mark.parametrize("source", ["columns", "parquet"])
def test_worker_killed_mid_build_tasks_are_recomputed(source: str, tmp_path: Path) -> None:
    """Between hashing and the buckets, the worker holding the most partition pieces is
    killed (SIGKILL). Parquet partitions are recomputed by the scheduler from their task
    specs on the other worker; columns sent from here (scattered, so no task can remake
    them) are sent again by the engine. Either way the root is the local one."""
    rng = random.Random(5)
    parts = chains([700], rng)
    local = build_tree_parts(list(parts), SECRET)
    killed: list[int] = []
    shards = []
    if source == "parquet":
        accounts, balances = parts[0]
        for k, (a, b) in enumerate([(0, 300), (300, 650), (650, 700)]):
            path = tmp_path / f"shard-{k}.parquet"
            ids = list(accounts.take(a, b))
            values = [balances[i] for i in range(a, b)]
            pq.write_table(
                pa.table({"account": ids, "balance": pa.array(values, pa.uint64())}), path
            )
            shards.append(ParquetShard(path=str(path)))
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as c:
        e = DaskTreeEngine(
            DaskSettings(scheduler=c.scheduler_address, partition_rows=50, bucket_rows=64)
        )

        def kill_one(stage: str, client: Any) -> None:
            assert stage == "hashed"
            if killed:  # once: the build that follows must finish
                return
            held = client.run_on_scheduler(
                lambda dask_scheduler: {
                    ws.address: sum(1 for ts in ws.has_what if str(ts.key).startswith("por-piece"))
                    for ws in dask_scheduler.workers.values()
                }
            )
            victim = max(held, key=held.get)
            assert held[victim] > 0  # it holds pieces the buckets still need
            pid = client.run(os.getpid, workers=[victim])[victim]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

        e.on_stage = kill_one
        try:
            if source == "parquet":
                root, size = e.root_of_parquet(shards, SECRET)
                assert (root, size) == (local.root, local.size)
                assert e.last_stats is not None and e.last_stats.attempts == 1  # Dask redid it
            else:
                tree = e.build_parts(list(parts), SECRET)
                assert tree.root == local.root
                assert e.last_stats is not None and e.last_stats.attempts == 2  # sent again
                account = local.leaf(321).account
                assert tree.prove(account) == local.prove(account)
        finally:
            e.close()
    assert killed


def _start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", *args],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )


@pytest.fixture
def remote_cluster(tmp_path: Path) -> Iterator[tuple[str, list[subprocess.Popen[bytes]]]]:
    """A scheduler and a worker in processes of their own (`dask scheduler/worker`)."""
    sched_file = tmp_path / "scheduler.json"
    scheduler = _start(
        [
            "distributed.cli.dask_scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--no-dashboard",
            "--scheduler-file",
            str(sched_file),
        ],
        tmp_path / "scheduler.log",
    )
    procs = [scheduler]
    try:
        deadline = time.monotonic() + 60
        while not sched_file.exists():
            if time.monotonic() > deadline or scheduler.poll() is not None:
                raise RuntimeError((tmp_path / "scheduler.log").read_text())
            time.sleep(0.1)
        import json

        address = json.loads(sched_file.read_text())["address"]
        procs.append(
            _start(
                [
                    "distributed.cli.dask_worker",
                    address,
                    "--nthreads",
                    "1",
                    "--no-nanny",
                    "--no-dashboard",
                    "--host",
                    "127.0.0.1",
                ],
                tmp_path / "worker.log",
            )
        )
        yield address, procs
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()


def test_cluster_that_disappears_fails_the_run_and_records_nothing(
    world: World, remote_cluster: tuple[str, list[subprocess.Popen[bytes]]]
) -> None:
    address, procs = remote_cluster
    world.config.write_text(
        world.config.read_text().replace("[service]\n", '[service]\ntree_engine = "dask"\n', 1)
        + f'\n[dask]\nscheduler = "{address}"\npartition_rows = 16\nbucket_rows = 8\n'
        "connect_timeout_s = 3\n"
    )
    svc = build_service(load_config(world.config), clock=Clock())
    try:
        engine = svc.deps.tree_builder.__self__  # type: ignore[union-attr]
        assert isinstance(engine, DaskTreeEngine)

        def vanish(stage: str, client: Any) -> None:
            for p in procs:  # the whole cluster, scheduler first
                p.kill()
                p.wait()

        engine.on_stage = vanish
        with pytest.raises(ClusterError, match="no attestation is recorded") as ei:
            svc.attest()
        assert ei.value.where == address
        assert svc.store.latest() is None
        assert not list((world.root / "attestations").glob("*.dsse.json"))
        assert not [p for p in (world.root / "data" / "trees").rglob("*") if p.is_file()]
    finally:
        svc.close()


def test_unreachable_scheduler_is_a_clear_error() -> None:
    e = DaskTreeEngine(DaskSettings(scheduler="tcp://127.0.0.1:9", connect_timeout_s=1))
    accounts = encode_accounts(["ledger:a:1"])
    with pytest.raises(ClusterError, match="cannot reach the Dask cluster") as ei:
        e.root_of_columns(accounts, balance_words([1], 1), SECRET)
    assert ei.value.where == "tcp://127.0.0.1:9"


def _fake_block_clock(svc: Any) -> None:
    """The fake chains date their blocks by the wall clock; both runs need the same."""
    for reader in svc.deps.chains:
        reader.clock = lambda: SAMPLE_DAY


def _fixed_random(n: int) -> bytes:
    return bytes(range(n))


def test_the_run_signs_the_same_attestation_on_either_engine(
    world: World, cluster: LocalCluster
) -> None:
    """Two services on one world, same clock and randomness: local engine and Dask. The
    signed envelopes are byte-identical and the stored trees serve the same proofs."""
    local_svc = build_service(load_config(world.config), clock=Clock(), random_bytes=_fixed_random)
    try:
        _fake_block_clock(local_svc)
        local_svc.attest()
        local_env = local_svc.store.get(1).envelope_json
        account = next(iter(world.holders["eip155:1"]))
        local_proof = local_svc.store.tree(1).prove(account)
    finally:
        local_svc.close()
    # the same world again, on a second data dir, with the Dask engine
    text = world.config.read_text().replace("[service]\n", '[service]\ntree_engine = "dask"\n', 1)
    text = text.replace('data_dir = "data"', 'data_dir = "data2"').replace(
        'attestations_dir = "attestations"', 'attestations_dir = "attestations2"'
    )
    text += f'\n[dask]\nscheduler = "{cluster.scheduler_address}"\npartition_rows = 16\nbucket_rows = 8\n'
    (world.root / "dask.toml").write_text(text)
    from por.store.migrate import upgrade_url

    (world.root / "data2").mkdir()
    upgrade_url(f"sqlite:///{world.root / 'data2' / 'por.db'}")
    dask_svc = build_service(
        load_config(world.root / "dask.toml"), clock=Clock(), random_bytes=_fixed_random
    )
    try:
        assert dask_svc.deps.tree_builder is not None
        _fake_block_clock(dask_svc)
        dask_svc.attest()
        assert dask_svc.store.get(1).envelope_json == local_env
        assert dask_svc.store.tree(1).prove(account) == local_proof
    finally:
        dask_svc.close()


def test_salts_never_leave_with_the_secret(
    engine: DaskTreeEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the cluster receives (task specs and scattered rows): the rows and their
    salts, never the round secret."""
    sent: list[bytes] = []
    accounts = encode_accounts([f"ledger:a:{i}" for i in range(50)])
    balances = balance_words(list(range(50)), 50)
    client = engine.client()
    original_submit = client.submit

    def submit(fn: Any, *args: Any, **kw: Any) -> Any:
        import pickle

        sent.append(pickle.dumps(args))
        return original_submit(fn, *args, **kw)

    original_scatter = client.scatter

    def scatter(data: Any, **kw: Any) -> Any:
        import pickle

        sent.append(pickle.dumps(data))
        return original_scatter(data, **kw)

    monkeypatch.setattr(client, "submit", submit)
    monkeypatch.setattr(client, "scatter", scatter)
    root, _ = engine.root_of_columns(accounts, balances, SECRET)
    assert root == SumTree.build_columns(accounts, balances, derive_salts(SECRET, accounts)).root
    assert sent and not any(SECRET in blob for blob in sent)
    assert any(derive_salts(SECRET, accounts.take(0, 50)) in blob for blob in sent)


def test_local_cluster_over_tls_builds_the_same_tree() -> None:
    """tls_local: scheduler, workers and this client speak TLS with a throw-away CA."""
    pytest.importorskip("cryptography")
    rng = random.Random(8)
    parts = chains([120], rng)
    e = DaskTreeEngine(DaskSettings(n_workers=1, tls_local=True, partition_rows=50, bucket_rows=32))
    try:
        tree = e.build_parts(list(parts), SECRET)
        assert e.client().scheduler.address.startswith("tls://")
    finally:
        e.close()
    assert tree.root == build_tree_parts(list(parts), SECRET).root


def _worker_memory_settings() -> tuple[bool, int]:
    """In a worker: numpy's huge-page setting and glibc's mmap threshold as set now."""
    import ctypes

    from numpy._core import multiarray

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in "abcdefghij"]

    # glibc reports no thresholds; a 1 MiB malloc comes from the heap (not mmap) only
    # while the mmap threshold is above it
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = MallInfo2
    before = libc.mallinfo2().e  # hblkhd: bytes in mmapped chunks
    libc.malloc.restype = ctypes.c_void_p
    p = libc.malloc(1 << 20)
    mapped = libc.mallinfo2().e - before
    libc.free(ctypes.c_void_p(p))
    return bool(multiarray._get_madvise_hugepage()), int(mapped)


def test_local_cluster_memory_settings_for_the_build_and_the_kept_heap() -> None:
    """On its own local cluster the engine turns numpy's huge pages off for a build that
    fits (nothing to spill) and back on after it; glibc's heap reuse, on for that build,
    stays on for the next one (its memory is touched already) until a build that is not
    to keep it gives the memory back before it starts."""
    pytest.importorskip("numpy._core.multiarray")
    rng = random.Random(9)
    parts = chains([300, 200], rng)
    e = DaskTreeEngine(DaskSettings(n_workers=1, partition_rows=64, bucket_rows=64))
    seen: list[Any] = []
    e.on_stage = lambda stage, client: seen.extend(client.run(_worker_memory_settings).values())
    try:
        tree = e.build_parts(list(parts), SECRET)
        after = list(e.client().run(_worker_memory_settings).values())
        assert e.last_stats is not None and e.last_stats.heap_reuse
        e.settings = replace(e.settings, heap_reuse=False)  # as a build that would spill
        again = e.build_parts(list(parts), SECRET)
        assert e.last_stats is not None and not e.last_stats.heap_reuse
        given_back = list(e.client().run(_worker_memory_settings).values())
    finally:
        e.close()
    assert tree.root == again.root == build_tree_parts(list(parts), SECRET).root
    # during the first build: small pages, a 1 MiB block from the heap; during the second
    # the heap is Dask's again (a 1 MiB block is a mapping of its own)
    assert seen[0] == (False, 0) and seen[1][1] >= 1 << 20
    assert after[0] == (True, 0)  # after the first: huge pages as before, the heap kept
    assert given_back[0][0] is True and given_back[0][1] >= 1 << 20


def test_heap_reuse_only_where_nothing_is_expected_to_spill() -> None:
    from por.service.tree_dask import _reuse_heap

    gib = 1 << 30
    assert _reuse_heap(10**7, [12 * gib, 12 * gib])  # the bench at 10^7: default limits
    assert not _reuse_heap(10**8, [5 * gib, 5 * gib])  # the spill run at 10^8
    assert not _reuse_heap(10**7, [gib, gib])
    assert _reuse_heap(10**8, [0, 0])  # no limit: Dask never spills
    assert not _reuse_heap(10, [])  # no workers known: no reuse


def test_partitions_are_cut_by_their_ids_bytes_too(
    engine: DaskTreeEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A partition holds partition_rows rows, or fewer where their ids would take more
    than PARTITION_ID_BYTES (what a worker receives stays below glibc's mmap threshold):
    the partitions cover every row once, in order, and the tree is the same."""
    import numpy as np

    from por.service import tree_dask

    rng = random.Random(41)
    parts = chains([150, 90], rng)  # ids of 52 bytes with their newline
    monkeypatch.setattr(tree_dask, "PARTITION_ID_BYTES", 52 * 20 + 30)  # 20 ids and a bit
    specs, n = tree_dask._parts_specs(parts, bytes(32 * 240), engine.settings)
    assert n == 240
    firsts = [first for _, _, first in specs]
    sizes = [len(source[0]) for source, _, _ in specs]
    assert sizes == [20] * 7 + [10] + [20] * 4 + [10]  # 150 = 7·20 + 10; 90 = 4·20 + 10
    assert firsts == [int(x) for x in np.cumsum([0, *sizes[:-1]])]
    assert all(len(salts) == 32 * size for (_, salts, _), size in zip(specs, sizes, strict=True))
    one = tree_dask._partition_end(parts[0][0].offsets, 0, 61)
    assert one == 20
    monkeypatch.setattr(tree_dask, "PARTITION_ID_BYTES", 10)  # less than one id: one row
    assert tree_dask._partition_end(parts[0][0].offsets, 5, 61) == 6
    monkeypatch.setattr(tree_dask, "PARTITION_ID_BYTES", 52 * 20 + 30)
    tree = engine.build_parts(list(parts), SECRET)
    assert tree.to_bytes() == build_tree_parts(list(parts), SECRET).to_bytes()
