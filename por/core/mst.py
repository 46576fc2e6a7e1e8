"""The liabilities sum tree ``por-mst-v1``: its rules, and the verifier of its proofs.

This module is what an auditor re-implements (DESIGN §3, docs/sumtree.md):

    H = SHA-256, u256(x) = x as 32 bytes big-endian, every balance and sum in [0, 2^127)
    leaf  hash = H(0x00 || salt || H(utf8(account)) || u256(balance)), sum = balance
    node  hash = H(0x01 || L.hash || u256(L.sum) || R.hash || u256(R.sum)), sum = L.sum + R.sum
    order leaves by leaf hash, ascending bytewise; an account appears at most once
    shape RFC 9162 §2.1.1 (left subtree = largest power of two < n); no leaf duplicated
    empty tree hash = H(""), sum = 0

Both child sums are inside the parent's hash: a parent cannot claim less than its
children hold (the Maxwell flaw, see tests/core/test_sumtree_attacks.py).

Here: the constants and domain tags, account ids, the leaf and node functions, salts,
the values `Node`, `Leaf` and `InclusionProof` with their strict wire forms, and
`verify_inclusion`, a pure function of the proof (and a trusted root) in the manner of
transparency-dev/merkle's proof/verify.go. Building a tree is elsewhere: the `SumTree`
object and its file format in `por.core.sumtree`, its numpy engine in
`por.core.mst_build`. This module needs only the standard library: no numpy, no
processes, no memory maps, no I/O.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeAlias, cast

from por.core.amounts import MAX_AMOUNT_EXCLUSIVE, check_amount, parse_base_units
from por.errors import AmountError, FormatError, InputError, ProofError

FORMAT: Final = "por-mst-v1"
"""The proof format this module produces and the only one its verifier accepts."""

HASH_SIZE: Final = 32
SALT_SIZE: Final = 32
ACCOUNT_MAX_CHARS: Final = 256
MAX_LEAVES: Final = 2**32 - 1
"""Leaf indices are stored as uint32; 4·10^9 holders is far beyond one tree's memory."""

LEAF_TAG: Final = b"\x00"
NODE_TAG: Final = b"\x01"
LEAF_PREIMAGE_SIZE: Final = 1 + SALT_SIZE + HASH_SIZE + 32  # 97 bytes
NODE_PREIMAGE_SIZE: Final = 1 + 2 * (HASH_SIZE + 32)  # 129 bytes
MAX_PATH: Final = 64
"""No tree of fewer than 2^64 leaves needs a longer inclusion path."""

_sha256 = hashlib.sha256

# (hash, sum) without the Node wrapper, for the hashing loops
_Raw: TypeAlias = tuple[bytes, int]

# "namespace:reference:address", printable ASCII without spaces; CAIP-10 ids
# (eip155:1:0x..., solana:<genesis>:<base58>) and ledger:<custodian>:<id> all fit.
_ACCOUNT_RE = re.compile(r"[!-9;-~]+:[!-9;-~]+:[!-9;-~]+")
_HEX_RE = re.compile(r"[0-9a-f]*")


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


def check_bytes(value: object, size: int, *, where: str) -> bytes:
    """Return `value` if it is exactly `size` bytes; raise FormatError otherwise."""
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


def leaf_raw(account: bytes, balance: int, salt: bytes) -> bytes:
    """The leaf hash of already-checked values (ASCII account bytes)."""
    return _sha256(LEAF_TAG + salt + _sha256(account).digest() + _u256(balance)).digest()


def node_raw(left: _Raw, right: _Raw) -> _Raw:
    """The parent (hash, sum) of two (hash, sum) pairs; AmountError at a sum of 2^127."""
    total = left[1] + right[1]
    if total >= MAX_AMOUNT_EXCLUSIVE:
        raise AmountError(f"partial sum {total} is not below 2^127", where="node.sum")
    digest = _sha256(
        NODE_TAG + left[0] + left[1].to_bytes(32, "big") + right[0] + right[1].to_bytes(32, "big")
    ).digest()
    return digest, total


@dataclass(frozen=True, slots=True, kw_only=True)
class Node:
    """A tree node (or leaf, or root): its hash and the sum of the balances below it."""

    hash: bytes
    sum: int

    def __post_init__(self) -> None:
        check_bytes(self.hash, HASH_SIZE, where="node.hash")
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


# Slot setters of the frozen dataclasses, for values por computed or loaded and checked
# itself: half the cost of the generated __init__ on the proof hot path.
_new = object.__new__
_SET_NODE = tuple(cast(Any, Node.__dict__[f]).__set__ for f in ("hash", "sum"))


