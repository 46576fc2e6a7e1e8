"""Benchmark of the liabilities tree beyond one process: the local engine against Dask, and a
tree bigger than the local engine's memory on Dask spilling to disk (docs/scaling.md).

    python bench/scale.py compare [--leaves 1e7] [--workers 2] [--builds 3]
                                  [--partition-rows N] [--bucket-rows N]  ([dask] cut)
    python bench/scale.py spill   [--leaves 1e8] [--workers 2] [--memory-limit 5GiB]
                                  [--shard-rows 1e6] [--dir /var/tmp/por-scale]
    python bench/scale.py project --from FIGURES.json [--machines 1,4,16,64]

compare: the run's tree step at --leaves holders (three chains of n/3, as the readers hand
them over) in a fresh subprocess per engine: `local` (run.build_tree_parts: salts + the
C kernel on --workers threads), `dask` (the same tree, SumTree and all, built on a local
cluster of --workers worker processes, one thread each: tree_dask.build_parts) and
`dask-root` (only the root comes back: tree_dask.root_of_parts over the same columns;
before 2026-11-30 16:40 root_of_columns over the columns joined inside the clock). Wall
clock of the build, CPU seconds (user + system) and peak resident memory summed over every process
of the run — the driver, the scheduler in it, the nannies and the workers — sampled
every 0.1 s with psutil; the cluster is started and warmed before the clock starts.
Each engine builds the tree --builds times in its process (the service keeps its engine
and builds every round: the first build is a cold start, the later ones its steady
state); every build is printed. Ratios are Dask over local, measured in the same
invocation: of the first builds, of the last builds, and of builds 2.. summed.

spill: --leaves holders written as Parquet shards of --shard-rows rows (ids and balances),
then `root_of_parquet` on a local cluster whose workers may hold --memory-limit each and
spill the rest to --dir: wall clock, peak resident memory summed over all processes, CPU,
the per-stage times and the per-partition and per-bucket costs the projection uses.

project: from a spill run's figures (--json), the wall time of 10^9 leaves on N machines
of this machine's cores: partition and bucket work scale with N, the driver's share (the
salts and reading the ids) does not.

Each case also reports CPU and system seconds by role (driver, worker processes).
POR_BENCH_WORKER_ENV="K=V,K=V" adds to the local cluster's worker environment in
compare (for experiments such as malloc settings); POR_BENCH_HEAP_REUSE=0 or 1 turns the
workers' heap reuse off or on whatever the build's size (DaskSettings.heap_reuse; unset:
the engine decides); POR_BENCH_SMALL_PAGES=0 or 1 likewise for numpy's huge pages
(compare and spill; DaskSettings.small_pages).

The load average at the start and end of each case is printed: this VM's two cores are
shared with other sessions, so wall clock is noisy; CPU seconds are the steadier figure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

HEX = b"0123456789abcdef"


def id_blob(first: int, n: int, chain: int) -> tuple[Any, Any]:
    """n EVM holder ids `eip155:<chain>:0x<40 hex>` (pseudo-random, distinct) as one ASCII
    blob with a newline after each, and their n + 1 offsets — built by numpy."""
    import numpy as np

    prefix = f"eip155:{chain}:0x".encode()
    width = len(prefix) + 40 + 1
    rows = np.arange(first, first + n, dtype=np.uint64)
    # a bijective mix of the row number: distinct ids whose order says nothing
    x = rows * np.uint64(0x9E3779B97F4A7C15) + np.uint64(chain)
    x ^= x >> np.uint64(31)
    words = np.stack([x, x * np.uint64(0xBF58476D1CE4E5B9), x ^ np.uint64(0x94D049BB133111EB)], 1)
    raw = words.view(np.uint8).reshape(n, 24)[:, :20]
    table = np.frombuffer(HEX, np.uint8)
    blob = np.empty((n, width), np.uint8)
    blob[:, : len(prefix)] = np.frombuffer(prefix, np.uint8)
    blob[:, len(prefix) : len(prefix) + 40 : 2] = table[raw >> 4]
    blob[:, len(prefix) + 1 : len(prefix) + 40 : 2] = table[raw & 15]
    blob[:, -1] = ord("\n")
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.uint64)
    return blob.reshape(-1), offsets


def balances(first: int, n: int) -> Any:
    import numpy as np

    rng = np.random.default_rng(first + 1)
    return rng.integers(0, 10**12, n, dtype=np.int64)


def make_parts(n: int) -> list[Any]:
    """Three chains of about n/3 holders as checked columns (what the readers hand over)."""
    from por.core.mst_build import balance_words, encode_accounts

    out = []
    first = 0
    for chain, size in enumerate((n // 3, n // 3, n - 2 * (n // 3))):
        blob, _ = id_blob(first, size, chain + 1)
        ids = blob.tobytes().decode("ascii").split("\n")[:-1]
        accounts = encode_accounts(ids)
        del ids
        out.append((accounts, balance_words(balances(first, size), size)))
        first += size
    return out


class Sampler:
    """Resident memory and CPU time summed over this process and all its descendants."""

    def __init__(self, interval_s: float = 0.1, spill_dir: Path | None = None) -> None:
        import psutil

        self.psutil = psutil
        self.me = psutil.Process()
        self.interval_s = interval_s
        self.cpu: dict[int, float] = {}
        self.sys: dict[int, float] = {}
        self.sys_base: dict[int, float] = {}
        self.faults: dict[int, float] = {}
        self.faults_base: dict[int, float] = {}
        self.names: dict[int, str] = {}
        self.base: dict[int, float] = {}
        self.peak_rss = 0
        self.samples = 0
        self.spill_dir = spill_dir
        self.peak_spill = 0
        self._procs: list[Any] = [self.me]
        self._listed = -1e9
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _tree(self) -> list[Any]:
        # listing the children scans every process of the machine (~10 ms here): do it
        # every second, not at every sample, or the sampler's own CPU shows in the driver
        now = time.monotonic()
        if now - self._listed > 1.0:
            try:
                self._procs = [self.me, *self.me.children(recursive=True)]
            except self.psutil.Error:
                self._procs = [self.me]
            self._listed = now
        return self._procs

    def snapshot(self) -> int:
        rss = 0
        for p in self._tree():
            try:
                with p.oneshot():
                    t = p.cpu_times()
                    self.cpu[p.pid] = t.user + t.system
                    if p.pid not in self.names:
                        self.names[p.pid] = _role(p, self.me.pid)
                    self.sys[p.pid] = t.system
                    self.faults[p.pid] = _minor_faults(p.pid)
                    rss += p.memory_info().rss
            except self.psutil.Error:
                continue
        return rss

    def _spilled(self) -> int:
        if self.spill_dir is None:
            return 0
        total = 0
        for root, _, files in os.walk(self.spill_dir):
            for f in files:
                try:
                    total += os.stat(os.path.join(root, f)).st_size
                except OSError:
                    continue
        return total

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak_rss = max(self.peak_rss, self.snapshot())
            self.peak_spill = max(self.peak_spill, self._spilled())
            self.samples += 1
            self._stop.wait(self.interval_s)

    def start(self) -> int:
        self._listed = -1e9
        rss = self.snapshot()
        self.base = dict(self.cpu)
        self.sys_base = dict(self.sys)
        self.faults_base = dict(self.faults)
        self.peak_rss = rss
        self._thread.start()
        return rss

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        self._listed = -1e9
        self.peak_rss = max(self.peak_rss, self.snapshot())
        cpu = sum(v - self.base.get(pid, 0.0) for pid, v in self.cpu.items())
        driver = self.cpu.get(self.me.pid, 0.0) - self.base.get(self.me.pid, 0.0)
        return {
            "cpu_s": cpu,
            "driver_cpu_s": driver,
            "system_cpu_s": sum(v - self.sys_base.get(pid, 0.0) for pid, v in self.sys.items()),
            "cpu_by_role_s": self._by_role(self.cpu, self.base),
            "system_by_role_s": self._by_role(self.sys, self.sys_base),
            "page_faults_by_role": self._by_role(self.faults, self.faults_base),
            "peak_rss_mb": self.peak_rss / 2**20,
            "peak_spill_mb": self.peak_spill / 2**20,
            "samples": self.samples,
        }

    def _by_role(self, now: dict[int, float], base: dict[int, float]) -> dict[str, float]:
        out: dict[str, float] = {}
        for pid, v in now.items():
            role = self.names.get(pid, "other")
            out[role] = round(out.get(role, 0.0) + v - base.get(pid, 0.0), 3)
        return out


def _minor_faults(pid: int) -> float:
    """Minor page faults of a process so far (/proc/PID/stat; first touches of fresh
    memory are most of them), 0 where there is no /proc."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return float(fields[7])
    except (OSError, IndexError, ValueError):
        return 0.0


