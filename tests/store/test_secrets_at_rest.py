"""Secrets at rest (issue 12 §8).

As found: `por.db` and its `-wal`/`-shm` were mode 0644 in a 0755 data directory, and
they hold every round secret — from which every holder's salt, and so every holder's
balance behind the published root, follows. Any local user could read them. Here: a
fresh store and an old permissive one, with the umask most systems have (022).
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from por.store import Store
from tests.store.factory import World


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def _open(tmp_path: Path) -> Store:
    return Store.open(
        None, data_dir=tmp_path / "data", attestations_dir=tmp_path / "att", migrate=True
    )


def test_a_fresh_store_keeps_its_secrets_to_itself(tmp_path: Path) -> None:
    store = _open(tmp_path)
    World().record(store)
    data = tmp_path / "data"
    assert mode(data) == 0o700
    db = data / "por.db"
    wal, shm = data / "por.db-wal", data / "por.db-shm"
    assert wal.exists() and shm.exists()  # WAL mode, a write happened
    assert {p.name: mode(p) for p in (db, wal, shm)} == {
        "por.db": 0o600,
        "por.db-wal": 0o600,
        "por.db-shm": 0o600,
    }
    assert all(mode(p) == 0o600 for p in (data / "trees").iterdir())
    store.close()


def test_an_old_permissive_store_is_fixed_at_start_with_a_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = _open(tmp_path)
    World().record(store)
    store.close()
    data = tmp_path / "data"
    os.chmod(data, 0o755)
    for name in ("por.db", "por.db-wal", "por.db-shm"):
        if (data / name).exists():
            os.chmod(data / name, 0o644)
    with caplog.at_level(logging.WARNING, logger="por.store"):
        store = _open(tmp_path)
    assert mode(data) == 0o700 and mode(data / "por.db") == 0o600
    assert all(mode(p) == 0o600 for p in data.glob("por.db*") if not p.name.endswith(".lock"))
    assert "was mode 0755 (readable by others): made 0700" in caplog.text
    assert "por.db was mode 0644 (readable by others): made 0600" in caplog.text
    store.close()
