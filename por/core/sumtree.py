"""The `SumTree` object: a built por-mst-v1 tree that serves proofs, and its file format.

`SumTree.build` / `build_columns` check their inputs, add padding leaves, and hand the
columns to the engine (`por.core.mst_build`, numpy); the tree keeps the engine's arrays
and answers `root`, `index_of`, `leaf`, `prove` and `prove_index` from them.
`to_bytes` / `from_bytes` write and load the versioned binary file the service stores,
so proofs are served without rebuilding. The rules of the tree and the verifier of its
proofs are in `por.core.mst`.

Pure: no network, disk, environment, clock or randomness; salts and padding bytes come
from the caller. `workers > 1` forks worker processes (see mst_build).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Iterator
from itertools import chain
from typing import Any, Final, cast

import numpy as np
import numpy.typing as npt

from por.core.amounts import MAX_AMOUNT_EXCLUSIVE
from por.core.mst import (
    ACCOUNT_MAX_CHARS,
    EMPTY_ROOT,
    MAX_LEAVES,
    SALT_SIZE,
    InclusionProof,
    Leaf,
    Node,
    check_bytes,
    leaf_raw,
    node_raw,
    node_unchecked,
)
from por.core.mst_build import (
    _CHECKED,  # this module makes checked columns of leaves its own tree checked
    DEFAULT_PARAMS,
    STORED_LEVEL,
    AccountColumn,
    BalanceWords,
    BuildParams,
    ColumnParts,
    Pieces,
    TreeArrays,
    as_array,
    balance_words,
    build,
    check_part,
    encode_accounts,
    exact_total,
    take_rows,
)
from por.errors import FormatError, InputError

_sha256 = hashlib.sha256
_new = object.__new__
# slot setters of InclusionProof, for proofs made of values this tree checked itself
_SET_PROOF = tuple(
    cast(Any, InclusionProof.__dict__[f]).__set__
    for f in ("account", "balance", "salt", "index", "size", "path", "root")
)


class UnknownAccountError(InputError):
    """The account has no leaf in this tree."""


def _check_build_args(salts: object, workers: object, params: object) -> bytes:
    """The salts as bytes (see _check_salts), after checking workers and params."""
    checked = _check_salts(salts)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InputError(f"workers must be a positive integer, got {workers!r}", where="workers")
    if not isinstance(params, BuildParams):
        raise InputError(f"not BuildParams: {type(params).__name__}", where="params")
    return checked


def _check_salts(salts: object) -> bytes:
    if not isinstance(salts, bytes):
        if not isinstance(salts, bytearray | memoryview):
            raise InputError(f"salts must be bytes, got {type(salts).__name__}", where="salts")
        salts = bytes(salts)  # our own immutable copy
    if len(salts) % SALT_SIZE:
        raise InputError(f"salts length {len(salts)} is not a multiple of 32", where="salts")
    return salts


def _pad_columns(n: int, pad_to: int | None, pad_random: bytes | None) -> tuple[list[str], bytes]:
    """Zero-balance padding leaves: account ids and salts derived from the caller's bytes."""
    if pad_to is None:
        if pad_random is not None:
            raise InputError("pad_random given without pad_to", where="pad_random")
        return [], b""
    if isinstance(pad_to, bool) or not isinstance(pad_to, int):
        raise InputError(f"pad_to must be an integer, got {type(pad_to).__name__}", where="pad_to")
    if pad_to < n:
        raise InputError(f"pad_to {pad_to} is below the {n} real leaves", where="pad_to")
    if pad_to > MAX_LEAVES:
        raise InputError(f"pad_to {pad_to} exceeds {MAX_LEAVES} leaves", where="pad_to")
    count = pad_to - n
    if count and pad_random is None:
        raise InputError(
            "padding needs pad_random (32 bytes from the caller's CSPRNG)", where="pad_random"
        )
    if not count:
        return [], b""
    key = check_bytes(pad_random, 32, where="pad_random")
    accounts, salts = [], []
    for j in range(count):
        tag = j.to_bytes(8, "big")
        ident = hashlib.blake2b(tag, key=key, digest_size=20, person=b"por-mst-pad-id").hexdigest()
        accounts.append(f"por:pad:{ident}")
        salts.append(
            hashlib.blake2b(tag, key=key, digest_size=32, person=b"por-mst-pad-salt").digest()
        )
    return accounts, b"".join(salts)


