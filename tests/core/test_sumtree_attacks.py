"""Attacks on Merkle sum trees of liabilities, each drawn, then shown to fail on por-mst-v1."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pytest

from por.core.mst import (
    DuplicateAccountError,
    InclusionProof,
    Leaf,
    Node,
    derive_salt,
    leaf_hash,
    node,
    verify_inclusion,
)
from por.core.sumtree import SumTree
from por.errors import AmountError, FormatError, ProofError

SECRET = hashlib.sha256(b"attack round secret").digest()


def H(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def u256(x: int) -> bytes:
    return x.to_bytes(32, "big")


def leaf(account: str, balance: int) -> Leaf:
    return Leaf(account=account, balance=balance, salt=derive_salt(SECRET, account))


ALICE, BOB = "eip155:1:0x" + "a1" * 20, "eip155:1:0x" + "b0" * 20


# --- the Maxwell flaw -------------------------------------------------------------------------
#
#                 parent: hash = H(p || hA || hB), sum = p        <- commits to the total only
#                /                                  \
#       A: (hA, a = 60)                       B: (hB, b = 40)
#
# Alice's proof carries sibling B as (hB, claimed sum sB); Bob's carries A as (hA, sA).
# Each recomputes p = own + sibling and H(p || hA || hB). Nothing ties sB to b, so the
# exchange may claim any p in [max(a, b), a + b] = [60, 100]: with p = 60 it tells Alice
# sB = 0 and Bob sA = 20. Both proofs verify; 40 of liabilities vanish (Hu, Zhang, Guo 2019).
#
# por-mst-v1 puts both child sums inside the parent's hash (DESIGN §3, "Maxwell+"):
#     hash = H(0x01 || hA || u256(a) || hB || u256(b))
# so the sibling sum a proof carries is the one the root committed to, or the proof fails.


def maxwell_parent(total: int, left_hash: bytes, right_hash: bytes) -> bytes:
    return H(u256(total) + left_hash + right_hash)


def test_the_maxwell_flaw_is_real_in_a_sum_only_tree() -> None:
    a, b = 60, 40
    h_a, h_b = leaf_hash(ALICE, a, leaf(ALICE, a).salt), leaf_hash(BOB, b, leaf(BOB, b).salt)
    claimed = max(a, b)  # understated by min(a, b)
    published = maxwell_parent(claimed, h_a, h_b)
    # Alice checks with sibling sum claimed - a, Bob with claimed - b: both pass
    assert maxwell_parent(a + (claimed - a), h_a, h_b) == published
    assert maxwell_parent(b + (claimed - b), h_a, h_b) == published
    assert claimed < a + b


def test_por_mst_binds_both_sums_so_the_understated_root_fails() -> None:
    a, b = 60, 40
    tree = SumTree.build([leaf(ALICE, a), leaf(BOB, b)])
    assert tree.root.sum == a + b
    for lie in range(max(a, b), a + b):
        # the exchange lowers Bob's sum in Alice's proof so her recomputed total is `lie`
        alice = tree.prove(ALICE)
        lowered = Node(hash=alice.path[0].hash, sum=lie - a)
        forged = dataclasses.replace(alice, path=(lowered,), root=node(*_in_order(alice, lowered)))
        with pytest.raises(ProofError):
            verify_inclusion(forged, root=tree.root)  # against the honest root: refused
        # and no single published root can satisfy both holders with a total below a + b:
        # the root that Alice's forged proof computes is not the one Bob's proof computes
        bob = tree.prove(BOB)
        bob_lowered = Node(hash=bob.path[0].hash, sum=lie - b)
        bob_root = node(*_in_order(bob, bob_lowered))
        assert forged.root.hash != bob_root.hash
        verify_inclusion(forged)  # self-consistent, but only with Bob's sum really lowered
        with pytest.raises(ProofError):
            verify_inclusion(bob, root=forged.root)  # ...which Bob's own proof exposes


def _in_order(p: InclusionProof, sibling: Node) -> tuple[Node, Node]:
    own = Node(hash=leaf_hash(p.account, p.balance, p.salt), sum=p.balance)
    return (own, sibling) if p.index == 0 else (sibling, own)


def test_a_lowered_sibling_sum_fails_at_every_level() -> None:
    tree = SumTree.build([leaf(f"eip155:1:0x{i:040x}", 1000 + i) for i in range(13)])
    p = tree.prove_index(6)
    for k in range(len(p.path)):
        siblings = list(p.path)
        siblings[k] = Node(hash=siblings[k].hash, sum=siblings[k].sum - 1)
        with pytest.raises(ProofError):
            verify_inclusion(dataclasses.replace(p, path=tuple(siblings)), root=tree.root)


# --- a duplicated last leaf (CVE-2012-2459) ---------------------------------------------------
#
#   Bitcoin pairs an odd last node with itself:     [a, b, c]  ->  H(H(a,b), H(c,c))
#                                                   [a, b, c, c] -> H(H(a,b), H(c,c))   same root
#
# so c can be counted twice (or a block mutated) without changing the root. RFC 9162's
# shape never duplicates: [a, b, c] -> node(node(a, b), c), and [a, b, c, c] hashes c twice
# with both sums inside, so the roots differ; and the tree refuses the same account twice.


def test_duplicated_last_leaf_changes_the_root() -> None:
    a, b, c = (leaf(f"eip155:1:0x{i:040x}", 10 * (i + 1)).to_node() for i in range(3))
    three = node(node(a, b), c)
    four = node(node(a, b), node(c, c))
    assert three.hash != four.hash and three.sum == 60 and four.sum == 90


def test_duplicated_last_leaf_is_refused_by_the_builder() -> None:
    leaves = [leaf(f"eip155:1:0x{i:040x}", 10 * (i + 1)) for i in range(3)]
    honest = SumTree.build(leaves)
    with pytest.raises(DuplicateAccountError, match=leaves[-1].account):
        SumTree.build([*leaves, leaves[-1]])
    assert honest.size == 3 and honest.root.sum == 60


# --- negative and overflowing balances --------------------------------------------------------
#
#   u256 fields hold 0 .. 2^256-1. If a builder wrapped instead of refusing:
#       a balance of -1000  -> u256 2^256 - 1000  -> the total "drops" by 1000 mod 2^256
#       two balances of 2^126 -> a partial sum of 2^127, past the oracle's int256 headroom
#   either way liabilities are hidden. Every balance and partial sum must be in [0, 2^127).


@pytest.mark.parametrize("bad", [-1, -(2**127), 2**127, 2**256 - 1000])
def test_negative_or_huge_balances_are_refused(bad: int) -> None:
    with pytest.raises(AmountError):
        leaf(ALICE, bad)
    with pytest.raises(AmountError):
        SumTree.build_columns([ALICE], [bad], derive_salt(SECRET, ALICE))


def test_negative_numpy_balances_are_refused() -> None:
    with pytest.raises(AmountError):
        SumTree.build_columns([ALICE, BOB], np.array([5, -5], np.int64), bytes(64))


def test_partial_sums_reaching_2_127_are_refused_not_wrapped() -> None:
    top = 2**126
    leaves = [leaf(ALICE, top), leaf(BOB, top)]
    with pytest.raises(AmountError, match="2\\^127"):
        SumTree.build(leaves)
    # just below the bound is fine
    ok = SumTree.build([leaf(ALICE, top), leaf(BOB, top - 1)])
    assert ok.root.sum == 2**127 - 1


def test_a_proof_whose_partial_sum_overflows_is_refused() -> None:
    tree = SumTree.build([leaf(ALICE, 5), leaf(BOB, 7)])
    p = tree.prove(ALICE)
    inflated = Node(hash=p.path[0].hash, sum=2**127 - 1)
    with pytest.raises(ProofError, match="2\\^127"):
        verify_inclusion(dataclasses.replace(p, path=(inflated,)))


# --- a duplicate account ------------------------------------------------------------------------
#
#   Two users with equal balances sharing one leaf (same id, same salt) would be covered by
#   a single liability. Salts are derived per account and ids are unique per tree:
#       same account twice              -> refused, naming the account
#       same balance, different account -> different leaves


def test_a_duplicate_account_is_refused() -> None:
    for twin in (leaf(ALICE, 5), Leaf(account=ALICE, balance=6, salt=bytes(32))):
        with pytest.raises(DuplicateAccountError, match=ALICE) as e:
            SumTree.build([leaf(ALICE, 5), leaf(BOB, 5), twin])
        assert e.value.account == ALICE


def test_equal_balances_never_share_a_leaf() -> None:
    a, b = leaf(ALICE, 5), leaf(BOB, 5)
    assert a.salt != b.salt and a.to_node().hash != b.to_node().hash
    tree = SumTree.build([a, b])
    assert tree.root.sum == 10


# --- a proof that names another format ---------------------------------------------------------
#
#   {"format": "maxwell-v0", ...} would let a prover choose weaker hashing rules. The
#   verifier pins por-mst-v1 itself (STYLE: pin parameters in the verifier, not the proof).


@pytest.mark.parametrize("fmt", ["por-mst-v0", "por-mst-v2", "maxwell", "", None, 1])
def test_a_proof_naming_another_format_is_refused(fmt: object) -> None:
    d = SumTree.build([leaf(ALICE, 5), leaf(BOB, 7)]).prove(ALICE).to_dict()
    d["format"] = fmt
    with pytest.raises(FormatError, match="format"):
        InclusionProof.from_dict(d)
