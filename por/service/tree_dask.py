"""The liabilities tree built on a Dask cluster (`tree_engine = "dask"`, docs/scaling.md).

A thin engine: every value is computed by the pure functions of `por.core.mst_parts`;
this module only places them on the cluster and moves their results.

    partitions of input rows ──hash_partition──► leaf records split by hash-prefix bucket
    driver: counts per bucket ──bucket_starts──► each bucket's global position range
    bucket b ◄── piece b of every partition (the range shuffle) ──sort_bucket──►
        subtree_roots (the aligned subtrees covering its range) [+ bucket_levels]
    driver: merge_subtree_roots ──► the root   [assemble_tree ──► a SumTree for proofs]

Trust boundary: the round secret never leaves this process. The salts are derived here
(`derive_salts`, where the secret is) and shipped with the rows, so the workers see
account ids, balances and this round's salts — everything a tree file holds — but cannot
derive the salts of another round. Run workers on machines trusted with the holder list,
and turn on TLS between this process, the scheduler and the workers (`[dask]` tls_*
settings; the workers' and scheduler's own dask security config on their side).

Recovery: a Parquet partition's input (path, digest, salts) is part of its task's spec,
so Dask recomputes a task whose result was lost with a worker; columns held here are
scattered straight to a worker (one copy), and when a worker dies with them the engine
sends them again and builds again (ATTEMPTS). Either way the root does not change. A
cluster that is unreachable or disappears fails the build with a ClusterError before
anything is recorded. I/O: the network (Dask) and, for sharded input, the Parquet files.

Memory (docs/scaling.md): for a build that fits well within the memory limits of the
local cluster started here (never where spilling is expected), numpy's transparent huge
pages are off in this process and in the workers during the build, and the workers keep
freed memory for reuse — through that build and on to the next one (a service builds every
round: what it receives and makes then lands in memory touched before); a build that does
not fit gives that memory back before it starts.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import logging
import os
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from por.core.amounts import MAX_AMOUNT_EXCLUSIVE, parse_base_units
from por.core.mst import EMPTY_ROOT, MAX_LEAVES, Node, merge_subtree_roots
from por.core.mst_build import (
    AccountColumn,
    BalanceWords,
    ColumnParts,
    balance_words,
    derive_salts,
    duplicate_account,
    encode_accounts_raw,
    row_account,
)
from por.core.mst_parts import (
    MAX_BUCKET_BITS,
    Partition,
    assemble_tree,
    bucket_levels,
    bucket_starts,
    duplicate_salt_rows,
    hash_partition,
    sort_bucket,
    subtree_roots,
)
from por.core.sumtree import SumTree
from por.errors import AmountError, ClusterError, InputError, PorError

if TYPE_CHECKING:
    from por.service.config import DaskConfig

log = logging.getLogger("por.tree_dask")

LOW_LEVELS = 2  # mst_build.DEFAULT_PARAMS.low_levels: the stored levels of a served tree
_THREADS = os.cpu_count() or 1  # the driver's threads deriving salts (the C kernel's)


@dataclass(frozen=True, slots=True, kw_only=True)
class DaskSettings:
    """Where the cluster is and how the build is cut (the `[dask]` table)."""

    scheduler: str = ""  # tcp:// or tls:// address; empty: start a local cluster here
    n_workers: int = 2  # local cluster: worker processes
    threads_per_worker: int = 1
    memory_limit: str = "auto"  # local cluster, per worker; above it workers spill to disk
    local_directory: Path | None = None  # local cluster: where workers spill
    partition_rows: int = 1 << 19  # input rows per partition task (of columns held here;
    # fewer where their ids take more than PARTITION_ID_BYTES)
    bucket_rows: int = 1 << 21  # aim of leaves per bucket (a power of two of buckets)
    connect_timeout_s: float = 30.0  # reaching the scheduler, and waiting for it to come back
    tls_ca_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tls_local: bool = False  # local cluster: TLS with a throw-away CA (Security.temporary)
    small_pages: bool | None = None  # numpy without transparent huge pages during a build
    # (here and in a local cluster's workers: `_numpy_hugepages`); None: as heap_reuse
    heap_reuse: bool | None = None  # workers keep freed memory from a build to the next
    # (glibc); None: when the cluster is the local one started here and the build fits
    # well within its workers' memory limits (no spilling expected: `_reuse_heap`)


@dataclass(frozen=True, slots=True, kw_only=True)
class ParquetShard:
    """One export file: columns `account` (string) and `balance` (an unsigned or signed
    64-bit integer, or a decimal string of base units for balances of 2^64 and more)."""

    path: str  # readable by every worker (a shared filesystem or an fsspec URL)


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildStats:
    """What a build did, for logs and bench/scale.py."""

    leaves: int
    partitions: int
    buckets: int
    subtrees: int
    attempts: int = 1  # builds started (more when a worker died with rows sent to it)
    heap_reuse: bool = False  # the workers kept freed memory for reuse (`_reuse_heap`)
    stage_s: dict[str, float] = field(default_factory=dict)


def settings_from_config(cfg: DaskConfig) -> DaskSettings:
    """The engine's settings from the checked `[dask]` table."""
    return DaskSettings(
        scheduler=cfg.scheduler,
        n_workers=cfg.n_workers,
        threads_per_worker=cfg.threads_per_worker,
        memory_limit=cfg.memory_limit,
        local_directory=cfg.local_directory,
        partition_rows=cfg.partition_rows,
        bucket_rows=cfg.bucket_rows,
        connect_timeout_s=cfg.connect_timeout_s,
        tls_ca_file=cfg.tls_ca_file,
        tls_cert_file=cfg.tls_cert_file,
        tls_key_file=cfg.tls_key_file,
        tls_local=cfg.tls_local,
    )


