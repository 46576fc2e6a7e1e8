"""One LiteSVM-backed Solana RPC sim per test session, holding a real token world.

The world is built with real signed SPL Token / Token-2022 transactions; `Ledger` keeps an
independent Python account of who should hold what, so tests compare the reader's
snapshot with balances computed without the reader's code.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from por.demo.solana_sim import SolanaSim


def keypair(label: str) -> Keypair:
    return Keypair.from_seed(hashlib.sha256(f"por test {label}".encode()).digest())


@dataclass
class Ledger:
    """The balances a mint should have, tracked independently of the reader."""

    mint: Pubkey
    decimals: int
    by_owner: dict[str, int] = field(default_factory=dict)
    accounts: dict[str, Pubkey] = field(default_factory=dict)  # owner -> first account

    @property
    def supply(self) -> int:
        return sum(self.by_owner.values())

    def credit(self, owner: Pubkey, amount: int) -> None:
        self.by_owner[str(owner)] = self.by_owner.get(str(owner), 0) + amount


@dataclass
class World:
    sim: SolanaSim
    cnhc: Ledger  # SPL Token mint: >= 200 holders, transfers, burn, treasury, bridge escrow
    cnhc22: Ledger  # Token-2022 mint (accounts with the ImmutableOwner extension: 170 bytes)
    other: Ledger  # another SPL mint, for "accounts of another mint" attacks
    owners: dict[str, Keypair]
    treasury: Keypair
    bridge: Keypair


def _populate(sim: SolanaSim, ledger: Ledger, owners: list[Keypair], base: int) -> None:
    for i, owner in enumerate(owners):
        account = sim.create_token_account(ledger.mint, owner.pubkey())
        amount = base + 1_000 * i
        sim.mint_to(ledger.mint, account, amount)
        ledger.accounts[str(owner.pubkey())] = account
        ledger.credit(owner.pubkey(), amount)


@pytest.fixture(scope="session")
def world() -> Iterator[World]:
    with SolanaSim() as sim:
        owners = {f"h{i}": keypair(f"holder {i}") for i in range(220)}
        treasury, bridge = keypair("treasury"), keypair("bridge escrow")

        cnhc = Ledger(mint=sim.create_mint(decimals=6), decimals=6)
        _populate(sim, cnhc, list(owners.values()), 5_000_000)
        _populate(sim, cnhc, [treasury], 900_000_000_000)
        _populate(sim, cnhc, [bridge], 70_000_000_000)
        holders = list(owners.values())
        # Transfers between holders (each owner signs), one into a SECOND account of h1,
        # so per-owner aggregation over several token accounts is exercised.
        second = sim.create_token_account(cnhc.mint, holders[1].pubkey())
        for src, dst, amount in [(0, 2, 1_234_567), (3, 4, 5_000_000), (5, 1, 777)]:
            dest = second if dst == 1 else cnhc.accounts[str(holders[dst].pubkey())]
            sim.transfer(
                cnhc.mint, cnhc.accounts[str(holders[src].pubkey())], dest, holders[src], amount
            )
            cnhc.credit(holders[src].pubkey(), -amount)
            cnhc.credit(holders[dst].pubkey(), amount)
        # Treasury releases inventory to a holder; a holder redeems (burn).
        sim.transfer(
            cnhc.mint,
            cnhc.accounts[str(treasury.pubkey())],
            cnhc.accounts[str(holders[6].pubkey())],
            treasury,
            42_000_000,
        )
        cnhc.credit(treasury.pubkey(), -42_000_000)
        cnhc.credit(holders[6].pubkey(), 42_000_000)
        sim.burn(cnhc.mint, cnhc.accounts[str(holders[7].pubkey())], holders[7], 1_000_000)
        cnhc.credit(holders[7].pubkey(), -1_000_000)

        cnhc22 = Ledger(mint=sim.create_mint(decimals=6, token_2022=True), decimals=6)
        _populate(sim, cnhc22, holders[:30], 2_000_000)
        _populate(sim, cnhc22, [treasury], 10_000_000_000)

        other = Ledger(mint=sim.create_mint(decimals=6), decimals=6)
        _populate(sim, other, holders[:3], 9_999)

        yield World(
            sim=sim,
            cnhc=cnhc,
            cnhc22=cnhc22,
            other=other,
            owners=owners,
            treasury=treasury,
            bridge=bridge,
        )
