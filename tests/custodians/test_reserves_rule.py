"""No input can raise eligible reserves above what a correct, current statement says.

The attack (issue 12, 1): next to the custodian's real camt.053 an attacker (or a
mis-dated export) drops a copy dated next month with 900,000,000 CNH for the same
account. Under "the newest statement wins" the copy won, the real statement became
"superseded" with eligible 0, reserves rose from 1.104e15 to 1.999e15 base units, and
the oracles published it - the attestation said DEGRADED "future-dated", which no
on-chain consumer reads.

    real   2025-06-30  CNH 415,008,117.35   <- correct and current
    forged 2025-07-31  CNH 900,000,000.00   <- dated after the run's as-of: never used

The rule (por.custodians.reserves.evaluate_reserves): a statement dated after the run's
as-of plus `max_future_skew_s` is never used and never supersedes another; of the rest,
per account the newest counts, and of equally new statements that disagree the LOWEST.
So for any set of statements, each account contributes at most the correct current
statement's balance (the newest not-future one; the lowest at a tie). The Hypothesis
test below throws arbitrary extra statements at one account and checks exactly that.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from por.core.policy import Policy
from por.custodians.base import CustodianReport, RawDocument
from por.custodians.camt import parse_camt
from por.custodians.model import Statement, account_key
from por.custodians.reserves import evaluate_reserves
from por.demo.statements import shift_dates
from tests.custodians.conftest import sample

AS_OF = datetime(2025, 7, 1, 1, 0, tzinfo=UTC)
V08 = sample("harbour_trust_camt053_v08.xml")


def _report(*docs: bytes) -> CustodianReport:
    sts = [s for i, d in enumerate(docs) for s in parse_camt(d, name=f"d{i}.xml")]
    raws = [RawDocument.of(d, format="camt", name=f"d{i}.xml") for i, d in enumerate(docs)]
    return CustodianReport(custodian="ht", statements=tuple(sts), raw_documents=tuple(raws))


def _eval(report: CustodianReport, policy: Policy | None = None) -> tuple[int, list[str]]:
    _lines, total, reasons = evaluate_reserves(
        [report], policy or Policy(), token_currency="CNH", token_decimals=6, as_of=AS_OF
    )
    return total, reasons


def test_future_dated_copy_never_raises_reserves() -> None:
    real_total, real_reasons = _eval(_report(V08))
    assert real_reasons == []
    forged = shift_dates(V08, timedelta(days=31)).replace(
        b'<Amt Ccy="CNH">415008117.35</Amt>', b'<Amt Ccy="CNH">900000000.00</Amt>'
    )
    assert forged != V08
    report = _report(V08, forged)
    lines, total, reasons = evaluate_reserves(
        [report], Policy(), token_currency="CNH", token_decimals=6, as_of=AS_OF
    )
    assert total == real_total  # not one unit more
    future = [ln for ln in lines if (ln.ineligible_reason or "").startswith("future-dated")]
    assert len(future) == 3 and all(ln.eligible_value == 0 for ln in future)
    assert not any("superseded" in (ln.ineligible_reason or "") for ln in lines)
    assert len(reasons) == 3
    assert all(r.startswith("future-dated: camt.053.001.08 statement") for r in reasons)
    assert all("never used and supersedes nothing" in r for r in reasons)


def test_within_the_skew_a_statement_counts() -> None:
    # dated 2025-07-01T00:00+08 = 2025-06-30T16:00Z; as-of 16:00Z minus 4 minutes
    report = _report(V08)
    policy = Policy(max_future_skew_s=300)
    _lines, total, reasons = evaluate_reserves(
        [report],
        policy,
        token_currency="CNH",
        token_decimals=6,
        as_of=datetime(2025, 6, 30, 15, 56, tzinfo=UTC),
    )
    assert total > 0 and reasons == []
    _lines, total, reasons = evaluate_reserves(
        [report],
        Policy(max_future_skew_s=60),
        token_currency="CNH",
        token_decimals=6,
        as_of=datetime(2025, 6, 30, 15, 56, tzinfo=UTC),
    )
    assert total == 0 and len(reasons) == 3


def test_conflicting_statements_of_the_same_day_count_the_lower() -> None:
    higher = V08.replace(b"415008117.35</Amt>", b"515008117.35</Amt>")
    total_low, _ = _eval(_report(V08))
    for order in ((V08, higher), (higher, V08)):
        total, reasons = _eval(_report(*order))
        assert total == total_low
        assert any(r.startswith("conflicting statements") and "lower" in r for r in reasons)


# ---- the general rule, for any inputs ------------------------------------------------

RAW = RawDocument.of(b"one raw statement", format="camt", name="x")
SHA = RAW.sha256
ACCOUNT = "HK12HTBK00012345671234"


def _stmt(i: int, amount_cents: int, as_of: datetime, *, spelled: str = ACCOUNT) -> Statement:
    return Statement(
        custodian="Harbour Trust",
        account="masked",
        account_key=account_key(spelled),
        currency="CNH",
        decimals=2,
        closing_booked=amount_cents,
        closing_available=None,
        as_of=as_of,
        statement_id=f"S{i}",
        format="camt.053.001.08",
        sha256=SHA,
    )


offsets_s = st.integers(-10 * 86400, 40 * 86400)  # relative to AS_OF
amounts = st.integers(-(10**12), 10**15)
spellings = st.sampled_from([ACCOUNT, "HK12 HTBK 0001 2345 6712 34", "hk12-htbk-00012345671234"])


@settings(
    max_examples=300, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)
@given(
    current=st.tuples(st.integers(0, 10**13), st.integers(-3 * 86400, 0)),
    extra=st.lists(st.tuples(amounts, offsets_s, spellings), max_size=8),
    skew=st.integers(0, 3600),
)
def test_no_input_raises_reserves_above_the_current_statement(
    current: tuple[int, int], extra: list[tuple[int, int, str]], skew: int
) -> None:
    """Whatever else arrives for the account, it counts at most what the correct current
    statement (the newest not after as-of + skew; the lowest at a tie) says."""
    cur_amount, cur_offset = current
    sts = [_stmt(0, cur_amount, AS_OF + timedelta(seconds=cur_offset))]
    sts += [
        _stmt(i, a, AS_OF + timedelta(seconds=o), spelled=sp)
        for i, (a, o, sp) in enumerate(extra, 1)
    ]
    report = CustodianReport(custodian="ht", statements=tuple(sts), raw_documents=(RAW,))
    lines, total, reasons = evaluate_reserves(
        [report],
        Policy(max_future_skew_s=skew),
        token_currency="CNH",
        token_decimals=6,
        as_of=AS_OF,
    )
    horizon = AS_OF + timedelta(seconds=skew)
    usable = [s for s in sts if s.as_of <= horizon]
    newest = max(s.as_of for s in usable)
    correct = min(s.closing_booked for s in usable if s.as_of == newest)
    assert total == max(correct, 0) * 10**4  # cents -> 6 token decimals
    assert sum(1 for ln in lines if ln.eligible_value > 0) <= 1
    for s, ln in zip(sts, lines, strict=True):
        if s.as_of > horizon:
            assert ln.eligible_value == 0 and ln.ineligible_reason is not None
            assert any(f"statement {s.statement_id} " in r for r in reasons)


def test_the_run_evaluator_with_files(tmp_path: Path) -> None:
    """The same attack through the run's evaluator: files in a watched folder."""
    from por.core.attestation import Token
    from por.custodians.files import FileSource
    from por.custodians.rawstore import RawStore
    from por.service.wiring import CustodianReserves

    folder = tmp_path / "statements"
    folder.mkdir()
    (folder / "real.xml").write_bytes(V08)
    forged = shift_dates(V08, timedelta(days=31)).replace(b">415008117.35<", b">900000000.00<")
    (folder / "zz-next-month.xml").write_bytes(forged)
    token = Token(symbol="CNHC", decimals=6, currency="CNH")
    evaluator = CustodianReserves(
        sources=[FileSource(name="ht", paths=[str(folder / "*.xml")])],
        policy=Policy(),
        token=token,
        rawstore=RawStore(tmp_path / "raw"),
    )
    result = evaluator.evaluate(as_of=AS_OF)
    real = CustodianReserves(
        sources=[FileSource(name="ht", paths=[str(folder / "real.xml")])],
        policy=Policy(),
        token=token,
        rawstore=RawStore(tmp_path / "raw"),
    ).evaluate(as_of=AS_OF)
    assert result.eligible_total == real.eligible_total > 0
    assert real.degraded_reasons == ()
    assert len(result.degraded_reasons) == 3  # the three forged account statements, named
    assert all(
        r.startswith("future-dated: camt.053.001.08 statement HTBK-STMT-")
        and "is as of 2025-07-31" in r
        for r in result.degraded_reasons
    )