# --- task functions (run on the workers; module level so they pickle by name) ------------


def _hash_task(data: tuple[Any, bytes], first_row: int, plan: tuple[int, bool]) -> Partition:
    """Step 1 on a worker. `data` is (source, salts); the source is the columns, or
    (Parquet path, SHA-256 of the account ids whose salts were derived) — the worker reads
    the file and checks it is that one."""
    source, salts = data
    bits, keep = plan
    if isinstance(source[0], str):
        path, digest = source
        accounts, balances = read_shard(path)
        if _account_digest(accounts) != digest:
            raise InputError(
                "the export's accounts changed since their salts were derived", where=path
            )
    else:
        accounts, words = source
        # balances below 2^64 travel as their low words alone (the high words are zeros)
        balances = words if isinstance(words, BalanceWords) else balance_words(words, len(words))
    return hash_partition(
        accounts,
        balances,
        salts,
        first_row=first_row,
        bucket_bits=bits,
        account_keys=keep,
        salt_keys=not keep,  # a tree assembled in the driver checks duplicates itself
    )


def read_shard(path: str) -> tuple[AccountColumn, BalanceWords]:
    """The checked columns of one Parquet export (FormatError/AmountError name the file
    and the row)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path, columns=["account", "balance"])
    except (OSError, pa.ArrowException) as e:
        raise InputError(f"cannot read the Parquet export: {e}", where=path) from e
    accounts = _arrow_accounts(table.column("account"), where=f"{path}:account")
    col = table.column("balance")
    n = len(accounts)
    if pa.types.is_integer(col.type):
        balances = balance_words(col.to_numpy(), n)
    elif pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        balances = balance_words(
            (
                parse_base_units(v, where=f"{path}:balance[{i}]")
                for i, v in enumerate(col.to_pylist())
            ),
            n,
        )
    else:
        raise InputError(
            f"balance column of type {col.type}: use an integer or a decimal string",
            where=f"{path}:balance",
        )
    return accounts, balances


def _account_digest(accounts: AccountColumn) -> str:
    blob = np.frombuffer(accounts.blob, np.uint8, int(accounts.offsets[-1]))
    return hashlib.sha256(blob.tobytes()).hexdigest()


def _counts(p: Partition) -> tuple[list[int], int]:
    return p.counts, p.total


def _piece(p: Partition, b: int) -> tuple[Any, Any]:
    """Bucket b's share of a partition: its leaf records and salt keys, one key (one
    task, one transfer) for both."""
    return p.leaves[b], p.salt_keys[b]


def _account_keys(p: Partition) -> Any:
    return p.account_keys


def _bucket_roots(
    start: int, bits: int, *pieces: tuple[Any, Any]
) -> tuple[list[tuple[int, int, Node]], list[tuple[int, int]]]:
    """A bucket's subtree roots, and the rows its salt keys name as duplicate candidates."""
    level0, _ = sort_bucket([leaves for leaves, _ in pieces], bucket_bits=bits, scratch=True)
    return subtree_roots(level0, start), duplicate_salt_rows([keys for _, keys in pieces])


def _bucket_tree(start: int, bits: int, *pieces: tuple[Any, Any]) -> tuple[Any, Any]:
    level0, rows = sort_bucket([leaves for leaves, _ in pieces], bucket_bits=bits, scratch=True)
    # the rows as 32-bit (half the bytes back to the driver), copied out of the scratch;
    # the leaves and the levels below LOW_LEVELS stay in the worker's scratch buffers
    return bucket_levels(level0, start, low=LOW_LEVELS), rows.copy()


