"""Benchmark of the por-mst-v1 sum tree: build, memory, proofs, the hashing floors, and the
service's tree step.

    python bench/tree.py [--max 1e7] [--proofs 2000] [--repeat 3] [--native 0|1]

Which hashing path ran is printed first: the C kernel over OpenSSL's SHA-256
(por/core/_mstkernel.c, `mst_build.NATIVE`) or the hashlib fallback (`--native 0`, or
where the extension is not built). The OPENSSL FLOOR is the kernel's own `sha256_rows`
over the same inputs (n x 51 bytes, n x 97, n - 1 x 129) on one core, measured in the
same subprocess: what the 3n - 1 SHA-256 calls cost with nothing else around them.
"floor ratio" = 1-worker build user CPU / floor user CPU, with the ids given as checked
columns (an AccountColumn, which is what the service hands the build).

The service's tree step (`service` columns): three chains of n/3 holders each as the
readers hand them over (por.chains.base.Holders), then por.service.run.build_tree —
salts derived in bulk plus the build — on 2 workers; its wall time and peak RSS are
compared with the build alone from columns on 2 workers in a fresh process ("svc/bench").

For 10^4, 10^5, 10^6 and 10^7 leaves (up to --max), each in a fresh subprocess so peak
RSS (ru_maxrss) belongs to that size alone: build seconds with 1 worker and with 2
(fork) and the speedup, peak RSS, proof generation and verification in CPU microseconds
(mean over --proofs random leaves), and the ratio of the 1-worker build to a bare loop of
the same number of hashlib.sha256 calls (n on account-sized inputs, n on 97 bytes, n-1
on 129 bytes — what the build hashes) measured in the same subprocess.

Inputs are columns: balances as a numpy uint64 array, salts as one bytes object, and
account ids either as a list of str (the "ratio" column: a run that only times the build)
or streamed from a generator (every other column: a list of 10^7 str objects alone takes
~1.2 GB, which would hide the tree's own memory). The streamed ratio subtracts the
generator's standalone cost, which undercounts what it costs interleaved with the build.
Ratios use CPU seconds of the process, robust to other load on a shared machine: the
target ratio is user CPU over user CPU (what the build's code costs next to the hash
calls); "ratio cpu" adds kernel time on both sides. The bare loop has none; the build's
is first-touch page faults on the memory it writes, whose price this VM's host sets
(0.4-2.5 s per fresh GiB, measured in the same run and printed with it; ~0.15 s on bare
metal), so it is reported beside the target rather than inside it. Build seconds and the
worker speedup are wall clock. The load average is printed with the results.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import random
import resource
import subprocess
import sys
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ACCOUNT_FORMAT = "eip155:1:0x{:040x}"  # 51 characters, like a real EVM holder id


def accounts(n: int) -> Iterator[str]:
    # spread the ids so their order says nothing about the leaf order
    return map(ACCOUNT_FORMAT.format, range(7_919, 7_919 + 104_729 * n, 104_729))


def rss_now_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def bare_loop(n: int) -> tuple[float, float, float]:
    """(user, cpu, wall) seconds of 3n-1 hashlib.sha256 calls on the build's input sizes."""
    sha = hashlib.sha256
    rnd = random.Random(1)
    pool = 4096  # distinct inputs, reused: the floor is the cost of the calls themselves
    sizes = ((len(ACCOUNT_FORMAT.format(0)), n), (97, n), (129, n - 1))
    user = cpu = wall = 0.0
    for size, count in sizes:
        xs = [rnd.randbytes(size) for _ in range(pool)]
        full, rest = divmod(count, pool)
        r0, w0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        for _ in range(full):
            for x in xs:
                sha(x).digest()
        for x in xs[:rest]:
            sha(x).digest()
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        user += r1.ru_utime - r0.ru_utime
        cpu += r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime
        wall += time.perf_counter() - w0
    return user, cpu, wall


def first_touch_price(mib: int = 256) -> float:
    """Kernel seconds per GiB to fault in fresh anonymous memory, measured now.

    In this VM the price swings 0.4-2.5 s/GiB with the host's state (a page the guest
    has not touched lately must first be backed by the host); on bare metal it is
    ~0.1-0.2 s/GiB. Printed next to the build's kernel time so the two can be compared.
    """
    import numpy as np

    r0 = resource.getrusage(resource.RUSAGE_SELF)
    buf = np.ones(mib << 20, np.uint8)
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    del buf
    return (r1.ru_stime - r0.ru_stime) / (mib / 1024)


