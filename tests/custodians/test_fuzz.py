"""Fuzzing every custodian parser: only the declared parse error may ever escape.

Two drivers over the real sample files:
- a seeded random mutation loop (the bulk: byte flips, inserts, deletes, duplicated and
  truncated ranges, spliced "interesting" tokens, line/element shuffles), cheap enough
  to run about 100,000 inputs in total within the time budget;
- Hypothesis with structural strategies (text of one element/field/cell replaced by
  generated values, elements dropped or duplicated), which shrinks any failure.

Counts per parser are printed (pytest -s) and asserted, so the total is visible.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from datetime import UTC, datetime
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from por.custodians.api import ReplayError, StaleResponseError, parse_response
from por.custodians.camt import parse_camt
from por.custodians.files import parse_document
from por.custodians.holdings import parse_holdings_csv, parse_holdings_json
from por.custodians.model import StatementParseError
from por.custodians.mt940 import parse_mt940
from tests.custodians.conftest import HT, sample

NOW = datetime(2025, 6, 30, 16, 30, tzinfo=UTC)
NONCE = "ab" * 16
API_BODY = json.dumps(
    {
        "format": "custodian-api-v1",
        "custodian": HT,
        "nonce": NONCE,
        "timestamp": "2025-06-30T16:30:00Z",
        "statement_id": "HTBK-API-1",
        "accounts": [
            {
                "account": "8870-310-1004471",
                "currency": "CNH",
                "closing_booked": "415008117.35",
                "closing_available": "-1.5",
                "as_of": "2025-06-30T16:00:00Z",
            }
        ],
    }
).encode()


def _api(data: bytes) -> object:
    return parse_response(
        data,
        name="u",
        sent_nonce=NONCE,
        seen_nonces=set(),
        now=NOW,
        max_skew_s=300,
        max_age_s=86400,
    )


# parser, its declared errors, the seeds it is mutated from, loop count
TARGETS: dict[
    str, tuple[Callable[[bytes], object], tuple[type[Exception], ...], list[bytes], int]
] = {
    "camt": (
        lambda b: parse_camt(b, name="f"),
        (StatementParseError,),
        [
            sample("harbour_trust_camt053_v08.xml"),
            sample("harbour_trust_camt053_v02.xml"),
            sample("harbour_trust_camt052_v08.xml"),
            sample("issue11/raiffeisen_ch_dt_offset.xml"),
        ],
        40_000,
    ),
    "mt940": (
        lambda b: parse_mt940(b, name="f", custodian=HT),
        (StatementParseError,),
        [
            sample("harbour_trust_mt940.txt"),
            sample("issue11/rabobank_legacy_dot.sta"),
            sample("issue11/asn_long_reference.sta"),
            sample("issue11/zenith_blank_28c.sta"),
        ],
        35_000,
    ),
    "mt940-cp852": (
        lambda b: parse_mt940(b, name="f", custodian=HT, encoding="cp852"),
        (StatementParseError,),
        [sample("issue11/unicredit_hu_cp852.sta")],
        5_000,
    ),
    "holdings-csv": (
        lambda b: parse_holdings_csv(b, name="f"),
        (StatementParseError,),
        [sample("harbour_trust_holdings.csv")],
        25_000,
    ),
    "holdings-json": (
        lambda b: parse_holdings_json(b, name="f"),
        (StatementParseError,),
        [sample("harbour_trust_holdings.json")],
        20_000,
    ),
    "api": (_api, (StatementParseError, ReplayError, StaleResponseError), [API_BODY], 20_000),
    "any": (
        lambda b: parse_document(b, name="f", custodian=HT),
        (StatementParseError,),
        [sample("harbour_trust_mt940.txt"), sample("harbour_trust_holdings.csv")],
        10_000,
    ),
}

TOKENS = [
    b"<",
    b">",
    b"</",
    b"/>",
    b"&",
    b"&amp;",
    b"&#0;",
    b"<!DOCTYPE x>",
    b"<![CDATA[",
    b"]]>",
    b"\x00",
    b"\xff",
    b"\xef\xbb\xbf",
    b"-",
    b",",
    b".",
    b":",
    b"/",
    b"\n",
    b"\r\n",
    b"{",
    b"}",
    b'"',
    b"'",
    b"9" * 40,
    b"0",
    b"-0",
    b"1e9",
    b"NaN",
    b"CRDT",
    b"DBIT",
    b"CLBD",
    b"ITBD",
    b"C",
    b"D",
    b":62F:",
    b":64:",
    b":20:",
    b":25:",
    b":61:",
    b"2025-02-30",
    b"999999",
    b"null",
    b"[]",
    b"{}",
    b"true",
    b"1.00000001",
    b"\xc3\x28",
    b"\t",
    b" ",
    b'xmlns:a="x"',
]


def mutate(rng: random.Random, data: bytes) -> bytes:
    """One to four random edits, byte-wise and line-wise."""
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        n = len(b)
        op = rng.randrange(9)
        i = rng.randrange(n + 1) if n else 0
        if op == 0 and n:
            b[min(i, n - 1)] = rng.randrange(256)
        elif op == 1:
            b[i:i] = bytes([rng.randrange(256)])
        elif op == 2 and n:
            del b[i : i + rng.randint(1, 64)]
        elif op == 3 and n:
            j = min(n, i + rng.randint(1, 200))
            b[j:j] = b[i:j]
        elif op == 4:
            b[i:i] = rng.choice(TOKENS)
        elif op == 5:
            del b[i:]
        elif op == 6:  # swap two lines
            lines = bytes(b).split(b"\n")
            if len(lines) > 1:
                x, y = rng.randrange(len(lines)), rng.randrange(len(lines))
                lines[x], lines[y] = lines[y], lines[x]
                b = bytearray(b"\n".join(lines))
        elif op == 7:  # replace a token of digits with another number
            m = list(re.finditer(rb"[0-9]+", bytes(b)))
            if m:
                t = rng.choice(m)
                b[t.start() : t.end()] = str(
                    rng.choice([0, 1, 10 ** rng.randint(1, 40), rng.randrange(10**6)])
                ).encode()
        else:  # drop or duplicate a whole line
            lines = bytes(b).split(b"\n")
            k = rng.randrange(len(lines))
            if rng.random() < 0.5:
                del lines[k]
            else:
                lines.insert(k, lines[k])
            b = bytearray(b"\n".join(lines))
    return bytes(b)


def _run(
    parse: Callable[[bytes], object], allowed: tuple[type[Exception], ...], data: bytes
) -> bool:
    try:
        parse(data)
    except allowed:
        return False
    except Exception as e:
        raise AssertionError(f"{type(e).__name__} escaped for input {data[:300]!r}...") from e
    return True


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_mutation_loop(target: str) -> None:
    parse, allowed, seeds, count = TARGETS[target]
    rng = random.Random(f"por-fuzz-{target}")
    for s in seeds:
        assert _run(parse, allowed, s), f"seed file must parse: {target}"
    ok = 0
    for _ in range(count):
        ok += _run(parse, allowed, mutate(rng, rng.choice(seeds)))
    print(f"\nfuzz {target}: {count} mutated inputs, {ok} still parsed, {count - ok} refused")
    assert 0 < ok < count  # the mutator both breaks files and keeps some valid


# ---- Hypothesis: structural mutations, shrinkable -----------------------------------

FUZZ = settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
    derandomize=True,
)
V08 = sample("harbour_trust_camt053_v08.xml").decode()
MT = sample("harbour_trust_mt940.txt").decode()
CSV = sample("harbour_trust_holdings.csv").decode()
ELEMENT_TEXT = list(re.finditer(r">([^<>\s][^<>]*)<", V08))
values = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [
            "",
            "-1",
            "1.000001",
            "1" * 40,
            "2025-13-01",
            "2025-06-30T25:00:00",
            "CRDT",
            "DBIT",
            "ITBD",
            "&amp;",
            "]]>",
            "<a/>",
            "CNH",
            "cnh",
            "USD",
        ]
    ),
)


@FUZZ
@given(idx=st.integers(0, len(ELEMENT_TEXT) - 1), value=values, drop=st.booleans())
def test_camt_structural(idx: int, value: str, drop: bool) -> None:
    m = ELEMENT_TEXT[idx]
    esc = value.replace("&", "&amp;").replace("<", "&lt;") if drop else value
    doc = V08[: m.start(1)] + esc + V08[m.end(1) :]
    _run(
        lambda b: parse_camt(b, name="f"),
        (StatementParseError,),
        doc.encode("utf-8", "surrogatepass"),
    )


TAGS = sorted(set(re.findall(r"<([A-Za-z]+)[ >]", V08)))


@FUZZ
@given(tag=st.sampled_from(TAGS), op=st.sampled_from(["drop", "dup", "rename"]))
def test_camt_element_drop_dup_rename(tag: str, op: str) -> None:
    pat = re.compile(rf"<{tag}\b[^>]*>.*?</{tag}>", re.S)
    m = pat.search(V08)
    if m is None:
        return
    el = m.group(0)
    new = {"drop": "", "dup": el + el, "rename": el.replace(tag, tag + "X")}[op]
    _run(
        lambda b: parse_camt(b, name="f"),
        (StatementParseError,),
        (V08[: m.start()] + new + V08[m.end() :]).encode(),
    )


MT_LINES = MT.split("\n")


@FUZZ
@given(line=st.integers(0, len(MT_LINES) - 1), value=st.text(max_size=40))
def test_mt940_line_replaced(line: int, value: str) -> None:
    lines = list(MT_LINES)
    head = lines[line][: lines[line].find(":", 1) + 1] if lines[line].startswith(":") else ""
    lines[line] = head + value
    _run(
        lambda b: parse_mt940(b, name="f", custodian=HT),
        (StatementParseError,),
        "\n".join(lines).encode("utf-8", "surrogatepass"),
    )


CSV_ROWS = [r.split(",") for r in CSV.strip().split("\n")]


@FUZZ
@given(
    row=st.integers(1, len(CSV_ROWS) - 1), col=st.integers(0, len(CSV_ROWS[0]) - 1), value=values
)
def test_holdings_csv_cell(row: int, col: int, value: str) -> None:
    rows = [list(r) for r in CSV_ROWS]
    rows[row][col] = value
    data = "\n".join(",".join(r) for r in rows).encode("utf-8", "surrogatepass")
    _run(lambda b: parse_holdings_csv(b, name="f"), (StatementParseError,), data)


json_values = st.recursive(
    st.none() | st.booleans() | st.text(max_size=20) | st.integers(),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
    max_leaves=6,
)
HJ = json.loads(sample("harbour_trust_holdings.json"))
HJ_KEYS = sorted(HJ["holdings"][0])


@FUZZ
@given(
    key=st.sampled_from([*HJ_KEYS, "as_of", "custodian", "format", "holdings"]), value=json_values
)
def test_holdings_json_value(key: str, value: object) -> None:
    doc = json.loads(json.dumps(HJ))
    if key in doc:
        doc[key] = value
    else:
        doc["holdings"][0][key] = value
    _run(
        lambda b: parse_holdings_json(b, name="f"), (StatementParseError,), json.dumps(doc).encode()
    )


API = json.loads(API_BODY)


@FUZZ
@given(
    key=st.sampled_from(
        [
            "timestamp",
            "nonce",
            "custodian",
            "statement_id",
            "accounts",
            "closing_booked",
            "closing_available",
            "as_of",
            "currency",
            "account",
        ]
    ),
    value=json_values,
)
def test_api_value(key: str, value: object) -> None:
    doc = json.loads(json.dumps(API))
    if key in doc:
        doc[key] = value
    else:
        doc["accounts"][0][key] = value
    _run(_api, (StatementParseError, ReplayError, StaleResponseError), json.dumps(doc).encode())


# ---- the figure grammar: a figure is the whole field read exactly, or a refusal ------

AMOUNT_TEXT = st.one_of(
    st.text(alphabet="0123456789,.", max_size=20),
    st.text(alphabet="0123456789,. -+XeE\t", max_size=20),
    st.from_regex(r"[0-9]{1,15}[,.][0-9]{0,6}", fullmatch=True),
)


def _independent_mt940_amount(text: str) -> Fraction | None:
    """An MT940 amount read by a separate rule (None: it must be refused). Trailing blanks
    end a line in real files and are not part of the field."""
    m = re.fullmatch(r"([0-9]+)([,.])([0-9]*)", text.rstrip(" \t"))
    if m is None or len(m.group(3)) > 5 or (m.group(2) == "." and len(m.group(3)) == 3):
        return None
    return Fraction(int(m.group(1) + m.group(3)), 10 ** len(m.group(3)))


@FUZZ
@given(text=AMOUNT_TEXT, tag=st.sampled_from(["62F", "62M", "64"]), mark=st.sampled_from("CD"))
def test_mt940_balance_amount_is_whole_field_or_refused(text: str, tag: str, mark: str) -> None:
    closing = f":{tag}:{mark}250630EUR{text}" if tag != "64" else ":62F:C250630EUR1,00"
    avail = f"\n:64:{mark}250630EUR{text}" if tag == "64" else ""
    data = f":20:R\n:25:NL91ABNA0417164300\n{closing}{avail}\n"
    want = _independent_mt940_amount(text)
    try:
        (s,) = parse_mt940(data.encode(), name="f", custodian=HT)
    except StatementParseError as e:
        assert want is None, f"refused a valid amount {text!r}: {e}"
        assert e.where in ("f:3", "f:4") and repr(text.rstrip(" \t")) in e.message
        return
    assert want is not None, f"accepted {text!r}"
    got = s.closing_available if tag == "64" else s.closing_booked
    assert got is not None
    assert Fraction(got, 10**s.decimals) == (-want if mark == "D" else want)


def _independent_xs_amount(text: str) -> Fraction | None:
    m = re.fullmatch(r"([+-]?)([0-9]*)(?:\.([0-9]*))?", text.strip(" \t\n\r"))
    if m is None or not (m.group(2) or m.group(3)) or len(m.group(3) or "") > 5:
        return None
    if len((m.group(2) or "").lstrip("0") + (m.group(3) or "")) > 18:  # totalDigits 18
        return None
    value = Fraction(int((m.group(2) or "0") + (m.group(3) or "")), 10 ** len(m.group(3) or ""))
    return None if m.group(1) == "-" and value != 0 else value


@FUZZ
@given(text=AMOUNT_TEXT)
def test_camt_amount_is_whole_element_or_refused(text: str) -> None:
    body = V08.replace(">415008117.35</Amt>", f">{text}</Amt>", 1)  # the CLBD balance
    want = _independent_xs_amount(text)
    try:
        statements = parse_camt(body.encode(), name="f")
    except StatementParseError as e:
        assert want is None, f"refused a valid amount {text!r}: {e}"
        assert e.where is not None and "/Bal[2]/Amt" in e.where
        return
    assert want is not None, f"accepted {text!r}"
    got = statements[0]
    assert Fraction(got.closing_booked, 10**got.decimals) == want
