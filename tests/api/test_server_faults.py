"""The API server under faults: slow headers, silent sockets, a flood of connections.

Issue 12 §5. The attack: 20,000 idle or slow-header connections. uvicorn had no header
timeout (a socket that never sends, or trickles a byte at a time, stayed open for good)
and no connection cap, so descriptors ran out: new clients timed out. Here, against a
real server on 127.0.0.1 with the production settings (por.service.server):

- a silent socket and a trickling one are closed after `header_timeout_s`;
- beyond `max_connections` a new connection is refused at once (reset), never left
  hanging, and a client is served again as soon as there is room.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from por.api import ApiDeps, create_app
from por.service.server import ServerLimits, resolve_max_connections
from por.store import Store
from tests.api.servers import serve_production
from tests.store.factory import World, keyset


@pytest.fixture
def app(tmp_path: Path) -> Iterator[object]:
    store = Store.open(
        None, data_dir=tmp_path / "data", attestations_dir=tmp_path / "att", migrate=True
    )
    World().record(store)
    yield create_app(ApiDeps(store=store, keys=keyset().to_dict(), warm_up=False))
    store.close()


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    s = socket.create_connection((host, int(port)), timeout=5)
    return s


def _closed_within(s: socket.socket, seconds: float) -> float | None:
    """Seconds until the server closed `s` (EOF or reset), None if it stayed open."""
    started = time.monotonic()
    s.settimeout(seconds)
    try:
        while True:
            data = s.recv(4096)
            if not data:
                return time.monotonic() - started
    except (ConnectionResetError, BrokenPipeError):
        return time.monotonic() - started
    except TimeoutError:
        return None


def test_silent_and_trickling_sockets_are_closed_after_the_header_timeout(app: object) -> None:
    limits = ServerLimits(header_timeout_s=0.6, idle_timeout_s=1)
    with serve_production(app, limits) as url:
        silent = _connect(url)
        trickle = _connect(url)
        started = time.monotonic()
        closed = False
        # one byte every 0.2 s: never silent long enough for a read timeout
        for b in b"GET /v1/attestations/latest HTTP/1.1\r\nHost: x\r\nX-Slow: ":
            try:
                trickle.send(bytes([b]))
            except OSError:
                closed = True
                break
            time.sleep(0.2)
            if time.monotonic() - started > 4:
                break
        assert closed or _closed_within(trickle, 1) is not None, "trickling socket kept open"
        assert time.monotonic() - started < 4
        assert _closed_within(silent, 2) is not None, "silent socket kept open"
        # a prompt client is served as ever, and its keep-alive ends after the idle timeout
        with httpx.Client(base_url=url) as c:
            assert c.get("/v1/attestations/latest").status_code == 200
        s = _connect(url)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b"200 OK" in s.recv(4096)
        assert _closed_within(s, 4) is not None, "idle keep-alive connection kept open"
        for x in (silent, trickle, s):
            x.close()


def test_connections_beyond_the_cap_are_refused_at_once(app: object) -> None:
    limits = ServerLimits(header_timeout_s=30, max_connections=8)
    with serve_production(app, limits) as url:
        idle = [_connect(url) for _ in range(8)]
        time.sleep(0.3)  # accepted
        extra = [_connect(url) for _ in range(20)]
        for s in extra:  # closed by the server at once, not left to time out
            waited = _closed_within(s, 3)
            assert waited is not None and waited < 2.5
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{url}/healthz", timeout=3)
        for s in idle + extra:
            s.close()
        time.sleep(0.3)
        assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200


def test_the_cap_leaves_descriptors_for_the_process() -> None:
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert resolve_max_connections(0) <= soft - 256 or soft < 300
    assert resolve_max_connections(10**9) <= max(16, soft - 256)
    assert resolve_max_connections(5) == 5
