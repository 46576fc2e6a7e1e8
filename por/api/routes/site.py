"""What the public pages need besides the attestations: `/v1/site` and `/favicon.ico`.

`/v1/site` carries the `[disclosure]` settings the dashboard and the holder page read:
the reports' calendar (UTC offset), block-explorer URL templates and chain names per
CAIP-2 chain id, and how many recent attestations the holder page checks. Nothing in it
is signed or secret; it only shapes how the signed figures are shown.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

from por.api import schemas
from por.api.deps import StateDep
from por.api.http import KEY_SET, cached_response, dumps

router = APIRouter(tags=["service"])

DEFAULT_SITE = {
    "report_utc_offset": "+00:00",
    "holder_history": 10,
    "chain_names": {},
    "explorers": {},
}


@router.get("/v1/site", response_model=schemas.SiteOut)
def site(request: Request, state: StateDep) -> Response:
    """Display settings of the public pages: report calendar, explorer links, chain names."""
    body = dumps(DEFAULT_SITE | dict(state.deps.site or {}))
    return cached_response(request, body, cache_control=KEY_SET)


@router.get("/favicon.ico", include_in_schema=False)
async def favicon(state: StateDep) -> FileResponse:
    return FileResponse(
        state.deps.static_dir / "favicon.ico",
        media_type="image/x-icon",
        headers={"Cache-Control": "public, max-age=86400"},
    )
