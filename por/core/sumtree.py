"""Merkle sum tree of holder liabilities, format ``por-mst-v1`` (DESIGN §3).

Build a tree from (account, balance, salt) leaves, give its root (hash and total), an
inclusion proof for one account, verify such a proof, and (de)serialise the built tree
so a service can serve proofs without rebuilding it.

    H = SHA-256, u256(x) = x as 32 bytes big-endian, every balance and sum in [0, 2^127)
    leaf  hash = H(0x00 || salt || H(utf8(account)) || u256(balance)), sum = balance
    node  hash = H(0x01 || L.hash || u256(L.sum) || R.hash || u256(R.sum)), sum = L.sum + R.sum
    order leaves by leaf hash, ascending bytewise
    shape RFC 9162 §2.1.1 (left subtree = largest power of two < n); no leaf duplicated
    empty tree hash = H(""), sum = 0

Both child sums are inside the parent's hash: a parent cannot claim less than its
children hold (the Maxwell flaw, see tests/core/test_sumtree_attacks.py).

Pure: no network, disk, environment, clock or randomness. Salts and padding bytes come
from the caller. ``workers > 1`` forks worker processes (CPU only, results through
anonymous shared memory) — the one place this module leaves the calling process.

How the build stays near the cost of hashing alone: leaves live in columns (one ASCII
blob of newline-terminated account ids with offsets, one buffer of salts, balances as
two uint64 words); preimages are laid out with numpy, turned into bytes objects by numpy
(or bytes.split) and hashed by map() over hashlib in C, a few thousand at a time. Leaf
order and the account index come from sorting packed (32-bit hash prefix, row) words.
Levels below ``_LOW_LEVELS`` are not kept: a proof recomputes its 4-leaf chunk (11
hashes), which keeps 10^7 leaves under 2 GB. Figures: docs/sumtree.md, bench/tree.py.
"""

from __future__ import annotations

import hashlib
import mmap
import multiprocessing
import re
import struct
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain, islice
from typing import Any, Final, TypeAlias, cast

import numpy as np
import numpy.typing as npt

from por.core.amounts import MAX_AMOUNT_EXCLUSIVE, check_amount, parse_base_units
from por.errors import AmountError, FormatError, InputError, ProofError

FORMAT: Final = "por-mst-v1"
"""The proof format this module produces and the only one its verifier accepts."""

HASH_SIZE: Final = 32
SALT_SIZE: Final = 32
ACCOUNT_MAX_CHARS: Final = 256
MAX_LEAVES: Final = 2**32 - 1
"""Leaf indices are stored as uint32; 4·10^9 holders is far beyond one tree's memory."""

_LEAF_TAG: Final = b"\x00"
_NODE_TAG: Final = b"\x01"
_LEAF_PREIMAGE: Final = 1 + SALT_SIZE + HASH_SIZE + 32  # 97 bytes
_NODE_PREIMAGE: Final = 1 + 2 * (HASH_SIZE + 32)  # 129 bytes
_MAX_PATH: Final = 64  # no tree of < 2^64 leaves needs a longer path

_sha256 = hashlib.sha256
_digest = type(_sha256()).digest  # unbound, so map() can call it without a Python loop

# Tuning (tests shrink these to exercise the chunk, block and worker paths on small trees).
_LOW_LEVELS = 2  # levels 0.._LOW_LEVELS-1 are recomputed per proof instead of stored
_CHUNK = 1 << 12  # leaves per pipeline chunk while hashing leaves
_HASH_BATCH = 1 << 11  # rows per hashlib batch (see _hash_rows)
_BLOCK_LOG = 16  # subtrees of 2^_BLOCK_LOG leaves are hashed bottom-up one at a time
_PARALLEL_MIN = 1 << 16  # fewer leaves than this: workers are not worth a fork
_CACHED_NODES = 1 << 12  # stored levels up to this many nodes are kept as Node objects

_U32: TypeAlias = npt.NDArray[np.uint32]
_U64: TypeAlias = npt.NDArray[np.uint64]
_U8: TypeAlias = npt.NDArray[np.uint8]
_Raw: TypeAlias = tuple[bytes, int]  # (hash, sum) without the Node wrapper, for hot loops

# "namespace:reference:address", printable ASCII without spaces; CAIP-10 ids
# (eip155:1:0x..., solana:<genesis>:<base58>) and ledger:<custodian>:<id> all fit.
_ACCOUNT_RE = re.compile(r"[!-9;-~]+:[!-9;-~]+:[!-9;-~]+")
_HEX_RE = re.compile(r"[0-9a-f]*")


class UnknownAccountError(InputError):
    """The account has no leaf in this tree."""


class DuplicateAccountError(InputError):
    """An account appears twice among the leaves; `index` and `first_index` say where."""

    account: str
    index: int
    first_index: int


# --- validation helpers ------------------------------------------------------------------


def check_account(value: object, *, where: str = "account") -> str:
    """Return `value` if it is a CAIP-10-looking account id; raise FormatError otherwise.

    The rule: 1 to 256 characters of printable ASCII without spaces, shaped
    ``namespace:reference:address`` (exactly two colons, no part empty).
    """
    if not isinstance(value, str):
        raise FormatError(f"account must be a string, got {type(value).__name__}", where=where)
    if len(value) > ACCOUNT_MAX_CHARS or not _ACCOUNT_RE.fullmatch(value):
        shown = value if len(value) <= 80 else value[:77] + "..."
        raise FormatError(
            "account must be a CAIP-10 id 'namespace:reference:address' of at most "
            f"{ACCOUNT_MAX_CHARS} printable ASCII characters without spaces, got {shown!r}",
            where=where,
        )
    return value


