"""`por demo` end to end: real anvil nodes, LiteSVM, sample statements, the real service."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from por.core.dsse import Envelope, KeySet
from por.core.verify import verify_attestation_envelope


@pytest.mark.slow
@pytest.mark.anvil
@pytest.mark.xdist_group("demo")
def test_demo_runs_attests_and_publishes(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "por.cli.main",
            "demo",
            "--data-dir",
            str(data),
            "--port",
            "0",
            "--interval",
            "3",
            "--holders",
            "60",
            "--runs",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "attestation 1 FULLY_BACKED" in out, out
    assert "attestation 2 FULLY_BACKED" in out, out
    assert out.count("published to 3/3 chains") >= 2, out

    world = json.loads((data / "demo-world.json").read_text())
    assert [c["chain_id"][:7] for c in world["chains"]] == ["eip155:", "eip155:", "solana:"]
    assert world["api"].startswith("http://127.0.0.1:")
    assert all(c["sample_holders"] for c in world["chains"])

    keys = KeySet.from_json_bytes(Path(world["keys"]).read_bytes())
    att_dir = Path(world["attestations_dir"])
    env2 = Envelope.from_json_bytes((att_dir / "00000002.dsse.json").read_bytes())
    att = verify_attestation_envelope(env2, keys, now=datetime.now(UTC))
    assert att.sequence == 2 and att.totals.status == "FULLY_BACKED"
    # reserves follow the supply minted for --holders (60 holders once gave a ratio of 150)
    assert att.totals.ratio is not None and "1.00" <= att.totals.ratio < "1.06"
    usd = [r for r in att.reserves if r.currency == "USD"]
    assert usd and all(r.fx is not None and r.eligible_value > 0 for r in usd)
    assert "scenario backed: reserves sized to 1.05 x" in out
    assert {c.chain_id[:7] for c in att.chains} == {"eip155:", "solana:"}
    # treasury and bridge escrow are excluded from circulation on chain 1
    eth = next(c for c in att.chains if c.chain_id == "eip155:1")
    assert {e.reason for e in eth.excluded} == {"treasury", "bridge_escrow"}
    assert att.reserves and all(len(r.statement.sha256) == 64 for r in att.reserves)
    # every chain has its mint budget; together they stay within the reserves, and each
    # EVM token mints only through its guard
    assert att.allocation is not None and all(c.budget is not None for c in att.chains)
    assert sum(c.budget or 0 for c in att.chains) <= att.totals.eligible_reserves
    assert all(c["mint_guard"].startswith("0x") for c in world["chains"][:2])

    # a second demo reuses its own directory, and refuses someone else's
    other = tmp_path / "not-a-demo"
    other.mkdir()
    (other / "precious.txt").write_text("keep me")
    bad = subprocess.run(
        [sys.executable, "-m", "por.cli.main", "demo", "--data-dir", str(other), "--runs", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 1 and "not a por demo directory" in bad.stderr
    assert (other / "precious.txt").read_text() == "keep me"
