"""The two hottest requests answered without FastAPI's routing and dependency injection.

`GET /v1/attestations/latest` and `GET /v1/proofs/{account}` (no query string) are most
of the API's traffic, and FastAPI's per-request machinery (route matching over every
route, dependency solving, parameter models) costs several times what answering them
does once everything is in memory. `HotPaths` (a pure ASGI middleware inside
EdgeMiddleware, so security headers and metrics apply unchanged) answers them directly
when, and only when, the answer is already known in memory: the latest sequence is
trusted (por.api.deps.LatestSequence), its body is rendered and, for proofs, its tree is
loaded. Anything else — a query string, a cache miss, a path the route would refuse — goes
on to the FastAPI routes, which hold the same logic (they call the same functions:
`proof_body`, `take_proof_token`, the ETag helpers) and document it in OpenAPI.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from fastapi import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from por.api.deps import AppState, take_proof_token
from por.api.http import (
    PRIVATE_REVALIDATE,
    REVALIDATE,
    body_etag,
    dumps,
    etag_matches,
)
from por.api.limits import scope_client_key
from por.errors import InputError, PorError

_LATEST = "/v1/attestations/latest"
_PROOFS = "/v1/proofs/"
_ACCOUNT_MAX = 256  # the route's PathParam(max_length=256)


class _Route:
    """What EdgeMiddleware reads for its metrics label (`scope["route"].path`)."""

    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        self.path = path


_LATEST_ROUTE = _Route(_LATEST)
_PROOF_ROUTE = _Route("/v1/proofs/{account}")


class HotPaths:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and not scope["query_string"]:
            path: str = scope["path"]
            state = cast(AppState, scope["app"].state.por)
            if path == _LATEST:
                if await self._latest(state, scope, send):
                    return
            elif path.startswith(_PROOFS):
                account = path[len(_PROOFS) :]
                if (
                    0 < len(account) <= _ACCOUNT_MAX
                    and "/" not in account
                    and await self._proof(state, account, scope, send)
                ):
                    return
        await self.app(scope, receive, send)

    async def _latest(self, state: AppState, scope: Scope, send: Send) -> bool:
        trusted, seq = state.head.fresh()
        item = state.rendered.peek(seq) if trusted and seq is not None else None
        if item is None:
            return False
        scope["route"] = _LATEST_ROUTE
        await _send(scope, send, item.body, REVALIDATE, body_etag(item.body, item.digest))
        return True

    async def _proof(self, state: AppState, account: str, scope: Scope, send: Send) -> bool:
        from por.api.routes.proofs import proof_body
        from por.core.sumtree import SumTree

        trusted, seq = state.head.fresh()
        if not trusted or seq is None:
            return False
        item = state.rendered.peek(seq)
        tree = state.deps.store.cached_tree(seq)
        if (
            item is None
            or tree is None
            # shards still to fetch (blocking I/O): the route fetches them in a thread
            or (not isinstance(tree, SumTree) and not tree.cached_for(account))
        ):
            return False
        scope["route"] = _PROOF_ROUTE
        try:
            take_proof_token(state, scope_client_key(scope, state.trusted))
            body = proof_body(state, seq, item, tree, account)
        except HTTPException as e:
            await _send_error(send, e.status_code, {"detail": e.detail}, e.headers)
            return True
        except InputError:
            return False  # the route answers it in its own shape (422)
        except PorError as e:  # the error handler's 503, as por.api.http maps it
            await _send_error(send, 503, {"detail": e.diagnostics()}, None)
            return True
        await _send(scope, send, body, PRIVATE_REVALIDATE, body_etag(body))
        return True


def _if_none_match(scope: Scope) -> str | None:
    for k, v in scope["headers"]:
        if k == b"if-none-match":
            return cast(bytes, v).decode("latin-1")
    return None


async def _send(scope: Scope, send: Send, body: bytes, cache_control: str, etag: str) -> None:
    headers: list[tuple[bytes, bytes]] = [
        (b"etag", etag.encode()),
        (b"cache-control", cache_control.encode()),
    ]
    inm = _if_none_match(scope)
    if inm is not None and etag_matches(inm, etag):
        await send({"type": "http.response.start", "status": 304, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return
    headers += [
        (b"content-length", str(len(body)).encode()),
        (b"content-type", b"application/json"),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _send_error(
    send: Send, status: int, payload: dict[str, Any], extra: Mapping[str, str] | None
) -> None:
    body = dumps(payload)
    headers = [
        (b"content-length", str(len(body)).encode()),
        (b"content-type", b"application/json"),
    ]
    headers += [(k.lower().encode(), v.encode()) for k, v in (extra or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


__all__ = ["HotPaths"]
