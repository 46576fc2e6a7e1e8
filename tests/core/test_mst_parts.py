"""A tree built in pieces (por.core.mst_parts, mst.cover_range / merge_subtree_roots) is the
tree built in one process: same root, same stored levels, same proofs.

Seeded loops over random sizes (odd, powers of two and their neighbours), random
partitionings of the input and bucket counts from 1 to 64 — so buckets of one leaf, empty
buckets and bucket edges at every alignment occur — with both hashing paths.
"""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from por.core import mst_parts as parts
from por.core.mst import (
    EMPTY_ROOT,
    DuplicateAccountError,
    Node,
    cover_range,
    leaf_hash,
    merge_subtree_roots,
    node,
    verify_inclusion,
)
from por.core.mst_build import (
    DEFAULT_PARAMS,
    NATIVE,
    STORED_LEVEL,
    AccountColumn,
    BalanceWords,
    BuildParams,
    balance_words,
    derive_salts,
    encode_accounts,
)
from por.core.sumtree import SumTree
from por.errors import AmountError, InputError

SECRET = bytes(range(32))


def columns(n: int, rng: random.Random, *, big: bool = False) -> tuple[AccountColumn, BalanceWords]:
    accounts = [f"eip155:1:0x{rng.getrandbits(160):040x}" for _ in range(n)]
    top = 2**100 if big else 10**12
    balances = [rng.randrange(top) for _ in range(n)]
    return encode_accounts(accounts), balance_words(balances, n)


def split_rows(n: int, rng: random.Random) -> list[tuple[int, int]]:
    cuts = sorted({0, n, *(rng.randrange(n + 1) for _ in range(rng.randrange(4)))})
    return list(itertools.pairwise(cuts)) or [(0, 0)]


def hash_partitions(
    accounts: AccountColumn,
    balances: BalanceWords,
    salts: bytes,
    rows: list[tuple[int, int]],
    *,
    bits: int,
    **options: bool,
) -> list[parts.Partition]:
    """hash_partition over each row range [a, b) of the columns."""
    return [
        parts.hash_partition(
            accounts.take(a, b),
            balances.take(a, b),
            salts[32 * a : 32 * b],
            first_row=a,
            bucket_bits=bits,
            **options,
        )
        for a, b in rows
    ]


def build_in_pieces(
    accounts: AccountColumn,
    balances: BalanceWords,
    salts: bytes,
    *,
    bits: int,
    rows: list[tuple[int, int]],
    native: bool = True,
    low: int = DEFAULT_PARAMS.low_levels,
) -> tuple[Node, SumTree]:
    """The whole decomposition, in this process, in the engine's order."""
    partitions = hash_partitions(
        accounts, balances, salts, rows, bits=bits, account_keys=True, native=native
    )
    starts = parts.bucket_starts([p.counts for p in partitions])
    buckets = []
    order = []
    roots = []
    for bucket in range(1 << bits):
        level0, inputs = parts.sort_bucket([p.leaves[bucket] for p in partitions], bucket_bits=bits)
        assert len(level0) == starts[bucket + 1] - starts[bucket]
        roots.extend(parts.subtree_roots(level0, starts[bucket]))
        buckets.append(parts.bucket_levels(level0, starts[bucket], low=low))
        order.append(inputs)
    n = len(accounts)
    root = merge_subtree_roots(n, roots)
    arrays = parts.assemble_tree(
        accounts=accounts,
        balances=balances,
        salts=salts,
        order=np.concatenate(order),
        account_keys=np.concatenate(
            [p.account_keys for p in partitions if p.account_keys is not None]
        )
        if partitions
        else np.zeros(0, np.uint32),
        buckets=buckets,
        low=low,
    )
    return root, SumTree.from_arrays(arrays, params=BuildParams(low_levels=low))


SIZES = [0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 63, 64, 65, 100, 127, 128, 129, 257, 1000]


