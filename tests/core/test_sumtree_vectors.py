"""The por-mst-v1 vectors in tests/vectors/sumtree/ (made by tests/vectors/gen_sumtree.py).

Each file's want_err names the error class a verifier must raise, or null when the case
must pass; the same files serve the CLI, the browser page and other implementations.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from por.core.mst import InclusionProof, Leaf, Node, verify_inclusion
from por.core.sumtree import SumTree
from por.errors import PorError

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "sumtree"
FILES = sorted(VECTORS.glob("*.json"))


def run_case(case: dict[str, Any]) -> None:
    if case["kind"] == "proof":
        proof = InclusionProof.from_dict(case["proof"])
        root = Node.from_dict(case["root"]) if case.get("root") is not None else None
        verify_inclusion(proof, root=root)
    elif case["kind"] == "tree":
        tree = SumTree.build(Leaf.from_dict(d) for d in case["leaves"])
        assert tree.root == Node.from_dict(case["root"])
        assert tree.size == case["size"]
    else:  # pragma: no cover - a generator bug
        raise AssertionError(f"unknown kind {case['kind']!r}")


def test_vectors_exist() -> None:
    names = {f.stem for f in FILES}
    assert len(names) > 100
    for must in (
        "size13_leaf06_index_plus_1",
        "size13_leaf06_index_minus_1",
        "size13_leaf06_size_times_2",
        "size13_leaf06_size_div_2",
        "size13_leaf06_balance_plus_1",
        "size13_leaf06_salt_bit_flip",
        "size13_leaf06_path0_sum_plus_1",
        "size13_leaf06_path0_sum_minus_1",
        "size13_leaf06_siblings_swapped",
        "size13_leaf06_path_truncated",
        "size13_leaf06_path_extended",
        "size13_leaf06_path3_hash_bit_flip",
        "size13_leaf06_root_hash_bit_flip",
        "parse_format_other",
        "tree_size00",
    ):
        assert must in names


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_vector(path: Path) -> None:
    case = json.loads(path.read_text(encoding="ascii"))
    assert set(case) >= {"desc", "want_err", "kind"}
    if case["want_err"] is None:
        run_case(case)
        return
    with pytest.raises(PorError) as e:
        run_case(case)
    assert type(e.value).__name__ == case["want_err"], e.value.diagnostics()
