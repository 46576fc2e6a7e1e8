"""One whole attestation run at scale: 3 chains, --holders holders in all, a real store.

    python bench/run.py [--holders 1e6] [--repeat 3] [--tree-workers 0]

`attest_once` against three in-memory chain readers (por.demo.fake_chain: their state is
a dict, as an EVM reader's index is; each snapshot streams it into checked columns), one
custodian line, a SQLite store in a temp folder (tree file written and fsynced, one
transaction, envelope and checkpoint files), no publishers. Prints the run's wall time
with its steps (snapshot, tree, record) and the load average; the target is 30 s at 10^6.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from por.core.attestation import ReserveEntry, StatementRef, Token
from por.core.dsse import Ed25519Signer
from por.demo.fake_chain import FakeChainReader, fake_holders
from por.service import run as run_mod
from por.service.run import ReserveResult, RunDeps, attest_once
from por.store import Store

CHAINS = ("eip155:1", "eip155:56", "eip155:137")


class Reserves:
    def __init__(self, total: int) -> None:
        self.total = total

    def evaluate(self, *, as_of: datetime) -> ReserveResult:
        line = ReserveEntry(
            custodian="Bench Bank",
            account="HK****0001",
            asset_class="cash",
            instrument=None,
            currency="CNH",
            amount=self.total,
            market_value=self.total,
            haircut_bps=0,
            eligible_value=self.total,
            ineligible_reason=None,
            statement=StatementRef(
                format="camt.053.001.08", id="S-1", as_of=as_of, sha256="ab" * 32
            ),
        )
        return ReserveResult(lines=(line,), eligible_total=self.total)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--holders", type=float, default=1e6)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--tree-workers", type=int, default=0, help="0: every core")
    args = ap.parse_args()
    n = int(args.holders)
    workers = args.tree_workers or os.cpu_count() or 1
    readers = [
        FakeChainReader(
            chain_id=c,
            token_address=f"{c}:0x" + "ab" * 20,
            holders=fake_holders(c, n // 3 + (i < n % 3), seed=i),
        )
        for i, c in enumerate(CHAINS)
    ]
    total = sum(sum(r.holders.values()) for r in readers)
    signer = Ed25519Signer(hashlib.sha256(b"bench run issuer").digest())
    steps: dict[str, float] = {}

    def timed(name: str, fn):  # type: ignore[no-untyped-def]
        def wrapper(*a, **k):  # type: ignore[no-untyped-def]
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                steps[name] = steps.get(name, 0.0) + time.perf_counter() - t

        return wrapper

    run_mod.snapshot_chains = timed("snapshot", run_mod.snapshot_chains)  # type: ignore[method-assign]
    run_mod.build_tree_parts = timed("tree", run_mod.build_tree_parts)  # type: ignore[method-assign]
    print(
        f"attest_once at {n:,} holders on {len(CHAINS)} chains, tree_workers {workers}, "
        f"{os.cpu_count()} CPUs (load {os.getloadavg()[0]:.2f})",
        flush=True,
    )
    walls = []
    with tempfile.TemporaryDirectory(prefix="por-bench-run-") as d:
        store = Store.open(None, data_dir=Path(d) / "data", attestations_dir=Path(d) / "att")
        store.record = timed("record", store.record)  # type: ignore[method-assign]
        try:
            for r in range(args.repeat):
                steps.clear()
                deps = RunDeps(
                    token=Token(symbol="CNHC", decimals=6, currency="CNH"),
                    chains=readers,
                    reserves=Reserves(total),
                    store=store,
                    signers=[signer],
                    checkpoint_signer=signer,
                    origin="bench.por/run",
                    clock=lambda: datetime.now(UTC),
                    random_bytes=os.urandom,
                    tree_workers=workers,
                )
                t = time.perf_counter()
                result = attest_once(deps)
                wall = time.perf_counter() - t
                walls.append(wall)
                print(
                    f"  run {r + 1}: sequence {result.sequence} {result.status} in {wall:.2f} s "
                    f"(snapshot {steps['snapshot']:.2f} s, tree {steps['tree']:.2f} s, record "
                    f"{steps['record']:.2f} s; load {os.getloadavg()[0]:.2f})",
                    flush=True,
                )
        finally:
            store.close()
    print(
        f"median {statistics.median(walls):.2f} s (min {min(walls):.2f}, max {max(walls):.2f}); "
        f"target <= 30 s -> {30 / statistics.median(walls):.1f}x headroom"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
