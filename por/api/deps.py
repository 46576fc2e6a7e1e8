"""What a route receives: the app's inputs (`ApiDeps`), its state, and FastAPI dependencies.

`create_app(deps)` puts one `AppState` on `app.state`; routes ask for what they need as
`Annotated[..., Depends(...)]` aliases (`StoreDep`, `AttestationsDep`, `ClientDep`,
`AdminAuth`), so no route closes over a variable and nothing exists at import time but
declarations. Reads the store only through the dependencies' callers.

The hot path (latest attestation, proofs) touches no database: the latest sequence is
held in memory (`LatestSequence`: set by this process's recorder at once, re-read from
the store at most every `ApiDeps.head_max_age_s` for records made by other processes),
attestation bodies are rendered once per sequence and trees stay loaded. Dependencies
are `async def` (a plain `def` one costs a thread-pool round trip per request); only a
cache miss (first render, tree load, a head re-read) goes to a worker thread.
"""

import hmac
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

from fastapi import Depends, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool

from por.api.http import HttpMetrics, dumps
from por.api.limits import (
    Buckets,
    ExpensiveGate,
    RateLimit,
    RedisBuckets,
    TokenBuckets,
    TrustedProxies,
    scope_client_key,
)
from por.api.report_cache import ReportCache
from por.core.dsse import KeySet, Signer
from por.store import Store
from por.store.base import LogInclusion, StoredAttestation
from por.store.integrity import IntegrityChecker, TamperedRowError

if TYPE_CHECKING:
    from por.core.sumtree import SumTree
    from por.store.shards import ShardedTree

log = logging.getLogger("por.api")

STATIC_DIR = Path(__file__).parent / "static"
MAX_SEQUENCE = 2**53 - 1  # JSON-safe integers; anything larger cannot be a sequence

SequencePath = Annotated[int, PathParam(ge=1, le=MAX_SEQUENCE, description="attestation sequence")]


@dataclass(kw_only=True)
class ApiDeps:
    """Everything the API needs; built by the caller (por serve, por demo, tests)."""

    store: Store
    keys: Mapping[str, Any]  # the published key set, KeySet.to_dict() form
    admin_token: str | None = None  # None: the admin routes always answer 401
    trigger: Callable[[], int] | None = None  # runs one attestation, returns its sequence
    # runs one point-in-time attestation as of a past time (None: the route answers 503)
    trigger_as_of: Callable[[datetime], int] | None = None
    # the match list of an attestation's flow reconciliation, by sequence (None: 503)
    matches: Callable[[int], bytes | None] | None = None
    proof_rate_limit: RateLimit | None = field(default_factory=RateLimit)
    """Per client: proofs (1 token; a proof whose tree must be loaded first costs
    `TREE_LOAD_COST`). None: no rate limit at all (history included)."""
    history_rate_limit: RateLimit = field(
        default_factory=lambda: RateLimit(burst=30, per_second=1.0)
    )
    """Per client: history pages (`/v1/attestations`, 1 token per `HISTORY_ITEMS_PER_TOKEN`
    items asked for, at least 1) and reserve reports (`REPORT_COST` each)."""
    history_max_limit: int = 100  # a larger `limit` is cut to this (follow next_before)
    trusted_proxies: Sequence[str] = ()  # addresses/CIDRs whose X-Forwarded-For is believed
    rate_limit_redis_url: str | None = None  # None: buckets in this process only
    rate_limit_key_prefix: str = "por:rl:"
    # told of every stored row refused as not what was signed (the service's alerter)
    on_integrity_failure: Callable[[TamperedRowError], None] | None = None
    max_expensive_requests: int = 8
    """Costly requests (a tree load, a history page, a report) at once in this process;
    more are answered 503 with Retry-After."""
    clock: Callable[[], float] = time.monotonic  # seconds; rate limiter, latest-sequence age
    warm_up: bool = True
    """At startup, load the latest attestation's body and tree in a background thread,
    so the first proof after a start does not wait for them."""
    head_max_age_s: float = 0.25
    """How long the in-memory latest sequence is trusted before the store is asked again:
    the most another process's new attestation can lag behind here (this process's own
    records update it at once). 0: ask on every request."""
    static_dir: Path = STATIC_DIR
    title: str = "por — proof of reserve"
    # /healthz says "degraded" (503) when the latest attestation is older than this (K
    # intervals), or none was recorded this long after start; None: no such check
    stale_after_s: float | None = None
    wall_clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    collectors: Sequence[Collector] = ()  # more /metrics (the service's alert metrics)
    # the auditor routes (co-signature submission, raw statements); None: always 401
    auditor_token: str | None = None
    # raw statement bytes by SHA-256 hex (None when not stored); None: the route answers 503
    statements: Callable[[str], bytes | None] | None = None
    # The public pages' settings (/v1/site): report calendar, explorers, chain names;
    # the [disclosure] table's `site()`. None: the defaults.
    site: Mapping[str, Any] | None = None
    # The issuer keys valid at a time, to sign reserve reports (/v1/reports, /report);
    # None: this instance holds no signing key and answers 503 for reports.
    report_signers: Callable[[datetime], Sequence[Signer]] | None = None


