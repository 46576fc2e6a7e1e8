"""Benchmark of the HTTP API on loopback, beside a ceiling app measured in the same run.

    .venv/bin/python bench/api.py [--holders 1e6] [--workers 2] [--seconds 10]
                                  [--connections 32] [--repeat 3] [--first-proof 1e7]

1. One attestation over --holders holders (real sum tree, real signature) in a temp
   SQLite store. The server is por's app with the production settings of `por serve`
   (por.service.server: httptools, uvloop, --workers processes on one SO_REUSEPORT port,
   no access log), rate limiting off.
2. Closed loop, wrk -t1 -c{connections} -d{seconds}s: GET /v1/attestations/latest and
   GET /v1/proofs/{random account}; then the CEILING — a Starlette app answering a fixed
   body of the same size under the same server settings — measured the same way right
   after, and the ratio por / ceiling. Repeated --repeat times, interleaved; medians and
   the spread are printed.
3. Open loop at constant rate (bench/loadgen.py, wrk2-style: latency from the scheduled
   send time) at 80 % of the targets (3,000 and 1,500 req/s) and at 80 % of the measured
   medians: p50 / p99.
4. At --first-proof holders (0: skip): the time from starting the server processes to
   the first proof answered, and each worker's memory (RSS; PSS, which splits the pages
   of the memory-mapped tree file shared by the workers).

The load generator shares the machine's CPUs with the server (2 on the project's VM);
the load average is printed with every figure. Asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
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
from por.core.mst_build import derive_salts, encode_holders
from por.core.policy import assess
from por.core.sumtree import SumTree
from por.core.tlog import sign_checkpoint
from por.store import Store

# The server: `workers` forked processes, each with its own SO_REUSEPORT socket and the
# production uvicorn settings (por.service.server), as `por serve` runs them.
SERVER = """
import json, os, signal, sys
from pathlib import Path
import uvicorn
from por.service.server import reuseport_socket, uvicorn_config
kind, data, att, keys, port, workers, body = sys.argv[1:8]
port, workers = int(port), int(workers)
holder = reuseport_socket("127.0.0.1", port)

def app():
    if kind == "ceiling":
        from starlette.applications import Starlette
        from starlette.responses import Response
        from starlette.routing import Route
        payload = bytes(int(body))
        async def fixed(request):
            return Response(payload, media_type="application/json")
        return Starlette(routes=[Route("/{path:path}", fixed)])
    from por.api import ApiDeps, create_app
    from por.store import Store
    store = Store.open(None, data_dir=Path(data), attestations_dir=Path(att), materialize=False)
    return create_app(ApiDeps(store=store, keys=json.loads(keys), proof_rate_limit=None))

children = []
for _ in range(workers):
    pid = os.fork()
    if pid == 0:
        sock = reuseport_socket("127.0.0.1", port)
        uvicorn.Server(uvicorn_config(app(), host="127.0.0.1", port=port)).run(sockets=[sock])
        os._exit(0)
    children.append(pid)
print(json.dumps(children), flush=True)

def stop(*_):
    for c in children:
        os.kill(c, signal.SIGTERM)
signal.signal(signal.SIGTERM, stop)
for c in children:
    os.waitpid(c, 0)
