"""Alerts: a bad status, a failed run, a publication that has not landed, a stale attestation.

Each alert goes three ways at once:

- a log line (WARNING, or ERROR for a failed run and for UNDER_COLLATERALIZED);
- Prometheus metrics (`AlertMetrics`, a collector the API's /metrics serves): run
  failures, last success, publication lag per chain, alerts and webhook outcomes by kind
  (attestation age and status come from the store at scrape time,
  por.api.routes.service), matched by the rules in deploy/prometheus/por-alerts.yml;
- signed webhooks (`WebhookSender`): a JSON POST per receiver, HMAC-SHA256 over
  `<timestamp>.<body>` in `X-Por-Signature: t=<timestamp>,sha256=<hex>`, retried with
  exponential backoff, and kept as a dead letter in the store when every attempt failed.

Delivery happens on one background thread behind a bounded queue: a receiver that is down
or slow never delays or fails an attestation run (a full queue dead-letters at once).
Alert ids are derived from what they are about (kind and sequence or chain), so several
instances, or a restart, send the same id for the same event and receivers can dedupe.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from por.core.times import format_time

log = logging.getLogger("por.alerts")

Severity = Literal["info", "warning", "error"]
BAD_STATUSES = ("UNDER_COLLATERALIZED", "DEGRADED")
_LEVEL = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    kind: str  # status | status_resolved | run_failed | publication_lag | stale | reconciliation
    # | integrity
    severity: Severity
    summary: str
    about: str  # what the id is derived from: the same event gives the same id
    at: datetime
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return hashlib.sha256(f"{self.kind}:{self.about}".encode()).hexdigest()[:32]

    def body(self) -> bytes:
        return json.dumps(
            {
                "id": self.id,
                "kind": self.kind,
                "severity": self.severity,
                "summary": self.summary,
                "at": format_time(self.at),
                "details": self.details,
            },
            separators=(",", ":"),
            sort_keys=True,
        ).encode()


def sign_webhook(secret: bytes, timestamp: int, body: bytes) -> str:
    """The X-Por-Signature value: HMAC-SHA256 over `<timestamp>.<body>` (replay-bounded)."""
    mac = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},sha256={mac}"


def verify_webhook(
    secret: bytes, header: str, body: bytes, *, now_s: int, max_age_s: int = 300
) -> bool:
    """What a receiver does (and the tests): check the MAC in constant time and the age."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        ts = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now_s - ts) > max_age_s:
        return False
    return hmac.compare_digest(sign_webhook(secret, ts, body), header)


# --- metrics --------------------------------------------------------------------------------


class PublicationMetrics(Collector):
    """The publication queue in /metrics: rounds per oracle and status (published,
    already_published, pending, superseded) and how many rounds wait per oracle."""

    def __init__(
        self,
        counts: Callable[[], dict[tuple[str, str], int]],
        queued: Callable[[], dict[str, int]],
    ) -> None:
        self._counts = counts
        self._queued = queued

    def collect(self) -> Iterator[Any]:
        try:
            counts, queued = self._counts(), self._queued()
        except Exception:  # the store is away: /metrics still answers (por_up says why)
            log.warning("publication metrics: the store cannot be read", exc_info=True)
            return
        rounds = GaugeMetricFamily(
            "por_publication_rounds",
            "attestation rounds per oracle and publication status",
            labels=["chain", "status"],
        )
        for (chain, status), n in sorted(counts.items()):
            rounds.add_metric([chain, status], float(n))
        yield rounds
        queue_g = GaugeMetricFamily(
            "por_publication_queue",
            "rounds still to publish per oracle (pending, oldest first)",
            labels=["chain"],
        )
        for chain, n in sorted(queued.items()):
            queue_g.add_metric([chain], float(n))
        yield queue_g


