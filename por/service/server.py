"""Serving the API in production: uvicorn on httptools and uvloop, one process per core.

`por serve` and `por run` serve through here (por.service.wiring.Service). The settings
are chosen, not left to uvicorn's defaults, which on this project's 2-core benchmark
machine gave a third of the throughput (h11 and the asyncio loop) and, with uvicorn's own
`--workers`, handed one worker nearly every connection (all workers accept from one
shared socket and the busiest one wins the race):

- `http="httptools"`, `loop="uvloop"` (both are dependencies of `por[service]`; uvicorn
  falls back to h11/asyncio only where they cannot be imported);
- `workers` processes (`[service] api_workers`, 0 = one per core), each listening on its
  own SO_REUSEPORT socket, so the kernel spreads connections over them evenly;
- no access log (Prometheus counts requests; a log line per request costs more than the
  request), a listen backlog of 2048.

The workers are spawned (not forked: the parent may run the scheduler's threads) and
each builds its own app from the configuration file. A new attestation recorded by the
scheduler in another process reaches them through the store within
`ApiDeps.head_max_age_s` (see por.api.deps.LatestSequence).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import uvicorn
    from fastapi import FastAPI

log = logging.getLogger("por.server")

BACKLOG = 2048


def event_loop() -> str:
    """ "uvloop" when it can be imported, else uvicorn's default."""
    try:
        import uvloop  # noqa: F401
    except ImportError:  # pragma: no cover - uvloop is a service dependency
        return "auto"
    return "uvloop"


def http_protocol() -> str:
    try:
        import httptools  # noqa: F401
    except ImportError:  # pragma: no cover - httptools is a service dependency
        return "auto"
    return "httptools"


def uvicorn_config(app: FastAPI, *, host: str, port: int) -> uvicorn.Config:
    """The production settings for one server process (see the module docstring)."""
    import uvicorn

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=http_protocol(),
        loop=event_loop(),
        log_level="warning",
        access_log=False,
        backlog=BACKLOG,
        timeout_keep_alive=5,
        # uvicorn would otherwise take the client from X-Forwarded-For of any loopback
        # peer; por.api.limits reads it only from `[api] trusted_proxies`
        proxy_headers=False,
    )


def resolve_workers(configured: int) -> int:
    """`[service] api_workers`: 0 means one per core; 1 where SO_REUSEPORT is missing."""
    workers = configured or os.cpu_count() or 1
    if workers > 1 and not hasattr(socket, "SO_REUSEPORT"):  # pragma: no cover - not Linux
        log.warning("no SO_REUSEPORT here: serving the API from one process")
        return 1
    return workers


def reuseport_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to host:port with SO_REUSEPORT (not yet listening)."""
    family, kind, proto, _, addr = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(addr)
    except BaseException:
        sock.close()
        raise
    return sock


def _worker_main(config_path: str, host: str, port: int, trusted_proxies: tuple[str, ...]) -> None:
    """One API worker process: its own service wiring, app and listening socket."""
    from por.service.config import load_config, with_trusted_proxies
    from por.service.wiring import build_service

    cfg = with_trusted_proxies(load_config(Path(config_path)), trusted_proxies)
    svc = build_service(cfg, publish=False)
    sock = reuseport_socket(host, port)
    try:
        import uvicorn

        uvicorn.Server(uvicorn_config(svc.app(), host=host, port=port)).run(sockets=[sock])
    finally:
        sock.close()
        svc.close()


@dataclass(slots=True)
class WorkerPool:
    """`workers` API processes sharing one port through SO_REUSEPORT.

    The parent keeps a bound (never listening) socket on the port, which reserves it and
    fixes it when the configuration says port 0.
    """

    config_path: Path
    host: str
    port: int
    workers: int
    trusted_proxies: tuple[str, ...] = ()  # `--trusted-proxy`: the file is re-read there
    procs: list[Any] = field(default_factory=list)
    _holder: socket.socket | None = None

    def start(self) -> None:
        self._holder = reuseport_socket(self.host, self.port)
        self.port = self._holder.getsockname()[1]
        ctx = multiprocessing.get_context("spawn")
        for i in range(self.workers):
            proc = ctx.Process(
                target=_worker_main,
                args=(str(self.config_path), self.host, self.port, self.trusted_proxies),
                name=f"por-api-{i}",
            )
            proc.start()
            self.procs.append(proc)

    def alive(self) -> bool:
        return all(p.is_alive() for p in self.procs)

    def stop(self, timeout_s: float = 30.0) -> None:
        for p in self.procs:
            if p.is_alive():
                p.terminate()  # SIGTERM: uvicorn finishes the requests in flight
        for p in self.procs:
            p.join(timeout_s)
            if p.is_alive():
                p.kill()
                p.join()
        if self._holder is not None:
            self._holder.close()
            self._holder = None


def serve_in_thread(
    app: FastAPI, *, host: str, port: int
) -> tuple[Callable[[], bool], Callable[[], None]]:
    """One server in a background thread of this process: (alive, stop)."""
    import uvicorn

    server = uvicorn.Server(uvicorn_config(app, host=host, port=port))
    thread = threading.Thread(target=server.run, name="por-api", daemon=True)
    thread.start()

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=30)

    return thread.is_alive, stop


__all__ = [
    "BACKLOG",
    "WorkerPool",
    "event_loop",
    "http_protocol",
    "resolve_workers",
    "reuseport_socket",
    "serve_in_thread",
    "uvicorn_config",
]
