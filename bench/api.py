"""Benchmark of the HTTP API on loopback: latest attestation and proof lookups.

Builds one attestation over 10^6 holders (real sum tree, real signature) into a temp
store, serves the app with uvicorn on 127.0.0.1 in a subprocess (rate limiting off),
and drives it with a concurrent httpx client: requests per second and p50/p99 latency
for GET /v1/attestations/latest and GET /v1/proofs/{random account}. Prints figures;
asserts nothing about speed.

    .venv/bin/python bench/api.py [--holders 1000000] [--requests 4000] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from por.core.attestation import (
    PAYLOAD_TYPE,
    Attestation,
    Liabilities,
    Token,
    chain_entry_from_values,
    reserves_from_dicts,
)
from por.core.dsse import Ed25519Signer, KeyEntry, KeySet, sign_envelope
from por.core.mst import derive_salt
from por.core.policy import assess
from por.core.sumtree import SumTree
from por.core.tlog import sign_checkpoint
from por.store import Store

SERVER = """
import json, sys
from pathlib import Path
import uvicorn
from por.api import ApiDeps, create_app
from por.store import Store
data, att, keys, port = sys.argv[1:5]
store = Store.open(None, data_dir=Path(data), attestations_dir=Path(att), migrate=True)
app = create_app(ApiDeps(store=store, keys=json.loads(keys), proof_rate_limit=None))
uvicorn.run(app, host="127.0.0.1", port=int(port), log_level="warning", access_log=False)
"""


def build_store(tmp: Path, holders: int) -> tuple[list[str], dict[str, object]]:
    from datetime import UTC, datetime

    issuer = Ed25519Signer(hashlib.sha256(b"bench issuer").digest())
    t0 = time.perf_counter()
    accounts = [f"eip155:1:0x{i:040x}" for i in range(1, holders + 1)]
    balances = [(i * 7919 % 100_000 + 1) * 10_000 for i in range(1, holders + 1)]
    secret = os.urandom(32)
    salts = b"".join(derive_salt(secret, a) for a in accounts)
    tree = SumTree.build_columns(accounts, balances, salts, workers=2)
    t_tree = time.perf_counter() - t0
    now = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
    total = tree.root.sum
    chain = chain_entry_from_values(
        chain_id="eip155:1",
        token="eip155:1:0x" + "ab" * 20,
        block_number=1,
        block_hash="cd" * 32,
        block_time=now,
        total_supply=total,
        excluded=[],
        holders=holders,
    )
    line = {
        "custodian": "Bench Bank",
        "account": "HK****0001",
        "asset_class": "cash",
        "instrument": None,
        "currency": "CNH",
        "amount": str(total),
        "market_value": str(total),
        "haircut_bps": 0,
        "eligible_value": str(total),
        "ineligible_reason": None,
        "statement": {
            "format": "camt.053.001.08",
            "id": "S1",
            "as_of": "2026-11-24T16:00:00Z",
            "sha256": "ee" * 32,
        },
    }
    att = Attestation(
        sequence=1,
        issued_at=now,
        as_of=now,
        token=Token(symbol="CNHC", decimals=6, currency="CNH"),
        chains=(chain,),
        reserves=reserves_from_dicts([line]),
        liabilities=Liabilities(root=tree.root.hash.hex(), total=total, leaf_count=tree.size),
        totals=assess(eligible_reserves=total, circulating_supply=total, degraded_reasons=()),
        previous=None,
    )
    env = sign_envelope(att.to_bytes(), PAYLOAD_TYPE, [issuer])
    store = Store.open(None, data_dir=tmp / "data", attestations_dir=tmp / "att", migrate=True)
    t1 = time.perf_counter()
    store.record(
        attestation=att,
        envelope=env,
        tree=tree,
        round_secret=secret,
        sign_checkpoint=lambda cp: sign_checkpoint(cp, key_name="bench", signer=issuer),
        origin="bench",
    )
    t_record = time.perf_counter() - t1
    tree_bytes = (store.trees_dir / store.get(1).tree_file).stat().st_size
    store.close()
    print(
        f"built tree of {holders:,} holders in {t_tree:.1f} s; record (tree file "
        f"{tree_bytes / 2**20:.0f} MiB + commit) in {t_record:.1f} s"
    )
    keys = KeySet(keys=(KeyEntry.for_public_key(issuer.public_key_raw, role="issuer"),))
    return accounts, keys.to_dict()


async def load(base: str, paths: list[str], concurrency: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    queue = list(reversed(paths))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:

        async def worker() -> None:
            while queue:
                path = queue.pop()
                t = time.perf_counter()
                r = await client.get(path)
                latencies.append(time.perf_counter() - t)
                if r.status_code != 200:
                    raise RuntimeError(f"{path}: {r.status_code} {r.text[:200]}")

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - t0, latencies


def report(name: str, elapsed: float, lat: list[float]) -> None:
    lat = sorted(lat)
    p50 = statistics.median(lat) * 1000
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
    print(
        f"{name:<34} {len(lat) / elapsed:8.0f} req/s   p50 {p50:7.2f} ms   p99 {p99:7.2f} ms"
        f"   ({len(lat)} requests)"
    )


WRK_SCRIPT = """
local paths = {}
for line in io.lines(os.getenv("POR_BENCH_PATHS")) do paths[#paths + 1] = line end
math.randomseed(1)
request = function() return wrk.format("GET", paths[math.random(#paths)]) end
"""


def _ms(text: str) -> float:
    m = re.fullmatch(r"([0-9.]+)(us|ms|s)", text)
    if not m:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]


def run_wrk(
    name: str, base: str, paths: list[str], *, connections: int, seconds: int, tmp: Path
) -> None:
    """wrk (C, one thread) as the load generator: it leaves the server most of the CPU."""
    paths_file = tmp / "paths.txt"
    paths_file.write_text("\n".join(paths) + "\n")
    script = tmp / "paths.lua"
    script.write_text(WRK_SCRIPT)
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), base],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "POR_BENCH_PATHS": str(paths_file)},
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))
    p50 = _ms(re.search(r"\n\s+50%\s+(\S+)", out).group(1))
    p99 = _ms(re.search(r"\n\s+99%\s+(\S+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    bad = f"   ({non2xx.group(1)} non-2xx!)" if non2xx else ""
    print(
        f"{name:<34} {rps:8.0f} req/s   p50 {p50:7.2f} ms   p99 {p99:7.2f} ms"
        f"   (wrk, {seconds} s){bad}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--holders", type=int, default=1_000_000)
    ap.add_argument("--requests", type=int, default=4000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--seconds", type=int, default=10, help="duration of each wrk run")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="por-bench-api-") as d:
        tmp = Path(d)
        accounts, keys = build_store(tmp, args.holders)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        import json

        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                SERVER,
                str(tmp / "data"),
                str(tmp / "att"),
                json.dumps(keys),
                str(port),
            ],
            cwd=ROOT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit("server did not start")
                time.sleep(0.2)
            t = time.perf_counter()
            r = httpx.get(f"{base}/v1/proofs/{accounts[0]}", timeout=120)
            r.raise_for_status()
            print(f"first proof lookup (loads the tree file): {time.perf_counter() - t:.2f} s")
            rng = random.Random(1)
            n, c = args.requests, args.concurrency
            print(
                f"loopback, uvicorn 1 process, {c} concurrent clients, "
                f"{os.cpu_count()} CPUs shared by client and server"
            )
            elapsed, lat = asyncio.run(load(base, ["/v1/attestations/latest"] * n, c))
            report("GET /v1/attestations/latest", elapsed, lat)
            paths = [f"/v1/proofs/{rng.choice(accounts)}" for _ in range(n)]
            elapsed, lat = asyncio.run(load(base, paths, c))
            report("GET /v1/proofs/{random account}", elapsed, lat)
            if shutil.which("wrk"):
                print(f"wrk, 1 thread, {c} connections (the server gets most of the 2 CPUs):")
                run_wrk(
                    "GET /v1/attestations/latest",
                    base,
                    ["/v1/attestations/latest"],
                    connections=c,
                    seconds=args.seconds,
                    tmp=tmp,
                )
                run_wrk(
                    "GET /v1/proofs/{random account}",
                    base,
                    [f"/v1/proofs/{rng.choice(accounts)}" for _ in range(10_000)],
                    connections=c,
                    seconds=args.seconds,
                    tmp=tmp,
                )
            else:
                print(
                    "(install wrk — `apt-get install wrk`, done by ./dev bench — for figures "
                    "with a lighter load generator)"
                )
        finally:
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
