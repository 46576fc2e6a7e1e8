"""SumTree.build_parts: several chains' columns hashed where they lie, never joined, give
the tree of build_columns over the joined columns (root, proofs, file bytes, leaf
columns), on the C kernel and on hashlib, on one thread and several; and Pieces, the
column of pieces the tree keeps, reads like the joined array."""

from __future__ import annotations

import hashlib
import random

import numpy as np
import pytest

from por.core.mst import DuplicateAccountError, derive_salt, verify_inclusion
from por.core.mst_build import (
    AccountColumn,
    BalanceWords,
    BuildParams,
    ColumnParts,
    Pieces,
    balance_words,
    derive_salts,
    encode_accounts,
)
from por.core.sumtree import SumTree
from por.errors import InputError

SECRET = hashlib.sha256(b"unjoined parts").digest()


def _parts(sizes: list[int], seed: int, big: bool) -> list[tuple[AccountColumn, BalanceWords]]:
    rnd = random.Random(seed)
    out = []
    for c, m in enumerate(sizes):
        ids = [f"eip155:{c + 1}:0x{rnd.getrandbits(160):040x}" for _ in range(m)]
        bal = [rnd.randrange(2**70 if big else 10**12) for _ in range(m)]
        out.append((encode_accounts(ids), balance_words(bal, m)))
    return out


def _joined(parts: list[tuple[AccountColumn, BalanceWords]]) -> tuple[AccountColumn, BalanceWords]:
    return (
        AccountColumn.concat([a for a, _ in parts]),
        BalanceWords.concat([b for _, b in parts]),
    )


@pytest.mark.parametrize(
    ("sizes", "big"),
    [([1, 1], False), ([5, 17, 3], True), ([64, 1, 130], False), ([300, 257, 1000, 2], True)],
)
@pytest.mark.parametrize("native", [True, False])
@pytest.mark.parametrize("workers", [1, 3])
def test_parts_build_the_joined_tree(
    sizes: list[int], big: bool, native: bool, workers: int
) -> None:
    parts = _parts(sizes, seed=sum(sizes), big=big)
    salts = derive_salts(SECRET, [a for a, _ in parts])
    accounts, words = _joined(parts)
    assert salts == b"".join(derive_salt(SECRET, a) for a in accounts)
    params = BuildParams(block_log=4, chunk=7, hash_batch=5, parallel_min=1, native=native)
    want = SumTree.build_columns(accounts, words, salts, workers=workers, params=params)
    got = SumTree.build_parts(parts, salts, workers=workers, params=params)
    assert got.root == want.root
    assert got.to_bytes() == want.to_bytes()
    n = len(accounts)
    for i in random.Random(1).sample(range(n), min(n, 40)):
        account = accounts.account(i)
        proof = got.prove(account)
        assert proof == want.prove(account)
        verify_inclusion(proof, root=got.root)  # raises when it does not verify
        assert got.leaf(got.index_of(account)) == want.leaf(want.index_of(account))
    a1, b1, s1 = got.leaf_columns(1, n)
    a2, b2, s2 = want.leaf_columns(1, n)
    assert list(a1) == list(a2) and list(b1.lo) == list(b2.lo) and list(b1.hi) == list(b2.hi)
    assert s1 == s2
    assert list(got.export_leaves()) == list(want.export_leaves())
    got.check_consistency()
    loaded = SumTree.from_bytes(got.to_bytes())
    assert loaded.root == got.root


def test_a_duplicate_across_chains_is_refused_naming_both_rows() -> None:
    parts = _parts([4, 5], seed=3, big=False)
    first = parts[0][0].account(2)
    ids = [parts[1][0].account(i) for i in range(5)]
    ids[3] = first
    parts[1] = (encode_accounts(ids), parts[1][1])
    salts = derive_salts(SECRET, [a for a, _ in parts])
    for native in (True, False):
        params = BuildParams(parallel_min=1, native=native)
        with pytest.raises(DuplicateAccountError) as err:
            SumTree.build_parts(parts, salts, workers=2, params=params)
        assert first in str(err.value)
        assert "2" in str(err.value) and "7" in str(err.value)


def test_parts_are_checked() -> None:
    parts = _parts([3, 4], seed=5, big=False)
    salts = derive_salts(SECRET, [a for a, _ in parts])
    with pytest.raises(InputError, match="7 accounts for the 6 salts"):
        SumTree.build_parts(parts, salts[:-32])
    with pytest.raises(InputError, match="3 accounts and 4 balances"):
        SumTree.build_parts([(parts[0][0], parts[1][1]), parts[1]], salts)
    with pytest.raises(InputError, match="not \\(AccountColumn, BalanceWords\\)"):
        SumTree.build_parts([parts[0], ("a", "b")], salts)  # type: ignore[list-item]
    with pytest.raises(InputError, match="two parts or more"):
        ColumnParts((parts[0],))
    # empty chains are skipped; one chain left is an ordinary column build
    empty = (encode_accounts([]), balance_words([], 0))
    one = SumTree.build_parts([empty, parts[0], empty], derive_salts(SECRET, parts[0][0]))
    assert one.root == SumTree.build_columns(*parts[0], derive_salts(SECRET, parts[0][0])).root
    assert SumTree.build_parts([], b"").size == 0


def test_pieces_read_like_the_joined_array() -> None:
    rnd = np.random.default_rng(7)
    arrays = [rnd.integers(0, 1000, size=m, dtype=np.uint64) for m in (3, 1, 0, 9, 4)]
    adds = [0, 100, 5, 0, 7]
    whole = np.concatenate([a + np.uint64(d) for a, d in zip(arrays, adds, strict=True)])
    p = Pieces(arrays, adds)
    assert len(p) == len(whole) and p.nbytes == whole.nbytes
    assert [p.item(i) for i in range(len(whole))] == whole.tolist()
    for a in range(len(whole) + 1):
        for b in range(a, len(whole) + 1):
            assert p.span(a, b).tolist() == whole[a:b].tolist()
    idx = rnd.integers(0, len(whole), size=50)
    assert p.take(idx).tolist() == whole[idx].tolist()
    assert np.concatenate(list(p.chunks(rows=2))).tolist() == whole.tolist()
    assert p.joined().tolist() == whole.tolist()
    with pytest.raises(IndexError):
        p.item(len(whole))
    with pytest.raises(IndexError):
        p.take(np.array([len(whole)]))
    with pytest.raises(IndexError):
        p.span(2, len(whole) + 1)
    with pytest.raises(InputError):
        Pieces([])
    with pytest.raises(InputError):
        Pieces([np.zeros(2, np.uint64), np.zeros(2, np.uint32)])
