"""A por-mst-v1 tree built in pieces: what one partition or one bucket of a distributed
build computes, and how the pieces join into the tree that `build` makes in one process.

The decomposition (docs/scaling.md), each step a pure function of its inputs here; the
engine that runs them on a cluster (por.service.tree_dask) only moves their values:

1. `hash_partition` — rows [first_row, first_row + m) of the input (checked ids,
   balances, the salts the round secret gave): every leaf hash, split by the top
   `bucket_bits` bits of the hash into buckets (`PIECE` records: hash, balance words,
   global input row; `PIECE_LOW` without the high word where it is zero), and the
   salts' first 8 bytes split the same way for the duplicate check (`SALT_KEY`: equal
   accounts have equal salts).
2. counting: bucket b's leaves take the global positions [sum of the counts of the
   buckets before b, + its count) — leaf order is hash order, and the buckets are
   hash-prefix ranges in order.
3. `sort_bucket` — one bucket's pieces from every partition, sorted by leaf hash: the
   leaf records of its position range. `subtree_roots` covers that range with aligned
   power-of-two subtrees (`mst.cover_range`) and hashes each; `bucket_levels` keeps
   their stored levels too, for a tree that serves proofs.
4. `mst.merge_subtree_roots` joins the O(buckets · log n) subtree roots into the root;
   `assemble_levels` fills the few nodes above the subtrees into whole stored levels,
   and `assemble_tree` makes the `TreeArrays` a `SumTree` serves proofs from.

Every node of every piece is a node of the one tree (an aligned block inside a range lies
inside one of its cover's subtrees), so the root equals `mst_build.build`'s root byte for
byte; tests/core/test_mst_parts.py compares roots, levels and proofs over random sizes,
bucket boundaries and the empty and one-leaf trees. `duplicate_salt_rows` finds the rows
a duplicate account would share a salt with (candidates: 8-byte prefixes).

Pure: no network, disk, environment, clock or randomness; no threads but the C kernel's.
The temporaries of `hash_partition` and `sort_bucket` live in per-thread scratch buffers
that the next call reuses (`_Scratch`): a worker that hashes partition after partition
touches fresh memory once, not once per partition — first-touch page faults were a
quarter of a Dask worker's CPU. So do a bucket's sorted leaves (`sort_bucket(...,
scratch=True)`) and its levels below the lowest stored one; the stored levels are hashed
run by run into one array of their own. Nothing returned points into the scratch.
"""

from __future__ import annotations

import hashlib
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from por.core.amounts import MAX_AMOUNT_EXCLUSIVE
from por.core.mst import (
    EMPTY_ROOT,
    HASH_SIZE,
    LEAF_PREIMAGE_SIZE,
    SALT_SIZE,
    Node,
    cover_range,
    merge_subtree_roots,
    node_raw,
    node_unchecked,
)
from por.core.mst_build import (
    DEFAULT_PARAMS,
    STORED_LEVEL,
    U32,
    U64,
    AccountColumn,
    BalanceWords,
    ColumnParts,
    TreeArrays,
    _be_bytes,
    _native,
    _records,
    _reduce,
    account_index,
    exact_total,
    hash_rows,
    stored_bytes,
)
from por.errors import AmountError, InputError

PIECE: Final = np.dtype([("hash", f"V{HASH_SIZE}"), ("lo", "<u8"), ("hi", "<u8"), ("row", "<u8")])
"""One leaf on its way to its bucket: leaf hash, balance as two words, global input row."""
PIECE_LOW: Final = np.dtype([("hash", f"V{HASH_SIZE}"), ("lo", "<u8"), ("row", "<u4")])
"""The same leaf in 44 bytes instead of 56, from a partition whose balances are all below
2^64 (no high words) and whose rows are below 2^32 (every input row is: MAX_LEAVES)."""
_PIECE_DTYPES: Final = (PIECE, PIECE_LOW)
SALT_KEY: Final = np.dtype([("key", "<u8"), ("row", "<u8")])
"""The first 8 bytes of a salt (big-endian) and its global input row."""
MAX_BUCKET_BITS: Final = 16

Pieces = tuple[npt.NDArray[Any], ...]


