"""Stateless replicas and leader failover on one PostgreSQL + one S3 object store.

    machine A: por run (scheduler + API) ── leader: attests, trees → S3, state → database
    machine B: por run (scheduler + API) ── follower: serves every proof from S3
    (A's machine dies: process SIGKILLed, its data directory deleted)
    machine B ── takes the leadership at its next tick, attests, serves every proof

Nothing B needs is on A's disk: trees are shards in the object store, raw statements are
objects there, run state is rows of the shared database (`[service] state = "database"`).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from por.core.mst import InclusionProof, Node, verify_inclusion
from por.demo.anvil import free_port
from por.errors import StoreError
from por.service.config import load_config
from por.service.wiring import build_service
from por.store import Store
from tests.s3 import KEY_ID, SECRET, S3Server
from tests.service.conftest import PASSPHRASE, Clock, World, write_world
from tests.store.pg import PG_URL, pg_schema_url


def _shared_config(world: World, s3: S3Server, bucket: str, **service: Any) -> str:
    extra = "".join(f"{k} = {v!r}\n".replace("'", '"') for k, v in service.items())
    text = world.config.read_text().replace(
        'origin = "por.test/cnhc"', f'origin = "por.test/cnhc"\nstate = "database"\n{extra}'
    )
    return text + (
        f'\n[artifacts]\nkind = "s3"\nendpoint = "{s3.endpoint}"\nbucket = "{bucket}"\n'
        'prefix = "cnhc"\nshard_leaves = 16\n'
    )


def _machine(world: World, root: Path, text: str) -> Path:
    """A machine of its own: the config and keys copied, an empty data directory."""
    shutil.copytree(world.root / "keys", root / "keys")
    (root / "por.toml").write_text(text)
    return root / "por.toml"


def _get(url: str, **params: Any) -> httpx.Response:
    """GET, waiting out the per-client proof rate limit (429 + Retry-After)."""
    while True:
        r = httpx.get(url, params=params, timeout=10)
        if r.status_code != 429:
            return r
        time.sleep(float(r.headers.get("retry-after", "1")))


def _wait_latest(base: str, above: int, deadline_s: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            r = httpx.get(f"{base}/v1/attestations/latest", timeout=5)
            if r.status_code == 200 and r.json()["sequence"] > above:
                body: dict[str, Any] = r.json()
                return body
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{base}: no attestation above {above} within {deadline_s} s")


def _check_proofs(base: str, seq: int, accounts: list[str]) -> None:
    att = _get(f"{base}/v1/attestations/{seq}").json()["attestation"]
    signed = Node(
        hash=bytes.fromhex(att["liabilities"]["root"]), sum=int(att["liabilities"]["total"])
    )
    for account in accounts:
        r = _get(f"{base}/v1/proofs/{account}", sequence=seq)
        assert r.status_code == 200, (account, r.text)
        verify_inclusion(InclusionProof.from_dict(r.json()["proof"]), root=signed)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.skipif(not PG_URL, reason="POR_TEST_PG_URL is not set (no PostgreSQL)")
def test_leader_dies_with_its_disk_and_the_other_takes_over(
    tmp_path: Path, s3_server: S3Server
) -> None:
    bucket = s3_server.new_bucket()
    procs: list[subprocess.Popen[bytes]] = []
    env = {
        **os.environ,
        "POR_KEY_PASSPHRASE": PASSPHRASE,
        "AWS_ACCESS_KEY_ID": KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET,
    }
    with pg_schema_url() as url:
        world = write_world(tmp_path / "w", database_url=url, interval_s=2)
        accounts = [a for hs in world.holders.values() for a in hs]
        sample = accounts[::4]  # 20 of 80, from both chains (the proof rate limit is per
        # client: a sample keeps the test to seconds)
        port_a, port_b = free_port(), free_port()
        cfg_a = _machine(
            world,
            tmp_path / "a",
            _shared_config(world, s3_server, bucket, listen=f"127.0.0.1:{port_a}", api_workers=1),
        )
        cfg_b = _machine(
            world,
            tmp_path / "b",
            _shared_config(world, s3_server, bucket, listen=f"127.0.0.1:{port_b}", api_workers=1),
        )
        a_url, b_url = f"http://127.0.0.1:{port_a}", f"http://127.0.0.1:{port_b}"

        def start(cfg: Path, *extra: str) -> subprocess.Popen[bytes]:
            p = subprocess.Popen(
                [sys.executable, "-m", "por.cli.main", "run", "--config", str(cfg), *extra],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            procs.append(p)
            return p

        try:
            leader = start(cfg_a, "--run-now")
            first = _wait_latest(a_url, 0)["sequence"]
            start(cfg_b)
            _wait_latest(b_url, 0)
            # B, which never attested, serves A's proofs from the object store
            _check_proofs(b_url, first, sample[::2])
            assert not (tmp_path / "b" / "data" / "trees").exists()

            # A's machine dies: the process is killed, its disk is gone
            leader.send_signal(signal.SIGKILL)
            leader.wait(timeout=10)
            shutil.rmtree(tmp_path / "a")
            probe = Store.open(
                url, data_dir=tmp_path / "probe", attestations_dir=tmp_path / "probe"
            )
            last_of_a = probe.latest_sequence()  # A is dead: its last record is final
            probe.close()
            assert last_of_a is not None and last_of_a >= first

            # B takes the leadership at its next tick and attests on from A's chain
            after = _wait_latest(b_url, last_of_a, deadline_s=60)
            seq = after["sequence"]
            assert after["attestation"]["previous"]["sequence"] == seq - 1
            _check_proofs(b_url, seq, sample)  # proofs of the new attestation
            _check_proofs(b_url, first, sample[1::5])  # and still the old ones
            assert not (tmp_path / "b" / "data" / "trees").exists()
            assert not (tmp_path / "b" / "data" / "raw").exists()  # statements in S3
        finally:
            for p in procs:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
                    try:
                        p.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        p.kill()
                        p.wait()
                if p.stderr is not None:
                    p.stderr.close()


@pytest.mark.parametrize(
    ("state", "what"),
    [
        ("files", r"storing the tree of attestation 1 failed"),  # raw statements on disk
        ("database", r"object store refused to write sha256/"),  # the statements first
    ],
)
def test_an_object_store_that_refuses_a_write_fails_the_run(
    tmp_path: Path, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, state: str, what: str
) -> None:
    monkeypatch.setenv("POR_KEY_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    world = write_world(tmp_path / "w")
    # a bucket nobody created: every write is refused (NoSuchBucket)
    text = _shared_config(world, s3_server, "por-refused-bucket")
    world.config.write_text(text.replace('state = "database"', f'state = "{state}"'))
    svc = build_service(load_config(world.config), clock=Clock())
    try:
        with pytest.raises(StoreError, match=rf"{what}.*NoSuchBucket"):
            svc.attest()
        assert svc.store.latest() is None  # nothing recorded: no row, no log leaf
        assert svc.store.log_tree().size == 0
        assert svc.store.checkpoint() is None
        assert not list((world.root / "attestations").glob("*.dsse.json"))
    finally:
        svc.close()
