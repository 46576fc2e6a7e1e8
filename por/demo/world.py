"""`por demo`: the whole service on an embedded local world, on this machine only.

It starts two anvil nodes (chain ids 1 and 56, standing for Ethereum and BNB Chain) with
the demo stablecoin, a ReserveOracle and a SecureMintGuard (every mint after the genesis
supply needs this chain's mint budget) deployed on each, a Solana world on LiteSVM
behind a loopback JSON-RPC server, fresh copies of the sample custodian statements, and
about `holders` token holders with transfers going on in the background. Then it runs
the real service — the same configuration file, wiring, scheduler, store, publishers
and API as `por run` — with an attestation every `interval_s` seconds, and writes
`demo-world.json` (RPC URLs, contract addresses, sample accounts, API URL) into its data
directory. Everything listens on 127.0.0.1.

Off-chain liabilities and reconciled flows (docs/ledger.md): a signed ledger export with a
few pending redemptions, a pending subscription and supply on a chain not read; on
eip155:1 a subscription minted and a redemption burned with their payment references,
each booked on the issuer's collection account (8870-310-1009999) in a statement cut at
that moment, and one redemption burned whose payout is still pending; every later demo
mint is booked there first. The dashboard's reconciliation panel shows them matched.
"""

from __future__ import annotations

import json
import logging
import os
import random
import secrets
import shutil
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any, TextIO

from por.custodians.camt import HONG_KONG as HKT
from por.errors import ConfigError, PorError

log = logging.getLogger("por.demo")

MARKER = ".por-demo"
FLOW_ACCOUNT = "8870-310-1009999"  # the issuer's subscription/redemption collection account
LEDGER_SEED_LABEL = b"por demo ledger key"
UNIT = 10**6  # CNHC has 6 decimals
# The guard's heartbeat: the statements are yesterday's end of day and may be up to the
# policy's 48 h old; an hour more so a round is not refused the moment it turns 48 h.
GUARD_HEARTBEAT_S = 49 * 3600
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
    data_dir.mkdir(parents=True, exist_ok=True)  # an existing empty folder is fine
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

    from por.demo.anvil import (
        AnvilNode,
        deploy_oracle,
        deploy_stablecoin,
        mint_batch,
    )

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
    circulating = sum(amounts) - 70_000_000 * UNIT  # treasury and escrow are excluded
    mint_batch(w3, token, issuer=issuer, recipients=recipients, amounts=amounts)
    print(
        f"  eip155:{chain_id}: anvil at {node.url}, token {token}, oracle {oracle}, "
        f"{holders} holders",
        file=out,
    )
    return {
        "node": node,
        "token": token,
        "oracle": oracle,
        "issuer": issuer,
        "treasury": treasury,
        "bridge_escrow": escrow,
        "market_maker": market,
        "holders": accounts,
        "attestor_key": attestor_key,
        "sender_key": sender_key,
        "circulating": circulating,
    }


def _guard_evm(chain: dict[str, Any], out: TextIO) -> None:
    """From here on every mint asks the Secure Mint guard: this chain's budget from a fresh,
    FULLY_BACKED round (the genesis supply was minted before any round existed, as when an
    existing token adopts the guard)."""
    from por.demo.anvil import deploy_guard, set_mint_guard

    node = chain["node"]
    guard = deploy_guard(
        node.w3,
        oracle=chain["oracle"],
        token=chain["token"],
        heartbeat_s=GUARD_HEARTBEAT_S,
        owner=chain["issuer"],
    )
    set_mint_guard(node.w3, chain["token"], guard, issuer=chain["issuer"])
    node.mine(5)  # let `finalized` move past the mints
    chain["guard"] = guard
    print(f"  eip155:{node.chain_id}: mint guard {guard}", file=out)


def _checksum(address: str) -> str:
    from web3 import Web3

    return str(Web3.to_checksum_address(address))


def _ref(text: str) -> bytes:
    return text.encode().ljust(32, b"\0")


