"""`/v1/admin/attest`: run one attestation now (bearer token; one run at a time)."""

from fastapi import APIRouter, HTTPException
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from por.api import schemas
from por.api.deps import AdminAuth, StateDep
from por.api.http import NO_STORE
from por.errors import PorError

router = APIRouter(prefix="/v1/admin", tags=["admin"])


@router.post(
    "/attest",
    response_model=schemas.TriggerOut,
    responses={
        401: {"model": schemas.ErrorOut},
        409: {"model": schemas.ErrorOut},
        503: {"model": schemas.ErrorOut},
    },
)
async def admin_attest(_auth: AdminAuth, state: StateDep) -> JSONResponse:
    """Run one attestation now (bearer token). 409 while another run is going."""
    run = state.deps.trigger
    if run is None:
        raise HTTPException(
            status_code=503, detail="this instance has no attestation trigger configured"
        )
    if not state.trigger_lock.acquire(blocking=False):
        raise HTTPException(status_code=409, detail="an attestation run is in progress")
    try:
        seq = await run_in_threadpool(run)
    except PorError as e:
        raise HTTPException(
            status_code=503, detail=f"attestation run failed: {e.diagnostics()}"
        ) from e
    finally:
        state.trigger_lock.release()
    return JSONResponse({"sequence": seq}, headers={"Cache-Control": NO_STORE})
