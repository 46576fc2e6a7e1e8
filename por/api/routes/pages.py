"""The dashboard (`/`) and the holder page (`/holder`); `/static` is mounted by create_app.

Pages are files from `ApiDeps.static_dir`, revalidated on every load (ETags from
Starlette's FileResponse), and stay out of the OpenAPI document.
"""

from fastapi import APIRouter
from fastapi.responses import FileResponse

from por.api.deps import StateDep
from por.api.http import REVALIDATE

router = APIRouter(include_in_schema=False)


def _page(state: StateDep, name: str) -> FileResponse:
    return FileResponse(
        state.deps.static_dir / name,
        media_type="text/html; charset=utf-8",
        headers={"Cache-Control": REVALIDATE},
    )


@router.get("/")
async def dashboard(state: StateDep) -> FileResponse:
    return _page(state, "index.html")


@router.get("/holder")
async def holder(state: StateDep) -> FileResponse:
    return _page(state, "holder.html")
