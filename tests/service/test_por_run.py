"""`por run`: the production entry point — scheduler and API in one process, stopped by SIGTERM."""

from __future__ import annotations

import json
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


@pytest.mark.slow
def test_por_run_serves_and_attests_on_schedule(tmp_path: Path) -> None:
    world = write_world(tmp_path / "w", interval_s=2)
    port = free_port()
    text = world.config.read_text().replace(
        'origin = "por.test/cnhc"', f'origin = "por.test/cnhc"\nlisten = "127.0.0.1:{port}"'
    )
    world.config.write_text(text)
    env = {**os.environ, "POR_KEY_PASSPHRASE": PASSPHRASE, "POR_ADMIN_TOKEN": "s3cret-token"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "por.cli.main", "run", "--config", str(world.config), "--run-now"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        latest = None
        while time.monotonic() < deadline:
            try:
                r = httpx.get(f"{base}/v1/attestations/latest", timeout=2)
                if r.status_code == 200 and r.json()["sequence"] >= 2:
                    latest = r.json()
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        assert latest is not None, "no second scheduled attestation within 60 s"
        assert latest["attestation"]["liabilities"]["leaf_count"] == 80
        # the admin trigger runs one more, authenticated, through the same run lock
        assert httpx.post(f"{base}/v1/admin/attest", timeout=30).status_code == 401
        r = httpx.post(
            f"{base}/v1/admin/attest", timeout=30, headers={"Authorization": "Bearer s3cret-token"}
        )
        assert r.status_code in (200, 201, 202), r.text
        assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
        keys = httpx.get(f"{base}/v1/keys", timeout=5).json()
        # the file's keys, plus the log's checkpoint vkey the service adds (issue 14)
        assert keys["keys"] == json.loads((world.root / "keys" / "keys.json").read_text())["keys"]
        vkey = httpx.get(f"{base}/v1/log/key", timeout=5).text.strip()
        assert keys["log"]["vkey"] == vkey and vkey.startswith(keys["log"]["origin"] + "+")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out.decode()[-3000:]
    # every recorded attestation also sits in attestations/ with the checkpoint
    files = sorted((world.root / "attestations").glob("*.dsse.json"))
    assert len(files) >= 3
    assert (world.root / "attestations" / "checkpoint.txt").read_text().split("\n")[1] == str(
        len(files)
    )
