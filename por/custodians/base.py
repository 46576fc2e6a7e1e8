"""What a custodian source hands to an attestation run, and the protocol every source follows.

A source returns one `CustodianReport` per fetch: the parsed statements and holdings
plus every raw document they came from (bytes + SHA-256), so the run can store the raw
input by hash before it references the hash in the attestation. A source parses ALL
its documents before it returns anything: a bad document raises StatementParseError
naming the file and place, and nothing from that fetch is used (ingestion is atomic).

No I/O here: this module only defines values and the protocol.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from por.custodians.model import Holding, Statement
from por.errors import FormatError


@dataclass(frozen=True, slots=True, kw_only=True)
class RawDocument:
    """The exact bytes a custodian delivered, with their SHA-256 (lowercase hex)."""

    sha256: str
    format: str
    name: str  # file name or endpoint
    data: bytes

    def __post_init__(self) -> None:
        computed = hashlib.sha256(self.data).hexdigest()
        if computed != self.sha256:
            raise FormatError(
                f"raw document hash mismatch (expected {self.sha256}, computed {computed})",
                where=self.name,
            )

    @classmethod
    def of(cls, data: bytes, *, format: str, name: str) -> RawDocument:
        return cls(sha256=hashlib.sha256(data).hexdigest(), format=format, name=name, data=data)

    def to_dict(self) -> dict[str, Any]:
        """Metadata only; the bytes live in the raw store under `sha256`."""
        return {
            "sha256": self.sha256,
            "format": self.format,
            "name": self.name,
            "size": len(self.data),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class CustodianReport:
    """Everything one source delivered in one fetch.

    `problems` are conditions the run must publish as DEGRADED reasons (e.g. a file a
    lenient source skipped); `notes` are informational. `max_age_s` overrides the
    policy's statement age limit for this source.
    """

    custodian: str
    statements: tuple[Statement, ...] = ()
    holdings: tuple[Holding, ...] = ()
    raw_documents: tuple[RawDocument, ...] = ()
    notes: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    max_age_s: int | None = None

    def __post_init__(self) -> None:
        # Every statement must be traceable to a raw document of this report.
        known = {d.sha256 for d in self.raw_documents}
        items: list[Statement | Holding] = [*self.statements, *self.holdings]
        for item in items:
            if item.sha256 not in known:
                raise FormatError(
                    f"{item.statement_id} references raw document {item.sha256} "
                    "that the report does not carry",
                    where=self.custodian,
                )


@runtime_checkable
class CustodianSource(Protocol):
    """One custodian's source of reserve data for an attestation run."""

    name: str

    def fetch(self, now: datetime) -> CustodianReport:
        """Read and parse everything; raise StatementParseError / CustodianError on failure."""
        ...


__all__ = ["CustodianReport", "CustodianSource", "RawDocument"]
