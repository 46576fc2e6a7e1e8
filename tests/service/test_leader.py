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
