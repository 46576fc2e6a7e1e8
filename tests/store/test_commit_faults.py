"""A commit that fails must not leave the store believing something the database does not.

    tick 1: record(1) ............................ committed
    tick 2: record(2) -> COMMIT fails (a deferred constraint fires at commit time)
            before: the log's tree kept leaf 2 in memory, the tree file stayed on disk;
            every later record said "log has 1 leaves in the database but 2 in memory"
    tick 3: record(2) again, the fault gone ....... must succeed

The fault is real: a DEFERRABLE INITIALLY DEFERRED constraint trigger on PostgreSQL that
raises at COMMIT while a flag row exists.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.pool import NullPool

from por.errors import StoreError
from por.store import Store
from tests.store.factory import World
from tests.store.pg import needs_pg, pg_schema_url

_FAULT_SQL = [
    "CREATE TABLE por_fault_flag (on_ integer)",
    """CREATE FUNCTION por_fault() RETURNS trigger AS $$
       BEGIN
         IF EXISTS (SELECT 1 FROM por_fault_flag) THEN
           RAISE EXCEPTION 'injected commit-time fault' USING ERRCODE = '23514';
         END IF;
         RETURN NULL;
       END $$ LANGUAGE plpgsql""",
    """CREATE CONSTRAINT TRIGGER por_fault_at_commit AFTER INSERT ON por_log_leaves
       DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION por_fault()""",
]


def _sql(url: str, *statements: str) -> None:
    eng = create_engine(url, poolclass=NullPool)
    with eng.begin() as c:
        for st in statements:
            c.execute(text(st))
    eng.dispose()


@pytest.mark.postgres
@needs_pg
def test_failed_commit_leaves_memory_as_the_database_and_no_tree_file(tmp_path: Path) -> None:
    with pg_schema_url() as url:
        store = Store.open(
            url, data_dir=tmp_path / "d", attestations_dir=tmp_path / "a", migrate=True
        )
        try:
            world = World()
            first = world.next()
            store.record(**first.record_kwargs())
            world.last = first.attestation
            assert store.log_tree().size == 1  # the log's tree is cached in memory now

            _sql(url, *_FAULT_SQL, "INSERT INTO por_fault_flag VALUES (1)")
            second = world.next()
            with pytest.raises(StoreError, match="injected commit-time fault"):
                store.record(**second.record_kwargs())
            # nothing of round 2 anywhere: database, memory, tree files
            assert store.latest_sequence() == 1
            assert store.log_tree().size == 1
            assert store.checkpoint() is not None and store.checkpoint().size == 1  # type: ignore[union-attr]
            trees = sorted(p.name for p in (tmp_path / "d" / "trees").iterdir())
            assert len(trees) == 1 and trees[0].startswith("1-"), trees

            _sql(url, "DELETE FROM por_fault_flag")  # the fault is gone: the next tick works
            rec = store.record(**second.record_kwargs())
            assert rec.sequence == 2 and rec.leaf_index == 1
            assert store.log_tree().size == 2
            assert store.tree(2).root.sum == second.tree.root.sum
        finally:
            store.close()


def test_disk_full_on_sqlite_leaves_nothing_and_the_next_record_works(tmp_path: Path) -> None:
    """SQLite's own "database or disk is full" (SQLITE_FULL), raised for real by capping the
    file at its current page count (`PRAGMA max_page_count`, per connection)."""
    url = f"sqlite:///{tmp_path / 'por.db'}"
    store = Store.open(url, data_dir=tmp_path / "d", attestations_dir=tmp_path / "a", migrate=True)
    try:
        world = World()
        first = world.next()
        store.record(**first.record_kwargs())
        world.last = first.attestation
        assert store.log_tree().size == 1

        engine = store._db.engine  # the fault goes under the store
        full = {"on": True}

        @event.listens_for(engine, "connect")
        def _cap(dbapi_conn: Any, _record: Any) -> None:
            if full["on"]:
                cur = dbapi_conn.cursor()
                pages = cur.execute("PRAGMA page_count").fetchone()[0]
                cur.execute(f"PRAGMA max_page_count={pages}")
                cur.close()

        engine.dispose()  # new connections get the cap
        second = world.next()
        with pytest.raises(StoreError, match="database or disk is full"):
            store.record(**second.record_kwargs())
        assert store.latest_sequence() == 1
        assert store.log_tree().size == 1
        assert [p.name[:2] for p in (tmp_path / "d" / "trees").iterdir()] == ["1-"]

        full["on"] = False
        engine.dispose()  # the disk has room again
        rec = store.record(**second.record_kwargs())
        assert (rec.sequence, rec.leaf_index) == (2, 1)
        assert store.log_tree().size == 2
    finally:
        store.close()


def test_a_filled_tmpfs_fails_the_record_whole_and_the_next_one_works(tmp_path: Path) -> None:
    """The disk itself fills: database, tree files and envelope files on a small tmpfs
    that a filler file takes to the last byte. The record fails with a StoreError and
    leaves no row, no log leaf, no tree or envelope file; once there is room the same
    round records."""
    import os
    import shutil
    import subprocess

    fs = tmp_path / "fs"
    fs.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", str(fs)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    store = None
    try:
        store = Store.open(
            f"sqlite:///{fs / 'por.db'}",
            data_dir=fs / "d",
            attestations_dir=fs / "a",
            migrate=True,
        )
        world = World()
        first = world.next()
        store.record(**first.record_kwargs())
        world.last = first.attestation
        filler = fs / "filler"
        with open(filler, "wb") as f:  # every free byte, to the ENOSPC
            chunk = b"\0" * 65536
            try:
                while True:
                    f.write(chunk)
                    f.flush()
            except OSError:
                pass
        assert shutil.disk_usage(fs).free < 65536
        second = world.next()
        with pytest.raises(StoreError, match="No space left on device"):
            store.record(**second.record_kwargs())
        assert store.latest_sequence() == 1
        assert store.log_tree().size == 1
        assert [p.name[:2] for p in (fs / "d" / "trees").iterdir()] == ["1-"]
        assert not any(p.name.startswith("00000002") for p in (fs / "a").iterdir())

        os.unlink(filler)  # room again
        rec = store.record(**second.record_kwargs())
        assert (rec.sequence, rec.leaf_index) == (2, 1)
        assert store.log_tree().size == 2
    finally:
        if store is not None:
            store.close()
        subprocess.run(["umount", "-l", str(fs)], check=False)
