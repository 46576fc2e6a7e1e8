"""`/v1/log/...`: the attestation log's checkpoint, inclusion and consistency proofs."""

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from por.api import schemas
from por.api.deps import MAX_SEQUENCE, StoreDep, not_found
from por.api.http import IMMUTABLE, REVALIDATE, cached_response, dumps
from por.errors import InputError

router = APIRouter(prefix="/v1/log", tags=["log"])


@router.get(
    "/checkpoint",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {}}, "description": "C2SP signed note"},
        **schemas.NOT_FOUND,
    },
)
def checkpoint(request: Request, store: StoreDep) -> Response:
    """The latest signed checkpoint of the attestation log (C2SP signed note)."""
    cp = store.checkpoint()
    if cp is None:
        raise not_found("the log is empty")
    return cached_response(
        request,
        cp.note.encode("utf-8"),
        cache_control=REVALIDATE,
        media_type="text/plain; charset=utf-8",
    )


@router.get("/inclusion", response_model=schemas.LogInclusionOut, responses=schemas.NOT_FOUND)
def log_inclusion(
    request: Request,
    store: StoreDep,
    sequence: Annotated[int, Query(ge=1, le=MAX_SEQUENCE)],
) -> Response:
    """Inclusion of one attestation's envelope in the log, at the latest checkpoint."""
    inc = store.inclusion(sequence)
    body = dumps(
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
    return cached_response(request, body, cache_control=REVALIDATE)


@router.get("/consistency", response_model=schemas.LogConsistencyOut, responses=schemas.NOT_FOUND)
def log_consistency(
    request: Request,
    store: StoreDep,
    from_size: Annotated[int, Query(alias="from", ge=1, le=MAX_SEQUENCE)],
    to_size: Annotated[int, Query(alias="to", ge=1, le=MAX_SEQUENCE)],
) -> Response:
    """RFC 9162 consistency proof between two checkpointed log sizes."""
    if from_size > to_size:
        raise InputError(f"from ({from_size}) must not exceed to ({to_size})", where="from")
    c = store.consistency(from_size, to_size)
    body = dumps(
        {
            "from": c.from_size,
            "to": c.to_size,
            "from_root": c.from_root.hex(),
            "to_root": c.to_root.hex(),
            "path": [h.hex() for h in c.path],
        }
    )
    return cached_response(request, body, cache_control=IMMUTABLE)