def _malloc_reuse(on: bool) -> bool:
    """On a worker: glibc keeps freed memory for the next allocation (on), or gives it
    back as Dask's settings do (off: the environment's thresholds again, and
    malloc_trim). Dask starts workers with MALLOC_TRIM_THRESHOLD_ = 64 KiB, which also
    pins glibc's mmap threshold at 128 KiB: every received buffer and every larger
    temporary is a fresh mapping, and first-touching fresh pages costs 1.3-3 s per GiB
    on a VM. False where glibc's mallopt is not there (nothing changed)."""
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt, trim = libc.mallopt, libc.malloc_trim
    except (OSError, AttributeError):
        return False
    if on:
        done = mallopt(_M_MMAP_THRESHOLD, REUSE_MMAP_THRESHOLD)
        done = mallopt(_M_TRIM_THRESHOLD, REUSE_TRIM_THRESHOLD) and done
        return bool(done)
    default = 128 * 1024  # glibc's (Dask sets the trim threshold to 64 KiB)
    for option, name in ((_M_MMAP_THRESHOLD, "MMAP"), (_M_TRIM_THRESHOLD, "TRIM")):
        try:
            value = int(os.environ.get(f"MALLOC_{name}_THRESHOLD_", default))
        except ValueError:
            value = default
        mallopt(option, value)
    trim(0)
    return True


def _numpy_hugepages(on: bool) -> bool | None:
    """Whether numpy asks for transparent huge pages for its arrays of 4 MiB and more
    (madvise), here or on a worker; returns the setting before, None where numpy cannot
    say. Off during a build that fits: on this VM that cut the workers' system time from
    2.7 to 1.3 s at 10^7 leaves (but cost CPU at 10^8 spilling)."""
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        return None
    setter = getattr(multiarray, "_set_madvise_hugepage", None)
    if setter is None:
        return None
    return bool(setter(on))


@contextlib.contextmanager
def _small_pages(on: bool = True) -> Iterator[None]:
    """This process's numpy arrays without transparent huge pages for the build (what it
    receives and assembles: ~1 CPU-s less at 10^7 leaves here), as before afterwards."""
    before = _numpy_hugepages(False) if on else None
    try:
        yield
    finally:
        if before:
            _numpy_hugepages(True)


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt options
REUSE_MMAP_THRESHOLD = 32 << 20  # glibc's largest: buffers up to 32 MiB come from the heap
REUSE_TRIM_THRESHOLD = 1 << 30  # freed heap memory kept for reuse, up to 1 GiB at the top
REUSE_BYTES_PER_LEAF = 400  # what a build holds on the workers per leaf, generously (~220)
REUSE_SHARE = 0.5  # of a worker's memory limit: below Dask's spill target (0.6)


# --- the engine ----------------------------------------------------------------------------


def _bucket_bits(n: int, bucket_rows: int) -> int:
    bits = 0
    while bits < MAX_BUCKET_BITS and (n >> bits) > bucket_rows:
        bits += 1
    return bits