@dataclass(frozen=True, slots=True)
class RenderedAttestation:
    """One attestation as the API sends it: body bytes, digest (the ETag), liabilities,
    and the signed `issued_at` (/healthz judges freshness by it, not by a column)."""

    digest: str
    body: bytes
    liabilities: dict[str, Any]
    issued_at: str


class RenderedAttestations:
    """Response bodies of attestations by sequence, the most recent `size` kept.

    An attestation never changes once recorded, so its rendered body never goes stale.
    A row is rendered only once it is what its envelope signs (IntegrityChecker): else
    TamperedRowError (500), and nothing is kept.
    """

    def __init__(self, store: Store, integrity: IntegrityChecker, size: int = 64) -> None:
        self._store = store
        self._integrity = integrity
        self._size = size
        self._items: OrderedDict[int, RenderedAttestation] = OrderedDict()
        self._lock = threading.Lock()

    def peek(self, sequence: int) -> RenderedAttestation | None:
        """The rendered attestation if it is cached, else None (no I/O)."""
        with self._lock:
            hit = self._items.get(sequence)
            if hit is not None:
                self._items.move_to_end(sequence)
            return hit

    def get(self, sequence: int) -> RenderedAttestation:
        with self._lock:
            hit = self._items.get(sequence)
            if hit is not None:
                self._items.move_to_end(sequence)
                return hit
        stored = self._store.get(sequence)
        self._integrity.check(stored)  # served only as signed (por.store.integrity)
        doc = stored.document()
        item = RenderedAttestation(
            digest=stored.digest,
            body=dumps(
                {
                    "sequence": stored.sequence,
                    "digest": stored.digest,
                    "envelope": stored.envelope(),
                    "attestation": doc,
                }
            ),
            liabilities=doc["liabilities"],
            issued_at=doc["issued_at"],
        )
        with self._lock:
            self._items[sequence] = item
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return item


class LatestSequence:
    """The latest recorded sequence, in memory.

    The store calls `recorded(seq)` after each commit in this process (Store.on_recorded);
    records made by other processes (a scheduler beside several API workers) are seen by
    re-reading the store once the value is older than `max_age_s`. A sequence only grows,
    so a re-read that raced a commit never moves it back.
    """

    def __init__(self, store: Store, max_age_s: float, clock: Callable[[], float]) -> None:
        self._store = store
        self._max_age_s = max_age_s
        self._clock = clock
        self._value: int | None = None
        self._at = -math.inf
        self._lock = threading.Lock()
        self._refreshing = threading.Lock()  # one re-read at a time per process
        store.on_recorded(self.recorded)

    def recorded(self, sequence: int) -> None:
        with self._lock:
            if self._value is None or sequence > self._value:
                self._value = sequence
            self._at = self._clock()

    def fresh(self) -> tuple[bool, int | None]:
        """(trusted now, the value)."""
        with self._lock:
            return self._clock() - self._at < self._max_age_s, self._value

    def refresh(self) -> int | None:
        """Re-read the store (blocking: call from a worker thread)."""
        seq = self._store.latest_regular_sequence()
        with self._lock:
            if seq is not None and (self._value is None or seq > self._value):
                self._value = seq
            self._at = self._clock()
            return self._value

    async def current(self) -> int | None:
        trusted, value = self.fresh()
        if trusted:
            return value
        if self._refreshing.acquire(blocking=False):
            try:
                return await run_in_threadpool(self.refresh)
            finally:
                self._refreshing.release()
        if value is not None:  # another request is re-reading: serve what we know
            return value
        return await run_in_threadpool(self.refresh)


