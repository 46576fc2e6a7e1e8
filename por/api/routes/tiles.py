"""C2SP tlog-tiles: `/checkpoint`, `/tile/<L>/<N>[.p/<W>]`, `/tile/entries/<N>[.p/<W>]`.

The attestation log read as static resources, so generic tlog clients and monitors can
follow it (formats: `por.core.tiles`, docs/log-and-signing.md §6). Tiles and bundles
never change once the log holds them, full or partial, so they are `immutable`; the
checkpoint (with the witness cosignatures received so far) revalidates every time.
`/tile/envelopes/<N>[.p/<W>]` serves the envelopes whose SHA-256 digests are the entries.
"""

import hashlib

from fastapi import APIRouter, Request
from fastapi.responses import Response

from por.api import schemas
from por.api.deps import StoreDep, not_found
from por.api.http import IMMUTABLE, REVALIDATE, cached_response
from por.core.tiles import ENTRIES, ENVELOPES, encode_bundle, parse_tile_path, tile_data
from por.errors import FormatError

router = APIRouter(tags=["tlog-tiles"])

OCTETS = "application/octet-stream"


@router.get(
    "/checkpoint",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {}}, "description": "C2SP checkpoint with cosignatures"},
        **schemas.NOT_FOUND,
    },
)
def checkpoint(request: Request, store: StoreDep) -> Response:
    """The latest signed checkpoint and its witness cosignatures (C2SP tlog-tiles)."""
    cp = store.checkpoint()
    if cp is None:
        raise not_found("the log is empty")
    note = store.cosign.witnessed_note(cp)
    return cached_response(
        request,
        note.encode("utf-8"),
        cache_control=REVALIDATE,
        media_type="text/plain; charset=utf-8",
    )


@router.get(
    "/tile/{path:path}",
    response_class=Response,
    responses={
        200: {"content": {OCTETS: {}}, "description": "a hash tile or an entry bundle"},
        **schemas.NOT_FOUND,
    },
)
def tile(request: Request, path: str, store: StoreDep) -> Response:
    """A hash tile (32-byte hashes), an entry bundle (uint16-length-prefixed SHA-256 of each
    envelope) or an envelope bundle (uint32-length-prefixed envelopes)."""
    try:
        ref = parse_tile_path(f"tile/{path}", where="path")
    except FormatError as e:
        raise not_found(f"no such tile: {e.message}") from e
    tree = store.log_tree()
    if ref.needs_size() > tree.size:
        raise not_found(f"the log (size {tree.size}) has no {ref.path()} yet")
    if ref.level == ENTRIES:
        envelopes = store.log.envelopes(ref.first_leaf(), ref.count)
        body = encode_bundle(hashlib.sha256(e).digest() for e in envelopes)
    elif ref.level == ENVELOPES:
        body = encode_bundle(store.log.envelopes(ref.first_leaf(), ref.count), length_bytes=4)
    else:
        body = tile_data(tree, ref)
    return cached_response(request, body, cache_control=IMMUTABLE, media_type=OCTETS)
