"""What a route receives: the app's inputs (`ApiDeps`), its state, and FastAPI dependencies.

`create_app(deps)` puts one `AppState` on `app.state`; routes ask for what they need as
`Annotated[..., Depends(...)]` aliases (`StoreDep`, `AttestationsDep`, `ProofRateLimit`,
`AdminAuth`), so no route closes over a variable and nothing exists at import time but
declarations. Reads the store only through the dependencies' callers.
"""

import hmac
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, cast

from fastapi import Depends, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client.registry import Collector

from por.api.http import HttpMetrics, RateLimit, TokenBuckets, dumps
from por.api.report_cache import ReportCache
from por.core.dsse import KeySet, Signer
from por.store import Store

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
    clock: Callable[[], float] = time.monotonic  # seconds; for the rate limiter
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
    """One attestation as the API sends it: body bytes, digest (the ETag), liabilities."""

    digest: str
    body: bytes
    liabilities: dict[str, Any]


class RenderedAttestations:
    """Response bodies of attestations by sequence, the most recent `size` kept.

    An attestation never changes once recorded, so its rendered body never goes stale.
    """

    def __init__(self, store: Store, size: int = 64) -> None:
        self._store = store
        self._size = size
        self._items: OrderedDict[int, RenderedAttestation] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, sequence: int) -> RenderedAttestation:
        with self._lock:
            hit = self._items.get(sequence)
            if hit is not None:
                self._items.move_to_end(sequence)
                return hit
        stored = self._store.get(sequence)
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
        )
        with self._lock:
            self._items[sequence] = item
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return item


@dataclass(kw_only=True)
class AppState:
    """One app's state: its inputs and what is built from them once (caches, locks)."""

    deps: ApiDeps
    metrics: HttpMetrics
    rendered: RenderedAttestations
    buckets: TokenBuckets | None
    keys_body: bytes  # the key set is fixed for the app's life
    keyset: KeySet  # the same, parsed: auditor co-signatures are verified against it
    trigger_lock: threading.Lock = field(default_factory=threading.Lock)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    # signed reserve reports and their renderings (por.api.routes.reports)
    reports: ReportCache = field(default_factory=ReportCache)

    @classmethod
    def build(cls, deps: ApiDeps, metrics: HttpMetrics) -> "AppState":
        limit = deps.proof_rate_limit
        return cls(
            deps=deps,
            metrics=metrics,
            rendered=RenderedAttestations(deps.store),
            buckets=None if limit is None else TokenBuckets(limit, deps.clock),
            keys_body=dumps(dict(deps.keys)),
            started_at=deps.wall_clock(),
            keyset=KeySet.from_dict(dict(deps.keys), where="ApiDeps.keys"),
        )


# --- dependencies -------------------------------------------------------------------------


def get_state(request: Request) -> AppState:
    return cast(AppState, request.app.state.por)


StateDep = Annotated[AppState, Depends(get_state)]


def get_store(state: StateDep) -> Store:
    return state.deps.store


StoreDep = Annotated[Store, Depends(get_store)]


def get_rendered(state: StateDep) -> RenderedAttestations:
    return state.rendered


AttestationsDep = Annotated[RenderedAttestations, Depends(get_rendered)]


def rate_limited(request: Request, state: StateDep) -> None:
    """429 with Retry-After when this client address has used up its proof lookups."""
    if state.buckets is None:
        return
    client = request.client.host if request.client else "unknown"
    wait_s = state.buckets.take(client)
    if wait_s > 0:
        raise HTTPException(
            status_code=429,
            detail="too many proof lookups from this address; retry later",
            headers={"Retry-After": str(max(1, math.ceil(wait_s)))},
        )


ProofRateLimit = Annotated[None, Depends(rate_limited)]

_bearer = HTTPBearer(auto_error=False, description="the admin token")


def require_admin(
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
