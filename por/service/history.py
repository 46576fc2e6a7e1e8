"""What a run keeps so that any past time can be attested again, and what it reads then.

Each regular run stores, beside the raw bytes (`RawStore`), what it parsed from every
custodian document and ledger export (`por_source_documents`: statements, holdings, the
booked entries the flow reconciliation reads, ledger accounts), and a snapshot of every
chain whose nodes keep no history (`por_chain_snapshots`, Solana). An attestation as of a
past time T then values the documents that were valid at T:

- custodians: every statement and holding dated at or before T (plus the policy's future
  skew), with the usual rules of `evaluate_reserves` judged at T (the newest per account
  counts, staleness against T); the raw bytes must still be in the raw store;
- ledgers: per source, the newest export dated at or before T (`select_exports`).

Also here: the booked entries of a run's statements (`entries_of`), and the ledger
evaluator of the run (`LedgerLiabilities`). I/O: the store and the raw store given.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from por.core.attestation import Token
from por.core.flows import BankEntry, account_ref
from por.custodians.base import CustodianReport, CustodianSource, RawDocument
from por.custodians.model import Holding, Statement, StatementParseError, account_key
from por.custodians.rawstore import RawStore
from por.errors import PorError, SourceError, StoreError
from por.ledger.export import LedgerExport
from por.ledger.liabilities import Candidate, select_exports
from por.ledger.sources import LedgerSource
from por.service.run import LedgerLeaf, LiabilityResult
from por.store.base import SourceDocument

log = logging.getLogger("por.history")


class DocumentIndex(Protocol):
    def record_source_document(self, doc: SourceDocument) -> None: ...

    def source_documents(self, kind: str, source: str) -> list[SourceDocument]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class EntrySettings:
    """Which statement entries are token flows (`[reconciliation]` accounts and ignore)."""

    accounts: frozenset[str] | None = None  # account_ref()s; None: every account
    ignore: tuple[str, ...] = ()

    @classmethod
    def of(cls, accounts: Sequence[str], ignore: Sequence[str]) -> EntrySettings:
        return cls(
            accounts=frozenset(account_ref(account_key(a)) for a in accounts) if accounts else None,
            ignore=tuple(ignore),
        )


def entries_of(
    report: CustodianReport,
    *,
    token: Token,
    settings: EntrySettings,
    encoding: str = "utf-8",
) -> tuple[dict[str, list[BankEntry]], list[str]]:
    """Per raw document (by SHA-256), the booked entries it carries; and the problems
    (a document whose entries cannot be read exactly: the run says so, DEGRADED)."""
    from por.custodians.entries import statement_entries

    custodian_of = {s.sha256: s.custodian for s in report.statements}
    out: dict[str, list[BankEntry]] = {}
    problems: list[str] = []
    for doc in report.raw_documents:
        if doc.sha256 not in custodian_of:
            continue
        try:
            out[doc.sha256] = statement_entries(
                doc.data,
                name=doc.name,
                fmt=doc.format,
                custodian=custodian_of[doc.sha256],
                token_currency=token.currency,
                token_decimals=token.decimals,
                encoding=encoding,
                ignore=settings.ignore,
                accounts=settings.accounts,
            )
        except StatementParseError as e:
            problems.append(f"entries of {doc.name} not read, flows incomplete: {e}")
    return out, problems


def index_report(
    index: DocumentIndex,
    source: str,
    report: CustodianReport,
    entries: Mapping[str, Sequence[BankEntry]],
) -> None:
    """Keep what each raw document of `report` gave (once per source and SHA-256)."""
    for doc in report.raw_documents:
        sts = [s for s in report.statements if s.sha256 == doc.sha256]
        hs = [h for h in report.holdings if h.sha256 == doc.sha256]
        if not sts and not hs:
            continue  # a signature header: kept raw, nothing parsed from it
        times = [s.as_of for s in sts] + [h.as_of for h in hs]
        parsed = {
            "statements": [s.to_dict() for s in sts],
            "holdings": [h.to_dict() for h in hs],
            "entries": [e.to_dict() for e in entries.get(doc.sha256, ())],
            "max_age_s": report.max_age_s,
        }
        index.record_source_document(
            SourceDocument(
                kind="custodian",
                source=source,
                sha256=doc.sha256,
                format=doc.format,
                name=doc.name,
                as_of=max(times),
                parsed_json=json.dumps(parsed, separators=(",", ":")).encode(),
            )
        )


def reports_at(
    index: DocumentIndex,
    rawstore: RawStore,
    sources: Sequence[CustodianSource],
    *,
    as_of: datetime,
    max_future_skew_s: int,
) -> tuple[list[CustodianReport], list[BankEntry], list[str]]:
    """The custodian reports valid at `as_of`, rebuilt from stored documents."""
    latest = as_of + timedelta(seconds=max_future_skew_s)
    reports: list[CustodianReport] = []
    entries: list[BankEntry] = []
    reasons: list[str] = []
    for src in sources:
        docs = [
            d
            for d in index.source_documents("custodian", src.name)
            if d.as_of is not None and d.as_of <= latest
        ]
        if not docs:
            reasons.append(
                f"custodian {src.name}: no stored statement dated at or before "
                f"{as_of.strftime('%Y-%m-%dT%H:%M:%SZ')}, counted as zero"
            )
            continue
        statements: list[Statement] = []
        holdings: list[Holding] = []
        raws: list[RawDocument] = []
        max_age: int | None = None
        for d in docs:
            parsed = json.loads(d.parsed_json)
            sts = [
                s
                for s in (Statement.from_dict(x, where=d.name) for x in parsed["statements"])
                if s.as_of <= latest
            ]
            hs = [
                h
                for h in (Holding.from_dict(x, where=d.name) for x in parsed["holdings"])
                if h.as_of <= latest
            ]
            if not sts and not hs:
                continue
            data = rawstore.get(d.sha256) if d.sha256 in rawstore else None
            if data is None:
                raise StoreError(
                    f"the raw bytes of {d.name} ({d.sha256}) are not in the raw store: "
                    "an attestation must reference documents an auditor can fetch",
                    where=rawstore.where(d.sha256),
                )
            statements += sts
            holdings += hs
            raws.append(RawDocument(sha256=d.sha256, format=d.format, name=d.name, data=data))
            entries += [
                BankEntry.from_dict(e, where=f"{d.name} entries") for e in parsed["entries"]
            ]
            max_age = parsed.get("max_age_s", max_age)
        reports.append(
            CustodianReport(
                custodian=src.name,
                statements=tuple(statements),
                holdings=tuple(holdings),
                raw_documents=tuple(raws),
                max_age_s=max_age,
            )
        )
    return reports, entries, reasons


# --- ledgers -------------------------------------------------------------------------------


def _result(selected: Any) -> LiabilityResult:
    return LiabilityResult(
        leaves=tuple(LedgerLeaf(account=a.account, balance=a.balance) for a in selected.accounts),
        section=selected.section,
        degraded_reasons=selected.reasons,
    )


@dataclass(slots=True)
class LedgerLiabilities:
    """The run's LedgerEvaluator: fetch every ledger source, keep the raw exports and what
    they said, and pick the export that counts (por.ledger.liabilities)."""

    sources: Sequence[LedgerSource]
    rawstore: RawStore
    index: DocumentIndex | None = None
    max_future_skew_s: int = 300
    max_age_s: dict[str, int] = field(default_factory=dict)

    def evaluate(self, *, as_of: datetime) -> LiabilityResult:
        offered: dict[str, list[Candidate]] = {}
        for src in self.sources:
            try:
                fetched = src.fetch(as_of)
            except PorError as e:
                raise SourceError(
                    f"ledger {src.name} cannot be read, no attestation (off-chain liabilities "
                    f"would be left out): {e}",
                    where=f"ledger {src.name}",
                ) from e
            self.rawstore.put_all(fetched.raw_documents)
            if fetched.max_age_s is not None:
                self.max_age_s[src.name] = fetched.max_age_s
            offered[src.name] = [
                Candidate(export=x, signed_by=k)
                for x, k in zip(fetched.exports, fetched.signed_by, strict=True)
            ]
            if self.index is not None:
                for export, k in zip(fetched.exports, fetched.signed_by, strict=True):
                    self.index.record_source_document(
                        SourceDocument(
                            kind="ledger",
                            source=src.name,
                            sha256=export.sha256,
                            format=export.format,
                            name=export.name,
                            as_of=export.as_of,
                            parsed_json=json.dumps(
                                {"export": export.to_dict(), "signed_by": k},
                                separators=(",", ":"),
                            ).encode(),
                        )
                    )
        return _result(
            select_exports(
                offered,
                as_of=as_of,
                max_age_s=self.max_age_s,
                max_future_skew_s=self.max_future_skew_s,
            )
        )

    def evaluate_at(self, *, as_of: datetime) -> LiabilityResult:
        if self.index is None:
            raise SourceError("no stored ledger exports to read as of a past time")
        offered: dict[str, list[Candidate]] = {}
        for src in self.sources:
            docs = self.index.source_documents("ledger", src.name)
            offered[src.name] = []
            for d in docs:
                parsed = json.loads(d.parsed_json)
                if d.sha256 not in self.rawstore:
                    raise StoreError(
                        f"the raw export {d.name} ({d.sha256}) is not in the raw store",
                        where=f"ledger {src.name}",
                    )
                offered[src.name].append(
                    Candidate(
                        export=LedgerExport.from_dict(parsed["export"]),
                        signed_by=parsed["signed_by"],
                    )
                )
            if getattr(src, "max_age_s", None) is not None:
                self.max_age_s[src.name] = src.max_age_s  # type: ignore[attr-defined]
        # a future-dated export is simply not valid then: leave it out quietly
        latest = as_of + timedelta(seconds=self.max_future_skew_s)
        offered = {k: [c for c in v if c.export.as_of <= latest] for k, v in offered.items()}
        return _result(
            select_exports(
                offered,
                as_of=as_of,
                max_age_s=self.max_age_s,
                max_future_skew_s=self.max_future_skew_s,
            )
        )


__all__ = [
    "DocumentIndex",
    "EntrySettings",
    "LedgerLiabilities",
    "entries_of",
    "index_report",
    "reports_at",
]
