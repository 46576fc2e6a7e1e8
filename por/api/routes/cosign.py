"""`/v1/attestations/{sequence}/signatures`: auditor co-signatures, kept beside the envelope.

An auditor signs the same DSSE payload the issuer signed (PAE(payloadType, payload)) with
a key the published key set names as `auditor`, and submits it here (bearer token): the
body is a DSSE envelope over that payload, read by DSSE's consumer rules (either base64
alphabet, unknown fields ignored, keyid optional), so any DSSE tool's output is accepted.
Every signature in it must verify with an auditor key valid at the attestation's
`issued_at` (the issuer's own signatures, if the auditor sent back the whole envelope,
are recognised and skipped); otherwise nothing is stored. The issuer's envelope, and so
its log leaf and every inclusion proof, never changes.

Answers: 201 with the keyids stored; 401 without the auditor token; 403 for a signature
that is not a valid auditor signature; 404 unknown sequence; 409 a key that already
co-signed; 422 a body that is not a DSSE envelope of this attestation's payload.
"""

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, Response

from por.api import schemas
from por.api.deps import AuditorAuth, SequencePath, StateDep, StoreDep
from por.api.http import NO_STORE, REVALIDATE, cached_response, dumps
from por.core.attestation import PAYLOAD_TYPE
from por.core.canonical import loads_strict
from por.core.dsse import Envelope, Signature, verify_envelope
from por.core.times import format_time
from por.core.verify import claimed_issued_at
from por.errors import FormatError, PorError
from por.store.cosign import DuplicateSignatureError

router = APIRouter(prefix="/v1/attestations", tags=["co-signatures"])

MAX_BODY = 64 * 1024


async def read_limited(request: Request, limit: int = MAX_BODY) -> bytes:
    """The request body, refusing (413) more than `limit` bytes without reading them all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(status_code=413, detail=f"body over {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(status_code=413, detail=f"body over {limit} bytes")
    return bytes(body)


@router.get(
    "/{sequence}/signatures",
    response_model=schemas.AuditorSignaturesOut,
    responses=schemas.NOT_FOUND,
)
def signatures(request: Request, sequence: SequencePath, store: StoreDep) -> Response:
    """The auditor co-signatures stored for one attestation (verify them with /v1/keys)."""
    store.get(sequence)  # 404 for an unknown sequence
    items = [
        {
            "keyid": s.signature.keyid,
            "sig": s.signature.to_dict()["sig"],
            "submitted_at": format_time(s.submitted_at),
        }
        for s in store.cosign.auditor_signatures(sequence)
    ]
    body = dumps({"sequence": sequence, "signatures": items})
    return cached_response(request, body, cache_control=REVALIDATE)


@router.post(
    "/{sequence}/signatures",
    status_code=201,
    response_model=schemas.CosignAcceptedOut,
    responses={
        401: {"model": schemas.ErrorOut},
        403: {"model": schemas.ErrorOut},
        404: {"model": schemas.ErrorOut},
        409: {"model": schemas.ErrorOut},
        413: {"model": schemas.ErrorOut},
    },
)
async def add_signatures(
    request: Request, sequence: SequencePath, _auth: AuditorAuth, state: StateDep, store: StoreDep
) -> JSONResponse:
    """Submit auditor co-signatures (a DSSE envelope over this attestation's payload)."""
    raw = await read_limited(request)
    stored = store.get(sequence)
    issuer = Envelope.from_json_bytes(stored.envelope_json, where=f"attestation {sequence}")
    submitted = Envelope.from_dict(loads_strict(raw, where="body"), where="body")
    if submitted.payload_type != PAYLOAD_TYPE or submitted.payload != issuer.payload:
        raise FormatError(
            f"the envelope is not over attestation {sequence}'s payload and payloadType",
            where="body",
        )
    issued_at = claimed_issued_at(issuer.payload)  # the issuer's signature covers it
    issuer_sigs = {s.sig for s in issuer.signatures}
    new = [s for s in submitted.signatures if s.sig not in issuer_sigs]
    if not new:
        raise FormatError("the envelope carries no signature beyond the issuer's", where="body")
    accepted: dict[str, Signature] = {}
    for i, sig in enumerate(new):
        one = Envelope(payload=issuer.payload, payload_type=PAYLOAD_TYPE, signatures=(sig,))
        try:
            verified = verify_envelope(
                one,
                state.keyset,
                at=issued_at,
                payload_type=PAYLOAD_TYPE,
                roles=frozenset({"auditor"}),
                where=f"body.signatures[{i}]",
            )
        except PorError as e:
            raise HTTPException(
                status_code=403,
                detail=f"not a valid co-signature by an auditor key of the key set: {e}",
            ) from e
        keyid = verified.keyids[0]
        if keyid in accepted:
            raise HTTPException(
                status_code=409, detail=f"auditor key {keyid[:16]}… signs twice in the body"
            )
        accepted[keyid] = Signature(keyid=keyid, sig=sig.sig)  # stored under the key's own id
    try:
        store.cosign.add_auditor_signatures(sequence, list(accepted.values()))
    except DuplicateSignatureError as e:
        raise HTTPException(status_code=409, detail=e.message) from e
    return JSONResponse(
        {"sequence": sequence, "added": list(accepted)},
        status_code=201,
        headers={"Cache-Control": NO_STORE},
    )
