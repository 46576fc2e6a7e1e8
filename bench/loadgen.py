"""A constant-rate (open-loop) HTTP/1.1 load generator, wrk2-style, for bench/api.py.

    python bench/loadgen.py URL PATHS_FILE --rate 2400 --connections 32 --seconds 10

Why: Debian's wrk has no `-R`; it sends each request when the previous one on its
connection returns, so a slow server is asked less and its queueing never shows in the
latencies (coordinated omission). Debian has no wrk2 or vegeta; hey's `-q` paces each
worker the same closed-loop way. This sends on a fixed schedule instead: connection c
sends its k-th request at t0 + (k + c / C) * C / rate whether or not the server has kept
up, and a request's latency runs from that scheduled time to the end of its response
(wrk2's corrected latency): a request that waits behind a slow one is counted as waiting.
HTTP/1.1 keep-alive without pipelining, on uvloop when installed. It prints one JSON
line: sent, completed, errors (non-2xx/3xx or broken connections), achieved rate and
latency percentiles in ms.

Loopback only (127.0.0.1); bounded by --seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
from urllib.parse import urlsplit


class Conn(asyncio.Protocol):
    def __init__(self, gen: Gen, index: int) -> None:
        self.gen, self.index = gen, index
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.k = 0  # requests scheduled on this connection so far
        self.started: float | None = None  # scheduled time of the request in flight
        self.need: int | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def scheduled(self, k: int) -> float:
        g = self.gen
        return g.t0 + (k + self.index / g.conns) * g.conns / g.rate

    def next(self) -> None:
        g = self.gen
        when = self.scheduled(self.k)
        if when >= g.stop_at:
            self.started = None
            return
        now = g.loop.time()
        if when > now:
            g.loop.call_at(when, self.send, when)
        else:
            self.send(when)  # behind schedule: send at once; latency counts from `when`

    def send(self, when: float) -> None:
        g = self.gen
        self.k += 1
        self.started = when
        assert self.transport is not None
        self.transport.write(g.requests[g.rng.randrange(len(g.requests))])
        g.sent += 1

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            if self.need is None:
                end = self.buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = bytes(self.buf[:end]).lower()
                status = int(head[9:12])
                length = 0
                at = head.find(b"\r\ncontent-length:")
                if at >= 0:
                    stop = head.find(b"\r\n", at + 2)
                    length = int(head[at + 17 : stop if stop >= 0 else len(head)])
                self.need = end + 4 + length
                self.status = status
            if len(self.buf) < self.need:
                return
            del self.buf[: self.need]
            self.need = None
            self.done()

    def done(self) -> None:
        g = self.gen
        now = g.loop.time()
        if self.started is not None:
            g.latencies.append(now - self.started)
            if not 200 <= self.status < 400:
                g.errors += 1
        self.next()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.started is not None and self.gen.loop.time() < self.gen.stop_at:
            self.gen.errors += 1
        self.gen.closed += 1


class Gen:
    def __init__(
        self, host: str, port: int, paths: list[str], rate: float, conns: int, seconds: float
    ) -> None:
        self.host, self.port = host, port
        self.requests = [
            f"GET {p} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: por-loadgen\r\n\r\n".encode()
            for p in paths
        ]
        self.rate, self.conns, self.seconds = rate, conns, seconds
        self.rng = random.Random(1)
        self.latencies: list[float] = []
        self.sent = self.errors = self.closed = 0

    async def run(self) -> dict[str, object]:
        self.loop = asyncio.get_running_loop()
        protos = []
        for i in range(self.conns):
            _, proto = await self.loop.create_connection(
                lambda i=i: Conn(self, i), self.host, self.port
            )
            protos.append(proto)
        self.t0 = self.loop.time() + 0.05
        self.stop_at = self.t0 + self.seconds
        for p in protos:
            p.next()
        await asyncio.sleep(self.seconds + 0.05)
        # let the last scheduled requests finish (bounded)
        deadline = self.loop.time() + 5
        while any(p.started is not None for p in protos) and self.loop.time() < deadline:
            await asyncio.sleep(0.01)
        late = sum(p.started is not None for p in protos)
        for p in protos:
            if p.transport is not None:
                p.transport.close()
        lat = sorted(self.latencies)

        def pct(q: float) -> float:
            return lat[min(len(lat) - 1, int(len(lat) * q))] * 1000 if lat else float("nan")

        return {
            "target_rate": self.rate,
            "connections": self.conns,
            "seconds": self.seconds,
            "sent": self.sent,
            "completed": len(lat),
            "unfinished": late,
            "errors": self.errors,
            "rate": len(lat) / self.seconds,
            "p50_ms": pct(0.50),
            "p90_ms": pct(0.90),
            "p99_ms": pct(0.99),
            "p999_ms": pct(0.999),
            "max_ms": lat[-1] * 1000 if lat else float("nan"),
        }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("url")
    ap.add_argument("paths", help="file with one path per line")
    ap.add_argument("--rate", type=float, required=True, help="requests per second")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=10)
    args = ap.parse_args()
    u = urlsplit(args.url)
    if u.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("loadgen: loopback targets only")
    with open(args.paths, encoding="utf-8") as f:
        paths = [line.strip() for line in f if line.strip()]
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover
        runner = asyncio.run
    gen = Gen(u.hostname, u.port or 80, paths, args.rate, args.connections, args.seconds)
    print(json.dumps(runner(gen.run())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