"""


def load() -> str:
    return f"load {os.getloadavg()[0]:.2f}"


def build_store(tmp: Path, holders: int) -> tuple[list[str], dict[str, object], float]:
    from datetime import UTC, datetime

    issuer = Ed25519Signer(hashlib.sha256(b"bench issuer").digest())
    t0 = time.perf_counter()
    accounts = [f"eip155:1:0x{i:040x}" for i in range(1, holders + 1)]
    balances = [(i * 7919 % 100_000 + 1) * 10_000 for i in range(1, holders + 1)]
    secret = os.urandom(32)
    column, words = encode_holders(zip(accounts, balances, strict=True))
    salts = derive_salts(secret, column, workers=2)
    tree = SumTree.build_columns(column, words, salts, workers=2)
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
        f"{tree_bytes / 2**20:.0f} MiB + commit) in {t_record:.1f} s ({load()})",
        flush=True,
    )
    keys = KeySet(keys=(KeyEntry.for_public_key(issuer.public_key_raw, role="issuer"),))
    del tree
    return accounts, keys.to_dict(), tree_bytes / 2**20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(
        self, kind: str, tmp: Path, keys: dict[str, object], workers: int, body: int = 0
    ) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                SERVER,
                kind,
                str(tmp / "data"),
                str(tmp / "att"),
                json.dumps(keys),
                str(self.port),
                str(workers),
                str(body),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.children: list[int] = json.loads(self.proc.stdout.readline())

    def wait(self, path: str = "/healthz", timeout_s: float = 120) -> float:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if httpx.get(self.base + path, timeout=30).status_code == 200:
                    return time.perf_counter() - self.started
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise SystemExit("server did not start")
            time.sleep(0.005)

    def memory(self) -> list[tuple[float, float]]:
        """(RSS MiB, PSS MiB) of each worker."""
        out = []
        for pid in self.children:
            fields = {}
            with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as f:
                for line in f:
                    parts = line.split()
                    if len(parts) >= 2 and parts[0] in ("Rss:", "Pss:"):
                        fields[parts[0]] = int(parts[1]) / 1024
            out.append((fields.get("Rss:", 0.0), fields.get("Pss:", 0.0)))
        return out

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            for c in self.children:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(c, signal.SIGKILL)
            self.proc.kill()


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


def wrk(
    base: str, paths: list[str], *, connections: int, seconds: int, tmp: Path
) -> dict[str, float]:
    """wrk (C, one thread), closed loop."""
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
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50": _ms(re.search(r"\n\s+50%\s+(\S+)", out).group(1)),  # type: ignore[union-attr]
        "p99": _ms(re.search(r"\n\s+99%\s+(\S+)", out).group(1)),  # type: ignore[union-attr]
        "bad": float(non2xx.group(1)) if non2xx else 0.0,
        "load": os.getloadavg()[0],
    }


def open_loop(
    base: str, paths: list[str], rate: float, *, connections: int, seconds: int, tmp: Path
) -> dict[str, float]:
    paths_file = tmp / "ol-paths.txt"
    paths_file.write_text("\n".join(paths) + "\n")
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "loadgen.py"),
            base,
            str(paths_file),
            "--rate",
            str(rate),
            "--connections",
            str(connections),
            "--seconds",
            str(seconds),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    res: dict[str, float] = json.loads(out)
    res["load"] = os.getloadavg()[0]
    # the generator's own CPU (it shares the machine's cores with the server)
    res["gen_cpu"] = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) / seconds
    return res


def spread(xs: list[float]) -> str:
    return f"median {statistics.median(xs):,.0f} (min {min(xs):,.0f}, max {max(xs):,.0f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--holders", type=float, default=1e6)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="server processes")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--seconds", type=int, default=10, help="duration of each load run")
    ap.add_argument("--repeat", type=int, default=3, help="closed-loop rounds (0: open loop only)")
    ap.add_argument(
        "--first-proof", type=float, default=1e7, help="holders for the first-proof run (0: skip)"
    )
    args = ap.parse_args()
    if args.repeat and not shutil.which("wrk"):
        raise SystemExit("bench/api.py needs wrk (`apt-get install wrk`; ./dev bench installs it)")
    c, secs, w = args.connections, args.seconds, args.workers
    print(
        f"API benchmark: {w} server process(es), wrk -t1 -c{c} -d{secs}s, loopback, "
        f"{os.cpu_count()} CPUs shared by client and server ({load()})",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="por-bench-api-") as d:
        tmp = Path(d)
        accounts, keys, _ = build_store(tmp, int(args.holders))
        import random

        rng = random.Random(1)
        proof_paths = [f"/v1/proofs/{rng.choice(accounts)}" for _ in range(10_000)]
        runs: dict[str, list[dict[str, float]]] = {
            k: [] for k in ("latest", "proof", "ceil_latest", "ceil_proof")
        }
        sizes: dict[str, int] = {}
        for r in range(args.repeat):
            srv = Server("por", tmp, keys, w)
            try:
                srv.wait()
                sizes["latest"] = len(httpx.get(srv.base + "/v1/attestations/latest").content)
                sizes["proof"] = len(httpx.get(srv.base + proof_paths[0], timeout=60).content)
                for _ in range(4 * w):  # every worker has its tree loaded before timing
                    httpx.get(srv.base + proof_paths[1], timeout=60)
                runs["latest"].append(
                    wrk(srv.base, ["/v1/attestations/latest"], connections=c, seconds=secs, tmp=tmp)
                )
                runs["proof"].append(
                    wrk(srv.base, proof_paths, connections=c, seconds=secs, tmp=tmp)
                )
            finally:
                srv.stop()
            for key, body in (("ceil_latest", sizes["latest"]), ("ceil_proof", sizes["proof"])):
                srv = Server("ceiling", tmp, keys, w, body)
                try:
                    srv.wait("/healthz")
                    runs[key].append(wrk(srv.base, ["/x"], connections=c, seconds=secs, tmp=tmp))
                finally:
                    srv.stop()
            print(
                f"round {r + 1}: latest {runs['latest'][-1]['rps']:,.0f} req/s (ceiling "
                f"{runs['ceil_latest'][-1]['rps']:,.0f}), proof {runs['proof'][-1]['rps']:,.0f} "
                f"(ceiling {runs['ceil_proof'][-1]['rps']:,.0f}) ({load()})",
                flush=True,
            )
        print()
        print(
            "closed loop (wrk), req/s | p50 ms | p99 ms | ratio to the ceiling | load average per run"
        )
        for key, ceil, name, target in (
            ("latest", "ceil_latest", "GET /v1/attestations/latest", 3000),
            ("proof", "ceil_proof", "GET /v1/proofs/{random account}", 1500),
        ):
            if not runs[key]:
                continue
            rps = [x["rps"] for x in runs[key]]
            crps = [x["rps"] for x in runs[ceil]]
            ratios = [a / b for a, b in zip(rps, crps, strict=True)]
            bad = sum(x["bad"] for x in runs[key])
            print(
                f"{name} ({sizes[key]:,} B): {spread(rps)} req/s, target {target:,} -> "
                f"{statistics.median(rps) / target:.2f}x; p50 {statistics.median(x['p50'] for x in runs[key]):.2f} "
                f"p99 {statistics.median(x['p99'] for x in runs[key]):.2f} ms; ceiling {spread(crps)}; "
                f"ratio {statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f}); loads "
                + ", ".join(f"{x['load']:.2f}" for x in runs[key])
                + (f"; {bad:.0f} NON-2xx" if bad else "")
            )
        print()
        print("open loop (bench/loadgen.py, constant rate, latency from the scheduled send):")
        srv = Server("por", tmp, keys, w)
        try:
            srv.wait()
            for _ in range(4 * w):
                httpx.get(srv.base + proof_paths[1], timeout=60)
            for key, paths, target in (
                ("latest", ["/v1/attestations/latest"], 3000),
                ("proof", proof_paths, 1500),
            ):
                rates = [("80% of target", 0.8 * target)]
                if runs[key]:  # the closed loop ran
                    measured = statistics.median(x["rps"] for x in runs[key])
                    rates.append(("80% of measured", 0.8 * measured))
                for label, rate in rates:
                    ol = open_loop(srv.base, paths, rate, connections=c, seconds=secs, tmp=tmp)
                    print(
                        f"  {key:<6} at {rate:7,.0f} req/s ({label}): achieved {ol['rate']:,.0f}, "
                        f"p50 {ol['p50_ms']:.2f} ms, p99 {ol['p99_ms']:.2f} ms, p99.9 "
                        f"{ol['p999_ms']:.2f} ms, errors {ol['errors']}, unfinished {ol['unfinished']}, "
                        f"generator CPU {ol['gen_cpu']:.2f} cores (load {ol['load']:.2f}){'  p99 < 20 ms: yes' if ol['p99_ms'] < 20 else '  p99 < 20 ms: NO'}",
                        flush=True,
                    )
        finally:
            srv.stop()
    if args.first_proof:
        n = int(args.first_proof)
        with tempfile.TemporaryDirectory(prefix="por-bench-first-") as d:
            tmp = Path(d)
            accounts, keys, mib = build_store(tmp, n)
            account = accounts[n // 3]
            del accounts
            srv = Server("por", tmp, keys, w)
            try:
                ready = srv.wait()
                t = time.perf_counter()
                r = httpx.get(f"{srv.base}/v1/proofs/{account}", timeout=120)
                first = time.perf_counter() - t
                r.raise_for_status()
                since_start = time.perf_counter() - srv.started
                t = time.perf_counter()
                httpx.get(f"{srv.base}/v1/proofs/{account}", timeout=120)
                second = time.perf_counter() - t
                time.sleep(8)  # the background check of the file has finished by now
                mem = srv.memory()
            finally:
                srv.stop()
            print()
            print(
                f"first proof at {n:,} holders (tree file {mib:,.0f} MiB): {first:.3f} s after the "
                f"server answered /healthz ({ready:.2f} s after its processes started; "
                f"{since_start:.2f} s in all), then {second * 1000:.1f} ms; per worker after the "
                f"background check: "
                + ", ".join(f"RSS {rss:,.0f} MiB / PSS {pss:,.0f} MiB" for rss, pss in mem)
                + f" ({load()})"
            )


if __name__ == "__main__":
    main()
