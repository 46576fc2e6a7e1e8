"""The HTTP API, dashboard and holder page: `create_app(deps)` builds one FastAPI app.

No import-time singletons: everything the app uses (store, key set, admin token,
trigger, rate limits, clock) comes in `ApiDeps`; what is built from it (caches, token
buckets, the Prometheus registry) lives in one `AppState` on `app.state`, so tests can
run several apps side by side.

Where things are:
- `por.api.routes.<resource>`: one APIRouter per resource (attestations, proofs, keys,
  log, oracles, service, admin, pages);
- `por.api.deps`: `ApiDeps`, `AppState` and the `Annotated[..., Depends(...)]` aliases
  routes take;
- `por.api.http`: ETag / conditional responses, Cache-Control, security headers, rate
  limiting, request metrics, error mapping;
- `por.api.schemas`: the wire models of the OpenAPI document.

Routes and shapes: docs/api.md.
"""

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from por.api.deps import ApiDeps, AppState
from por.api.fast import HotPaths
from por.api.http import EdgeMiddleware, HttpMetrics, add_error_handlers
from por.api.routes import ROUTERS
from por.api.routes.pages import swagger_ui_dir
from por.api.routes.service import LatestAttestationCollector


def create_app(deps: ApiDeps) -> FastAPI:
    """A new FastAPI app over `deps` (routes: DESIGN §8, docs/api.md)."""
    metrics = HttpMetrics()
    state = AppState.build(deps, metrics)
    metrics.registry.register(
        LatestAttestationCollector(deps.store, deps.wall_clock, state.integrity)
    )
    for collector in deps.collectors:
        metrics.registry.register(collector)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if deps.warm_up:  # never delays startup: requests meanwhile load what they need
            threading.Thread(target=state.warm_up, name="por-api-warm-up", daemon=True).start()
        else:
            state.warmed.set()
        yield

    app = FastAPI(
        lifespan=lifespan,
        title=deps.title,
        version="1",
        description="Signed proof-of-reserve attestations, holder inclusion proofs and the "
        "attestation log. Amounts are decimal strings of integer base units.",
        docs_url=None,  # /docs is por.api.routes.pages: Swagger UI served from here, not a CDN
        redoc_url=None,
    )
    app.state.por = state
    app.add_middleware(HotPaths)  # inside EdgeMiddleware: headers and metrics apply
    app.add_middleware(EdgeMiddleware, metrics=metrics)
    add_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=deps.static_dir), name="static")
    app.mount("/docs/assets", StaticFiles(directory=swagger_ui_dir()), name="swagger-ui")
    return app
