"""por-mst-v1 sum tree: unit tests of every public function, round trips, serialisation."""

from __future__ import annotations

import dataclasses
import hashlib
import struct

import numpy as np
import pytest

from por.core import mst, sumtree
from por.core.mst import (
    EMPTY_ROOT,
    FORMAT,
    DuplicateAccountError,
    InclusionProof,
    Leaf,
    Node,
    check_account,
    derive_salt,
    leaf_hash,
    node,
    proof_path_length,
    verify_inclusion,
)
from por.core.mst_build import BuildParams
from por.core.sumtree import SumTree, UnknownAccountError
from por.errors import AmountError, FormatError, InputError, ProofError

SECRET = hashlib.sha256(b"test round secret").digest()


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def acct(i: int) -> str:
    return f"eip155:1:0x{i:040x}"


def make_leaves(n: int, *, big: bool = False) -> list[Leaf]:
    return [
        Leaf(
            account=acct(i),
            balance=(i + 1) * 1000 + (2**90 if big and i % 3 == 0 else 0),
            salt=derive_salt(SECRET, acct(i)),
        )
        for i in range(n)
    ]


def reference_root(nodes: list[Node]) -> Node:
    """RFC 9162 §2.1.1 MTH with the por-mst-v1 node function."""
    if not nodes:
        return EMPTY_ROOT
    if len(nodes) == 1:
        return nodes[0]
    k = 1 << ((len(nodes) - 1).bit_length() - 1)
    return node(reference_root(nodes[:k]), reference_root(nodes[k:]))


def sorted_nodes(leaves: list[Leaf]) -> list[Node]:
    return sorted((leaf.to_node() for leaf in leaves), key=lambda n: n.hash)


@pytest.fixture(params=[True, False], ids=["native", "hashlib"])
def small_blocks(request: pytest.FixtureRequest) -> BuildParams:
    """Shrink chunk, block and batch sizes so small trees cross every boundary; on the C
    kernel (where it is built) and on the hashlib path."""
    return BuildParams(chunk=5, hash_batch=3, block_log=4, parallel_min=1, native=request.param)


# --- hashes -----------------------------------------------------------------------------------


def test_leaf_hash_is_the_design_formula() -> None:
    salt = bytes(range(32))
    want = sha(b"\x00" + salt + sha(b"eip155:1:0xabc") + (12345).to_bytes(32, "big"))
    assert leaf_hash("eip155:1:0xabc", 12345, salt) == want


def test_node_hash_binds_both_sums() -> None:
    left = Node(hash=sha(b"l"), sum=7)
    right = Node(hash=sha(b"r"), sum=2**100)
    want = sha(
        b"\x01" + left.hash + (7).to_bytes(32, "big") + right.hash + (2**100).to_bytes(32, "big")
    )
    assert node(left, right) == Node(hash=want, sum=7 + 2**100)


def test_node_refuses_a_sum_of_2_127() -> None:
    big = Node(hash=sha(b"x"), sum=2**126)
    with pytest.raises(AmountError):
        node(big, big)
    assert node(big, Node(hash=sha(b"y"), sum=2**126 - 1)).sum == 2**127 - 1


def test_empty_root_is_sha256_of_nothing() -> None:
    assert Node(hash=hashlib.sha256(b"").digest(), sum=0) == EMPTY_ROOT
    assert EMPTY_ROOT.hash.hex().startswith("e3b0c442")


def test_derive_salt_is_keyed_blake2b() -> None:
    salt = derive_salt(SECRET, acct(1))
    assert salt == hashlib.blake2b(acct(1).encode(), key=SECRET, digest_size=32).digest()
    assert derive_salt(SECRET, acct(2)) != salt
    assert derive_salt(bytes(32), acct(1)) != salt
    with pytest.raises(FormatError):
        derive_salt(b"short", acct(1))
    with pytest.raises(FormatError):
        derive_salt(SECRET, "not an account")