def _role(p: Any, me: int) -> str:
    """driver (this process: the scheduler and a local cluster's nannies run in it) or
    worker (a local cluster's worker processes, children of this one); other for
    anything else below (multiprocessing's resource tracker)."""
    if p.pid == me:
        return "driver"
    try:
        if "resource_tracker" in " ".join(p.cmdline()):
            return "other"
        return "worker" if p.ppid() == me else "other"
    except Exception:
        return "other"


def _flag(name: str) -> bool | None:
    """An A/B switch from the environment: "0" off, "1" on, else None (the engine decides)."""
    value = os.environ.get(name, "")
    return None if value not in ("0", "1") else value == "1"


def load() -> float:
    return os.getloadavg()[0]


# --- one case in a fresh process -------------------------------------------------------------


def case_compare(
    engine: str, n: int, workers: int, cut: dict[str, int], builds: int = 1
) -> dict[str, Any]:
    import gc

    from por.service.tree_dask import DaskSettings, DaskTreeEngine

    secret = bytes(range(32))
    parts = make_parts(n)
    gc.collect()
    eng = None
    if engine != "local":
        extra = os.environ.get("POR_BENCH_WORKER_ENV", "")
        if extra:  # experiments: environment of the local cluster's worker processes
            import dask
            import distributed  # noqa: F401  (its config defaults)

            env = dict(dask.config.get("distributed.nanny.pre-spawn-environ"))
            env.update(kv.split("=", 1) for kv in extra.split(","))
            dask.config.set({"distributed.nanny.pre-spawn-environ": env})
        eng = DaskTreeEngine(
            DaskSettings(
                n_workers=workers,
                threads_per_worker=1,
                heap_reuse=_flag("POR_BENCH_HEAP_REUSE"),
                small_pages=_flag("POR_BENCH_SMALL_PAGES"),
                **cut,
            )
        )
        warm = make_parts(3000)
        eng.build_parts(warm, secret)  # start the cluster and import everything
    runs = []
    for _ in range(builds):
        runs.append(_one_build(engine, eng, parts, secret, n=n, workers=workers))
        gc.collect()
    if eng is not None:
        eng.close()
    out = dict(runs[0])  # the first build at the top (as before --builds); then each one
    out["builds"] = runs
    return out


