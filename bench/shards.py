"""Benchmark of tree artifacts in an object store (moto's S3 server on 127.0.0.1).

    .venv/bin/python bench/shards.py [--leaves 1e6] [--shard-leaves 65536] [--proofs 200]

1. One tree of --leaves leaves (real sum tree). Baseline in the same run: writing it as
   the one local tree file (`Store`'s default). Then writing it as shards to S3
   (por.store.shards.write_sharded over S3Objects): wall time and the ratio to the
   baseline, number and size of objects.
2. Proof latency through `ShardedTree` over S3: cold (an empty shard cache: the index
   shard and the tree shard are fetched and their SHA-256 checked), warm (cached), each
   beside `SumTree.prove` on the in-memory tree (the baseline) — medians over --proofs
   random accounts.

moto keeps objects in memory in one Python process on the same machine (2 CPUs shared
with this process), so the cold figures are an S3 API on loopback, not a remote store.
Asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from por.core.sumtree import SumTree
from por.store.shards import ShardCache, load_top, write_sharded
from tests.s3 import run_s3_server


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--leaves", type=float, default=1e6)
    ap.add_argument("--shard-leaves", type=int, default=1 << 16)
    ap.add_argument("--proofs", type=int, default=200)
    args = ap.parse_args()
    n = int(args.leaves)
    accounts = [f"eip155:1:0x{i:040x}" for i in range(n)]
    t = time.perf_counter()
    tree = SumTree.build_columns(
        accounts, np.arange(1, n + 1, dtype=np.int64), os.urandom(32 * n), workers=2
    )
    print(f"leaves {n}: built in {time.perf_counter() - t:.2f} s")

    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        with open(Path(d) / "tree.mst", "wb") as f:
            for piece in tree.to_byte_chunks():
                f.write(piece)
            f.flush()
            os.fsync(f.fileno())
        local_s = time.perf_counter() - t
        size = (Path(d) / "tree.mst").stat().st_size
    print(f"baseline: one local tree file {size / 1e6:.1f} MB written in {local_s:.2f} s")

    with run_s3_server() as s3:
        bucket = s3.new_bucket()
        objects = s3.objects(bucket)
        t = time.perf_counter()
        sha, top = write_sharded(tree, objects, shard_leaves=args.shard_leaves)
        s3_s = time.perf_counter() - t
        listed = s3.client().list_objects_v2(Bucket=bucket)["Contents"]
        total = sum(o["Size"] for o in listed)
        biggest = max(o["Size"] for o in listed)
        print(
            f"sharded to S3: {len(listed)} objects, {total / 1e6:.1f} MB (largest "
            f"{biggest / 1e6:.2f} MB, top file {len(top) / 1e3:.1f} kB) in {s3_s:.2f} s "
            f"= {s3_s / local_s:.1f}x the local file"
        )
        rnd = random.Random(7)
        sample = [accounts[rnd.randrange(n)] for _ in range(args.proofs)]
        cold, warm, base = [], [], []
        for account in sample:
            sharded = load_top(objects, sha, cache=ShardCache(), what="bench")
            t = time.perf_counter()
            sharded.prove(account)
            cold.append(time.perf_counter() - t)
            t = time.perf_counter()
            sharded.prove(account)
            warm.append(time.perf_counter() - t)
            t = time.perf_counter()
            tree.prove(account)
            base.append(time.perf_counter() - t)
        mc, mw, mb = (statistics.median(x) * 1e3 for x in (cold, warm, base))
        print(
            f"proof latency (median of {len(sample)}): cold {mc:.1f} ms, warm {mw:.3f} ms, "
            f"in-memory tree {mb:.3f} ms (warm/in-memory {mw / mb:.1f}x)"
        )


if __name__ == "__main__":
    main()
