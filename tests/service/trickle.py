"""A loopback HTTP server that never finishes its answer: headers, then one byte at a time.

It is never silent long enough for a read timeout to fire, which is the point: only a
total timeout (or a run deadline) cuts it off. `gap_s` is the time between bytes (a
very long gap: headers, then silence on an open connection).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_requests: dict[str, int] = {}


def requests_seen(url: str) -> int:
    """How many requests the server at `url` has received."""
    return _requests.get(url, 0)


@contextmanager
def trickling_server(*, gap_s: float = 0.3, total_bytes: int = 400) -> Iterator[str]:
    """Serve on 127.0.0.1; yield the base URL. Each answer trickles `total_bytes` bytes."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    stop = threading.Event()
    conns: list[socket.socket] = []
    url = f"http://127.0.0.1:{srv.getsockname()[1]}"
    _requests[url] = 0

    def serve(conn: socket.socket) -> None:
        try:
            conn.settimeout(5)
            conn.recv(65536)  # the request (small, one read is enough here)
            _requests[url] += 1
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n" % total_bytes
            )
            for _ in range(total_bytes):
                if stop.wait(gap_s):
                    return
                conn.sendall(b" ")
        except OSError:
            return
        finally:
            conn.close()

    def accept() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conns.append(conn)
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        yield url
    finally:
        stop.set()
        t.join(timeout=2)
        srv.close()
