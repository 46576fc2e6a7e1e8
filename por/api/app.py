"""The HTTP API, dashboard and holder page: `create_app(deps)` builds one FastAPI app.

No import-time singletons: everything the app uses (store, key set, admin token,
trigger, rate limits, clock) comes in `ApiDeps`, and every app has its own Prometheus
registry, so tests can run several apps side by side.

Public reads carry a strong ETag (the attestation digest, or a hash of the body) and
answer `If-None-Match` with 304. Content that can never change (an attestation by
sequence, a proof for a given sequence, a consistency proof between two sizes) is
`immutable`; "latest" views are `no-cache` (revalidate every time, cheap with ETags).
Routes and shapes: docs/api.md.
"""

# No `from __future__ import annotations` here: FastAPI reads the Annotated[...] of route
# parameters at definition time, and some name dependencies local to create_app.

import hashlib
import hmac
import json
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from por.api import schemas
from por.errors import InputError, PorError
from por.store import Store, UnknownSequenceError

STATIC_DIR = Path(__file__).parent / "static"
MAX_SEQUENCE = 2**53 - 1  # JSON-safe integers; anything larger cannot be a sequence
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
_SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    # Everything is served from this origin; no inline script, no CDN (the page must
    # work offline and a holder must be able to trust the verifier code it runs).
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    ),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimit:
    """Token bucket per client address: `burst` requests at once, `per_second` refill."""

    burst: int = 20
    per_second: float = 5.0

    def __post_init__(self) -> None:
        if self.burst < 1 or not self.per_second > 0:
            raise InputError("rate limit needs burst >= 1 and per_second > 0", where="rate_limit")


@dataclass(kw_only=True)
class ApiDeps:
    """Everything the API needs; built by the caller (por serve, por demo, tests)."""

    store: Store
    keys: Mapping[str, Any]  # the published key set, KeySet.to_dict() form
    admin_token: str | None = None  # None: the admin routes always answer 401
    trigger: Callable[[], int] | None = None  # runs one attestation, returns its sequence
    proof_rate_limit: RateLimit | None = field(default_factory=RateLimit)
    clock: Callable[[], float] = time.monotonic  # seconds; for the rate limiter
    static_dir: Path = STATIC_DIR
    title: str = "por — proof of reserve"


class TokenBuckets:
    """Token buckets keyed by client address. `take` returns 0 or seconds to wait."""

    _MAX_CLIENTS = 10_000

    def __init__(self, limit: RateLimit, clock: Callable[[], float]) -> None:
        self._limit = limit
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        burst, rate = float(self._limit.burst), self._limit.per_second
        with self._lock:
            now = self._clock()
            tokens, at = self._buckets.get(key, (burst, now))
            tokens = min(burst, tokens + (now - at) * rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            if len(self._buckets) > self._MAX_CLIENTS:
                self._forget_full(now)
            return (1.0 - tokens) / rate

    def _forget_full(self, now: float) -> None:
        # A bucket that has refilled is the same as no bucket: drop those to bound memory.
        burst, rate = float(self._limit.burst), self._limit.per_second
        for k, (tokens, at) in list(self._buckets.items()):
            if tokens + (now - at) * rate >= burst:
                del self._buckets[k]


class _Metrics:
    def __init__(self, store: Store) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "por_http_requests",
            "HTTP requests served",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "por_http_request_duration_seconds",
            "HTTP request latency",
            ("method", "route"),
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
        )
        self.registry.register(_LatestCollector(store))


