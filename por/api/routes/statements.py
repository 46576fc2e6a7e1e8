"""`/v1/statements/{sha256}`: the raw custodian statement an attestation references.

Authenticated (the auditor bearer token), never public: a bank statement carries the
issuer's account numbers, every booked transaction with counterparties' names and
accounts, and balances by day — bank-confidential data, and personal data of the
counterparties. The attestation publishes only its SHA-256; an auditor fetches the bytes
here and re-parses them with their own tools. The bytes are served exactly as stored
(content-addressed: the store refuses a file whose bytes no longer hash to its name), with
`Cache-Control: no-store` so no shared or browser cache keeps bank data.
"""

import base64
from typing import Annotated

from fastapi import APIRouter, HTTPException
from fastapi import Path as PathParam
from fastapi.responses import Response

from por.api import schemas
from por.api.deps import AuditorAuth, StateDep, not_found
from por.api.http import NO_STORE

router = APIRouter(prefix="/v1/statements", tags=["statements"])


@router.get(
    "/{sha256}",
    response_class=Response,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "the raw statement"},
        401: {"model": schemas.ErrorOut},
        **schemas.NOT_FOUND,
        503: {"model": schemas.ErrorOut},
    },
)
def statement(
    sha256: Annotated[
        str, PathParam(pattern="^[0-9a-f]{64}$", description="SHA-256 of the raw file, hex")
    ],
    _auth: AuditorAuth,
    state: StateDep,
) -> Response:
    """The raw statement with this SHA-256 (auditor token required: bank data)."""
    read = state.deps.statements
    if read is None:
        raise HTTPException(status_code=503, detail="this instance serves no raw statements")
    data = read(sha256)
    if data is None:
        raise not_found(f"no raw statement {sha256}")
    digest = base64.b64encode(bytes.fromhex(sha256)).decode("ascii")
    return Response(
        data,
        media_type="application/octet-stream",
        headers={
            "Cache-Control": NO_STORE,
            "Repr-Digest": f"sha-256=:{digest}:",  # RFC 9530
            "Content-Disposition": f'attachment; filename="{sha256}"',
        },
    )