class DaskTreeEngine:
    """Builds trees on one Dask cluster: a scheduler at an address, or a local cluster
    started at the first build. `close()` shuts down what it started."""

    def __init__(self, settings: DaskSettings) -> None:
        self.settings = settings
        self._client: Any = None
        self._cluster: Any = None
        self.on_stage: Callable[[str, Any], None] | None = None  # tests: ("hashed", client)
        self.last_stats: BuildStats | None = None
        self._heap_kept = False  # the workers keep freed memory since a build that fit

    # --- connection ----------------------------------------------------------------
    def _security(self) -> Any:
        s = self.settings
        Security: Any = importlib.import_module("distributed.security").Security

        if s.tls_ca_file or s.tls_cert_file or s.tls_key_file:
            if not (s.tls_ca_file and s.tls_cert_file and s.tls_key_file):
                raise InputError(
                    "TLS needs tls_ca_file, tls_cert_file and tls_key_file together",
                    where="dask",
                )
            return Security(
                tls_ca_file=str(s.tls_ca_file),
                tls_client_cert=str(s.tls_cert_file),
                tls_client_key=str(s.tls_key_file),
                require_encryption=True,
            )
        if s.tls_local and not s.scheduler:
            return Security.temporary()
        return None

    def client(self) -> Any:
        """The connected client (connecting, or starting the local cluster, once)."""
        if self._client is not None:
            return self._client
        dask: Any = importlib.import_module("dask")
        distributed: Any = importlib.import_module("distributed")
        Client, LocalCluster = distributed.Client, distributed.LocalCluster

        s = self.settings
        where = s.scheduler or "local cluster"
        timeout = f"{s.connect_timeout_s}s"
        try:
            config: dict[str, Any] = {"distributed.comm.timeouts.connect": timeout}
            with dask.config.set(config):
                security = self._security()
                if s.scheduler:
                    self._client = Client(
                        s.scheduler, security=security, timeout=timeout, set_as_default=False
                    )
                else:
                    self._cluster = LocalCluster(
                        n_workers=s.n_workers,
                        threads_per_worker=s.threads_per_worker,
                        processes=True,
                        memory_limit=s.memory_limit,
                        local_directory=None
                        if s.local_directory is None
                        else str(s.local_directory),
                        host="127.0.0.1",
                        dashboard_address=None,
                        security=security,
                        protocol="tls://" if security is not None else "tcp://",
                    )
                    self._client = Client(
                        self._cluster, security=security, timeout=timeout, set_as_default=False
                    )
        except PorError:
            raise
        except Exception as e:  # OSError, TimeoutError, dask's own: one clear error
            self.close()
            raise ClusterError(
                f"cannot reach the Dask cluster: {type(e).__name__}: {e}", where=where
            ) from e
        return self._client

    def _alive(self, client: Any) -> bool:
        """Whether the scheduler still answers and has (or soon has again) a worker."""
        try:
            client.wait_for_workers(1, timeout=self.settings.connect_timeout_s)
        except Exception:
            return False
        return bool(client.status == "running")

    def close(self) -> None:
        client, cluster = self._client, self._cluster
        self._client = self._cluster = None
        if self._heap_kept and client is not None and cluster is None:
            _set_heap_reuse(client, False)  # a cluster at an address: as its workers had it
        self._heap_kept = False
        for thing in (client, cluster):
            if thing is not None:
                try:
                    thing.close()
                except Exception as e:  # closing a lost cluster: nothing left to do
                    log.debug("closing %r: %s", thing, e)

    # --- builds --------------------------------------------------------------------
    def build_parts(
        self, parts: Sequence[tuple[AccountColumn, BalanceWords]], round_secret: bytes
    ) -> SumTree:
        """The tree of `run.build_tree_parts` (the chains' columns one after another),
        built on the cluster: the same root, levels and proofs. The salts are derived
        here; the tree's arrays are assembled here for the tree file. Several chains'
        columns are never joined (as the local engine keeps them): partitions are cut
        from each where it lies and the tree keeps them as they are."""
        small = self._small_for(sum(len(a) for a, _ in parts))
        with _small_pages(small):
            return self._build_parts(parts, round_secret, small=small)

    def _build_parts(
        self, parts: Sequence[tuple[AccountColumn, BalanceWords]], round_secret: bytes, small: bool
    ) -> SumTree:
        kept = [(a, b) for a, b in parts if len(a)]
        columns: Any
        if len(kept) < 2:
            accounts = kept[0][0] if kept else AccountColumn.concat([])
            balances = kept[0][1] if kept else BalanceWords.concat([])
            kept, columns = [(accounts, balances)], None
        else:
            columns = ColumnParts(tuple(kept))
        salts = derive_salts(round_secret, [a for a, _ in kept], workers=_THREADS)
        specs, n = _parts_specs(kept, salts, self.settings)
        out = self._build(specs, n, keep=True, small=small)
        assert isinstance(out, tuple)
        order, account_keys, buckets = out
        arrays = assemble_tree(
            accounts=kept[0][0] if columns is None else columns,
            balances=kept[0][1] if columns is None else columns,
            salts=salts,
            order=order,
            account_keys=account_keys,
            buckets=buckets,
            low=LOW_LEVELS,
        )
        # assemble_tree checked the root against the merged subtree roots and the total
        return SumTree.from_arrays(arrays, check=False)

    def root_of_parts(
        self, parts: Sequence[tuple[AccountColumn, BalanceWords]], round_secret: bytes
    ) -> tuple[Node, int]:
        """(root, leaf count) over several chains' columns held here, their rows one
        after another (the tree of `build_parts`), never joined: partitions are cut from
        each column where it lies. Only the root comes back."""
        kept = [(a, b) for a, b in parts if len(a)]
        salts = derive_salts(round_secret, [a for a, _ in kept], workers=_THREADS)
        specs, n = _parts_specs(kept, salts, self.settings)
        account = row_account([a for a, _ in kept])  # only for a duplicate's error message

        small = self._small_for(n)
        with _small_pages(small):
            root = self._build(specs, n, keep=False, account=account, small=small)
        assert isinstance(root, Node)
        return root, n

    def root_of_columns(
        self, accounts: AccountColumn, balances: BalanceWords, round_secret: bytes
    ) -> tuple[Node, int]:
        """(root, leaf count) over columns held here; only the root comes back."""
        salts = derive_salts(round_secret, accounts, workers=_THREADS)
        specs = _column_specs(accounts, balances, salts, self.settings)
        small = self._small_for(len(accounts))
        with _small_pages(small):
            root = self._build(
                specs, len(accounts), keep=False, account=accounts.account, small=small
            )
        assert isinstance(root, Node)
        return root, len(accounts)

    def root_of_parquet(
        self, shards: Sequence[ParquetShard], round_secret: bytes
    ) -> tuple[Node, int]:
        """(root, leaf count) over sharded Parquet exports, rows in shard order. This
        process reads each shard's account column once (to check the ids and derive
        their salts, where the secret is); the workers read the shards themselves."""
        firsts, n = [], 0
        for shard in shards:  # the row counts from the files' footers
            firsts.append(n)
            n += _row_count(shard.path)
        salt_s = [0.0]

        def specs() -> Iterator[tuple[Any, bytes, int]]:
            # one shard at a time, each submitted as soon as its salts exist: the
            # workers hash while this process reads the next shard's ids
            for shard, first in zip(shards, firsts, strict=True):
                t0 = time.thread_time()  # CPU of this thread: the serial part of a build
                accounts = _read_accounts(shard.path)
                salts = derive_salts(round_secret, accounts, workers=_THREADS)
                end = firsts[firsts.index(first) + 1] if first != firsts[-1] else n
                if len(accounts) != end - first:
                    raise InputError("the export changed while it was read", where=shard.path)
                salt_s[0] += time.thread_time() - t0
                yield (shard.path, _account_digest(accounts)), salts, first

        def account(row: int) -> str:  # only for a duplicate's error message
            k = max(i for i, f in enumerate(firsts) if f <= row)
            return _read_accounts(shards[k].path).account(row - firsts[k])

        small = self._small_for(n)
        with _small_pages(small):
            root = self._build(_Again(specs), n, keep=False, account=account, small=small)
        assert isinstance(root, Node)
        if self.last_stats is not None:
            self.last_stats.stage_s["ids_and_salts"] = salt_s[0]
        return root, n

    def _build(
        self,
        specs: Iterable[tuple[Any, bytes, int]],
        n: int,
        *,
        keep: bool,
        account: Callable[[int], str] | None = None,
        small: bool = False,
    ) -> Node | tuple[Any, Any, Any]:
        """Run the stages over partitions (source, salts, first row); every failure of
        the cluster becomes one ClusterError. `small`: numpy's huge pages off in a local
        cluster's workers for the build."""
        if n > MAX_LEAVES:
            raise InputError(f"{n} leaves exceed the limit of {MAX_LEAVES}", where="salts")
        if n == 0:
            self.last_stats = BuildStats(leaves=0, partitions=0, buckets=0, subtrees=0)
            if keep:
                return np.zeros(0, np.uint64), np.zeros(0, np.uint32), []
            return EMPTY_ROOT
        client = self.client()
        bits = _bucket_bits(n, self.settings.bucket_rows)
        reuse = self._heap_reuse(client, n)
        pages: dict[str, Any] = {}
        if self._cluster is not None and small:
            pages = _run_on_workers(client, _numpy_hugepages, False)
        try:
            out = self._attempts(client, specs, n, bits, keep=keep, account=account)
        finally:
            # the heap stays kept for the next build (the service builds every round):
            # its received buffers, pieces and levels then land in memory touched
            # before; a build that does not fit gives it back first (`_heap_reuse`)
            for before in set(pages.values()) - {None, False}:  # as they were
                _run_on_workers(client, _numpy_hugepages, before)
        if self.last_stats is not None:
            self.last_stats = replace(self.last_stats, heap_reuse=reuse)
        return out

    def _fits(self, n: int) -> bool:
        """Whether a build of n leaves runs on this engine's own local cluster well
        within its workers' memory limits (nothing expected to spill): where small pages
        and heap reuse were measured to help (docs/scaling.md). At 10^8 leaves spilling,
        small pages cost more CPU (270 against 229 s), and kept memory stalls spilling."""
        if not 0 < n <= MAX_LEAVES:
            return False
        client = self.client()
        return self._cluster is not None and _reuse_heap(n, _memory_limits(client))

    def _small_for(self, n: int) -> bool:
        on = self.settings.small_pages
        return self._fits(n) if on is None else on

    def _heap_reuse(self, client: Any, n: int) -> bool:
        """The workers' heap reuse for a build of n leaves: on (again: a restarted worker
        starts with Dask's settings) when it should be; else off, and the memory kept
        since an earlier build given back before this one starts."""
        on = self.settings.heap_reuse
        if on is None:
            on = self._fits(n)
        if on:
            self._heap_kept = _set_heap_reuse(client, True)
            return self._heap_kept
        if self._heap_kept:
            _set_heap_reuse(client, False)
            self._heap_kept = False
        return False

    def _attempts(
        self,
        client: Any,
        specs: Iterable[tuple[Any, bytes, int]],
        n: int,
        bits: int,
        *,
        keep: bool,
        account: Callable[[int], str] | None,
    ) -> Node | tuple[Any, Any, Any]:
        for attempt in range(1, ATTEMPTS + 1):
            run = _Run(client, token=uuid.uuid4().hex[:12], bits=bits, keep=keep, attempt=attempt)
            try:
                with warnings.catch_warnings():  # Parquet salts travel in the specs on purpose
                    warnings.filterwarnings("ignore", message="Sending large graph")
                    results, akeys, candidates = run.stages(specs, self.on_stage)
                break
            except BaseException as e:
                run.cancel()
                if isinstance(e, PorError) or not isinstance(e, Exception):
                    raise
                if attempt < ATTEMPTS and _lost_input(e) and self._alive(client):
                    # a worker died with rows sent to it (scattered data has no task to
                    # recompute it from): send them again and build again
                    log.warning("tree build attempt %d lost a worker's input; again", attempt)
                    continue
                # the cluster's errors, whatever their type: one clear error
                raise ClusterError(
                    f"the Dask cluster failed during the tree build ({type(e).__name__}: {e}); "
                    "no attestation is recorded",
                    where=self.settings.scheduler or "local cluster",
                ) from e
        for first, second in sorted(candidates, key=lambda p: p[1]):
            if account is not None and account(first) == account(second):
                raise duplicate_account(first, second, account(second))
        if keep:
            levels = [lv for lv, _ in results]
            self.last_stats = run.stats(n, sum(len(lv.subtrees) for lv in levels))
            return np.concatenate([rows for _, rows in results]), np.concatenate(akeys), levels
        subtrees = [s for found, _ in results for s in found]
        t0 = time.perf_counter()
        root = merge_subtree_roots(n, subtrees)
        run.stage_s["merge"] = time.perf_counter() - t0
        self.last_stats = run.stats(n, len(subtrees))
        return root


