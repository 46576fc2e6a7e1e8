"""Build time of por's sum tree next to other Merkle tree libraries, on the same holders.

    python bench/peers.py [--n 1e6] [--oz-n 1e5] [--repeat 3]

Peers, each installed by this script into bench/.peers/ (git-ignored) on first use:
- pymerkle 7.0.0 (sha256, RFC 9162-style tree, `InmemoryTree.append_entry` per leaf) and
  merkly 1.0.2 (keccak by default; also run with sha256) in their own virtualenv — merkly
  pins pydantic 1, which the service's pydantic 2 cannot sit beside;
- @openzeppelin/merkle-tree 1.0.8 via npm (`StandardMerkleTree.of`, keccak, the Solidity
  airdrop standard), at --oz-n holders because it is ~100x slower.

The same n holders everywhere: account i is the EVM address 0x{7919 + 104729 i:040x},
balance (7919 i mod 100000 + 1) * 10^4. Each tool runs in a fresh process and only its
tree build is timed (wall clock, best of --repeat), after its inputs are made. por's
build hashes more than a plain Merkle tree — 3n - 1 SHA-256 calls (H(account), the
leaf with its salt and balance, the node with both child sums) against 2n - 1 — and
derives a salt per holder (keyed BLAKE2b); it is timed with and without the salts, on 1
and on 2 cores. Which hashing path por took (C kernel or hashlib) is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PEERS = ROOT / "bench" / ".peers"
VENV = PEERS / "venv"
NODE = PEERS / "node"
PY_PEERS = ("pymerkle==7.0.0", "merkly==1.0.2")
OZ = "@openzeppelin/merkle-tree@1.0.8"

HOLDERS_PY = """
def holders(n):
    return [("0x%040x" % (7919 + 104729 * i), (i * 7919 % 100000 + 1) * 10000) for i in range(n)]
"""

POR = (
    HOLDERS_PY
    + """
import json, sys, time
sys.path.insert(0, sys.argv[3])
import numpy as np
from por.core.mst_build import NATIVE, balance_words, derive_salts, encode_holders
from por.core.sumtree import SumTree
n, workers = int(sys.argv[1]), int(sys.argv[2])
pairs = [("eip155:1:" + a, b) for a, b in holders(n)]
secret = bytes(range(32))
best = {}
for _ in range(int(sys.argv[4])):
    t0 = time.perf_counter()
    accounts, balances = encode_holders(pairs)
    t1 = time.perf_counter()
    salts = derive_salts(secret, accounts, workers=workers)
    t2 = time.perf_counter()
    tree = SumTree.build_columns(accounts, balances, salts, workers=workers)
    t3 = time.perf_counter()
    for k, v in (("columns", t1 - t0), ("salts", t2 - t1), ("build", t3 - t2)):
        best[k] = min(best.get(k, 1e9), v)
print(json.dumps({**best, "root": tree.root.hash.hex(), "path": NATIVE or "hashlib"}))
"""
)

PYMERKLE = (
    HOLDERS_PY
    + """
import json, sys, time
from pymerkle import InmemoryTree
n = int(sys.argv[1])
entries = [f"{a}:{b}".encode() for a, b in holders(n)]
best = 1e9
for _ in range(int(sys.argv[2])):
    t = time.perf_counter()
    tree = InmemoryTree(algorithm="sha256")
    for e in entries:
        tree.append_entry(e)
    root = tree.get_state()
    best = min(best, time.perf_counter() - t)
print(json.dumps({"build": best, "root": root.hex()}))
"""
)

MERKLY = (
    HOLDERS_PY
    + """
import hashlib, json, sys, time
from merkly.mtree import MerkleTree
n, algo = int(sys.argv[1]), sys.argv[3]
leaves = [f"{a}:{b}" for a, b in holders(n)]
sha = hashlib.sha256
fn = (lambda x, y: sha(x + y).digest()) if algo == "sha256" else None
best = 1e9
for _ in range(int(sys.argv[2])):
    t = time.perf_counter()
    tree = MerkleTree(leaves) if fn is None else MerkleTree(leaves, fn)
    root = tree.root
    best = min(best, time.perf_counter() - t)
