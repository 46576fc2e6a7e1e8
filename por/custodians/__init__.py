"""Custodian sources: ISO 20022 camt.053/052, MT940, signed JSON API, securities holdings.

Public API (what the service uses):

- `CustodianSource` protocol, `CustodianReport`, `RawDocument`   (base)
- `FileSource` (files/globs of any format), `CustodianApiSource` (signed HTTP API)
- `parse_document` (sniffs the format) and the parsers `parse_camt`, `parse_mt940`,
  `parse_holdings_csv`, `parse_holdings_json`
- `Statement`, `Holding`, `StatementParseError`, `UnsafeXmlError`   (model)
- `RawStore`: content-addressed, write-once store of raw statement bytes
- `evaluate_reserves(reports, policy, *, token_currency, token_decimals, as_of)`
  -> (reserve lines, eligible total in token base units, DEGRADED reasons)

docs/custodians.md describes the formats, the API signature scheme and the rules. The
in-memory fake (`InMemorySource`) and the sample statements live in por.demo.
"""

from por.custodians.api import CustodianApiSource
from por.custodians.base import CustodianReport, CustodianSource, RawDocument
from por.custodians.camt import parse_camt
from por.custodians.files import FileSource, parse_document
from por.custodians.holdings import parse_holdings_csv, parse_holdings_json
from por.custodians.model import Holding, Statement, StatementParseError, UnsafeXmlError
from por.custodians.mt940 import parse_mt940
from por.custodians.rawstore import RawStore
from por.custodians.reserves import evaluate_reserves

__all__ = [
    "CustodianApiSource",
    "CustodianReport",
    "CustodianSource",
    "FileSource",
    "Holding",
    "RawDocument",
    "RawStore",
    "Statement",
    "StatementParseError",
    "UnsafeXmlError",
    "evaluate_reserves",
    "parse_camt",
    "parse_document",
    "parse_holdings_csv",
    "parse_holdings_json",
    "parse_mt940",
]