@pytest.mark.parametrize(
    "good",
    [
        "eip155:1:0x52908400098527886e0f7030069857d2e4169ee7",
        "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp:7S3P4HxJpyyigGzodYwHtCxZyUQe9JiBMHyRWXArAaKv",
        "ledger:custodian-hk:acct-0001",
        "a:b:c",
        "x:y:" + "z" * 252,
    ],
)
def test_check_account_accepts_caip10_ids(good: str) -> None:
    assert check_account(good) == good


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "eip155:1",
        "eip155:1:0x1:extra",
        ":1:0x1",
        "eip155::0x1",
        "eip155:1:",
        "eip155:1:0x 1",
        "eip155:1:0x1\n",
        "eip155:1:0x\u00e9",
        "x:y:" + "z" * 253,
        42,
        None,
        b"eip155:1:0x1",
    ],
)
def test_check_account_refuses(bad: object) -> None:
    with pytest.raises(FormatError):
        check_account(bad)


def test_proof_path_length_matches_rfc_9162_paths() -> None:
    def path_len(m: int, n: int) -> int:  # RFC 9162 §2.1.3.1 PATH(m, D[n])
        if n == 1:
            return 0
        k = 1 << ((n - 1).bit_length() - 1)
        return 1 + (path_len(m, k) if m < k else path_len(m - k, n - k))

    for n in range(1, 70):
        for m in range(n):
            assert proof_path_length(m, n) == path_len(m, n)
    with pytest.raises(InputError):
        proof_path_length(3, 3)
    with pytest.raises(InputError):
        proof_path_length(True, 3)


# --- values -----------------------------------------------------------------------------------


def test_node_round_trip_and_strict_parsing() -> None:
    n = Node(hash=sha(b"n"), sum=2**126)
    assert n.to_dict() == {"hash": sha(b"n").hex(), "sum": str(2**126)}
    assert Node.from_dict(n.to_dict()) == n
    for bad, err in [
        ({"hash": sha(b"n").hex().upper(), "sum": "1"}, FormatError),
        ({"hash": sha(b"n").hex()[:62], "sum": "1"}, FormatError),
        ({"hash": sha(b"n").hex(), "sum": "01"}, AmountError),
        ({"hash": sha(b"n").hex(), "sum": 1}, AmountError),
        ({"hash": sha(b"n").hex(), "sum": "-1"}, AmountError),
        ({"hash": sha(b"n").hex()}, FormatError),
        ({"hash": sha(b"n").hex(), "sum": "1", "x": 1}, FormatError),
        ([], FormatError),
    ]:
        with pytest.raises(err):
            Node.from_dict(bad)
    with pytest.raises(FormatError):
        Node(hash=b"short", sum=1)
    with pytest.raises(AmountError):
        Node(hash=sha(b"n"), sum=-1)


def test_leaf_validates_and_round_trips() -> None:
    leaf = Leaf(account=acct(1), balance=5, salt=bytes(32))
    assert leaf.to_dict() == {"account": acct(1), "balance": "5", "salt": "00" * 32}
    assert Leaf.from_dict(leaf.to_dict()) == leaf
    assert leaf.to_node() == Node(hash=leaf_hash(acct(1), 5, bytes(32)), sum=5)
    with pytest.raises(AmountError):
        Leaf(account=acct(1), balance=-1, salt=bytes(32))
    with pytest.raises(AmountError):
        Leaf(account=acct(1), balance=2**127, salt=bytes(32))
    with pytest.raises(AmountError):
        Leaf(account=acct(1), balance=True, salt=bytes(32))
    with pytest.raises(FormatError):
        Leaf(account=acct(1), balance=1, salt=bytes(31))
    with pytest.raises(FormatError):
        Leaf(account="nope", balance=1, salt=bytes(32))
    with pytest.raises(FormatError) as e:
        Leaf.from_dict({"account": acct(1), "balance": "1", "salt": "zz" * 32}, where="f:3")
    assert e.value.where == "f:3.salt"


# --- building ---------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 100])
def test_root_matches_the_rfc_9162_reference(n: int) -> None:
    leaves = make_leaves(n, big=True)
    tree = SumTree.build(leaves)
    assert tree.root == reference_root(sorted_nodes(leaves))
    assert tree.size == len(tree) == n
    assert tree.root.sum == sum(leaf.balance for leaf in leaves)


