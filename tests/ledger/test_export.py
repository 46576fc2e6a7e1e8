"""Ledger exports (por-ledger-v1): accepted whole or refused whole, naming the line.

Each bad export is a valid one with one thing changed, as an issuer's books might get it
wrong: totals that do not add up, an account twice, a negative balance, a category nobody
knows, a signature that does not verify — in JSON, in CSV, and over the signed API.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from por.errors import MismatchError, SourceError
from por.ledger.export import LedgerParseError, parse_ledger
from por.ledger.liabilities import Candidate, select_exports
from por.ledger.sources import (
    API_CONTEXT,
    ApiLedgerSource,
    FileLedgerSource,
    LedgerReplayError,
    LedgerSignatureError,
    key_id,
    sign_export,
)

SEED = hashlib.sha256(b"ledger key").digest()
OTHER_SEED = hashlib.sha256(b"someone else").digest()


def _pub(seed: bytes) -> bytes:
    from Crypto.Signature import eddsa

    return bytes(eddsa.import_private_key(seed).public_key().export_key(format="raw"))


JSON_OK = """{
  "format": "por-ledger-v1",
  "issuer": "kdm",
  "ledger_id": "KDM-L-1",
  "as_of": "2026-03-01T08:00:00Z",
  "currency": "CNH",
  "accounts": [
    {"account": "ledger:kdm:R-1001", "category": "pending_redemption", "balance": "1000.50",
     "evidence": null},
    {"account": "ledger:kdm:S-2001", "category": "pending_subscription", "balance": "250",
     "evidence": null},
    {"account": "ledger:kdm:tron", "category": "other_chain_supply", "balance": "5000",
     "evidence": {"chain_id": "tron:0x2b6653dc", "token": "TXYZ", "block": "1",
                  "block_hash": "ab"}}
  ],
  "totals": {"pending_redemption": "1000.50", "pending_subscription": "250",
             "other_chain_supply": "5000", "all": "6250.50"}
}
"""

CSV_OK = """ledger_id,as_of,issuer,currency,account,category,balance,evidence
KDM-L-2,2026-03-01T16:00:00+08:00,kdm,CNH,ledger:kdm:R-1001,pending_redemption,1000.50,
KDM-L-2,2026-03-01T16:00:00+08:00,kdm,CNH,ledger:kdm:F-7,frozen,25,chain_id=eip155:1;tx=0xab
KDM-L-2,2026-03-01T16:00:00+08:00,kdm,CNH,total,pending_redemption,1000.50,
KDM-L-2,2026-03-01T16:00:00+08:00,kdm,CNH,total,frozen,25,
KDM-L-2,2026-03-01T16:00:00+08:00,kdm,CNH,total,all,1025.50,
"""


def parse(text: str, name: str = "books.json") -> object:
    return parse_ledger(text.encode(), name=name, token_decimals=6, token_currency="CNH")


def test_good_exports_parse_exactly() -> None:
    j = parse(JSON_OK)
    assert j.total == 6_250_500_000  # type: ignore[attr-defined]
    assert j.by_category()["pending_redemption"] == 1_000_500_000  # type: ignore[attr-defined]
    c = parse(CSV_OK, "books.csv")
    assert c.as_of == datetime(2026, 3, 1, 8, 0, tzinfo=UTC)  # type: ignore[attr-defined]
    assert c.accounts[1].evidence == (("chain_id", "eip155:1"), ("tx", "0xab"))  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("change", "where", "message"),
    [
        (('"all": "6250.50"', '"all": "6250.51"'), "books.json:16", "does not add up"),
        (
            ('"pending_subscription": "250",\n', '"pending_subscription": "251",\n'),
            "books.json:16",
            "does not add up",
        ),
        (
            ("ledger:kdm:S-2001", "ledger:kdm:R-1001"),
            "books.json:10 ($.accounts[1])",
            "duplicate account 'ledger:kdm:R-1001' (first on line 8)",
        ),
        (
            ('"balance": "250"', '"balance": "-250"'),
            "books.json:10 ($.accounts[1])",
            "negative balance",
        ),
        (
            ('"category": "pending_subscription"', '"category": "pending_mint"'),
            "books.json:10 ($.accounts[1])",
            "unknown category 'pending_mint'",
        ),
        (
            ('"block_hash": "ab"', '"hash": "ab"'),
            "books.json:12 ($.accounts[2])",
            "needs its evidence: block_hash missing",
        ),
        (('"balance": "250"', '"balance": 250'), "books.json", "JSON number 250"),
        (
            ('"balance": "250"', '"balance": "250.0000001"'),
            "books.json:10 ($.accounts[1])",
            "more than 6 decimal places",
        ),
        (
            ("ledger:kdm:S-2001", "ledger:other:S-2001"),
            "books.json:10 ($.accounts[1])",
            "belongs to issuer 'other'",
        ),
        (('"currency": "CNH"', '"currency": "USD"'), "books.json:1", "the token is in CNH"),
    ],
)
def test_a_bad_json_export_is_refused_whole_naming_the_line(
    change: tuple[str, str], where: str, message: str
) -> None:
    assert change[0] in JSON_OK
    with pytest.raises(LedgerParseError) as e:
        parse(JSON_OK.replace(change[0], change[1], 1))
    assert e.value.where == where
    assert message in e.value.message


@pytest.mark.parametrize(
    ("change", "where", "message"),
    [
        (("total,all,1025.50", "total,all,1025.49"), "books.csv:6", "does not add up"),
        (
            ("ledger:kdm:F-7", "ledger:kdm:R-1001"),
            "books.csv:3",
            "duplicate account 'ledger:kdm:R-1001' (first on line 2)",
        ),
        (
            ("ledger:kdm:F-7,frozen,25", "ledger:kdm:F-7,frozen,-25"),
            "books.csv:3",
            "negative balance",
        ),
        (("F-7,frozen,25", "F-7,freezing,25"), "books.csv:3", "unknown category 'freezing'"),
        (
            (
                "KDM-L-2,2026-03-01T16:00:00+08:00,kdm,CNH,ledger:kdm:F-7",
                "KDM-L-3,2026-03-01T16:00:00+08:00,kdm,CNH,ledger:kdm:F-7",
            ),
            "books.csv:3",
            "must be the same on every row",
        ),
        (
            ("KDM-L-2,2026-03-01T16:00:00+08:00,kdm,CNH,total,frozen,25,\n", ""),
            "books.csv",
            "no declared total for category frozen",
        ),
    ],
)
def test_a_bad_csv_export_is_refused_whole_naming_the_line(
    change: tuple[str, str], where: str, message: str
) -> None:
    assert change[0] in CSV_OK
    with pytest.raises(LedgerParseError) as e:
        parse(CSV_OK.replace(change[0], change[1], 1), "books.csv")
    assert e.value.where == where
    assert message in e.value.message


def _source(tmp_path: Path, data: bytes, sig: str | None) -> FileLedgerSource:
    path = tmp_path / "books.json"
    path.write_bytes(data)
    if sig is not None:
        (tmp_path / "books.json.sig").write_text(sig)
    return FileLedgerSource(
        name="books",
        paths=[str(path)],
        token_decimals=6,
        token_currency="CNH",
        issuer="kdm",
        public_key=_pub(SEED),
    )


def test_a_signed_export_verifies_and_names_its_key(tmp_path: Path) -> None:
    data = JSON_OK.encode()
    fetched = _source(tmp_path, data, sign_export(data, SEED)).fetch(datetime.now(UTC))
    assert fetched.signed_by == (key_id(_pub(SEED)),)
    assert {d.format for d in fetched.raw_documents} == {
        "por-ledger-signature",
        "por-ledger-json-v1",
    }


@pytest.mark.parametrize(
    ("sig", "message"),
    [
        (None, "has no signature"),
        ("keyid=00;sig=zz", "must be 'keyid="),
        ("other key", "must be 'keyid="),
    ],
)
def test_an_unverifiable_signature_refuses_the_export(
    tmp_path: Path, sig: str | None, message: str
) -> None:
    with pytest.raises(LedgerSignatureError, match=message):
        _source(tmp_path, JSON_OK.encode(), sig).fetch(datetime.now(UTC))


def test_a_signature_over_other_bytes_or_by_another_key_is_refused(tmp_path: Path) -> None:
    data = JSON_OK.encode()
    tampered = data.replace(b'"1000.50"', b'"1000.40"').replace(b'"6250.50"', b'"6250.40"')
    with pytest.raises(LedgerSignatureError, match="does not verify"):
        _source(tmp_path, tampered, sign_export(data, SEED)).fetch(datetime.now(UTC))
    with pytest.raises(LedgerSignatureError, match="unexpected key"):
        _source(tmp_path, data, sign_export(data, OTHER_SEED)).fetch(datetime.now(UTC))


def _api(handler: object) -> ApiLedgerSource:
    return ApiLedgerSource(
        name="books-api",
        base_url="http://ledger.test",
        public_key=_pub(SEED),
        token_decimals=6,
        token_currency="CNH",
        issuer="kdm",
        transport=httpx.MockTransport(handler),  # type: ignore[arg-type]
        nonce_factory=lambda: "ab" * 16,
    )


def _answer(now: datetime, *, nonce: str = "ab" * 16, seed: bytes = SEED) -> object:
    body = json.loads(JSON_OK) | {"nonce": nonce, "timestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ")}
    raw = json.dumps(body).encode()
    sig = sign_export(raw, seed, context=API_CONTEXT)

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.params["nonce"] == "ab" * 16
        return httpx.Response(200, content=raw, headers={"X-Ledger-Signature": sig})

    return handler


def test_the_signed_api_is_checked_in_order() -> None:
    now = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    src = _api(_answer(now))
    fetched = src.fetch(now)
    assert fetched.exports[0].total == 6_250_500_000 and fetched.signed_by[0] == key_id(_pub(SEED))
    with pytest.raises(LedgerReplayError, match="already used"):
        src.fetch(now)  # the same nonce twice
    with pytest.raises(LedgerSignatureError):
        _api(_answer(now, seed=OTHER_SEED)).fetch(now)
    with pytest.raises(LedgerReplayError, match="echo"):
        _api(_answer(now, nonce="cd" * 16)).fetch(now)
    with pytest.raises(LedgerReplayError, match="from now"):
        _api(_answer(now)).fetch(now + timedelta(hours=1))


def test_the_newest_export_at_the_as_of_counts_and_future_ones_never() -> None:
    a = parse(JSON_OK)
    b = parse(JSON_OK.replace("2026-03-01T08:00:00Z", "2026-03-02T08:00:00Z"))
    at = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    r = select_exports(
        {
            "books": [
                Candidate(export=a, signed_by=None),  # type: ignore[arg-type]
                Candidate(export=b, signed_by=None),
            ]
        },  # type: ignore[arg-type]
        as_of=at,
        max_age_s={"books": 86400},
    )
    assert r.section.sources[0].as_of == a.as_of  # type: ignore[attr-defined]
    assert any("never used" in x for x in r.reasons)
    with pytest.raises(SourceError, match="understate"):
        select_exports(
            {"books": [Candidate(export=b, signed_by=None)]},  # type: ignore[arg-type]
            as_of=at,
            max_age_s={},
        )
    with pytest.raises(MismatchError, match="in two ledger sources"):
        select_exports(
            {
                "x": [Candidate(export=a, signed_by=None)],
                "y": [Candidate(export=a, signed_by=None)],
            },  # type: ignore[arg-type]
            as_of=at,
            max_age_s={},
        )
