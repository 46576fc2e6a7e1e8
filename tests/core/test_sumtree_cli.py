"""`por tree root|prove LEAVES.jsonl`: output, and bad input naming file, line and field."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from por.cli.main import main
from por.cli.tree import read_leaf_columns
from por.core.mst import InclusionProof, Leaf, derive_salt, verify_inclusion
from por.core.sumtree import SumTree
from por.errors import InputError

SECRET = hashlib.sha256(b"cli round secret").digest()


def acct(i: int) -> str:
    return f"eip155:1:0x{i:040x}"


LEAVES = [
    Leaf(account=acct(i), balance=1_000_000 * (i + 1), salt=derive_salt(SECRET, acct(i)))
    for i in range(6)
]
GOOD_LINES = [json.dumps(leaf.to_dict()) for leaf in LEAVES]


def write(tmp_path: Path, lines: list[str], name: str = "leaves.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_tree_root_prints_hash_sum_size(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, GOOD_LINES)
    assert main(["tree", "root", str(path)]) == 0
    out = json.loads(capsys.readouterr().out)
    root = SumTree.build(LEAVES).root
    assert out == {"hash": root.hash.hex(), "sum": str(root.sum), "size": 6}


def test_tree_prove_prints_a_proof_that_verifies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, GOOD_LINES)
    assert main(["tree", "prove", str(path), acct(3), "--workers", "2"]) == 0
    captured = capsys.readouterr()
    proof = InclusionProof.from_dict(json.loads(captured.out))
    tree = SumTree.build(LEAVES)
    assert proof == tree.prove(acct(3))
    verify_inclusion(proof, root=tree.root)
    assert captured.err == ""


def test_a_file_without_final_newline_is_fine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "leaves.jsonl"
    path.write_text("\n".join(GOOD_LINES), encoding="utf-8")
    assert main(["tree", "root", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["size"] == 6


def test_unknown_account(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, GOOD_LINES)
    assert main(["tree", "prove", str(path), acct(99)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert acct(99) in captured.err and "UnknownAccountError" in captured.err


def _line(i: int, **changes: object) -> str:
    d: dict[str, object] = dict(LEAVES[i].to_dict())
    for key, value in changes.items():
        if value is None:
            d.pop(key)
        else:
            d[key] = value
    return json.dumps(d)


BAD = {
    # name: (line 3 replaced by this text, the field `where` names)
    "malformed_json": ('{"account": "eip155:1:0x1", "balance": "5"', "$"),
    "not_an_object": ("[1, 2, 3]", "$"),
    "blank_line": ("", "$"),
    "blank_garbage": (" \t ", "$"),
    "trailing_garbage": (_line(2) + " x", "$"),
    "non_hex_salt": (_line(2, salt="zz" * 32), "salt"),
    "upper_hex_salt": (_line(2, salt=LEAVES[2].salt.hex().upper()), "salt"),
    "short_salt": (_line(2, salt="00" * 31), "salt"),
    "float_balance": (_line(2).replace('"3000000"', "3000000.5"), "balance"),
    "exponent_balance": (_line(2).replace('"3000000"', "3e6"), "balance"),
    "number_balance": (_line(2, balance=3000000), "balance"),
    "negative_balance": (_line(2, balance="-3000000"), "balance"),
    "balance_2_127": (_line(2, balance=str(2**127)), "balance"),
    "missing_salt": (_line(2, salt=None), "salt"),
    "missing_account": (_line(2, account=None), "account"),
    "unknown_field": (_line(2, note="hi"), "note"),
    "bad_account": (_line(2, account="alice"), "account"),
    "account_not_string": (_line(2, account=7), "account"),
    "duplicate_account": (_line(2, account=acct(0)), "account"),
    "duplicate_key": (
        '{"account": "a:b:c", "account": "a:b:d", "balance": "1", "salt": "' + "00" * 32 + '"}',
        "$",
    ),
}


@pytest.mark.parametrize("name", sorted(BAD))
@pytest.mark.parametrize("command", ["root", "prove"])
def test_bad_input_names_file_line_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, command: str
) -> None:
    text, field = BAD[name]
    lines = list(GOOD_LINES)
    lines[2] = text
    path = write(tmp_path, lines)
    argv = ["tree", command, str(path)] + ([acct(0)] if command == "prove" else [])
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"{path}:3:{field}:" in captured.err, captured.err
    if name == "duplicate_account":
        assert "first on line 1" in captured.err


@pytest.mark.parametrize("name", sorted(BAD))
def test_reader_raises_input_error_with_where(tmp_path: Path, name: str) -> None:
    text, field = BAD[name]
    lines = list(GOOD_LINES)
    lines[2] = text
    path = write(tmp_path, lines)
    if name == "duplicate_account":  # found when the tree is built, not while reading
        from por.cli.tree import build_tree

        with pytest.raises(InputError) as e:
            build_tree(str(path))
    else:
        with pytest.raises(InputError) as e:
            read_leaf_columns(str(path))
    assert e.value.where == f"{path}:3:{field}"


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.jsonl"
    assert main(["tree", "root", str(missing)]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and str(missing) in captured.err


def test_bad_workers_is_a_usage_error(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD_LINES)
    with pytest.raises(SystemExit) as e:
        main(["tree", "root", str(path), "--workers", "0"])
    assert e.value.code == 2