def test_leaves_are_sorted_by_leaf_hash_whatever_the_input_order() -> None:
    leaves = make_leaves(20)
    tree = SumTree.build(leaves)
    assert SumTree.build(reversed(leaves)).root == tree.root
    hashes = [tree.leaf(i).to_node().hash for i in range(20)]
    assert hashes == sorted(hashes)


def test_every_leaf_proves_and_verifies() -> None:
    leaves = make_leaves(37, big=True)
    tree = SumTree.build(leaves)
    for leaf in leaves:
        p = tree.prove(leaf.account)
        assert (p.account, p.balance, p.salt) == (leaf.account, leaf.balance, leaf.salt)
        assert p.index == tree.index_of(leaf.account)
        assert tree.leaf(p.index) == leaf
        assert verify_inclusion(p, root=tree.root) is None


def test_build_columns_equals_build_and_takes_generators_and_arrays() -> None:
    leaves = make_leaves(50)
    tree = SumTree.build(leaves)
    salts = b"".join(leaf.salt for leaf in leaves)
    gen = SumTree.build_columns(
        (leaf.account for leaf in leaves), (leaf.balance for leaf in leaves), salts
    )
    arr = SumTree.build_columns(
        [leaf.account for leaf in leaves],
        np.array([leaf.balance for leaf in leaves], np.int64),
        bytearray(salts),
    )
    assert gen.root == arr.root == tree.root


def test_balances_beyond_64_bits_are_exact() -> None:
    leaves = [
        Leaf(account=acct(i), balance=b, salt=derive_salt(SECRET, acct(i)))
        for i, b in enumerate([2**64, 2**64 - 1, 2**126, 2**125, 1])
    ]
    tree = SumTree.build(leaves)
    assert tree.root == reference_root(sorted_nodes(leaves))
    assert tree.root.sum == 2**64 + 2**64 - 1 + 2**126 + 2**125 + 1


def test_duplicate_account_is_refused_naming_it() -> None:
    leaves = make_leaves(4)
    again = Leaf(account=leaves[1].account, balance=999, salt=bytes(32))
    with pytest.raises(DuplicateAccountError) as e:
        SumTree.build([*leaves, again])
    assert isinstance(e.value, InputError)
    assert leaves[1].account in str(e.value)
    assert (e.value.account, e.value.first_index, e.value.index) == (leaves[1].account, 1, 4)


@pytest.mark.parametrize(
    "balances, where",
    [
        ([1, -1, 3], "balances[1]"),
        ([1, 2**127, 3], "balances[1]"),
        ([1, 2.0, 3], "balances[1]"),
        ([1, True, 3], "balances[1]"),
        (np.array([1, -5, 3]), "balances[1]"),
        (np.array([1.0, 2.0, 3.0]), "balances"),
        ([2**126, 2**126, 0], "balances"),  # each fits; their sum would reach 2^127
    ],
)
def test_bad_balances_raise_amount_error(balances: object, where: str) -> None:
    accounts = [acct(i) for i in range(3)]
    with pytest.raises(AmountError) as e:
        SumTree.build_columns(accounts, balances, bytes(96))  # type: ignore[arg-type]
    assert e.value.where == where


def test_column_lengths_must_agree() -> None:
    with pytest.raises(InputError):
        SumTree.build_columns([acct(0)], [1], bytes(33))
    with pytest.raises(InputError):
        SumTree.build_columns([acct(0)], [1, 2], bytes(32))
    with pytest.raises(InputError):
        SumTree.build_columns([acct(0), acct(1)], [1], bytes(64))
    with pytest.raises(InputError):
        SumTree.build_columns([acct(0), acct(1)], [1, 2], bytes(32))
    with pytest.raises(InputError):
        SumTree.build_columns([acct(0)], [1], bytes(32), workers=0)
    with pytest.raises(InputError):
        SumTree.build(["not a leaf"])  # type: ignore[list-item]


def test_bad_account_in_columns_names_its_index() -> None:
    accounts = [acct(0), acct(1), "eip155:1:0x 2", acct(3)]
    with pytest.raises(FormatError) as e:
        SumTree.build_columns(accounts, [1, 2, 3, 4], bytes(128))
    assert e.value.where == "accounts[2]"
    with pytest.raises(FormatError):
        SumTree.build_columns([acct(0), 7], [1, 2], bytes(64))  # type: ignore[list-item]