def _one_build(
    engine: str, eng: Any, parts: list[Any], secret: bytes, *, n: int, workers: int
) -> dict[str, Any]:
    """One build of the case, measured: the local engine in this process, or on the
    cluster the engine started (and kept from the builds before)."""
    from por.service.run import build_tree_parts

    sampler = Sampler()
    out: dict[str, Any] = {"engine": engine, "leaves": n, "load_start": load()}
    out["rss_before_mb"] = sampler.start() / 2**20
    t0 = time.perf_counter()
    if engine == "local":
        tree = build_tree_parts(list(parts), secret, workers=workers)
        root = tree.root
    elif engine == "dask":
        from distributed import get_task_stream

        with get_task_stream(eng.client()) as ts:
            tree = eng.build_parts(list(parts), secret)
        root = tree.root
        out["tasks"] = task_costs(ts.data)
    else:
        root, _ = eng.root_of_parts(list(parts), secret)  # the chains' columns, never joined
    out["wall_s"] = time.perf_counter() - t0
    out.update(sampler.stop())
    out["load_end"] = load()
    out["root"] = root.hash.hex()
    if eng is not None:
        stats = eng.last_stats
        out["stats"] = (
            None
            if stats is None
            else {
                "partitions": stats.partitions,
                "buckets": stats.buckets,
                "subtrees": stats.subtrees,
                "heap_reuse": stats.heap_reuse,
                "stage_s": {k: round(v, 3) for k, v in stats.stage_s.items()},
            }
        )
    return out


