"""`por run` against a node that stalls (issue 12): /healthz says so, and SIGTERM stops it.

    t=0   run 1 starts, its first read (eth_chainId) gets headers, then a byte every 2 s
    t=3   run 1 reaches its deadline: cancelled, nothing recorded, the node named
    t=4   run 2 starts, stalls the same way       /healthz: 503 "no attestation ... since start"
    SIGTERM (run 2 blocked in its read) ─► the run is cancelled; the process is gone in seconds

Before: the first run held the scheduler for good ("maximum number of running instances
reached" on every later tick), /healthz stayed 200 and SIGTERM did not stop the process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from por.demo.anvil import free_port
from tests.service.conftest import PASSPHRASE, write_world
from tests.service.trickle import requests_seen, trickling_server


def _por_run(config: Path, *extra: str) -> subprocess.Popen[bytes]:
    """`por run --config CONFIG --run-now EXTRA...` in a subprocess, output piped."""
    env = {**os.environ, "POR_KEY_PASSPHRASE": PASSPHRASE}
    return subprocess.Popen(
        [sys.executable, "-m", "por.cli.main", "run", "--config", str(config), "--run-now", *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def test_por_run_with_a_stalled_node_turns_unhealthy_and_stops_on_sigterm(tmp_path: Path) -> None:
    with trickling_server(gap_s=2.0) as url:  # headers, then a byte every 2 s (for 800 s)
        chain = f"""
[[chains]]
kind = "evm"
chain_id = "eip155:31337"
rpc_urls = ["{url}"]
token = "0x{"ab" * 20}"
start_block = 1
"""
        world = write_world(tmp_path / "w", interval_s=4, extra_chain=chain)
        port = free_port()
        text = world.config.read_text()
        text = text.replace(
            'origin = "por.test/cnhc"',
            f'origin = "por.test/cnhc"\nlisten = "127.0.0.1:{port}"\napi_workers = 1',
        )
        text = text.replace("interval_s = 4", "interval_s = 4\nrun_deadline_s = 3")
        text += "\n[alerts]\nstale_after_intervals = 1\n"
        world.config.write_text(text)
        proc = _por_run(world.config)
        try:
            health = None
            give_up = time.monotonic() + 60
            while time.monotonic() < give_up:
                try:
                    r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                    if r.status_code == 503:
                        health = r.json()
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.3)
            assert health is not None, "healthz never turned unhealthy"
            assert health["status"] == "degraded" and health["latest_sequence"] is None
            assert "no attestation recorded" in health["detail"]
            time.sleep(1.0)  # run 2 is blocked in its read now
            proc.send_signal(signal.SIGTERM)
            sent = time.monotonic()
            out, _ = proc.communicate(timeout=30)
            stopped_after = time.monotonic() - sent
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    log = out.decode(errors="replace")
    assert proc.returncode == 0, log[-3000:]
    assert stopped_after < 15, f"SIGTERM took {stopped_after:.1f} s\n{log[-3000:]}"
    # the runs were cut off at their deadline, naming the node, and recorded nothing
    assert "passed its deadline of 3 s" in log and f"slow source: eip155:31337 {url}" in log, log[
        -3000:
    ]
    assert not list((world.root / "attestations").glob("*.dsse.json"))


@pytest.mark.parametrize("gap_s", [2.0, 1000.0], ids=["trickling", "silent"])
def test_sigterm_stops_a_run_blocked_in_a_read_within_seconds(tmp_path: Path, gap_s: float) -> None:
    """The run's deadline is far (10 minutes), so only SIGTERM can end it: a trickled read
    stops at its next byte, a silent one is abandoned after the grace period."""

    def _asked(url: str) -> bool:
        return requests_seen(url) > 0

    with trickling_server(gap_s=gap_s) as url:
        chain = f"""
[[chains]]
kind = "evm"
chain_id = "eip155:31337"
rpc_urls = ["{url}"]
token = "0x{"ab" * 20}"
start_block = 1
"""
        world = write_world(tmp_path / "w", interval_s=3600, extra_chain=chain)
        text = world.config.read_text().replace(
            "interval_s = 3600", "interval_s = 3600\nrun_deadline_s = 600\nshutdown_grace_s = 3"
        )
        world.config.write_text(text)
        proc = _por_run(world.config, "--no-api")
        try:
            # the run is under way once the node has been asked (the server saw a request)
            give_up = time.monotonic() + 60
            while time.monotonic() < give_up and not _asked(url):
                time.sleep(0.2)
            time.sleep(1.0)
            proc.send_signal(signal.SIGTERM)
            sent = time.monotonic()
            out, _ = proc.communicate(timeout=60)
            stopped_after = time.monotonic() - sent
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    log = out.decode(errors="replace")
    assert proc.returncode == 0, log[-3000:]
    assert stopped_after < 15, f"SIGTERM took {stopped_after:.1f} s\n{log[-3000:]}"
    assert not list((world.root / "attestations").glob("*.dsse.json"))