def _column_specs(
    accounts: AccountColumn,
    balances: BalanceWords,
    salts: bytes,
    settings: DaskSettings,
    *,
    first: int = 0,
) -> list[tuple[Any, bytes, int]]:
    """Partitions of columns held here, whose rows start at input row `first` (the
    salts are of all rows): ((ids, balances), salts, first row); balances below 2^64 as
    their low words alone (an eighth less to send)."""
    n, rows = len(accounts), settings.partition_rows
    salt_rows = np.frombuffer(salts, np.uint8)  # views: sent without a copy here
    out: list[tuple[Any, Any, int]] = []
    a = 0
    while a < n:
        b = _partition_end(accounts.offsets, a, rows)
        words = balances.take(a, b)
        sent: Any = words if words.hi.any() else words.lo
        at = first + a
        out.append(((accounts.take(a, b), sent), salt_rows[32 * at : 32 * (at + b - a)], at))
        a = b
    return out


PARTITION_ID_BYTES = 30 << 20  # a partition's ids at most (below glibc's mmap threshold cap)


def _partition_end(offsets: Any, a: int, rows: int) -> int:
    """The end of the partition starting at row a: `rows` rows, or fewer where their ids
    would take more than PARTITION_ID_BYTES. Every buffer a worker receives (ids, salts,
    balances: each read into an array of its own) then stays below 32 MiB, glibc's
    largest mmap threshold: with heap reuse on, a worker receives it into memory it has
    touched before, instead of a fresh mapping to fault in page by page."""
    n = len(offsets) - 1
    b = min(a + rows, n)
    limit = int(offsets[a]) + PARTITION_ID_BYTES
    if int(offsets[b]) > limit:
        b = max(a + 1, int(np.searchsorted(offsets, limit, side="right")) - 1)
    return b


