"""`/v1/reconciliation/{sequence}`: the detailed match list of an attestation's flows.

The body is the exact `por-matches-v1` document whose SHA-256 the attestation signs
(`reconciliation.matches_sha256`): every mint and burn of the reconciled block ranges,
every booked bank entry of the named statements (masked account, amount, booking day,
reference tokens with a digit — no narratives, no names), the pairs, and what is
unmatched or overdue. `por verify --matches` rechecks it against the statements and the
chains (docs/ledger.md §2). Immutable once recorded.
"""

import hashlib

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from por.api import schemas
from por.api.deps import SequencePath, StateDep, not_found
from por.api.http import IMMUTABLE, cached_response

router = APIRouter(prefix="/v1/reconciliation", tags=["reconciliation"])


@router.get(
    "/{sequence}",
    response_class=Response,
    responses={
        200: {
            "content": {"application/json": {}},
            "description": "the por-matches-v1 match list, exactly as hashed",
        },
        **schemas.NOT_FOUND,
        503: {"model": schemas.ErrorOut},
    },
)
def matches(request: Request, sequence: SequencePath, state: StateDep) -> Response:
    """The match list of one attestation's flow reconciliation (immutable)."""
    read = state.deps.matches
    if read is None:
        raise HTTPException(status_code=503, detail="this instance serves no match lists")
    state.deps.store.get(sequence)  # 404 for an unknown sequence
    data = read(sequence)
    if data is None:
        raise not_found(f"attestation {sequence} carries no flow reconciliation")
    return cached_response(
        request, data, cache_control=IMMUTABLE, etag=hashlib.sha256(data).hexdigest()
    )