class AlertMetrics(Collector):
    """Counters and gauges of runs, publications, alerts and webhooks (one service's)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.runs = 0
        self.run_failures = 0
        self.last_success_s: float | None = None
        self.last_failure_s: float | None = None
        self.publication_lag: dict[str, int] = {}
        self.alerts: dict[str, int] = {}
        self.deliveries: dict[str, int] = {"delivered": 0, "retried": 0, "dead_letter": 0}
        self.stale_after_s: float | None = None

    def count(self, attr: str, key: str, n: int = 1) -> None:
        with self._lock:
            d = getattr(self, attr)
            d[key] = d.get(key, 0) + n

    def collect(self) -> Iterator[Any]:
        with self._lock:
            runs = CounterMetricFamily("por_runs", "Attestation runs that recorded an attestation")
            runs.add_metric([], self.runs)
            yield runs
            fails = CounterMetricFamily("por_run_failures", "Attestation runs that failed")
            fails.add_metric([], self.run_failures)
            yield fails
            if self.last_success_s is not None:
                g = GaugeMetricFamily(
                    "por_last_run_success_timestamp_seconds", "When a run last recorded"
                )
                g.add_metric([], self.last_success_s)
                yield g
            if self.last_failure_s is not None:
                g = GaugeMetricFamily(
                    "por_last_run_failure_timestamp_seconds", "When a run last failed"
                )
                g.add_metric([], self.last_failure_s)
                yield g
            lag = GaugeMetricFamily(
                "por_publication_lag_blocks",
                "Blocks since the oldest attestation not yet published on the chain (0: current)",
                labels=["chain_id"],
            )
            for chain, blocks in sorted(self.publication_lag.items()):
                lag.add_metric([chain], blocks)
            yield lag
            alerts = CounterMetricFamily("por_alerts", "Alerts raised", labels=["kind"])
            for kind, n in sorted(self.alerts.items()):
                alerts.add_metric([kind], n)
            yield alerts
            hooks = CounterMetricFamily(
                "por_webhook_deliveries", "Webhook delivery attempts by result", labels=["result"]
            )
            for result, n in sorted(self.deliveries.items()):
                hooks.add_metric([result], n)
            yield hooks
            if self.stale_after_s is not None:
                g = GaugeMetricFamily(
                    "por_stale_after_seconds",
                    "Age at which the latest attestation counts as stale (K intervals)",
                )
                g.add_metric([], self.stale_after_s)
                yield g


# --- webhooks -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Webhook:
    url: str
    secret: bytes
    timeout_s: float = 5.0
    max_attempts: int = 5

    def __repr__(self) -> str:  # never the secret
        return f"Webhook({self.url!r})"


DeadLetter = Callable[[Alert, Webhook, int, str], None]
"""(alert, webhook, attempts, last error) -> store it (Store.record_dead_letter)."""

Post = Callable[[Webhook, bytes, dict[str, str]], int]
"""POST body with headers to the webhook; returns the HTTP status or raises OSError-like."""


def _httpx_post(hook: Webhook, body: bytes, headers: dict[str, str]) -> int:
    import httpx

    from por.deadline import Timeouts, http_exchange
    from por.errors import SourceError

    # connect/read and the total bounded: a receiver that trickles cannot hold the sender
    with httpx.Client() as client:
        r = http_exchange(
            client,
            "POST",
            hook.url,
            timeouts=Timeouts.of(hook.timeout_s),
            where=hook.url,
            error=SourceError,
            max_bytes=1 << 20,
            content=body,
            headers=headers,
        )
    return r.status_code


class WebhookSender:
    """One thread delivering alerts to every webhook, with retries and dead letters."""

    def __init__(
        self,
        hooks: Sequence[Webhook],
        *,
        dead_letter: DeadLetter,
        metrics: AlertMetrics,
        post: Post = _httpx_post,
        backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
        queue_size: int = 1000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.hooks = list(hooks)
        self._dead_letter = dead_letter
        self._metrics = metrics
        self._post = post
        self._backoff_s = backoff_s
        self._max_backoff_s = max_backoff_s
        self._clock = clock
        self._queue: queue.Queue[tuple[Alert, Webhook] | None] = queue.Queue(queue_size)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name="por-webhooks", daemon=True)
        self._thread.start()

    def submit(self, alert: Alert) -> None:
        """Queue the alert for every webhook; never blocks."""
        for hook in self.hooks:
            try:
                self._queue.put_nowait((alert, hook))
            except queue.Full:
                self._give_up(alert, hook, 0, "the alert queue is full (receivers too slow)")

    def _give_up(self, alert: Alert, hook: Webhook, attempts: int, error: str) -> None:
        self._metrics.count("deliveries", "dead_letter")
        log.error(
            "alert %s (%s) not delivered to %s after %d attempt(s): %s; kept as a dead letter",
            alert.id[:12],
            alert.kind,
            hook.url,
            attempts,
            error,
        )
        try:
            self._dead_letter(alert, hook, attempts, error)
        except Exception:  # the store is down too: the log line above is what remains
            log.exception("could not store the dead letter of alert %s", alert.id[:12])

    def _deliver(self, alert: Alert, hook: Webhook) -> None:
        body = alert.body()
        error = ""
        for attempt in range(1, hook.max_attempts + 1):
            if self._stop.is_set() and attempt > 1:
                break
            ts = int(self._clock())
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "por-alerts/1",
                "X-Por-Alert-Id": alert.id,
                "X-Por-Signature": sign_webhook(hook.secret, ts, body),
            }
            try:
                status = self._post(hook, body, headers)
                if 200 <= status < 300:
                    self._metrics.count("deliveries", "delivered")
                    log.debug("alert %s delivered to %s", alert.id[:12], hook.url)
                    return
                error = f"HTTP {status}"
            except Exception as e:  # any transport failure is one failed attempt
                error = f"{type(e).__name__}: {e}"
            if attempt < hook.max_attempts:
                self._metrics.count("deliveries", "retried")
                delay = min(self._max_backoff_s, self._backoff_s * 2 ** (attempt - 1))
                log.warning(
                    "alert %s to %s failed (%s); retry %d in %.1f s",
                    alert.id[:12],
                    hook.url,
                    error,
                    attempt,
                    delay,
                )
                if self._stop.wait(delay):
                    break
        self._give_up(alert, hook, attempt, error)

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            try:
                self._deliver(*item)
            except Exception:  # never let the sender die
                log.exception("webhook delivery crashed")

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop after what is queued (no more retries); what is left becomes dead letters."""
        self._stop.set()
        leftovers: list[tuple[Alert, Webhook]] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                leftovers.append(item)
        self._queue.put(None)
        self._thread.join(timeout_s)
        for alert, hook in leftovers:
            self._give_up(alert, hook, 0, "the service stopped before delivery")