def test_empty_tree() -> None:
    tree = SumTree.build([])
    assert tree.root == EMPTY_ROOT and tree.size == 0
    assert list(tree.export_leaves()) == []
    with pytest.raises(UnknownAccountError):
        tree.prove(acct(0))
    assert SumTree.from_bytes(tree.to_bytes()).root == EMPTY_ROOT


@pytest.mark.parametrize("n", [1, 15, 16, 17, 33, 64, 70])
@pytest.mark.parametrize("workers", [1, 2, 3])
def test_chunks_blocks_and_workers_agree(small_blocks: BuildParams, n: int, workers: int) -> None:
    leaves = make_leaves(n, big=True)
    tree = SumTree.build(leaves, workers=workers, params=small_blocks)
    assert tree.root == reference_root(sorted_nodes(leaves))
    for i in range(n):
        verify_inclusion(tree.prove_index(i), root=tree.root)


@pytest.mark.parametrize("low", [1, 2, 3, 4])
def test_lowest_stored_level_does_not_change_proofs(low: int) -> None:
    leaves = make_leaves(23)
    want = [p.to_dict() for p in map(SumTree.build(leaves).prove_index, range(23))]
    tree = SumTree.build(leaves, params=BuildParams(low_levels=low))
    assert [tree.prove_index(i).to_dict() for i in range(23)] == want
    again = SumTree.from_bytes(tree.to_bytes())
    assert [again.prove_index(i).to_dict() for i in range(23)] == want


def test_build_params_are_checked() -> None:
    for bad in (
        {"chunk": 0},
        {"hash_batch": -1},
        {"low_levels": True},
        {"parallel_min": 1.5},
        {"cached_nodes": -1},
        {"block_log": 1, "low_levels": 2},
        {"block_log": 33},
    ):
        with pytest.raises(InputError):
            BuildParams(**bad)  # type: ignore[arg-type]
    with pytest.raises(InputError):
        SumTree.build(make_leaves(2), params={"chunk": 5})  # type: ignore[arg-type]
    assert BuildParams(cached_nodes=0, block_log=2) == BuildParams(block_log=2, cached_nodes=0)


def test_unknown_account_and_bad_index() -> None:
    tree = SumTree.build(make_leaves(5))
    for missing in [acct(99), "not-an-id", "eip155:1:0x\u00e9", ""]:
        with pytest.raises(UnknownAccountError) as e:
            tree.index_of(missing)
        assert isinstance(e.value, InputError)
        assert repr(missing) in str(e.value)
    for bad in [-1, 5, True, "1"]:
        with pytest.raises(InputError):
            tree.prove_index(bad)  # type: ignore[arg-type]


