"""`por tree root|prove LEAVES.jsonl`: recompute a liabilities root or a proof from a leaf export.

    por tree root LEAVES.jsonl            -> {"hash","size","sum"}
    por tree prove LEAVES.jsonl ACCOUNT   -> the por-mst-v1 inclusion proof of ACCOUNT

LEAVES.jsonl holds one JSON object per line, {"account","balance","salt"}: a CAIP-10
account id, the balance as a decimal string of base units, the salt as 64 lowercase hex
digits. The file is read once, line by line; any bad line stops the command with an
InputError whose `where` is FILE:LINE:FIELD (FIELD "$" when the line as a whole is
wrong), so nothing is written to stdout. Output is RFC 8785 canonical JSON on one line.

Auditor command: reads the given file, writes stdout only. The tree builder (numpy) is
imported only when a command builds a tree, so registering these commands costs nothing
for `por check` / `por verify`; without numpy they fail saying to install por[builder].
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from por.core.amounts import parse_base_units
from por.core.attestation import Liabilities
from por.core.canonical import canonical_bytes, loads_strict
from por.core.mst import SALT_SIZE, DuplicateAccountError, check_account, parse_hex
from por.errors import AmountError, ConfigError, FormatError, InputError

if TYPE_CHECKING:
    from por.core.sumtree import SumTree

_FIELDS = ("account", "balance", "salt")


class _Columns:
    """The leaves of one export as the columns SumTree.build_columns takes."""

    def __init__(self) -> None:
        self.accounts: list[str] = []
        self.balances: list[int] = []
        self.salts = bytearray()


def _float_field(line: bytes) -> str | None:
    """The first field whose value is a JSON number with a fraction or exponent."""

    class _Float:
        pass

    try:
        d = json.loads(line, parse_float=lambda _text: _Float())
    except ValueError:
        return None
    if isinstance(d, dict):
        for key, value in d.items():
            if isinstance(value, _Float):
                return str(key)
    return None


def _parse_line(line: bytes, where: str, out: _Columns) -> None:
    if not line.strip():
        raise FormatError("blank line; every line must be one leaf object", where=f"{where}:$")
    try:
        d = loads_strict(line, where=f"{where}:$")
    except FormatError as e:
        field = _float_field(line) if "float" in e.message else None
        if field is not None:
            raise AmountError(
                "must be a decimal string of integer base units, got a JSON "
                "number with a fraction or exponent",
                where=f"{where}:{field}",
            ) from e
        raise
    if not isinstance(d, dict):
        raise FormatError(f"must be a JSON object, got {type(d).__name__}", where=f"{where}:$")
    for key in d:
        if key not in _FIELDS:
            raise FormatError(f"unknown field {key!r}", where=f"{where}:{key}")
    for key in _FIELDS:
        if key not in d:
            raise FormatError(f"missing field {key!r}", where=f"{where}:{key}")
    out.accounts.append(check_account(d["account"], where=f"{where}:account"))
    out.balances.append(parse_base_units(d["balance"], where=f"{where}:balance"))
    out.salts += parse_hex(d["salt"], SALT_SIZE, where=f"{where}:salt")


def read_leaf_columns(path: str) -> _Columns:
    """Parse a LEAVES.jsonl export in one pass; InputError names file, line and field."""
    out = _Columns()
    try:
        with open(path, "rb") as f:
            for lineno, line in enumerate(f, start=1):
                _parse_line(line, f"{path}:{lineno}", out)
    except OSError as e:
        raise InputError(f"cannot read the leaf export: {e.strerror or e}", where=path) from e
    return out


def _sumtree_class() -> type[SumTree]:
    """SumTree, imported on first use: building a tree needs numpy (the `builder` extra)."""
    try:
        from por.core.sumtree import SumTree
    except ModuleNotFoundError as e:
        if e.name is None or e.name.partition(".")[0] != "numpy":
            raise
        raise ConfigError(
            "building a sum tree needs numpy, which is not installed: pip install 'por[builder]'"
        ) from e
    return SumTree


def build_tree(path: str, *, workers: int = 1) -> SumTree:
    """The sum tree over a leaf export; a duplicate account names both of its lines."""
    cols = read_leaf_columns(path)
    sumtree_class = _sumtree_class()
    try:
        return sumtree_class.build_columns(
            cols.accounts, cols.balances, bytes(cols.salts), workers=workers
        )
    except DuplicateAccountError as e:
        # leaf i is line i + 1: the reader refuses blank lines, so the two always agree
        err = DuplicateAccountError(
            f"duplicate account {e.account!r} (first on line {e.first_index + 1}); "
            "an account appears at most once",
            where=f"{path}:{e.index + 1}:account",
        )
        err.account, err.index, err.first_index = e.account, e.index, e.first_index
        raise err from e


def recompute_liabilities(path: str) -> Liabilities:
    """The liabilities commitment (root, total, leaf count) of the tree over an export."""
    tree = build_tree(path)
    return Liabilities(root=tree.root.hash.hex(), total=tree.root.sum, leaf_count=tree.size)


def _print_json(value: Any) -> None:
    sys.stdout.write(canonical_bytes(value).decode("utf-8") + "\n")


def _cmd_root(args: argparse.Namespace) -> int:
    tree = build_tree(args.leaves, workers=args.workers)
    root = tree.root
    _print_json({"hash": root.hash.hex(), "sum": str(root.sum), "size": tree.size})
    return 0


def _cmd_prove(args: argparse.Namespace) -> int:
    tree = build_tree(args.leaves, workers=args.workers)
    from por.core.sumtree import UnknownAccountError  # loaded with the tree

    try:
        proof = tree.prove(args.account)
    except UnknownAccountError as e:
        raise UnknownAccountError(
            f"account {args.account!r} has no leaf in this export", where=args.leaves
        ) from e
    _print_json(proof.to_dict())
    return 0


def _workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def register(subparsers: Any) -> None:
    tree = subparsers.add_parser(
        "tree", help="recompute a liabilities root or an inclusion proof from a leaf export"
    )
    sub = tree.add_subparsers(dest="tree_command", metavar="SUBCOMMAND", required=True)

    root = sub.add_parser("root", help='print {"hash","sum","size"} of the tree over LEAVES')
    root.add_argument("leaves", metavar="LEAVES.jsonl")
    root.set_defaults(func=_cmd_root)

    prove = sub.add_parser("prove", help="print the por-mst-v1 inclusion proof of ACCOUNT")
    prove.add_argument("leaves", metavar="LEAVES.jsonl")
    prove.add_argument("account", metavar="ACCOUNT", help="CAIP-10 account id")
    prove.set_defaults(func=_cmd_prove)

    for p in (root, prove):
        p.add_argument(
            "--workers", type=_workers, default=1, help="hash in this many processes (default 1)"
        )
