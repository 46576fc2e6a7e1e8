"""`/v1/attestations`: the latest, one by sequence (immutable), and history pages."""

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from por.api import schemas
from por.api.deps import (
    MAX_SEQUENCE,
    SequencePath,
    StateDep,
    StoreDep,
    current_sequence,
    rendered_attestation,
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


@router.get("", response_model=schemas.AttestationPageOut)
def attestations(
    request: Request,
    store: StoreDep,
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
    body = dumps({"items": items, "next_before": rows[-1].sequence if more else None})
    # Pages below a fixed `before` never change: nothing is ever inserted below the top.
    return cached_response(request, body, cache_control=IMMUTABLE if before else REVALIDATE)
