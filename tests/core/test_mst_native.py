"""The C kernel (por/core/_mstkernel.c) against the hashlib path: same hashes, same roots,
same tree files; the columns the service builds from; salts in bulk.

Where the extension is not built (no compiler or OpenSSL headers) the kernel tests skip
and the fallback tests still run: `mst_build.NATIVE` is None and the build uses hashlib.
"""

from __future__ import annotations

import ctypes
import hashlib
import itertools
import mmap
import random

import numpy as np
import pytest

from por.core import mst_build
from por.core.mst import FORMAT, derive_salt, verify_inclusion
from por.core.mst_build import (
    STORED_LEVEL,
    AccountColumn,
    BalanceWords,
    BuildParams,
    balance_words,
    derive_salts,
    encode_accounts,
    encode_holders,
)
from por.core.sumtree import SumTree
from por.errors import AmountError, FormatError, InputError

SECRET = hashlib.sha256(b"native test secret").digest()
native = pytest.mark.skipif(mst_build.NATIVE is None, reason="the C kernel is not built")
kernel = mst_build._native


def ids(n: int, seed: int = 1) -> list[str]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        kind = i % 3
        if kind == 0:
            out.append(f"eip155:{rnd.randrange(1, 99)}:0x{rnd.getrandbits(160):040x}")
        elif kind == 1:  # long ids: BLAKE2b and SHA-256 over more than one block
            out.append(f"ledger:bank-{i}:" + "x" * rnd.randrange(100, 240))
        else:
            out.append(f"solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp:{i:x}")
    return out


def balances(n: int, *, big: bool) -> list[int]:
    return [(i * 7_919) % 100_003 + (2**100 if big and i % 5 == 0 else 0) for i in range(n)]


@native
def test_sha256_rows_matches_hashlib() -> None:
    rnd = random.Random(2)
    for width in (1, 51, 55, 56, 64, 97, 129, 300):
        rows = np.frombuffer(rnd.randbytes(width * 37), np.uint8)
        out = np.empty(37 * 32, np.uint8)
        kernel.sha256_rows(rows, width, out)
        want = b"".join(
            hashlib.sha256(rows[i * width : (i + 1) * width]).digest() for i in range(37)
        )
        assert out.tobytes() == want
    with pytest.raises(ValueError, match="multiple"):
        kernel.sha256_rows(b"abc", 2, bytearray(64))
    with pytest.raises(ValueError, match="out"):
        kernel.sha256_rows(b"abcd", 2, bytearray(63))
    with pytest.raises(TypeError, match="writable"):
        kernel.sha256_rows(b"abcd", 2, bytes(64))


@native
def test_salts_match_derive_salt_for_every_length() -> None:
    accounts = [*ids(200), "a:b:c", "a:b:" + "y" * 120, "a:b:" + "y" * 124, "a:b:" + "z" * 252]
    column = encode_accounts(accounts)
    want = b"".join(derive_salt(SECRET, a) for a in accounts)  # 128-byte boundaries included
    assert derive_salts(SECRET, column) == want
    assert derive_salts(SECRET, column, workers=3) == want
    assert derive_salts(SECRET, column, native=False) == want


