"""APScheduler 3.x wiring: one attestation job, one run at a time, one leader per database.

Every instance of `por run` schedules the same job. At each tick the instance first
makes sure it leads (a database lock held for the life of the process: a PostgreSQL
session advisory lock, or a file lock next to a SQLite database); only the leader runs
the attestation. The leader keeps the lock between ticks, so a tick cannot run twice
because the first run finished before the second instance looked. `max_instances=1`
keeps runs of one instance from overlapping; `coalesce` folds missed ticks into one and
`misfire_grace_time` bounds how late a tick may still start.

A leader that cannot record is worse than none: it keeps the lock, so a healthy standby
never runs. After `release_after_failures` consecutive failed runs (a failed commit, a
full disk, a run past its deadline) the leader releases the lock and sits out its next
tick, so a standby that ticks meanwhile takes over; if none does, it tries again after.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from por.errors import ConfigError, PorError
from por.service.config import ScheduleConfig

log = logging.getLogger("por.scheduler")

JOB_ID = "por-attest"


def longest_gap_s(schedule: ScheduleConfig, *, samples: int = 64) -> int:
    """The longest time between two runs of `schedule` (its interval, or the widest gap
    between the next `samples` cron fire times): what "K intervals late" is measured in."""
    if schedule.cron is None:
        return schedule.interval_s or 3600
    from datetime import UTC, datetime

    trigger = CronTrigger.from_crontab(schedule.cron, timezone="UTC")
    previous = None
    now = datetime(2025, 1, 1, tzinfo=UTC)
    widest = 0
    for _ in range(samples):
        fire = trigger.get_next_fire_time(previous, now)
        if fire is None:
            break
        if previous is not None:
            widest = max(widest, int((fire - previous).total_seconds()))
        previous, now = fire, fire
    return widest or 86400


def shortest_gap_s(schedule: ScheduleConfig, *, samples: int = 64) -> int:
    """The shortest time between two runs of `schedule` (its interval, or the narrowest
    gap between the next `samples` cron fire times): what a run deadline must stay under."""
    if schedule.cron is None:
        return schedule.interval_s or 3600
    from datetime import UTC, datetime

    trigger = CronTrigger.from_crontab(schedule.cron, timezone="UTC")
    previous = None
    now = datetime(2025, 1, 1, tzinfo=UTC)
    narrowest: int | None = None
    for _ in range(samples):
        fire = trigger.get_next_fire_time(previous, now)
        if fire is None:
            break
        if previous is not None:
            gap = int((fire - previous).total_seconds())
            narrowest = gap if narrowest is None else min(narrowest, gap)
        previous, now = fire, fire
    return narrowest or 86400


def check_deadline(schedule: ScheduleConfig) -> None:
    """A run must end before the next is due: its deadline under the cron's shortest gap
    (an interval is checked when the configuration is read)."""
    if schedule.cron is None:
        return
    gap = shortest_gap_s(schedule)
    if schedule.deadline_s >= gap:
        raise ConfigError(
            f"run_deadline_s ({schedule.deadline_s}) must be less than the shortest time "
            f"between two runs ({gap} s)",
            where="schedule.run_deadline_s",
        )


class Leadership(Protocol):
    """What the scheduler needs from the store's lock (por.store.leader implements it)."""

    def try_acquire(self) -> bool: ...

    def is_held(self) -> bool: ...

    def release(self) -> None: ...