class FlowBook:
    """The issuer's collection account at the custodian: each booking is a new statement
    file cut at that moment (camt.053 with DtTm), so the service reads credits and debits
    as they happen and the newest balance counts."""

    def __init__(self, folder: Path, *, opening_minor: int) -> None:
        self.folder = folder
        self.balance = opening_minor
        self.count = 0
        self._last: datetime | None = None
        self._lock = threading.Lock()
        folder.mkdir(parents=True, exist_ok=True)

    def book(self, entries: list[tuple[str, int, str, str]]) -> None:
        from por.demo.statements import camt053
        from por.fileio import write_atomic

        with self._lock:
            now = datetime.now(UTC).replace(microsecond=0)
            if self._last is not None and now <= self._last:
                # one cut per second: two statements of one account at one instant with
                # different balances would (rightly) be refused as conflicting
                time.sleep((self._last + timedelta(seconds=1) - datetime.now(UTC)).total_seconds())
                now = self._last + timedelta(seconds=1)
            self._last = now
            self.count += 1
            data = camt053(
                account=FLOW_ACCOUNT,
                day=now.astimezone(HKT).date(),
                opening_minor=self.balance,
                entries=entries,
                at=now,
                statement_id=f"HTBK-FLOW-{now:%Y%m%d%H%M%S}-{self.count:05d}",
            )
            self.balance += sum(a if k == "credit" else -a for k, a, _, _ in entries)
            write_atomic(self.folder / f"flows-{self.count:05d}.xml", data)


def _reconciled_flows(chain: dict[str, Any], book: FlowBook, out: TextIO) -> None:
    """A subscription and a redemption with their references, booked and matched; one
    redemption burned whose payout is pending (in the ledger); one subscription paid in
    and not yet minted (in the ledger too)."""
    from por.demo.anvil import contract

    w3 = chain["node"].w3
    token = contract(w3, "StableToken", chain["token"])
    issuer, market = chain["issuer"], chain["market_maker"]

    def send(fn: Any, sender: str) -> None:
        h = fn.transact({"from": sender})
        w3.eth.wait_for_transaction_receipt(h, timeout=30, poll_latency=0.05)

    book.book(
        [
            ("credit", 250_000 * 100, "SUBSCRIPTION S-DEMO-0001", "HTF0000001"),
            ("credit", 15_000 * 100, "SUBSCRIPTION S-DEMO-9001", "HTF0000002"),
        ]
    )
    send(
        token.functions.mintWithReference(
            _checksum(chain["holders"][0]), 250_000 * UNIT, _ref("S-DEMO-0001")
        ),
        issuer,
    )
    send(token.functions.transfer(issuer, 200_000 * UNIT), market)
    send(token.functions.burnWithReference(120_000 * UNIT, _ref("R-DEMO-0001")), issuer)
    book.book([("debit", 120_000 * 100, "REDEMPTION PAYOUT R-DEMO-0001", "HTF0000003")])
    send(token.functions.burnWithReference(80_000 * UNIT, _ref("R-DEMO-0002")), issuer)
    print(
        "  eip155:1: subscription S-DEMO-0001 minted, redemption R-DEMO-0001 burned and paid, "
        "R-DEMO-0002 burned (payout pending), S-DEMO-9001 paid in (not yet minted)",
        file=out,
    )


LEDGER_TOTAL_BASE_UNITS = 2_142_500_500_000
"""The demo books' total (`totals.all` below, 2,142,500.50 CNHC) in base units: liabilities
the demo's reserves are sized to cover along with what is minted on chain."""


