"""HTTP mechanics shared by every route: caching, conditional answers, headers, limits.

- Conditional responses: a strong ETag (the attestation digest, or a hash of the body)
  answered with 304 on a matching `If-None-Match` (RFC 9110 §13.1.2).
- Cache-Control: content that can never change is `immutable`; "latest" views are
  `no-cache` (revalidate every time, cheap with ETags).
- Security headers on every response, request count and latency: one pure-ASGI middleware.
- Rate limiting and the costly-request gate: por.api.limits (RateLimit is re-exported).
- Errors: PorError subclasses become 404 / 422 / 500 / 503 in one place.

No route and no store access here; the metrics registry is per app (no globals).
"""

import hashlib
import json
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from por.api.limits import RateLimit
from por.errors import InputError, PorError
from por.store import UnknownSequenceError
from por.store.integrity import TamperedRowError

# --- Cache-Control ------------------------------------------------------------------------

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
# A proof names one holder's account and balance: only that holder's browser may keep it.
PRIVATE_IMMUTABLE = "private, max-age=31536000, immutable"
PRIVATE_REVALIDATE = "private, no-cache"
KEY_SET = "public, max-age=300"  # a key set changes rarely, but must roll over within minutes
NO_STORE = "no-store"

SECURITY_HEADERS = (
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


# --- bodies and conditional responses -----------------------------------------------------


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON: the byte form every JSON body (and its ETag) is computed from."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def etag_matches(header: str, etag: str) -> bool:
    # RFC 9110 §13.1.2: If-None-Match uses the weak comparison.
    if header.strip() == "*":
        return True
    bare = etag.removeprefix("W/")
    return any(t.strip().removeprefix("W/") == bare for t in header.split(","))


def body_etag(body: bytes, etag: str | None = None) -> str:
    """The quoted strong ETag of a body: `etag` (an attestation digest) or a SHA-256 prefix."""
    return f'"{etag or hashlib.sha256(body).hexdigest()[:40]}"'


def cached_response(
    request: Request,
    body: bytes,
    *,
    cache_control: str,
    media_type: str = "application/json",
    etag: str | None = None,
) -> Response:
    """`body` with ETag and Cache-Control, or 304 when the client already holds it."""
    tag = body_etag(body, etag)
    headers = {"ETag": tag, "Cache-Control": cache_control}
    inm = request.headers.get("if-none-match")
    if inm is not None and etag_matches(inm, tag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


# --- metrics and headers middleware -------------------------------------------------------


class HttpMetrics:
    """One app's Prometheus registry with request count and latency per route template."""

    def __init__(self) -> None:
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
        self.integrity_failures = Counter(
            "por_integrity_failures",
            "Stored attestation rows refused: not what their envelope signs (por.store.integrity)",
            registry=self.registry,
        )


class EdgeMiddleware:
    """Pure ASGI: security headers on every response, request count and latency."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
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
                for k, v in SECURITY_HEADERS:
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


# --- errors -------------------------------------------------------------------------------


async def _unknown_sequence(_: Request, exc: UnknownSequenceError) -> JSONResponse:
    return JSONResponse({"detail": exc.message}, status_code=404)


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


async def _tampered(_: Request, exc: TamperedRowError) -> JSONResponse:
    # Not "unavailable, retry": the stored row is wrong until someone repairs it.
    return JSONResponse({"detail": exc.diagnostics()}, status_code=500)


async def _unavailable(_: Request, exc: PorError) -> JSONResponse:
    # A store or file failure: the service cannot answer now. Never bad input.
    return JSONResponse({"detail": exc.diagnostics()}, status_code=503)


def add_error_handlers(app: FastAPI) -> None:
    """Unknown sequence → 404, bad input → 422 (FastAPI's shape), a stored row that is not
    what was signed → 500, any other PorError → 503."""
    # The decorator form: Starlette types a handler's exception as plain Exception.
    app.exception_handler(UnknownSequenceError)(_unknown_sequence)
    app.exception_handler(InputError)(_bad_input)
    app.exception_handler(TamperedRowError)(_tampered)
    app.exception_handler(PorError)(_unavailable)


__all__ = [
    "IMMUTABLE",
    "KEY_SET",
    "NO_STORE",
    "PRIVATE_IMMUTABLE",
    "PRIVATE_REVALIDATE",
    "REVALIDATE",
    "EdgeMiddleware",
    "HttpMetrics",
    "RateLimit",
    "add_error_handlers",
    "body_etag",
    "cached_response",
    "dumps",
    "etag_matches",
]