class _Scratch(threading.local):
    """Per-thread buffers for temporaries, by name, grown as needed and kept: arrays
    handed out are views that the next request of the same name overwrites, so they
    never leave the function that asked (nothing returned is one of them)."""

    def __init__(self) -> None:
        self.buffers: dict[str, npt.NDArray[np.uint8]] = {}

    def array(self, name: str, n: int, dtype: Any) -> npt.NDArray[Any]:
        dt = np.dtype(dtype)
        size = n * dt.itemsize
        buf = self.buffers.get(name)
        if buf is None or len(buf) < size:
            buf = self.buffers[name] = np.empty(max(size, 1), np.uint8)
        return buf[:size].view(dt)

    def iota(self, n: int) -> npt.NDArray[np.uint64]:
        """0, 1, ..., n - 1 (uint64), made once per thread and size reached."""
        have = self.buffers.get("iota")
        if have is None or len(have) < 8 * n:
            self.buffers["iota"] = np.arange(max(n, 1), dtype=np.uint64).view(np.uint8)
        return self.buffers["iota"][: 8 * n].view(np.uint64)


_scratch = _Scratch()


@dataclass(frozen=True, slots=True, kw_only=True)
class Partition:
    """What `hash_partition` makes of a run of input rows."""

    first_row: int
    size: int
    total: int  # the exact sum of the partition's balances
    leaves: Pieces  # PIECE or PIECE_LOW records, one array per bucket (top bucket_bits of
    # the leaf hash)
    salt_keys: Pieces  # SALT_KEY records, one array per bucket (top bits of the key);
    # empty arrays when not asked for
    account_keys: U32 | None  # first 4 bytes of H(account) (big-endian) per row, if asked

    @property
    def counts(self) -> list[int]:
        """Leaves per bucket."""
        return [len(p) for p in self.leaves]


def _check_bits(bucket_bits: int) -> int:
    if isinstance(bucket_bits, bool) or not isinstance(bucket_bits, int):
        raise InputError(f"must be an integer, got {bucket_bits!r}", where="bucket_bits")
    if not 0 <= bucket_bits <= MAX_BUCKET_BITS:
        raise InputError(
            f"must be in [0, {MAX_BUCKET_BITS}], got {bucket_bits}", where="bucket_bits"
        )
    return bucket_bits


def _leaf_hashes(
    accounts: AccountColumn, lo: U64, hi: U64 | None, salts: Any, native: bool
) -> tuple[npt.NDArray[np.uint8], U64]:
    """(n, 32) leaf hashes and, per row, the first 4 bytes of H(account) << 32 | row
    (scratch arrays)."""
    n = len(accounts)
    leaves = _scratch.array("leaves", n * HASH_SIZE, np.uint8).reshape(n, HASH_SIZE)
    akeys = _scratch.array("akeys", n, np.uint64)
    if native and _native is not None:
        leaf_keys = _scratch.array("leaf_keys", n, np.uint64)
        blob = np.frombuffer(accounts.blob, np.uint8, int(accounts.offsets[-1]))
        _native.leaf_pass(blob, accounts.offsets, salts, lo, hi, 0, n, leaves, leaf_keys, akeys)
        return leaves, akeys
    # hashlib: the preimages laid out by numpy, as mst_build's fallback does
    sha = hashlib.sha256
    raw = bytes(np.frombuffer(accounts.blob, np.uint8, int(accounts.offsets[-1])))
    ids = raw.split(b"\n")
    ids.pop()
    a = np.frombuffer(b"".join(sha(i).digest() for i in ids), np.uint8).reshape(n, HASH_SIZE)
    pre = np.zeros((n, LEAF_PREIMAGE_SIZE), np.uint8)
    pre[:, 1:33] = np.frombuffer(salts, np.uint8).reshape(n, SALT_SIZE)
    pre[:, 33:65] = a
    if hi is not None:
        pre[:, 81:89] = _be_bytes(hi)
    pre[:, 89:97] = _be_bytes(lo)
    leaves[:] = np.frombuffer(hash_rows(pre, DEFAULT_PARAMS.hash_batch), np.uint8).reshape(
        n, HASH_SIZE
    )
    rows = np.arange(n, dtype=np.uint64)
    akeys[:] = (a.view(">u4")[:, 0].astype(np.uint64) << np.uint64(32)) | rows
    return leaves, akeys


