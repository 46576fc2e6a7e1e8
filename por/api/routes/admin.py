"""`/v1/admin/attest`: run one attestation now (bearer token; one run at a time).

With `?as_of=<RFC 3339>`: a point-in-time attestation as of that past time (recorded and
logged, never published; docs/ledger.md §3). A time in the future, before the token's
deployment, or one a chain cannot be read at (a pruned node) is refused with the reason.
"""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from por.api import schemas
from por.api.deps import AdminAuth, StateDep
from por.api.http import NO_STORE
from por.chains.base import AsOfRefusedError, HistoricalStateError
from por.core.times import parse_time_with_offset
from por.errors import InputError, PorError

router = APIRouter(prefix="/v1/admin", tags=["admin"])


def parse_as_of(text: str, *, where: str = "as_of") -> datetime:
    return parse_time_with_offset(text, where=where)


@router.post(
    "/attest",
    response_model=schemas.TriggerOut,
    responses={
        400: {"model": schemas.ErrorOut},
        401: {"model": schemas.ErrorOut},
        409: {"model": schemas.ErrorOut},
        422: {"model": schemas.ErrorOut},
        503: {"model": schemas.ErrorOut},
    },
)
async def admin_attest(
    _auth: AdminAuth,
    state: StateDep,
    as_of: Annotated[
        str | None,
        Query(
            max_length=40,
            description="attest as of this past time (RFC 3339): a point-in-time attestation",
        ),
    ] = None,
) -> JSONResponse:
    """Run one attestation now (bearer token). 409 while another run is going."""
    if as_of is not None:
        try:
            when = parse_as_of(as_of)
        except InputError as e:
            raise HTTPException(status_code=400, detail=str(e)) from e
        run_past = state.deps.trigger_as_of
        if run_past is None:
            raise HTTPException(
                status_code=503, detail="this instance cannot attest as of a past time"
            )
        run = lambda: run_past(when)  # noqa: E731 - one call, named below
    else:
        trigger = state.deps.trigger
        if trigger is None:
            raise HTTPException(
                status_code=503, detail="this instance has no attestation trigger configured"
            )
        run = trigger
    if not state.trigger_lock.acquire(blocking=False):
        raise HTTPException(status_code=409, detail="an attestation run is in progress")
    try:
        seq = await run_in_threadpool(run)
    except (InputError, AsOfRefusedError, HistoricalStateError) as e:
        # the request cannot be served as asked (future, before deployment, pruned node)
        raise HTTPException(status_code=422, detail=e.diagnostics()) from e
    except PorError as e:
        raise HTTPException(
            status_code=503, detail=f"attestation run failed: {e.diagnostics()}"
        ) from e
    finally:
        state.trigger_lock.release()
    return JSONResponse({"sequence": seq}, headers={"Cache-Control": NO_STORE})
