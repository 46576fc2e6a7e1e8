"""Several `por run` instances on one database: one leader, one attestation per tick.

    instance A ──tick──► lock? yes ──► attest ──► keeps the lock
    instance B ──tick──► lock? no  ──► skip
    (A goes away)
    instance B ──tick──► lock? yes ──► attest

Runs on PostgreSQL (session advisory lock) when POR_TEST_PG_URL is set, and always on
SQLite (file lock), each instance with its own store connection.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from por.service.config import ScheduleConfig, load_config
from por.service.scheduler import AttestationScheduler
from por.service.wiring import Service, build_service
from tests.service.conftest import PASSPHRASE, Clock, write_world
from tests.store.pg import PG_URL, pg_schema_url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield ""
        return
    if not PG_URL:
        pytest.skip("POR_TEST_PG_URL is not set (no PostgreSQL)")
    with pg_schema_url() as url:
        yield url


def two_instances(
    tmp_path: Path, url: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[Service, Service]:
    monkeypatch.setenv("POR_KEY_PASSPHRASE", PASSPHRASE)
    world = write_world(tmp_path / "w", database_url=url)
    cfg = load_config(world.config)
    clock = Clock()
    return build_service(cfg, clock=clock), build_service(cfg, clock=clock)


def test_one_run_per_tick_and_failover(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = two_instances(tmp_path, database_url, monkeypatch)
    sched = ScheduleConfig(interval_s=3600, cron=None, misfire_grace_s=5, coalesce=True)
    sa = AttestationScheduler(sched, a.attest, a.store.leadership("attest"))
    sb = AttestationScheduler(sched, b.attest, b.store.leadership("attest"))
    try:
        for _ in range(3):  # every tick fires on both instances
            sa.tick()
            sb.tick()
        assert a.store.latest().sequence == 3
        assert (sa.stats.ran, sb.stats.ran, sb.stats.skipped_not_leader) == (3, 0, 3)
        sa.shutdown()  # the leader leaves; the follower takes over on its next tick
        sb.tick()
        sb.tick()
        assert b.store.latest().sequence == 5
        assert sb.stats.ran == 2
    finally:
        sb.shutdown()
        a.close()
        b.close()


@pytest.mark.slow
def test_real_triggers_two_instances(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = two_instances(tmp_path, database_url, monkeypatch)
    sched = ScheduleConfig(interval_s=1, cron=None, misfire_grace_s=1, coalesce=True)
    sa = AttestationScheduler(sched, a.attest, a.store.leadership("attest"))
    sb = AttestationScheduler(sched, b.attest, b.store.leadership("attest"))
    try:
        sa.start(run_now=True)
        sb.start(run_now=True)
        time.sleep(4.5)
    finally:
        sa.shutdown()
        sb.shutdown()
    try:
        runs = sa.stats.ran + sb.stats.ran
        latest = a.store.latest()
        assert latest is not None and latest.sequence == runs >= 3
        # exactly one instance ran; the other only skipped
        assert 0 in (sa.stats.ran, sb.stats.ran)
        assert sa.stats.failed == sb.stats.failed == 0
        assert max(sa.stats.skipped_not_leader, sb.stats.skipped_not_leader) >= 3
    finally:
        a.close()
        b.close()


@pytest.mark.postgres
def test_a_leader_that_cannot_record_hands_over_to_the_standby(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 12: a wedged leader kept the lock, so the standby never took over.

        A: tick ─► lead ─► record ✗ (its commits fail) N times ─► release, sit out a tick
        B: tick ─► lock? no ─► skip ... ─► lock? yes ─► attest ✓

    Real PostgreSQL: A's connections carry application_name por-broken, and a deferred
    constraint trigger fails every commit made under that name.
    """
    if not PG_URL:
        pytest.skip("POR_TEST_PG_URL is not set (no PostgreSQL)")
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    with pg_schema_url() as url:
        monkeypatch.setenv("POR_KEY_PASSPHRASE", PASSPHRASE)
        world = write_world(tmp_path / "w", database_url=url)
        eng = create_engine(url, poolclass=NullPool)
        with eng.begin() as c:
            c.execute(
                text(
                    """CREATE FUNCTION por_fault() RETURNS trigger AS $$
                    BEGIN
                      IF current_setting('application_name') = 'por-broken' THEN
                        RAISE EXCEPTION 'injected: this instance cannot commit';
                      END IF;
                      RETURN NULL;
                    END $$ LANGUAGE plpgsql"""
                )
            )
            c.execute(
                text(
                    """CREATE CONSTRAINT TRIGGER por_fault AFTER INSERT ON por_log_leaves
                    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION por_fault()"""
                )
            )
        eng.dispose()
        cfg = load_config(world.config)
        broken = cfg.model_copy(
            update={
                "service": cfg.service.model_copy(
                    update={"database_url": url + "&application_name=por-broken"}
                )
            }
        )
        clock = Clock()
        a, b = build_service(broken, clock=clock), build_service(cfg, clock=clock)
        sched = ScheduleConfig(
            interval_s=3600, cron=None, misfire_grace_s=5, coalesce=True, release_after_failures=2
        )
        sa = AttestationScheduler(sched, a.attest, a.store.leadership("attest"))
        sb = AttestationScheduler(sched, b.attest, b.store.leadership("attest"))
        try:
            sa.tick()  # A leads and fails
            sb.tick()  # B stands by
            assert sa.is_leader and sb.stats.skipped_not_leader == 1
            sa.tick()  # A fails again: that is 2 in a row, it lets go ...
            assert sa.stats.failed == 2 and "cannot commit" in (sa.stats.last_error or "")
            assert sa.stats.released == 1 and not sa.is_leader
            assert a.store.latest() is None
            sb.tick()  # ... and B takes over at its next tick
            assert sb.is_leader and b.store.latest().sequence == 1  # type: ignore[union-attr]
            for _ in range(2):
                sa.tick()  # A sits out, then finds the lock taken
                sb.tick()
            assert not sa.is_leader and b.store.latest().sequence == 3  # type: ignore[union-attr]
            assert sa.stats.failed == 2
            assert sorted(p.name[:2] for p in (world.root / "data" / "trees").iterdir()) == [
                "1-",
                "2-",
                "3-",
            ]  # A's failed rounds left no tree file
        finally:
            sa.shutdown()
            sb.shutdown()
            a.close()
            b.close()


def test_a_new_leader_removes_tree_files_left_by_crashed_rounds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A leader killed between its tree file and its commit leaves a file no row names.
    The next leader removes it when it wins the lock (once older than a run may last),
    not only at a start an hour later."""
    import os

    a, b = two_instances(tmp_path, "", monkeypatch)
    trees = a.cfg.service.data_dir / "trees"
    trees.mkdir(parents=True, exist_ok=True)
    crashed = trees / "7-00112233aabbccdd-deadbeef.mst"
    crashed.write_bytes(b"left by a leader killed before its commit")
    recent = trees / "8-00112233aabbccdd-feedface.mst"
    recent.write_bytes(b"a writer elsewhere may still be committing this one")
    old = time.time() - (a.cfg.schedule.deadline_s + 60)
    os.utime(crashed, (old, old))
    sched = ScheduleConfig(interval_s=3600, cron=None, misfire_grace_s=5, coalesce=True)
    sa = AttestationScheduler(
        sched, a.attest, a.store.leadership("attest"), on_lead=a.clean_orphan_trees
    )
    try:
        sa.tick()
        assert not crashed.exists() and recent.exists()
        assert a.store.latest().sequence == 1  # type: ignore[union-attr]
    finally:
        sa.shutdown()
        a.close()
        b.close()