def _write_ledger(data_dir: Path) -> tuple[Path, str]:
    """The issuer's books: a signed por-ledger-v1 export of the off-chain liabilities."""
    import hashlib

    from por.fileio import write_atomic
    from por.ledger.sources import sign_export

    seed = hashlib.sha256(LEDGER_SEED_LABEL).digest()
    from Crypto.Signature import eddsa

    public = eddsa.import_private_key(seed).public_key().export_key(format="raw").hex()
    doc = {
        "format": "por-ledger-v1",
        "issuer": "kdm",
        "ledger_id": f"KDM-BOOKS-{datetime.now(UTC):%Y%m%d%H%M%S}",
        "as_of": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "currency": "CNH",
        "accounts": [
            {
                "account": "ledger:kdm:R-DEMO-0002",
                "category": "pending_redemption",
                "balance": "80000.00",
                "evidence": None,
            },
            {
                "account": "ledger:kdm:R-DEMO-0003",
                "category": "pending_redemption",
                "balance": "35000.00",
                "evidence": None,
            },
            {
                "account": "ledger:kdm:R-DEMO-0004",
                "category": "pending_redemption",
                "balance": "12500.50",
                "evidence": None,
            },
            {
                "account": "ledger:kdm:S-DEMO-9001",
                "category": "pending_subscription",
                "balance": "15000.00",
                "evidence": None,
            },
            {
                "account": "ledger:kdm:tron",
                "category": "other_chain_supply",
                "balance": "2000000.00",
                "evidence": {
                    "chain_id": "tron:0x2b6653dc",
                    "token": "TDemoCNHCToken1111111111111111111",
                    "block": "70000000",
                    "block_hash": "00" * 32,
                    "note": "demo figure: a chain por does not read",
                },
            },
        ],
        "totals": {
            "pending_redemption": "127500.50",
            "pending_subscription": "15000.00",
            "other_chain_supply": "2000000.00",
            "all": "2142500.50",
        },
    }
    folder = data_dir / "ledger"
    folder.mkdir(parents=True, exist_ok=True)
    data = (json.dumps(doc, indent=1) + "\n").encode()
    path = folder / "kdm-books.json"
    write_atomic(path, data)
    write_atomic(folder / "kdm-books.json.sig", (sign_export(data, seed) + "\n").encode())
    return path, public


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
    balances = _split_balances(rng, holders)
    for kp, amount in zip([*owners, treasury], [*balances, 30_000_000 * UNIT], strict=True):
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
        "circulating": sum(balances),
    }


SCENARIOS = ("backed", "under-collateralized", "degraded")
# eligible reserves / circulating supply the demo's custodian statements are sized to
TARGET_RATIO = {
    "backed": Fraction(105, 100),  # over-collateralised, as the HKMA expects
    "under-collateralized": Fraction(97, 100),  # a 3 % shortfall
    "degraded": Fraction(105, 100),  # backed, but the statements are too old to count
}
# statement day before the demo's day: yesterday's end of day (what a custodian delivers
# in the morning); the degraded scenario's are three days old, past the 48 h limit
STATEMENT_AGE_DAYS = {"backed": 1, "under-collateralized": 1, "degraded": 3}
USD_RATE = "7.1834"  # CNH per USD, exact
FX_HAIRCUT_BPS = 200
DEMO_POLICY: dict[str, Any] = {"fx_rates": {"USD": USD_RATE}, "fx_haircut_bps": FX_HAIRCUT_BPS}
CUSTODIAN_NAME = "Harbour Trust Bank (Hong Kong) Limited"
TOKEN_CURRENCY = "CNH"  # noqa: S105 - a currency code, not a secret


def _eligible_of(documents: list[tuple[str, bytes]], now: datetime) -> int:
    """Eligible reserves (token base units) the demo's policy gives these statements."""
    from por.core.policy import Policy
    from por.custodians.reserves import evaluate_reserves
    from por.demo.fake_custodian import InMemorySource

    src = InMemorySource.from_documents(
        name="harbour-trust", documents=documents, custodian=CUSTODIAN_NAME
    )
    policy = Policy.from_dict(DEMO_POLICY)
    _, total, _ = evaluate_reserves(
        [src.fetch(now)], policy, token_currency=TOKEN_CURRENCY, token_decimals=6, as_of=now
    )
    return total