def _parts_specs(
    kept: Sequence[tuple[AccountColumn, BalanceWords]], salts: bytes, settings: DaskSettings
) -> tuple[list[tuple[Any, bytes, int]], int]:
    """Partitions of several columns whose rows come one after another (the salts are of
    all rows), never crossing two columns; and the number of rows."""
    specs: list[tuple[Any, bytes, int]] = []
    first = 0
    for a, b in kept:
        specs += _column_specs(a, b, salts, settings, first=first)
        first += len(a)
    return specs, first


ATTEMPTS = 3  # builds tried when workers die with scattered input (a lost cluster: one)


def _reuse_heap(n: int, limits: Sequence[int]) -> bool:
    """Whether a build of n leaves leaves ample room on workers of these memory limits
    (bytes; 0: none) for them to keep freed memory: then nothing is expected to spill.
    Where spilling is expected Dask's own settings stay: memory kept by the allocator
    looks full to Dask, and workers then spill and reload the same pieces over and over
    or pause with nothing left to spill (docs/scaling.md, 10^8 leaves)."""
    if not limits:
        return False
    need = n * REUSE_BYTES_PER_LEAF / len(limits)
    return all(limit == 0 or need <= REUSE_SHARE * limit for limit in limits)


def _memory_limits(client: Any) -> list[int]:
    try:
        workers = client.scheduler_info(n_workers=-1)["workers"].values()
        return [int(w.get("memory_limit") or 0) for w in workers]
    except Exception as e:  # no answer: no reuse
        log.debug("reading the workers' memory limits: %s", e)
        return []


