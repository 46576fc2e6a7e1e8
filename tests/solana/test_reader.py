"""The Solana reader against real LiteSVM token state served over JSON-RPC."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from solders.keypair import Keypair

from por.chains.base import BlockRef, ChainReader
from por.chains.solana import (
    TOKEN_2022_PROGRAM_ID,
    TOKEN_PROGRAM_ID,
    SolanaAnswerError,
    SolanaReader,
    SolanaWrongChainError,
    TokenAccount,
    build_snapshot,
    endpoint_label,
)
from por.errors import ConfigError

from .conftest import World

pytestmark = pytest.mark.xdist_group("solana")


def caip10(world: World, owner: str) -> str:
    return f"{world.sim.chain_id}:{owner}"


def test_snapshot_matches_an_independent_ledger(world: World) -> None:
    sim, ledger = world.sim, world.cnhc
    treasury, bridge = str(world.treasury.pubkey()), str(world.bridge.pubkey())
    reader = SolanaReader(
        sim.url,
        str(ledger.mint),
        chain_id=sim.chain_id,
        expected_decimals=6,
        exclusions={treasury: "treasury", f"{sim.chain_id}:{bridge}": "bridge_escrow"},
    )
    assert isinstance(reader, ChainReader)
    snap = reader.snapshot()

    assert snap.chain_id == sim.chain_id == f"solana:{sim.genesis_hash[:32]}"
    assert snap.token_address == f"{sim.chain_id}:{ledger.mint}"
    assert snap.decimals == 6
    assert snap.total_supply == ledger.supply == sim.supply(ledger.mint)
    assert snap.mismatch is None
    want_holders = {
        caip10(world, o): b
        for o, b in ledger.by_owner.items()
        if b > 0 and o not in (treasury, bridge)
    }
    assert dict(snap.holders) == want_holders
    assert len(snap.holders) >= 200
    assert {(e.account, e.balance, e.reason) for e in snap.excluded} == {
        (caip10(world, treasury), ledger.by_owner[treasury], "treasury"),
        (caip10(world, bridge), ledger.by_owner[bridge], "bridge_escrow"),
    }
    assert snap.circulating_supply == sum(want_holders.values())
    # The block is the context slot of the reads, with that slot's own blockhash and time.
    blockhash, time_s = sim.block(snap.block.number)
    assert snap.block == BlockRef(
        number=sim.slot, hash=blockhash, time=datetime.fromtimestamp(time_s, tz=UTC)
    )


def test_owner_with_two_token_accounts_is_one_holder(world: World) -> None:
    h1 = str(world.owners["h1"].pubkey())
    snap = SolanaReader(world.sim.url, str(world.cnhc.mint)).snapshot()
    # h1 received 777 in a second account on top of its first account's balance.
    assert snap.holders[caip10(world, h1)] == world.cnhc.by_owner[h1] == 5_001_000 + 777
    assert sum(1 for k in snap.holders if k.endswith(h1)) == 1


def test_token_2022_accounts_longer_than_165_bytes_are_read(world: World) -> None:
    sim, ledger = world.sim, world.cnhc22
    account = sim.svm.get_account(next(iter(ledger.accounts.values())))
    assert account is not None and len(account.data) == 170  # ImmutableOwner extension
    snap = SolanaReader(
        sim.url, str(ledger.mint), exclusions={str(world.treasury.pubkey()): "treasury"}
    ).snapshot()
    assert snap.total_supply == ledger.supply
    assert len(snap.holders) == 30 and snap.mismatch is None
    assert snap.excluded[0].balance == 10_000_000_000
    # Restricting the reader to the classic program finds none of them: a mismatch,
    # reported as data, never an exception.
    only_classic = SolanaReader(sim.url, str(ledger.mint), token_programs=(TOKEN_PROGRAM_ID,))
    snap2 = only_classic.snapshot()
    assert snap2.holders == {} and snap2.mismatch is not None
    assert snap2.mismatch.difference == ledger.supply


def test_snapshot_follows_new_transfers_at_a_later_slot(world: World) -> None:
    sim = world.sim
    mint = sim.create_mint(decimals=2, token_2022=True)
    alice, bob = Keypair(), Keypair()
    a = sim.create_token_account(mint, alice.pubkey())
    sim.mint_to(mint, a, 10_000)
    reader = SolanaReader(sim.url, str(mint))
    first = reader.snapshot()
    b = sim.create_token_account(mint, bob.pubkey())
    sim.transfer(mint, a, b, alice, 2_500)
    second = reader.snapshot()
    assert second.block.number > first.block.number
    assert dict(first.holders) == {caip10(world, str(alice.pubkey())): 10_000}
    assert dict(second.holders) == {
        caip10(world, str(alice.pubkey())): 7_500,
        caip10(world, str(bob.pubkey())): 2_500,
    }


def test_slot_skew_is_retried_until_the_reads_agree(world: World) -> None:
    sim = world.sim
    reader = SolanaReader(sim.url, str(world.cnhc.mint), retry_delay_s=0)
    before = sim.request_count.get("getTokenSupply", 0)
    # The chain moves on right after the first two supply reads: the listings come from a
    # later bank, so the reader must read again until everything is at one slot.
    with sim.faulty(advance_slot_after_supply=2):
        snap = reader.snapshot()
    assert sim.request_count["getTokenSupply"] - before == 3
    assert snap.block.number == sim.slot and snap.mismatch is None


def test_hidden_account_becomes_a_supply_mismatch_not_an_exception(world: World) -> None:
    # A node that leaves one holder out of the listing would shrink liabilities; the
    # owners' sum no longer equals getTokenSupply, so the snapshot says so.
    sim, ledger = world.sim, world.cnhc
    h9 = str(world.owners["h9"].pubkey())
    hidden = str(ledger.accounts[h9])

    def drop(answer: dict) -> dict:
        value = answer["result"]["value"]
        answer["result"]["value"] = [e for e in value if e["pubkey"] != hidden]
        return answer

    with sim.faulty(rewrite={"getProgramAccounts": drop}):
        snap = SolanaReader(sim.url, str(ledger.mint)).snapshot()
    assert snap.mismatch is not None
    assert snap.mismatch.total_supply == ledger.supply
    assert snap.mismatch.difference == ledger.by_owner[h9]
    assert caip10(world, h9) not in snap.holders
    assert "difference" in snap.mismatch.reason(snap.chain_id)


def test_wrong_cluster_is_refused(world: World) -> None:
    mainnet = "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"
    reader = SolanaReader(world.sim.url, str(world.cnhc.mint), chain_id=mainnet)
    with pytest.raises(SolanaWrongChainError) as e:
        reader.snapshot()
    assert world.sim.chain_id in str(e.value) and "127.0.0.1" in str(e.value.where)


@pytest.mark.parametrize(
    ("exclusions", "match"),
    [
        ({"11111111111111111111111111111111": "cold_wallet"}, "reason must be one of"),
        ({"not-a-key": "treasury"}, "base58"),
        ({"0OIl" * 11: "treasury"}, "base58"),
    ],
)
def test_bad_exclusion_config_is_refused(exclusions: dict[str, str], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        SolanaReader(
            "http://127.0.0.1:9",
            "So11111111111111111111111111111111111111112",
            exclusions=exclusions,
        )


def test_bad_mint_and_program_config_are_refused() -> None:
    with pytest.raises(ConfigError, match="mint"):
        SolanaReader("http://127.0.0.1:9", "xyz")
    with pytest.raises(ConfigError, match="token program"):
        SolanaReader(
            "http://127.0.0.1:9",
            TOKEN_PROGRAM_ID,
            token_programs=("11111111111111111111111111111111",),
        )


def test_endpoint_label_never_shows_api_keys() -> None:
    assert endpoint_label("https://rpc.example.com/?api-key=SECRET") == "https://rpc.example.com/…"
    assert endpoint_label("https://x.quiknode.pro/SECRETTOKEN/") == "https://x.quiknode.pro/…"
    assert endpoint_label("http://127.0.0.1:8899") == "http://127.0.0.1:8899"


def test_build_snapshot_refuses_a_token_account_listed_twice() -> None:
    # Listing the same token account twice (once per program, or a repeated page) would
    # count its balance twice.
    owner = "So11111111111111111111111111111111111111112"
    acct = TokenAccount(
        address=TOKEN_2022_PROGRAM_ID, owner=owner, amount=5, program=TOKEN_2022_PROGRAM_ID
    )
    with pytest.raises(SolanaAnswerError, match="listed twice"):
        build_snapshot(
            chain_id="solana:x",
            mint=owner,
            decimals=0,
            block=BlockRef(number=1, hash="h", time=datetime(2026, 1, 1, tzinfo=UTC)),
            total_supply=10,
            accounts=[acct, acct],
            exclusions={},
            where="t",
        )