def reserve_scale(
    circulating: int, scenario: str, now: datetime, *, other_reserves: int = 0
) -> Fraction:
    """The factor on the sample statements' amounts that makes eligible reserves the
    scenario's target ratio of `circulating` (rounding moves it by cents at most), given
    `other_reserves` (base units) already held elsewhere (the collection account)."""
    from por.demo.statements import sample_documents

    day = now.date() - timedelta(days=STATEMENT_AGE_DAYS[scenario])
    base = _eligible_of(sample_documents(day), now)
    if base <= 0:
        raise ConfigError("the sample statements hold no eligible reserves")
    # 100 CNHC over the target, so rounding each amount down never lands below it
    return (TARGET_RATIO[scenario] * circulating + 100 * UNIT - other_reserves) / base


def _write_statements(
    data_dir: Path, day: datetime, *, circulating: int, scenario: str, other_reserves: int = 0
) -> list[str]:
    from por.demo.statements import sample_documents

    folder = data_dir / "statements"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    scale = reserve_scale(circulating, scenario, day, other_reserves=other_reserves)
    statement_day = day.date() - timedelta(days=STATEMENT_AGE_DAYS[scenario])
    for name, data in sample_documents(statement_day, scale=scale):
        (folder / name).write_bytes(data)
        paths.append(str(folder / name))
    return paths


