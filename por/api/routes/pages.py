"""The dashboard (`/`), the holder page (`/holder`) and the API docs (`/docs`).

Pages are files from `ApiDeps.static_dir`, revalidated on every load (ETags from
Starlette's FileResponse), and stay out of the OpenAPI document. `/docs` is Swagger UI
from the assets the `fastapi-swagger` package ships (mounted at /docs/assets by
create_app), started by /static/docs.js: no CDN and no inline script, so it works offline
under the same Content-Security-Policy as every other page.
"""

import importlib.resources
from pathlib import Path

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


@router.get("/docs")
async def docs(state: StateDep) -> FileResponse:
    return _page(state, "docs.html")


def swagger_ui_dir() -> Path:
    """The folder of swagger-ui-bundle.js and swagger-ui.css (package data)."""
    return Path(str(importlib.resources.files("fastapi_swagger") / "resources"))