# --- the tree file -------------------------------------------------------------------------

_MAGIC: Final = b"POR-MST\x00"
_FILE_VERSION: Final = 1
_HEADER = struct.Struct("<8sIIQQ32s32s32s")  # magic version low n blob_len root sum digest


def _pad8(length: int) -> int:
    return -length % 8


def _le(arr: npt.NDArray[Any], dtype: str) -> npt.NDArray[Any]:
    """`arr` in a fixed little-endian dtype, without a copy when it already is."""
    return np.ascontiguousarray(arr, dtype=dtype)


# --- the tree ------------------------------------------------------------------------------


class SumTree:
    """A built por-mst-v1 tree: root, size, proofs by account or index, serialisation.

    Immutable after construction. Leaf data is kept in input order (``_order`` maps a
    leaf position to its input row), levels from ``_low`` up in numpy arrays.
    """

    __slots__ = (
        "_akeys",
        "_apos",
        "_blob",
        "_hi",
        "_levels",
        "_lo",
        "_low",
        "_n",
        "_offsets",
        "_order",
        "_root",
        "_salts",
        "_upper",
    )

    def __init__(self, arrays: TreeArrays, *, cached_nodes: int) -> None:
        """Private: use build, build_columns or from_bytes."""
        self._n = arrays.n
        self._low = arrays.low
        self._blob = arrays.blob  # bytes-like: ASCII account ids, concatenated
        self._offsets = arrays.offsets
        self._salts = arrays.salts  # bytes-like: n * 32
        self._lo, self._hi = arrays.lo, arrays.hi
        self._order = arrays.order
        self._akeys, self._apos = arrays.akeys, arrays.apos
        self._levels = levels = arrays.levels
        self._root = arrays.root
        frozen: list[npt.NDArray[Any] | Pieces] = [
            arrays.offsets,
            arrays.lo,
            arrays.hi,
            arrays.order,
            arrays.akeys,
            arrays.apos,
            *levels,
        ]
        for arr in frozen:
            if isinstance(arr, Pieces):
                arr.freeze()
            else:
                arr.flags.writeable = False
        # for proofs: each stored level below the root, and the small top levels as ready
        # Node objects (at most 2 * cached_nodes of them)
        self._upper: list[tuple[npt.NDArray[Any], int, list[Node] | None]] = []
        for level in levels[:-1]:
            cached = None
            if len(level) <= cached_nodes:
                cached = [node_unchecked(h, lo_ | hi_ << 64) for h, lo_, hi_ in level.tolist()]
            self._upper.append((level, len(level), cached))

    # --- construction ------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        leaves: Iterable[Leaf],
        *,
        workers: int = 1,
        pad_to: int | None = None,
        pad_random: bytes | None = None,
        params: BuildParams = DEFAULT_PARAMS,
    ) -> SumTree:
        """Build from Leaf values (any order); see build_columns for the rules."""
        accounts: list[str] = []
        balances: list[int] = []
        salts = bytearray()
        for i, leaf in enumerate(leaves):
            if not isinstance(leaf, Leaf):
                raise InputError(f"not a Leaf: {type(leaf).__name__}", where=f"leaves[{i}]")
            accounts.append(leaf.account)
            balances.append(leaf.balance)
            salts += leaf.salt
        return cls.build_columns(
            accounts,
            balances,
            bytes(salts),
            workers=workers,
            pad_to=pad_to,
            pad_random=pad_random,
            params=params,
        )

    @classmethod
    def build_columns(
        cls,
        accounts: Iterable[str] | AccountColumn,
        balances: Iterable[int] | npt.NDArray[Any] | BalanceWords,
        salts: bytes,
        *,
        workers: int = 1,
        pad_to: int | None = None,
        pad_random: bytes | None = None,
        params: BuildParams = DEFAULT_PARAMS,
    ) -> SumTree:
        """Build from columns: account ids, balances and the salts concatenated (n * 32).

        `accounts` and `balances` may be any iterables (read once, so a generator keeps
        memory down) or, for balances, a numpy integer array; `len(salts) // 32` fixes n.
        An `AccountColumn` / `BalanceWords` (por.core.mst_build: `encode_holders`,
        `encode_accounts`, `balance_words`) were checked when made and are taken as is.
        Raises DuplicateAccountError (an InputError) naming a repeated account,
        AmountError for a balance or a total outside [0, 2^127), FormatError for a bad
        account id. `workers > 1` hashes in that many processes (fork; ignored for small
        trees or where fork is unavailable). `pad_to` adds zero-balance leaves up to that
        count, their ids and salts derived from the 32 `pad_random` bytes. `params` tunes
        the engine (never the root or a proof). With the C kernel (mst_build.NATIVE) the
        workers are threads, else forked processes.
        """
        salts = _check_build_args(salts, workers, params)
        n_real = len(salts) // SALT_SIZE
        pad_accounts, pad_salts = _pad_columns(n_real, pad_to, pad_random)
        if pad_accounts:
            count = len(pad_accounts)
            if isinstance(accounts, AccountColumn):
                accounts = AccountColumn.concat([accounts, encode_accounts(pad_accounts)])
            else:
                accounts = chain(accounts, pad_accounts)
            if isinstance(balances, BalanceWords):
                balances = BalanceWords.concat([balances, balance_words([0] * count, count)])
            elif isinstance(balances, np.ndarray) and balances.dtype.kind in "iu":
                balances = np.concatenate((balances, np.zeros(count, balances.dtype)))
            else:
                balances = chain(balances, [0] * count)
            salts += pad_salts
        n = len(salts) // SALT_SIZE
        if n > MAX_LEAVES:
            raise InputError(f"{n} leaves exceed the limit of {MAX_LEAVES}", where="salts")
        arrays = build(accounts, balances, salts, workers=workers, params=params)
        return cls(arrays, cached_nodes=params.cached_nodes)

    @classmethod
    def build_parts(
        cls,
        parts: Iterable[tuple[AccountColumn, BalanceWords]],
        salts: bytes,
        *,
        workers: int = 1,
        params: BuildParams = DEFAULT_PARAMS,
    ) -> SumTree:
        """build_columns over several chains' checked columns, their rows one after
        another (salts in the same order), without joining them: the leaves are hashed
        where each chain's column lies and the tree keeps the columns as they are (its
        file is written from them in order). The same tree as build_columns over the
        joined columns — root, proofs and file bytes."""
        kept: list[tuple[AccountColumn, BalanceWords]] = []
        for k, part in enumerate(parts):
            accounts, words = check_part(part, where=f"parts[{k}]")
            if len(accounts):
                kept.append((accounts, words))
        if len(kept) < 2:
            one = kept[0] if kept else (encode_accounts([]), balance_words([], 0))
            return cls.build_columns(*one, salts, workers=workers, params=params)
        salts = _check_build_args(salts, workers, params)
        columns = ColumnParts(tuple(kept))
        if columns.rows != len(salts) // SALT_SIZE:
            raise InputError(
                f"{columns.rows} accounts for the {len(salts) // SALT_SIZE} salts", where="salts"
            )
        arrays = build(columns, columns, salts, workers=workers, params=params)
        return cls(arrays, cached_nodes=params.cached_nodes)

    @classmethod
    def from_arrays(
        cls, arrays: TreeArrays, *, params: BuildParams = DEFAULT_PARAMS, check: bool = True
    ) -> SumTree:
        """A tree over arrays another engine built (por.core.mst_parts.assemble_tree: a
        tree built in pieces on a cluster); checked for consistency like a loaded file,
        or (check=False, for arrays assemble_tree made and checked) only its top level
        against its root."""
        if not isinstance(arrays, TreeArrays):
            raise InputError(f"not TreeArrays: {type(arrays).__name__}", where="arrays")
        if check:
            _check_loaded(arrays)
        else:
            _check_top(arrays)
        return cls(arrays, cached_nodes=params.cached_nodes)

    # --- reading -----------------------------------------------------------------------
    @property
    def root(self) -> Node:
        """Root hash and total of all balances (EMPTY_ROOT for no leaves)."""
        return self._root

    @property
    def size(self) -> int:
        """The number of leaves, padding included."""
        return self._n

    def __len__(self) -> int:
        return self._n

    def __repr__(self) -> str:
        return f"SumTree(size={self._n}, root={self._root.hash.hex()}, sum={self._root.sum})"

    def _row_account(self, row: int) -> bytes:
        a, b = self._offsets.item(row), self._offsets.item(row + 1) - 1
        if isinstance(self._blob, Pieces):
            return self._blob.span(a, b).tobytes()
        return bytes(self._blob[a:b])

    def _row_leaf(self, row: int) -> tuple[bytes, int, bytes]:
        return (
            self._row_account(row),
            self._lo.item(row) | self._hi.item(row) << 64,
            bytes(self._salts[row * SALT_SIZE : (row + 1) * SALT_SIZE]),
        )

    def index_of(self, account: str) -> int:
        """The leaf position of `account`; UnknownAccountError when it has no leaf."""
        if not isinstance(account, str):
            raise UnknownAccountError(
                f"account must be a string, got {type(account).__name__}", where="account"
            )
        try:
            raw = account.encode("ascii")
        except UnicodeEncodeError:
            raw = b""
        if raw:
            key = np.uint32(int.from_bytes(_sha256(raw).digest()[:4], "big"))
            lo = int(np.searchsorted(self._akeys, key, "left"))
            hi = int(np.searchsorted(self._akeys, key, "right"))
            for p in range(lo, hi):
                pos = self._apos.item(p)
                if self._row_account(self._order.item(pos)) == raw:
                    return int(pos)
        shown = account if len(account) <= 80 else account[:77] + "..."
        raise UnknownAccountError(f"account {shown!r} has no leaf in this tree", where="account")

    def leaf(self, i: int) -> Leaf:
        """The leaf at position `i` (0-based, in tree order)."""
        self._check_position(i)
        account, balance, salt = self._row_leaf(self._order.item(i))
        return Leaf(account=account.decode("ascii"), balance=balance, salt=salt)

    def _check_position(self, i: int) -> None:
        if isinstance(i, bool) or not isinstance(i, int | np.integer) or not 0 <= i < self._n:
            raise InputError(f"leaf index {i!r} is not in [0, {self._n})", where="index")

    def prove(self, account: str) -> InclusionProof:
        """The inclusion proof of `account`; UnknownAccountError when it has no leaf."""
        return self.prove_index(self.index_of(account))

    def prove_index(self, i: int) -> InclusionProof:
        """The inclusion proof of the leaf at position `i`."""
        self._check_position(i)
        i = int(i)
        n, low = self._n, self._low
        order = self._order
        # recompute the aligned chunk of 2^low leaves that holds i (its levels are not kept)
        c0 = i >> low << low
        c1 = min(c0 + (1 << low), n)
        level: list[tuple[bytes, int]] = []
        for j in range(c0, c1):
            acct, bal, salt = self._row_leaf(order.item(j))
            level.append((leaf_raw(acct, bal, salt), bal))
        path: list[Node] = []
        k = i - c0
        while len(level) > 1:
            if k ^ 1 < len(level):
                path.append(node_unchecked(*level[k ^ 1]))
            nxt = [node_raw(level[t], level[t + 1]) for t in range(0, len(level) - 1, 2)]
            if len(level) & 1:
                nxt.append(level[-1])
            level = nxt
            k >>= 1
        k = i >> low
        for stored, m, cached in self._upper:
            s = k ^ 1
            if s < m:
                if cached is not None:
                    path.append(cached[s])
                else:
                    h, lo, hi = stored.item(s)
                    path.append(node_unchecked(h, lo | hi << 64))
            k >>= 1
        acct, bal, salt = self._row_leaf(order.item(i))
        # every field comes from this tree, checked when it was built or loaded
        proof = _new(InclusionProof)
        values = (acct.decode("ascii"), bal, salt, i, n, tuple(path), self._root)
        for setter, value in zip(_SET_PROOF, values, strict=True):
            setter(proof, value)
        return proof

    def leaf_columns(self, start: int, stop: int) -> tuple[AccountColumn, BalanceWords, bytes]:
        """The leaves at positions [start, stop), in tree order, as checked columns.

        For cutting the tree into aligned subtrees (por.store.shards): `build_columns` of
        an aligned chunk's columns is that chunk's subtree, without checking its ids and
        balances again (this tree checked them). Vectorised gathers, no per-leaf objects.
        """
        if not 0 <= start <= stop <= self._n:
            raise InputError(
                f"leaf range [{start}, {stop}) is not in [0, {self._n}]", where="range"
            )
        rows = np.asarray(self._order[start:stop], dtype=np.int64)
        begin = take_rows(self._offsets, rows).astype(np.int64)
        lengths = take_rows(self._offsets, rows + 1).astype(np.int64) - begin
        offsets = np.zeros(len(rows) + 1, np.uint64)
        np.cumsum(lengths, out=offsets[1:], dtype=np.uint64)
        starts_out = offsets[:-1].astype(np.int64)
        gather = np.arange(int(offsets[-1]), dtype=np.int64) + np.repeat(
            begin - starts_out, lengths
        )
        chars = (
            self._blob if isinstance(self._blob, Pieces) else np.frombuffer(self._blob, np.uint8)
        )
        blob = take_rows(chars, gather)
        accounts = AccountColumn(blob, offsets, _CHECKED)
        balances = BalanceWords(take_rows(self._lo, rows), take_rows(self._hi, rows), _CHECKED)
        salts = np.frombuffer(self._salts, np.uint8).reshape(-1, SALT_SIZE)[rows].tobytes()
        return accounts, balances, salts

    def export_leaves(self) -> Iterator[dict[str, str]]:
        """Every leaf in tree order as a LEAVES.jsonl object {account, balance, salt}."""
        for i in range(self._n):
            acct, bal, salt = self._row_leaf(self._order.item(i))
            yield {"account": acct.decode("ascii"), "balance": str(bal), "salt": salt.hex()}

    # --- serialisation -----------------------------------------------------------------
    def _sections(self) -> Iterator[Any]:
        """The file's body in pieces (a tree built from several chains' columns writes
        them one after another, as Pieces, without joining them first)."""

        def column(col: Any, dtype: str) -> list[Any]:
            if isinstance(col, Pieces):
                return [_le(c, dtype) for c in col.chunks()]
            return [_le(col, dtype)]

        blob = self._blob.arrays if isinstance(self._blob, Pieces) else [memoryview(self._blob)]
        parts: list[Any] = [memoryview(self._salts), *blob]
        parts.append(b"\x00" * _pad8(len(self._blob)))
        yield from (p.data.cast("B") if isinstance(p, np.ndarray) else p for p in parts)
        parts = [
            *column(self._offsets, "<u8"),
            *column(self._lo, "<u8"),
            *column(self._hi, "<u8"),
            _le(self._order, "<u4"),
            b"\x00" * _pad8(4 * self._n),
            _le(self._akeys, "<u4"),
            _le(self._apos, "<u4"),
        ]
        parts += [level.view(np.uint8) for level in self._levels]
        yield from (p.data.cast("B") if isinstance(p, np.ndarray) else p for p in parts)

    def to_byte_chunks(self) -> Iterator[bytes | memoryview]:
        """to_bytes() in pieces, for writing a large tree without one more copy of it."""
        digest = _sha256()
        for part in self._sections():
            digest.update(part)
        yield _HEADER.pack(
            _MAGIC,
            _FILE_VERSION,
            self._low,
            self._n,
            len(self._blob),
            self._root.hash,
            self._root.sum.to_bytes(32, "big"),
            digest.digest(),
        )
        yield from self._sections()

    def to_bytes(self) -> bytes:
        """The tree as a versioned binary file that from_bytes loads without rebuilding.

        Layout (little-endian, sections padded to 8 bytes; docs/sumtree.md): header
        (magic "POR-MST\\0", version, lowest stored level, n, account blob length, root
        hash, u256 root sum, SHA-256 of everything after the header); salts (n*32, input
        order); account ids in input order, each followed by "\\n"; offsets (n+1 u64);
        balance low and high words (n u64 each); leaf order (n u32: input row of each
        leaf); account index: first 4 bytes of H(account) sorted, and the leaf position
        of each (n u32 each); then per stored level 48-byte records (hash, low and high sum
        words).
        """
        return b"".join(self.to_byte_chunks())

    @classmethod
    def from_bytes(
        cls,
        buf: bytes | bytearray | memoryview | Any,
        *,
        body_checked: bool = False,
        consistency: bool = True,
    ) -> SumTree:
        """Load a tree written by to_bytes; FormatError on anything else.

        Arrays are views into `buf` (no copy), so pass bytes or a read-only buffer (a
        read-only mmap serves a 10^7-leaf file without reading it) and keep it unchanged
        while the tree lives. Checked: magic, version, exact length, the body's SHA-256,
        and the consistency proofs rely on (see _check_loaded). `body_checked=True` skips
        hashing the body when the caller has matched, or will match, the SHA-256 of the
        whole file against a record it trusts (the store does). `consistency=False`
        checks only what the header and the top level say (the root is the top level's
        first record) and leaves the O(n) checks to `check_consistency()`, which the
        caller must run before trusting anything but proofs it verifies itself.
        """
        mv = memoryview(buf).cast("B")
        low, n, blob_len, root, level_sizes = _read_header(mv, check_body=not body_checked)
        at = _HEADER.size

        def take(count: int, dtype: Any, pad: bool = False) -> Any:
            nonlocal at
            arr = np.frombuffer(mv, dtype, count, at)
            at += arr.nbytes + (_pad8(arr.nbytes) if pad else 0)
            return arr

        salts = mv[at : at + n * SALT_SIZE]
        at += n * SALT_SIZE
        blob = mv[at : at + blob_len]
        at += blob_len + _pad8(blob_len)
        offsets = take(n + 1, "<u8")
        lo, hi = take(n, "<u8"), take(n, "<u8")
        order = take(n, "<u4", pad=True)
        akeys, apos = take(n, "<u4"), take(n, "<u4")
        levels = [take(m, STORED_LEVEL) for m in level_sizes]
        arrays = TreeArrays(
            n=n,
            low=low,
            blob=blob,
            offsets=offsets,
            salts=salts,
            lo=lo,
            hi=hi,
            order=order,
            akeys=akeys,
            apos=apos,
            levels=levels,
            root=root,
        )
        if consistency:
            _check_loaded(arrays)
        else:
            _check_top(arrays)
        return cls(arrays, cached_nodes=DEFAULT_PARAMS.cached_nodes)

    def check_consistency(self) -> None:
        """The O(n) checks of a file loaded with consistency=False (FormatError)."""
        _check_loaded(
            TreeArrays(
                n=self._n,
                low=self._low,
                blob=self._blob,
                offsets=self._offsets,
                salts=self._salts,
                lo=self._lo,
                hi=self._hi,
                order=self._order,
                akeys=self._akeys,
                apos=self._apos,
                levels=self._levels,
                root=self._root,
            )
        )


