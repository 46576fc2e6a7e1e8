"""One APIRouter per resource; `por.api.app.create_app` includes them in `ROUTERS` order.

The order is the matching order (`/v1/attestations/latest` before `/{sequence}`) and the
order of paths in the OpenAPI document.
"""

from fastapi import APIRouter

from por.api.routes import (
    admin,
    attestations,
    cosign,
    keys,
    log,
    oracles,
    pages,
    proofs,
    reconciliation,
    reports,
    service,
    site,
    statements,
    tiles,
)

ROUTERS: tuple[APIRouter, ...] = (
    attestations.router,
    cosign.router,
    proofs.router,
    keys.router,
    log.router,
    tiles.router,
    statements.router,
    reconciliation.router,
    oracles.router,
    reports.router,
    site.router,
    service.router,
    admin.router,
    pages.router,
)

__all__ = ["ROUTERS"]
