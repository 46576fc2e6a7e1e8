"""Real signed attestations for store, API and browser tests, built with the core modules.

`World` keeps a holder ledger and produces the next attestation of a hash chain: a
real sum tree, a real DSSE envelope (Ed25519), a real checkpoint signer. Nothing is
stubbed; the figures follow from the ledger.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from por.core.attestation import (
    PAYLOAD_TYPE,
    AllocationPolicy,
    Attestation,
    Liabilities,
    PreviousRef,
    Token,
    chain_entry_from_values,
    reserves_from_dicts,
)
from por.core.budgets import with_budgets
from por.core.dsse import Ed25519Signer, Envelope, KeyEntry, KeySet, sign_envelope
from por.core.mst import derive_salt
from por.core.policy import assess
from por.core.sumtree import SumTree
from por.core.tlog import Checkpoint, sign_checkpoint

T0 = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
ORIGIN = "por.example/test-log"
ISSUER = Ed25519Signer(hashlib.sha256(b"por test issuer").digest())
LOG_SIGNER = Ed25519Signer(hashlib.sha256(b"por test log").digest())
TOKEN = Token(symbol="CNHC", decimals=6, currency="CNH")
TREASURY = {"eip155:1": "eip155:1:0x" + "77" * 20, "eip155:56": "eip155:56:0x" + "77" * 20}


def keyset() -> KeySet:
    return KeySet(keys=(KeyEntry.for_public_key(ISSUER.public_key_raw, role="issuer"),))


def sign_cp(cp: Checkpoint) -> str:
    return sign_checkpoint(cp, key_name=ORIGIN, signer=LOG_SIGNER)


def account(chain: str, i: int) -> str:
    return f"{chain}:0x{i:040x}"


def default_holders(n: int = 40) -> dict[str, int]:
    """n holders over two chains with varied balances (base units, 6 decimals)."""
    out: dict[str, int] = {}
    for i in range(1, n + 1):
        chain = "eip155:1" if i % 3 else "eip155:56"
        out[account(chain, i)] = (i * 7919 % 1000 + 1) * 1_000_000 + i
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Built:
    attestation: Attestation
    envelope: Envelope
    tree: SumTree
    round_secret: bytes
    holders: dict[str, int]

    def record_kwargs(self) -> dict[str, Any]:
        return {
            "attestation": self.attestation,
            "envelope": self.envelope,
            "tree": self.tree,
            "round_secret": self.round_secret,
            "sign_checkpoint": sign_cp,
            "origin": ORIGIN,
        }


def build(
    sequence: int,
    previous: PreviousRef | None,
    holders: dict[str, int],
    *,
    reserves_cash: int,
    reserves_bonds: int,
    reasons: tuple[str, ...] = (),
    salt_tag: bytes = b"",
) -> Built:
    secret = hashlib.sha256(b"round %d" % sequence + salt_tag).digest()
    accounts = sorted(holders)
    tree = SumTree.build_columns(
        accounts, [holders[a] for a in accounts], b"".join(derive_salt(secret, a) for a in accounts)
    )
    chains = []
    for n, chain in enumerate(("eip155:1", "eip155:56")):
        mine = {a: b for a, b in holders.items() if a.startswith(chain + ":")}
        treasury = 5_000_000
        chains.append(
            chain_entry_from_values(
                chain_id=chain,
                token=f"{chain}:0x" + "ab" * 20,
                block_number=1000 * (n + 1) + sequence,
                block_hash=hashlib.sha256(b"%d %d" % (n, sequence)).hexdigest(),
                block_time=T0 + timedelta(minutes=sequence),
                total_supply=sum(mine.values()) + treasury,
                excluded=[(TREASURY[chain], treasury, "treasury")],
                holders=len(mine),
            )
        )
    lines = [
        {
            "custodian": "Harbour Trust Bank (Hong Kong) Limited",
            "account": "HK******1234",
            "asset_class": "cash",
            "instrument": None,
            "currency": "CNH",
            "amount": str(reserves_cash),
            "market_value": str(reserves_cash),
            "haircut_bps": 0,
            "eligible_value": str(reserves_cash),
            "ineligible_reason": None,
            "statement": {
                "format": "camt.053.001.08",
                "id": f"STMT-{sequence}",
                "as_of": "2026-11-24T16:00:00Z",
                "sha256": "ee" * 32,
            },
        },
        {
            "custodian": "Victoria Custody Services",
            "account": "VC****9876",
            "asset_class": "government_security",
            "instrument": "CGB 2027-03",
            "currency": "CNH",
            "amount": str(reserves_bonds),
            "market_value": str(reserves_bonds),
            "haircut_bps": 0,
            "eligible_value": str(reserves_bonds),
            "ineligible_reason": None,
            "statement": {
                "format": "holdings-json",
                "id": f"HOLD-{sequence}",
                "as_of": "2026-11-24T16:00:00Z",
                "sha256": "dd" * 32,
            },
        },
    ]
    circulating = sum(c.circulating_supply for c in chains)
    att = Attestation(
        sequence=sequence,
        issued_at=T0 + timedelta(minutes=sequence, seconds=30),
        as_of=T0 + timedelta(minutes=sequence),
        token=TOKEN,
        chains=tuple(chains),
        reserves=reserves_from_dicts(lines),
        liabilities=Liabilities(
            root=tree.root.hash.hex(), total=tree.root.sum, leaf_count=tree.size
        ),
        totals=assess(
            eligible_reserves=reserves_cash + reserves_bonds,
            circulating_supply=circulating,
            degraded_reasons=reasons,
        ),
        previous=previous,
    )
    att = with_budgets(att, AllocationPolicy())  # as every new attestation carries them
    env = sign_envelope(att.to_bytes(), PAYLOAD_TYPE, [ISSUER])
    return Built(
        attestation=att, envelope=env, tree=tree, round_secret=secret, holders=dict(holders)
    )


@dataclass(kw_only=True)
class World:
    """A holder ledger whose successive attestations form one hash chain."""

    holders: dict[str, int] = field(default_factory=default_holders)
    last: Attestation | None = None

    def next(
        self, *, reserves_pct: int = 110, reasons: tuple[str, ...] = (), salt_tag: bytes = b""
    ) -> Built:
        seq = 1 if self.last is None else self.last.sequence + 1
        prev = (
            None
            if self.last is None
            else PreviousRef(sequence=self.last.sequence, digest=self.last.digest())
        )
        total = sum(self.holders.values())
        reserves = total * reserves_pct // 100
        cash = reserves * 3 // 5
        return build(
            seq,
            prev,
            self.holders,
            reserves_cash=cash,
            reserves_bonds=reserves - cash,
            reasons=reasons,
            salt_tag=salt_tag,
        )

    def accept(self, built: Built) -> None:
        self.last = built.attestation

    def record(self, store: Any, **kw: Any) -> Built:
        built = self.next(**kw)
        store.record(**built.record_kwargs())
        self.accept(built)
        return built

    def transfer(self, src: str, dst: str, amount: int) -> None:
        self.holders[src] -= amount
        self.holders[dst] = self.holders.get(dst, 0) + amount
        if self.holders[src] == 0:
            del self.holders[src]