class _LatestCollector(Collector):
    """Reads the latest attestation at scrape time (so every instance reports the same)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def collect(self) -> Any:
        try:
            latest = self._store.latest()
        except PorError:
            return
        seq = GaugeMetricFamily("por_latest_sequence", "Sequence of the latest attestation")
        seq.add_metric([], 0 if latest is None else latest.sequence)
        yield seq
        if latest is None:
            return
        # Prometheus only has floats; the ratio here is for graphs and alerts, the signed
        # document keeps the exact decimal string.
        if latest.ratio is not None:
            ratio = GaugeMetricFamily(
                "por_reserve_ratio", "Eligible reserves / circulating supply (latest)"
            )
            ratio.add_metric([], float(latest.ratio))
            yield ratio
        status = GaugeMetricFamily(
            "por_status", "1 for the latest attestation's status", labels=["status"]
        )
        for s in ("FULLY_BACKED", "UNDER_COLLATERALIZED", "DEGRADED"):
            status.add_metric([s], 1.0 if latest.status == s else 0.0)
        yield status


class _EdgeMiddleware:
    """Pure ASGI: security headers on every response, request count and latency."""

    def __init__(self, app: ASGIApp, metrics: _Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                for k, v in _SECURITY_HEADERS:
                    headers.setdefault(k.decode(), v.decode())
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            label = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            self.metrics.requests.labels(method, label, str(status)).inc()
            self.metrics.latency.labels(method, label).observe(time.perf_counter() - started)


def _etag_matches(header: str, etag: str) -> bool:
    # RFC 9110 §13.1.2: If-None-Match uses the weak comparison.
    if header.strip() == "*":
        return True
    bare = etag.removeprefix("W/")
    return any(t.strip().removeprefix("W/") == bare for t in header.split(","))


def _cached(
    request: Request,
    body: bytes,
    *,
    cache_control: str,
    media_type: str = "application/json",
    etag: str | None = None,
) -> Response:
    tag = f'"{etag or hashlib.sha256(body).hexdigest()[:40]}"'
    headers = {"ETag": tag, "Cache-Control": cache_control}
    inm = request.headers.get("if-none-match")
    if inm is not None and _etag_matches(inm, tag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


SequencePath = Annotated[int, PathParam(ge=1, le=MAX_SEQUENCE, description="attestation sequence")]


def _not_found(message: str) -> HTTPException:
    return HTTPException(status_code=404, detail=message)


_ERRORS_404: dict[int | str, dict[str, Any]] = {404: {"model": schemas.ErrorOut}}


def create_app(deps: ApiDeps) -> FastAPI:  # noqa: PLR0915 - one closure registers every route
    """A new FastAPI app over `deps` (routes: DESIGN §8, docs/api.md)."""
    store = deps.store
    metrics = _Metrics(store)
    buckets = (
        None if deps.proof_rate_limit is None else TokenBuckets(deps.proof_rate_limit, deps.clock)
    )
    rendered: OrderedDict[int, Any] = OrderedDict()  # sequence -> _Rendered
    rendered_lock = threading.Lock()
    trigger_lock = threading.Lock()

    app = FastAPI(
        title=deps.title,
        version="1",
        description="Signed proof-of-reserve attestations, holder inclusion proofs and the "
        "attestation log. Amounts are decimal strings of integer base units.",
        docs_url="/docs",
        redoc_url=None,
    )
    app.add_middleware(_EdgeMiddleware, metrics=metrics)

    @app.exception_handler(UnknownSequenceError)
    async def _unknown(_: Request, exc: UnknownSequenceError) -> JSONResponse:
        return JSONResponse({"detail": exc.message}, status_code=404)

    @app.exception_handler(InputError)
    async def _bad_input(_: Request, exc: InputError) -> JSONResponse:
        # The same shape as FastAPI's own 422 (HTTPValidationError), so clients parse one.
        return JSONResponse(
            {
                "detail": [
                    {
                        "loc": ["query", exc.where or "request"],
                        "msg": exc.message,
                        "type": "value_error",
                    }
                ]
            },
            status_code=422,
        )

    @app.exception_handler(PorError)
    async def _unavailable(_: Request, exc: PorError) -> JSONResponse:
        # A store or file failure: the service cannot answer now. Never bad input.
        return JSONResponse({"detail": exc.diagnostics()}, status_code=503)

    # --- helpers over the store ---------------------------------------------------------

    @dataclass(frozen=True, slots=True)
    class _Rendered:
        digest: str
        body: bytes
        liabilities: dict[str, Any]

    def rendered_for(sequence: int) -> _Rendered:
        """Response body, digest and liabilities of one (immutable) attestation, cached."""
        with rendered_lock:
            hit = rendered.get(sequence)
            if hit is not None:
                rendered.move_to_end(sequence)
                return hit  # type: ignore[no-any-return]
        stored = store.get(sequence)
        doc = stored.document()
        item = _Rendered(
            digest=stored.digest,
            body=_dumps(
                {
                    "sequence": stored.sequence,
                    "digest": stored.digest,
                    "envelope": stored.envelope(),
                    "attestation": doc,
                }
            ),
            liabilities=doc["liabilities"],
        )
        with rendered_lock:
            rendered[sequence] = item
            while len(rendered) > 64:
                rendered.popitem(last=False)
        return item

    def latest_sequence_or_404() -> int:
        seq = store.latest_sequence()
        if seq is None:
            raise _not_found("no attestation has been recorded yet")
        return seq

    def rate_limited(request: Request) -> None:
        if buckets is None:
            return
        client = request.client.host if request.client else "unknown"
        wait_s = buckets.take(client)
        if wait_s > 0:
            raise HTTPException(
                status_code=429,
                detail="too many proof lookups from this address; retry later",
                headers={"Retry-After": str(max(1, math.ceil(wait_s)))},
            )

    bearer = HTTPBearer(auto_error=False, description="the admin token")

    def admin(creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
        token = deps.admin_token
        given = b"" if creds is None else creds.credentials.encode("utf-8", "surrogateescape")
        ok = (
            token is not None
            and creds is not None
            and hmac.compare_digest(given, token.encode("utf-8"))
        )
        if not ok:
            raise HTTPException(
                status_code=401,
                detail="missing or wrong admin bearer token",
                headers={"WWW-Authenticate": 'Bearer realm="por-admin"'},
            )

    # --- attestations -------------------------------------------------------------------

    @app.get(
        "/v1/attestations/latest",
        response_model=schemas.AttestationOut,
        responses=_ERRORS_404,
        tags=["attestations"],
    )
    def latest_attestation(request: Request) -> Response:
        """The latest signed attestation: envelope (verify it) and decoded document."""
        item = rendered_for(latest_sequence_or_404())
        return _cached(request, item.body, cache_control=REVALIDATE, etag=item.digest)

    @app.get(
        "/v1/attestations/{sequence}",
        response_model=schemas.AttestationOut,
        responses=_ERRORS_404,
        tags=["attestations"],
    )
    def attestation(request: Request, sequence: SequencePath) -> Response:
        """One attestation by sequence (immutable)."""
        item = rendered_for(sequence)
        return _cached(request, item.body, cache_control=IMMUTABLE, etag=item.digest)

    @app.get("/v1/attestations", response_model=schemas.AttestationPageOut, tags=["attestations"])
    def attestations(
        request: Request,
        limit: Annotated[int, Query(ge=1, le=1000, description="page size")] = 20,
        before: Annotated[
            int | None, Query(ge=1, le=MAX_SEQUENCE, description="only sequences below this")
        ] = None,
    ) -> Response:
        """History, newest first; follow `next_before` for older pages."""
        rows = store.list(limit, before)
        items = []
        for r in rows:
            doc = r.document()
            items.append(
                {
                    "sequence": r.sequence,
                    "digest": r.digest,
                    "issued_at": doc["issued_at"],
                    "as_of": doc["as_of"],
                    "status": r.status,
                    "ratio": r.ratio,
                    "eligible_reserves": r.eligible_reserves,
                    "circulating_supply": r.circulating_supply,
                    "liabilities_root": r.liabilities_root,
                }
            )
        more = len(rows) == limit and rows[-1].sequence > 1
        body = _dumps({"items": items, "next_before": rows[-1].sequence if more else None})
        # Pages below a fixed `before` never change: nothing is ever inserted below the top.
        return _cached(request, body, cache_control=IMMUTABLE if before else REVALIDATE)

    # --- holder proofs ------------------------------------------------------------------

    @app.get(
        "/v1/proofs/{account}",
        response_model=schemas.ProofOut,
        responses={**_ERRORS_404, 429: {"model": schemas.ErrorOut}},
        tags=["proofs"],
    )
    def proof(
        request: Request,
        account: Annotated[
            str, PathParam(min_length=1, max_length=256, description="CAIP-10 account id")
        ],
        _limited: Annotated[None, Depends(rate_limited)],
        sequence: Annotated[
            int | None, Query(ge=1, le=MAX_SEQUENCE, description="default: the latest")
        ] = None,
    ) -> Response:
        """The por-mst-v1 inclusion proof of `account` in an attestation's liabilities."""
        from por.core.sumtree import UnknownAccountError

        seq = latest_sequence_or_404() if sequence is None else sequence
        item = rendered_for(seq)
        tree = store.tree(seq)
        try:
            p = tree.prove(account)
        except UnknownAccountError as e:
            raise _not_found(
                f"account {account!r} is not in the liabilities of attestation {seq}"
            ) from e
        body = _dumps(
            {
                "sequence": seq,
                "attestation_digest": item.digest,
                "liabilities": item.liabilities,
                "proof": p.to_dict(),
            }
        )
        cc = "private, max-age=31536000, immutable" if sequence else "private, no-cache"
        return _cached(request, body, cache_control=cc)

    # --- keys and log -------------------------------------------------------------------

    keys_body = _dumps(dict(deps.keys))

    @app.get("/v1/keys", response_model=schemas.KeySetOut, tags=["keys"])
    def keys(request: Request) -> Response:
        """The published key set that verifies attestation envelopes."""
        return _cached(request, keys_body, cache_control="public, max-age=300")

    @app.get(
        "/v1/log/checkpoint",
        response_class=Response,
        responses={
            200: {"content": {"text/plain": {}}, "description": "C2SP signed note"},
            **_ERRORS_404,
        },
        tags=["log"],
    )
    def checkpoint(request: Request) -> Response:
        """The latest signed checkpoint of the attestation log (C2SP signed note)."""
        cp = store.checkpoint()
        if cp is None:
            raise _not_found("the log is empty")
        return _cached(
            request,
            cp.note.encode("utf-8"),
            cache_control=REVALIDATE,
            media_type="text/plain; charset=utf-8",
        )

    @app.get(
        "/v1/log/inclusion",
        response_model=schemas.LogInclusionOut,
        responses=_ERRORS_404,
        tags=["log"],
    )
    def log_inclusion(
        request: Request,
        sequence: Annotated[int, Query(ge=1, le=MAX_SEQUENCE)],
    ) -> Response:
        """Inclusion of one attestation's envelope in the log, at the latest checkpoint."""
        inc = store.inclusion(sequence)
        body = _dumps(
            {
                "sequence": inc.sequence,
                "leaf_index": inc.leaf_index,
                "tree_size": inc.tree_size,
                "leaf_hash": inc.leaf_hash.hex(),
                "path": [h.hex() for h in inc.path],
                "root_hash": inc.root_hash.hex(),
                "checkpoint": inc.checkpoint_note,
            }
        )
        return _cached(request, body, cache_control=REVALIDATE)

    @app.get(
        "/v1/log/consistency",
        response_model=schemas.LogConsistencyOut,
        responses=_ERRORS_404,
        tags=["log"],
    )
    def log_consistency(
        request: Request,
        from_size: Annotated[int, Query(alias="from", ge=1, le=MAX_SEQUENCE)],
        to_size: Annotated[int, Query(alias="to", ge=1, le=MAX_SEQUENCE)],
    ) -> Response:
        """RFC 9162 consistency proof between two checkpointed log sizes."""
        if from_size > to_size:
            raise InputError(f"from ({from_size}) must not exceed to ({to_size})", where="from")
        c = store.consistency(from_size, to_size)
        body = _dumps(
            {
                "from": c.from_size,
                "to": c.to_size,
                "from_root": c.from_root.hex(),
                "to_root": c.to_root.hex(),
                "path": [h.hex() for h in c.path],
            }
        )
        return _cached(request, body, cache_control=IMMUTABLE)

    # --- oracles, health, metrics -------------------------------------------------------

    @app.get("/v1/oracles", response_model=schemas.OraclesOut, tags=["oracles"])
    def oracles(request: Request) -> Response:
        """Per chain: the oracle contract, the last attestation sent to it, and its tx."""
        body = _dumps(
            {
                "oracles": [
                    {
                        "chain_id": p.chain_id,
                        "contract": p.contract,
                        "sequence": p.sequence,
                        "tx_hash": p.tx_hash,
                        "block_number": p.block_number,
                        "status": p.status,
                        "updated_at": p.updated_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    }
                    for p in store.publications()
                ]
            }
        )
        return _cached(request, body, cache_control=REVALIDATE)

    @app.get(
        "/healthz",
        response_model=schemas.HealthOut,
        responses={503: {"model": schemas.HealthOut}},
        tags=["service"],
    )
    def healthz() -> JSONResponse:
        """200 when the store answers, 503 otherwise."""
        headers = {"Cache-Control": "no-store"}
        try:
            store.ping()
            seq = store.latest_sequence()
        except PorError as e:
            return JSONResponse(
                {"status": "unavailable", "latest_sequence": None, "detail": str(e)},
                status_code=503,
                headers=headers,
            )
        return JSONResponse(
            {"status": "ok", "latest_sequence": seq, "detail": None}, headers=headers
        )

    @app.get(
        "/metrics",
        response_class=Response,
        tags=["service"],
        responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
    )
    def prometheus() -> Response:
        """Prometheus metrics of this instance."""
        return Response(
            generate_latest(metrics.registry),
            media_type="text/plain; version=0.0.4; charset=utf-8",
            headers={"Cache-Control": "no-store"},
        )

    # --- admin --------------------------------------------------------------------------

    @app.post(
        "/v1/admin/attest",
        response_model=schemas.TriggerOut,
        tags=["admin"],
        responses={
            401: {"model": schemas.ErrorOut},
            409: {"model": schemas.ErrorOut},
            503: {"model": schemas.ErrorOut},
        },
    )
    async def admin_attest(_auth: Annotated[None, Depends(admin)]) -> JSONResponse:
        """Run one attestation now (bearer token). 409 while another run is going."""
        run = deps.trigger
        if run is None:
            raise HTTPException(
                status_code=503, detail="this instance has no attestation trigger configured"
            )
        if not trigger_lock.acquire(blocking=False):
            raise HTTPException(status_code=409, detail="an attestation run is in progress")
        try:
            seq = await run_in_threadpool(run)
        except PorError as e:
            raise HTTPException(
                status_code=503, detail=f"attestation run failed: {e.diagnostics()}"
            ) from e
        finally:
            trigger_lock.release()
        return JSONResponse({"sequence": seq}, headers={"Cache-Control": "no-store"})

    # --- static pages -------------------------------------------------------------------

    static_dir = deps.static_dir

    def page(name: str) -> Callable[[], Awaitable[FileResponse]]:
        async def serve() -> FileResponse:
            return FileResponse(
                static_dir / name,
                media_type="text/html; charset=utf-8",
                headers={"Cache-Control": REVALIDATE},
            )

        return serve

    app.add_api_route("/", page("index.html"), methods=["GET"], include_in_schema=False)
    app.add_api_route("/holder", page("holder.html"), methods=["GET"], include_in_schema=False)
    app.mount("/static", StaticFiles(directory=static_dir), name="static")
    return app
