"""The HTTP API, dashboard and holder page of por (FastAPI; see docs/api.md).

`create_app(ApiDeps(...))` builds an app; nothing is created at import time.
"""

from por.api.app import create_app
from por.api.deps import ApiDeps
from por.api.http import RateLimit

__all__ = ["ApiDeps", "RateLimit", "create_app"]
