"""`/v1/oracles`: per chain, the oracle contract and the last attestation sent to it."""

from collections import Counter

from fastapi import APIRouter, Request
from fastapi.responses import Response

from por.api import schemas
from por.api.deps import StoreDep
from por.api.http import REVALIDATE, cached_response, dumps
from por.core.times import format_time

router = APIRouter(prefix="/v1/oracles", tags=["oracles"])


@router.get("", response_model=schemas.OraclesOut)
def oracles(request: Request, store: StoreDep) -> Response:
    """Per chain: the oracle contract, the last attestation sent to it, and its tx; the
    rounds still queued for it (`pending`), and why the last one is pending or superseded."""
    pubs = store.publications()
    queue = store.publication_queue([p.chain_id for p in pubs])
    pending = Counter(q.chain_id for q in queue)
    body = dumps(
        {
            "oracles": [
                {
                    "chain_id": p.chain_id,
                    "contract": p.contract,
                    "sequence": p.sequence,
                    "tx_hash": p.tx_hash,
                    "block_number": p.block_number,
                    "status": p.status,
                    "updated_at": format_time(p.updated_at),
                    "error": p.error,
                    "superseded_by": p.superseded_by,
                    "pending": pending[p.chain_id],
                    "oldest_pending": min(
                        (q.sequence for q in queue if q.chain_id == p.chain_id), default=None
                    ),
                }
                for p in pubs
            ]
        }
    )
    return cached_response(request, body, cache_control=REVALIDATE)
