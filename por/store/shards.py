"""A sum tree as content-addressed shards in an object store (`por-mst-shards-v1`).

A tree of n leaves is cut into aligned chunks of `shard_leaves` = 2^k leaves (the last
one shorter). In the RFC 9162 shape each such chunk is exactly one subtree of the whole
tree (every split point of a range longer than 2^k that starts at a multiple of 2^k is a
multiple of 2^k), and the subtree of a chunk is the por-mst-v1 tree of its leaves (their
order by leaf hash is the same). So each tree shard is a plain `SumTree` file
(`SumTree.to_bytes`) of one chunk, and the levels above the chunks are the tree of the
chunk roots: c = ceil(n / 2^k) nodes whose RFC 9162 tree has the same shape as the top
of the whole tree (the largest power of two below c is the largest below n, over 2^k).

The account index is sharded by the first `index_bits` bits of SHA-256(account id):
sorted 40-byte records (32-byte SHA-256 of the account, 8-byte big-endian leaf position).
The top file is small canonical JSON::

    {"format": "por-mst-shards-v1", "size": n, "root": {"hash", "sum"},
     "shard_leaves": 2^k, "shards": [{"sha256", "hash", "sum"}, ...],
     "index_bits": b, "index": [sha256 of index shard 0 .. 2^b - 1]}

Every object is stored under its SHA-256 (por.store.objects). The database row of the
attestation records the top file's SHA-256, the top file records each shard's, so a
proof is served from bytes that hash, link by link, to a row written at record time: a
proof reads the top (cached), one index shard and one tree shard. A shard whose bytes
differ from its record raises ObjectIntegrityError and is never cached; the next request
fetches it again.

I/O: only through the `ObjectStore` handed in.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from por.core.canonical import canonical_bytes, loads_strict
from por.core.mst import InclusionProof, Node, node, verify_inclusion
from por.core.sumtree import SumTree, UnknownAccountError
from por.errors import FormatError, InputError, PorError, StoreError
from por.store.objects import ObjectStore, get_verified, put_content

FORMAT: Final = "por-mst-shards-v1"
DEFAULT_SHARD_LEAVES: Final = 1 << 16
DEFAULT_CACHE_BYTES: Final = 512 << 20
_RECORD: Final = 40  # SHA-256(account) + u64 big-endian leaf position
MAX_INDEX_BITS: Final = 20


def index_bits_for(n: int, shard_leaves: int) -> int:
    """Index shards are about as many as tree shards (so each is about as large)."""
    shards = max(1, -(-n // shard_leaves))
    return min(MAX_INDEX_BITS, (shards - 1).bit_length())


def _check_shard_leaves(shard_leaves: int) -> None:
    if isinstance(shard_leaves, bool) or not isinstance(shard_leaves, int):
        raise StoreError("shard_leaves must be an integer", where="artifacts.shard_leaves")
    if shard_leaves < 2 or shard_leaves & (shard_leaves - 1):
        raise StoreError(
            f"shard_leaves must be a power of two >= 2, got {shard_leaves}",
            where="artifacts.shard_leaves",
        )


def _prefix(account_hash: bytes, bits: int) -> int:
    return int.from_bytes(account_hash[:4], "big") >> (32 - bits) if bits else 0


def write_sharded(
    tree: SumTree, objects: ObjectStore, *, shard_leaves: int = DEFAULT_SHARD_LEAVES
) -> tuple[str, bytes]:
    """Store `tree` as shards, index shards and a top file; return (top SHA-256, top bytes).

    Nothing is overwritten (content-addressed); a store that refuses a write raises
    StoreError and the caller records nothing.
    """
    _check_shard_leaves(shard_leaves)
    n = tree.size
    shards: list[dict[str, str]] = []
    bits = index_bits_for(n, shard_leaves)
    # the index records (SHA-256 of the account id, leaf position), filled chunk by chunk
    records = np.empty(n, dtype=[("h", "S32"), ("i", ">u8")])
    records["i"] = np.arange(n, dtype=np.uint64)
    for c0 in range(0, n, shard_leaves):
        c1 = min(c0 + shard_leaves, n)
        accounts, balances, salts = tree.leaf_columns(c0, c1)
        digests = b"".join([hashlib.sha256(a.encode("ascii")).digest() for a in accounts])
        records["h"][c0:c1] = np.frombuffer(digests, "S32")
        part = SumTree.build_columns(accounts, balances, salts)
        sha = put_content(objects, part.to_bytes())
        shards.append({"sha256": sha, "hash": part.root.hash.hex(), "sum": str(part.root.sum)})
    # sorted by hash, cut where the prefix changes ("S32" sorts as memcmp: NUL is the
    # smallest byte and every value is 32 bytes)
    records.sort(order="h", kind="stable")
    prefixes: npt.NDArray[np.uint64] | None = None
    if bits:
        top32 = np.frombuffer(records["h"].tobytes(), ">u4").reshape(-1, 8)[:, 0]
        prefixes = top32.astype(np.uint64) >> np.uint64(32 - bits)
    index = []
    for p in range(1 << bits):
        if prefixes is None:
            lo, hi = 0, n
        else:
            lo = int(np.searchsorted(prefixes, p, "left"))
            hi = int(np.searchsorted(prefixes, p, "right"))
        index.append(put_content(objects, records[lo:hi].tobytes()))
    top = {
        "format": FORMAT,
        "size": n,
        "root": tree.root.to_dict(),
        "shard_leaves": shard_leaves,
        "shards": shards,
        "index_bits": bits,
        "index": index,
    }
    top_bytes = canonical_bytes(top)
    top_nodes = [Node(hash=bytes.fromhex(s["hash"]), sum=int(s["sum"])) for s in shards]
    if n and _TopTree(top_nodes).root != tree.root:  # a bug here must never be recorded
        raise StoreError("the shard roots do not combine to the tree's root", where=objects.where)
    return put_content(objects, top_bytes), top_bytes


class _TopTree:
    """The RFC 9162 tree over the chunk roots: each level, the odd last node carried up."""

    def __init__(self, nodes: Sequence[Node]) -> None:
        self.levels: list[list[Node]] = [list(nodes)]
        level = self.levels[0]
        while len(level) > 1:
            nxt = [node(level[t], level[t + 1]) for t in range(0, len(level) - 1, 2)]
            if len(level) & 1:
                nxt.append(level[-1])
            self.levels.append(nxt)
            level = nxt

    @property
    def root(self) -> Node:
        return self.levels[-1][0]

    def path(self, k: int) -> list[Node]:
        out = []
        for level in self.levels[:-1]:
            if k ^ 1 < len(level):
                out.append(level[k ^ 1])
            k >>= 1
        return out


class ShardCache:
    """An LRU of verified shards (parsed), shared by every tree of one store.

    Keyed by SHA-256: a key names its bytes, so one entry serves any tree that holds
    the same shard. Only shards whose bytes matched their digest are put in. Bounded by
    the bytes of the shards it holds (`max_bytes`), the newest one always kept.
    """

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.max_bytes = max(1, max_bytes)
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self.fetches = 0  # how many objects were read from the store (metrics, tests)

    def get_or_load(self, sha256: str, load: Callable[[], tuple[Any, int]]) -> Any:
        """The cached value, or `load()` -> (value, size in bytes) put in the cache."""
        with self._lock:
            entry = self._entries.get(sha256)
            if entry is not None:
                self._entries.move_to_end(sha256)
                return entry[0]
        value, size = load()  # outside the lock: a slow fetch does not hold up cached reads
        with self._lock:
            self.fetches += 1
            if sha256 not in self._entries:
                self._entries[sha256] = (value, size)
                self._bytes += size
            while self._bytes > self.max_bytes and len(self._entries) > 1:
                _, (_, old) = self._entries.popitem(last=False)
                self._bytes -= old
        return value

    @property
    def size_bytes(self) -> int:
        with self._lock:
            return self._bytes

    def __contains__(self, sha256: object) -> bool:
        with self._lock:
            return sha256 in self._entries

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class ShardedTree:
    """Proofs of one tree read shard by shard from an object store.

    `prove(account)` reads (through the cache) one index shard and one tree shard, and
    verifies the proof it returns against the root (which the caller matched with the
    signed attestation). Every shard is checked against the SHA-256 the top file records.
    """

    def __init__(
        self, top: dict[str, Any], *, objects: ObjectStore, cache: ShardCache, what: str
    ) -> None:
        self._objects = objects
        self._cache = cache
        self._what = what
        self._n: int = top["size"]
        self._root = Node.from_dict(top["root"], where=f"{what} top.root")
        self._shard_leaves: int = top["shard_leaves"]
        self._shards: list[dict[str, str]] = top["shards"]
        self._index: list[str] = top["index"]
        self._bits: int = top["index_bits"]
        nodes = [
            Node.from_dict({"hash": s["hash"], "sum": s["sum"]}, where=f"{what} shard {j}")
            for j, s in enumerate(self._shards)
        ]
        self._top = _TopTree(nodes) if nodes else None

    @classmethod
    def from_top(
        cls, data: bytes, *, objects: ObjectStore, cache: ShardCache, what: str
    ) -> ShardedTree:
        """Parse and check a top file (its SHA-256 was matched by the caller)."""
        where = f"{what} top file"
        top = loads_strict(data, where=where)
        try:
            if not isinstance(top, dict) or top.get("format") != FORMAT:
                raise FormatError(f"not a {FORMAT} top file", where=where)
            n, k, bits = top["size"], top["shard_leaves"], top["index_bits"]
            shards, index = top["shards"], top["index"]
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in (n, k, bits)):
                raise FormatError("size, shard_leaves and index_bits must be integers", where=where)
            _check_shard_leaves(k)
            if n < 0 or not 0 <= bits <= MAX_INDEX_BITS:
                raise FormatError(f"bad size {n} or index_bits {bits}", where=where)
            if not isinstance(shards, list) or len(shards) != -(-n // k):
                raise FormatError(f"{n} leaves need {-(-n // k)} shards of {k}", where=where)
            if not isinstance(index, list) or len(index) != 1 << bits:
                raise FormatError(f"index_bits {bits} needs {1 << bits} index shards", where=where)
            tree = cls(top, objects=objects, cache=cache, what=what)
        except (KeyError, TypeError, ValueError) as e:
            raise FormatError(f"malformed top file: {e!r}", where=where) from e
        if tree._top is not None and tree._top.root != tree._root:
            raise FormatError("the shard roots do not combine to the root", where=where)
        return tree

    @property
    def root(self) -> Node:
        return self._root

    @property
    def size(self) -> int:
        return self._n

    def __len__(self) -> int:
        return self._n

    def _index_shard(self, p: int) -> bytes:
        sha = self._index[p]
        what = f"index shard {p} of {self._what}"

        def load() -> tuple[bytes, int]:
            data = get_verified(self._objects, sha, what=what)
            if len(data) % _RECORD:
                raise StoreError(f"{what} has a torn record", where=self._objects.where)
            return data, len(data)

        value: bytes = self._cache.get_or_load(sha, load)
        return value

    def _tree_shard(self, j: int) -> SumTree:
        rec = self._shards[j]
        what = f"tree shard {j} of {self._what}"
        want_n = min(self._shard_leaves, self._n - j * self._shard_leaves)

        def load() -> tuple[SumTree, int]:
            data = get_verified(self._objects, rec["sha256"], what=what)
            try:
                part = SumTree.from_bytes(data, body_checked=True)
            except FormatError as e:
                raise StoreError(
                    f"{what} is corrupt: {e.message}", where=self._objects.where
                ) from e
            if part.size != want_n or part.root.to_dict() != {
                "hash": rec["hash"],
                "sum": rec["sum"],
            }:
                raise StoreError(
                    f"{what} has {part.size} leaves and root {part.root.hash.hex()}, "
                    f"the top file {want_n} and {rec['hash']}",
                    where=self._objects.where,
                )
            return part, len(data)

        value: SumTree = self._cache.get_or_load(rec["sha256"], load)
        return value

    def index_of(self, account: str) -> int:
        """The leaf position of `account` (UnknownAccountError when it has no leaf)."""
        try:
            raw = account.encode("ascii")
        except (UnicodeEncodeError, AttributeError):
            raw = b""
        if raw:
            h = hashlib.sha256(raw).digest()
            data = self._index_shard(_prefix(h, self._bits))
            lo, hi = 0, len(data) // _RECORD
            while lo < hi:  # binary search over the sorted 40-byte records
                mid = (lo + hi) // 2
                key = data[mid * _RECORD : mid * _RECORD + 32]
                if key < h:
                    lo = mid + 1
                else:
                    hi = mid
            at = lo * _RECORD
            if data[at : at + 32] == h:
                i = int.from_bytes(data[at + 32 : at + _RECORD], "big")
                if i >= self._n:
                    raise StoreError(
                        f"index of {self._what} names leaf {i} of {self._n}",
                        where=self._objects.where,
                    )
                return i
        shown = account if len(account) <= 80 else account[:77] + "..."
        raise UnknownAccountError(f"account {shown!r} has no leaf in this tree", where="account")

    def cached_for(self, account: str) -> bool:
        """True when a proof of `account` (or its 404) needs no fetch: the shards it
        reads are in the cache (the API's hot path answers only then)."""
        try:
            raw = account.encode("ascii")
        except UnicodeEncodeError:
            return True  # no leaf, and no fetch to find that out
        h = hashlib.sha256(raw).digest()
        if self._index[_prefix(h, self._bits)] not in self._cache:
            return False
        try:
            i = self.index_of(account)
        except UnknownAccountError:
            return True
        return self._shards[i // self._shard_leaves]["sha256"] in self._cache

    def prefetch(self, account: str) -> None:
        """Read the shards a proof of `account` needs (a thread; the proof is then CPU only)."""
        try:
            i = self.index_of(account)
        except UnknownAccountError:
            return
        self._tree_shard(i // self._shard_leaves)

    def prove(self, account: str) -> InclusionProof:
        """The inclusion proof of `account`, verified against the root before it is returned."""
        i = self.index_of(account)
        proof = self.prove_index(i)
        if proof.account != account:  # an index shard pointing a holder at another's leaf
            raise StoreError(
                f"index of {self._what} maps {account!r} to the leaf of {proof.account!r}",
                where=self._objects.where,
            )
        return proof

    def prove_index(self, i: int) -> InclusionProof:
        """The inclusion proof of the leaf at position `i`, verified against the root."""
        if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < self._n:
            raise InputError(f"leaf index {i!r} is not in [0, {self._n})", where="index")
        if self._top is None:  # unreachable: i < n means a shard exists
            raise StoreError(f"{self._what} has no shards", where=self._objects.where)
        j = i // self._shard_leaves
        inner = self._tree_shard(j).prove_index(i - j * self._shard_leaves)
        proof = InclusionProof(
            account=inner.account,
            balance=inner.balance,
            salt=inner.salt,
            index=i,
            size=self._n,
            path=inner.path + tuple(self._top.path(j)),
            root=self._root,
        )
        try:
            verify_inclusion(proof, root=self._root)
        except PorError as e:
            raise StoreError(
                f"{self._what}: a proof from its shards does not verify: {e.message}",
                where=self._objects.where,
            ) from e
        return proof

    def assemble(self) -> SumTree:
        """The whole tree, read from every shard (operator tools; O(n) memory)."""
        accounts: list[str] = []
        balances: list[int] = []
        salts = bytearray()
        for j in range(len(self._shards)):
            part = self._tree_shard(j)
            for t in range(part.size):
                leaf = part.leaf(t)
                accounts.append(leaf.account)
                balances.append(leaf.balance)
                salts += leaf.salt
        tree = SumTree.build_columns(accounts, balances, bytes(salts))
        if tree.root != self._root:
            raise StoreError(
                f"{self._what}: its shards build root {tree.root.hash.hex()}, "
                f"the top file {self._root.hash.hex()}",
                where=self._objects.where,
            )
        return tree


def load_top(objects: ObjectStore, sha256: str, *, cache: ShardCache, what: str) -> ShardedTree:
    """The sharded tree whose top file has SHA-256 `sha256` (checked)."""
    data = get_verified(objects, sha256, what=f"top file of {what}")
    return ShardedTree.from_top(data, objects=objects, cache=cache, what=what)


__all__ = [
    "DEFAULT_CACHE_BYTES",
    "DEFAULT_SHARD_LEAVES",
    "FORMAT",
    "ShardCache",
    "ShardedTree",
    "index_bits_for",
    "load_top",
    "write_sharded",
]