def time_proofs(tree: Any, n: int, proofs: int, seed: int) -> dict[str, float]:
    """Mean CPU µs to make a proof (by index, by account) and to verify one, on fresh leaves.

    CPU time of this process, not wall time: a loop of 1,000 proofs lasts ~40 ms, and on a
    shared machine one burst of another process's work would double a wall-clock mean.

    Proofs are made and dropped, as a server serialises and forgets them (keeping 1,000
    alive while timing mostly measures the garbage collector); each timing draws new
    random leaves, so their data is not in cache from the previous one.
    """
    from por.core.mst import verify_inclusion

    rnd = random.Random(seed)
    idx = [rnd.randrange(n) for _ in range(proofs)]
    out: dict[str, float] = {}
    t0 = time.process_time()
    for i in idx:
        tree.prove_index(i)
    out["prove_us"] = (time.process_time() - t0) / proofs * 1e6
    names = [tree.leaf(rnd.randrange(n)).account for _ in range(proofs)]
    t0 = time.process_time()
    for a in names:
        tree.prove(a)
    out["prove_account_us"] = (time.process_time() - t0) / proofs * 1e6
    ps = [tree.prove_index(rnd.randrange(n)) for _ in range(proofs)]
    t0 = time.process_time()
    for p in ps:
        verify_inclusion(p, root=tree.root)
    out["verify_us"] = (time.process_time() - t0) / proofs * 1e6
    out["path_len"] = max(len(p.path) for p in ps)
    return out


def openssl_floor(n: int) -> float:
    """User CPU seconds of the C kernel's sha256_rows over the build's inputs (1 core)."""
    import numpy as np

    from por.core import mst_build

    kernel = mst_build._native
    if kernel is None:
        return float("nan")
    total = 0.0
    step = 1 << 20
    for width, count in ((len(ACCOUNT_FORMAT.format(0)), n), (97, n), (129, n - 1)):
        rows = np.frombuffer(random.Random(width).randbytes(width * min(step, count)), np.uint8)
        out = np.empty(32 * min(step, count), np.uint8)
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        done = 0
        while done < count:
            m = min(step, count - done)
            kernel.sha256_rows(rows[: m * width], width, out)
            done += m
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        total += r1.ru_utime - r0.ru_utime
    return total


def service_step(n: int, workers: int) -> dict[str, Any]:
    """The service's tree step: three chains' Holders -> build_tree (salts + build)."""
    from por.chains.base import Holders
    from por.service.run import build_tree_parts, holder_parts

    class Snap:  # what build_tree reads of a ChainSnapshot
        def __init__(self, holders: Holders) -> None:
            self.holders = holders

    per = n // 3
    snaps = []
    for c, chain in enumerate(("eip155:1", "eip155:56", "eip155:137")):
        count = per if c < 2 else n - 2 * per
        ids = (f"{chain}:0x{7_919 + 104_729 * (c * per + i):040x}" for i in range(count))
        bal = (((c * per + i) * 7_919) % 100_000 * 10_000 for i in range(count))
        snaps.append(Snap(Holders.from_items(zip(ids, bal, strict=True))))
    gc.collect()
    inputs = rss_now_mb()
    r0, w0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    # as attest_once does: the chains' columns, then the snapshots go
    parts = holder_parts(snaps)  # type: ignore[arg-type]
    del snaps
    tree = build_tree_parts(parts, bytes(range(32)), workers=workers)
    wall = time.perf_counter() - w0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "n": tree.size,
        "workers": workers,
        "service_wall_s": wall,
        "service_cpu_s": r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime,
        "service_user_s": r1.ru_utime - r0.ru_utime,
        "service_kernel_s": r1.ru_stime - r0.ru_stime,
        "inputs_rss_mb": inputs,
        "peak_rss_mb": r1.ru_maxrss / 1024,
    }


