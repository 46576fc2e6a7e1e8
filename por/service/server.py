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

Under faults (`[api]`, docs/api.md "Under faults"): a connection must send its request
line and headers within `header_timeout_s` of connecting (or of its first byte of a later
request) — slow-header and silent sockets are closed, however they trickle; a keep-alive
connection idle `idle_timeout_s` is closed; beyond `max_connections` open connections
(default: the process's file-descriptor limit less a reserve) a new connection is aborted
at once, so a flood of idle sockets never exhausts descriptors and a new client gets a
fast refusal instead of a hang. `por run` serves from worker processes only (never a
thread of the scheduler's process), at a lower CPU priority: an API flood cannot take
the descriptors or the CPU an attestation run needs.

The workers are spawned (not forked: the parent may run the scheduler's threads) and
each builds its own app from the configuration file. A worker whose parent is killed
(not stopped) stops by itself within about a second, finishing its requests in flight
(`stop_with_parent`): nothing keeps answering on the port for a process that is gone.
A new attestation recorded by the scheduler in another process reaches them through the
store within `ApiDeps.head_max_age_s` (see por.api.deps.LatestSequence).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import uvicorn
    from fastapi import FastAPI

log = logging.getLogger("por.server")

BACKLOG = 2048
FD_RESERVE = 256  # descriptors kept for the database, tree files, logs, outgoing calls
MAX_CONNECTIONS_DEFAULT = 8192


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerLimits:
    """`[api]` header/idle timeouts and the connection cap of one server process."""

    header_timeout_s: float = 10.0
    idle_timeout_s: float = 5.0
    max_connections: int = 0  # 0: from the file-descriptor limit (resolve_max_connections)


def resolve_max_connections(configured: int) -> int:
    """`configured`, or the soft RLIMIT_NOFILE less FD_RESERVE (at most 8192), never so
    many that accepted sockets could take the descriptors the process needs."""
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    room = max(16, soft - FD_RESERVE) if soft != resource.RLIM_INFINITY else 1 << 20
    if configured:
        if configured > room:
            log.warning(
                "[api] max_connections %d is above what the descriptor limit leaves (%d): using %d",
                configured,
                room,
                room,
            )
        return min(configured, room)
    return min(MAX_CONNECTIONS_DEFAULT, room)


def guarded_protocol(limits: ServerLimits) -> type[Any] | str:
    """uvicorn's httptools protocol with a header timeout and a connection cap."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # pragma: no cover - httptools is a service dependency
        log.warning("httptools missing: no header timeout or connection cap")
        return "auto"
    header_timeout_s = limits.header_timeout_s
    max_connections = resolve_max_connections(limits.max_connections)

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        """Closes a connection whose request line and headers take longer than
        `header_timeout_s` (counted from its first byte, or from the connection for the
        first request), and aborts a connection beyond `max_connections` at once."""

        _header_timer: Any = None
        refused = 0  # connections aborted over the cap (per class, i.e. per server)

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                type(self).refused += 1
                transport.abort()  # RST: the descriptor is free now, the client knows now
                return
            self._arm_header_timer()

        def _arm_header_timer(self) -> None:
            if self._header_timer is None:
                self._header_timer = self.loop.call_later(header_timeout_s, self._header_late)

        def _cancel_header_timer(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _header_late(self) -> None:
            self._header_timer = None
            if not self.transport.is_closing():
                self.transport.close()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm_header_timer()

        def on_headers_complete(self) -> None:
            self._cancel_header_timer()
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_header_timer()
            super().connection_lost(exc)

    return GuardedHttpToolsProtocol


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


def uvicorn_config(
    app: FastAPI, *, host: str, port: int, limits: ServerLimits | None = None
) -> uvicorn.Config:
    """The production settings for one server process (see the module docstring)."""
    import uvicorn

    limits = limits or ServerLimits()
    http: Any = guarded_protocol(limits) if http_protocol() == "httptools" else "auto"
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=http,
        loop=event_loop(),
        log_level="warning",
        access_log=False,
        backlog=BACKLOG,
        timeout_keep_alive=max(1, round(limits.idle_timeout_s)),
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


def server_limits(api: Any) -> ServerLimits:
    """`[api]` (por.service.config.ApiConfig) as the server takes it."""
    return ServerLimits(
        header_timeout_s=api.header_timeout_s,
        idle_timeout_s=api.idle_timeout_s,
        max_connections=api.max_connections,
    )


def _portable(e: BaseException) -> BaseException:
    """`e` if it survives pickling (PorError subclasses do), else a PorError saying it."""
    import pickle

    from por.errors import PorError

    try:
        pickle.loads(pickle.dumps(e))  # noqa: S301 - our own bytes, just made
    except Exception:
        return PorError(f"{type(e).__name__}: {e}")
    return e


class RemoteTrigger:
    """In an API worker: runs an attestation in the process that owns the runs (the
    scheduler's, under `por run`) and waits for its sequence — one run lock, one
    publisher, never a second run beside the scheduler's."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self._lock = threading.Lock()

    def __call__(self, as_of: datetime | None) -> int:
        with self._lock:
            self._conn.send(as_of)
            kind, value = self._conn.recv()
        if kind == "ok":
            return int(value)
        raise value


def _answer_triggers(conn: Any, attest: Callable[[datetime | None], int]) -> None:
    """In the parent: one thread per worker, running what its RemoteTrigger asks."""
    while True:
        try:
            as_of = conn.recv()
        except (EOFError, OSError):
            return
        try:
            reply: tuple[str, Any] = ("ok", attest(as_of))
        except Exception as e:
            reply = ("err", _portable(e))
        try:
            conn.send(reply)
        except OSError:
            return


def _worker_main(  # noqa: PLR0917 - the spawn arguments of one worker
    config_path: str,
    host: str,
    port: int,
    trusted_proxies: tuple[str, ...],
    nice: int,
    trigger_conn: Any = None,
) -> None:
    """One API worker process: its own service wiring, app and listening socket; it
    stops when its parent is gone (`stop_with_parent`)."""
    from por.service.config import load_config, with_trusted_proxies
    from por.service.wiring import build_service

    parent = os.getppid()

    if nice:
        os.nice(nice)  # below the scheduler's process: a flood here never starves a run
    cfg = with_trusted_proxies(load_config(Path(config_path)), trusted_proxies)
    svc = build_service(cfg, publish=False)
    if trigger_conn is not None:
        svc.remote_trigger = RemoteTrigger(trigger_conn)
    sock = reuseport_socket(host, port)
    try:
        import uvicorn

        config = uvicorn_config(svc.app(), host=host, port=port, limits=server_limits(cfg.api))
        server = uvicorn.Server(config)
        stop_with_parent(server, parent)
        server.run(sockets=[sock])
    finally:
        sock.close()
        svc.close()


PARENT_POLL_S = 1.0  # how often an API worker looks whether its parent is still there
PARENT_GRACE_S = 10.0  # then: the requests in flight get this long before the exit


def stop_with_parent(
    server: Any,
    parent: int,
    *,
    poll_s: float = PARENT_POLL_S,
    grace_s: float = PARENT_GRACE_S,
    exit_now: Callable[[int], Any] = os._exit,
) -> threading.Thread:
    """An API worker whose parent is gone stops too. A parent that stops terminates its
    workers (`WorkerPool.stop`); one that is killed (SIGKILL, the OOM killer) cannot,
    and its workers would keep answering on the shared port from a service nobody runs
    (and a new `por run` on that port would share its connections with them). A daemon
    thread watches the parent's pid: once the worker is re-parented it asks uvicorn to
    finish the requests in flight, and exits after `grace_s` if that has not ended it."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        log.warning("API worker %d: its parent process %d is gone; stopping", os.getpid(), parent)
        server.should_exit = True
        time.sleep(grace_s)
        exit_now(1)

    thread = threading.Thread(target=watch, name="por-api-parent", daemon=True)
    thread.start()
    return thread


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
    nice: int = 0  # added to the workers' nice value (`por run`: below the scheduler)
    # runs one attestation in this process for a worker's admin trigger (`por run`);
    # None: each worker runs its own
    attest: Callable[[datetime | None], int] | None = None
    procs: list[Any] = field(default_factory=list)
    _conns: list[Any] = field(default_factory=list)
    _holder: socket.socket | None = None

    def start(self) -> None:
        self._holder = reuseport_socket(self.host, self.port)
        self.port = self._holder.getsockname()[1]
        ctx = multiprocessing.get_context("spawn")
        for i in range(self.workers):
            child = None
            if self.attest is not None:
                mine, child = ctx.Pipe()
                self._conns += [mine, child]
                threading.Thread(
                    target=_answer_triggers,
                    args=(mine, self.attest),
                    name=f"por-api-trigger-{i}",
                    daemon=True,
                ).start()
            proc = ctx.Process(
                target=_worker_main,
                args=(
                    str(self.config_path),
                    self.host,
                    self.port,
                    self.trusted_proxies,
                    self.nice,
                    child,
                ),
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
        for c in self._conns:
            c.close()
        self._conns.clear()


def serve_in_thread(
    app: FastAPI, *, host: str, port: int, limits: ServerLimits | None = None
) -> tuple[Callable[[], bool], Callable[[], None]]:
    """One server in a background thread of this process: (alive, stop)."""
    import uvicorn

    server = uvicorn.Server(uvicorn_config(app, host=host, port=port, limits=limits))
    thread = threading.Thread(target=server.run, name="por-api", daemon=True)
    thread.start()

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=30)

    return thread.is_alive, stop


__all__ = [
    "BACKLOG",
    "RemoteTrigger",
    "ServerLimits",
    "WorkerPool",
    "event_loop",
    "guarded_protocol",
    "http_protocol",
    "resolve_max_connections",
    "resolve_workers",
    "reuseport_socket",
    "serve_in_thread",
    "server_limits",
    "stop_with_parent",
    "uvicorn_config",
]
