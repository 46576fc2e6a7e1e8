"""A run of the real pipeline over real readers, with the statements, ledger exports and
the clock a test chooses: custodian documents in memory (`InMemorySource`), ledger
exports as files, `MemoryStore` (it keeps source documents and chain snapshots too)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from por.core.attestation import Token
from por.core.dsse import Ed25519Signer
from por.core.policy import Policy
from por.custodians.rawstore import RawStore
from por.demo.fake_custodian import InMemorySource
from por.ledger.sources import FileLedgerSource
from por.service.history import EntrySettings, LedgerLiabilities
from por.service.run import FlowSettings, RunDeps
from por.service.wiring import CustodianReserves
from por.store.memory import MemoryStore

HKT = timezone(timedelta(hours=8))
TOKEN = Token(symbol="CNHC", decimals=6, currency="CNH")
ISSUER = Ed25519Signer(hashlib.sha256(b"flows issuer").digest())
ACCOUNT = "8870-310-1004471"
CUSTODIAN = "Harbour Trust Bank (Hong Kong) Limited"
UNIT = 10**6  # token base units per CNH


def hk_noon(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, 12, 0, tzinfo=HKT).astimezone(UTC)


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Harness:
    """RunDeps over the given readers, custodian documents and ledger files."""

    root: Path
    chains: Sequence[Any]
    clock: Clock
    flows_start: datetime
    documents: list[tuple[str, bytes]] = field(default_factory=list)
    ledger_files: list[Path] = field(default_factory=list)
    max_age_s: int = 36 * 3600
    tolerance: int | None = None
    ignore: tuple[str, ...] = ("INTEREST",)
    store: MemoryStore = field(default_factory=MemoryStore)

    def deps(self) -> RunDeps:
        source = InMemorySource.from_documents(
            name="harbour-trust", documents=self.documents, custodian=CUSTODIAN
        )
        raw = RawStore(self.root / "raw")
        reserves = CustodianReserves(
            sources=[source],
            policy=Policy(max_statement_age_s=30 * 86400),
            token=TOKEN,
            rawstore=raw,
            index=self.store,
            entries=EntrySettings.of([ACCOUNT], self.ignore),
        )
        ledger = LedgerLiabilities(
            sources=[
                FileLedgerSource(
                    name="kdm-books",
                    paths=[str(p) for p in self.ledger_files],
                    token_decimals=6,
                    token_currency="CNH",
                    issuer="kdm",
                    max_age_s=30 * 86400,
                )
            ],
            rawstore=raw,
            index=self.store,
        )
        settings = EntrySettings.of([ACCOUNT], self.ignore)
        return RunDeps(
            token=TOKEN,
            chains=self.chains,
            reserves=reserves,
            store=self.store,
            signers=[ISSUER],
            checkpoint_signer=ISSUER,
            origin="por.test/flows",
            clock=self.clock,
            random_bytes=lambda n: hashlib.sha256(str(self.clock.now).encode()).digest()[:n],
            ledger=ledger if self.ledger_files else None,
            flows=FlowSettings(
                start=self.flows_start,
                window_s=86_400,
                max_age_s=self.max_age_s,
                tolerance=self.tolerance,
                accounts=tuple(sorted(settings.accounts or ())),
                ignore=self.ignore,
            ),
            snapshots=self.store,
        )


def ledger_export(
    path: Path, *, ledger_id: str, as_of: datetime, accounts: list[dict[str, Any]]
) -> Path:
    """A por-ledger-v1 JSON export that adds up."""
    totals: dict[str, int] = {}
    for a in accounts:
        whole = int(a["balance"].replace(".", "")) * 10 ** (6 - len(a["balance"].partition(".")[2]))
        totals[a["category"]] = totals.get(a["category"], 0) + whole
    doc = {
        "format": "por-ledger-v1",
        "issuer": "kdm",
        "ledger_id": ledger_id,
        "as_of": as_of.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "currency": "CNH",
        "accounts": [{"evidence": None, **a} for a in accounts],
        "totals": {
            **{k: f"{v // UNIT}.{v % UNIT:06d}" for k, v in totals.items()},
            "all": f"{sum(totals.values()) // UNIT}.{sum(totals.values()) % UNIT:06d}",
        },
    }
    path.write_text(json.dumps(doc, indent=1))
    return path