def _split(records: npt.NDArray[Any], bucket: npt.NDArray[np.uint16], buckets: int) -> Pieces:
    """`records` grouped by bucket number (stable), one array of its own per bucket (so a
    cluster can free or spill each alone). The bucket numbers are 16-bit, so numpy's
    stable argsort is a radix sort; the records move as opaque fixed-size items (np.take
    on a void view: ~5x faster than fancy indexing of fields)."""
    order = np.argsort(bucket, kind="stable")
    ends = np.cumsum(np.bincount(bucket, minlength=buckets)).tolist()
    items = records.view(f"V{records.dtype.itemsize}")
    return tuple(
        np.take(items, order[a:b]).view(records.dtype)
        for a, b in zip([0, *ends[:-1]], ends, strict=True)
    )


def _leaf_pieces(
    leaves: npt.NDArray[np.uint8], balances: BalanceWords, hi: U64 | None, first_row: int, bits: int
) -> Pieces:
    """The records of a partition's rows, one array per bucket (the top `bits` bits of
    the leaf hash), each bucket's in input order: PIECE_LOW where the balances have no
    high words (a fifth fewer bytes to split, keep and send), else PIECE. With the C
    kernel one pass writes every record into its bucket's array; else numpy lays the
    records out and takes them by bucket (`_split`): the same arrays."""
    m = len(leaves)
    bucket = _top_bits(leaves, bits)
    narrow = hi is None and first_row + m <= 2**32
    dtype = PIECE_LOW if narrow else PIECE
    if _native is not None and hasattr(_native, "bucket_records"):
        counts = np.bincount(bucket, minlength=1 << bits).tolist()
        out = tuple(np.empty(c, dtype) for c in counts)
        _native.bucket_records(leaves, balances.lo, hi, first_row, bits, out, narrow)
        return out
    rec = _scratch.array("records", m, dtype)
    rec["hash"] = leaves.view(f"V{HASH_SIZE}").reshape(m)
    rec["lo"], rec["row"] = balances.lo, _input_rows(m, first_row)
    if not narrow:
        rec["hi"] = balances.hi
    return _split(rec, bucket, 1 << bits)


def _input_rows(m: int, first_row: int) -> U64:
    """first_row, first_row + 1, ..., first_row + m - 1 (a scratch array)."""
    rows: U64 = _scratch.array("rows", m, np.uint64)
    np.add(_scratch.iota(m), np.uint64(first_row), out=rows)
    return rows


def _top_bits(rows: npt.NDArray[np.uint8], bits: int) -> npt.NDArray[np.uint16]:
    """The first `bits` bits (<= 16) of each row, as a bucket number."""
    if not bits:
        return np.zeros(len(rows), np.uint16)
    first16 = rows[:, 0].astype(np.uint16) << np.uint16(8) | rows[:, 1]
    return first16 >> np.uint16(16 - bits)


