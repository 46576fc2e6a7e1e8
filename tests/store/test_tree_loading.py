"""Tree loads are off the request's lock path (issue 12 §6).

The attack: cycle `?sequence=` over old attestations. Each request loaded a tree file
while holding the store's one tree lock, so every other proof — even of the loaded
latest tree — waited behind the load (victims' p50 8 ms → 256 ms, max 2.9 s). Here one
load is held up on purpose; the others must not wait for it.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

import por.store.store as store_module
from por.errors import StoreError
from por.store import Store
from tests.store.factory import World


def test_a_slow_tree_load_blocks_nobody_else(tmp_path: Path, monkeypatch: Any) -> None:
    store = Store.open(
        None,
        data_dir=tmp_path / "data",
        attestations_dir=tmp_path / "att",
        migrate=True,
        tree_cache_size=3,
    )
    world = World()
    for _ in range(3):
        world.record(store)
    store.tree(3, checked=False)  # the latest, loaded
    release = threading.Event()
    entered = threading.Event()
    real_map = store_module._map_file

    def slow_map(path: Path, sequence: int) -> Any:
        if sequence == 1:
            entered.set()
            release.wait(30)  # a cold disk, a slow network volume
        return real_map(path, sequence)

    monkeypatch.setattr(store_module, "_map_file", slow_map)
    slow = threading.Thread(target=lambda: store.tree(1, checked=False))
    slow.start()
    try:
        assert entered.wait(10)
        done: dict[str, Any] = {}

        def others() -> None:
            done["cached"] = store.cached_tree(3)
            done["loaded"] = store.tree(3, checked=False)
            done["other"] = store.tree(2, checked=False)  # another sequence loads meanwhile

        t = threading.Thread(target=others)
        t.start()
        t.join(5)
        assert not t.is_alive(), "requests waited for another sequence's tree load"
        assert done["cached"] is not None and done["loaded"] is done["cached"]
        assert done["other"].size == done["loaded"].size
    finally:
        release.set()
        slow.join(10)
    # concurrent requests for one sequence load it once
    assert store.cached_tree(1) is store.tree(1, checked=False)
    store.close()


def test_a_reloaded_tree_is_hashed_again_only_if_its_file_changed(tmp_path: Path) -> None:
    store = Store.open(
        None,
        data_dir=tmp_path / "data",
        attestations_dir=tmp_path / "att",
        migrate=True,
        tree_cache_size=1,
    )
    world = World()
    for _ in range(2):
        world.record(store)
    store.tree(1)  # loaded and fully checked
    store.tree(2)  # evicts 1
    assert store.cached_tree(1) is None
    store.tree(1, checked=False)
    assert store.tree_checked(1)  # unchanged file: passed at once, not hashed again
    store.tree(2)  # evicts 1 again; now its file is changed behind our back
    path = store.trees_dir / store.get(1).tree_file
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="corrupt"):
        store.tree(1)  # checked: the whole file is hashed again, and refused
    store.close()