def _read_header(mv: memoryview, *, check_body: bool) -> tuple[int, int, int, Node, list[int]]:
    """(lowest stored level, n, blob length, root, stored level sizes) of a tree file."""
    if len(mv) < _HEADER.size:
        raise FormatError(f"{len(mv)} bytes is shorter than the header", where="tree")
    magic, version, low, n, blob_len, root_hash, root_sum, digest = _HEADER.unpack_from(mv)
    if magic != _MAGIC:
        raise FormatError(f"not a por-mst tree file (magic {magic!r})", where="tree")
    if version != _FILE_VERSION:
        raise FormatError(f"tree file version {version}, expected {_FILE_VERSION}", where="tree")
    if not 1 <= low <= 32 or n > MAX_LEAVES or blob_len > (ACCOUNT_MAX_CHARS + 1) * n:
        raise FormatError(f"implausible header (low {low}, n {n}, blob {blob_len})", where="tree")
    total = int.from_bytes(root_sum, "big")
    if total >= MAX_AMOUNT_EXCLUSIVE:
        raise FormatError(f"root sum {total} is not below 2^127", where="tree")
    top = max(low, (n - 1).bit_length()) if n else low - 1
    level_sizes = [-(-n >> lvl) for lvl in range(low, top + 1)]
    want = (
        _HEADER.size
        + n * SALT_SIZE
        + blob_len
        + _pad8(blob_len)
        + 8 * (n + 1)
        + 16 * n
        + 4 * n
        + _pad8(4 * n)
        + 8 * n
        + sum(48 * m for m in level_sizes)
    )
    if len(mv) != want:
        raise FormatError(f"tree file is {len(mv)} bytes, its header implies {want}", where="tree")
    if check_body and _sha256(mv[_HEADER.size :]).digest() != digest:
        raise FormatError("tree file body does not match its SHA-256", where="tree")
    return low, n, blob_len, Node(hash=root_hash, sum=total), level_sizes