def hash_partition(
    accounts: AccountColumn,
    balances: BalanceWords,
    salts: bytes | npt.NDArray[np.uint8],
    *,
    first_row: int,
    bucket_bits: int,
    account_keys: bool = False,
    salt_keys: bool = True,
    native: bool = True,
) -> Partition:
    """Step 1: the leaves of input rows [first_row, first_row + m), split into buckets.

    `accounts` and `balances` were checked when made (AccountColumn, BalanceWords);
    `salts` holds the m salts (mst_build.derive_salts, where the round secret is). The
    leaf hashes are mst's (H(0x00 ‖ salt ‖ H(account) ‖ u256(balance))). `account_keys`:
    keep the first 4 bytes of each H(account) for the account index of a tree that
    serves proofs. `salt_keys` False: no keys for `duplicate_salt_rows` (a tree
    assembled by `assemble_tree` finds duplicates itself). `native` False hashes with
    hashlib (the same values)."""
    if not isinstance(accounts, AccountColumn):
        raise InputError(f"not an AccountColumn: {type(accounts).__name__}", where="accounts")
    if not isinstance(balances, BalanceWords):
        raise InputError(f"not BalanceWords: {type(balances).__name__}", where="balances")
    bits = _check_bits(bucket_bits)
    m = len(accounts)
    if len(balances) != m:
        raise InputError(f"{len(balances)} balances for {m} accounts", where="balances")
    # bytes, or a uint8 array (a view into the salts of every row: no copy to send)
    if isinstance(salts, np.ndarray) and salts.dtype == np.uint8 and salts.flags.c_contiguous:
        size = salts.nbytes
    elif isinstance(salts, bytes):
        size = len(salts)
    else:
        raise InputError(f"salts must be bytes, got {type(salts).__name__}", where="salts")
    if size != m * SALT_SIZE:
        raise InputError(f"{size} salt bytes for {m} accounts", where="salts")
    if isinstance(first_row, bool) or not isinstance(first_row, int) or first_row < 0:
        raise InputError(f"must be a non-negative integer, got {first_row!r}", where="first_row")
    buckets = 1 << bits
    total = exact_total(balances.lo, balances.hi)
    if total >= MAX_AMOUNT_EXCLUSIVE:
        raise AmountError(
            f"the balances of rows {first_row}.. add up to {total}, not below 2^127",
            where="balances",
        )
    hi = balances.hi if balances.hi.any() else None
    leaves, akeys = _leaf_hashes(accounts, balances.lo, hi, salts, native)
    leaf_pieces = _leaf_pieces(leaves, balances, hi, first_row, bits)
    del leaves
    if salt_keys:
        rows = _input_rows(m, first_row)
        keys = _scratch.array("keys", m, SALT_KEY)
        salt_rows = np.frombuffer(salts, np.uint8).reshape(m, SALT_SIZE)
        keys["key"] = salt_rows[:, :8].copy().view(">u8").reshape(m)
        keys["row"] = rows
        key_pieces = _split(keys, _top_bits(salt_rows, bits), buckets)
        del keys
    else:
        key_pieces = tuple(np.empty(0, SALT_KEY) for _ in range(buckets))
    return Partition(
        first_row=first_row,
        size=m,
        total=total,
        leaves=leaf_pieces,
        salt_keys=key_pieces,
        account_keys=(akeys >> np.uint64(32)).astype(np.uint32) if account_keys else None,
    )


def bucket_starts(counts: Sequence[Sequence[int]]) -> list[int]:
    """Step 2: the first global leaf position of every bucket (and the leaf count last),
    from each partition's counts per bucket."""
    if not counts:
        return [0]
    width = len(counts[0])
    if any(len(c) != width for c in counts):
        raise InputError("partitions disagree on the number of buckets", where="counts")
    per_bucket = [sum(int(c[b]) for c in counts) for b in range(width)]
    starts = [0]
    for c in per_bucket:
        starts.append(starts[-1] + c)
    return starts


def sort_bucket(
    pieces: Sequence[npt.NDArray[Any]], *, bucket_bits: int, scratch: bool = False
) -> tuple[Any, Any]:
    """Step 3a: one bucket's PIECE records from every partition in leaf order (ascending
    leaf hash, bytewise): (STORED_LEVEL records of the leaves, their global input rows as
    uint32 — every input row is below MAX_LEAVES < 2^32). `scratch`: both are views into
    this thread's scratch buffers, which the next call overwrites (for a caller that only
    reads them before then: no fresh memory).

    Sorted as mst_build sorts leaves: packed (the 32 bits after the bucket's prefix) << 32
    | index, one numpy sort; runs of equal packed prefixes ordered by the whole hash."""
    level0, rows = _sort_bucket(pieces, bucket_bits=bucket_bits)
    if scratch:
        return level0, rows
    return level0.copy(), rows.copy()  # arrays of their own (not the scratch)


