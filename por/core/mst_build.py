"""The build engine of por-mst-v1 trees: columns of leaves in, numpy arrays of levels out.

`build` hashes the leaves and every level above them exactly as `por.core.mst` defines
them, and returns the arrays a `por.core.sumtree.SumTree` serves proofs from. The rules
live in `mst`; this module only makes them fast, and `BuildParams` holds its knobs.

How the build stays near the cost of hashing alone: leaves live in columns (one ASCII
blob of newline-terminated account ids with offsets, one buffer of salts, balances as
two uint64 words); preimages are laid out with numpy, turned into bytes objects by numpy
(or bytes.split) and hashed by map() over hashlib in C, a few thousand at a time. Leaf
order and the account index come from sorting packed (32-bit hash prefix, row) words.
Levels below `BuildParams.low_levels` are not kept: a proof recomputes its 4-leaf chunk
(11 hashes), which keeps 10^7 leaves under 2 GB. Figures: docs/sumtree.md, bench/tree.py.

Pure apart from one thing: `workers > 1` forks worker processes (CPU only, results
through anonymous shared memory). No network, disk, environment, clock or randomness.
"""

from __future__ import annotations

import hashlib
import mmap
import multiprocessing
import sys
import threading
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import accumulate, islice
from types import ModuleType
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

from por.core.amounts import MAX_AMOUNT_EXCLUSIVE, check_amount
from por.core.mst import (
    ACCOUNT_MAX_CHARS,
    EMPTY_ROOT,
    HASH_SIZE,
    LEAF_PREIMAGE_SIZE,
    NODE_PREIMAGE_SIZE,
    SALT_SIZE,
    DuplicateAccountError,
    Node,
    check_account,
    check_bytes,
)
from por.errors import AmountError, InputError

_native: ModuleType | None
try:  # the C kernel (setup.py); without it every hash goes through hashlib
    from por.core import _mstkernel as _native
except ImportError:  # pragma: no cover - exercised where the extension is not built
    _native = None

NATIVE: str | None = None if _native is None else f"native kernel, {_native.SHA256_IMPL}"
"""Which hashing path `build` takes by default: the C kernel over OpenSSL's SHA-256 (this
names the library), or None when the extension is not built and hashlib is used."""

_sha256 = hashlib.sha256
_digest = type(_sha256()).digest  # unbound, so map() can call it without a Python loop

U32: TypeAlias = npt.NDArray[np.uint32]
U64: TypeAlias = npt.NDArray[np.uint64]
U8: TypeAlias = npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildParams:
    """The engine's tuning. The defaults are what the service uses (bench/tree.py); tests
    shrink them so small trees cross every chunk, batch, block and worker boundary.

    None of them changes a root or a proof; `low_levels` changes the tree file (it is
    recorded in its header).
    """

    low_levels: int = 2
    """Levels 0..low_levels-1 are recomputed per proof instead of stored."""
    chunk: int = 1 << 12
    """Leaves per pipeline chunk while validating ids and hashing leaves."""
    hash_batch: int = 1 << 11
    """Rows per hashlib batch (see hash_rows)."""
    block_log: int = 16
    """Subtrees of 2^block_log leaves are hashed bottom-up one at a time."""
    parallel_min: int = 1 << 16
    """Fewer leaves than this: workers are not worth a fork."""
    cached_nodes: int = 1 << 12
    """Stored levels of up to this many nodes are kept as ready Node objects for proofs."""
    native: bool = True
    """Hash with the C kernel when it is built (NATIVE); False forces the hashlib path,
    which gives the same roots (tests compare the two)."""

    def __post_init__(self) -> None:
        for name in ("low_levels", "chunk", "hash_batch", "block_log", "parallel_min"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"must be a positive integer, got {value!r}", where=name)
        cached = self.cached_nodes
        if isinstance(cached, bool) or not isinstance(cached, int) or cached < 0:
            raise InputError(
                f"must be a non-negative integer, got {cached!r}", where="cached_nodes"
            )
        if not self.low_levels <= self.block_log <= 32:
            raise InputError(
                f"block_log {self.block_log} must be in [low_levels {self.low_levels}, 32]",
                where="block_log",
            )


DEFAULT_PARAMS = BuildParams()

# A stored level: one 48-byte record per node, so a proof's sibling is one cache line
# and one .item() call -> (hash bytes, low word, high word).
STORED_LEVEL = np.dtype([("hash", f"V{HASH_SIZE}"), ("lo", "<u8"), ("hi", "<u8")])