def task_costs(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Compute seconds of the build's tasks by kind (part, piece, bucket, ...), from
    Dask's task stream: what one partition and one bucket cost, for the projection."""
    out: dict[str, Any] = {}
    for r in records:
        kind = str(r["key"]).split("-")[1] if str(r["key"]).startswith("por-") else "other"
        spent = sum(
            ss["stop"] - ss["start"] for ss in r.get("startstops", ()) if ss["action"] == "compute"
        )
        c = out.setdefault(kind, {"tasks": 0, "compute_s": 0.0})
        c["tasks"] += 1
        c["compute_s"] += spent
    return out


def write_shards(n: int, shard_rows: int, folder: Path) -> list[str]:
    """n holders as Parquet shards (ids as an Arrow string column made from the blob)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, first in enumerate(range(0, n, shard_rows)):
        m = min(shard_rows, n - first)
        path = folder / f"holders-{k:05d}.parquet"
        paths.append(str(path))
        if path.exists() and pq.ParquetFile(path).metadata.num_rows == m:
            continue
        blob, offsets = id_blob(first, m, 1)
        width = int(offsets[1])
        # Arrow strings: the ids without their newlines
        data = blob.reshape(m, width)[:, :-1].reshape(-1)
        offs = np.arange(0, (m + 1) * (width - 1), width - 1, dtype=np.int32)
        ids = pa.StringArray.from_buffers(m, pa.py_buffer(offs), pa.py_buffer(data))
        table = pa.table({"account": ids, "balance": pa.array(balances(first, m))})
        pq.write_table(table, path, compression="none")
    return paths


def case_spill(
    n: int, workers: int, memory_limit: str, shard_rows: int, folder: Path
) -> dict[str, Any]:
    from por.service.tree_dask import DaskSettings, DaskTreeEngine, ParquetShard

    t0 = time.perf_counter()
    paths = write_shards(n, shard_rows, folder / "shards")
    out: dict[str, Any] = {"engine": "dask-spill", "leaves": n, "shards": len(paths)}
    out["write_shards_s"] = time.perf_counter() - t0
    spill = folder / "spill"
    spill.mkdir(parents=True, exist_ok=True)
    eng = DaskTreeEngine(
        DaskSettings(
            n_workers=workers,
            threads_per_worker=1,
            memory_limit=memory_limit,
            local_directory=spill,
            partition_rows=shard_rows,
            small_pages=_flag("POR_BENCH_SMALL_PAGES"),
        )
    )
    from distributed import get_task_stream

    client = eng.client()
    sampler = Sampler(interval_s=0.5, spill_dir=spill)
    out["load_start"] = load()
    out["rss_before_mb"] = sampler.start() / 2**20
    t0 = time.perf_counter()
    with get_task_stream(client) as ts:
        root, size = eng.root_of_parquet([ParquetShard(path=p) for p in paths], bytes(range(32)))
    out["wall_s"] = time.perf_counter() - t0
    out.update(sampler.stop())
    out["tasks"] = task_costs(ts.data)
    if n <= 5_000_000:  # small enough to check against the local engine
        from por.core.mst_build import AccountColumn, BalanceWords, derive_salts
        from por.core.sumtree import SumTree
        from por.service.tree_dask import read_shard

        cols = [read_shard(p) for p in paths]
        accounts = AccountColumn.concat([a for a, _ in cols])
        bals = BalanceWords.concat([b for _, b in cols])
        local = SumTree.build_columns(accounts, bals, derive_salts(bytes(range(32)), accounts))
        assert local.root == root, "the Dask root differs from the local root"
        out["checked_against_local"] = True
    out["load_end"] = load()
    out["root"] = root.hash.hex()
    out["size"] = size
    stats = eng.last_stats
    if stats is not None:
        out["stats"] = {
            "partitions": stats.partitions,
            "buckets": stats.buckets,
            "subtrees": stats.subtrees,
            "stage_s": stats.stage_s,
        }
    eng.close()
    return out


def run_child(args: list[str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"case {args} failed")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _print_build(engine: str, k: int, r: dict[str, Any]) -> None:
    print(
        f"{engine:10s} #{k} wall {fmt(r['wall_s'], ' s'):>8s}  cpu {fmt(r['cpu_s'], ' s'):>8s}"
        f" (driver {fmt(r['driver_cpu_s'], ' s')}, system {fmt(r['system_cpu_s'], ' s')})"
        f"  peak rss {r['peak_rss_mb']:>8,.0f} MB (before {r['rss_before_mb']:,.0f})"
        f"  load {r['load_start']:.2f}->{r['load_end']:.2f}",
        flush=True,
    )
    roles = ", ".join(
        f"{role} {cpu:.2f} (system {r['system_by_role_s'].get(role, 0.0):.2f},"
        f" {r['page_faults_by_role'].get(role, 0.0) / 1e3:,.0f}k faults)"
        for role, cpu in sorted(r["cpu_by_role_s"].items())
    )
    print(f"              cpu by role: {roles}  {r.get('stats') or ''}", flush=True)


def fmt(x: float, unit: str = "") -> str:
    return f"{x:,.2f}{unit}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("mode", choices=["compare", "spill", "project", "case"])
    ap.add_argument("--leaves", type=float, default=None)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--memory-limit", default="5GiB")
    ap.add_argument("--shard-rows", type=float, default=1e6)
    ap.add_argument(
        "--partition-rows", type=float, default=0, help="compare: [dask] partition_rows"
    )
    ap.add_argument("--bucket-rows", type=float, default=0, help="compare: [dask] bucket_rows")
    ap.add_argument("--dir", default="/var/tmp/por-scale")
    ap.add_argument("--engine", default="local")
    ap.add_argument(
        "--builds",
        type=int,
        default=3,
        help="compare: builds per engine in one process (the service builds every round "
        "on the engine it keeps: the first build is a cold start, the later ones are its "
        "steady state)",
    )
    ap.add_argument("--json", default=None, help="write the figures here")
    ap.add_argument("--from", dest="source", default=None)
    ap.add_argument("--machines", default="1,4,16,64")
    a = ap.parse_args()

    if a.mode == "case":  # inside the fresh subprocess
        n = int(a.leaves)
        if a.engine == "dask-spill":
            res = case_spill(n, a.workers, a.memory_limit, int(a.shard_rows), Path(a.dir))
        else:
            cut = {
                k: int(v)
                for k, v in (("partition_rows", a.partition_rows), ("bucket_rows", a.bucket_rows))
                if v
            }
            res = case_compare(a.engine, n, a.workers, cut, builds=a.builds)
        print(json.dumps(res))
        return

    if a.mode == "compare":
        n = int(a.leaves or 1e7)
        print(f"# {n:,} leaves, {a.workers} workers, load {load():.2f}", flush=True)
        results = {}
        for engine in ("local", "dask", "dask-root"):
            cut = ["--partition-rows", str(a.partition_rows), "--bucket-rows", str(a.bucket_rows)]
            r = run_child(
                [
                    "case",
                    "--engine",
                    engine,
                    "--leaves",
                    str(n),
                    "--workers",
                    str(a.workers),
                    "--builds",
                    str(a.builds),
                    *cut,
                ]
            )
            results[engine] = r
            for k, b in enumerate(r["builds"], 1):
                _print_build(engine if k == 1 else "", k, b)
        roots = {b["root"] for r in results.values() for b in r["builds"]}
        assert len(roots) == 1, f"the engines disagree on the root: {results}"
        base = results["local"]["builds"]
        for engine in ("dask", "dask-root"):
            runs = results[engine]["builds"]
            for label, k in (("first build", 0), ("steady: last build", -1)):
                if label.startswith("steady") and len(runs) < 2:
                    continue
                r, b = runs[k], base[k]
                print(
                    f"ratio {engine}/local, {label}: wall {r['wall_s'] / b['wall_s']:.2f}x  "
                    f"cpu {r['cpu_s'] / b['cpu_s']:.2f}x (target <= 1.5x)  "
                    f"peak rss {r['peak_rss_mb'] / b['peak_rss_mb']:.2f}x"
                )
            if len(runs) > 1:  # the builds after the first, summed: the service's steady state
                cpu = sum(x["cpu_s"] for x in runs[1:]) / sum(x["cpu_s"] for x in base[1:])
                print(f"ratio {engine}/local, builds 2..{len(runs)} summed: cpu {cpu:.2f}x")
        if a.json:
            Path(a.json).write_text(json.dumps(results, indent=1))
        return

    if a.mode == "spill":
        n = int(a.leaves or 1e8)
        print(
            f"# {n:,} leaves on Parquet shards, {a.workers} workers of {a.memory_limit}, "
            f"spilling to {a.dir}, load {load():.2f}",
            flush=True,
        )
        r = run_child(
            [
                "case",
                "--engine",
                "dask-spill",
                "--leaves",
                str(n),
                "--workers",
                str(a.workers),
                "--memory-limit",
                a.memory_limit,
                "--shard-rows",
                str(int(a.shard_rows)),
                "--dir",
                a.dir,
            ]
        )
        print(json.dumps(r, indent=1))
        print(
            f"wall {r['wall_s'] / 60:.1f} min (target <= 15)  peak rss {r['peak_rss_mb'] / 1024:.1f} GB"
            f" (target <= 16)  cpu {r['cpu_s']:.0f} s  spilled at most {r['peak_spill_mb']:,.0f} MB"
        )
        if a.json:
            Path(a.json).write_text(json.dumps(r, indent=1))
        return

    # project: 10^9 leaves on N machines of this machine's cores, from a spill run
    r = json.loads(Path(a.source).read_text())
    n = r["leaves"]
    scale = 1e9 / n
    tasks = r["tasks"]
    task_s = sum(t["compute_s"] for t in tasks.values())
    driver_s = r["stats"]["stage_s"].get("ids_and_salts", 0.0)
    cores = os.cpu_count() or 2
    by_kind = ", ".join(
        "{} {:.0f} s / {} tasks".format(k, v["compute_s"], v["tasks"]) for k, v in tasks.items()
    )
    print(
        f"measured at {n:,} leaves: wall {r['wall_s']:.0f} s, cpu {r['cpu_s']:.0f} s; "
        f"task compute {task_s:.0f} s ({by_kind}); driver ids+salts {driver_s:.0f} s"
    )
    cluster_cpu = r["cpu_s"] - r["driver_cpu_s"]  # workers and nannies
    driver_other = max(r["driver_cpu_s"] - driver_s, 0.0)  # scheduler, sending the salts
    print(
        f"per leaf: cluster cpu {cluster_cpu / n * 1e6:.2f} us, driver ids+salts "
        f"{driver_s / n * 1e6:.2f} us (one thread), driver scheduling and sending "
        f"{driver_other / n * 1e6:.2f} us; peak resident {r['peak_rss_mb'] / n * 2**20:.0f} B"
    )
    for machines in [int(m) for m in a.machines.split(",")]:
        cluster = cluster_cpu * scale / (machines * cores)
        driver = (driver_s + driver_other) * scale  # one process: the round secret's
        wall = max(cluster, driver)
        print(
            f"10^9 leaves on {machines:3d} machines x {cores} cores: cluster {cluster / 60:5.1f} min,"
            f" driver {driver / 60:4.1f} min -> ~{wall / 60:5.1f} min; the build holds"
            f" ~{(r['peak_rss_mb'] - r['rss_before_mb']) * scale / 1024 / machines:,.0f} GB per machine"
            " before spilling"
        )


if __name__ == "__main__":
    main()
