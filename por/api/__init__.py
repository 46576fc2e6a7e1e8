"""The HTTP API, dashboard and holder page of por (FastAPI; see docs/api.md).

`create_app(ApiDeps(...))` builds an app; nothing is created at import time.
"""

from por.api.app import ApiDeps, RateLimit, create_app

__all__ = ["ApiDeps", "RateLimit", "create_app"]