@pytest.mark.parametrize("native", [True, False])
@pytest.mark.parametrize("low", [1, 3, 5])
def test_every_lowest_stored_level_gives_the_local_levels(
    low: int, native: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each bucket's runs are computed level by level into one array (levels below `low`
    in scratch buffers): the levels from any `low` are the local build's, on the C
    kernel and on hashlib; with `low` 0 the leaves are kept as a copy of their own."""
    if not native:
        monkeypatch.setattr(parts, "_native", None)
    rng = random.Random(low * 2 + native)
    for n in [1, 2, 3, 5, 31, 33, 64, 100, 257, rng.randrange(300, 1500)]:
        accounts, balances = columns(n, rng, big=n % 2 == 0)
        salts = derive_salts(SECRET, accounts)
        params = BuildParams(low_levels=low)
        local = SumTree.build_columns(accounts, balances, salts, params=params)
        bits = rng.randrange(0, 6)
        root, tree = build_in_pieces(
            accounts, balances, salts, bits=bits, rows=split_rows(n, rng), low=low
        )
        assert root == tree.root == local.root, (n, bits, low)
        assert len(tree._levels) == len(local._levels)
        for mine, theirs in zip(tree._levels, local._levels, strict=True):
            assert mine.tobytes() == theirs.tobytes(), (n, bits, low)
    # levels from 0: the leaves are a run of their own (a copy), and every level above
    level0, _ = parts.sort_bucket(
        [parts.hash_partition(accounts, balances, salts, first_row=0, bucket_bits=0).leaves[0]],
        bucket_bits=0,
    )
    before = level0.tobytes()
    kept = parts.bucket_levels(level0, 0, low=0)
    assert level0.tobytes() == before
    assert kept.runs[0][1].tobytes() == before and not np.shares_memory(kept.runs[0][1], level0)
    for (first, mine), theirs in zip(kept.runs[low:], local._levels, strict=False):
        assert mine.tobytes() == theirs[first : first + len(mine)].tobytes()


@pytest.mark.parametrize("seed", range(6))
def test_pieces_make_the_local_tree(seed: int) -> None:
    rng = random.Random(seed)
    for n in [*SIZES, *(rng.randrange(1, 3000) for _ in range(6))]:
        accounts, balances = columns(n, rng, big=seed % 3 == 0)
        salts = derive_salts(SECRET, accounts)
        local = SumTree.build_columns(accounts, balances, salts)
        bits = rng.randrange(0, 7)
        root, tree = build_in_pieces(accounts, balances, salts, bits=bits, rows=split_rows(n, rng))
        assert root == local.root, (n, bits)
        assert tree.root == local.root
        assert tree.size == n
        # the stored levels are the local build's, node for node
        assert len(tree._levels) == len(local._levels)
        for mine, theirs in zip(tree._levels, local._levels, strict=True):
            assert mine.tobytes() == theirs.tobytes(), (n, bits)
        # and so are the proofs (every leaf of small trees, a sample of the others)
        indices = range(n) if n <= 70 else rng.sample(range(n), 40)
        for i in indices:
            account = local.leaf(i).account
            mine_p, theirs_p = tree.prove(account), local.prove(account)
            assert mine_p == theirs_p
            verify_inclusion(mine_p, root=local.root)


@pytest.mark.skipif(NATIVE is None, reason="compares the C kernel with hashlib")
def test_hashlib_path_gives_the_same_pieces() -> None:
    rng = random.Random(7)
    accounts, balances = columns(300, rng, big=True)
    salts = derive_salts(SECRET, accounts)
    a = parts.hash_partition(accounts, balances, salts, first_row=5, bucket_bits=3)
    b = parts.hash_partition(accounts, balances, salts, first_row=5, bucket_bits=3, native=False)
    assert a.total == b.total
    for x, y in zip(a.leaves + a.salt_keys, b.leaves + b.salt_keys, strict=True):
        assert x.tobytes() == y.tobytes()


def test_pieces_without_salt_keys_are_the_same_pieces() -> None:
    """A tree assembled in the driver checks duplicates itself: its partitions skip the
    salt keys, and their leaf pieces stay byte for byte the same."""
    rng = random.Random(11)
    accounts, balances = columns(500, rng, big=True)
    salts = derive_salts(SECRET, accounts)
    a = parts.hash_partition(accounts, balances, salts, first_row=9, bucket_bits=2)
    b = parts.hash_partition(
        accounts, balances, salts, first_row=9, bucket_bits=2, account_keys=True, salt_keys=False
    )
    assert [x.tobytes() for x in a.leaves] == [y.tobytes() for y in b.leaves]
    assert sum(len(k) for k in a.salt_keys) == 500
    assert len(b.salt_keys) == 4 and all(len(k) == 0 for k in b.salt_keys)
    assert b.account_keys is not None and len(b.account_keys) == 500


def test_many_buckets_most_of_them_empty() -> None:
    rng = random.Random(3)
    accounts, balances = columns(40, rng)
    salts = derive_salts(SECRET, accounts)
    local = SumTree.build_columns(accounts, balances, salts)
    root, tree = build_in_pieces(accounts, balances, salts, bits=10, rows=[(0, 13), (13, 40)])
    assert root == local.root == tree.root


def test_cover_range_tiles_with_maximal_aligned_blocks() -> None:
    assert cover_range(0, 0) == []
    assert cover_range(0, 13) == [(0, 3), (8, 2), (12, 0)]
    assert cover_range(3, 17) == [(3, 0), (4, 2), (8, 3), (16, 0)]
    rng = random.Random(1)
    for _ in range(500):
        a = rng.randrange(300)
        b = a + rng.randrange(300)
        blocks = cover_range(a, b)
        pos = a
        for start, level in blocks:
            assert start == pos and start % (1 << level) == 0
            pos += 1 << level
        assert pos == b
        # maximal: no two neighbours are siblings (they would have been one block)
        for (s1, l1), (_s2, l2) in itertools.pairwise(blocks):
            assert not (l1 == l2 and s1 % (1 << (l1 + 1)) == 0)
    with pytest.raises(InputError, match="ends before it starts"):
        cover_range(5, 4)
    with pytest.raises(InputError, match="non-negative"):
        cover_range(-1, 4)


def leaves_of(n: int) -> list[Node]:
    return [
        Node(hash=leaf_hash(f"ledger:x:{i}", i + 1, bytes([i % 256]) * 32), sum=i + 1)
        for i in range(n)
    ]


def mth(nodes: list[Node]) -> Node:
    """RFC 9162 §2.1.1 straight from the definition."""
    if len(nodes) == 1:
        return nodes[0]
    k = 1 << ((len(nodes) - 1).bit_length() - 1)
    return node(mth(nodes[:k]), mth(nodes[k:]))


def test_merge_of_any_aligned_tiling_is_the_root() -> None:
    rng = random.Random(2)
    assert merge_subtree_roots(0, []) == EMPTY_ROOT
    for n in [1, 2, 3, 5, 6, 7, 8, 11, 13, 16, 21, 32, 33]:
        leaves = leaves_of(n)
        want = mth(leaves)
        for _ in range(5):
            cuts = sorted({0, n, *(rng.randrange(n + 1) for _ in range(3))})
            tiles = [
                (p, lvl, mth(leaves[p : p + (1 << lvl)]))
                for a, b in itertools.pairwise(cuts)
                for p, lvl in cover_range(a, b)
            ]
            assert merge_subtree_roots(n, tiles) == want


def test_merge_refuses_what_does_not_tile_the_tree() -> None:
    leaves = leaves_of(8)
    four = mth(leaves[:4])
    with pytest.raises(InputError, match="not an aligned block"):
        merge_subtree_roots(8, [(0, 0, leaves[0]), (1, 1, four), (3, 0, leaves[3])])
    with pytest.raises(InputError, match="tiling is at leaf 4"):
        merge_subtree_roots(8, [(0, 2, four), (5, 0, leaves[5])])
    with pytest.raises(InputError, match="cover 4 of the 8"):
        merge_subtree_roots(8, [(0, 2, four)])
    with pytest.raises(InputError, match="not an aligned block"):
        merge_subtree_roots(4, [(0, 2, four), (4, 0, leaves[4])])
    with pytest.raises(InputError, match="not a Node"):
        merge_subtree_roots(1, [(0, 0, "root")])  # type: ignore[list-item]


def test_sum_reaching_2_127_is_refused_when_subtrees_merge() -> None:
    half = Node(hash=b"\x01" * 32, sum=2**126)
    with pytest.raises(AmountError):
        merge_subtree_roots(2, [(0, 0, half), (1, 0, half)])


def test_a_partition_whose_balances_reach_2_127_is_refused() -> None:
    accounts = encode_accounts(["ledger:a:1", "ledger:a:2"])
    balances = balance_words([2**126, 2**126], 2)
    with pytest.raises(AmountError, match="not below 2\\^127"):
        parts.hash_partition(
            accounts, balances, derive_salts(SECRET, accounts), first_row=0, bucket_bits=1
        )


def test_columns_of_different_lengths_are_refused() -> None:
    accounts = encode_accounts(["ledger:a:1", "ledger:a:2"])
    with pytest.raises(InputError, match="1 balances for 2 accounts"):
        parts.hash_partition(
            accounts, balance_words([1], 1), b"\0" * 64, first_row=0, bucket_bits=1
        )
    with pytest.raises(InputError, match="32 salt bytes for 2 accounts"):
        parts.hash_partition(
            accounts, balance_words([1, 2], 2), b"\0" * 32, first_row=0, bucket_bits=1
        )
    with pytest.raises(InputError, match="bucket_bits"):
        parts.hash_partition(
            accounts, balance_words([1, 2], 2), b"\0" * 64, first_row=0, bucket_bits=17
        )


def test_duplicate_accounts_share_a_salt_and_are_found() -> None:
    """An account twice in different partitions, with different balances: their leaves
    land in different buckets, but their salts (PRF of the account) are equal."""
    ids = [f"ledger:a:{i}" for i in range(50)]
    ids[41] = ids[7]
    accounts = encode_accounts(ids)
    balances = balance_words(list(range(50)), 50)
    salts = derive_salts(SECRET, accounts)
    with pytest.raises(DuplicateAccountError):
        SumTree.build_columns(accounts, balances, salts)
    ps = hash_partitions(accounts, balances, salts, [(0, 20), (20, 50)], bits=2)
    found = [
        pair
        for bucket in range(4)
        for pair in parts.duplicate_salt_rows([p.salt_keys[bucket] for p in ps])
    ]
    assert found == [(7, 41)]
    # and assembling a tree that serves proofs refuses it like the local build
    with pytest.raises(DuplicateAccountError, match="ledger:a:7"):
        build_in_pieces(accounts, balances, salts, bits=2, rows=[(0, 20), (20, 50)])


def test_sort_bucket_orders_hashes_that_share_a_long_prefix() -> None:
    """Leaf hashes equal in the 32 bits the packed sort key holds are ordered by the rest."""
    rng = random.Random(9)
    prefix = bytes([0b1010_0000]) + bytes(5)  # bucket 0b101 of 3 bits, then 37 equal bits
    others = [bytes([0b1010_0000 | rng.randrange(32)]) + rng.randbytes(31) for _ in range(5)]
    hashes = [prefix + rng.randbytes(26) for _ in range(30)] + others
    rec = np.zeros(len(hashes), parts.PIECE)
    rec["hash"] = [np.void(h) for h in hashes]
    rec["row"] = np.arange(len(hashes))
    level0, rows = parts.sort_bucket([rec[:17], rec[17:]], bucket_bits=3)
    assert [bytes(h) for h in level0["hash"]] == sorted(hashes)
    assert [hashes[r] for r in rows.tolist()] == sorted(hashes)


def test_ids_laid_end_to_end_are_checked_like_a_list_of_str() -> None:
    """encode_accounts_raw (an Arrow column's buffers) makes the column encode_accounts
    makes, and names the first bad id by its row."""
    from por.core.mst_build import encode_accounts_raw
    from por.errors import FormatError

    ids = ["eip155:1:0xab", "ledger:bank:7", "solana:5eykt4:9xQeWv"]
    data = "".join(ids).encode()
    offsets = np.cumsum([0, *map(len, ids)])
    raw = encode_accounts_raw(data, offsets)
    ref = encode_accounts(ids)
    assert bytes(raw.blob) == bytes(ref.blob) and (raw.offsets == ref.offsets).all()
    assert list(raw) == ids
    assert len(encode_accounts_raw(b"", [0])) == 0
    for bad, row in [(["a:b:c", "no-colons"], 1), (["a:b:c\n", "x:y:z"], 0), (["a::c"], 0)]:
        with pytest.raises(FormatError, match=rf"shard:account\[{row}\]"):
            encode_accounts_raw(
                "".join(bad).encode(), np.cumsum([0, *map(len, bad)]), where="shard:account"
            )


@pytest.mark.skipif(not NATIVE, reason="the C kernel is not built")
def test_c_split_and_gather_are_the_numpy_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    """The C kernel's one-pass split by bucket (bucket_records) and gather of a bucket's
    leaves (gather_pieces) give the arrays numpy's take-based paths give: pieces, counts,
    sorted records and 32-bit rows, over random sizes, bucket counts and high words."""
    rng = random.Random(31)
    for trial in range(12):
        n = rng.choice([0, 1, 2, 7, 64, 300, 1000])
        accounts, balances = columns(n, rng, big=trial % 3 == 0)
        salts = derive_salts(SECRET, accounts)
        bits = rng.randrange(0, 7)
        first = rng.randrange(0, 2**31)

        def run() -> tuple[parts.Partition, list[tuple[bytes, bytes]]]:
            p = parts.hash_partition(
                accounts, balances, salts, first_row=first, bucket_bits=bits, account_keys=True
            )
            out = []
            for b in range(1 << bits):
                level0, rows = parts.sort_bucket(
                    [p.leaves[b][:5], p.leaves[b][5:]], bucket_bits=bits
                )
                assert rows.dtype == np.uint32
                out.append((level0.tobytes(), rows.tobytes()))
            return p, out

        native_p, native_sorted = run()
        with monkeypatch.context() as m:
            m.setattr(parts, "_native", None)  # numpy's split and take (hashing: hashlib)
            numpy_p, numpy_sorted = run()
        assert native_p.counts == numpy_p.counts
        for a, b in zip(native_p.leaves, numpy_p.leaves, strict=True):
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
            # a fifth fewer bytes where no balance has a high word
            want = parts.PIECE if balances.hi.any() else parts.PIECE_LOW
            assert a.dtype == want
        assert native_sorted == numpy_sorted


@pytest.mark.skipif(not NATIVE, reason="the C kernel is not built")
def test_c_split_and_gather_refuse_what_does_not_fit() -> None:
    """bucket_records refuses buffers not sized by the leaves' bucket counts (never writes
    past one); gather_pieces refuses an index past the records and a row of 2^32."""
    from por.core.mst_build import _native

    assert _native is not None
    leaves = np.zeros((4, 32), np.uint8)
    leaves[1::2, 0] = 0x80  # with one bucket bit: buckets 0, 1, 0, 1
    lo = np.arange(4, dtype=np.uint64)
    good = (np.empty(2, parts.PIECE), np.empty(0, parts.PIECE), np.empty(2, parts.PIECE))
    with pytest.raises(ValueError, match="tuple of 2"):
        _native.bucket_records(leaves, lo, None, 0, 1, good)
    with pytest.raises(ValueError, match="smaller than its leaves"):
        outs = (np.empty(1, parts.PIECE), np.empty(3, parts.PIECE))
        _native.bucket_records(leaves, lo, None, 0, 1, outs)
    with pytest.raises(ValueError, match="hold 3 records for 4 rows"):
        _native.bucket_records(leaves, lo, None, 0, 1, (good[0], np.empty(1, parts.PIECE)))
    with pytest.raises(ValueError, match="disagree"):
        _native.bucket_records(leaves, lo[:3], None, 0, 1, good[::2])
    with pytest.raises(ValueError, match="whole records"):
        _native.bucket_records(leaves, lo, None, 0, 1, (good[0], np.empty(2 * 56 + 1, np.uint8)))
    outs = (np.empty(2, parts.PIECE), np.empty(2, parts.PIECE))
    _native.bucket_records(leaves, lo, None, 2**32 - 3, 1, outs)
    assert outs[1]["row"].tolist() == [2**32 - 2, 2**32] and outs[1]["lo"].tolist() == [1, 3]
    level0 = np.empty(2, STORED_LEVEL)
    rows = np.empty(2, np.uint32)
    _native.gather_pieces(outs[0], np.array([1, 0], np.int64), level0, rows)
    assert rows.tolist() == [2**32 - 1, 2**32 - 3] and level0["lo"].tolist() == [2, 0]
    with pytest.raises(ValueError, match="2\\^32 or more"):
        _native.gather_pieces(outs[1], np.array([1, 0], np.int64), level0, rows)
    with pytest.raises(ValueError, match="past the records"):
        _native.gather_pieces(outs[0], np.array([0, 2], np.int64), level0, rows)


@pytest.mark.parametrize("native", [True, False])
def test_partitions_with_and_without_high_words_share_a_bucket(
    native: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A partition whose balances are all below 2^64 sends PIECE_LOW records, one with a
    larger balance PIECE records; a bucket that gets both sorts them as one: the root,
    levels and tree file are the local build's."""
    if not native:
        monkeypatch.setattr(parts, "_native", None)
    rng = random.Random(77 + native)
    n = 400
    accounts = encode_accounts([f"eip155:1:0x{rng.getrandbits(160):040x}" for _ in range(n)])
    values = [rng.randrange(10**12) for _ in range(n)]
    values[250] = 2**90  # only the partition of rows 200.. has a high word
    balances = balance_words(values, n)
    salts = derive_salts(SECRET, accounts)
    rows = [(0, 100), (100, 200), (200, 300), (300, 400)]
    partitions = hash_partitions(accounts, balances, salts, rows, bits=2)
    kinds = [p.leaves[0].dtype for p in partitions]
    assert kinds == [parts.PIECE_LOW, parts.PIECE_LOW, parts.PIECE, parts.PIECE_LOW]
    local = SumTree.build_columns(accounts, balances, salts)
    root, tree = build_in_pieces(accounts, balances, salts, bits=2, rows=rows)
    assert root == tree.root == local.root
    assert tree.to_bytes() == local.to_bytes()


