"""`por demo`: the whole service on an embedded local world, on this machine only.

It starts two anvil nodes (chain ids 1 and 56, standing for Ethereum and BNB Chain) with
the demo stablecoin and a ReserveOracle deployed on each, a Solana world on LiteSVM
behind a loopback JSON-RPC server, fresh copies of the sample custodian statements, and
about `holders` token holders with transfers going on in the background. Then it runs
the real service — the same configuration file, wiring, scheduler, store, publishers
and API as `por run` — with an attestation every `interval_s` seconds, and writes
`demo-world.json` (RPC URLs, contract addresses, sample accounts, API URL) into its data
directory. Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import json
import logging
import os
import random
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from por.errors import ConfigError, PorError

log = logging.getLogger("por.demo")

MARKER = ".por-demo"
UNIT = 10**6  # CNHC has 6 decimals
DEMO_SEED = 20261125


@dataclass
class DemoWorld:
    data_dir: Path
    stops: list[Callable[[], None]] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    def stop(self) -> None:
        for s in reversed(self.stops):
            try:
                s()
            except Exception:  # stopping is best effort; report and go on
                log.warning("stopping a demo part failed", exc_info=True)
        self.stops.clear()


def _prepare_dir(data_dir: Path) -> Path:
    data_dir = data_dir.resolve()
    if data_dir.exists() and any(data_dir.iterdir()):
        if not (data_dir / MARKER).exists():
            raise ConfigError(
                "exists and is not a por demo directory; refusing to reuse it", where=str(data_dir)
            )
        shutil.rmtree(data_dir)  # each demo is a new world: new chains, new history
    data_dir.mkdir(parents=True)
    (data_dir / MARKER).write_text("created by `por demo`; removed by the next one\n")
    return data_dir


def _split_balances(rng: random.Random, count: int) -> list[int]:
    # 1 to 200,000 CNHC each, in whole cents of the token
    return [rng.randrange(1, 200_000 * 100) * 10**4 for _ in range(count)]


def _random_address(rng: random.Random) -> str:
    return "0x" + rng.randbytes(20).hex()


def _start_evm(
    world: DemoWorld, chain_id: int, holders: int, rng: random.Random, out: TextIO
) -> dict[str, Any]:
    from eth_account import Account

    from por.demo.anvil import AnvilNode, deploy_oracle, deploy_stablecoin, mint_batch

    node = AnvilNode(chain_id=chain_id)
    node.start()
    world.stops.append(node.stop)
    w3 = node.w3
    issuer, attestor_key, sender_key, market = (
        node.accounts[0],
        node.private_keys[1],
        node.private_keys[2],
        node.accounts[3],
    )
    attestor = Account.from_key(attestor_key).address
    token = deploy_stablecoin(w3, issuer=issuer)
    oracle = deploy_oracle(w3, owner=issuer, attestors=[attestor], threshold=1)
    treasury = _random_address(rng)
    escrow = _random_address(rng)
    accounts = [_random_address(rng) for _ in range(holders)]
    amounts = _split_balances(rng, holders)
    recipients = [*accounts, treasury, escrow, market]
    amounts += [50_000_000 * UNIT, 20_000_000 * UNIT, 1_000_000 * UNIT]
    mint_batch(w3, token, issuer=issuer, recipients=recipients, amounts=amounts)
    node.mine(5)  # let `finalized` move past the mints
    print(
        f"  eip155:{chain_id}: anvil at {node.url}, token {token}, oracle {oracle}, "
        f"{holders} holders",
        file=out,
    )
    return {
        "node": node,
        "token": token,
        "oracle": oracle,
        "treasury": treasury,
        "bridge_escrow": escrow,
        "market_maker": market,
        "holders": accounts,
        "attestor_key": attestor_key,
        "sender_key": sender_key,
    }


def _start_solana(
    world: DemoWorld, holders: int, rng: random.Random, out: TextIO
) -> dict[str, Any]:
    from solders.keypair import Keypair

    from por.demo.solana_sim import SolanaSim
    from por.oracle.solana_memo import write_keypair_file

    sim = SolanaSim(start_time_s=int(time.time()))
    sim.start()
    world.stops.append(sim.stop)
    mint = sim.create_mint(decimals=6)
    owners = [Keypair() for _ in range(holders)]
    treasury = Keypair()
    for kp, amount in zip(
        [*owners, treasury], [*_split_balances(rng, holders), 30_000_000 * UNIT], strict=True
    ):
        acct = sim.create_token_account(mint, kp.pubkey())
        sim.mint_to(mint, acct, amount)
    memo_key = Keypair()
    sim.airdrop(memo_key.pubkey(), 10_000_000_000)
    keypair_path = world.data_dir / "keys" / "solana-memo.json"
    keypair_path.parent.mkdir(parents=True, exist_ok=True)
    write_keypair_file(memo_key, keypair_path)
    sim.advance_slots(2)
    print(f"  {sim.chain_id}: LiteSVM at {sim.url}, mint {mint}, {holders} holders", file=out)
    return {
        "sim": sim,
        "mint": str(mint),
        "treasury": str(treasury.pubkey()),
        "holders": [str(o.pubkey()) for o in owners],
        "memo_keypair": keypair_path,
        "owner_keys": owners,
    }


def _write_statements(data_dir: Path, day: datetime) -> list[str]:
    from por.demo.statements import sample_documents

    folder = data_dir / "statements"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    # yesterday's end-of-day statements: what a custodian delivers in the morning
    for name, data in sample_documents(day.date() - timedelta(days=1)):
        (folder / name).write_bytes(data)
        paths.append(str(folder / name))
    return paths


def _transfers(evm: list[dict[str, Any]], stop: threading.Event, rng: random.Random) -> None:
    """Background market activity: the market maker pays a few holders every couple of seconds,
    sometimes new ones, so each attestation sees a different state."""
    from por.demo.anvil import transfer_batch

    while not stop.wait(2.0):
        for chain in evm:
            try:
                holders = chain["holders"]
                to = [rng.choice(holders) for _ in range(3)]
                if rng.random() < 0.3:
                    new = _random_address(rng)
                    holders.append(new)
                    to.append(new)
                transfer_batch(
                    chain["node"].w3,
                    chain["token"],
                    sender=chain["market_maker"],
                    recipients=to,
                    amounts=[rng.randrange(1, 500) * UNIT for _ in to],
                )
            except Exception as e:  # the demo goes on; the attestation shows what happened
                if stop.is_set():
                    return
                log.warning("demo transfer failed: %s", e)


def _toml(v: Any) -> str:
    return json.dumps(v)


def _write_config(
    world: DemoWorld,
    *,
    evm: list[dict[str, Any]],
    sol: dict[str, Any] | None,
    statements: list[str],
    port: int,
    interval_s: int,
) -> Path:
    d = world.data_dir
    text = f"""# written by `por demo`
