"""A small HTTP client for the auditor's commands (`--from URL`): standard library only.

The auditor's tools install with `pip install por` (no httpx): urllib with a timeout, a
cap on the bytes read, http(s) URLs only, and every failure a PorError naming the URL
and what the server said. A bearer token, when a route needs one, comes from an
environment variable the caller names, never from the command line.

I/O: HTTP requests to the one base URL given.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from por.core.canonical import loads_strict
from por.errors import InputError, SourceError

DEFAULT_TIMEOUT_S = 30.0
MAX_BYTES = 64 * 1024 * 1024
USER_AGENT = "por-auditor"


class RemoteNotFoundError(SourceError):
    """The server answered 404."""


def token_from_env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise InputError(f"set ${name} to the auditor bearer token", where=f"${name}")
    return value


class Remote:
    """GET and POST against one base URL (`https://por.example` or with a path prefix)."""

    def __init__(
        self, base_url: str, *, token: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> None:
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise InputError(f"not an http(s) URL: {base_url!r}", where="--from")
        self.base = base_url.rstrip("/")
        self._token = token
        self._timeout = timeout_s

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}"

    def request(
        self,
        path: str,
        *,
        method: str = "GET",
        body: bytes | None = None,
        content_type: str | None = None,
        auth: bool = False,
    ) -> tuple[int, bytes]:
        """(status, body) for any status; raises only when no answer came."""
        url = self.url(path)
        headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
        if content_type:
            headers["Content-Type"] = content_type
        if auth:
            if not self._token:
                raise InputError("this request needs the auditor token", where=url)
            headers["Authorization"] = f"Bearer {self._token}"
        req = urllib.request.Request(url, data=body, method=method, headers=headers)  # noqa: S310 - scheme checked above
        try:
            with urllib.request.urlopen(req, timeout=self._timeout) as r:  # noqa: S310
                return r.status, _read_capped(r, url)
        except urllib.error.HTTPError as e:
            return e.code, _read_capped(e, url)
        except (urllib.error.URLError, OSError, TimeoutError) as e:
            raise SourceError(f"{method} failed: {e}", where=url) from e

    def get(self, path: str, *, auth: bool = False) -> bytes:
        status, data = self.request(path, auth=auth)
        if status != 200:
            detail = _detail(data)
            cls = RemoteNotFoundError if status == 404 else SourceError
            raise cls(f"HTTP {status}: {detail}", where=self.url(path))
        return data

    def get_json(self, path: str, *, auth: bool = False) -> Any:
        return loads_strict(self.get(path, auth=auth), where=self.url(path))


def _read_capped(r: Any, url: str) -> bytes:
    data: bytes = r.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise SourceError(f"answer over {MAX_BYTES} bytes", where=url)
    return data


def _detail(data: bytes) -> str:
    text = data[:500].decode("utf-8", "replace").strip()
    try:
        doc = json.loads(text)
    except ValueError:
        return text
    if isinstance(doc, dict) and "detail" in doc:
        return str(doc["detail"])
    return text


__all__ = ["Remote", "RemoteNotFoundError", "token_from_env"]