def node_unchecked(digest: bytes, total: int) -> Node:
    """A Node from values por computed itself (skips re-validation on hot paths)."""
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
        check_bytes(self.salt, SALT_SIZE, where="leaf.salt")

    def to_node(self) -> Node:
        """The leaf as a tree node: its leaf hash and its balance."""
        return node_unchecked(
            leaf_raw(self.account.encode("ascii"), self.balance, self.salt), self.balance
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
    check_bytes(round_secret, 32, where="round_secret")
    check_account(account)
    return hashlib.blake2b(account.encode("ascii"), key=round_secret, digest_size=32).digest()


def leaf_hash(account: str, balance: int, salt: bytes) -> bytes:
    """H(0x00 || salt || H(utf8(account)) || u256(balance))."""
    check_account(account)
    check_amount(balance, where="balance")
    check_bytes(salt, SALT_SIZE, where="salt")
    return leaf_raw(account.encode("ascii"), balance, salt)


def node(left: Node, right: Node) -> Node:
    """The parent of `left` and `right`; both sums are inside its hash (the Maxwell+ fix).

    Raises AmountError when the sum reaches 2^127 (never wraps).
    """
    digest, total = node_raw((left.hash, left.sum), (right.hash, right.sum))
    return node_unchecked(digest, total)


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


# --- aligned subtrees (a tree built in pieces: por.core.mst_parts) --------------------------


def cover_range(start: int, stop: int) -> list[tuple[int, int]]:
    """The aligned subtrees that tile leaf positions [start, stop), left to right.

    Each is (first position, level): 2^level leaves from a position that is a multiple
    of 2^level, the largest such block that fits at that point — the canonical dyadic
    cover, at most 2·log2(stop - start) + 2 blocks. Every aligned block inside
    [start, stop) lies inside exactly one of them, so their roots, whoever hashed them,
    are nodes of the one tree over all the leaves (RFC 9162 §2.1.1 shape).
    """
    for name, value in (("start", start), ("stop", stop)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InputError(f"must be a non-negative integer, got {value!r}", where=name)
    if stop < start:
        raise InputError(f"range [{start}, {stop}) ends before it starts", where="stop")
    out: list[tuple[int, int]] = []
    pos = start
    while pos < stop:
        # the largest power of two that divides pos (any, at 0) and still fits
        level = (pos & -pos).bit_length() - 1 if pos else (stop - pos).bit_length() - 1
        while (1 << level) > stop - pos:
            level -= 1
        out.append((pos, level))
        pos += 1 << level
    return out


def merge_subtree_roots(size: int, subtrees: Sequence[tuple[int, int, Node]]) -> Node:
    """The root of a tree of `size` leaves from the roots of aligned subtrees tiling it.

    `subtrees` holds (first position, level, root) of blocks of 2^level leaves, each at
    a multiple of 2^level, one after another from position 0 to `size` (any aligned
    tiling, e.g. `cover_range` of each piece, pieces in order). A block that is a right
    child joins its left sibling as soon as it arrives; what is left is one block per
    set bit of `size`, largest first, joined from the right — RFC 9162 §2.1.1, where the
    left subtree of n leaves holds the largest power of two below n. So the result is
    the root of the whole tree built at once. InputError when the blocks do not tile
    [0, size); AmountError when a sum reaches 2^127.
    """
    if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_LEAVES:
        raise InputError(f"must be an integer in [0, {MAX_LEAVES}], got {size!r}", where="size")
    stack: list[tuple[int, _Raw]] = []  # (level, (hash, sum)) of the blocks not yet joined
    pos = 0
    for i, item in enumerate(subtrees):
        where = f"subtrees[{i}]"
        if not isinstance(item, tuple) or len(item) != 3:
            raise InputError("must be (position, level, Node)", where=where)
        start, level, root = item
        if not isinstance(root, Node):
            raise InputError(f"not a Node: {type(root).__name__}", where=where)
        if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level < 64:
            raise InputError(f"level must be an integer in [0, 64), got {level!r}", where=where)
        if start != pos:
            raise InputError(f"starts at leaf {start!r}; the tiling is at leaf {pos}", where=where)
        if start % (1 << level) or start + (1 << level) > size:
            raise InputError(
                f"2^{level} leaves at {start} are not an aligned block of [0, {size})",
                where=where,
            )
        pos = start + (1 << level)
        raw: _Raw = (root.hash, root.sum)
        # a right child (bit `level` of its position set) meets its finished left sibling
        while (start >> level) & 1 and stack and stack[-1][0] == level:
            raw = node_raw(stack.pop()[1], raw)
            start -= 1 << level
            level += 1
        stack.append((level, raw))
    if pos != size:
        raise InputError(f"the subtrees cover {pos} of the {size} leaves", where="subtrees")
    if not stack:
        return EMPTY_ROOT
    _, raw = stack.pop()
    while stack:
        raw = node_raw(stack.pop()[1], raw)
    return node_unchecked(*raw)


# --- the proof -----------------------------------------------------------------------------


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
        check_bytes(self.salt, SALT_SIZE, where="proof.salt")
        _check_index(self.index, where="proof.index")
        _check_index(self.size, where="proof.size")
        if not isinstance(self.path, tuple) or not all(isinstance(p, Node) for p in self.path):
            raise FormatError("must be a tuple of Node", where="proof.path")
        if len(self.path) > MAX_PATH:
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
        if len(path) > MAX_PATH:
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
        leaf_raw(proof.account.encode("ascii"), proof.balance, proof.salt),
        proof.balance,
    )
    inner = (index ^ (size - 1)).bit_length()
    try:
        for level, sibling in enumerate(proof.path):
            sib: _Raw = (sibling.hash, sibling.sum)
            # RFC 9162 §2.1.3.2: below `inner` the side is bit `level` of the index; above
            # it the leaf is in the right subtree of every remaining node.
            if level >= inner or (index >> level) & 1:
                current = node_raw(sib, current)
            else:
                current = node_raw(current, sib)
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


__all__ = [
    "ACCOUNT_MAX_CHARS",
    "EMPTY_ROOT",
    "FORMAT",
    "HASH_SIZE",
    "LEAF_PREIMAGE_SIZE",
    "LEAF_TAG",
    "MAX_LEAVES",
    "MAX_PATH",
    "NODE_PREIMAGE_SIZE",
    "NODE_TAG",
    "SALT_SIZE",
    "DuplicateAccountError",
    "InclusionProof",
    "Leaf",
    "Node",
    "check_account",
    "check_bytes",
    "cover_range",
    "derive_salt",
    "leaf_hash",
    "leaf_raw",
    "merge_subtree_roots",
    "node",
    "node_raw",
    "node_unchecked",
    "parse_hex",
    "proof_path_length",
    "verify_inclusion",
]