[service]
data_dir = "data"
attestations_dir = "attestations"
origin = "demo.por.local/cnhc"
listen = "127.0.0.1:{port}"
admin_token_env = "POR_ADMIN_TOKEN"
api_workers = 1                    # one process: the demo shares the machine with its chains

[schedule]
interval_s = {interval_s}
misfire_grace_s = {max(5, interval_s)}
coalesce = true

[token]
symbol = "CNHC"
decimals = 6
currency = "CNH"

[signing]
key_file = "keys/issuer.key.pem"
passphrase_env = "POR_KEY_PASSPHRASE"
keys_file = "keys/issuer.keys.json"

[[custodians]]
kind = "files"
name = "harbour-trust"
custodian = "Harbour Trust Bank (Hong Kong) Limited"
paths = {_toml(statements)}
max_age_s = 172800
"""
    for c in evm:
        n = c["node"]
        text += f"""
[[chains]]
kind = "evm"
chain_id = "eip155:{n.chain_id}"
rpc_urls = {_toml([n.url])}
token = "{c["token"]}"
treasury = {_toml([c["treasury"]])}
bridge_escrow = {_toml([c["bridge_escrow"]])}
oracle = "{c["oracle"]}"
publisher_key_env = "POR_DEMO_PUBLISHER_{n.chain_id}"
attestor_key_envs = {_toml([f"POR_DEMO_ATTESTOR_{n.chain_id}"])}
"""
        os.environ[f"POR_DEMO_PUBLISHER_{n.chain_id}"] = c["sender_key"]
        os.environ[f"POR_DEMO_ATTESTOR_{n.chain_id}"] = c["attestor_key"]
    if sol is not None:
        s = sol["sim"]
        text += f"""