def _check_top(t: TreeArrays) -> None:
    """The header's root is the stored top level's (O(1))."""
    top_hash, top_lo, top_hi = t.levels[-1].item(0) if t.n else (EMPTY_ROOT.hash, 0, 0)
    if (top_hash, top_lo | top_hi << 64) != (t.root.hash, t.root.sum):
        raise FormatError("inconsistent tree file: the root is not the top level", where="tree")


def _check_loaded(t: TreeArrays) -> None:
    """What a reader relies on to serve correct proofs; FormatError when it does not hold.

    Not re-hashed: the levels (that is a rebuild) and the account keys (a wrong key can
    only make a lookup miss, since every hit is confirmed against the stored id).
    """

    def bad(what: str) -> FormatError:
        return FormatError(f"inconsistent tree file: {what}", where="tree")

    n, blob = t.n, as_array(t.blob) if isinstance(t.blob, Pieces) else t.blob
    offsets, lo, hi = as_array(t.offsets), as_array(t.lo), as_array(t.hi)
    order, akeys, apos, levels, root = t.order, t.akeys, t.apos, t.levels, t.root
    if int(offsets[0]) != 0 or int(offsets[-1]) != len(blob):
        raise bad("account offsets do not span the account blob")
    chars = np.frombuffer(blob, np.uint8)
    # in slices, so the temporaries of a 10^7-leaf file stay small (this runs in the
    # background of a serving process, Store.tree)
    step = 1 << 22
    for s in range(0, n, step):
        part = offsets[s : s + step + 1].astype(np.int64)
        lens = np.diff(part)
        if lens.min() < 2 or lens.max() > ACCOUNT_MAX_CHARS + 1:
            raise bad("an account id length is out of range")
        if not (chars[part[1:] - 1] == 0x0A).all():
            raise bad("an account id is not followed by its newline")
    if n and (int(hi.max()) >= 2**63 or int(order.max()) >= n or int(apos.max()) >= n):
        raise bad("a balance, leaf order or account position is out of range")
    other = 0
    for s in range(0, len(chars), step * 16):
        other += int(np.count_nonzero((chars[s : s + step * 16] - np.uint8(0x21)) > np.uint8(0x5D)))
    if other != n:  # exactly the n newlines are outside 0x21..0x7e
        raise bad("the account ids hold bytes other than printable ASCII")
    for name, perm in (("leaf order", order), ("account index", apos)):
        seen = np.zeros(n, np.bool_)
        seen[perm] = True
        if not seen.all():
            raise bad(f"the {name} is not a permutation")
    if n > 1 and bool((akeys[1:] < akeys[:-1]).any()):
        raise bad("the account index is not sorted")
    top_hash, top_lo, top_hi = levels[-1].item(0) if n else (EMPTY_ROOT.hash, 0, 0)
    stored = (top_hash, top_lo | top_hi << 64)
    if stored != (root.hash, root.sum) or root.sum != exact_total(lo, hi):
        raise bad("the root does not match the top level and the balances")


__all__ = ["SumTree", "UnknownAccountError"]