def _run_on_workers(client: Any, fn: Callable[[bool], Any], on: bool) -> dict[str, Any]:
    """fn(on) on every worker: {worker: what it returned}; {} when that failed (a worker
    lost meanwhile: the build says what happened)."""
    try:
        done: dict[str, Any] = client.run(fn, on)
    except Exception as e:
        log.debug("%s(%s) on the workers: %s", fn.__name__, on, e)
        return {}
    return done


def _set_heap_reuse(client: Any, on: bool) -> bool:
    """Heap reuse on or off in every worker; True when every worker took it."""
    done = _run_on_workers(client, _malloc_reuse, on)
    return bool(done) and all(done.values())


def _lost_input(e: BaseException) -> bool:
    """A build that failed because data sent to a worker is gone with it."""
    from concurrent.futures import CancelledError

    return isinstance(e, CancelledError) or type(e).__name__ == "KilledWorker"


class _Run:
    """The futures of one build, keyed by a fresh token."""

    def __init__(self, client: Any, *, token: str, bits: int, keep: bool, attempt: int) -> None:
        self.client, self.token, self.bits, self.keep = client, token, bits, keep
        self.attempt = attempt
        self.futures: list[Any] = []
        self.stage_s: dict[str, float] = {}
        self.partitions = 0
        try:  # scattered partitions in flight: two per worker thread
            self.window = max(2 * sum(client.nthreads().values()), 2)
        except Exception:  # no answer now: the build itself says what is wrong
            self.window = 4

    def submit(self, fn: Callable[..., Any], *args: Any, key: str, keep: bool = False) -> Any:
        """A task; `keep` holds its future here (else it lives as long as its dependents
        need it, so Dask frees — or spills — every intermediate result once used)."""
        f = self.client.submit(fn, *args, key=f"por-{key}-{self.token}", pure=False)
        if keep:
            self.futures.append(f)
        return f

    def stages(
        self, specs: Iterable[tuple[Any, bytes, int]], on_stage: Callable[[str, Any], None] | None
    ) -> tuple[list[Any], list[Any], list[tuple[int, int]]]:
        t0 = time.perf_counter()
        plan = (self.bits, self.keep)
        nb = 1 << self.bits
        counts_f: list[Any] = []
        pieces: list[list[Any]] = [[] for _ in range(nb)]
        akey_futures: list[Any] = []
        for i, (source, salts, first) in enumerate(specs):
            # columns held here go straight to a worker each (scatter: one copy, no stop
            # at the scheduler, ~5x cheaper than inside the task spec); a Parquet source
            # is a path, which the task spec carries with the salts, so Dask can rerun it
            data: Any = (source, salts)
            if not isinstance(source[0], str):  # held by its task only: freed once hashed
                if i >= self.window:  # a few partitions ahead of the hashing, not all:
                    # a worker then receives into the memory of partitions it has hashed
                    # (with heap reuse) instead of first-touching memory for every one
                    counts_f[i - self.window].result()
                data = self.client.scatter([data], direct=True, hash=False)[0]
            part = self.submit(_hash_task, data, first, plan, key=f"part-{i}")
            # its pieces are taken at once, while it is in memory: each piece is a key of
            # its own that a worker can spill alone, and the partition is freed after
            # (taken only when all partitions are hashed, a spilled partition would be
            # read back for every one of its 2·2^b pieces)
            counts_f.append(self.submit(_counts, part, key=f"count-{i}", keep=True))
            for b in range(nb):
                pieces[b].append(self.submit(_piece, part, b, key=f"piece-{i}-{b}", keep=True))
            if self.keep:
                akey_futures.append(self.submit(_account_keys, part, key=f"akeys-{i}", keep=True))
            del data, part
        self.partitions = len(counts_f)
        counts = self.client.gather(counts_f, direct=True)
        self.stage_s["hash"] = time.perf_counter() - t0
        total = sum(t for _, t in counts)
        if total >= MAX_AMOUNT_EXCLUSIVE:
            raise AmountError(
                f"the balances add up to {total}, not below 2^127; the root sum would overflow",
                where="balances",
            )
        starts = bucket_starts([c for c, _ in counts])
        if on_stage is not None:
            on_stage("hashed", self.client)
        t1 = time.perf_counter()
        task = _bucket_tree if self.keep else _bucket_roots
        buckets = [
            self.submit(task, starts[b], self.bits, *pieces[b], key=f"bucket-{b}", keep=True)
            for b in range(nb)
        ]
        # from here a piece lives only until its bucket has taken it
        self.futures = [*buckets, *akey_futures]
        del pieces, counts_f
        # straight from the workers (as the partitions went out): through the scheduler
        # every result would be pickled in-band (its connections speak pickle protocol 4,
        # without out-of-band buffers) and copied twice more on the way
        results = self.client.gather(buckets, direct=True)
        akeys = self.client.gather(akey_futures, direct=True) if self.keep else []
        # the rows of equal salt prefixes (a tree assembled here checks duplicates itself)
        candidates = [] if self.keep else [pair for _, found in results for pair in found]
        self.stage_s["buckets"] = time.perf_counter() - t1
        return results, akeys, candidates

    def cancel(self) -> None:
        try:  # stop what is still queued; a lost client cannot, and nothing is kept
            self.client.cancel(self.futures)
        except Exception as err:
            log.debug("cancelling the build's tasks: %s", err)

    def stats(self, n: int, subtrees: int) -> BuildStats:
        return BuildStats(
            leaves=n,
            partitions=self.partitions,
            buckets=1 << self.bits,
            subtrees=subtrees,
            attempts=self.attempt,
            stage_s=dict(self.stage_s),
        )


