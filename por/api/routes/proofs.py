"""`/v1/proofs/{account}`: a holder's por-mst-v1 inclusion proof (rate limited per address)."""

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import Response

from por.api import schemas
from por.api.deps import (
    MAX_SEQUENCE,
    ProofRateLimit,
    StateDep,
    current_sequence,
    loaded_tree,
    not_found,
    rendered_attestation,
)
from por.api.http import PRIVATE_IMMUTABLE, PRIVATE_REVALIDATE, cached_response, dumps
from por.errors import StoreError

router = APIRouter(prefix="/v1/proofs", tags=["proofs"])


@router.get(
    "/{account}",
    response_model=schemas.ProofOut,
    responses={**schemas.NOT_FOUND, 429: {"model": schemas.ErrorOut}},
)
async def proof(
    request: Request,
    account: Annotated[
        str, PathParam(min_length=1, max_length=256, description="CAIP-10 account id")
    ],
    _limited: ProofRateLimit,
    state: StateDep,
    sequence: Annotated[
        int | None, Query(ge=1, le=MAX_SEQUENCE, description="default: the latest")
    ] = None,
) -> Response:
    """The por-mst-v1 inclusion proof of `account` in an attestation's liabilities."""
    from por.core.mst import Node, verify_inclusion  # the tree code loads on first proof
    from por.core.sumtree import UnknownAccountError

    # in memory after the first request per sequence; a proof costs ~30 µs of CPU, so it
    # is made here on the event loop rather than behind a thread hop
    seq = await current_sequence(state) if sequence is None else sequence
    item = await rendered_attestation(state, seq)
    tree = await loaded_tree(state, seq)  # mapped; its file is checked in the background
    try:
        p = tree.prove(account)
    except UnknownAccountError as e:
        raise not_found(
            f"account {account!r} is not in the liabilities of attestation {seq}"
        ) from e
    liabilities = item.liabilities
    if not state.deps.store.tree_checked(seq) or p.size != liabilities["leaf_count"]:
        # The file's digest is still being checked in the background (Store.tree): send
        # only a proof that reaches the SIGNED root. A failure is a 503, never a bad proof.
        signed = Node(hash=bytes.fromhex(liabilities["root"]), sum=int(liabilities["total"]))
        verify_inclusion(p, root=signed)
        if p.size != liabilities["leaf_count"]:
            raise StoreError(
                f"tree of attestation {seq} has {p.size} leaves, the attestation "
                f"{liabilities['leaf_count']}",
                where="tree",
            )
    body = dumps(
        {
            "sequence": seq,
            "attestation_digest": item.digest,
            "liabilities": item.liabilities,
            "proof": p.to_dict(),
        }
    )
    cc = PRIVATE_IMMUTABLE if sequence else PRIVATE_REVALIDATE
    return cached_response(request, body, cache_control=cc)