def parse_hex(value: object, size: int, *, where: str) -> bytes:
    """Exactly `size` bytes spelled as 2*size lowercase hex digits (no 0x)."""
    if not isinstance(value, str):
        raise FormatError(f"must be a hex string, got {type(value).__name__}", where=where)
    if len(value) != 2 * size or not _HEX_RE.fullmatch(value):
        raise FormatError(
            f"must be {2 * size} lowercase hex digits ({size} bytes), got {value[:80]!r}"
            + (f" ({len(value)} characters)" if len(value) != 2 * size else ""),
            where=where,
        )
    return bytes.fromhex(value)


def _check_bytes(value: object, size: int, *, where: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != size:
        got = f"{len(value)} bytes" if isinstance(value, bytes) else type(value).__name__
        raise FormatError(f"must be {size} bytes, got {got}", where=where)
    return value


def _check_index(value: object, *, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise FormatError(f"must be an integer, got {type(value).__name__}", where=where)
    if not 0 <= value < 2**64:
        raise FormatError(f"must be in [0, 2^64), got {value}", where=where)
    return value


def _check_fields(d: object, required: Sequence[str], *, where: str) -> dict[str, Any]:
    if not isinstance(d, dict):
        raise FormatError(f"must be a JSON object, got {type(d).__name__}", where=where)
    unknown = sorted(set(d) - set(required))
    if unknown:
        raise FormatError(f"unknown field {unknown[0]!r}", where=f"{where}.{unknown[0]}")
    for key in required:
        if key not in d:
            raise FormatError(f"missing field {key!r}", where=f"{where}.{key}")
    return d


# --- the hashes ----------------------------------------------------------------------------


def _u256(x: int) -> bytes:
    return x.to_bytes(32, "big")


def _leaf_raw(account: bytes, balance: int, salt: bytes) -> bytes:
    return _sha256(_LEAF_TAG + salt + _sha256(account).digest() + _u256(balance)).digest()


def _node_raw(left: _Raw, right: _Raw) -> _Raw:
    total = left[1] + right[1]
    if total >= MAX_AMOUNT_EXCLUSIVE:
        raise AmountError(f"partial sum {total} is not below 2^127", where="node.sum")
    digest = _sha256(
        _NODE_TAG + left[0] + left[1].to_bytes(32, "big") + right[0] + right[1].to_bytes(32, "big")
    ).digest()
    return digest, total


@dataclass(frozen=True, slots=True, kw_only=True)
class Node:
    """A tree node (or leaf, or root): its hash and the sum of the balances below it."""

    hash: bytes
    sum: int

    def __post_init__(self) -> None:
        _check_bytes(self.hash, HASH_SIZE, where="node.hash")
        check_amount(self.sum, where="node.sum")

    def to_dict(self) -> dict[str, str]:
        return {"hash": self.hash.hex(), "sum": str(self.sum)}

    @classmethod
    def from_dict(cls, d: object, *, where: str = "node") -> Node:
        fields = _check_fields(d, ("hash", "sum"), where=where)
        return cls(
            hash=parse_hex(fields["hash"], HASH_SIZE, where=f"{where}.hash"),
            sum=parse_base_units(fields["sum"], where=f"{where}.sum"),
        )


# Slot setters of the frozen dataclasses, for values this module computed or loaded and
# checked itself: half the cost of the generated __init__ on the proof hot path.
_new = object.__new__
_SET_NODE = tuple(cast(Any, Node.__dict__[f]).__set__ for f in ("hash", "sum"))


def _node_unchecked(digest: bytes, total: int) -> Node:
    """A Node from values this module computed itself (skips re-validation on hot paths)."""
    n = _new(Node)
    _SET_NODE[0](n, digest)
    _SET_NODE[1](n, total)
    return n


EMPTY_ROOT: Final = Node(hash=_sha256(b"").digest(), sum=0)
"""The root of a tree without leaves (DESIGN §3, as RFC 9162)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Leaf:
    """One holder's liability: account id, balance in base units, and its 32-byte salt."""

    account: str
    balance: int
    salt: bytes

    def __post_init__(self) -> None:
        check_account(self.account, where="leaf.account")
        check_amount(self.balance, where="leaf.balance")
        _check_bytes(self.salt, SALT_SIZE, where="leaf.salt")

    def to_node(self) -> Node:
        """The leaf as a tree node: its leaf hash and its balance."""
        return _node_unchecked(
            _leaf_raw(self.account.encode("ascii"), self.balance, self.salt), self.balance
        )

    def to_dict(self) -> dict[str, str]:
        """One LEAVES.jsonl line: balance as a decimal string, salt as hex."""
        return {"account": self.account, "balance": str(self.balance), "salt": self.salt.hex()}

    @classmethod
    def from_dict(cls, d: object, *, where: str = "leaf") -> Leaf:
        fields = _check_fields(d, ("account", "balance", "salt"), where=where)
        return cls(
            account=check_account(fields["account"], where=f"{where}.account"),
            balance=parse_base_units(fields["balance"], where=f"{where}.balance"),
            salt=parse_hex(fields["salt"], SALT_SIZE, where=f"{where}.salt"),
        )


def derive_salt(round_secret: bytes, account: str) -> bytes:
    """The leaf salt of `account` in one round: keyed BLAKE2b-256(key=round_secret, account).

    One hashlib call per account (HMAC-SHA256 costs about 4 times as much). Verifiers
    never recompute salts; they read them from the proof.
    """
    _check_bytes(round_secret, 32, where="round_secret")
    check_account(account)
    return hashlib.blake2b(account.encode("ascii"), key=round_secret, digest_size=32).digest()


def leaf_hash(account: str, balance: int, salt: bytes) -> bytes:
    """H(0x00 || salt || H(utf8(account)) || u256(balance))."""
    check_account(account)
    check_amount(balance, where="balance")
    _check_bytes(salt, SALT_SIZE, where="salt")
    return _leaf_raw(account.encode("ascii"), balance, salt)


def node(left: Node, right: Node) -> Node:
    """The parent of `left` and `right`; both sums are inside its hash (the Maxwell+ fix).

    Raises AmountError when the sum reaches 2^127 (never wraps).
    """
    digest, total = _node_raw((left.hash, left.sum), (right.hash, right.sum))
    return _node_unchecked(digest, total)


def proof_path_length(index: int, size: int) -> int:
    """How many siblings an inclusion proof of leaf `index` in a tree of `size` carries.

    RFC 9162 §2.1.3.1 split into the part below the point where the paths to `index`
    and to the last leaf part (`inner`, sides from the bits of `index`) and the part
    above it, where `index` is always in the right subtree (`border`, one sibling per
    set bit) — as transparency-dev/merkle's decompInclProof.
    """
    if isinstance(index, bool) or isinstance(size, bool):
        raise InputError("index and size must be integers")
    if not 0 <= index < size:
        raise InputError(f"leaf index {index} is not below the tree size {size}")
    inner = (index ^ (size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


# --- proofs ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class InclusionProof:
    """A por-mst-v1 inclusion proof: one leaf, its siblings bottom-up, and the root."""

    account: str
    balance: int
    salt: bytes
    index: int
    size: int
    path: tuple[Node, ...]
    root: Node

    def __post_init__(self) -> None:
        check_account(self.account, where="proof.account")
        check_amount(self.balance, where="proof.balance")
        _check_bytes(self.salt, SALT_SIZE, where="proof.salt")
        _check_index(self.index, where="proof.index")
        _check_index(self.size, where="proof.size")
        if not isinstance(self.path, tuple) or not all(isinstance(p, Node) for p in self.path):
            raise FormatError("must be a tuple of Node", where="proof.path")
        if len(self.path) > _MAX_PATH:
            raise FormatError(
                f"has {len(self.path)} entries, more than any tree needs", where="proof.path"
            )
        if not isinstance(self.root, Node):
            raise FormatError("must be a Node", where="proof.root")

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "account": self.account,
            "balance": str(self.balance),
            "salt": self.salt.hex(),
            "index": self.index,
            "size": self.size,
            "path": [p.to_dict() for p in self.path],
            "root": self.root.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: object, *, where: str = "proof") -> InclusionProof:
        """Parse strictly: the format must be por-mst-v1, no field missing or unknown,
        hex lowercase of the right length, amounts canonical decimal strings."""
        if isinstance(d, dict) and "format" in d and d["format"] != FORMAT:
            # SPEC: pin parameters in the verifier; a proof naming another format is refused.
            raise FormatError(
                f"proof names format {d['format']!r}; this verifier accepts only {FORMAT!r}",
                where=f"{where}.format",
            )
        fields = _check_fields(
            d,
            ("format", "account", "balance", "salt", "index", "size", "path", "root"),
            where=where,
        )
        path = fields["path"]
        if not isinstance(path, list):
            raise FormatError(f"must be a list, got {type(path).__name__}", where=f"{where}.path")
        if len(path) > _MAX_PATH:
            raise FormatError(
                f"has {len(path)} entries, more than any tree needs", where=f"{where}.path"
            )
        return cls(
            account=check_account(fields["account"], where=f"{where}.account"),
            balance=parse_base_units(fields["balance"], where=f"{where}.balance"),
            salt=parse_hex(fields["salt"], SALT_SIZE, where=f"{where}.salt"),
            index=_check_index(fields["index"], where=f"{where}.index"),
            size=_check_index(fields["size"], where=f"{where}.size"),
            path=tuple(Node.from_dict(p, where=f"{where}.path[{i}]") for i, p in enumerate(path)),
            root=Node.from_dict(fields["root"], where=f"{where}.root"),
        )


_SET_PROOF = tuple(
    cast(Any, InclusionProof.__dict__[f]).__set__
    for f in ("account", "balance", "salt", "index", "size", "path", "root")
)


def verify_inclusion(proof: InclusionProof, *, root: Node | None = None) -> None:
    """Raise ProofError unless `proof` proves its leaf under its root (and under `root`).

    Checks index < size and the path length before hashing anything, then recomputes
    hash and sum bottom-up with the sides RFC 9162 §2.1.3.2 derives from index and size.
    Returns nothing: a proof that does not hold raises, saying what was expected and
    what was computed.
    """
    if not isinstance(proof, InclusionProof):
        raise ProofError(f"not an InclusionProof: {type(proof).__name__}")
    index, size = proof.index, proof.size
    if index >= size:
        raise ProofError("leaf index out of range", expected=f"index < size {size}", computed=index)
    want = proof_path_length(index, size)
    if len(proof.path) != want:
        raise ProofError(
            f"path length for leaf {index} of {size}", expected=want, computed=len(proof.path)
        )

    current: _Raw = (
        _leaf_raw(proof.account.encode("ascii"), proof.balance, proof.salt),
        proof.balance,
    )
    inner = (index ^ (size - 1)).bit_length()
    try:
        for level, sibling in enumerate(proof.path):
            sib: _Raw = (sibling.hash, sibling.sum)
            # RFC 9162 §2.1.3.2: below `inner` the side is bit `level` of the index; above
            # it the leaf is in the right subtree of every remaining node.
            if level >= inner or (index >> level) & 1:
                current = _node_raw(sib, current)
            else:
                current = _node_raw(current, sib)
    except AmountError as e:
        raise ProofError(f"a partial sum on the path reaches 2^127 ({e.message})") from e

    claimed = proof.root
    if current[0] != claimed.hash:
        raise ProofError("root hash", expected=claimed.hash.hex(), computed=current[0].hex())
    if current[1] != claimed.sum:
        raise ProofError("root sum", expected=claimed.sum, computed=current[1])
    if root is not None:
        if root.hash != claimed.hash:
            raise ProofError(
                "proof's root hash is not the trusted root",
                expected=root.hash.hex(),
                computed=claimed.hash.hex(),
            )
        if root.sum != claimed.sum:
            raise ProofError(
                "proof's root sum is not the trusted total", expected=root.sum, computed=claimed.sum
            )


# --- building ----------------------------------------------------------------------------------


def _hash_rows(rows: _U8) -> bytes:
    """SHA-256 of every row of a C-contiguous (m, w) uint8 array, digests concatenated.

    The loop runs in C (map over hashlib) on rows turned into bytes by numpy; slices of
    at most _HASH_BATCH rows keep the short-lived bytes objects in reused memory (bigger
    batches make the allocator return and re-fault pages, costing ~30% more).
    """
    m, w = rows.shape
    void = rows.view(f"V{w}").reshape(m)
    sha, digest = _sha256, _digest
    return b"".join(
        [
            b"".join(map(digest, map(sha, void[s : s + _HASH_BATCH].tolist())))
            for s in range(0, m, _HASH_BATCH)
        ]
    )


def _be_bytes(words: _U64) -> _U8:
    """uint64 words as (m, 8) big-endian bytes."""
    return words.astype(">u8").view(np.uint8).reshape(-1, 8)


# A level inside the build is a record array: row i = hash (32) || u256(sum) (32, big-endian),
# so a node's preimage is 0x01 followed by two neighbouring rows, one contiguous 128 bytes.
# The sums are also kept as uint64 (low, high) words for exact arithmetic.
_Level: TypeAlias = tuple[_U8, _U64, _U64]

# A stored level: one 48-byte record per node, so a proof's sibling is one cache line
# and one .item() call -> (hash bytes, low word, high word).
_STORED = np.dtype([("hash", f"V{HASH_SIZE}"), ("lo", "<u8"), ("hi", "<u8")])


def _stored_bytes(level: npt.NDArray[Any]) -> _U8:
    """A stored level as (m, 48) bytes: [:, :32] is the hashes."""
    return level.view(np.uint8).reshape(len(level), _STORED.itemsize)


def _records(hashes: _U8, lo: _U64, hi: _U64 | None) -> _U8:
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


def _reduce(rec: _U8, lo: _U64, hi: _U64 | None) -> tuple[_U8, _U64, _U64 | None]:
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
        pre = np.empty((p, _NODE_PREIMAGE), np.uint8)
        pre[:, 0] = 1
        pre[:, 1:] = rec[: 2 * p].reshape(p, 4 * HASH_SIZE)
        out[:p, :32] = np.frombuffer(_hash_rows(pre), np.uint8).reshape(p, HASH_SIZE)
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


def _run_shares(fn: Callable[[int, int], None], count: int, workers: int) -> None:
    """Run fn(start, stop) over [0, count) in `workers` contiguous shares.

    Shares 1.. run in forked children (they inherit the inputs without copying), share 0
    runs here; fn writes its results into _Shared arrays.
    """
    bounds = [count * w // workers for w in range(workers + 1)]
    if workers == 1:
        fn(0, count)
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


def _balances_to_words(balances: Iterable[int] | npt.NDArray[Any], n: int) -> tuple[_U64, _U64]:
    """Balances as (low, high) uint64 words, each checked to be an int in [0, 2^127)."""
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
            check_amount(int(balances[first]), where=f"balances[{first}]")
        if kind in "iu":
            return balances.astype(np.uint64), np.zeros(n, np.uint64)
        balances = balances.tolist()
    lo = np.empty(n, np.uint64)
    hi = np.zeros(n, np.uint64)
    it = iter(balances)
    pos = 0
    while True:
        part = list(islice(it, _CHUNK))
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
            check_amount(b, where=f"balances[{pos + j}]")
            lo[pos + j] = b & 0xFFFF_FFFF_FFFF_FFFF
            hi[pos + j] = b >> 64
        pos += m
    if pos != n:
        raise InputError(f"{pos} balances for {n} salts", where="balances")
    return lo, hi


def _exact_total(lo: _U64, hi: _U64) -> int:
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


def _encode_accounts(part: list[Any], base: int) -> tuple[bytes, npt.NDArray[np.int64]]:
    """Validate a chunk of account ids (vectorised); return their ASCII, each followed by
    a newline, and the chunk-local offsets of the ids (len(part) + 1 of them)."""
    m = len(part)
    try:
        raw = ("\n".join(part) + "\n").encode("ascii")
        ok = True
    except (TypeError, UnicodeEncodeError):
        ok = False
    if ok:
        arr = np.frombuffer(raw, np.uint8)
        newlines = np.flatnonzero(arr == 0x0A)
        ok = len(newlines) == m  # else some id holds a newline
    if ok:
        offs = np.zeros(m + 1, np.int64)
        offs[1:] = newlines + 1
        lens = np.diff(offs) - 1
        ok = bool(lens.min() >= 1 and lens.max() <= ACCOUNT_MAX_CHARS)
        # every other byte printable ASCII (0x21..0x7e)
        ok = ok and int(np.count_nonzero((arr - np.uint8(0x21)) > np.uint8(0x7E - 0x21))) == m
        if ok:
            # exactly two colons per account, neither first, last, nor next to the other
            colons = np.flatnonzero(arr == 0x3A)
            ok = len(colons) == 2 * m
            if ok:
                first, second = colons[0::2], colons[1::2]
                ok = bool(
                    ((first > offs[:-1]) & (second > first + 1) & (second < newlines - 1)).all()
                )
    if not ok:
        for j, acct in enumerate(part):
            check_account(acct, where=f"accounts[{base + j}]")
        raise InputError("invalid account id in chunk", where=f"accounts[{base}:]")  # unreachable
    return raw, offs


_32 = np.uint64(32)


def _split_packed(packed: _U64) -> tuple[_U32, _U32]:
    """(high, low) 32-bit halves of each uint64."""
    if sys.byteorder == "little":  # views and one copy each, no 64-bit temporaries
        halves = packed.view(np.uint32).reshape(-1, 2)
        return np.ascontiguousarray(halves[:, 1]), np.ascontiguousarray(halves[:, 0])
    return (packed >> _32).astype(np.uint32), (packed & np.uint64(0xFFFF_FFFF)).astype(np.uint32)


_STEP = 1 << 20  # rows per slice when indexing with a 32-bit index (numpy makes it intp)


class _Builder:
    """The state of one build; its methods run in the parent or in forked workers."""

    def __init__(
        self, n: int, salts: bytes, lo: _U64, hi: _U64, workers: int, *, one_word: bool
    ) -> None:
        self.n = n
        self.one_word = one_word  # the total is below 2^64: no high words to carry
        self.salts = salts
        self.salt_rows = np.frombuffer(salts, np.uint8).reshape(n, SALT_SIZE)
        self.lo = lo
        self.hi = hi
        self.workers = workers
        self.shared = _Shared(workers > 1)
        self.blob: _U8 = np.empty(0, np.uint8)  # account ids, each + "\n"; grown by estimate
        self.blob_len = 0
        self.offsets: _U64 = np.zeros(n + 1, np.uint64)
        self.leaf_hashes: _U8 = self.shared.empty((n, HASH_SIZE), np.uint8)
        # sort keys written while hashing, while the chunk is in cache:
        # (first 4 bytes of the hash, big-endian) << 32 | input row
        self.account_packed: _U64 = self.shared.empty((n,), np.uint64)
        self.leaf_packed: _U64 = self.shared.empty((n,), np.uint64)
        self._pre = np.zeros((0, _LEAF_PREIMAGE), np.uint8)
        self._block_pres: list[_U8] = []  # node preimage buffers of _full_block, per level

    # --- leaves ---------------------------------------------------------------------
    def _leaf_chunk(self, s: int, e: int, raw: bytes) -> None:
        """Leaves [s, e); `raw` holds their account ids, each followed by a newline."""
        m = e - s
        ids = raw.split(b"\n")  # bytes objects made in C: the cheapest hashlib inputs
        ids.pop()
        digests = b"".join(map(_digest, map(_sha256, ids)))
        a = np.frombuffer(digests, np.uint8).reshape(m, HASH_SIZE)
        rows = np.arange(s, e, dtype=np.uint64)
        self.account_packed[s:e] = (a.view(">u4")[:, 0].astype(np.uint64) << _32) | rows
        if len(self._pre) != m:
            self._pre = np.zeros((m, _LEAF_PREIMAGE), np.uint8)
        pre = self._pre  # byte 0 (tag 0x00) and bytes 65..80 (u256 high zeros) stay zero
        pre[:, 1:33] = self.salt_rows[s:e]
        pre[:, 33:65] = a
        if not self.one_word:  # else bytes 81..88 stay zero
            pre[:, 81:89] = _be_bytes(self.hi[s:e])
        pre[:, 89:97] = _be_bytes(self.lo[s:e])
        leaves = np.frombuffer(_hash_rows(pre), np.uint8).reshape(m, HASH_SIZE)
        self.leaf_hashes[s:e] = leaves
        self.leaf_packed[s:e] = (leaves.view(">u4")[:, 0].astype(np.uint64) << _32) | rows

    def _append_blob(self, raw: bytes, rows: int, rows_left: int) -> None:
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

    def ingest_accounts(self, accounts: Iterable[str], hash_now: bool) -> None:
        """Validate and store the account ids; with one worker hash the leaves meanwhile."""
        it = iter(accounts)
        pos = 0
        n = self.n
        while pos < n:
            part = list(islice(it, min(_CHUNK, n - pos)))
            if not part:
                break
            raw, local = _encode_accounts(part, pos)
            e = pos + len(part)
            self.offsets[pos + 1 : e + 1] = local[1:] + self.blob_len
            self._append_blob(raw, e - pos, n - e)
            if hash_now:
                self._leaf_chunk(pos, e, raw)
            pos = e
        if pos != n or next(it, None) is not None:
            raise InputError(f"the number of accounts differs from the {n} salts", where="accounts")

    def hash_leaves(self, start: int, stop: int) -> None:
        """Leaf hashes of [start, stop) from the stored account blob (worker entry point)."""
        for s in range(start, stop, _CHUNK):
            e = min(s + _CHUNK, stop)
            raw = self.blob[int(self.offsets[s]) : int(self.offsets[e])].tobytes()
            self._leaf_chunk(s, e, raw)

    # --- order ---------------------------------------------------------------------
    def account(self, i: int) -> str:
        ident = self.blob[int(self.offsets[i]) : int(self.offsets[i + 1]) - 1]
        return ident.tobytes().decode("ascii")

    def account_index(self, position: _U32) -> tuple[_U32, _U32]:
        """Account keys sorted, with the leaf position of each; refuses duplicate accounts.

        `position` maps an input row to its leaf position."""
        packed = self.account_packed
        del self.account_packed
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
                    a = self.account(i)
                    if a in seen and (dup is None or i < dup[1]):
                        dup = (seen[a], i, a)
                    seen.setdefault(a, i)
            if dup is not None:
                first, second, acct = dup
                err = DuplicateAccountError(
                    f"duplicate account {acct!r} (leaves {first} and {second}); "
                    "an account appears at most once",
                    where=f"accounts[{second}]",
                )
                err.account, err.index, err.first_index = acct, second, first
                raise err
        n = self.n
        apos = np.empty(n, np.uint32)
        for s in range(0, n, _STEP):
            apos[s : s + _STEP] = position[inputs[s : s + _STEP]]
        return keys, apos

    def leaf_order(self) -> _U32:
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
    def plan_levels(self, order: _U32) -> None:
        n = self.n
        self.order = order
        self.top = max(_LOW_LEVELS, (n - 1).bit_length())
        self.block_top = min(_BLOCK_LOG, self.top)
        self.levels: list[npt.NDArray[Any]] = [
            self.shared.empty((-(-n >> lvl),), _STORED, zero=self.one_word)
            for lvl in range(_LOW_LEVELS, self.block_top + 1)
        ]

    def hash_blocks(self, start: int, stop: int) -> None:
        """Subtrees [start, stop) of 2^_BLOCK_LOG leaves, bottom-up (worker entry point)."""
        size = 1 << _BLOCK_LOG
        # np.take on 32-byte void items gathers ~5x faster than fancy-indexing (n, 32)
        hashes = self.leaf_hashes.view(f"V{HASH_SIZE}").reshape(self.n)
        for b in range(start, stop):
            idx = self.order[b * size : (b + 1) * size]
            if len(idx) == size:
                self._full_block(b, np.take(hashes, idx), idx)
                continue
            lo = np.take(self.lo, idx)
            hi = None if self.one_word else np.take(self.hi, idx)
            rec = _records(np.take(hashes, idx).view(np.uint8).reshape(len(idx), HASH_SIZE), lo, hi)
            for lvl in range(1, self.block_top + 1):
                rec, lo, hi = _reduce(rec, lo, hi)
                if lvl >= _LOW_LEVELS:
                    at, end = b << (_BLOCK_LOG - lvl), (b << (_BLOCK_LOG - lvl)) + len(lo)
                    level = self.levels[lvl - _LOW_LEVELS]
                    _stored_bytes(level)[at:end, :32] = rec[:, :32]
                    level["lo"][at:end] = lo
                    if hi is not None:  # else the level's high words stay zero
                        level["hi"][at:end] = hi

    def _full_block(self, b: int, leaves: npt.NDArray[Any], idx: _U32) -> None:
        """hash_blocks for a whole subtree of 2^_BLOCK_LOG leaves (no odd nodes on any
        level): each level's hashes and big-endian sums are written straight into the
        next level's node preimages (reused buffers whose tag and zero bytes stay put)."""
        lo = np.take(self.lo, idx)
        hi = None if self.one_word else np.take(self.hi, idx)
        h = leaves.view(np.uint8).reshape(len(idx), HASH_SIZE)
        pres = self._block_pres
        if not pres:
            for lvl in range(1, _BLOCK_LOG + 1):
                pre = np.zeros((1 << (_BLOCK_LOG - lvl), _NODE_PREIMAGE), np.uint8)
                pre[:, 0] = 1
                pres.append(pre)
        for lvl in range(1, _BLOCK_LOG + 1):
            pre = pres[lvl - 1]
            pre[:, 1:33] = h[0::2]
            pre[:, 65:97] = h[1::2]
            pre[:, 57:65] = _be_bytes(lo[0::2])
            pre[:, 121:129] = _be_bytes(lo[1::2])
            if hi is not None:
                pre[:, 49:57] = _be_bytes(hi[0::2])
                pre[:, 113:121] = _be_bytes(hi[1::2])
            h = np.frombuffer(_hash_rows(pre), np.uint8).reshape(len(pre), HASH_SIZE)
            llo = lo[0::2]
            slo = llo + lo[1::2]
            if hi is not None:
                shi = hi[0::2] + hi[1::2] + (slo < llo)
                if int(shi.max()) >= 2**63:
                    raise AmountError("a partial sum reaches 2^127", where="balances")
                hi = shi
            lo = slo
            if lvl >= _LOW_LEVELS:
                at = b << (_BLOCK_LOG - lvl)
                end = at + len(lo)
                level = self.levels[lvl - _LOW_LEVELS]
                _stored_bytes(level)[at:end, :32] = h
                level["lo"][at:end] = lo
                if hi is not None:  # else the level's high words stay zero
                    level["hi"][at:end] = hi

    def finish_levels(self) -> None:
        last = self.levels[-1]
        lo, hi = np.array(last["lo"]), np.array(last["hi"])
        rec = _records(_stored_bytes(last)[:, :32], lo, hi)
        for _ in range(self.block_top + 1, self.top + 1):
            rec, lo, up_hi = _reduce(rec, lo, hi)
            hi = np.zeros(len(lo), np.uint64) if up_hi is None else up_hi
            level = np.zeros(len(lo), _STORED)
            _stored_bytes(level)[:, :32] = rec[:, :32]
            level["lo"], level["hi"] = lo, hi
            self.levels.append(level)


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
    key = _check_bytes(pad_random, 32, where="pad_random")
    accounts, salts = [], []
    for j in range(count):
        tag = j.to_bytes(8, "big")
        ident = hashlib.blake2b(tag, key=key, digest_size=20, person=b"por-mst-pad-id").hexdigest()
        accounts.append(f"por:pad:{ident}")
        salts.append(
            hashlib.blake2b(tag, key=key, digest_size=32, person=b"por-mst-pad-salt").digest()
        )
    return accounts, b"".join(salts)


# --- the tree ----------------------------------------------------------------------------------

_MAGIC: Final = b"POR-MST\x00"
_FILE_VERSION: Final = 1
_HEADER = struct.Struct("<8sIIQQ32s32s32s")  # magic version low n blob_len root sum digest


def _pad8(length: int) -> int:
    return -length % 8


def _le(arr: npt.NDArray[Any], dtype: str) -> npt.NDArray[Any]:
    """`arr` in a fixed little-endian dtype, without a copy when it already is."""
    return np.ascontiguousarray(arr, dtype=dtype)


class SumTree:
    """A built por-mst-v1 tree: root, size, proofs by account or index, serialisation.

    Immutable after construction. Leaf data is kept in input order (``_order`` maps a
    leaf position to its input row), levels from ``_LOW_LEVELS`` up in numpy arrays.
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

    def __init__(
        self,
        *,
        n: int,
        low: int,
        blob: Any,
        offsets: _U64,
        salts: Any,
        lo: _U64,
        hi: _U64,
        order: _U32,
        akeys: _U32,
        apos: _U32,
        levels: list[npt.NDArray[Any]],
        root: Node,
    ) -> None:
        """Private: use build, build_columns or from_bytes."""
        self._n = n
        self._low = low
        self._blob = blob  # bytes-like: ASCII account ids, concatenated
        self._offsets = offsets
        self._salts = salts  # bytes-like: n * 32
        self._lo, self._hi = lo, hi
        self._order = order
        self._akeys, self._apos = akeys, apos
        self._levels = levels
        self._root = root
        arrays: list[npt.NDArray[Any]] = [offsets, lo, hi, order, akeys, apos, *levels]
        for arr in arrays:
            arr.flags.writeable = False
        # for proofs: each stored level below the root, and the small top levels as ready
        # Node objects (at most 2 * _CACHED_NODES of them)
        self._upper: list[tuple[npt.NDArray[Any], int, list[Node] | None]] = []
        for level in levels[:-1]:
            cached = None
            if len(level) <= _CACHED_NODES:
                cached = [_node_unchecked(h, lo_ | hi_ << 64) for h, lo_, hi_ in level.tolist()]
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
            accounts, balances, bytes(salts), workers=workers, pad_to=pad_to, pad_random=pad_random
        )

    @classmethod
    def build_columns(
        cls,
        accounts: Iterable[str],
        balances: Iterable[int] | npt.NDArray[Any],
        salts: bytes,
        *,
        workers: int = 1,
        pad_to: int | None = None,
        pad_random: bytes | None = None,
    ) -> SumTree:
        """Build from columns: account ids, balances and the salts concatenated (n * 32).

        `accounts` and `balances` may be any iterables (read once, so a generator keeps
        memory down) or, for balances, a numpy integer array; `len(salts) // 32` fixes n.
        Raises DuplicateAccountError (an InputError) naming a repeated account,
        AmountError for a balance or a total outside [0, 2^127), FormatError for a bad
        account id. `workers > 1` hashes in that many processes (fork; ignored for small
        trees or where fork is unavailable). `pad_to` adds zero-balance leaves up to that
        count, their ids and salts derived from the 32 `pad_random` bytes.
        """
        salts = _check_salts(salts)
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise InputError(
                f"workers must be a positive integer, got {workers!r}", where="workers"
            )
        n_real = len(salts) // SALT_SIZE
        pad_accounts, pad_salts = _pad_columns(n_real, pad_to, pad_random)
        if pad_accounts:
            count = len(pad_accounts)
            accounts = chain(accounts, pad_accounts)
            if isinstance(balances, np.ndarray) and balances.dtype.kind in "iu":
                balances = np.concatenate((balances, np.zeros(count, balances.dtype)))
            else:
                balances = chain(balances, [0] * count)
            salts += pad_salts
        n = len(salts) // SALT_SIZE
        if n > MAX_LEAVES:
            raise InputError(f"{n} leaves exceed the limit of {MAX_LEAVES}", where="salts")

        lo, hi = _balances_to_words(balances, n)
        total = _exact_total(lo, hi)
        if total >= MAX_AMOUNT_EXCLUSIVE:
            raise AmountError(
                f"the balances add up to {total}, not below 2^127; the root sum would overflow",
                where="balances",
            )
        if workers > 1 and (n < _PARALLEL_MIN or not _fork_available()):
            workers = 1
        b = _Builder(n, salts, lo, hi, workers, one_word=total < 2**64)
        b.ingest_accounts(accounts, hash_now=workers == 1)
        if n == 0:
            return cls(
                n=0,
                low=_LOW_LEVELS,
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
        if workers > 1:
            _run_shares(b.hash_leaves, n, workers)
        order = b.leaf_order()
        position = np.empty(n, np.uint32)  # input row -> leaf position
        for s in range(0, n, _STEP):
            position[order[s : s + _STEP]] = np.arange(s, min(s + _STEP, n), dtype=np.uint32)
        akeys, apos = b.account_index(position)
        del position
        b.plan_levels(order)
        blocks = -(-n >> _BLOCK_LOG)
        _run_shares(b.hash_blocks, blocks, workers if blocks >= 2 else 1)
        del b.leaf_hashes
        b.finish_levels()
        top_hash, top_lo, top_hi = b.levels[-1].item(0)
        root = Node(hash=top_hash, sum=top_lo | top_hi << 64)
        if root.sum != total:  # cannot happen; a wrong sum must never be published
            raise AmountError(f"root sum {root.sum} differs from the total {total}")
        return cls(
            n=n,
            low=_LOW_LEVELS,
            blob=b.blob[: b.blob_len].data,
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
        return bytes(self._blob[self._offsets.item(row) : self._offsets.item(row + 1) - 1])

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
        level: list[_Raw] = []
        for j in range(c0, c1):
            acct, bal, salt = self._row_leaf(order.item(j))
            level.append((_leaf_raw(acct, bal, salt), bal))
        path: list[Node] = []
        k = i - c0
        while len(level) > 1:
            if k ^ 1 < len(level):
                path.append(_node_unchecked(*level[k ^ 1]))
            nxt = [_node_raw(level[t], level[t + 1]) for t in range(0, len(level) - 1, 2)]
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
                    path.append(_node_unchecked(h, lo | hi << 64))
            k >>= 1
        acct, bal, salt = self._row_leaf(order.item(i))
        # every field comes from this tree, checked when it was built or loaded
        proof = _new(InclusionProof)
        values = (acct.decode("ascii"), bal, salt, i, n, tuple(path), self._root)
        for setter, value in zip(_SET_PROOF, values, strict=True):
            setter(proof, value)
        return proof

    def export_leaves(self) -> Iterator[dict[str, str]]:
        """Every leaf in tree order as a LEAVES.jsonl object {account, balance, salt}."""
        for i in range(self._n):
            acct, bal, salt = self._row_leaf(self._order.item(i))
            yield {"account": acct.decode("ascii"), "balance": str(bal), "salt": salt.hex()}

    # --- serialisation -----------------------------------------------------------------
    def _sections(self) -> list[Any]:
        parts: list[Any] = [memoryview(self._salts), memoryview(self._blob)]
        parts.append(b"\x00" * _pad8(len(self._blob)))
        parts += [
            _le(self._offsets, "<u8"),
            _le(self._lo, "<u8"),
            _le(self._hi, "<u8"),
            _le(self._order, "<u4"),
            b"\x00" * _pad8(4 * self._n),
            _le(self._akeys, "<u4"),
            _le(self._apos, "<u4"),
        ]
        parts += [level.view(np.uint8) for level in self._levels]
        return [p.data.cast("B") if isinstance(p, np.ndarray) else p for p in parts]

    def to_byte_chunks(self) -> Iterator[bytes | memoryview]:
        """to_bytes() in pieces, for writing a large tree without one more copy of it."""
        sections = self._sections()
        digest = _sha256()
        for part in sections:
            digest.update(part)
        yield _HEADER.pack(
            _MAGIC,
            _FILE_VERSION,
            self._low,
            self._n,
            len(self._blob),
            self._root.hash,
            _u256(self._root.sum),
            digest.digest(),
        )
        yield from sections

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
        cls, buf: bytes | bytearray | memoryview, *, body_checked: bool = False
    ) -> SumTree:
        """Load a tree written by to_bytes; FormatError on anything else.

        Arrays are views into `buf` (no copy), so pass bytes or a read-only buffer and
        keep it unchanged while the tree lives. Checked: magic, version, exact length,
        the body's SHA-256, and the consistency proofs rely on (see _check_loaded).
        `body_checked=True` skips hashing the body (a second full pass over the file)
        when the caller has just matched the SHA-256 of the whole file against a record
        it trusts (the store does); everything else is still checked.
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
        levels = [take(m, _STORED) for m in level_sizes]
        _check_loaded(
            n=n,
            blob=blob,
            offsets=offsets,
            lo=lo,
            hi=hi,
            order=order,
            akeys=akeys,
            apos=apos,
            levels=levels,
            root=root,
        )
        return cls(
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


def _check_loaded(
    *,
    n: int,
    blob: memoryview,
    offsets: _U64,
    lo: _U64,
    hi: _U64,
    order: _U32,
    akeys: _U32,
    apos: _U32,
    levels: list[npt.NDArray[Any]],
    root: Node,
) -> None:
    """What a reader relies on to serve correct proofs; FormatError when it does not hold.

    Not re-hashed: the levels (that is a rebuild) and the account keys (a wrong key can
    only make a lookup miss, since every hit is confirmed against the stored id).
    """

    def bad(what: str) -> FormatError:
        return FormatError(f"inconsistent tree file: {what}", where="tree")

    if int(offsets[0]) != 0 or int(offsets[-1]) != len(blob):
        raise bad("account offsets do not span the account blob")
    chars = np.frombuffer(blob, np.uint8)
    if n:
        lens = np.diff(offsets.astype(np.int64))
        if lens.min() < 2 or lens.max() > ACCOUNT_MAX_CHARS + 1:
            raise bad("an account id length is out of range")
        if not (chars[offsets[1:].astype(np.int64) - 1] == 0x0A).all():
            raise bad("an account id is not followed by its newline")
        if int(hi.max()) >= 2**63 or int(order.max()) >= n or int(apos.max()) >= n:
            raise bad("a balance, leaf order or account position is out of range")
    if int(np.count_nonzero((chars - np.uint8(0x21)) > np.uint8(0x7E - 0x21))) != n:
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
    if stored != (root.hash, root.sum) or root.sum != _exact_total(lo, hi):
        raise bad("the root does not match the top level and the balances")


__all__ = [
    "ACCOUNT_MAX_CHARS",
    "EMPTY_ROOT",
    "FORMAT",
    "MAX_LEAVES",
    "DuplicateAccountError",
    "InclusionProof",
    "Leaf",
    "Node",
    "SumTree",
    "UnknownAccountError",
    "check_account",
    "derive_salt",
    "leaf_hash",
    "node",
    "parse_hex",
    "proof_path_length",
    "verify_inclusion",
]
