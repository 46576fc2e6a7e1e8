"""Victims' proof latency while an abuser cycles `?sequence=` over old attestations.

    .venv/bin/python bench/api_abuse.py [--holders 50000] [--attestations 6] [--seconds 8]

Issue 12 §6: cycling `?sequence=` forced a tree reload per request under the store's one
tree lock, so every other proof waited behind it (victims' p50 8 ms → 256 ms, max 2.9 s).

One SQLite store with --attestations attestations of --holders holders (real trees,
real signatures); the API in a separate process with por's production server settings.
Clients come through a trusted proxy (loopback, X-Forwarded-For). Victims — a
different address per request, each inside its budget — ask for proofs of the latest
attestation, one at a time, for --seconds:

1. BASELINE: nobody else;
2. ABUSER, NO LIMITS: 4 connections of one client cycle `?sequence=` over the older attestations as fast
   as they can, rate limiting off (what the tree-load path alone gives: loads of one
   sequence no longer block requests for another);
3. ABUSER, LIMITS ON: the same, with the default limits (a cold tree costs 10 tokens;
   the abuser soon gets 429s, costly requests are gated).

Prints p50 / p99 / max of the victim and the ratio to the baseline of the same run, and
the abuser's answers by status. Asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def serve(data: str, att: str, port: int, limits: bool) -> None:
    import uvicorn

    from por.api import ApiDeps, create_app
    from por.service.server import uvicorn_config
    from por.store import Store
    from tests.store.factory import keyset

    store = Store.open(None, data_dir=Path(data), attestations_dir=Path(att), materialize=False)
    # behind a (loopback) proxy: every client names itself in X-Forwarded-For
    kw = {"trusted_proxies": ("127.0.0.1",)}
    if not limits:
        kw["proof_rate_limit"] = None  # type: ignore[assignment]
    app = create_app(ApiDeps(store=store, keys=keyset().to_dict(), **kw))  # type: ignore[arg-type]
    uvicorn.Server(uvicorn_config(app, host="127.0.0.1", port=port)).run()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def victim(url: str, account: str, seconds: float) -> list[float]:
    out = []
    with httpx.Client(base_url=url, timeout=30) as c:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            t = time.perf_counter()
            # many holders, each well inside its own budget
            xff = {"X-Forwarded-For": f"203.0.{len(out) // 250 % 250}.{len(out) % 250}"}
            r = c.get(f"/v1/proofs/{account}", headers=xff)
            out.append(time.perf_counter() - t)
            assert r.status_code == 200, r.text
            time.sleep(0.01)
    return out


def abuser(
    url: str, account: str, older: int, stop: threading.Event, seen: collections.Counter[int]
) -> None:
    with httpx.Client(base_url=url, timeout=30) as c:
        i = 0
        while not stop.is_set():
            r = c.get(
                f"/v1/proofs/{account}",
                params={"sequence": 1 + i % older},
                headers={"X-Forwarded-For": "198.51.100.66"},
            )
            seen[r.status_code] += 1
            i += 1


def scenario(
    tmp: Path, account: str, older: int, seconds: float, *, abuse: bool, limits: bool
) -> tuple[list[float], collections.Counter[int]]:
    port = free_port()
    ctx = multiprocessing.get_context("spawn")
    proc = ctx.Process(target=serve, args=(str(tmp / "data"), str(tmp / "att"), port, limits))
    proc.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=5).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit("server did not start")
        time.sleep(0.2)
    stop = threading.Event()
    seen: collections.Counter[int] = collections.Counter()
    threads = [
        threading.Thread(target=abuser, args=(url, account, older, stop, seen))
        for _ in range(4 if abuse else 0)
    ]
    for t in threads:
        t.start()
    try:
        lat = victim(url, account, seconds)
    finally:
        stop.set()
        for t in threads:
            t.join()
        proc.terminate()
        proc.join(10)
    return lat, seen


def q(xs: list[float], p: float) -> float:
    """The p-th percentile (nearest rank)."""
    ordered = sorted(xs)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--holders", type=int, default=50_000)
    ap.add_argument("--attestations", type=int, default=6)
    ap.add_argument("--seconds", type=float, default=8.0)
    args = ap.parse_args()
    from por.store import Store
    from tests.store.factory import World, account

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        t0 = time.perf_counter()
        store = Store.open(None, data_dir=tmp / "data", attestations_dir=tmp / "att", migrate=True)
        holders = {
            account("eip155:1", i): (i % 997 + 1) * 1_000_000 for i in range(1, args.holders + 1)
        }
        world = World(holders=holders)
        for _ in range(args.attestations):
            world.record(store)
        store.close()
        print(
            f"store: {args.attestations} attestations x {args.holders} holders in {time.perf_counter() - t0:.1f} s"
        )
        acct = account("eip155:1", 7)
        older = args.attestations - 1
        base, _ = scenario(tmp, acct, older, args.seconds, abuse=False, limits=True)
        rows = [("baseline", base, collections.Counter())]
        for name, limits in (("abuser, no limits", False), ("abuser, limits on", True)):
            lat, seen = scenario(tmp, acct, older, args.seconds, abuse=True, limits=limits)
            rows.append((name, lat, seen))
        b50 = q(base, 50)
        for name, lat, seen in rows:
            p50, p99 = q(lat, 50), q(lat, 99)
            abuse = ", ".join(f"{k}: {v}" for k, v in sorted(seen.items())) or "-"
            print(
                f"{name:18s} victim p50 {p50 * 1000:7.2f} ms  p99 {p99 * 1000:7.2f} ms  "
                f"max {max(lat) * 1000:7.1f} ms  (p50 x{p50 / b50:.2f} of baseline)  "
                f"n={len(lat)}  abuser answers {abuse}"
            )


if __name__ == "__main__":
    main()