class _Again:
    """Partitions made afresh on each pass (a retried build reads the shards and derives
    their salts again): nothing is kept here, the salts travel in the task specs."""

    def __init__(self, make: Callable[[], Iterator[tuple[Any, bytes, int]]]) -> None:
        self._make = make

    def __iter__(self) -> Iterator[tuple[Any, bytes, int]]:
        return self._make()


def _row_count(path: str) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return int(pq.ParquetFile(path).metadata.num_rows)
    except (OSError, pa.ArrowException) as e:
        raise InputError(f"cannot read the Parquet export: {e}", where=path) from e


def _read_accounts(path: str) -> AccountColumn:
    """The checked account column of one Parquet export."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path, columns=["account"])
    except (OSError, pa.ArrowException) as e:
        raise InputError(f"cannot read the Parquet export: {e}", where=path) from e
    return _arrow_accounts(table.column("account"), where=f"{path}:account")


def _arrow_accounts(column: Any, *, where: str) -> AccountColumn:
    """The checked ids of an Arrow string column, straight from its buffers."""
    import pyarrow as pa

    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_large_string(arr.type):
        width: Any = np.int64
    elif pa.types.is_string(arr.type):
        width = np.int32
    else:
        raise InputError(f"account column of type {arr.type}: use strings", where=where)
    if arr.null_count:
        raise InputError(f"{arr.null_count} empty (null) account ids", where=where)
    _, offsets, data = arr.buffers()
    starts = np.frombuffer(offsets, width)[arr.offset : arr.offset + len(arr) + 1]
    return encode_accounts_raw(np.frombuffer(data, np.uint8) if data else b"", starts, where=where)


__all__ = [
    "BuildStats",
    "DaskSettings",
    "DaskTreeEngine",
    "ParquetShard",
    "read_shard",
    "settings_from_config",
]
