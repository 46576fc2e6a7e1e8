"""`/v1/keys`: the published key set that verifies attestation envelopes."""

from fastapi import APIRouter, Request
from fastapi.responses import Response

from por.api import schemas
from por.api.deps import StateDep
from por.api.http import KEY_SET, cached_response

router = APIRouter(prefix="/v1/keys", tags=["keys"])


@router.get("", response_model=schemas.KeySetOut)
def keys(request: Request, state: StateDep) -> Response:
    """The published key set that verifies attestation envelopes."""
    return cached_response(request, state.keys_body, cache_control=KEY_SET)