@dataclass(slots=True)
class TickStats:
    ran: int = 0
    skipped_not_leader: int = 0
    failed: int = 0
    consecutive_failures: int = 0
    released: int = 0  # times leadership was given up after repeated failures
    last_error: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class AttestationScheduler:
    def __init__(
        self,
        schedule: ScheduleConfig,
        run: Callable[[], Any],
        leadership: Leadership,
        *,
        timezone: str = "UTC",
        release_after_failures: int | None = None,
        on_lead: Callable[[], None] | None = None,
    ) -> None:
        check_deadline(schedule)
        self._run = run
        self._leadership = leadership
        self._leading = False
        self._release_after = release_after_failures or schedule.release_after_failures
        self._sit_out = 0  # ticks to skip before trying for the lock again
        self._on_lead = on_lead
        self._idle = threading.Event()  # set while no run is in progress
        self._idle.set()
        self.abandoned = False  # shutdown left a run behind (it could not stop in time)
        self.stats = TickStats()
        self._scheduler = BackgroundScheduler(timezone=timezone)
        trigger: Any
        if schedule.cron:
            trigger = CronTrigger.from_crontab(schedule.cron, timezone=timezone)
        else:
            trigger = IntervalTrigger(seconds=schedule.interval_s or 3600)
        self._scheduler.add_job(
            self.tick,
            trigger,
            id=JOB_ID,
            max_instances=1,
            coalesce=schedule.coalesce,
            misfire_grace_time=schedule.misfire_grace_s,
            replace_existing=True,
        )

    @property
    def is_leader(self) -> bool:
        return self._leading

    def tick(self) -> None:
        """One scheduled tick: lead or skip, then run once; errors are logged, not raised."""
        if self._leading and not self._leadership.is_held():
            # the lock's connection died (database restart, network): lead again only
            # after winning the lock again, never on the memory of having held it
            log.warning("lost the leader lock")
            self._leading = False
        if not self._leading and self._sit_out > 0:
            self._sit_out -= 1
            with self.stats.lock:
                self.stats.skipped_not_leader += 1
            log.info("sitting out this tick after giving up leadership")
            return
        if not self._leading:
            self._leading = bool(self._leadership.try_acquire())
            if self._leading and self._on_lead is not None:
                try:
                    self._on_lead()  # e.g. remove tree files an earlier leader left behind
                except Exception:
                    log.exception("start-of-leadership housekeeping failed")
        if not self._leading:
            with self.stats.lock:
                self.stats.skipped_not_leader += 1
            log.debug("not the leader; skipping this tick")
            return
        self._idle.clear()
        try:
            self._run()
        except PorError as e:
            log.error("attestation run failed: %s", e.diagnostics())
            self._failed(e.diagnostics())
            return
        except Exception as e:
            log.exception("attestation run crashed")
            self._failed(f"{type(e).__name__}: {e}")
            return
        finally:
            self._idle.set()
        with self.stats.lock:
            self.stats.ran += 1
            self.stats.consecutive_failures = 0

    def _failed(self, error: str) -> None:
        with self.stats.lock:
            self.stats.failed += 1
            self.stats.consecutive_failures += 1
            self.stats.last_error = error
            give_up = self.stats.consecutive_failures >= self._release_after
            if give_up:
                self.stats.consecutive_failures = 0
                self.stats.released += 1
        if give_up:
            log.error(
                "%d attestation runs in a row failed; releasing leadership so a standby "
                "can take over (last error: %s)",
                self._release_after,
                error,
            )
            self._leadership.release()
            self._leading = False
            self._sit_out = 1

    def start(self, *, run_now: bool = False) -> None:
        self._scheduler.start()
        if run_now:
            job = self._scheduler.get_job(JOB_ID)
            if job is not None:
                from datetime import UTC, datetime

                job.modify(next_run_time=datetime.now(UTC))

    def shutdown(self, *, grace_s: float | None = None) -> None:
        """Stop ticking; wait for a run in progress — at most `grace_s` seconds when given
        (the caller cancelled it first: por.deadline.cancel_current). A run that still
        has not ended is abandoned (`abandoned`): it was cancelled, so it records nothing
        from here on, and a record already under way is one transaction."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=grace_s is None)
        if grace_s is not None and not self._idle.wait(grace_s):
            self.abandoned = True
            log.warning("the run in progress did not stop within %.0f s; abandoning it", grace_s)
        if self._leading:
            self._leadership.release()
            self._leading = False
