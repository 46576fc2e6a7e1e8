"""`/v1/attestations`: the latest, one by sequence (immutable), and history pages."""

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from por.api import schemas
from por.api.deps import (
    HISTORY_ITEMS_PER_TOKEN,
    MAX_SEQUENCE,
    AppState,
    ClientDep,
    SequencePath,
    StateDep,
    busy,
    current_sequence,
    rendered_attestation,
    take_history_tokens,
)
from por.api.http import IMMUTABLE, REVALIDATE, cached_response, dumps

router = APIRouter(prefix="/v1/attestations", tags=["attestations"])


@router.get("/latest", response_model=schemas.AttestationOut, responses=schemas.NOT_FOUND)
async def latest_attestation(request: Request, state: StateDep) -> Response:
    """The latest signed attestation: envelope (verify it) and decoded document."""
    item = await rendered_attestation(state, await current_sequence(state))
    return cached_response(request, item.body, cache_control=REVALIDATE, etag=item.digest)


@router.get("/{sequence}", response_model=schemas.AttestationOut, responses=schemas.NOT_FOUND)
async def attestation(request: Request, sequence: SequencePath, state: StateDep) -> Response:
    """One attestation by sequence (immutable)."""
    item = await rendered_attestation(state, sequence)
    return cached_response(request, item.body, cache_control=IMMUTABLE, etag=item.digest)


@router.get(
    "",
    response_model=schemas.AttestationPageOut,
    responses={429: {"model": schemas.ErrorOut}, 503: {"model": schemas.ErrorOut}},
)
async def attestations(
    request: Request,
    state: StateDep,
    client: ClientDep,
    limit: Annotated[
        int, Query(ge=1, le=1000, description="page size (cut to the server's maximum)")
    ] = 20,
    before: Annotated[
        int | None, Query(ge=1, le=MAX_SEQUENCE, description="only sequences below this")
    ] = None,
) -> Response:
    """History, newest first; follow `next_before` for older pages. Rate limited per
    client by page size (1 token per 20 items asked for)."""
    limit = min(limit, state.deps.history_max_limit)
    take_history_tokens(state, client, max(1, -(-limit // HISTORY_ITEMS_PER_TOKEN)))
    with state.expensive.slot(busy):
        body = await run_in_threadpool(_page, state, limit, before)
    # Pages below a fixed `before` never change: nothing is ever inserted below the top.
    return cached_response(request, body, cache_control=IMMUTABLE if before else REVALIDATE)


def _page(state: AppState, limit: int, before: int | None) -> bytes:
    rows = state.deps.store.list(limit, before)
    items = []
    for r in rows:
        # every figure from a row that is what was signed (500 for the page otherwise):
        # the columns are checked equal to the signed payload's
        state.integrity.check(r)
        doc = r.document()
        items.append(
            {
                "sequence": r.sequence,
                "kind": r.kind,
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
    return dumps({"items": items, "next_before": rows[-1].sequence if more else None})