def _sort_bucket(pieces: Sequence[npt.NDArray[Any]], *, bucket_bits: int) -> tuple[Any, Any]:
    """sort_bucket into this thread's scratch: the leaf records and their input rows are
    views that the next call overwrites (for a caller that only reads them)."""
    bits = _check_bits(bucket_bits)
    for i, p in enumerate(pieces):
        if not isinstance(p, np.ndarray) or p.dtype not in _PIECE_DTYPES:
            raise InputError("not an array of PIECE or PIECE_LOW records", where=f"pieces[{i}]")
    m = sum(len(p) for p in pieces)
    if m >= 2**32:
        raise InputError(f"{m} leaves in one bucket; use more buckets", where="pieces")
    narrow = all(p.dtype == PIECE_LOW for p in pieces)
    dtype = PIECE_LOW if narrow else PIECE
    rec = _scratch.array("bucket", m, dtype)  # temporaries: per-thread scratch
    if pieces and narrow:
        np.concatenate(list(pieces), out=rec)
    elif pieces:  # some partitions had high words: every record as a PIECE
        at = 0
        for p in pieces:
            dst = rec[at : at + len(p)]
            for name in ("hash", "lo", "row"):
                dst[name] = p[name]
            dst["hi"] = p["hi"] if p.dtype == PIECE else 0
            at += len(p)
    raw = rec.view(np.uint8).reshape(m, dtype.itemsize)
    packed = _scratch.array("packed", m, np.uint64)
    packed[:] = raw[:, :8].view(">u8")[:, 0]
    if bits:  # the 32 bits after the bucket's prefix
        np.left_shift(packed, np.uint64(bits), out=packed)
    np.right_shift(packed, np.uint64(32), out=packed)
    np.left_shift(packed, np.uint64(32), out=packed)
    np.bitwise_or(packed, _scratch.iota(m), out=packed)
    packed.sort()
    prefix = np.right_shift(packed, np.uint64(32), out=_scratch.array("prefix", m, np.uint64))
    tie = np.flatnonzero(prefix[1:] == prefix[:-1])
    order = _scratch.array("order", m, np.int64)
    np.bitwise_and(packed, np.uint64(0xFFFF_FFFF), out=order.view(np.uint64))
    if len(tie):  # equal 32-bit keys: order those runs by the whole hash
        pos = np.unique(np.concatenate((tie, tie + 1)))
        idx = order[pos]
        w = raw[idx, :HASH_SIZE].copy().view(">u8").astype(np.uint64)  # 4 words per hash
        order[pos] = idx[np.lexsort((w[:, 3], w[:, 2], w[:, 1], w[:, 0]))]
    level0 = _scratch.array("level0", m, STORED_LEVEL)
    if _native is not None and hasattr(_native, "gather_pieces"):
        rows32 = _scratch.array("rows32", m, np.uint32)
        _native.gather_pieces(rec, order, level0, rows32, narrow)
        return level0, rows32
    # a PIECE's first 48 bytes are a STORED_LEVEL record (hash, low word, high word); a
    # PIECE_LOW's first 40 the hash and the low word (the high word is zero)
    items = rec.view(f"V{dtype.itemsize}")
    ordered = np.take(items, order, out=_scratch.array("ordered", m, items.dtype), mode="clip")
    ordered = ordered.view(dtype)
    width = 40 if narrow else STORED_LEVEL.itemsize
    lv = level0.view(np.uint8).reshape(m, STORED_LEVEL.itemsize)
    lv[:, :width] = ordered.view(np.uint8).reshape(m, dtype.itemsize)[:, :width]
    lv[:, width:] = 0
    # input rows are below MAX_LEAVES < 2^32
    return level0, ordered["row"].astype(np.uint32)


def _level_up(level: npt.NDArray[Any], out: npt.NDArray[Any] | None = None) -> npt.NDArray[Any]:
    """The next level of STORED_LEVEL records (pairs from the left, an odd last carried),
    into `out` when given (contiguous, (len(level) + 1) // 2 records)."""
    if out is None:
        out = np.empty((len(level) + 1) >> 1, STORED_LEVEL)
    if _native is not None:
        if not _native.node_level(np.ascontiguousarray(level), out):
            raise AmountError("a partial sum reaches 2^127", where="balances")
        return out
    lo, hi = np.array(level["lo"]), np.array(level["hi"])
    rec = _records(stored_bytes(np.ascontiguousarray(level))[:, :32], lo, hi)
    rec, lo2, hi2 = _reduce(rec, lo, hi, DEFAULT_PARAMS.hash_batch)
    stored_bytes(out)[:, :32] = rec[:, :32]
    out["lo"] = lo2
    out["hi"] = 0 if hi2 is None else hi2
    return out


def _node_of(record: Any) -> Node:
    h, lo, hi = record.item() if hasattr(record, "item") else record
    return node_unchecked(bytes(h), int(lo) | int(hi) << 64)