def test_account_lookup_survives_shared_key_prefixes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Accounts whose 4-byte lookup keys collide are told apart by the full id."""
    leaves = make_leaves(300)
    tree = SumTree.build(leaves)
    for leaf in leaves[::37]:
        key = int.from_bytes(sha(leaf.account.encode())[:4], "big")
        # every entry shares the key: the lookup must scan the run and compare ids
        monkeypatch.setattr(tree, "_akeys", np.full(300, key, np.uint32))
        assert tree.leaf(tree.index_of(leaf.account)) == leaf


def test_export_leaves_rebuilds_the_same_tree() -> None:
    tree = SumTree.build(make_leaves(30, big=True))
    exported = list(tree.export_leaves())
    assert all(set(d) == {"account", "balance", "salt"} for d in exported)
    rebuilt = SumTree.build(Leaf.from_dict(d) for d in exported)
    assert rebuilt.root == tree.root


# --- padding ----------------------------------------------------------------------------------


def test_padding_adds_zero_leaves_deterministically() -> None:
    leaves = make_leaves(5)
    pad = hashlib.sha256(b"pad").digest()
    tree = SumTree.build(leaves, pad_to=16, pad_random=pad)
    assert tree.size == 16
    assert tree.root.sum == SumTree.build(leaves).root.sum
    assert SumTree.build(leaves, pad_to=16, pad_random=pad).root == tree.root
    assert SumTree.build(leaves, pad_to=16, pad_random=bytes(32)).root != tree.root
    for leaf in leaves:
        verify_inclusion(tree.prove(leaf.account), root=tree.root)
    padding = [d for d in tree.export_leaves() if d["account"].startswith("por:pad:")]
    assert len(padding) == 11 and all(d["balance"] == "0" for d in padding)
    assert SumTree.build(leaves, pad_to=5, pad_random=pad).size == 5


def test_padding_arguments_are_checked() -> None:
    leaves = make_leaves(5)
    with pytest.raises(InputError):
        SumTree.build(leaves, pad_to=4, pad_random=bytes(32))
    with pytest.raises(InputError):
        SumTree.build(leaves, pad_to=8)
    with pytest.raises(InputError):
        SumTree.build(leaves, pad_random=bytes(32))
    with pytest.raises(FormatError):
        SumTree.build(leaves, pad_to=8, pad_random=bytes(16))


# --- proofs -----------------------------------------------------------------------------------


def test_proof_dict_has_exactly_the_design_fields() -> None:
    tree = SumTree.build(make_leaves(6))
    d = tree.prove_index(4).to_dict()
    assert list(d) == ["format", "account", "balance", "salt", "index", "size", "path", "root"]
    assert d["format"] == FORMAT == "por-mst-v1"
    assert isinstance(d["index"], int) and isinstance(d["size"], int)
    assert isinstance(d["balance"], str) and len(d["salt"]) == 64
    assert all(set(p) == {"hash", "sum"} and isinstance(p["sum"], str) for p in d["path"])
    assert InclusionProof.from_dict(d) == tree.prove_index(4)


@pytest.mark.parametrize(
    "change, err, where",
    [
        (lambda d: d.update(format="por-mst-v2"), FormatError, "proof.format"),
        (lambda d: d.pop("format"), FormatError, "proof.format"),
        (lambda d: d.update(extra=1), FormatError, "proof.extra"),
        (lambda d: d.pop("root"), FormatError, "proof.root"),
        (lambda d: d.update(balance="1.5"), AmountError, "proof.balance"),
        (lambda d: d.update(salt="AB" * 32), FormatError, "proof.salt"),
        (lambda d: d.update(index=True), FormatError, "proof.index"),
        (lambda d: d.update(size=2**64), FormatError, "proof.size"),
        (lambda d: d.update(path={}), FormatError, "proof.path"),
        (lambda d: d.update(path=[d["root"]] * 65), FormatError, "proof.path"),
        (lambda d: d["path"][1].update(sum="x"), AmountError, "proof.path[1].sum"),
    ],
)
def test_proof_from_dict_is_strict(change, err, where) -> None:  # type: ignore[no-untyped-def]
    d = SumTree.build(make_leaves(6)).prove_index(4).to_dict()
    change(d)
    with pytest.raises(err) as e:
        InclusionProof.from_dict(d)
    assert e.value.where == where


def test_other_format_is_named_in_the_error() -> None:
    d = SumTree.build(make_leaves(2)).prove_index(0).to_dict()
    d["format"] = "maxwell-v0"
    with pytest.raises(FormatError, match="maxwell-v0"):
        InclusionProof.from_dict(d)


def test_verify_reports_expected_and_computed() -> None:
    tree = SumTree.build(make_leaves(6))
    p = tree.prove_index(3)
    with pytest.raises(ProofError) as e:
        verify_inclusion(dataclasses.replace(p, balance=p.balance + 1))
    assert e.value.expected == p.root.hash.hex() and e.value.computed != e.value.expected
    with pytest.raises(ProofError) as e:
        verify_inclusion(dataclasses.replace(p, path=p.path[:-1]))
    assert (e.value.expected, e.value.computed) == (len(p.path), len(p.path) - 1)
    with pytest.raises(ProofError) as e:
        verify_inclusion(dataclasses.replace(p, index=6))
    with pytest.raises(ProofError, match="root sum"):
        verify_inclusion(dataclasses.replace(p, root=Node(hash=p.root.hash, sum=1)))
    other = SumTree.build(make_leaves(7)).root
    with pytest.raises(ProofError, match="trusted root"):
        verify_inclusion(p, root=other)
    with pytest.raises(ProofError, match="trusted total"):
        verify_inclusion(p, root=Node(hash=p.root.hash, sum=p.root.sum + 1))
    with pytest.raises(ProofError):
        verify_inclusion(p.to_dict())  # type: ignore[arg-type]


def test_path_length_is_checked_before_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    p = SumTree.build(make_leaves(9)).prove_index(8)
    calls = []
    monkeypatch.setattr(mst, "leaf_raw", lambda *a: calls.append(a))
    for bad in (
        dataclasses.replace(p, path=p.path + p.path[:1]),
        dataclasses.replace(p, index=9),
        dataclasses.replace(p, size=0),
    ):
        with pytest.raises(ProofError):
            verify_inclusion(bad)
    assert calls == []


# --- serialisation ----------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 9, 40])
def test_to_bytes_round_trip(n: int) -> None:
    tree = SumTree.build(make_leaves(n, big=True))
    data = tree.to_bytes()
    assert data == b"".join(bytes(c) for c in tree.to_byte_chunks())
    for buf in (data, memoryview(data), bytearray(data)):
        again = SumTree.from_bytes(buf)
        assert again.root == tree.root and again.size == n
        assert [again.prove_index(i) for i in range(n)] == [tree.prove_index(i) for i in range(n)]
        assert list(again.export_leaves()) == list(tree.export_leaves())
        assert again.to_bytes() == data
        assert again.index_of(acct(n - 1)) == tree.index_of(acct(n - 1))


def _reseal(data: bytearray) -> bytes:
    """Recompute the body digest, as a careless or malicious writer could."""
    hdr = sumtree._HEADER
    fields = list(hdr.unpack_from(data))
    fields[-1] = hashlib.sha256(data[hdr.size :]).digest()
    return hdr.pack(*fields) + bytes(data[hdr.size :])


def test_from_bytes_refuses_garbage() -> None:
    data = SumTree.build(make_leaves(9)).to_bytes()
    hdr = sumtree._HEADER
    bad_inputs = [b"", b"garbage" * 40, data[:-1], data + b"\x00", b"X" + data[1:]]
    flipped = bytearray(data)
    flipped[-5] ^= 1
    bad_inputs.append(bytes(flipped))  # body digest no longer matches
    version = bytearray(data)
    struct.pack_into("<I", version, 8, 2)
    bad_inputs.append(bytes(version))
    for bad in bad_inputs:
        with pytest.raises(FormatError):
            SumTree.from_bytes(bad)
    # a resealed body that lies: a balance changed, so the root no longer adds up
    lie = bytearray(data)
    n, blob_len = 9, struct.unpack_from("<Q", data, 24)[0]
    lo_at = hdr.size + 32 * n + blob_len + (-blob_len % 8) + 8 * (n + 1)
    lie[lo_at] ^= 1
    with pytest.raises(FormatError, match="inconsistent"):
        SumTree.from_bytes(_reseal(lie))
    # an offset pointing inside another id
    off = bytearray(data)
    off[lo_at - 16] ^= 1
    with pytest.raises(FormatError, match="inconsistent"):
        SumTree.from_bytes(_reseal(off))


def test_from_bytes_body_checked_skips_only_the_digest() -> None:
    """A caller that matched the whole file's SHA-256 skips the body digest, nothing else."""
    data = SumTree.build(make_leaves(9)).to_bytes()
    assert SumTree.from_bytes(data, body_checked=True).to_bytes() == data
    flipped = bytearray(data)
    flipped[-5] ^= 1  # inside the top level's sum words: digest and root both disagree
    with pytest.raises(FormatError, match="SHA-256"):
        SumTree.from_bytes(bytes(flipped))
    with pytest.raises(FormatError, match="inconsistent"):
        SumTree.from_bytes(bytes(flipped), body_checked=True)
    for bad in (data[:-1], b"X" + data[1:]):
        with pytest.raises(FormatError):
            SumTree.from_bytes(bad, body_checked=True)


def test_tree_arrays_are_read_only() -> None:
    tree = SumTree.build(make_leaves(9))
    with pytest.raises(ValueError):
        tree._lo[0] = 1
