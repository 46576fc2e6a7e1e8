"""`/v1/proofs/{account}`: a holder's por-mst-v1 inclusion proof (rate limited per client)."""

from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from por.api import schemas
from por.api.deps import (
    MAX_SEQUENCE,
    TREE_LOAD_COST,
    AppState,
    ClientDep,
    RenderedAttestation,
    StateDep,
    busy,
    current_sequence,
    loaded_tree,
    not_found,
    rendered_attestation,
    take_proof_token,
)
from por.api.http import PRIVATE_IMMUTABLE, PRIVATE_REVALIDATE, cached_response, dumps
from por.errors import StoreError

if TYPE_CHECKING:
    from por.core.sumtree import SumTree
    from por.store.shards import ShardedTree

router = APIRouter(prefix="/v1/proofs", tags=["proofs"])


@router.get(
    "/{account}",
    response_model=schemas.ProofOut,
    responses={
        **schemas.NOT_FOUND,
        429: {"model": schemas.ErrorOut},
        503: {"model": schemas.ErrorOut},
    },
)
async def proof(
    request: Request,
    account: Annotated[
        str, PathParam(min_length=1, max_length=256, description="CAIP-10 account id")
    ],
    client: ClientDep,
    state: StateDep,
    sequence: Annotated[
        int | None, Query(ge=1, le=MAX_SEQUENCE, description="default: the latest")
    ] = None,
) -> Response:
    """The por-mst-v1 inclusion proof of `account` in an attestation's liabilities."""
    # in memory after the first request per sequence (por.api.fast serves this very
    # request without FastAPI's routing once everything is loaded)
    seq = await current_sequence(state) if sequence is None else sequence
    # 1 token; TREE_LOAD_COST when `?sequence=` names an attestation whose tree is not
    # loaded (cycling over old attestations forces tree loads: that is what the budget
    # counts). The latest tree is everyone's, loaded at start: never charged extra.
    cold = sequence is not None and state.deps.store.cached_tree(seq) is None
    take_proof_token(state, client, TREE_LOAD_COST if cold else 1)
    item = await rendered_attestation(state, seq)
    tree = await loaded_tree(state, seq)  # mapped; its file is checked in the background
    from por.core.sumtree import SumTree

    if not isinstance(tree, SumTree) and not tree.cached_for(account):
        # shards from the object store: fetched and verified off the event loop, holding
        # one of the costly-request slots (503 when none is free), so the proof below is
        # made from the shard cache
        with state.expensive.slot(busy):
            await run_in_threadpool(tree.prefetch, account)
    body = proof_body(state, seq, item, tree, account)
    cc = PRIVATE_IMMUTABLE if sequence else PRIVATE_REVALIDATE
    return cached_response(request, body, cache_control=cc)


def proof_body(
    state: AppState,
    seq: int,
    item: RenderedAttestation,
    tree: "SumTree | ShardedTree",
    account: str,
) -> bytes:
    """The JSON body of one proof (~30 µs of CPU: made on the event loop, no thread hop).
    404 for an account without a leaf; PorError (503) for a tree that disagrees with
    the signed attestation."""
    from por.core.mst import Node, verify_inclusion
    from por.core.sumtree import UnknownAccountError

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
    return dumps(
        {
            "sequence": seq,
            "attestation_digest": item.digest,
            "liabilities": liabilities,
            "proof": p.to_dict(),
        }
    )