@pytest.mark.skipif(not NATIVE, reason="the C kernel is not built")
def test_c_narrow_records_refuse_high_words_and_large_rows() -> None:
    from por.core.mst_build import _native

    assert _native is not None
    leaves = np.zeros((2, 32), np.uint8)
    lo = np.arange(2, dtype=np.uint64)
    outs = (np.empty(2, parts.PIECE_LOW),)
    with pytest.raises(ValueError, match="no high words"):
        _native.bucket_records(leaves, lo, lo, 0, 0, outs, True)
    with pytest.raises(ValueError, match="too large"):
        _native.bucket_records(leaves, lo, None, 2**32 - 1, 0, outs, True)
    _native.bucket_records(leaves, lo, None, 2**32 - 2, 0, outs, True)
    assert outs[0]["row"].tolist() == [2**32 - 2, 2**32 - 1] and outs[0]["lo"].tolist() == [0, 1]
    level0 = np.full(2, 0xFF, np.uint8).repeat(48).view(STORED_LEVEL)
    rows = np.empty(2, np.uint32)
    _native.gather_pieces(outs[0], np.array([1, 0], np.int64), level0, rows, True)
    assert rows.tolist() == [2**32 - 1, 2**32 - 2]
    assert level0["lo"].tolist() == [1, 0] and level0["hi"].tolist() == [0, 0]
    with pytest.raises(ValueError, match="whole items"):
        _native.gather_pieces(outs[0], np.array([0], np.int64), level0, rows, False)