# --- the rules ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Pending:
    sequence: int
    block: int


class Alerter:
    """Turns run results, run failures and the clock into alerts (log, metrics, webhooks)."""

    def __init__(
        self,
        *,
        stale_after_s: float,
        publication_lag_blocks: int,
        metrics: AlertMetrics | None = None,
        sender: WebhookSender | None = None,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        last_status: str | None = None,
    ) -> None:
        self.metrics = metrics or AlertMetrics()
        self.metrics.stale_after_s = stale_after_s
        self.stale_after_s = stale_after_s
        self.lag_blocks = publication_lag_blocks
        self.sender = sender
        self._wall = wall_clock
        self._lock = threading.Lock()
        self._last_status = last_status
        self._pending: dict[str, _Pending] = {}  # chain -> oldest unpublished
        self._lag_alerted: set[str] = set()
        self._stale_alerted: int | None = None  # latest sequence we alerted stale for
        self._overdue_alerted: frozenset[str] = frozenset()  # unmatched flows already told
        self._recon_tolerance_alerted = False
        self._integrity_alerted: set[str] = set()
        self.raised: list[Alert] = []  # the last few, for tests and /healthz detail

    def raise_alert(self, alert: Alert) -> None:
        log.log(
            _LEVEL[alert.severity],
            "ALERT %s: %s",
            alert.kind,
            alert.summary,
            extra={
                "por": {"event": "alert", "alert_id": alert.id, "kind": alert.kind, **alert.details}
            },
        )
        self.metrics.count("alerts", alert.kind)
        with self._lock:
            self.raised = [*self.raised[-99:], alert]
        if self.sender is not None:
            self.sender.submit(alert)

    # -- run outcomes

    def run_completed(self, result: Any, *, blocks: dict[str, int]) -> None:
        """After a recorded run: status change, publication lag. `blocks`: chain -> block."""
        now = self._wall()
        with self.metrics._lock:
            self.metrics.runs += 1
            self.metrics.last_success_s = now.timestamp()
        with self._lock:
            before, self._last_status = self._last_status, result.status
        if result.status in BAD_STATUSES and result.status != before:
            self.raise_alert(
                Alert(
                    kind="status",
                    severity="error" if result.status == "UNDER_COLLATERALIZED" else "warning",
                    summary=f"attestation {result.sequence} is {result.status} (ratio "
                    f"{result.ratio}; was {before or 'unknown'})"
                    + "".join(f"; {r}" for r in result.reasons[:5]),
                    about=f"{result.sequence}",
                    at=now,
                    details={
                        "sequence": result.sequence,
                        "status": result.status,
                        "previous_status": before,
                        "ratio": result.ratio,
                        "reasons": list(result.reasons),
                        "digest": result.digest,
                    },
                )
            )
        elif before in BAD_STATUSES and result.status not in BAD_STATUSES:
            self.raise_alert(
                Alert(
                    kind="status_resolved",
                    severity="info",
                    summary=f"attestation {result.sequence} is {result.status} again "
                    f"(was {before})",
                    about=f"{result.sequence}",
                    at=now,
                    details={"sequence": result.sequence, "status": result.status},
                )
            )
        self._publication_lag(result, blocks, now)

    def reconciliation(self, result: Any) -> None:
        """Unmatched mints, burns, credits or debits beyond the limits (docs/ledger.md):
        an alert the first time each overdue item is seen (HKMA: report at once), even
        when the status was already DEGRADED for another reason."""
        reasons = tuple(getattr(result, "reconciliation_reasons", ()))
        overdue = frozenset(getattr(result, "overdue", ()))
        above_tolerance = any("above the tolerance" in r for r in reasons)
        with self._lock:
            new = overdue - self._overdue_alerted
            self._overdue_alerted = overdue
            newly_above = above_tolerance and not self._recon_tolerance_alerted
            self._recon_tolerance_alerted = above_tolerance
        if not new and not newly_above:
            return
        now = self._wall()
        self.raise_alert(
            Alert(
                kind="reconciliation",
                severity="error",
                summary=f"attestation {result.sequence}: " + "; ".join(reasons),
                about=f"{result.sequence}",
                at=now,
                details={
                    "sequence": result.sequence,
                    "reasons": list(reasons),
                    "new_overdue": sorted(new),
                    "digest": result.digest,
                },
            )
        )

    def _publication_lag(self, result: Any, blocks: dict[str, int], now: datetime) -> None:
        for p in result.publications:
            chain = p.chain_id
            if p.ok:
                self._pending.pop(chain, None)
                self._lag_alerted.discard(chain)
                self.metrics.publication_lag[chain] = 0
                continue
            head = blocks.get(chain)
            if head is None:
                continue
            pending = self._pending.setdefault(
                chain, _Pending(sequence=result.sequence, block=head)
            )
            lag = max(0, head - pending.block)
            self.metrics.publication_lag[chain] = lag
            if lag >= self.lag_blocks and chain not in self._lag_alerted:
                self._lag_alerted.add(chain)
                self.raise_alert(
                    Alert(
                        kind="publication_lag",
                        severity="warning",
                        summary=f"{chain}: attestation {pending.sequence} not published after "
                        f"{lag} blocks (last error: {p.detail[:200]})",
                        about=f"{chain}:{pending.sequence}",
                        at=now,
                        details={
                            "chain_id": chain,
                            "sequence": pending.sequence,
                            "lag_blocks": lag,
                            "error": p.detail[:500],
                        },
                    )
                )

    def run_failed(self, error: BaseException) -> None:
        now = self._wall()
        with self.metrics._lock:
            self.metrics.run_failures += 1
            self.metrics.last_failure_s = now.timestamp()
        diag = (
            error.diagnostics()
            if hasattr(error, "diagnostics")
            else f"{type(error).__name__}: {error}"
        )
        self.raise_alert(
            Alert(
                kind="run_failed",
                severity="error",
                summary=f"attestation run failed: {diag}",
                about=f"{now.isoformat()}",
                at=now,
                details={"error": diag},
            )
        )

    def integrity(self, problem: str, *, sequence: int | None = None) -> None:
        """A stored attestation row that is not what was signed (por.store.integrity):
        refused by the API or by the start-up copy to attestations/. Once per problem."""
        now = self._wall()
        with self._lock:
            if problem in self._integrity_alerted:
                return
            self._integrity_alerted.add(problem)
        self.raise_alert(
            Alert(
                kind="integrity",
                severity="error",
                summary=f"a stored attestation is not what was signed, not served: {problem}",
                about=problem,
                at=now,
                details={"problem": problem, "sequence": sequence},
            )
        )

    # -- the clock

    def check_stale(
        self, latest_sequence: int | None, latest_issued_at: datetime | None, *, up_since: datetime
    ) -> Alert | None:
        """Alert once per stale episode when the latest attestation is older than K intervals
        (or none was recorded within K intervals of start)."""
        now = self._wall()
        since = latest_issued_at or up_since
        age = (now - since).total_seconds()
        if age <= self.stale_after_s:
            self._stale_alerted = None
            return None
        key = latest_sequence or 0
        if self._stale_alerted == key:
            return None
        self._stale_alerted = key
        what = (
            f"latest attestation {latest_sequence} was issued {age:.0f} s ago"
            if latest_sequence
            else f"no attestation recorded in the {age:.0f} s since start"
        )
        alert = Alert(
            kind="stale",
            severity="error",
            summary=f"{what}; more than {self.stale_after_s:.0f} s (the stale limit)",
            about=f"{key}",
            at=now,
            details={
                "latest_sequence": latest_sequence,
                "age_s": int(age),
                "stale_after_s": int(self.stale_after_s),
            },
        )
        self.raise_alert(alert)
        return alert