class Pieces:
    """Consecutive 1-D arrays read as one column of len(self) rows, never joined.

    A tree built from several chains' columns keeps them as they came: joining them
    (account ids, offsets, balance words: ~0.8 GB at 10^7 holders) costs a second of
    first-touch page faults on a VM and doubles the memory for a moment. Row i of the
    whole is ``arrays[k][i - starts[k]] + adds[k]``, k the piece holding row i; `adds`
    rebases each chain's account offsets onto the ids of all chains one after another.
    Reads only: `item`, `take`, `span` (a row range inside one piece, or joined across
    pieces), `chunks` (the whole, rebased, in pieces of bounded size) and `joined`.
    """

    __slots__ = ("adds", "arrays", "dtype", "ends", "starts")

    def __init__(self, arrays: Sequence[npt.NDArray[Any]], adds: Sequence[int] = ()) -> None:
        if not arrays:
            raise InputError("no pieces", where="columns")
        self.arrays = [np.asarray(a) for a in arrays]
        self.dtype = self.arrays[0].dtype
        if any(a.ndim != 1 or a.dtype != self.dtype for a in self.arrays):
            raise InputError("pieces must be 1-D arrays of one dtype", where="columns")
        self.adds = [int(x) for x in adds] if adds else [0] * len(self.arrays)
        if len(self.adds) != len(self.arrays):
            raise InputError("one add per piece", where="columns")
        sizes = np.array([len(a) for a in self.arrays], np.int64)
        self.ends = np.cumsum(sizes)
        self.starts = self.ends - sizes

    def __len__(self) -> int:
        return int(self.ends[-1])

    @property
    def nbytes(self) -> int:
        return len(self) * self.dtype.itemsize

    def _piece(self, i: int) -> int:
        k = int(np.searchsorted(self.ends, i, side="right"))
        if not 0 <= i < len(self) or k >= len(self.arrays):
            raise IndexError(f"row {i} is not in [0, {len(self)})")
        return k

    def item(self, i: int) -> int:
        k = self._piece(i)
        value: int = self.arrays[k].item(i - int(self.starts[k])) + self.adds[k]
        return value

    def span(self, start: int, stop: int) -> npt.NDArray[Any]:
        """Rows [start, stop): a view when they lie in one piece without an add, else a
        new array."""
        if not 0 <= start <= stop <= len(self):
            raise IndexError(f"rows [{start}, {stop}) are not in [0, {len(self)}]")
        if start == stop:
            return self.arrays[0][:0]
        k = self._piece(start)
        a, end = int(self.starts[k]), int(self.ends[k])
        if stop <= end and not self.adds[k]:
            return self.arrays[k][start - a : stop - a]
        out = []
        while start < stop:
            k = self._piece(start)
            a, end = int(self.starts[k]), int(self.ends[k])
            e = min(stop, end)
            part = self.arrays[k][start - a : e - a]
            out.append(part + self.dtype.type(self.adds[k]) if self.adds[k] else part)
            start = e
        return np.concatenate(out)

    def take(self, idx: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """The rows `idx` (any integer array), like ndarray[idx]."""
        idx = np.asarray(idx, np.int64)
        if len(idx) and (int(idx.min()) < 0 or int(idx.max()) >= len(self)):
            raise IndexError(f"a row of idx is not in [0, {len(self)})")
        k = np.searchsorted(self.ends, idx, side="right")
        out = np.empty(len(idx), self.dtype)
        for j, arr in enumerate(self.arrays):
            sel = np.flatnonzero(k == j)
            if len(sel):
                got = arr[idx[sel] - self.starts[j]]
                out[sel] = got + self.dtype.type(self.adds[j]) if self.adds[j] else got
        return out

    def chunks(self, rows: int = 1 << 20) -> Iterator[npt.NDArray[Any]]:
        """The whole, in order: the pieces themselves where they need no add, else rebased
        copies of at most `rows` rows each."""
        for arr, add in zip(self.arrays, self.adds, strict=True):
            if not add:
                yield arr
                continue
            for s in range(0, len(arr), rows):
                yield arr[s : s + rows] + self.dtype.type(add)

    def joined(self) -> npt.NDArray[Any]:
        """One array of every row (a copy)."""
        return np.concatenate(list(self.chunks()))

    def freeze(self) -> None:
        for arr in self.arrays:
            arr.flags.writeable = False


def as_array(col: npt.NDArray[Any] | Pieces) -> npt.NDArray[Any]:
    """An ndarray of the column (joined, for the few readers that need one array)."""
    return col.joined() if isinstance(col, Pieces) else col


def take_rows(col: npt.NDArray[Any] | Pieces, idx: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """col[idx] for an array or Pieces."""
    return col.take(idx) if isinstance(col, Pieces) else col[idx]


@dataclass(frozen=True, slots=True, kw_only=True)
class TreeArrays:
    """What a SumTree holds: leaf data in input order, the leaf order, the account index,
    the stored levels and the root. Made by `build` or loaded from a tree file."""

    n: int
    low: int  # the lowest stored level
    blob: Any  # bytes-like or uint8 Pieces: ASCII ids in input order, each + "\n"
    offsets: U64 | Pieces  # n + 1 offsets of the ids in blob
    salts: Any  # bytes-like: n * 32
    lo: U64 | Pieces  # balance words
    hi: U64 | Pieces
    order: U32  # leaf position -> input row
    akeys: U32  # first 4 bytes of H(account), sorted
    apos: U32  # the leaf position of each akeys entry
    levels: list[npt.NDArray[Any]]  # STORED_LEVEL arrays from `low` up to the root
    root: Node


# --- hashing rows ------------------------------------------------------------------------


def hash_rows(rows: U8, batch: int) -> bytes:
    """SHA-256 of every row of a C-contiguous (m, w) uint8 array, digests concatenated.

    The loop runs in C (map over hashlib) on rows turned into bytes by numpy; slices of
    at most `batch` rows keep the short-lived bytes objects in reused memory (bigger
    batches make the allocator return and re-fault pages, costing ~30% more).
    """
    m, w = rows.shape
    void = rows.view(f"V{w}").reshape(m)
    sha, digest = _sha256, _digest
    return b"".join(
        [b"".join(map(digest, map(sha, void[s : s + batch].tolist()))) for s in range(0, m, batch)]
    )


def _be_bytes(words: U64) -> U8:
    """uint64 words as (m, 8) big-endian bytes."""
    return words.astype(">u8").view(np.uint8).reshape(-1, 8)


# A level inside the build is a record array: row i = hash (32) || u256(sum) (32, big-endian),
# so a node's preimage is 0x01 followed by two neighbouring rows, one contiguous 128 bytes.
# The sums are also kept as uint64 (low, high) words for exact arithmetic.


def stored_bytes(level: npt.NDArray[Any]) -> U8:
    """A stored level as (m, 48) bytes: [:, :32] is the hashes."""
    return level.view(np.uint8).reshape(len(level), STORED_LEVEL.itemsize)


def _records(hashes: U8, lo: U64, hi: U64 | None) -> U8:
    """Level records from hashes and sum words (hi None: every sum fits the low word)."""
    rec = np.empty((len(lo), 2 * HASH_SIZE), np.uint8)
    rec[:, :32] = hashes
    if hi is None:
        rec[:, 32:56] = 0
    else:
        rec[:, 32:48] = 0
        rec[:, 48:56] = _be_bytes(hi)
    rec[:, 56:64] = _be_bytes(lo)
    return rec


def _reduce(rec: U8, lo: U64, hi: U64 | None, batch: int) -> tuple[U8, U64, U64 | None]:
    """One level up: pair neighbours, carry an odd last node up unchanged.

    Pairing from the left and carrying the odd node gives exactly the RFC 9162 §2.1.1
    shape (the left subtree holds the largest power of two), and never duplicates a node.
    `hi` None means the caller knows every sum fits one word (the total is below 2^64).
    """
    m = len(lo)
    p = m >> 1
    odd = m & 1
    out = np.empty((p + odd, 2 * HASH_SIZE), np.uint8)
    out_lo = np.empty(p + odd, np.uint64)
    out_hi = None if hi is None else np.empty(p + odd, np.uint64)
    if p:
        pre = np.empty((p, NODE_PREIMAGE_SIZE), np.uint8)
        pre[:, 0] = 1
        pre[:, 1:] = rec[: 2 * p].reshape(p, 4 * HASH_SIZE)
        out[:p, :32] = np.frombuffer(hash_rows(pre, batch), np.uint8).reshape(p, HASH_SIZE)
        # 128-bit addition in two words; the caller checked the exact total < 2^127, so
        # no partial sum can reach it — checked again here because it costs nothing.
        llo = lo[0 : 2 * p : 2]
        slo = llo + lo[1 : 2 * p : 2]
        if hi is None or out_hi is None:
            out[:p, 32:56] = 0
        else:
            shi = hi[0 : 2 * p : 2] + hi[1 : 2 * p : 2] + (slo < llo)
            if int(shi.max()) >= 2**63:
                raise AmountError("a partial sum reaches 2^127", where="balances")
            out[:p, 32:48] = 0
            out[:p, 48:56] = _be_bytes(shi)
            out_hi[:p] = shi
        out[:p, 56:64] = _be_bytes(slo)
        out_lo[:p] = slo
    if odd:
        out[p] = rec[m - 1]
        out_lo[p] = lo[m - 1]
        if hi is not None and out_hi is not None:
            out_hi[p] = hi[m - 1]
    return out, out_lo, out_hi


# --- worker processes ----------------------------------------------------------------------


class _Shared:
    """Arrays that forked workers write and the parent reads (anonymous shared memory)."""

    def __init__(self, shared: bool) -> None:
        self.shared = shared

    def empty(self, shape: tuple[int, ...], dtype: Any, *, zero: bool = False) -> Any:
        count = int(np.prod(shape))
        if not self.shared or count == 0:
            return np.zeros(shape, dtype) if zero else np.empty(shape, dtype)
        buf = mmap.mmap(-1, count * np.dtype(dtype).itemsize)
        return np.frombuffer(buf, dtype, count).reshape(shape)


def _fork_available() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def _worker_main(fn: Callable[[int, int], None], start: int, stop: int, conn: Any) -> None:
    try:
        fn(start, stop)
    except BaseException as e:  # report everything; the parent re-raises it
        try:
            conn.send(e)
        except Exception:
            conn.send(RuntimeError(f"worker failed: {e!r}"))
    else:
        conn.send(None)
    finally:
        conn.close()


def _run_shares(
    fn: Callable[[int, int], None], count: int, workers: int, *, threads: bool = False
) -> None:
    """Run fn(start, stop) over [0, count) in `workers` contiguous shares.

    threads=True (fn is the C kernel, which releases the GIL): shares 1.. run in threads.
    Else shares 1.. run in forked children (they inherit the inputs without copying) and
    fn writes its results into _Shared arrays. Share 0 runs here.
    """
    bounds = [count * w // workers for w in range(workers + 1)]
    if workers == 1:
        fn(0, count)
        return
    if threads:
        errors: list[BaseException] = []

        def run(a: int, b: int) -> None:
            try:
                fn(a, b)
            except BaseException as e:  # re-raised in the caller's thread
                errors.append(e)

        pool = [
            threading.Thread(target=run, args=(bounds[w], bounds[w + 1]), name="por-mst")
            for w in range(1, workers)
        ]
        for t in pool:
            t.start()
        run(bounds[0], bounds[1])
        for t in pool:
            t.join()
        if errors:
            raise errors[0]
        return
    ctx = multiprocessing.get_context("fork")
    children = []
    try:
        for w in range(1, workers):
            recv, send = ctx.Pipe(duplex=False)
            proc = ctx.Process(
                target=_worker_main, args=(fn, bounds[w], bounds[w + 1], send), daemon=True
            )
            proc.start()
            send.close()
            children.append((proc, recv))
        fn(bounds[0], bounds[1])
        for proc, recv in children:
            try:
                err = recv.recv()
            except EOFError:
                err = RuntimeError(f"sum-tree worker {proc.pid} died (exit code {proc.exitcode})")
            proc.join()
            if err is not None:
                raise err
    finally:
        for proc, _ in children:
            if proc.is_alive():
                proc.terminate()
                proc.join()


# --- columns -------------------------------------------------------------------------------


def balances_to_words(
    balances: Iterable[int] | npt.NDArray[Any], n: int, *, chunk: int, base: int = 0
) -> tuple[U64, U64]:
    """Balances as (low, high) uint64 words, each checked to be an int in [0, 2^127).

    `base` is added to the index an error names (balances[base + i])."""
    if isinstance(balances, np.ndarray):
        if balances.shape != (n,):
            raise InputError(f"{balances.shape} balances for {n} leaves", where="balances")
        kind = balances.dtype.kind
        if kind not in "iuO" or (balances.dtype.itemsize > 8 and kind != "O"):
            raise AmountError(
                f"balances must be integers, got dtype {balances.dtype}", where="balances"
            )
        if kind == "i" and n and int(balances.min()) < 0:
            first = int(np.flatnonzero(balances < 0)[0])
            check_amount(int(balances[first]), where=f"balances[{base + first}]")
        if kind in "iu":
            return balances.astype(np.uint64), np.zeros(n, np.uint64)
        balances = balances.tolist()
    lo = np.empty(n, np.uint64)
    hi = np.zeros(n, np.uint64)
    it = iter(balances)
    pos = 0
    while True:
        part = list(islice(it, chunk))
        if not part:
            break
        m = len(part)
        if pos + m > n:
            raise InputError(f"more balances than the {n} salts", where="balances")
        if set(map(type, part)) == {int}:
            try:  # the common case: every balance fits one word
                lo[pos : pos + m] = np.fromiter(part, np.uint64, count=m)
                pos += m
                continue
            except OverflowError:  # negative or >= 2^64: take the exact path below
                pass
        for j, b in enumerate(part):
            check_amount(b, where=f"balances[{base + pos + j}]")
            lo[pos + j] = b & 0xFFFF_FFFF_FFFF_FFFF
            hi[pos + j] = b >> 64
        pos += m
    if pos != n:
        raise InputError(f"{pos} balances for {n} salts", where="balances")
    return lo, hi


def exact_total(lo: U64, hi: U64) -> int:
    """The exact sum of all balances (32-bit limbs: fewer than 2^32 terms cannot overflow)."""
    total = 0
    mask = np.uint64(0xFFFF_FFFF)
    step = 1 << 20
    for s in range(0, len(lo), step):
        a, b = lo[s : s + step], hi[s : s + step]
        total += int((a & mask).sum(dtype=np.uint64)) + (int((a >> 32).sum(dtype=np.uint64)) << 32)
        total += (int((b & mask).sum(dtype=np.uint64)) << 64) + (
            int((b >> 32).sum(dtype=np.uint64)) << 96
        )
    return total


def _check_raw(arr: U8, m: int) -> npt.NDArray[np.int64] | None:
    """The m + 1 offsets of m newline-terminated ids in `arr` if every id follows the
    por-mst-v1 rule (vectorised), else None (the caller finds and names the bad one)."""
    newlines = np.flatnonzero(arr == 0x0A)
    if len(newlines) != m or (m and newlines[-1] != len(arr) - 1):
        return None  # some id holds a newline
    offs = np.zeros(m + 1, np.int64)
    offs[1:] = newlines + 1
    if not m:
        return offs
    lens = np.diff(offs) - 1
    # every other byte printable ASCII (0x21..0x7e); exactly two colons per account,
    # neither first, last, nor next to the other
    colons = np.flatnonzero(arr == 0x3A)
    ok = (
        lens.min() >= 1
        and lens.max() <= ACCOUNT_MAX_CHARS
        and int(np.count_nonzero((arr - np.uint8(0x21)) > np.uint8(0x7E - 0x21))) == m
        and len(colons) == 2 * m
    )
    if ok:
        first, second = colons[0::2], colons[1::2]
        ok = bool(((first > offs[:-1]) & (second > first + 1) & (second < newlines - 1)).all())
    return offs if ok else None


def _encode_accounts(
    part: list[Any], base: int, *, where: str = "accounts"
) -> tuple[bytes, npt.NDArray[np.int64]]:
    """Validate a chunk of account ids (vectorised); return their ASCII, each followed by
    a newline, and the chunk-local offsets of the ids (len(part) + 1 of them)."""
    m = len(part)
    offs = None
    try:
        raw = ("\n".join(part) + "\n").encode("ascii")
        offs = _check_raw(np.frombuffer(raw, np.uint8), m)
    except (TypeError, UnicodeEncodeError):
        pass
    if offs is None:
        for j, acct in enumerate(part):
            check_account(acct, where=f"{where}[{base + j}]")
        raise InputError("invalid account id in chunk", where=f"{where}[{base}:]")  # unreachable
    return raw, offs


# --- validated columns ----------------------------------------------------------------------

_CHECKED = object()  # only this module's functions make AccountColumn values


@dataclass(frozen=True, slots=True, eq=False)
class AccountColumn:
    """Account ids, each checked once against the por-mst-v1 rule (`mst.check_account`),
    as one ASCII blob with every id followed by a newline and `offsets` (n + 1 uint64)
    where each id starts. Made only by `encode_accounts` and `AccountColumn.concat`, so
    `build` and `derive_salts` take its ids as checked (one validation per id on the
    service path: reader -> columns -> salts -> tree)."""

    blob: Any  # bytes-like (uint8 array or bytes)
    offsets: U64
    token: object = None

    def __post_init__(self) -> None:
        if self.token is not _CHECKED:
            raise InputError("an AccountColumn is made by encode_accounts", where="accounts")

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def account(self, i: int) -> str:
        raw = self.blob[int(self.offsets[i]) : int(self.offsets[i + 1]) - 1]
        return bytes(raw).decode("ascii")

    def __iter__(self) -> Any:
        """The ids as str, in order."""
        end = int(self.offsets[-1]) if len(self.offsets) else 0
        step = 1 << 16
        for s in range(0, len(self), step):
            e = min(s + step, len(self))
            raw = bytes(self.blob[int(self.offsets[s]) : int(self.offsets[e])])
            yield from raw.decode("ascii").split("\n")[:-1]
        del end

    def take(self, start: int, stop: int) -> AccountColumn:
        """Rows [start, stop) as a column of their own (offsets from 0; the ids a view)."""
        a, b = int(self.offsets[start]), int(self.offsets[stop])
        blob = np.frombuffer(self.blob, np.uint8, b - a, a)
        return AccountColumn(blob, self.offsets[start : stop + 1] - np.uint64(a), _CHECKED)

    @classmethod
    def concat(cls, parts: Sequence[AccountColumn]) -> AccountColumn:
        """The columns one after another (a single part is returned as it is)."""
        for p in parts:
            if not isinstance(p, AccountColumn):
                raise InputError(f"not an AccountColumn: {type(p).__name__}", where="accounts")
        if len(parts) == 1:
            return parts[0]
        n = sum(len(p) for p in parts)
        size = sum(int(p.offsets[-1]) for p in parts)
        blob = np.empty(size, np.uint8)
        offsets = np.zeros(n + 1, np.uint64)
        at = row = 0
        for p in parts:
            m, length = len(p), int(p.offsets[-1])
            blob[at : at + length] = np.frombuffer(p.blob, np.uint8, length)
            offsets[row + 1 : row + m + 1] = p.offsets[1:] + np.uint64(at)
            at, row = at + length, row + m
        return cls(blob, offsets, _CHECKED)


EMPTY_ACCOUNTS = AccountColumn(b"", np.zeros(1, np.uint64), _CHECKED)


def encode_accounts(
    accounts: Iterable[str], *, chunk: int = DEFAULT_PARAMS.chunk, where: str = "accounts"
) -> AccountColumn:
    """Check every id (FormatError naming `where[i]`) and store them as an AccountColumn.

    Vectorised per chunk of ids: one `str.join` and `encode`, then numpy checks of the
    bytes (printable, lengths, exactly two colons, no empty part)."""
    blobs: list[bytes] = []
    offs: list[npt.NDArray[np.int64]] = []
    it = iter(accounts)
    base = at = 0
    while True:
        part = list(islice(it, chunk))
        if not part:
            break
        raw, local = _encode_accounts(part, base, where=where)
        blobs.append(raw)
        offs.append(local[1:] + at)
        base += len(part)
        at += len(raw)
    offsets = np.zeros(base + 1, np.uint64)
    if offs:
        offsets[1:] = np.concatenate(offs)
    return AccountColumn(np.frombuffer(b"".join(blobs), np.uint8), offsets, _CHECKED)


def encode_accounts_raw(data: Any, offsets: Any, *, where: str = "accounts") -> AccountColumn:
    """An AccountColumn from ids laid end to end without separators (`data`, bytes-like)
    and their n + 1 offsets — an Arrow string column's buffers, say — checked as
    `encode_accounts` checks them (FormatError naming `where[i]`), without making n str
    objects."""
    src = np.frombuffer(data, np.uint8) if not isinstance(data, np.ndarray) else data
    starts = np.asarray(offsets, np.int64)
    m = len(starts) - 1
    if m < 0 or (m and (starts[0] < 0 or starts[-1] > len(src) or (np.diff(starts) < 0).any())):
        raise InputError("offsets do not index the id data", where=where)
    body = src[int(starts[0]) : int(starts[-1])] if m else src[:0]
    out = np.empty(len(body) + m, np.uint8)
    ends = starts[1:] - starts[0] + np.arange(1, m + 1)  # one past each id's newline
    keep = np.ones(len(out), np.bool_)
    keep[ends - 1] = False
    out[keep] = body
    out[~keep] = 0x0A
    offs = _check_raw(out, m)
    if offs is None:
        for j in range(m):
            raw = bytes(src[int(starts[j]) : int(starts[j + 1])])
            check_account(raw.decode("latin-1"), where=f"{where}[{j}]")
        raise InputError("invalid account id", where=where)  # unreachable
    return AccountColumn(out, offs.astype(np.uint64), _CHECKED)


@dataclass(frozen=True, slots=True, eq=False)
class BalanceWords:
    """Balances checked to lie in [0, 2^127), as (low, high) uint64 words (`balance_words`)."""

    lo: U64
    hi: U64
    token: object = None

    def __post_init__(self) -> None:
        if self.token is not _CHECKED:
            raise InputError("BalanceWords are made by balance_words", where="balances")

    def __len__(self) -> int:
        return len(self.lo)

    def __getitem__(self, i: int) -> int:
        return int(self.lo[i]) | int(self.hi[i]) << 64

    def take(self, start: int, stop: int) -> BalanceWords:
        """Rows [start, stop) (views)."""
        return BalanceWords(self.lo[start:stop], self.hi[start:stop], _CHECKED)

    @classmethod
    def concat(cls, parts: Sequence[BalanceWords]) -> BalanceWords:
        if len(parts) == 1:
            return parts[0]
        if not parts:
            return cls(np.zeros(0, np.uint64), np.zeros(0, np.uint64), _CHECKED)
        lo = np.concatenate([p.lo for p in parts])
        hi = np.concatenate([p.hi for p in parts])
        return cls(lo, hi, _CHECKED)


def check_part(part: object, *, where: str) -> tuple[AccountColumn, BalanceWords]:
    """`part` as one chain's (AccountColumn, BalanceWords) of equal lengths (InputError)."""
    if not (
        isinstance(part, tuple)
        and len(part) == 2
        and isinstance(part[0], AccountColumn)
        and isinstance(part[1], BalanceWords)
    ):
        raise InputError("not (AccountColumn, BalanceWords)", where=where)
    if len(part[0]) != len(part[1]):
        raise InputError(f"{len(part[0])} accounts and {len(part[1])} balances", where=where)
    return part[0], part[1]


@dataclass(frozen=True, slots=True, eq=False)
class ColumnParts:
    """Several chains' checked columns (ids and balance words), their rows one after
    another as the tree's input rows; `build` hashes each where it lies and the tree
    keeps them as Pieces, so they are never joined into one column."""

    parts: tuple[tuple[AccountColumn, BalanceWords], ...]

    def __post_init__(self) -> None:
        if len(self.parts) < 2:
            raise InputError("ColumnParts holds two parts or more", where="columns")
        for k, part in enumerate(self.parts):
            check_part(part, where=f"columns[{k}]")
            if not len(part[0]):
                raise InputError("a part of no rows", where=f"columns[{k}]")

    @property
    def rows(self) -> int:
        return sum(len(a) for a, _ in self.parts)

    def words(self) -> tuple[Pieces, Pieces, int]:
        """(low words, high words, exact total) of every row."""
        total = sum(exact_total(w.lo, w.hi) for _, w in self.parts)
        return Pieces([w.lo for _, w in self.parts]), Pieces([w.hi for _, w in self.parts]), total

    def ids(self) -> tuple[Pieces, Pieces]:
        """(id bytes, offsets) of every row: each chain's blob as it is, and its offsets
        rebased onto the blobs one after another (plus the end of the last)."""
        blobs, offs, adds = [], [], []
        at = 0
        for col, _ in self.parts:
            length = int(col.offsets[-1])
            blobs.append(np.frombuffer(col.blob, np.uint8, length))
            offs.append(col.offsets[:-1])
            adds.append(at)
            at += length
        return Pieces(blobs), Pieces([*offs, np.array([at], np.uint64)], [*adds, 0])

    def account(self, row: int) -> str:
        """The id of a row of the whole."""
        return row_account([a for a, _ in self.parts])(row)


def row_account(columns: Sequence[AccountColumn]) -> Callable[[int], str]:
    """account(row) over columns whose rows come one after another (for a duplicate's
    error message, where the row is one of the whole)."""
    firsts = list(accumulate((len(c) for c in columns), initial=0))

    def account(row: int) -> str:
        k = bisect_right(firsts, row) - 1
        return columns[k].account(row - firsts[k])

    return account


def balance_words(
    balances: Iterable[int] | npt.NDArray[Any], n: int, *, chunk: int = DEFAULT_PARAMS.chunk
) -> BalanceWords:
    """Check n balances (AmountError naming `balances[i]`) and store them as words."""
    lo, hi = balances_to_words(balances, n, chunk=chunk)
    return BalanceWords(lo, hi, _CHECKED)


def encode_holders(
    items: Iterable[tuple[str, int]], *, chunk: int = DEFAULT_PARAMS.chunk, where: str = "holders"
) -> tuple[AccountColumn, BalanceWords]:
    """(account, balance) pairs, checked once each, streamed into columns in chunks: no
    list of all pairs, no dict of Python ints is kept (a reader's holders at 10^7)."""
    blobs: list[bytes] = []
    offs: list[npt.NDArray[np.int64]] = []
    los: list[U64] = []
    his: list[U64] = []
    it = iter(items)
    base = at = 0
    while True:
        part = list(islice(it, chunk))
        if not part:
            break
        accounts = [a for a, _ in part]
        raw, local = _encode_accounts(accounts, base, where=where)
        lo, hi = balances_to_words([b for _, b in part], len(part), chunk=chunk, base=base)
        blobs.append(raw)
        offs.append(local[1:] + at)
        los.append(lo)
        his.append(hi)
        base += len(part)
        at += len(raw)
    offsets = np.zeros(base + 1, np.uint64)
    if offs:
        offsets[1:] = np.concatenate(offs)
    column = AccountColumn(np.frombuffer(b"".join(blobs), np.uint8), offsets, _CHECKED)
    words = BalanceWords(
        np.concatenate(los) if los else np.zeros(0, np.uint64),
        np.concatenate(his) if his else np.zeros(0, np.uint64),
        _CHECKED,
    )
    return column, words


def derive_salts(
    round_secret: bytes,
    accounts: AccountColumn | Sequence[AccountColumn],
    *,
    workers: int = 1,
    native: bool = True,
) -> bytes:
    """The salts of every account (`mst.derive_salt`: keyed BLAKE2b-256), concatenated;
    of several columns one after another when given a sequence of them (the chains'
    columns, without joining them first).

    The secret is checked once and the ids not at all (an AccountColumn holds checked
    ids). With the C kernel the hashing runs in `workers` threads; else hashlib."""
    key = check_bytes(round_secret, 32, where="round_secret")
    parts = [accounts] if isinstance(accounts, AccountColumn) else list(accounts)
    for part in parts:
        if not isinstance(part, AccountColumn):
            raise InputError(f"not an AccountColumn: {type(part).__name__}", where="accounts")
    n = sum(len(p) for p in parts)
    if native and _native is not None:  # straight into the bytes object, no copy
        salts: bytes = _native.salts_bytes(
            key, [(p.blob, p.offsets) for p in parts], min(workers, n >> 14)
        )
        return salts
    blake = hashlib.blake2b
    out: list[bytes] = []
    step = 1 << 16
    for part in parts:
        for s in range(0, len(part), step):
            e = min(s + step, len(part))
            raw = bytes(part.blob[int(part.offsets[s]) : int(part.offsets[e])])
            ids = raw.split(b"\n")
            ids.pop()
            out.extend(blake(a, key=key, digest_size=32).digest() for a in ids)
    return b"".join(out)


_32 = np.uint64(32)


def _split_packed(packed: U64) -> tuple[U32, U32]:
    """(high, low) 32-bit halves of each uint64."""
    if sys.byteorder == "little":  # views and one copy each, no 64-bit temporaries
        halves = packed.view(np.uint32).reshape(-1, 2)
        return np.ascontiguousarray(halves[:, 1]), np.ascontiguousarray(halves[:, 0])
    return (packed >> _32).astype(np.uint32), (packed & np.uint64(0xFFFF_FFFF)).astype(np.uint32)


_STEP = 1 << 20  # rows per slice when indexing with a 32-bit index (numpy makes it intp)


def account_index(
    packed: U64, position: U32, account: Callable[[int], str], *, presorted: bool = False
) -> tuple[U32, U32]:
    """The account index of a tree: the first 4 bytes of every H(account) sorted, with the
    leaf position of each; DuplicateAccountError when an account appears twice.

    `packed` holds (first 4 bytes of H(account), big-endian) << 32 | input row, one per
    row (sorted in place unless `presorted`); `position` maps an input row to its leaf
    position; `account(row)` gives an id back where two prefixes are equal."""
    if not presorted:
        packed.sort()
    if sys.byteorder == "little":  # the input rows stay a strided view (no copy)
        halves = packed.view(np.uint32).reshape(-1, 2)
        keys, inputs = np.ascontiguousarray(halves[:, 1]), halves[:, 0]
    else:
        keys, inputs = _split_packed(packed)
    same = np.flatnonzero(keys[1:] == keys[:-1])
    if len(same):  # equal 32-bit prefixes: compare the accounts themselves
        dup: tuple[int, int, str] | None = None
        groups: dict[int, list[int]] = {}
        for p in same.tolist():
            groups.setdefault(int(keys[p]), []).extend((int(inputs[p]), int(inputs[p + 1])))
        for members in groups.values():
            seen: dict[str, int] = {}
            for i in sorted(set(members)):
                a = account(i)
                if a in seen and (dup is None or i < dup[1]):
                    dup = (seen[a], i, a)
                seen.setdefault(a, i)
        if dup is not None:
            raise duplicate_account(*dup)
    n = len(packed)
    apos = np.empty(n, np.uint32)
    for s in range(0, n, _STEP):
        apos[s : s + _STEP] = position[inputs[s : s + _STEP]]
    return keys, apos


def duplicate_account(first: int, second: int, account: str) -> DuplicateAccountError:
    """The error for `account` at input rows `first` and `second`."""
    err = DuplicateAccountError(
        f"duplicate account {account!r} (leaves {first} and {second}); "
        "an account appears at most once",
        where=f"accounts[{second}]",
    )
    err.account, err.index, err.first_index = account, second, first
    return err


# --- the build -----------------------------------------------------------------------------


class _RowFeed:
    """Rows [0, n) handed out in slices to the threads that hash leaves with the C kernel
    while the caller's thread is still validating ids (GIL-bound) and publishing them.

    `run(workers)` starts workers - 1 threads, calls `feed()` (which publishes rows as
    they are stored), then hashes alongside them until every row is taken."""

    def __init__(self, fn: Callable[[int, int], None], n: int, step: int) -> None:
        self.fn, self.n, self.step = fn, n, step
        self.ready = self.taken = 0
        self.closed = False
        self.inline = False  # one worker: the caller hashes each chunk as it publishes it
        self.cond = threading.Condition()
        self.errors: list[BaseException] = []

    def publish(self, ready: int) -> None:
        if self.inline:  # while the chunk is still in cache
            self.fn(self.taken, ready)
            self.taken = self.ready = ready
            return
        with self.cond:
            self.ready = ready
            self.cond.notify_all()

    def _work(self) -> None:
        while True:
            with self.cond:
                # whole slices only, until the feed is closed: each time this thread
                # comes back for the GIL it may wait a switch interval (5 ms)
                while self.ready - self.taken < self.step and not self.closed:
                    self.cond.wait()
                if self.taken >= self.ready or self.errors:
                    return
                s = self.taken
                e = self.taken = min(self.ready, s + self.step)
            try:
                self.fn(s, e)
            except BaseException as err:  # re-raised in the caller's thread
                with self.cond:
                    self.errors.append(err)
                    self.closed = True
                    self.cond.notify_all()
                return

    def run(self, workers: int, feed: Callable[[], None]) -> None:
        self.inline = workers == 1
        threads = [threading.Thread(target=self._work, name="por-mst") for _ in range(workers - 1)]
        for t in threads:
            t.start()
        try:
            feed()
        finally:
            with self.cond:
                self.closed = True
                self.cond.notify_all()
            self._work()
            for t in threads:
                t.join()
        if self.errors:
            raise self.errors[0]


class _Builder:
    """The state of one build; its methods run in the parent or in forked workers."""

    def __init__(
        self,
        n: int,
        salts: bytes,
        lo: U64 | Pieces,
        hi: U64 | Pieces,
        *,
        workers: int,
        params: BuildParams,
        one_word: bool,
        native: bool,
    ) -> None:
        self.n = n
        self.native = native  # hash with the C kernel, in threads
        self.one_word = one_word  # the total is below 2^64: no high words to carry
        self.salts = salts
        self.salt_rows = np.frombuffer(salts, np.uint8).reshape(n, SALT_SIZE)
        self.lo = lo
        self.hi = hi
        self.workers = workers
        self.low = params.low_levels
        self.chunk = params.chunk
        self.batch = params.hash_batch
        self.block_log = params.block_log
        self.shared = _Shared(workers > 1 and not native)
        self._scratch = threading.local()  # per-thread buffers of the native block loop
        self.blob: U8 | Pieces = np.empty(0, np.uint8)  # account ids, each + "\n"; grown
        self.blob_len = 0
        self.offsets: U64 | Pieces = np.zeros(n + 1, np.uint64)
        # the chains' columns when built from several (take_parts): (first row, column,
        # low words, high words), hashed where they lie, never joined
        self.parts: list[tuple[int, AccountColumn, U64, U64]] = []
        self.leaf_hashes: U8 = self.shared.empty((n, HASH_SIZE), np.uint8)
        # sort keys written while hashing, while the chunk is in cache:
        # (first 4 bytes of the hash, big-endian) << 32 | input row
        self.account_packed: U64 = self.shared.empty((n,), np.uint64)
        self.leaf_packed: U64 = self.shared.empty((n,), np.uint64)
        self._pre = np.zeros((0, LEAF_PREIMAGE_SIZE), np.uint8)
        self._block_pres: list[U8] = []  # node preimage buffers of _full_block, per level

    # --- leaves ---------------------------------------------------------------------
    def _leaf_chunk(self, s: int, e: int, raw: bytes, lo: U64, hi: U64) -> None:
        """Leaves [s, e); `raw` holds their account ids, each followed by a newline, and
        `lo`, `hi` their balance words."""
        m = e - s
        ids = raw.split(b"\n")  # bytes objects made in C: the cheapest hashlib inputs
        ids.pop()
        digests = b"".join(map(_digest, map(_sha256, ids)))
        a = np.frombuffer(digests, np.uint8).reshape(m, HASH_SIZE)
        rows = np.arange(s, e, dtype=np.uint64)
        self.account_packed[s:e] = (a.view(">u4")[:, 0].astype(np.uint64) << _32) | rows
        if len(self._pre) != m:
            self._pre = np.zeros((m, LEAF_PREIMAGE_SIZE), np.uint8)
        pre = self._pre  # byte 0 (tag 0x00) and bytes 65..80 (u256 high zeros) stay zero
        pre[:, 1:33] = self.salt_rows[s:e]
        pre[:, 33:65] = a
        if not self.one_word:  # else bytes 81..88 stay zero
            pre[:, 81:89] = _be_bytes(hi)
        pre[:, 89:97] = _be_bytes(lo)
        leaves = np.frombuffer(hash_rows(pre, self.batch), np.uint8).reshape(m, HASH_SIZE)
        self.leaf_hashes[s:e] = leaves
        self.leaf_packed[s:e] = (leaves.view(">u4")[:, 0].astype(np.uint64) << _32) | rows

    def _append_blob(self, raw: bytes, rows: int, rows_left: int) -> None:
        assert isinstance(self.blob, np.ndarray)
        end = self.blob_len + len(raw)
        if end > len(self.blob):
            # room for the rest at this chunk's bytes per id plus a quarter: usually one
            # allocation per build (a growing bytearray costs ~1 s of page faults at 10^7;
            # numpy asks the kernel for huge pages)
            room = end + int(len(raw) / rows * rows_left * 1.25) + (1 << 16)
            grown = np.empty(room, np.uint8)
            grown[: self.blob_len] = self.blob[: self.blob_len]
            self.blob = grown
        self.blob[self.blob_len : end] = np.frombuffer(raw, np.uint8)
        self.blob_len = end

    def ingest_accounts(
        self, accounts: Iterable[str], hash_now: bool, rows: _RowFeed | None = None
    ) -> None:
        """Validate and store the account ids; with one worker hash the leaves meanwhile
        (hash_now), or hand each stored chunk to the threads hashing behind (rows)."""
        it = iter(accounts)
        pos = 0
        n = self.n
        while pos < n:
            part = list(islice(it, min(self.chunk, n - pos)))
            if not part:
                break
            raw, local = _encode_accounts(part, pos)
            e = pos + len(part)
            assert isinstance(self.offsets, np.ndarray)
            self.offsets[pos + 1 : e + 1] = local[1:] + self.blob_len
            self._append_blob(raw, e - pos, n - e)
            if hash_now:
                assert isinstance(self.lo, np.ndarray) and isinstance(self.hi, np.ndarray)
                self._leaf_chunk(pos, e, raw, self.lo[pos:e], self.hi[pos:e])
            if rows is not None:
                rows.publish(e)
            pos = e
        if pos != n or next(it, None) is not None:
            raise InputError(f"the number of accounts differs from the {n} salts", where="accounts")

    def leaves(self, accounts: Iterable[str] | AccountColumn | ColumnParts) -> None:
        """Store the ids (checking them unless they come as an AccountColumn or in
        ColumnParts) and hash every leaf: in C on `workers` threads — behind the
        validation of streamed ids — or with hashlib, in this process or in forked
        workers."""
        n, workers = self.n, self.workers
        if isinstance(accounts, (AccountColumn, ColumnParts)):
            if isinstance(accounts, ColumnParts):
                self.take_parts(accounts)
            else:
                self.take_accounts(accounts)
            if self.native:
                _run_shares(self.native_leaves, n, workers, threads=True)
            else:
                _run_shares(self.hash_leaves, n, workers)
        elif self.native:  # hash behind the validation, in the other threads, then here
            feed = _RowFeed(self.native_leaves, n, step=1 << 17)
            feed.run(workers, lambda: self.ingest_accounts(accounts, hash_now=False, rows=feed))
        else:
            self.ingest_accounts(accounts, hash_now=workers == 1)
            if workers > 1 and n:
                _run_shares(self.hash_leaves, n, workers)

    def levels_over(self, order: U32) -> None:
        """Every stored level, from the leaves in `order` up to the root."""
        self.plan_levels(order)
        blocks = -(-self.n >> self.block_log)
        if self.native:
            _run_shares(self.native_blocks, blocks, min(self.workers, blocks), threads=True)
        else:
            _run_shares(self.hash_blocks, blocks, self.workers if blocks >= 2 else 1)
        del self.leaf_hashes
        if self.native:
            self.native_finish_levels()
        else:
            self.finish_levels()

    def take_parts(self, parts: ColumnParts) -> None:
        """The chains' checked columns as they are: ids, offsets and balance words read
        as Pieces (rebased offsets), each chain's rows hashed where they lie."""
        if parts.rows != self.n:
            raise InputError(f"{parts.rows} accounts for the {self.n} salts", where="accounts")
        assert isinstance(self.lo, Pieces) and isinstance(self.hi, Pieces)
        base = 0
        for (col, _), lo, hi in zip(parts.parts, self.lo.arrays, self.hi.arrays, strict=True):
            self.parts.append((base, col, lo, hi))
            base += len(col)
        self.blob, self.offsets = parts.ids()
        self.blob_len = len(self.blob)

    def take_accounts(self, column: AccountColumn) -> None:
        """Checked ids from an AccountColumn (no second validation)."""
        if len(column) != self.n:
            raise InputError(f"{len(column)} accounts for the {self.n} salts", where="accounts")
        self.blob = np.frombuffer(column.blob, np.uint8, int(column.offsets[-1]))
        self.blob_len = len(self.blob)
        self.offsets = column.offsets

    def _part_ranges(
        self, start: int, stop: int
    ) -> Iterator[tuple[int, int, int, AccountColumn, U64, U64]]:
        """(first row, local start, local stop, column, lo, hi) of each part in
        [start, stop)."""
        for base, col, lo, hi in self.parts:
            a, b = max(start, base), min(stop, base + len(col))
            if a < b:
                yield base, a - base, b - base, col, lo, hi

    def native_leaves(self, start: int, stop: int) -> None:
        """Leaf hashes and both sort keys of rows [start, stop) in C (thread entry point)."""
        assert _native is not None
        if self.parts:
            salts = memoryview(self.salts)
            for base, a, b, col, lo, hi in self._part_ranges(start, stop):
                _native.leaf_pass(
                    col.blob,
                    col.offsets,
                    salts[SALT_SIZE * base :],
                    lo,
                    None if self.one_word else hi,
                    a,
                    b,
                    self.leaf_hashes[base:],
                    self.leaf_packed[base:],
                    self.account_packed[base:],
                    base,
                )
            return
        _native.leaf_pass(
            self.blob,
            self.offsets,
            self.salts,
            self.lo,
            None if self.one_word else self.hi,
            start,
            stop,
            self.leaf_hashes,
            self.leaf_packed,
            self.account_packed,
        )

    def hash_leaves(self, start: int, stop: int) -> None:
        """Leaf hashes of [start, stop) from the stored account blob (worker entry point)."""
        chunk = self.chunk
        if self.parts:
            for base, a, b, col, lo, hi in self._part_ranges(start, stop):
                blob = np.frombuffer(col.blob, np.uint8, int(col.offsets[-1]))
                for s in range(a, b, chunk):
                    e = min(s + chunk, b)
                    raw = blob[int(col.offsets[s]) : int(col.offsets[e])].tobytes()
                    self._leaf_chunk(base + s, base + e, raw, lo[s:e], hi[s:e])
            return
        assert isinstance(self.blob, np.ndarray) and isinstance(self.offsets, np.ndarray)
        assert isinstance(self.lo, np.ndarray) and isinstance(self.hi, np.ndarray)
        for s in range(start, stop, chunk):
            e = min(s + chunk, stop)
            raw = self.blob[int(self.offsets[s]) : int(self.offsets[e])].tobytes()
            self._leaf_chunk(s, e, raw, self.lo[s:e], self.hi[s:e])

    # --- order ---------------------------------------------------------------------
    def account(self, i: int) -> str:
        a, b = self.offsets.item(i), self.offsets.item(i + 1) - 1
        ident = self.blob.span(a, b) if isinstance(self.blob, Pieces) else self.blob[a:b]
        return ident.tobytes().decode("ascii")

    def account_index(self, position: U32, *, presorted: bool = False) -> tuple[U32, U32]:
        """Account keys sorted, with the leaf position of each; refuses duplicate accounts.

        `position` maps an input row to its leaf position; `presorted`: the packed keys
        were sorted already (in a thread, beside the leaf order's sort)."""
        packed = self.account_packed
        del self.account_packed
        return account_index(packed, position, self.account, presorted=presorted)

    def leaf_order(self) -> U32:
        """Input indices in leaf-hash order (ascending, bytewise)."""
        words = self.leaf_hashes.view(">u8")  # (n, 4) big-endian words
        packed = self.leaf_packed
        del self.leaf_packed
        packed.sort()
        if sys.byteorder == "little":
            halves = packed.view(np.uint32).reshape(-1, 2)
            prefix, order = halves[:, 1], np.ascontiguousarray(halves[:, 0])
            tie = np.flatnonzero(prefix[1:] == prefix[:-1])
            del prefix, halves, packed
        else:
            prefix, order = _split_packed(packed)
            tie = np.flatnonzero(prefix[1:] == prefix[:-1])
            del prefix
        if len(tie):  # runs with equal 32-bit prefixes: order them by the whole hash
            pos = np.unique(np.concatenate((tie, tie + 1)))
            idx = order[pos]
            w = words[idx].astype(np.uint64)
            # positions are grouped in runs; sorting each run's members by the whole hash
            # equals sorting all of them, since different runs have different prefixes
            sub = np.lexsort((w[:, 3], w[:, 2], w[:, 1], w[:, 0]))
            order[pos] = idx[sub]
        return order

    # --- levels --------------------------------------------------------------------
    def plan_levels(self, order: U32) -> None:
        n = self.n
        self.order = order
        self.top = max(self.low, (n - 1).bit_length())
        self.block_top = min(self.block_log, self.top)
        self.levels: list[npt.NDArray[Any]] = [
            self.shared.empty((-(-n >> lvl),), STORED_LEVEL, zero=self.one_word)
            for lvl in range(self.low, self.block_top + 1)
        ]

    def _buffer(self, name: str, size: int) -> npt.NDArray[Any]:
        """A per-thread STORED_LEVEL scratch array of `size` records (reused: fresh
        memory costs page faults on every block)."""
        buf: npt.NDArray[Any] | None = getattr(self._scratch, name, None)
        if buf is None or len(buf) < size:
            buf = np.empty(size, STORED_LEVEL)
            setattr(self._scratch, name, buf)
        return buf[:size]

    def native_blocks(self, start: int, stop: int) -> None:
        """hash_blocks in C: gather each block's leaves as level records, then reduce
        level by level straight into the stored levels (thread entry point)."""
        kernel = _native
        assert kernel is not None
        block_log, low = self.block_log, self.low
        size = 1 << block_log
        lo: Any = tuple(self.lo.arrays) if isinstance(self.lo, Pieces) else self.lo
        hi: Any = None
        if not self.one_word:
            hi = tuple(self.hi.arrays) if isinstance(self.hi, Pieces) else self.hi
        for b in range(start, stop):
            idx = self.order[b * size : (b + 1) * size]
            rec = self._buffer("leaves", len(idx))
            kernel.gather_records(self.leaf_hashes, lo, hi, idx, rec)
            for lvl in range(1, self.block_top + 1):
                m = (len(rec) + 1) >> 1
                if lvl >= low:
                    at = b << (block_log - lvl)
                    dst = self.levels[lvl - low][at : at + m]
                else:
                    dst = self._buffer(f"level{lvl % 2}", m)
                if not kernel.node_level(rec, dst):
                    raise AmountError("a partial sum reaches 2^127", where="balances")
                rec = dst

    def native_finish_levels(self) -> None:
        assert _native is not None
        rec = self.levels[-1]
        for _ in range(self.block_top + 1, self.top + 1):
            dst = np.empty((len(rec) + 1) >> 1, STORED_LEVEL)
            if not _native.node_level(rec, dst):
                raise AmountError("a partial sum reaches 2^127", where="balances")
            self.levels.append(dst)
            rec = dst

    def hash_blocks(self, start: int, stop: int) -> None:
        """Subtrees [start, stop) of 2^block_log leaves, bottom-up (worker entry point)."""
        block_log, low = self.block_log, self.low
        size = 1 << block_log
        # np.take on 32-byte void items gathers ~5x faster than fancy-indexing (n, 32)
        hashes = self.leaf_hashes.view(f"V{HASH_SIZE}").reshape(self.n)
        for b in range(start, stop):
            idx = self.order[b * size : (b + 1) * size]
            if len(idx) == size:
                self._full_block(b, np.take(hashes, idx), idx)
                continue
            lo = take_rows(self.lo, idx)
            hi = None if self.one_word else take_rows(self.hi, idx)
            rec = _records(np.take(hashes, idx).view(np.uint8).reshape(len(idx), HASH_SIZE), lo, hi)
            for lvl in range(1, self.block_top + 1):
                rec, lo, hi = _reduce(rec, lo, hi, self.batch)
                if lvl >= low:
                    at, end = b << (block_log - lvl), (b << (block_log - lvl)) + len(lo)
                    level = self.levels[lvl - low]
                    stored_bytes(level)[at:end, :32] = rec[:, :32]
                    level["lo"][at:end] = lo
                    if hi is not None:  # else the level's high words stay zero
                        level["hi"][at:end] = hi

    def _full_block(self, b: int, leaves: npt.NDArray[Any], idx: U32) -> None:
        """hash_blocks for a whole subtree of 2^block_log leaves (no odd nodes on any
        level): each level's hashes and big-endian sums are written straight into the
        next level's node preimages (reused buffers whose tag and zero bytes stay put)."""
        block_log, low, batch = self.block_log, self.low, self.batch
        lo = take_rows(self.lo, idx)
        hi = None if self.one_word else take_rows(self.hi, idx)
        h = leaves.view(np.uint8).reshape(len(idx), HASH_SIZE)
        pres = self._block_pres
        if not pres:
            for lvl in range(1, block_log + 1):
                pre = np.zeros((1 << (block_log - lvl), NODE_PREIMAGE_SIZE), np.uint8)
                pre[:, 0] = 1
                pres.append(pre)
        for lvl in range(1, block_log + 1):
            pre = pres[lvl - 1]
            pre[:, 1:33] = h[0::2]
            pre[:, 65:97] = h[1::2]
            pre[:, 57:65] = _be_bytes(lo[0::2])
            pre[:, 121:129] = _be_bytes(lo[1::2])
            if hi is not None:
                pre[:, 49:57] = _be_bytes(hi[0::2])
                pre[:, 113:121] = _be_bytes(hi[1::2])
            h = np.frombuffer(hash_rows(pre, batch), np.uint8).reshape(len(pre), HASH_SIZE)
            llo = lo[0::2]
            slo = llo + lo[1::2]
            if hi is not None:
                shi = hi[0::2] + hi[1::2] + (slo < llo)
                if int(shi.max()) >= 2**63:
                    raise AmountError("a partial sum reaches 2^127", where="balances")
                hi = shi
            lo = slo
            if lvl >= low:
                at = b << (block_log - lvl)
                end = at + len(lo)
                level = self.levels[lvl - low]
                stored_bytes(level)[at:end, :32] = h
                level["lo"][at:end] = lo
                if hi is not None:  # else the level's high words stay zero
                    level["hi"][at:end] = hi

    def finish_levels(self) -> None:
        last = self.levels[-1]
        lo, hi = np.array(last["lo"]), np.array(last["hi"])
        rec = _records(stored_bytes(last)[:, :32], lo, hi)
        for _ in range(self.block_top + 1, self.top + 1):
            rec, lo, up_hi = _reduce(rec, lo, hi, self.batch)
            hi = np.zeros(len(lo), np.uint64) if up_hi is None else up_hi
            level = np.zeros(len(lo), STORED_LEVEL)
            stored_bytes(level)[:, :32] = rec[:, :32]
            level["lo"], level["hi"] = lo, hi
            self.levels.append(level)


def _positions(order: U32) -> U32:
    """Input row -> leaf position (the inverse permutation of `order`)."""
    n = len(order)
    position = np.empty(n, np.uint32)
    for s in range(0, n, _STEP):
        position[order[s : s + _STEP]] = np.arange(s, min(s + _STEP, n), dtype=np.uint32)
    return position


def _checked_words(
    balances: Iterable[int] | npt.NDArray[Any] | BalanceWords | ColumnParts, n: int, chunk: int
) -> tuple[U64 | Pieces, U64 | Pieces, int]:
    """(low words, high words, exact total) of n balances whose total is below 2^127."""
    lo: U64 | Pieces
    hi: U64 | Pieces
    if isinstance(balances, ColumnParts):
        if balances.rows != n:
            raise InputError(f"{balances.rows} balances for {n} salts", where="balances")
        lo, hi, total = balances.words()
    elif isinstance(balances, BalanceWords):
        if len(balances) != n:
            raise InputError(f"{len(balances)} balances for {n} salts", where="balances")
        lo, hi = balances.lo, balances.hi
        total = exact_total(lo, hi)
    else:
        lo, hi = balances_to_words(balances, n, chunk=chunk)
        total = exact_total(lo, hi)
    if total >= MAX_AMOUNT_EXCLUSIVE:
        raise AmountError(
            f"the balances add up to {total}, not below 2^127; the root sum would overflow",
            where="balances",
        )
    return lo, hi, total


def build(
    accounts: Iterable[str] | AccountColumn | ColumnParts,
    balances: Iterable[int] | npt.NDArray[Any] | BalanceWords | ColumnParts,
    salts: bytes,
    *,
    workers: int,
    params: BuildParams,
) -> TreeArrays:
    """The arrays of the tree over n = len(salts) // 32 leaves (padding already added).

    The caller has checked `salts` (bytes, a multiple of 32 long, n within MAX_LEAVES)
    and `workers` (a positive int); everything else is checked here, as the columns are
    read: DuplicateAccountError, AmountError for a balance or a total outside
    [0, 2^127), FormatError for a bad account id, InputError for columns of different
    lengths. `accounts` and `balances` are read once; an AccountColumn and BalanceWords
    were checked when they were made and are not checked again. ColumnParts (several
    chains' columns) come as both `accounts` and `balances`; the tree keeps them as
    Pieces (TreeArrays.blob, offsets, lo, hi).

    With the C kernel (NATIVE, unless params.native is False) hashing runs in `workers`
    threads; else in hashlib, with `workers` forked processes.
    """
    n = len(salts) // SALT_SIZE
    native = params.native and _native is not None
    if (isinstance(accounts, ColumnParts) or isinstance(balances, ColumnParts)) and (
        accounts is not balances
    ):
        raise InputError("ColumnParts come as both accounts and balances", where="columns")
    lo, hi, total = _checked_words(balances, n, params.chunk)
    if workers > 1 and (n < params.parallel_min or not (native or _fork_available())):
        workers = 1
    b = _Builder(
        n, salts, lo, hi, workers=workers, params=params, one_word=total < 2**64, native=native
    )
    b.leaves(accounts)
    if n == 0:
        return TreeArrays(
            n=0,
            low=params.low_levels,
            blob=b"",
            offsets=b.offsets,
            salts=salts,
            lo=lo,
            hi=hi,
            order=np.zeros(0, np.uint32),
            akeys=np.zeros(0, np.uint32),
            apos=np.zeros(0, np.uint32),
            levels=[],
            root=EMPTY_ROOT,
        )
    if native and workers > 1:
        # numpy's sorts and the C kernel release the GIL: sort the account keys beside
        # the leaf order, then build the account index beside the levels
        with ThreadPoolExecutor(1, thread_name_prefix="por-mst") as pool:
            presort = pool.submit(b.account_packed.sort)
            order = b.leaf_order()
            position = _positions(order)
            presort.result()
            index = pool.submit(b.account_index, position, presorted=True)
            b.levels_over(order)
            akeys, apos = index.result()
    else:
        order = b.leaf_order()
        akeys, apos = b.account_index(_positions(order))
        b.levels_over(order)
    top_hash, top_lo, top_hi = b.levels[-1].item(0)
    root = Node(hash=top_hash, sum=top_lo | top_hi << 64)
    if root.sum != total:  # cannot happen; a wrong sum must never be published
        raise AmountError(f"root sum {root.sum} differs from the total {total}")
    return TreeArrays(
        n=n,
        low=params.low_levels,
        blob=b.blob if isinstance(b.blob, Pieces) else b.blob[: b.blob_len].data,
        offsets=b.offsets,
        salts=salts,
        lo=lo,
        hi=hi,
        order=order,
        akeys=akeys,
        apos=apos,
        levels=b.levels,
        root=root,
    )


__all__ = [
    "DEFAULT_PARAMS",
    "EMPTY_ACCOUNTS",
    "NATIVE",
    "STORED_LEVEL",
    "U8",
    "U32",
    "U64",
    "AccountColumn",
    "BalanceWords",
    "BuildParams",
    "ColumnParts",
    "Pieces",
    "TreeArrays",
    "account_index",
    "as_array",
    "balance_words",
    "balances_to_words",
    "build",
    "check_part",
    "derive_salts",
    "duplicate_account",
    "encode_accounts",
    "encode_accounts_raw",
    "encode_holders",
    "exact_total",
    "hash_rows",
    "row_account",
    "stored_bytes",
    "take_rows",
]
