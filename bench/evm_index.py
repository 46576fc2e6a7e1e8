"""Benchmark: index 100,000 ERC-20 Transfer events from a local anvil with EvmChainReader.

Starts its own anvil (127.0.0.1, free port), deploys the StableToken, makes the events with
the token's batch functions (20,000 mints to fresh holders + 80,000 transfers among them),
then times one full snapshot (finalized pin, eth_getLogs, pinned totalSupply, sum check)
and one incremental snapshot with nothing new. Prints seconds and events per second.

    .venv/bin/python bench/evm_index.py [--events 100000]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from por.chains.evm import EvmChainReader, MemoryCheckpointStore
from por.demo.anvil import AnvilNode, deploy_stablecoin, mint_batch, transfer_batch


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--chunk", type=int, default=2_000, help="recipients per batch tx")
    args = ap.parse_args()
    holders_n = max(1, args.events // 5)
    transfers_n = args.events - holders_n - 1  # one mint to the issuer itself
    rng = random.Random(1)
    with AnvilNode(chain_id=1, gas_limit=2_000_000_000) as node:
        w3 = node.w3
        issuer = node.accounts[0]
        token = deploy_stablecoin(w3, issuer=issuer)
        start_block = w3.eth.block_number
        holders = ["0x" + rng.randbytes(20).hex() for _ in range(holders_n)]
        t0 = time.perf_counter()
        mint_batch(
            w3,
            token,
            issuer=issuer,
            recipients=holders,
            amounts=[rng.randrange(1, 10**9) for _ in holders],
            chunk=args.chunk,
        )
        mint_batch(w3, token, issuer=issuer, recipients=[issuer], amounts=[10**15])
        transfer_batch(
            w3,
            token,
            sender=issuer,
            recipients=[rng.choice(holders) for _ in range(transfers_n)],
            amounts=[rng.randrange(1, 10**6) for _ in range(transfers_n)],
            chunk=args.chunk,
        )
        node.finalize()
        gen_s = time.perf_counter() - t0
        print(
            f"generated {args.events} Transfer events in {gen_s:.2f} s "
            f"({args.events / gen_s:,.0f} events/s, {node.block_number()} blocks)"
        )

        reader = EvmChainReader(
            chain_id=1,
            rpc_urls=[node.url],
            token_address=token,
            start_block=start_block,
            checkpoint_store=MemoryCheckpointStore(),
        )
        t1 = time.perf_counter()
        snap = reader.snapshot()
        full_s = time.perf_counter() - t1
        run = reader.last_run
        assert run is not None and run.transfers == args.events, run
        assert snap.mismatch is None
        print(
            f"full index: {run.transfers} events, {len(snap.holders)} holders, "
            f"{run.log_requests} eth_getLogs calls in {full_s:.2f} s "
            f"= {run.transfers / full_s:,.0f} events/s"
        )
        t2 = time.perf_counter()
        reader.snapshot()
        inc_s = time.perf_counter() - t2
        print(
            f"incremental snapshot with no new blocks: {inc_s * 1000:.1f} ms "
            f"(full/incremental = {full_s / inc_s:,.0f}x)"
        )
        reader.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