def test_salts_check_the_secret_and_the_column() -> None:
    column = encode_accounts(["a:b:c"])
    with pytest.raises(FormatError, match="32 bytes"):
        derive_salts(b"short", column)
    with pytest.raises(InputError, match="AccountColumn"):
        derive_salts(SECRET, ["a:b:c"])  # type: ignore[arg-type]
    assert derive_salts(SECRET, encode_accounts([])) == b""


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 5, 31, 64, 65, 257, 1_000])
@pytest.mark.parametrize("big", [False, True])
def test_native_and_hashlib_give_the_same_tree(n: int, big: bool) -> None:
    accounts = ids(n)
    bal = balances(n, big=big)
    salts = b"".join(derive_salt(SECRET, a) for a in accounts)
    files = set()
    for native_ in (True, False):
        for workers in (1, 2, 3):
            params = BuildParams(block_log=4, chunk=7, hash_batch=5, parallel_min=1, native=native_)
            tree = SumTree.build_columns(accounts, bal, salts, workers=workers, params=params)
            files.add(tree.to_bytes())
            column, words = encode_holders(zip(accounts, bal, strict=True))
            again = SumTree.build_columns(column, words, salts, workers=workers, params=params)
            files.add(again.to_bytes())
    assert len(files) == 1  # identical roots, levels, index: byte for byte
    tree = SumTree.from_bytes(files.pop())
    for i in range(0, n, max(1, n // 17)):
        proof = tree.prove(accounts[i])
        assert proof.to_dict()["format"] == FORMAT
        verify_inclusion(proof, root=tree.root)


@native
def test_node_level_refuses_a_sum_of_2_127() -> None:
    rec = np.zeros(2, STORED_LEVEL)
    rec["hi"] = 2**62  # two halves of 2^127
    dst = np.zeros(1, STORED_LEVEL)
    assert kernel.node_level(rec, dst) is False
    rec["hi"][1] = 2**62 - 1
    rec["lo"][1] = 2**64 - 1
    assert kernel.node_level(rec, dst) is True
    assert int(dst["hi"][0]) == 2**63 - 1 and int(dst["lo"][0]) == 2**64 - 1
    with pytest.raises(ValueError, match="node_level"):
        kernel.node_level(rec, np.zeros(2, STORED_LEVEL))


@native
def test_leaf_pass_refuses_offsets_outside_the_blob() -> None:
    n = 2
    leaves, keys = np.empty(n * 32, np.uint8), np.empty(n, np.uint64)
    args = (bytes(64), np.zeros(n, np.uint64), None, 0, n, leaves, keys, keys.copy())
    with pytest.raises(ValueError, match="outside the blob"):
        kernel.leaf_pass(b"a:b:c\n", np.array([0, 6, 99], np.uint64), *args)
    with pytest.raises(ValueError, match="offsets"):
        kernel.leaf_pass(b"a:b:c\n", np.array([0, 6], np.uint64), *args)


def test_columns_are_checked_once_and_only_made_by_their_functions() -> None:
    with pytest.raises(FormatError) as e:
        encode_holders([("a:b:c", 1), ("bad id", 2)], chunk=1)
    assert e.value.where == "holders[1]"
    with pytest.raises(AmountError) as e2:
        encode_holders([("a:b:c", 1), ("a:b:d", -2)], chunk=1)
    assert e2.value.where == "balances[1]"
    with pytest.raises(AmountError):
        encode_holders([("a:b:c", 2**127)])
    with pytest.raises(InputError, match="encode_accounts"):
        AccountColumn(b"x y\n", np.array([0, 4], np.uint64))
    with pytest.raises(InputError, match="balance_words"):
        BalanceWords(np.zeros(1, np.uint64), np.zeros(1, np.uint64))
    column, words = encode_holders([("a:b:c", 2**100 + 5), ("a:b:dd", 7)])
    assert list(column) == ["a:b:c", "a:b:dd"] and column.account(1) == "a:b:dd"
    assert [words[0], words[1]] == [2**100 + 5, 7]
    both = AccountColumn.concat([column, encode_accounts(["x:y:z"])])
    assert list(both) == ["a:b:c", "a:b:dd", "x:y:z"]
    assert len(BalanceWords.concat([words, balance_words([1], 1)])) == 3


def test_column_inputs_are_matched_against_the_salts_and_padded() -> None:
    column, words = encode_holders([(a, 5) for a in ids(10)])
    salts = derive_salts(SECRET, column)
    with pytest.raises(InputError, match="10 balances for 9 salts"):
        SumTree.build_columns(column, words, salts[:-32])
    with pytest.raises(InputError, match="10 accounts for the 9 salts"):
        SumTree.build_columns(column, [5] * 9, salts[:-32])
    pad = hashlib.sha256(b"pad").digest()
    padded = SumTree.build_columns(column, words, salts, pad_to=16, pad_random=pad)
    listed = SumTree.build_columns(list(column), [5] * 10, salts, pad_to=16, pad_random=pad)
    assert padded.to_bytes() == listed.to_bytes() and padded.size == 16


@pytest.mark.parametrize("native_", [True, False])
@pytest.mark.parametrize("workers", [1, 2])
def test_duplicates_are_found_on_every_path(native_: bool, workers: int) -> None:
    from por.core.mst import DuplicateAccountError

    accounts = ids(300)
    accounts[250] = accounts[17]
    salts = b"".join(derive_salt(SECRET, a) for a in accounts)
    params = BuildParams(block_log=4, chunk=7, parallel_min=1, native=native_)
    for given in (accounts, encode_accounts(accounts)):
        with pytest.raises(DuplicateAccountError) as e:
            SumTree.build_columns(given, [1] * 300, salts, workers=workers, params=params)
        assert (e.value.first_index, e.value.index) == (17, 250)


def test_without_the_kernel_everything_falls_back_to_hashlib(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As where the extension could not be built: the same tree, no error."""
    accounts = ids(70)
    column = encode_accounts(accounts)
    want_salts = derive_salts(SECRET, column)
    want = SumTree.build_columns(column, [3] * 70, want_salts, workers=2).to_bytes()
    monkeypatch.setattr(mst_build, "_native", None)
    assert derive_salts(SECRET, column, workers=2) == want_salts
    params = BuildParams(parallel_min=1)  # native=True asked for, not available
    got = SumTree.build_columns(accounts, [3] * 70, want_salts, workers=2, params=params)
    assert got.to_bytes() == want


def test_salts_of_several_columns_are_those_of_the_joined_column() -> None:
    parts = [encode_accounts(ids(n, seed=n)) for n in (0, 5, 300, 1)]
    joined = AccountColumn.concat(parts)
    want = b"".join(derive_salt(SECRET, a) for a in joined)
    for native_ in (True, False):
        assert derive_salts(SECRET, parts, workers=3, native=native_) == want
        assert derive_salts(SECRET, joined, workers=2, native=native_) == want
    with pytest.raises(InputError, match="AccountColumn"):
        derive_salts(SECRET, [parts[1], "x"])  # type: ignore[list-item]


# ---- the BLAKE2b paths of the kernel: scalar, AVX2 (4 lanes), AVX-512 (8 lanes) ----------

ISAS = {"scalar": 0, "avx2": 1, "avx512": 2}


def raw_column(raw: list[bytes]) -> tuple[bytes, np.ndarray]:
    """A blob and offsets as encode_accounts makes them, of any bytes (the kernel does not
    check ids): each followed by a newline."""
    blob = b"".join(r + b"\n" for r in raw)
    offsets = np.cumsum([0] + [len(r) + 1 for r in raw], dtype=np.uint64)
    return blob, offsets


def keyed_blake2b(raw: list[bytes]) -> bytes:
    return b"".join(hashlib.blake2b(r, key=SECRET, digest_size=32).digest() for r in raw)


def isa_or_skip(name: str) -> int:
    if name not in kernel.blake2b_isas():
        pytest.skip(f"this CPU has no {name}")
    return ISAS[name]


def random_id(rnd: random.Random, length: int) -> bytes:
    return bytes(rnd.choice(b"abcdefxyz:0123456789") for _ in range(length))


@native
@pytest.mark.parametrize("name", list(ISAS))
def test_salts_of_every_length_on_every_isa(name: str) -> None:
    """Ids of 0..300 bytes in a shuffled order: batches mix ids of at most 64 bytes, of
    65..128 (one block, all 16 words) and longer ones or the empty one (scalar path)."""
    isa = isa_or_skip(name)
    rnd = random.Random(7)
    raw = [random_id(rnd, n) for n in range(301)]
    rnd.shuffle(raw)
    raw += [b"x" * 128, b"y" * 129, b"z" * 64, b"w" * 65]
    blob, offsets = raw_column(raw)
    want = keyed_blake2b(raw)
    assert kernel.salts_bytes(SECRET, [(blob, offsets)], 1, isa) == want
    out = bytearray(32 * len(raw))
    kernel.derive_salts(SECRET, blob, offsets, 0, len(raw), out, isa)
    assert bytes(out) == want
    out = bytearray(b"\xee" * 32 * len(raw))
    kernel.derive_salts(SECRET, blob, offsets, 5, len(raw) - 3, out, isa)  # rows 5..n-4 only
    assert out[: 32 * 5] == b"\xee" * 32 * 5 and out[-32 * 3 :] == b"\xee" * 32 * 3
    assert bytes(out[32 * 5 : -32 * 3]) == want[32 * 5 : -32 * 3]


@native
@pytest.mark.parametrize("name", list(ISAS))
@pytest.mark.parametrize("count", [1, 3, 4, 5, 7, 8, 9, 17, 1000])
def test_salts_in_parts_and_threads_on_every_isa(name: str, count: int) -> None:
    """Counts that fill no whole batch, split into parts of odd sizes (an empty one too):
    batches run across parts and a partly filled one ends each thread's share."""
    isa = isa_or_skip(name)
    rnd = random.Random(count)
    lengths = [rnd.choice([1, 8, 9, 51, 55, 64, 65, 100, 128, 129, 200]) for _ in range(count)]
    raw = [random_id(rnd, n) for n in lengths]
    want = keyed_blake2b(raw)
    cuts = sorted(rnd.randrange(count + 1) for _ in range(3))
    bounds = [0, *cuts, count]
    parts = [raw_column(raw[a:b]) for a, b in itertools.pairwise(bounds)]
    for threads in (1, 2, 3):
        assert kernel.salts_bytes(SECRET, parts, threads, isa) == want, threads
    blob, offsets = raw_column(raw)
    out = bytearray(32 * count)
    kernel.derive_salts(SECRET, blob, offsets, 0, count, out, isa)
    assert bytes(out) == want


@native
def test_blake2b_isas_and_the_choice_of_one() -> None:
    isas = kernel.blake2b_isas()
    assert isas[0] == "scalar" and set(isas) <= set(ISAS)
    raw = [b"eip155:1:0x" + b"ab" * 20] * 9
    blob, offsets = raw_column(raw)
    want = keyed_blake2b(raw)
    assert kernel.salts_bytes(SECRET, [(blob, offsets)], 1) == want  # the best, by default
    assert kernel.salts_bytes(SECRET, [(blob, offsets)], 1, -1) == want
    for bad in (-2, 3):
        with pytest.raises(ValueError, match="isa must be"):
            kernel.salts_bytes(SECRET, [(blob, offsets)], 1, bad)
        with pytest.raises(ValueError, match="isa must be"):
            kernel.derive_salts(SECRET, blob, offsets, 0, 9, bytearray(32 * 9), bad)
    for name, isa in ISAS.items():
        if name not in isas:
            with pytest.raises(ValueError, match=name):
                kernel.salts_bytes(SECRET, [(blob, offsets)], 1, isa)
            with pytest.raises(ValueError, match=name):
                kernel.derive_salts(SECRET, blob, offsets, 0, 9, bytearray(32 * 9), isa)


@native
@pytest.mark.parametrize("name", list(ISAS))
def test_salts_read_nothing_past_the_blob(name: str) -> None:
    """The blob ends where a page that cannot be read starts: an id whose last 8-byte word
    would reach past it is read from a copy (else SIGSEGV)."""
    isa = isa_or_skip(name)
    page = mmap.PAGESIZE
    libc = ctypes.CDLL(None, use_errno=True)
    mem = mmap.mmap(-1, 2 * page)
    anchor = ctypes.c_char.from_buffer(mem)
    guard = ctypes.c_void_p(ctypes.addressof(anchor) + page)
    del anchor
    assert libc.mprotect(guard, ctypes.c_size_t(page), 0) == 0  # PROT_NONE
    try:
        rnd = random.Random(3)
        for last in (1, 5, 9, 51, 63, 65, 100, 127):
            raw = [random_id(rnd, rnd.randrange(1, 90)) for _ in range(6)]
            raw.append(random_id(rnd, last))
            blob, offsets = raw_column(raw)
            mem[page - len(blob) : page] = blob
            with memoryview(mem) as whole, whole[page - len(blob) : page] as view:
                got = kernel.salts_bytes(SECRET, [(view, offsets)], 1, isa)
                out = bytearray(32 * len(raw))
                kernel.derive_salts(SECRET, view, offsets, 0, len(raw), out, isa)
            assert got == bytes(out) == keyed_blake2b(raw), last
    finally:
        libc.mprotect(guard, ctypes.c_size_t(page), mmap.PROT_READ | mmap.PROT_WRITE)
        mem.close()