def subtree_roots(level0: npt.NDArray[Any], start: int) -> list[tuple[int, int, Node]]:
    """Step 3b: (position, level, root) of the aligned subtrees covering the sorted leaf
    records `level0`, which hold global positions [start, start + len(level0))."""
    return _cover(level0, start, keep_from=None)[0]


def _cover(
    level0: npt.NDArray[Any], start: int, keep_from: int | None
) -> tuple[list[tuple[int, int, Node]], list[tuple[int, npt.NDArray[Any]]]]:
    """The cover's subtree roots and, with keep_from, the runs of `bucket_levels`.

    The cover's subtrees grow then shrink, so at each level L those of level >= L lie
    side by side: one contiguous run of nodes, whose pairs never straddle two subtrees
    (each is aligned to at least 2 nodes at L < its level). So each level is one pass
    over one run: the run at L + 1 is the level above the part of the run at L that the
    subtrees of level > L hold. Levels below keep_from go to this thread's scratch (two
    buffers in turn); the kept runs are views of one array of their own."""
    if not isinstance(level0, np.ndarray) or level0.dtype != STORED_LEVEL:
        raise InputError("not an array of STORED_LEVEL records", where="level0")
    cover = cover_range(start, start + len(level0))
    top = max((lvl for _, lvl in cover), default=-1)
    keep = top + 1 if keep_from is None else max(keep_from, 0)
    # the nodes each level's run holds (the subtrees of level >= L), for one output array
    sizes = [
        sum(1 << (lvl - level) for _, lvl in cover if lvl >= level) for level in range(top + 1)
    ]
    kept = np.empty(sum(sizes[keep:]), STORED_LEVEL)
    roots: list[tuple[int, int, Node]] = []
    runs: list[tuple[int, npt.NDArray[Any]]] = []
    cur, first, at = level0, start, 0  # the run at this level and its first node's index
    if keep == 0 and len(level0):  # the leaves kept too: a copy of their own
        cur = kept[: len(level0)]
        cur[:] = level0
        at = len(level0)
    for level in range(top + 1):
        if level >= keep:
            runs.append((first, cur))
        # the roots of the subtrees of this level (at the run's two ends)
        for pos, lvl in cover:
            if lvl == level:
                roots.append((pos, lvl, _node_of(cur[(pos >> level) - first])))
        higher = [(pos, lvl) for pos, lvl in cover if lvl > level]
        if not higher:
            break
        a = (higher[0][0] >> level) - first
        b = (higher[-1][0] >> level) + (1 << (higher[-1][1] - level)) - first
        if level + 1 >= keep:
            out = kept[at : at + (b - a) // 2]
            at += len(out)
        else:
            out = _scratch.array(f"up{level & 1}", (b - a) // 2, STORED_LEVEL)
        cur, first = _level_up(cur[a:b], out), higher[0][0] >> (level + 1)
    roots.sort(key=lambda r: r[0])
    return roots, runs


@dataclass(frozen=True, slots=True, kw_only=True)
class BucketLevels:
    """A bucket's share of a tree's stored levels (`bucket_levels`)."""

    start: int  # the bucket's first global leaf position
    size: int
    subtrees: tuple[tuple[int, int, Node], ...]  # the cover's roots
    runs: tuple[tuple[int, npt.NDArray[Any]], ...]  # per stored level from `low`: (first
    # index at that level, the contiguous records the subtrees hold there)
    edges: tuple[tuple[int, Any], ...]  # (position, leaf record) of leaves outside the
    # subtrees of level >= low: what the nodes across the bucket's edges are made from


def bucket_levels(level0: npt.NDArray[Any], start: int, *, low: int) -> BucketLevels:
    """Step 3b for a tree that serves proofs: the subtree roots of `subtree_roots` and
    their nodes on every stored level (levels from `low`, as mst_build stores them).

    The cover's subtrees grow then shrink, so those of level >= L lie side by side: at
    each level L the bucket holds one contiguous run of nodes. The leaves of the smaller
    subtrees at the edges (fewer than 2^low on each side) go along as `edges`."""
    roots, runs = _cover(level0, start, keep_from=low)
    edges = []
    for pos, lvl, _ in roots:
        if lvl < low:
            for q in range(pos, pos + (1 << lvl)):
                edges.append((q, level0[q - start].item()))
    return BucketLevels(
        start=start,
        size=len(level0),
        subtrees=tuple(roots),
        runs=tuple(runs),
        edges=tuple(edges),
    )


def _mth(records: list[tuple[bytes, int]]) -> tuple[bytes, int]:
    """RFC 9162 MTH of a few (hash, sum) records, pairing from the left."""
    while len(records) > 1:
        nxt = [node_raw(records[t], records[t + 1]) for t in range(0, len(records) - 1, 2)]
        if len(records) & 1:
            nxt.append(records[-1])
        records = nxt
    return records[0]


def _fill(
    levels: list[npt.NDArray[Any]],
    i: int,
    *,
    j: int,
    lvl: int,
    size: int,
    edges: dict[int, tuple[bytes, int]],
) -> None:
    """Node j of stored level i (tree level lvl), which no bucket holds: from the leaves
    at the bucket edges (the lowest stored level) or from its children below."""
    if i == 0:
        first = j << lvl
        try:
            kids = [edges[q] for q in range(first, min(first + (1 << lvl), size))]
        except KeyError as e:
            raise InputError(f"leaf {e} is missing at a bucket edge", where="buckets") from e
        h, total = _mth(kids)
    else:
        below = levels[i - 1]
        lh, llo, lhi = below[2 * j].item()
        if 2 * j + 1 < len(below):
            rh, rlo, rhi = below[2 * j + 1].item()
            h, total = node_raw((lh, llo | lhi << 64), (rh, rlo | rhi << 64))
        else:  # an odd last node is carried up (RFC 9162 §2.1.1 shape)
            h, total = lh, llo | lhi << 64
    levels[i][j] = (h, total & 0xFFFF_FFFF_FFFF_FFFF, total >> 64)


def assemble_levels(
    size: int, buckets: Sequence[BucketLevels], *, low: int
) -> tuple[list[npt.NDArray[Any]], Node]:
    """Step 4 for a tree that serves proofs: every stored level from `low` to the root,
    as mst_build.build stores them, from the buckets' runs; the nodes no bucket holds
    (across bucket edges and above the largest subtrees: O(buckets · log n) of them)
    hashed here from their children. Returns (levels, root); the root is checked
    against `mst.merge_subtree_roots` of the buckets' subtrees."""
    if size == 0:
        return [], EMPTY_ROOT
    top = max(low, (size - 1).bit_length())
    levels = [np.zeros(-(-size >> lvl), STORED_LEVEL) for lvl in range(low, top + 1)]
    filled = [np.zeros(len(lv), np.bool_) for lv in levels]
    edges: dict[int, tuple[bytes, int]] = {}
    at = 0
    for b in buckets:
        if b.start != at:
            raise InputError(f"bucket starts at {b.start}, expected {at}", where="buckets")
        at += b.size
        for i, (first, run) in enumerate(b.runs):
            levels[i][first : first + len(run)] = run
            filled[i][first : first + len(run)] = True
        for pos, (h, lo, hi) in b.edges:
            edges[pos] = (bytes(h), int(lo) | int(hi) << 64)
    if at != size:
        raise InputError(f"the buckets hold {at} of {size} leaves", where="buckets")
    for i, lvl in enumerate(range(low, top + 1)):
        for j in np.flatnonzero(~filled[i]).tolist():
            _fill(levels, i, j=j, lvl=lvl, size=size, edges=edges)
    root = _node_of(levels[-1][0])
    merged = merge_subtree_roots(size, [s for b in buckets for s in b.subtrees])
    if merged != root:  # cannot happen; two roots of one tree must never be published
        raise InputError(f"assembled root {root} differs from the merged root {merged}")
    return levels, root


def duplicate_salt_rows(pieces: Sequence[npt.NDArray[Any]]) -> list[tuple[int, int]]:
    """Input rows whose salts share their first 8 bytes, pairwise (first, second): the
    candidates for a duplicate account (equal accounts get equal salts in a round). The
    caller compares the accounts themselves; distinct accounts collide here with odds of
    about n²/2^65."""
    keys = np.concatenate(list(pieces)) if pieces else np.empty(0, SALT_KEY)
    if len(keys) < 2:
        return []
    values = np.sort(keys["key"])  # a plain uint64 sort; the rows only for the few equal
    repeated = np.unique(values[1:][values[1:] == values[:-1]])
    out: list[tuple[int, int]] = []
    for value in repeated.tolist():
        rows = sorted(keys["row"][keys["key"] == value].tolist())
        out.extend((rows[0], r) for r in rows[1:])
    return out


def _column_arrays(
    accounts: AccountColumn | ColumnParts, balances: BalanceWords | ColumnParts
) -> tuple[int, Any, Any, Any, Any, int, Callable[[int], str]]:
    """(rows, blob, offsets, lo, hi, exact total, account of a row) of the input columns:
    one column as it is, or several chains' columns (ColumnParts) as Pieces, never
    joined (as mst_build.build keeps them)."""
    if not isinstance(accounts, ColumnParts) and not isinstance(balances, ColumnParts):
        blob = np.frombuffer(accounts.blob, np.uint8, int(accounts.offsets[-1])).data
        total = exact_total(balances.lo, balances.hi)
        return (
            len(accounts),
            blob,
            accounts.offsets,
            balances.lo,
            balances.hi,
            total,
            (accounts.account),
        )
    if accounts is not balances:
        raise InputError("ColumnParts come as both accounts and balances", where="columns")
    assert isinstance(accounts, ColumnParts)
    ids, offsets = accounts.ids()
    lo, hi, total = accounts.words()
    return accounts.rows, ids, offsets, lo, hi, total, accounts.account


def assemble_tree(
    *,
    accounts: AccountColumn | ColumnParts,
    balances: BalanceWords | ColumnParts,
    salts: bytes,
    order: U64 | U32,
    account_keys: U32,
    buckets: Sequence[BucketLevels],
    low: int = DEFAULT_PARAMS.low_levels,
) -> TreeArrays:
    """Step 4 for a tree that serves proofs: the TreeArrays of the whole tree, from the
    input columns (in input order: one column, or several chains' columns as ColumnParts
    given as both `accounts` and `balances`, which the tree keeps as Pieces without
    joining them), the buckets' input rows in leaf order one after another (`order`, 64-
    or 32-bit), every row's account key, and the buckets' levels.
    DuplicateAccountError when an account appears twice (as mst_build.build)."""
    n, blob, offsets, lo, hi, total, account = _column_arrays(accounts, balances)
    if len(lo) != n or len(salts) != n * SALT_SIZE or len(order) != n:
        raise InputError(f"columns of different lengths for {n} leaves", where="columns")
    if len(account_keys) != n:
        raise InputError(f"{len(account_keys)} account keys for {n} leaves", where="account_keys")
    order32 = np.asarray(order, dtype=np.uint32)  # no copy when 32-bit already
    rows = np.arange(n, dtype=np.uint32)
    position = np.empty(n, np.uint32)
    position[order32] = rows
    packed = np.empty(n, np.uint64)  # key << 32 | row
    if sys.byteorder == "little":  # the two halves written where they lie
        halves = packed.view(np.uint32).reshape(n, 2)
        halves[:, 0], halves[:, 1] = rows, account_keys
    else:
        np.left_shift(account_keys.astype(np.uint64), np.uint64(32), out=packed)
        np.bitwise_or(packed, rows, out=packed)
    del rows
    akeys, apos = account_index(packed, position, account)
    levels, root = assemble_levels(n, buckets, low=low)
    if root.sum != total:  # cannot happen; a wrong sum must never be published
        raise AmountError(f"root sum {root.sum} differs from the total {total}")
    return TreeArrays(
        n=n,
        low=low,
        blob=blob,
        offsets=offsets,
        salts=salts,
        lo=lo,
        hi=hi,
        order=order32,
        akeys=akeys,
        apos=apos,
        levels=levels,
        root=root,
    )


__all__ = [
    "MAX_BUCKET_BITS",
    "PIECE",
    "PIECE_LOW",
    "SALT_KEY",
    "BucketLevels",
    "Partition",
    "assemble_levels",
    "assemble_tree",
    "bucket_levels",
    "bucket_starts",
    "duplicate_salt_rows",
    "hash_partition",
    "sort_bucket",
    "subtree_roots",
]