def one(n: int, workers: int, proofs: int, repeat: int, mode: str, native: bool) -> dict[str, Any]:
    import numpy as np

    from por.core.mst_build import BuildParams, encode_accounts
    from por.core.sumtree import SumTree

    if mode == "service":
        return service_step(n, workers)
    params = BuildParams(native=native)
    as_list = mode == "list"

    salts = hashlib.shake_256(b"por bench salts").digest(32 * n)
    balances = np.frombuffer(hashlib.shake_256(b"por bench balances").digest(8 * n), np.uint64)
    balances = balances >> np.uint64(24)  # < 2^40 base units each
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    deque(accounts(n), maxlen=0)
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    gen_user = r1.ru_utime - r0.ru_utime
    gen_cpu = gen_user + r1.ru_stime - r0.ru_stime
    ids: Any = list(accounts(n)) if as_list else None
    if mode == "column":
        ids = encode_accounts(accounts(n))
    inputs_rss = rss_now_mb()

    best: dict[str, float] = {}
    proof_times: dict[str, float] = {}
    tree = None
    new_mb = 0.0
    rounds = repeat if n <= 10**6 else 1
    for rnd in range(rounds):
        del tree
        gc.collect()
        r0, w0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        tree = SumTree.build_columns(
            accounts(n) if ids is None else ids, balances, salts, workers=workers, params=params
        )
        build_wall = time.perf_counter() - w0
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        if rnd == 0:  # memory the first build took beyond what the process had touched
            new_mb = (r1.ru_maxrss - r0.ru_maxrss) / 1024
        user, kernel = r1.ru_utime - r0.ru_utime, r1.ru_stime - r0.ru_stime
        if user < best.get("build_user", 1e9):
            best["build_user"], best["build_kernel"] = user, kernel
        best["build_cpu"] = min(best.get("build_cpu", 1e9), user + kernel)
        best["build_wall"] = min(best.get("build_wall", 1e9), build_wall)
        if workers == 1 and mode == "stream" and rnd == rounds - 1:
            proof_times = time_proofs(tree, n, proofs, seed=2)  # as a service would, at once
        if workers == 1 and mode != "stream":
            floor = openssl_floor(n)
            best["floor_user"] = min(best.get("floor_user", 1e9), floor)
            bare_user, bare_cpu, bare_wall = bare_loop(n)
            best["bare_user"] = min(best.get("bare_user", 1e9), bare_user)
            best["bare_cpu"] = min(best.get("bare_cpu", 1e9), bare_cpu)
            best["bare_wall"] = min(best.get("bare_wall", 1e9), bare_wall)
    assert tree is not None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

    out: dict[str, Any] = {
        "n": n,
        "workers": workers,
        "gen_user_s": gen_user,
        "gen_cpu_s": gen_cpu,
        "inputs_rss_mb": inputs_rss,
        "peak_rss_mb": peak,
        "children_peak_rss_mb": children,
        "build_new_mb": new_mb,
        **{f"{k}_s": v for k, v in best.items()},
    }
    if workers == 1 and mode != "stream":
        out["ratio_user"] = best["build_user"] / best["bare_user"]
        out["ratio_cpu"] = best["build_cpu"] / best["bare_cpu"]
        out["floor_ratio"] = best["build_user"] / best["floor_user"]
        out["first_touch_s_per_gib"] = first_touch_price()
    if proof_times:
        out.update(proof_times)
        # the same after the bare loop's seconds of unrelated work (caches and TLB cold)
        out["prove_after_us"] = time_proofs(tree, n, proofs, seed=3)["prove_us"]
        t0 = time.perf_counter()
        data = tree.to_bytes()
        out["to_bytes_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        SumTree.from_bytes(data)
        out["from_bytes_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()  # what the API does before its first proof (Store.tree)
        opened = SumTree.from_bytes(data, body_checked=True, consistency=False)
        opened.prove_index(n // 2)
        out["open_prove_s"] = time.perf_counter() - t0
        out["file_mb"] = len(data) / 2**20
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max", type=float, default=1e7, help="largest size (default 1e7)")
    parser.add_argument("--proofs", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3, help="builds per size up to 10^6")
    parser.add_argument("--native", type=int, default=1, help="0: force the hashlib path")
    parser.add_argument("--one", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="stream", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        res = one(
            int(args.one), args.workers, args.proofs, args.repeat, args.mode, bool(args.native)
        )
        print(json.dumps(res))
        return 0

    from por.core.mst_build import NATIVE

    path = NATIVE if (NATIVE and args.native) else "hashlib fallback (no C kernel)"
    sizes = [n for n in (10**4, 10**5, 10**6, 10**7) if n <= args.max]
    print(
        f"por-mst-v1 build benchmark, {os.cpu_count()} CPUs, hashing path: {path}; load "
        f"average at start {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    head = (
        "leaves",
        "col 1w s",
        "col 2w s",
        "list 2w s",
        "strm 2w s",
        "floor s",
        "floor rat",
        "hashlib r",
        "RSS MB",
        "svc 2w s",
        "svc/bench",
        "svc RSS",
        "RSS ratio",
        "prove µs",
        "verify µs",
        "open+prf s",
        "load",
    )
    print(" | ".join(f"{h:>9}" for h in head), flush=True)
    runs = (
        ("col1", 1, "column"),
        ("col2", 2, "column"),
        ("list2", 2, "list"),
        ("str1", 1, "stream"),
        ("str2", 2, "stream"),
        ("svc2", 2, "service"),
    )
    for n in sizes:
        res: dict[str, dict[str, Any]] = {}
        for key, w, mode in runs:
            cmd = [
                sys.executable,
                __file__,
                "--one",
                str(n),
                "--workers",
                str(w),
                "--mode",
                mode,
                "--proofs",
                str(args.proofs),
                "--repeat",
                str(args.repeat),
                "--native",
                str(args.native),
            ]
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if done.returncode:
                print(done.stderr, file=sys.stderr)
                return 1
            res[key] = json.loads(done.stdout)
        c1, c2, l2, s1, s2, sv = (res[k] for k in ("col1", "col2", "list2", "str1", "str2", "svc2"))
        row = (
            f"{n:.0e}",
            f"{c1['build_wall_s']:.2f}",
            f"{c2['build_wall_s']:.2f}",
            f"{l2['build_wall_s']:.2f}",
            f"{s2['build_wall_s']:.2f}",
            f"{c1['floor_user_s']:.2f}",
            f"{c1['floor_ratio']:.2f}",
            f"{c1['ratio_user']:.2f}",
            f"{c2['peak_rss_mb']:.0f}",
            f"{sv['service_wall_s']:.2f}",
            f"{sv['service_wall_s'] / c2['build_wall_s']:.2f}",
            f"{sv['peak_rss_mb']:.0f}",
            f"{sv['peak_rss_mb'] / c2['peak_rss_mb']:.2f}",
            f"{s1['prove_us']:.1f}",
            f"{s1['verify_us']:.1f}",
            f"{s1['open_prove_s']:.3f}",
            f"{os.getloadavg()[0]:.2f}",
        )
        print(" | ".join(f"{c:>9}" for c in row), flush=True)
        print(
            f"{'':>9}   detail: column build 1w user {c1['build_user_s']:.2f}s + kernel "
            f"{c1['build_kernel_s']:.2f}s (fresh memory {c1['first_touch_s_per_gib']:.2f} kernel "
            f"s/GiB now; first build took {c1['build_new_mb']:.0f} MB new); hashlib bare loop "
            f"{c1['bare_user_s']:.2f}s; streamed ids 1w {s1['build_wall_s']:.2f}s (the id "
            f"generator alone {s1['gen_cpu_s']:.2f}s CPU); list 2w peak RSS "
            f"{l2['peak_rss_mb']:.0f} MB (the list of str alone is most of it); service step "
            f"user {sv['service_user_s']:.2f}s + kernel {sv['service_kernel_s']:.2f}s against the "
            f"2-worker column build's {c2['build_user_s']:.2f}s + {c2['build_kernel_s']:.2f}s "
            f"(user ratio {sv['service_user_s'] / c2['build_user_s']:.2f}), its inputs (3 chains' Holders) "
            f"{sv['inputs_rss_mb']:.0f} MB; tree file {s1['file_mb']:.0f} MB, to_bytes "
            f"{s1['to_bytes_s']:.2f}s, from_bytes with every check {s1['from_bytes_s']:.2f}s; "
            f"path {s1['path_len']}; a proof after other work {s1['prove_after_us']:.1f} µs",
            flush=True,
        )
    print(
        f"load average at end {os.getloadavg()[0]:.2f}. col/list/strm: build wall seconds with "
        "the ids as checked columns (the service's input), as a list of str, streamed from a "
        "generator (its cost included); floor: the C kernel's SHA-256 of the same inputs on "
        "1 core (user CPU); floor rat = 1-worker column build user CPU / floor; hashlib r = "
        "the same over a bare hashlib loop; RSS = peak of the 2-worker column build (inputs "
        "included); svc = the service's tree step from 3 chains' holders (salts + build, 2 "
        "workers) and its ratios to the 2-worker column build (target <= 1.2); open+prf = "
        "load a tree file as the API does (O(1) checks) and make one proof.",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