def _issue(chain: dict[str, Any], rng: random.Random, book: FlowBook | None = None) -> None:
    """The issuer mints a little on one chain, as much as the mint guard allows."""
    from por.demo.anvil import contract

    w3 = chain["node"].w3
    guard = contract(w3, "SecureMintGuard", chain["guard"])
    try:
        room = int(guard.functions.mintable().call())
    except Exception as e:  # the guard refuses (no round yet, stale, not backed)
        log.info("demo mint on eip155:%s refused by the guard: %s", chain["node"].chain_id, e)
        return
    amount = min(room, rng.randrange(1, 5_000) * 100) * 10_000  # whole cents of CNH
    if amount <= 0:
        return
    token = contract(w3, "StableToken", chain["token"])
    ref = f"S-{chain['node'].chain_id}-{secrets.token_hex(4).upper()}"
    if book is not None:  # the subscription's cash arrives first, with its reference
        book.book([("credit", amount // 10_000, f"SUBSCRIPTION {ref}", ref.replace("-", ""))])
    h = token.functions.mintWithReference(
        _checksum(rng.choice(chain["holders"])), amount, _ref(ref)
    ).transact({"from": chain["issuer"]})
    w3.eth.wait_for_transaction_receipt(h, timeout=30, poll_latency=0.05)
    log.info(
        "demo mint on eip155:%s: %d base units (the guard allowed %d)",
        chain["node"].chain_id,
        amount,
        room,
    )


def _transfers(
    evm: list[dict[str, Any]],
    stop: threading.Event,
    rng: random.Random,
    book: FlowBook | None = None,
) -> None:
    """Background market activity: the market maker pays a few holders every couple of seconds,
    sometimes new ones, and every ten seconds the issuer mints a little through the mint
    guard, so each attestation sees a different state."""
    from por.demo.anvil import transfer_batch

    tick = 0
    while not stop.wait(2.0):
        tick += 1
        for chain in evm:
            if tick % 5 == 0:
                try:
                    _issue(chain, rng, book)
                except Exception as e:  # the demo goes on
                    if stop.is_set():
                        return
                    log.warning("demo mint failed: %s", e)
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
    ledger: tuple[Path, str] | None = None,
    flows_start: datetime | None = None,
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

[policy]                    # HKMA defaults; the USD bond counts at an exact rate
fx_rates = {{ USD = "{USD_RATE}" }}
fx_haircut_bps = {FX_HAIRCUT_BPS}

[disclosure]                # the public pages and the reserve reports
report_utc_offset = "+08:00"  # reports run on Hong Kong days
holder_history = 10

{_ledger_toml(ledger, flows_start)}
[allocation]                # per-chain mint budgets (docs/budgets.md)
weights = "circulating"     # headroom shared in proportion to circulating supply
headroom_share_bps = 10000
cover_excluded = true       # treasury and escrow balances are covered first
"""
    for c in evm:
        n = c["node"]
        text += f"""
[[chains]]
kind = "evm"
chain_id = "eip155:{n.chain_id}"
rpc_urls = {_toml([n.url])}
token = "{c["token"]}"
index_from_genesis = true  # a fresh local chain: genesis is a few blocks ago
treasury = {_toml([c["treasury"]])}
bridge_escrow = {_toml([c["bridge_escrow"]])}
oracle = "{c["oracle"]}"
guard = "{c["guard"]}"
heartbeat_s = {GUARD_HEARTBEAT_S}
reference_events = true     # the token's Mint/Burn carry payment references
publisher_key_env = "POR_DEMO_PUBLISHER_{n.chain_id}"
attestor_key_envs = {_toml([f"POR_DEMO_ATTESTOR_{n.chain_id}"])}
"""
        os.environ[f"POR_DEMO_PUBLISHER_{n.chain_id}"] = c["sender_key"]
        os.environ[f"POR_DEMO_ATTESTOR_{n.chain_id}"] = c["attestor_key"]
    if sol is not None:
        s = sol["sim"]
        text += f"""
[disclosure.chain_names]
"{s.chain_id}" = "Solana (local)"

[[chains]]
kind = "solana"
chain_id = "{s.chain_id}"
rpc_url = "{s.url}"
mint = "{sol["mint"]}"
treasury = {_toml([sol["treasury"]])}
memo_keypair = "{sol["memo_keypair"]}"
reconcile = false           # the sim's own clock runs ahead of the statements'
"""
    path = d / "por.toml"
    path.write_text(text)
    return path


def _ledger_toml(ledger: tuple[Path, str] | None, flows_start: datetime | None) -> str:
    text = ""
    if ledger is not None:
        text += f"""
[[ledgers]]                 # off-chain liabilities (docs/ledger.md)
kind = "files"
name = "kdm-books"
issuer = "kdm"
paths = {_toml([str(ledger[0])])}
public_key = "{ledger[1]}"  # each export is signed: FILE.sig beside it
"""
    if flows_start is not None:
        text += f"""
[reconciliation]            # every mint and burn matched with the bank (docs/ledger.md)
start = "{flows_start.strftime("%Y-%m-%dT%H:%M:%SZ")}"
window_s = 86400
max_age_s = 172800
accounts = ["{FLOW_ACCOUNT}"]
ignore = ["INTEREST"]
"""
    return text


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
    *,
    data_dir: Path,
    port: int,
    interval_s: int,
    holders: int,
    solana: bool,
    out: TextIO,
    scenario: str = "backed",
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
        # the flows reconciled from here on: the genesis supply above is before `start`
        flows_start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
        time.sleep(max(0.0, (flows_start - datetime.now(UTC)).total_seconds()) + 1.0)
        book = FlowBook(world.data_dir / "statements" / "flows", opening_minor=500_000 * 100)
        _reconciled_flows(evm[0], book, out)
        for chain in evm:
            _guard_evm(chain, out)
        sol = _start_solana(world, sol_share, rng, out) if solana else None
        ledger = _write_ledger(world.data_dir)
        # liabilities the reserves must cover: on-chain circulating plus the issuer's books
        circulating = (
            sum(c["circulating"] for c in evm)
            + (sol["circulating"] if sol else 0)
            + LEDGER_TOTAL_BASE_UNITS
        )
        statements = _write_statements(
            world.data_dir,
            datetime.now(UTC),
            circulating=circulating,
            scenario=scenario,
            # the collection account's cash counts too (minor units, 2 decimals -> 6)
            other_reserves=book.balance * 10**4,
        )
        statements.append(str(book.folder / "flows-*.xml"))
        ratio = TARGET_RATIO[scenario]
        print(
            f"  scenario {scenario}: reserves sized to {float(ratio):.2f} x the "
            f"{circulating // UNIT:,} CNHC of liabilities (minted + the issuer's books)"
            + (", statements three days old (stale)" if scenario == "degraded" else ""),
            file=out,
        )
        port = port or free_port()
        config = _write_config(
            world,
            evm=evm,
            sol=sol,
            statements=statements,
            port=port,
            interval_s=interval_s,
            ledger=ledger,
            flows_start=flows_start,
        )
        stop = threading.Event()
        t = threading.Thread(
            target=_transfers, args=(evm, stop, rng, book), name="demo-transfers", daemon=True
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
            "scenario": scenario,
            "reserves_target_ratio": str(ratio.numerator / ratio.denominator),
            "config": str(config),
            "keys": str(world.data_dir / "keys" / "issuer.keys.json"),
            "attestations_dir": str(world.data_dir / "attestations"),
            "ledger": {"export": str(ledger[0]), "public_key": ledger[1]},
            "reconciliation": {
                "start": flows_start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "flow_account": FLOW_ACCOUNT,
                "statements": str(book.folder),
            },
            "chains": [
                {
                    "chain_id": f"eip155:{c['node'].chain_id}",
                    "rpc_url": c["node"].url,
                    "token": c["token"],
                    "oracle": c["oracle"],
                    "mint_guard": c["guard"],
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


class DemoStopped(BaseException):
    """SIGTERM or SIGINT arrived: unwind, stopping everything the demo started."""


def _stop_on_signals() -> dict[int, Any]:
    """SIGTERM and SIGINT raise DemoStopped in the main thread; returns the old handlers.

    SIGINT is installed explicitly: a shell starts a background job (`por demo &` in a
    script) with SIGINT ignored, and Python then never turns it into KeyboardInterrupt.
    """

    def handler(signum: int, frame: Any) -> None:
        raise DemoStopped(signal.Signals(signum).name)

    return {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}


def _ignore_signals_while_stopping() -> None:
    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, signal.SIG_IGN)


def run_demo(  # noqa: PLR0915 - start, run and stop in one place, in that order
    *,
    data_dir: Path,
    port: int,
    interval_s: int,
    holders: int,
    solana: bool,
    runs: int,
    out: TextIO,
    scenario: str = "backed",
) -> int:
    from por.fileio import write_atomic
    from por.service.config import load_config
    from por.service.wiring import build_service

    if holders < 10:
        raise ConfigError(f"--holders must be at least 10, got {holders}")
    if interval_s < 1:
        raise ConfigError(f"--interval must be at least 1 second, got {interval_s}")
    if scenario not in SCENARIOS:
        raise ConfigError(f"--scenario must be one of {', '.join(SCENARIOS)}, got {scenario!r}")
    old = _stop_on_signals()
    world: DemoWorld | None = None
    svc = None
    try:
        world, config = build_world(
            data_dir=data_dir,
            port=port,
            interval_s=interval_s,
            holders=holders,
            solana=solana,
            out=out,
            scenario=scenario,
        )
        cfg = load_config(config)
        svc = build_service(cfg, migrate=True)  # a new world: its database is created here
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
        # The world file appears once the API is built and serving: the URLs in it answer,
        # and a signal sent on seeing it never lands inside the app's construction
        # (pydantic builds its schemas in native code, which turns the signal's exception
        # into a SchemaError).
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
        svc.start_scheduler(run_now=True)
        while not done.wait(0.5):
            if svc.api_alive is not None and not svc.api_alive():
                raise PorError("the API server stopped (is the port in use?)")
        return 0
    except (DemoStopped, KeyboardInterrupt) as e:
        print(f"por demo: {e or 'interrupt'}: stopping everything it started", file=out)
        out.flush()
        return 0
    finally:
        _ignore_signals_while_stopping()  # a second signal must not cut the cleanup short
        try:
            if svc is not None:
                svc.close()
            if world is not None:
                world.stop()
        finally:
            for s, h in old.items():
                signal.signal(s, h)
