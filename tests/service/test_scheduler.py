"""The scheduler: only the leader runs, one run at a time, failures don't stop the ticks."""

from __future__ import annotations

import threading
import time

from por.errors import ChainError
from por.service.config import ScheduleConfig
from por.service.scheduler import AttestationScheduler


class Lock:
    """A shared in-memory lock standing in for the database lock."""

    def __init__(self) -> None:
        self.holder: object | None = None
        self.mutex = threading.Lock()


class Lead:
    def __init__(self, lock: Lock) -> None:
        self.lock = lock
        self.alive = True

    def try_acquire(self) -> bool:
        with self.lock.mutex:
            if self.lock.holder is None:
                self.lock.holder = self
            return self.lock.holder is self

    def is_held(self) -> bool:
        return self.alive and self.lock.holder is self

    def release(self) -> None:
        with self.lock.mutex:
            if self.lock.holder is self:
                self.lock.holder = None


SCHED = ScheduleConfig(interval_s=3600, cron=None, misfire_grace_s=10, coalesce=True)


def test_only_the_leader_runs_each_tick() -> None:
    lock = Lock()
    runs: list[str] = []
    a = AttestationScheduler(SCHED, lambda: runs.append("a"), Lead(lock))
    b = AttestationScheduler(SCHED, lambda: runs.append("b"), Lead(lock))
    for _ in range(3):  # both fire on every tick
        a.tick()
        b.tick()
    assert runs == ["a", "a", "a"]
    assert b.stats.skipped_not_leader == 3
    a.shutdown()  # the leader leaves: the other takes over at its next tick
    b.tick()
    assert runs[-1] == "b" and b.is_leader


def test_lost_lock_stops_running_until_won_again() -> None:
    lock = Lock()
    runs: list[int] = []
    lead = Lead(lock)
    s = AttestationScheduler(SCHED, lambda: runs.append(1), lead)
    s.tick()
    lead.alive = False  # e.g. the database connection holding the lock died
    lock.holder = object()  # and someone else won it meanwhile
    s.tick()
    assert runs == [1] and not s.is_leader


def test_failed_run_is_counted_and_next_tick_runs() -> None:
    calls = {"n": 0}

    def run() -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ChainError("node down", where="eip155:1 http://127.0.0.1:1")

    s = AttestationScheduler(SCHED, run, Lead(Lock()))
    s.tick()
    s.tick()
    assert s.stats.failed == 1 and s.stats.ran == 1
    assert "node down" in (s.stats.last_error or "")


def test_interval_trigger_runs_in_background_without_overlap() -> None:
    active = {"now": 0, "max": 0, "runs": 0}
    m = threading.Lock()

    def slow_run() -> None:
        with m:
            active["now"] += 1
            active["max"] = max(active["max"], active["now"])
        time.sleep(1.5)  # longer than the interval: max_instances=1 must hold
        with m:
            active["now"] -= 1
            active["runs"] += 1

    s = AttestationScheduler(
        ScheduleConfig(interval_s=1, cron=None, misfire_grace_s=1, coalesce=True),
        slow_run,
        Lead(Lock()),
    )
    s.start(run_now=True)
    time.sleep(4)
    s.shutdown()
    assert active["runs"] >= 2
    assert active["max"] == 1


def test_repeated_failures_release_the_lock_for_a_standby() -> None:
    lock = Lock()
    runs: list[str] = []

    def broken() -> None:
        raise ChainError("cannot record")

    sched = ScheduleConfig(
        interval_s=3600, cron=None, misfire_grace_s=10, coalesce=True, release_after_failures=3
    )
    a = AttestationScheduler(sched, broken, Lead(lock))
    b = AttestationScheduler(sched, lambda: runs.append("b"), Lead(lock))
    for _ in range(3):
        a.tick()
        b.tick()
    assert a.stats.failed == 3 and a.stats.released == 1 and not a.is_leader
    assert runs == ["b"]  # B won the lock on the tick A gave it up
    a.tick()  # A sits out one tick, then finds the lock taken
    a.tick()
    b.tick()
    assert runs == ["b", "b"] and not a.is_leader


def test_run_deadline_is_checked_against_the_interval() -> None:
    import pytest
    from pydantic import ValidationError

    assert ScheduleConfig(interval_s=3600).deadline_s == 900
    assert ScheduleConfig(interval_s=60).deadline_s == 30
    assert ScheduleConfig(cron="0 * * * *").deadline_s == 600
    assert ScheduleConfig(interval_s=60, run_deadline_s=45).deadline_s == 45
    with pytest.raises(ValidationError, match="must be less than interval_s"):
        ScheduleConfig(interval_s=60, run_deadline_s=60)


def test_a_cron_schedule_needs_a_deadline_under_its_shortest_gap() -> None:
    import pytest

    from por.errors import ConfigError

    every_15 = ScheduleConfig(cron="*/15 * * * *")  # default deadline 600 s < 900 s
    AttestationScheduler(every_15, lambda: None, Lead(Lock())).shutdown()
    with pytest.raises(
        ConfigError, match=r"less than the shortest time between two runs \(300 s\)"
    ):
        AttestationScheduler(ScheduleConfig(cron="*/5 * * * *"), lambda: None, Lead(Lock()))
