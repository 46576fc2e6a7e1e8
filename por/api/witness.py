"""The HTTP face of a C2SP tlog-witness an auditor runs (`por witness serve`).

    POST /add-checkpoint     body: `old <size>`, proof lines, blank line, checkpoint

One route, answering as tlog-witness orders (statuses in `por.core.witness`): 200 with
the cosignature line(s); 400 malformed; 403 no valid signature by the log's key; 404 a
log this witness does not follow; 409 stale or conflicting size, body `<size>\\n` as
`text/x.tlog.size`; 422 a consistency proof that does not verify. The new state is
committed (`WitnessStateStore.add_checkpoint`) before the 200 is sent.

`create_witness_app(WitnessDeps)` builds it; nothing exists at import time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse, Response

from por.api.routes.cosign import read_limited
from por.core.note import NoteSigner, VerifierKey
from por.core.witness import (
    MAX_REQUEST_BYTES,
    SIZE_CONTENT_TYPE,
    SizeConflictError,
    http_status,
    parse_add_checkpoint,
)
from por.errors import PorError, StoreError
from por.store.witness import WitnessStateStore


@dataclass(kw_only=True)
class WitnessDeps:
    store: WitnessStateStore
    name: str  # the witness's key name (its cosignature vkey's name)
    signer: NoteSigner
    logs: Mapping[str, VerifierKey]  # origin -> the log's checkpoint vkey
    clock: Callable[[], int] = field(default=lambda: int(time.time()))


def create_witness_app(deps: WitnessDeps) -> FastAPI:
    app = FastAPI(title=f"por witness {deps.name}", docs_url=None, redoc_url=None)

    @app.post("/add-checkpoint", response_class=PlainTextResponse)
    async def add_checkpoint(request: Request) -> Response:
        raw = await read_limited(request, MAX_REQUEST_BYTES)
        try:
            req = parse_add_checkpoint(raw)
            decision = await run_in_threadpool(
                deps.store.add_checkpoint,
                req,
                raw,
                logs=deps.logs,
                name=deps.name,
                signer=deps.signer,
                clock=deps.clock,
            )
        except SizeConflictError as e:
            # exactly `text/x.tlog.size` (a media_type would get "; charset=utf-8")
            return Response(
                f"{e.witness_size}\n".encode("ascii"),
                status_code=409,
                headers={"Content-Type": SIZE_CONTENT_TYPE, "Cache-Control": "no-store"},
            )
        except StoreError as e:
            return PlainTextResponse(f"{e.diagnostics()}\n", status_code=503)
        except PorError as e:
            return PlainTextResponse(f"{e.diagnostics()}\n", status_code=http_status(e))
        return PlainTextResponse(
            decision.cosignature.line(), status_code=200, headers={"Cache-Control": "no-store"}
        )

    return app


__all__ = ["WitnessDeps", "create_witness_app"]
