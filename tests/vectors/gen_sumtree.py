"""Generate the por-mst-v1 sum-tree test vectors (deterministic: fixed secrets, no randomness).

    python tests/vectors/gen_sumtree.py [--out DIR | --out-root DIR]

writes one JSON file per case into DIR (default tests/vectors/sumtree/; --out-root R
means R/sumtree/, as the other generators take it). Every file is
{"desc", "want_err", "kind", ...}: want_err is null for a case that must pass, else
the name of the error class a verifier must raise.

    kind "proof": {"proof": <por-mst-v1 proof JSON>, "root": {"hash","sum"}} — parse the
        proof strictly, then verify it; "root" is the root of the tree it came from (every
        case with want_err fails on the proof alone, so a verifier that does not take a
        trusted root runs the same cases).
    kind "tree":  {"leaves": [{"account","balance","salt"}...], "root": {...}|null,
        "size"} — build the tree from the leaves (any order) and compare the root.

Valid proofs come from por's own tree; each mutation is made here by hand so that it is
what its name says, named like transparency-dev/merkle's proofgen cases.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from por.core.mst import EMPTY_ROOT, Leaf, derive_salt
from por.core.sumtree import SumTree

AREA = "sumtree"
SIZES = (1, 2, 3, 5, 8, 13)
Case = dict[str, Any]


def seed(label: str) -> bytes:
    return hashlib.sha256(f"por test vector seed: {label}".encode()).digest()


ROUND_SECRET = seed("sumtree round secret")


def account(i: int) -> str:
    """A mix of the account id families the service uses."""
    if i % 3 == 0:
        return f"eip155:1:0x{hashlib.sha256(b'evm%d' % i).hexdigest()[:40]}"
    if i % 3 == 1:
        return f"solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp:Holder{i:04d}"
    return f"ledger:custodian-hk:acct-{i:04d}"


def balance(i: int) -> int:
    # all >= 1 so "sum minus 1" stays a valid amount; some beyond 2^64 for the high word
    return (i + 1) * 1_000_000 + (2**100 if i % 4 == 3 else 0)


def leaves(n: int, start: int = 0) -> list[Leaf]:
    return [
        Leaf(account=account(i), balance=balance(i), salt=derive_salt(ROUND_SECRET, account(i)))
        for i in range(start, start + n)
    ]


def flip_hex(text: str, bit: int = 0) -> str:
    """Flip one bit of the first byte of a hex string."""
    data = bytearray(bytes.fromhex(text))
    data[0] ^= 1 << bit
    return data.hex()


def node_dict(sum_: int, label: str) -> dict[str, str]:
    return {"hash": hashlib.sha256(label.encode()).hexdigest(), "sum": str(sum_)}


def proof_cases() -> dict[str, Case]:
    cases: dict[str, Case] = {}

    def add(
        name: str, desc: str, want_err: str | None, proof: dict[str, Any], root: dict[str, str]
    ) -> None:
        cases[name] = {
            "desc": desc,
            "want_err": want_err,
            "kind": "proof",
            "proof": proof,
            "root": root,
        }

    for n in SIZES:
        tree = SumTree.build(leaves(n))
        root = tree.root.to_dict()
        for i in range(n):
            add(
                f"size{n:02d}_leaf{i:02d}_valid",
                f"leaf {i} of a {n}-leaf tree",
                None,
                tree.prove_index(i).to_dict(),
                root,
            )

        i = n // 2  # >= 1 for n >= 2, so "index minus 1" exists
        good = tree.prove_index(i).to_dict()
        pre = f"size{n:02d}_leaf{i:02d}"

        def mutated(
            change: Callable[[dict[str, Any]], None], good: dict[str, Any] = good
        ) -> dict[str, Any]:
            p = copy.deepcopy(good)
            change(p)
            return p

        def set_(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
            return lambda p: p.__setitem__(key, value)

        add(
            f"{pre}_index_plus_1",
            "leaf index plus 1",
            "ProofError",
            mutated(set_("index", i + 1)),
            root,
        )
        if i >= 1:
            add(
                f"{pre}_index_minus_1",
                "leaf index minus 1",
                "ProofError",
                mutated(set_("index", i - 1)),
                root,
            )
        add(
            f"{pre}_size_times_2",
            "tree size times 2",
            "ProofError",
            mutated(set_("size", n * 2)),
            root,
        )
        add(
            f"{pre}_size_div_2",
            "tree size divided by 2",
            "ProofError",
            mutated(set_("size", n // 2)),
            root,
        )
        add(
            f"{pre}_balance_plus_1",
            "wrong balance: plus 1",
            "ProofError",
            mutated(set_("balance", str(balance_of(good) + 1))),
            root,
        )
        add(
            f"{pre}_balance_minus_1",
            "wrong balance: minus 1 (the liability understated)",
            "ProofError",
            mutated(set_("balance", str(balance_of(good) - 1))),
            root,
        )
        add(
            f"{pre}_salt_bit_flip",
            "wrong salt: bit flip in salt",
            "ProofError",
            mutated(set_("salt", flip_hex(good["salt"]))),
            root,
        )
        other = account(i + 1000)
        add(
            f"{pre}_account_changed",
            "another account claims this leaf",
            "ProofError",
            mutated(set_("account", other)),
            root,
        )
        for k in range(len(good["path"])):
            for delta, word in ((1, "plus"), (-1, "minus")):

                def change_sum(p: dict[str, Any], k: int = k, delta: int = delta) -> None:
                    p["path"][k]["sum"] = str(int(p["path"][k]["sum"]) + delta)

                add(
                    f"{pre}_path{k}_sum_{word}_1",
                    f"sibling sum at path[{k}] {word} 1",
                    "ProofError",
                    mutated(change_sum),
                    root,
                )

            def flip(p: dict[str, Any], k: int = k) -> None:
                p["path"][k]["hash"] = flip_hex(p["path"][k]["hash"])

            add(
                f"{pre}_path{k}_hash_bit_flip",
                f"bit flip in path[{k}].hash",
                "ProofError",
                mutated(flip),
                root,
            )
        if len(good["path"]) >= 2:

            def swap(p: dict[str, Any]) -> None:
                p["path"][0], p["path"][1] = p["path"][1], p["path"][0]

            add(
                f"{pre}_siblings_swapped",
                "path[0] and path[1] swapped",
                "ProofError",
                mutated(swap),
                root,
            )
        if good["path"]:
            add(
                f"{pre}_path_truncated",
                "last sibling dropped",
                "ProofError",
                mutated(lambda p: p["path"].pop()),
                root,
            )
        add(
            f"{pre}_path_extended",
            "one sibling appended",
            "ProofError",
            mutated(lambda p: p["path"].append(node_dict(1, "extra"))),
            root,
        )
        add(
            f"{pre}_root_hash_bit_flip",
            "bit flip in root.hash",
            "ProofError",
            mutated(lambda p: p["root"].__setitem__("hash", flip_hex(p["root"]["hash"]))),
            root,
        )
        add(
            f"{pre}_root_sum_plus_1",
            "root sum plus 1",
            "ProofError",
            mutated(lambda p: p["root"].__setitem__("sum", str(int(p["root"]["sum"]) + 1))),
            root,
        )

    # shape and parsing: the same proof, refused before any hashing
    n = 5
    tree = SumTree.build(leaves(n))
    root = tree.root.to_dict()
    good = tree.prove_index(2).to_dict()

    def variant(
        name: str, desc: str, want_err: str, change: Callable[[dict[str, Any]], None]
    ) -> None:
        p = copy.deepcopy(good)
        change(p)
        add(f"parse_{name}", desc, want_err, p, root)

    variant(
        "format_other",
        "the proof names another format",
        "FormatError",
        lambda p: p.__setitem__("format", "por-mst-v2"),
    )
    variant("format_missing", "no format field", "FormatError", lambda p: p.pop("format"))
    variant(
        "field_unknown",
        "an unknown field (trailing garbage)",
        "FormatError",
        lambda p: p.__setitem__("note", "x"),
    )
    variant("field_missing", "no salt field", "FormatError", lambda p: p.pop("salt"))
    variant(
        "balance_number",
        "balance as a JSON number",
        "AmountError",
        lambda p: p.__setitem__("balance", balance_of(good)),
    )
    variant(
        "balance_leading_zero",
        "balance with a leading zero",
        "AmountError",
        lambda p: p.__setitem__("balance", "0" + p["balance"]),
    )
    variant(
        "balance_negative",
        "negative balance",
        "AmountError",
        lambda p: p.__setitem__("balance", "-" + p["balance"]),
    )
    variant(
        "balance_2_127",
        "balance of 2^127",
        "AmountError",
        lambda p: p.__setitem__("balance", str(2**127)),
    )
    variant(
        "salt_uppercase",
        "salt in upper-case hex",
        "FormatError",
        lambda p: p.__setitem__("salt", p["salt"].upper()),
    )
    variant(
        "salt_short",
        "salt of 31 bytes",
        "FormatError",
        lambda p: p.__setitem__("salt", p["salt"][:62]),
    )
    variant(
        "path_hash_0x",
        "path hash with a 0x prefix",
        "FormatError",
        lambda p: p["path"][0].__setitem__("hash", "0x" + p["path"][0]["hash"][2:]),
    )
    variant("index_negative", "negative index", "FormatError", lambda p: p.__setitem__("index", -1))
    variant(
        "index_string", "index as a string", "FormatError", lambda p: p.__setitem__("index", "2")
    )
    variant(
        "sum_overflow",
        "a sibling sum that lifts a partial sum to 2^127",
        "ProofError",
        lambda p: p["path"][0].__setitem__("sum", str(2**127 - 1)),
    )
    return cases


def balance_of(proof: dict[str, Any]) -> int:
    return int(proof["balance"])


def tree_cases() -> dict[str, Case]:
    cases: dict[str, Case] = {}

    def add(
        name: str,
        desc: str,
        want_err: str | None,
        items: list[dict[str, str]],
        root: dict[str, str] | None,
        size: int | None,
    ) -> None:
        cases[name] = {
            "desc": desc,
            "want_err": want_err,
            "kind": "tree",
            "leaves": items,
            "root": root,
            "size": size,
        }

    add("tree_size00", 'no leaves: the empty root H("")', None, [], EMPTY_ROOT.to_dict(), 0)
    for n in SIZES:
        items = leaves(n)
        tree = SumTree.build(items)
        # leaves listed in input order: a verifier must sort them by leaf hash itself
        add(
            f"tree_size{n:02d}",
            f"{n} leaves (listed in input order, not tree order)",
            None,
            [leaf.to_dict() for leaf in items],
            tree.root.to_dict(),
            n,
        )
    three = leaves(3)
    add(
        "tree_duplicate_account",
        "one account twice (different balance)",
        "DuplicateAccountError",
        [leaf.to_dict() for leaf in three]
        + [Leaf(account=three[0].account, balance=1, salt=three[0].salt).to_dict()],
        None,
        None,
    )
    big = [
        Leaf(account=account(i), balance=2**126, salt=derive_salt(ROUND_SECRET, account(i)))
        for i in range(2)
    ]
    add(
        "tree_total_2_127",
        "two balances of 2^126: the root sum would reach 2^127",
        "AmountError",
        [leaf.to_dict() for leaf in big],
        None,
        None,
    )
    return cases


def write_cases(out: Path, cases: dict[str, Case]) -> int:
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.json"):  # this generator owns the directory: drop stale cases
        old.unlink()
    for name, body in sorted(cases.items()):
        text = json.dumps(body, indent=2, ensure_ascii=True) + "\n"
        (out / f"{name}.json").write_text(text, encoding="ascii")
    return len(cases)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--out", type=Path, help="directory for the case files")
    where.add_argument("--out-root", type=Path, help="write into OUT_ROOT/sumtree/")
    args = parser.parse_args(argv)
    if args.out is not None:
        out = args.out
    elif args.out_root is not None:
        out = args.out_root / AREA
    else:
        out = Path(__file__).resolve().parent / AREA
    count = write_cases(out, {**proof_cases(), **tree_cases()})
    print(f"{out}: {count} cases")
    return 0


if __name__ == "__main__":
    sys.exit(main())
