"""`/v1/log/...`: the attestation log's checkpoint, verifier key, proofs and witnesses.

Checkpoints are served with the witness cosignatures received so far (C2SP
tlog-cosignature lines after the log's own signature); the log's note never changes.
"""

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from por.api import schemas
from por.api.deps import MAX_SEQUENCE, StateDep, StoreDep, not_found
from por.api.http import IMMUTABLE, KEY_SET, REVALIDATE, cached_response, dumps
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
        store.cosign.witnessed_note(cp).encode("utf-8"),
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
            "checkpoint": store.cosign.witnessed_note(store.log.checkpoint_at(inc.tree_size)),
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


@router.get(
    "/key",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {}}, "description": "C2SP verifier key"},
        **schemas.NOT_FOUND,
    },
)
def log_key(request: Request, state: StateDep) -> Response:
    """The log's checkpoint verifier key, `<origin>+<key ID>+<base64(0x01 ‖ key)>`."""
    log = state.keyset.log
    if log is None:
        raise not_found("the key set names no log key")
    return cached_response(
        request,
        (log.vkey.encode() + "\n").encode("ascii"),
        cache_control=KEY_SET,
        media_type="text/plain; charset=utf-8",
    )


@router.get("/witnesses", response_model=schemas.WitnessesOut)
def witnesses(request: Request, state: StateDep, store: StoreDep) -> Response:
    """The witnesses the log submits to, and where each stands."""
    known = {s.witness: s for s in store.cosign.submissions()}
    items = []
    for w in state.keyset.witnesses:
        s = known.get(w.name)
        items.append(
            {
                "name": w.name,
                "vkey": w.encode(),
                "cosigned_size": None if s is None else s.cosigned_size,
                "known_size": None if s is None else s.known_size,
                "failed_attempts": 0 if s is None else s.attempts,
                "last_error": None if s is None else s.last_error,
            }
        )
    return cached_response(request, dumps({"witnesses": items}), cache_control=REVALIDATE)
