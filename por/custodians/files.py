"""Statement files on disk as a CustodianSource, and the one dispatcher over all parsers.

`parse_document(data, name=..., custodian=...)` sniffs the format (camt.052/053 XML,
MT940, holdings CSV/JSON) unless told, and returns everything the file holds or
raises StatementParseError naming the file and place. `FileSource` reads configured
files (paths or glob patterns), parses ALL of them first, and only then stores the raw
bytes (if given a RawStore) and returns a report: a bad file leaves no trace.

I/O: reads the configured files; writes only through the optional RawStore.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from datetime import datetime, tzinfo
from pathlib import Path

from por.custodians.base import CustodianReport, RawDocument
from por.custodians.camt import HONG_KONG, detect_camt, parse_camt
from por.custodians.holdings import detect_holdings, parse_holdings_csv, parse_holdings_json
from por.custodians.model import Holding, Statement, StatementParseError
from por.custodians.mt940 import DEFAULT_ENCODING, check_encoding, detect_mt940, parse_mt940
from por.custodians.rawstore import RawStore
from por.errors import ConfigError, CustodianError

FORMATS = ("camt", "mt940", "holdings-csv", "holdings-json")


def detect_format(data: bytes) -> str | None:
    """Best guess of the document kind from its first bytes, or None."""
    if detect_camt(data):
        return "camt"
    kind = detect_holdings(data)
    if kind:
        return kind
    if detect_mt940(data):
        return "mt940"
    return None


def parse_document(
    data: bytes,
    *,
    name: str,
    custodian: str | None = None,
    fmt: str | None = None,
    local_tz: tzinfo = HONG_KONG,
    encoding: str = DEFAULT_ENCODING,
) -> tuple[list[Statement], list[Holding], str]:
    """(statements, holdings, format) of one raw document; StatementParseError if bad.

    `encoding` is that of MT940 text; XML documents are decoded by their own declaration.
    """
    kind = fmt or detect_format(data)
    if kind == "camt":
        sts = parse_camt(data, name=name, custodian=custodian, local_tz=local_tz)
        return sts, [], sts[0].format
    if kind == "mt940":
        if not custodian:
            raise StatementParseError("MT940 names no custodian; configure one", where=name)
        sts = parse_mt940(
            data, name=name, custodian=custodian, local_tz=local_tz, encoding=encoding
        )
        return sts, [], "mt940"
    if kind == "holdings-csv":
        return [], parse_holdings_csv(data, name=name), kind
    if kind == "holdings-json":
        return [], parse_holdings_json(data, name=name), kind
    if kind is None:
        raise StatementParseError(
            "unknown document: not camt.052/053 XML, MT940, or holdings CSV/JSON", where=name
        )
    raise ConfigError(f"unknown format {kind!r}; known: {', '.join(FORMATS)}", where=name)


class FileSource:
    """Statements and holdings from files: each configured path may be a glob pattern."""

    def __init__(
        self,
        *,
        name: str,
        paths: Sequence[str | os.PathLike[str]],
        custodian: str | None = None,
        formats: dict[str, str] | None = None,
        rawstore: RawStore | None = None,
        max_age_s: int | None = None,
        on_error: str = "raise",
        local_tz: tzinfo = HONG_KONG,
        encoding: str = DEFAULT_ENCODING,
    ) -> None:
        if on_error not in ("raise", "skip"):
            raise ConfigError("on_error must be 'raise' or 'skip'", where=f"custodian {name}")
        self.name = name
        self.paths = [str(p) for p in paths]
        self.custodian = custodian
        self.formats = dict(formats or {})  # file name -> format, overriding detection
        self.rawstore = rawstore
        self.max_age_s = max_age_s
        self.on_error = on_error
        self.local_tz = local_tz
        try:
            self.encoding = check_encoding(encoding, where=f"custodian {name}")
        except StatementParseError as e:
            raise ConfigError(e.message, where=e.where) from None

    def files(self) -> list[Path]:
        found: list[Path] = []
        for p in self.paths:
            matches = sorted(glob.glob(p)) if glob.has_magic(p) else [p]
            if not matches:
                raise CustodianError(f"no file matches {p}", where=self.name)
            found.extend(Path(m) for m in matches)
        return found

    def fetch(self, now: datetime) -> CustodianReport:
        del now  # files carry their own as-of times; staleness is judged by the policy
        statements: list[Statement] = []
        holdings: list[Holding] = []
        docs: list[RawDocument] = []
        problems: list[str] = []
        for path in self.files():
            try:
                data = path.read_bytes()
            except OSError as e:
                raise CustodianError(f"cannot read: {e}", where=str(path)) from e
            try:
                sts, hs, fmt = parse_document(
                    data,
                    name=str(path),
                    custodian=self.custodian,
                    fmt=self.formats.get(path.name),
                    local_tz=self.local_tz,
                    encoding=self.encoding,
                )
            except StatementParseError as e:
                if self.on_error == "raise":
                    raise
                problems.append(f"skipped unusable file: {e}")
                continue
            statements += sts
            holdings += hs
            docs.append(RawDocument.of(data, format=fmt, name=str(path)))
        report = CustodianReport(
            custodian=self.name,
            statements=tuple(statements),
            holdings=tuple(holdings),
            raw_documents=tuple(docs),
            problems=tuple(problems),
            max_age_s=self.max_age_s,
        )
        if self.rawstore is not None:  # only now: everything above parsed
            self.rawstore.put_all(report.raw_documents)
        return report


__all__ = ["FORMATS", "FileSource", "detect_format", "parse_document"]