[[chains]]
kind = "solana"
chain_id = "{s.chain_id}"
rpc_url = "{s.url}"
mint = "{sol["mint"]}"
treasury = {_toml([sol["treasury"]])}
memo_keypair = "{sol["memo_keypair"]}"
"""
    path = d / "por.toml"
    path.write_text(text)
    return path


def _write_keys(data_dir: Path) -> None:
    from por.core.dsse import Ed25519Signer, KeyEntry, KeySet
    from por.fileio import write_atomic

    passphrase = secrets.token_urlsafe(24)
    os.environ["POR_KEY_PASSPHRASE"] = passphrase
    signer = Ed25519Signer(secrets.token_bytes(32))
    keys = data_dir / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    pem = signer.to_pem(passphrase, random_bytes=secrets.token_bytes)
    write_atomic(keys / "issuer.key.pem", pem)
    write_atomic(
        keys / "issuer.keys.json",
        KeySet(
            keys=(KeyEntry.for_public_key(signer.public_key_raw, role="issuer"),)
        ).to_json_bytes(),
    )


def build_world(
    *, data_dir: Path, port: int, interval_s: int, holders: int, solana: bool, out: TextIO
) -> tuple[DemoWorld, Path]:
    from por.demo.anvil import free_port

    world = DemoWorld(data_dir=_prepare_dir(data_dir))
    rng = random.Random(DEMO_SEED)  # noqa: S311 - reproducible demo data, not secrets
    try:
        print(f"por demo: building a local world in {world.data_dir}", file=out)
        _write_keys(world.data_dir)
        admin = secrets.token_urlsafe(24)
        os.environ["POR_ADMIN_TOKEN"] = admin
        sol_share = max(1, holders // 10) if solana else 0
        per_evm = (holders - sol_share) // 2
        evm = [
            _start_evm(world, cid, per_evm + (i * ((holders - sol_share) % 2)), rng, out)
            for i, cid in enumerate((1, 56))
        ]
        sol = _start_solana(world, sol_share, rng, out) if solana else None
        statements = _write_statements(world.data_dir, datetime.now(UTC))
        port = port or free_port()
        config = _write_config(
            world, evm=evm, sol=sol, statements=statements, port=port, interval_s=interval_s
        )
        stop = threading.Event()
        t = threading.Thread(
            target=_transfers, args=(evm, stop, rng), name="demo-transfers", daemon=True
        )
        t.start()

        def stop_transfers() -> None:
            stop.set()
            t.join(timeout=10)

        world.stops.append(stop_transfers)
        world.info = {
            "api": f"http://127.0.0.1:{port}",
            "dashboard": f"http://127.0.0.1:{port}/",
            "holder_page": f"http://127.0.0.1:{port}/holder",
            "admin_token": admin,
            "config": str(config),
            "keys": str(world.data_dir / "keys" / "issuer.keys.json"),
            "attestations_dir": str(world.data_dir / "attestations"),
            "chains": [
                {
                    "chain_id": f"eip155:{c['node'].chain_id}",
                    "rpc_url": c["node"].url,
                    "token": c["token"],
                    "oracle": c["oracle"],
                    "treasury": c["treasury"],
                    "bridge_escrow": c["bridge_escrow"],
                    "sample_holders": [
                        f"eip155:{c['node'].chain_id}:{a}" for a in c["holders"][:5]
                    ],
                }
                for c in evm
            ],
        }
        if sol is not None:
            s = sol["sim"]
            world.info["chains"].append(
                {
                    "chain_id": s.chain_id,
                    "rpc_url": s.url,
                    "mint": sol["mint"],
                    "treasury": sol["treasury"],
                    "memo_keypair": str(sol["memo_keypair"]),
                    "sample_holders": [f"{s.chain_id}:{a}" for a in sol["holders"][:5]],
                }
            )
        return world, config
    except BaseException:
        world.stop()
        raise


def run_demo(
    *,
    data_dir: Path,
    port: int,
    interval_s: int,
    holders: int,
    solana: bool,
    runs: int,
    out: TextIO,
) -> int:
    from por.fileio import write_atomic
    from por.service.config import load_config
    from por.service.wiring import build_service

    if holders < 10:
        raise ConfigError(f"--holders must be at least 10, got {holders}")
    if interval_s < 1:
        raise ConfigError(f"--interval must be at least 1 second, got {interval_s}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    world, config = build_world(
        data_dir=data_dir, port=port, interval_s=interval_s, holders=holders, solana=solana, out=out
    )
    svc = None
    try:
        cfg = load_config(config)
        svc = build_service(cfg)
        world_file = world.data_dir / "demo-world.json"
        write_atomic(world_file, json.dumps(world.info, indent=2).encode() + b"\n")
        print(f"por demo: world written to {world_file}", file=out)
        print(
            f"por demo: dashboard {world.info['dashboard']}  holder page "
            f"{world.info['holder_page']}",
            file=out,
        )
        print(
            f"por demo: attestations every {interval_s} s into "
            f"{world.info['attestations_dir']}; Ctrl-C stops",
            file=out,
        )
        out.flush()
        done = threading.Event()
        count = {"n": 0}

        def on_recorded(r: Any) -> None:
            count["n"] += 1
            ratio = svc.store.get(r.sequence).attestation.totals.ratio
            print(
                f"por demo: attestation {r.sequence} {r.status} ratio {ratio} "
                f"published to {sum(p.ok for p in r.publications)}/{len(r.publications)} "
                f"chains",
                file=out,
            )
            for reason in r.reasons:
                print(f"  reason: {reason}", file=out)
            out.flush()
            if runs and count["n"] >= runs:
                done.set()

        svc.deps.on_recorded = on_recorded
        svc.start_api()
        svc.start_scheduler(run_now=True)
        try:
            while not done.wait(0.5):
                if svc.api_alive is not None and not svc.api_alive():
                    raise PorError("the API server stopped (is the port in use?)")
        except KeyboardInterrupt:
            print("por demo: stopping", file=out)
        return 0
    finally:
        if svc is not None:
            svc.close()
        world.stop()