@dataclass(kw_only=True)
class AppState:
    """One app's state: its inputs and what is built from them once (caches, locks)."""

    deps: ApiDeps
    metrics: HttpMetrics
    rendered: RenderedAttestations
    buckets: Buckets | None  # proofs
    history_buckets: Buckets | None  # history pages and reports
    trusted: TrustedProxies
    expensive: ExpensiveGate
    keys_body: bytes  # the key set is fixed for the app's life
    keyset: KeySet  # the same, parsed: auditor co-signatures are verified against it
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    # signed reserve reports and their renderings (por.api.routes.reports)
    reports: ReportCache = field(default_factory=ReportCache)
    head: LatestSequence
    integrity: IntegrityChecker
    trigger_lock: threading.Lock = field(default_factory=threading.Lock)
    warmed: threading.Event = field(default_factory=threading.Event)

    def warm_up(self) -> None:
        """Load the latest body and tree (a background thread at startup; best effort:
        a failure here is met again, and reported, by the first request)."""
        try:
            seq = self.head.refresh()
            if seq is not None:
                self.rendered.get(seq)
                self.deps.store.tree(seq, checked=False)
        except Exception:
            log.debug("warming up failed", exc_info=True)
        finally:
            self.warmed.set()

    @classmethod
    def build(cls, deps: ApiDeps, metrics: HttpMetrics) -> "AppState":
        def buckets(limit: RateLimit | None, kind: str) -> Buckets | None:
            if limit is None or deps.proof_rate_limit is None:
                return None
            local = TokenBuckets(limit, deps.clock)
            if deps.rate_limit_redis_url is None:
                return local
            return RedisBuckets(
                limit,
                url=deps.rate_limit_redis_url,
                prefix=f"{deps.rate_limit_key_prefix}{kind}:",
                fallback=local,
            )

        keyset = KeySet.from_dict(dict(deps.keys), where="ApiDeps.keys")

        def failed(e: TamperedRowError) -> None:
            metrics.integrity_failures.inc()
            if deps.on_integrity_failure is not None:
                deps.on_integrity_failure(e)

        integrity = IntegrityChecker(keyset, on_failure=failed)
        return cls(
            deps=deps,
            metrics=metrics,
            rendered=RenderedAttestations(deps.store, integrity),
            integrity=integrity,
            buckets=buckets(deps.proof_rate_limit, "proof"),
            history_buckets=buckets(deps.history_rate_limit, "history"),
            trusted=TrustedProxies.parse(deps.trusted_proxies),
            expensive=ExpensiveGate(deps.max_expensive_requests),
            keys_body=dumps(dict(deps.keys)),
            started_at=deps.wall_clock(),
            keyset=keyset,
            head=LatestSequence(deps.store, deps.head_max_age_s, deps.clock),
        )


class VerifiedReads:
    """The store as a report reads it (por.report.build.ReportSource), every attestation
    checked against its envelope first (IntegrityChecker): a report never signs a row
    that is not what was signed."""

    def __init__(self, store: Store, integrity: IntegrityChecker) -> None:
        self._store = store
        self._integrity = integrity

    def as_of_between(self, start: datetime, end: datetime) -> list[tuple[int, datetime]]:
        return self._store.as_of_between(start, end)

    def get(self, sequence: int) -> StoredAttestation:
        row = self._store.get(sequence)
        self._integrity.check(row)
        return row

    def inclusion(self, sequence: int) -> LogInclusion:
        return self._store.inclusion(sequence)

    def latest(self) -> StoredAttestation | None:
        row = self._store.latest()
        if row is not None:
            self._integrity.check(row)
        return row


# --- dependencies -------------------------------------------------------------------------


# `async def` throughout: FastAPI runs a plain `def` dependency in the thread pool.


async def get_state(request: Request) -> AppState:
    return cast(AppState, request.app.state.por)


StateDep = Annotated[AppState, Depends(get_state)]


async def get_store(state: StateDep) -> Store:
    return state.deps.store


StoreDep = Annotated[Store, Depends(get_store)]


async def get_rendered(state: StateDep) -> RenderedAttestations:
    return state.rendered


AttestationsDep = Annotated[RenderedAttestations, Depends(get_rendered)]


