"""An in-memory CustodianSource for tests and the demo: it returns what it was given.

`InMemorySource.from_documents` parses raw documents with the real parsers, so a test
that uses the fake still exercises parsing and hashing; `set_documents` swaps them
between runs (a new statement arrives, a file goes stale).

No I/O here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from por.custodians.base import CustodianReport, RawDocument
from por.custodians.files import parse_document
from por.custodians.model import Holding, Statement


class InMemorySource:
    """A CustodianSource over documents held in memory."""

    def __init__(self, *, name: str, report: CustodianReport | None = None) -> None:
        self.name = name
        self.report = report or CustodianReport(custodian=name)
        self.fetches = 0

    @classmethod
    def from_documents(
        cls,
        *,
        name: str,
        documents: Sequence[tuple[str, bytes]],
        custodian: str | None = None,
        max_age_s: int | None = None,
    ) -> InMemorySource:
        src = cls(name=name)
        src.set_documents(documents, custodian=custodian, max_age_s=max_age_s)
        return src

    def set_documents(
        self,
        documents: Sequence[tuple[str, bytes]],
        *,
        custodian: str | None = None,
        max_age_s: int | None = None,
    ) -> None:
        statements: list[Statement] = []
        holdings: list[Holding] = []
        docs: list[RawDocument] = []
        for doc_name, data in documents:  # parse all first: a bad one changes nothing
            sts, hs, fmt = parse_document(data, name=doc_name, custodian=custodian)
            statements += sts
            holdings += hs
            docs.append(RawDocument.of(data, format=fmt, name=doc_name))
        self.report = CustodianReport(
            custodian=self.name,
            statements=tuple(statements),
            holdings=tuple(holdings),
            raw_documents=tuple(docs),
            max_age_s=max_age_s,
        )

    def fetch(self, now: datetime) -> CustodianReport:
        del now
        self.fetches += 1
        return self.report


__all__ = ["InMemorySource"]