print(json.dumps({"build": best, "root": root.hex()}))
"""
)

OZ_JS = """
const { StandardMerkleTree } = require("@openzeppelin/merkle-tree");
const n = Number(process.argv[1]), repeat = Number(process.argv[2]);  // node -e: no script path
const values = [];
for (let i = 0; i < n; i++) {
  const a = "0x" + (7919n + 104729n * BigInt(i)).toString(16).padStart(40, "0");
  values.push([a, ((i * 7919) % 100000 + 1) * 10000]);
}
let best = 1e9, root = "";
for (let r = 0; r < repeat; r++) {
  const t = process.hrtime.bigint();
  const tree = StandardMerkleTree.of(values, ["address", "uint256"]);
  root = tree.root;
  best = Math.min(best, Number(process.hrtime.bigint() - t) / 1e9);
}
console.log(JSON.stringify({ build: best, root }));
"""


def setup() -> None:
    """Install the peers into bench/.peers/ (once)."""
    if not (VENV / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    marker = VENV / ".installed"
    if not marker.exists() or marker.read_text() != " ".join(PY_PEERS):
        subprocess.run(
            [str(VENV / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", *PY_PEERS],
            check=True,
        )
        marker.write_text(" ".join(PY_PEERS))
    if not (NODE / "node_modules" / "@openzeppelin" / "merkle-tree").is_dir():
        NODE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                "npm",
                "install",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
                "--prefix",
                str(NODE),
                OZ,
            ],
            check=True,
        )


def run(cmd: list[str], **kw: object) -> dict[str, object]:
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, **kw)  # type: ignore[call-overload]
    if out.returncode:
        raise SystemExit(f"{cmd[0]} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=float, default=1e6, help="holders (default 1e6)")
    ap.add_argument("--oz-n", type=float, default=1e5, help="holders for OpenZeppelin (1e5)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    n, oz_n, rep = int(args.n), int(args.oz_n), str(args.repeat)
    setup()
    py = str(VENV / "bin" / "python")
    print(
        f"Merkle tree builds on the same holders, {os.cpu_count()} CPUs, load average at "
        f"start {os.getloadavg()[0]:.2f}; wall seconds, best of {rep}",
        flush=True,
    )
    rows: list[tuple[str, int, float]] = []
    por: dict[int, dict[str, dict[str, object]]] = {}
    for size in sorted({n, oz_n}):
        por[size] = {}
        for w in (1, 2):
            r = run([sys.executable, "-c", POR, str(size), str(w), str(ROOT), rep])
            por[size][str(w)] = r
            print(
                f"  por {size:.0e} holders, {w} core(s) [{r['path']}]: build "
                f"{r['build']:.3f} s, salts {r['salts']:.3f} s (columns from pairs "
                f"{r['columns']:.3f} s)",
                flush=True,
            )
    for name, cmd in (
        ("pymerkle 7.0.0 (sha256)", [py, "-c", PYMERKLE, str(n), rep]),
        ("merkly 1.0.2 (sha256)", [py, "-c", MERKLY, str(n), rep, "sha256"]),
        ("merkly 1.0.2 (keccak)", [py, "-c", MERKLY, str(n), rep, "keccak"]),
    ):
        r = run(cmd)
        rows.append((name, n, float(r["build"])))  # type: ignore[arg-type]
        print(f"  {name}: {r['build']:.3f} s", flush=True)
    r = run(
        ["node", "-e", OZ_JS, str(oz_n), rep],
        cwd=NODE,
        env={**os.environ, "NODE_PATH": str(NODE / "node_modules")},
    )
    rows.append(("@openzeppelin/merkle-tree 1.0.8 (keccak)", oz_n, float(r["build"])))  # type: ignore[arg-type]
    print(f"  @openzeppelin/merkle-tree: {r['build']:.3f} s at {oz_n:.0e}", flush=True)
    print()
    head = (
        "peer",
        "holders",
        "peer s",
        "por 1 core s",
        "peer / por",
        "por+salts 1c",
        "peer / (por+salts)",
        "por 2 cores s",
        "peer / por 2c",
    )
    print(" | ".join(head))
    for name, size, secs in rows:
        p1, p2 = por[size]["1"], por[size]["2"]
        b1, s1, b2 = float(p1["build"]), float(p1["build"]) + float(p1["salts"]), float(p2["build"])  # type: ignore[arg-type]
        print(
            f"{name} | {size:.0e} | {secs:.3f} | {b1:.3f} | {secs / b1:.1f}x | {s1:.3f} | "
            f"{secs / s1:.1f}x | {b2:.3f} | {secs / b2:.1f}x"
        )
    print(
        f"load average at end {os.getloadavg()[0]:.2f}. peer / por > 1: por is faster. "
        "por builds a sum tree (3n - 1 SHA-256 calls, salts apart), the peers plain "
        "Merkle trees (2n - 1 hashes)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