TREE_LOAD_COST = 10  # a proof whose tree is not loaded yet: the load is the cost
HISTORY_ITEMS_PER_TOKEN = 20
REPORT_COST = 2


async def get_client(request: Request, state: StateDep) -> str:
    """The rate-limit key of this request's client (por.api.limits.client_key)."""
    return scope_client_key(request.scope, state.trusted)


ClientDep = Annotated[str, Depends(get_client)]


def take_proof_token(state: AppState, client: str, cost: int = 1) -> None:
    """`cost` tokens of `client`'s proof budget, or HTTPException 429 with Retry-After."""
    _take(state.buckets, client, cost, "proof lookups")


def take_history_tokens(state: AppState, client: str, cost: int) -> None:
    """`cost` tokens of `client`'s history budget, or HTTPException 429 with Retry-After."""
    _take(state.history_buckets, client, cost, "history and report requests")


def _take(buckets: Buckets | None, client: str, cost: int, what: str) -> None:
    if buckets is None:
        return
    wait_s = buckets.take(client, cost)
    if wait_s > 0:
        raise HTTPException(
            status_code=429,
            detail=f"too many {what} from this client; retry later",
            headers={"Retry-After": str(max(1, math.ceil(wait_s)))},
        )


def busy() -> HTTPException:
    """503 when every slot for costly requests of this process is taken."""
    return HTTPException(
        status_code=503,
        detail="too many costly requests at once; retry shortly",
        headers={"Retry-After": "1"},
    )


_bearer = HTTPBearer(auto_error=False, description="the admin token")


async def require_admin(
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)], state: StateDep
) -> None:
    """401 unless the bearer token equals the configured admin token (constant time)."""
    token = state.deps.admin_token
    given = b"" if creds is None else creds.credentials.encode("utf-8", "surrogateescape")
    ok = token is not None and creds is not None and hmac.compare_digest(given, token.encode())
    if not ok:
        raise HTTPException(
            status_code=401,
            detail="missing or wrong admin bearer token",
            headers={"WWW-Authenticate": 'Bearer realm="por-admin"'},
        )


AdminAuth = Annotated[None, Depends(require_admin)]

_auditor_bearer = HTTPBearer(auto_error=False, description="the auditor token")


def require_auditor(
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_auditor_bearer)],
    state: StateDep,
) -> None:
    """401 unless the bearer token equals the configured auditor token (constant time)."""
    token = state.deps.auditor_token
    given = b"" if creds is None else creds.credentials.encode("utf-8", "surrogateescape")
    ok = token is not None and creds is not None and hmac.compare_digest(given, token.encode())
    if not ok:
        raise HTTPException(
            status_code=401,
            detail="missing or wrong auditor bearer token",
            headers={"WWW-Authenticate": 'Bearer realm="por-auditor"'},
        )


AuditorAuth = Annotated[None, Depends(require_auditor)]


# --- helpers for routes -------------------------------------------------------------------


def not_found(message: str) -> HTTPException:
    return HTTPException(status_code=404, detail=message)


def latest_sequence_or_404(store: Store) -> int:
    """The latest regular attestation: a point-in-time one (as of a past time) is in the
    history and the log, but never "latest"."""
    seq = store.latest_regular_sequence()
    if seq is None:
        raise not_found("no attestation has been recorded yet")
    return seq


async def current_sequence(state: AppState) -> int:
    """The latest sequence from memory (see LatestSequence); 404 when there is none."""
    seq = await state.head.current()
    if seq is None:
        raise not_found("no attestation has been recorded yet")
    return seq


async def rendered_attestation(state: AppState, sequence: int) -> RenderedAttestation:
    """The rendered attestation; only the first request per sequence reads the store."""
    item = state.rendered.peek(sequence)
    if item is None:
        item = await run_in_threadpool(state.rendered.get, sequence)
    return item


async def loaded_tree(state: AppState, sequence: int) -> "SumTree | ShardedTree":
    """The sum tree of `sequence`; only the first request per sequence loads it (a tree
    in an object store: its top file; shards come per proof, por.store.shards), holding
    one of the costly-request slots (503 when none is free)."""
    store = state.deps.store
    tree = store.cached_tree(sequence)
    if tree is None:
        with state.expensive.slot(busy):
            tree = await run_in_threadpool(lambda: store.tree(sequence, checked=False))
    return tree
