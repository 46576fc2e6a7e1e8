"""Serve an ASGI app with uvicorn on 127.0.0.1 (a free port) in a thread, for real HTTP."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn


@contextmanager
def _running(config_for: Callable[[int], uvicorn.Config]) -> Iterator[str]:
    """Serve the config made for a free port on 127.0.0.1; yield its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(config_for(port))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Yield the base URL (http://127.0.0.1:PORT) while `app` is served."""
    with _running(lambda _port: uvicorn.Config(app, log_level="warning", lifespan="off")) as url:
        yield url


@contextmanager
def serve_production(app: Any, limits: Any = None) -> Iterator[str]:
    """`app` on 127.0.0.1 with por's production uvicorn settings (por.service.server):
    httptools with the header timeout and connection cap, no proxy headers."""
    from por.service.server import uvicorn_config

    def config(port: int) -> uvicorn.Config:
        c = uvicorn_config(app, host="127.0.0.1", port=port, limits=limits)
        c.lifespan = "off"
        return c

    with _running(config) as url:
        yield url
