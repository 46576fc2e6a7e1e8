"""Tree files are memory-mapped; an unchecked map serves only proofs that verify.

`Store.tree(seq, checked=False)` (the API) returns after the O(1) checks and matches the
file's SHA-256 and consistency in a background thread; a file that fails is dropped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from por.api import ApiDeps, create_app
from por.errors import StoreError
from por.store import Store
from tests.store.factory import World, keyset


def flip_salt_byte(store: Store, sequence: int) -> None:
    """Change one salt in the body: header, length and root stay as they were."""
    path = store.trees_dir / store.get(sequence).tree_file
    data = bytearray(path.read_bytes())
    data[128 + 5] ^= 1  # the first leaf's salt (input row 0)
    path.write_bytes(bytes(data))


def test_unchecked_map_is_checked_in_the_background(tmp_path: Path) -> None:
    store = Store.open(None, data_dir=tmp_path / "d", attestations_dir=tmp_path / "a", migrate=True)
    World().record(store)
    tree = store.tree(1, checked=False)
    assert store.tree(1) is tree  # waits for the check, which passes
    assert store.tree_checked(1)

    flip_salt_byte(store, 1)
    fresh = Store.open(None, data_dir=tmp_path / "d", attestations_dir=tmp_path / "a", migrate=True)
    fresh.tree(1, checked=False)  # O(1) checks pass: the header and root are intact
    with pytest.raises(StoreError, match=r"corrupt \(SHA-256 expected"):
        fresh.tree(1)  # the background check found it
    assert not fresh.tree_checked(1)
    with pytest.raises(StoreError, match="corrupt"):
        fresh.tree(1, checked=False)  # dropped for good
    fresh.close()
    store.close()


def test_api_sends_only_proofs_that_reach_the_signed_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store.open(None, data_dir=tmp_path / "d", attestations_dir=tmp_path / "a", migrate=True)
    world = World()
    world.record(store)
    tree = store.tree(1)
    pos0 = tree._order.tolist().index(0)  # the leaf whose salt is flipped
    row0 = tree.leaf(pos0)
    # a leaf outside its 4-leaf chunk (a proof rehashes its own chunk from leaf data)
    other = tree.leaf((pos0 + 4) % tree.size).account
    flip_salt_byte(store, 1)
    fresh = Store.open(None, data_dir=tmp_path / "d", attestations_dir=tmp_path / "a", migrate=True)
    # the background check never finishes here, as if the file were still being hashed
    monkeypatch.setattr(Store, "_check_tree", lambda *a: None)
    app = create_app(ApiDeps(store=fresh, keys=keyset().to_dict(), proof_rate_limit=None))
    with TestClient(app) as c:
        ok = c.get(f"/v1/proofs/{other}")
        assert ok.status_code == 200  # verified against the signed root, then sent
        bad = c.get(f"/v1/proofs/{row0.account}")
        assert bad.status_code == 503, bad.text  # never a proof that does not verify
    fresh.close()
    store.close()


def test_missing_and_empty_files(tmp_path: Path) -> None:
    store = Store.open(None, data_dir=tmp_path / "d", attestations_dir=tmp_path / "a", migrate=True)
    World().record(store)
    path: Any = store.trees_dir / store.get(1).tree_file
    path.write_bytes(b"")
    with pytest.raises(StoreError, match="cannot map"):
        Store.open(
            None, data_dir=tmp_path / "d", attestations_dir=tmp_path / "a", migrate=True
        ).tree(1)
    path.unlink()
    with pytest.raises(StoreError, match="missing"):
        Store.open(
            None, data_dir=tmp_path / "d", attestations_dir=tmp_path / "a", migrate=True
        ).tree(1)
    store.close()
