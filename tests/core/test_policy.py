"""Eligibility, valuation, concentration and solvency (por.core.policy): one test per rule."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from fractions import Fraction

import pytest

from por.core.attestation import ReserveEntry
from por.core.policy import (
    Policy,
    Position,
    StatementRef,
    add_months,
    assess,
    evaluate_positions,
    staleness_reasons,
    value_position,
)
from por.errors import ConfigError

AS_OF = datetime(2025, 6, 30, 16, tzinfo=UTC)
REF = StatementRef(format="camt.053.001.08", id="S1", as_of=AS_OF, sha256="ab" * 32)
CASH = Position(
    custodian="Harbour Trust Bank (Hong Kong) Limited",
    account="************4471",
    asset_class="cash",
    instrument=None,
    currency="CNH",
    decimals=2,
    amount=123456,
    market_value=123456,
    issuer="Harbour Trust Bank (Hong Kong) Limited",
    issuer_type="bank",
    maturity_date=None,
    start_date=None,
    statement=REF,
)
BOND = replace(
    CASH,
    asset_class="government_security",
    instrument="CND10003FR81",
    amount=10_000_000,
    market_value=9_941_200,
    issuer="Ministry of Finance of the PRC",
    issuer_type="government",
    maturity_date=date(2025, 11, 28),
)


def _eval(*ps: Position, policy: Policy | None = None) -> tuple[list[ReserveEntry], int]:
    return evaluate_positions(
        ps, policy or Policy(), token_currency="CNH", token_decimals=6, as_of=AS_OF
    )


def test_cash_scaled_exactly_to_token_decimals() -> None:
    (line,), total = _eval(CASH)
    assert line.amount == line.market_value == line.eligible_value == 1_234_560_000
    assert total == 1_234_560_000 and line.ineligible_reason is None


def test_to_dict_is_the_attestation_shape() -> None:
    (line,), _ = _eval(BOND)
    assert line.to_dict() == {
        "custodian": "Harbour Trust Bank (Hong Kong) Limited",
        "account": "************4471",
        "asset_class": "government_security",
        "instrument": "CND10003FR81",
        "currency": "CNH",
        "amount": "100000000000",
        "market_value": "99412000000",
        "haircut_bps": 100,
        "eligible_value": "98417880000",
        "ineligible_reason": None,
        "statement": {
            "format": "camt.053.001.08",
            "id": "S1",
            "as_of": "2025-06-30T16:00:00Z",
            "sha256": "ab" * 32,
        },
    }
    assert ReserveEntry.from_dict(line.to_dict(), where="reserves[0]").to_dict() == line.to_dict()


def test_scaling_down_rounds_down_and_says_so() -> None:
    p = replace(CASH, decimals=5, amount=123_456_789, market_value=123_456_789)
    line, notes = value_position(p, Policy(), token_currency="CNH", token_decimals=2, as_of=AS_OF)
    assert line.market_value == 123_456 and "rounded down" in notes[0]


def test_haircut_rounds_down() -> None:
    p = replace(BOND, market_value=1)  # 0.01 CNH = 10_000 base units; 1% haircut -> 9_900
    (line,), _ = _eval(p, policy=Policy(haircut_bps={"government_security": 3333}))
    assert line.eligible_value == 10_000 * 6667 // 10_000


def test_negative_balance_ineligible() -> None:
    (line,), total = _eval(replace(CASH, amount=-5, market_value=-5))
    assert total == 0 and line.amount == 0 and "overdrawn" in (line.ineligible_reason or "")


@pytest.mark.parametrize(
    ("maturity", "reason"),
    [
        (date(2026, 6, 30), None),
        (date(2026, 7, 1), "exceeds 12 months"),
        (date(2025, 6, 30), None),
        (date(2025, 6, 29), "matured"),
        (None, "without a maturity"),
    ],
)
def test_government_security_residual_maturity(maturity: date | None, reason: str | None) -> None:
    (line,), _ = _eval(replace(BOND, maturity_date=maturity))
    if reason is None:
        assert line.ineligible_reason is None and line.eligible_value > 0
    else:
        assert reason in (line.ineligible_reason or "") and line.eligible_value == 0


@pytest.mark.parametrize("issuer_type", ["corporate", "bank", "other"])
def test_security_issuer_type(issuer_type: str) -> None:
    (line,), _ = _eval(replace(BOND, issuer_type=issuer_type))
    assert "issuer type" in (line.ineligible_reason or "")


def test_supranational_and_central_bank_eligible() -> None:
    lines, _ = _eval(
        replace(BOND, issuer_type="supranational"), replace(BOND, issuer_type="central_bank")
    )
    assert all(line.ineligible_reason is None for line in lines)


@pytest.mark.parametrize(
    ("start", "maturity", "reason"),
    [
        (None, None, None),
        (date(2025, 5, 30), date(2025, 8, 30), None),
        (date(2025, 5, 30), date(2025, 8, 31), "exceeds 3 months"),
        (None, date(2025, 7, 30), "without a start date"),
        (date(2025, 3, 1), date(2025, 6, 1), "matured"),
    ],
)
def test_deposit_term(start: date | None, maturity: date | None, reason: str | None) -> None:
    p = replace(CASH, asset_class="deposit", start_date=start, maturity_date=maturity)
    (line,), _ = _eval(p)
    assert (
        (line.ineligible_reason is None)
        if reason is None
        else reason in (line.ineligible_reason or "")
    )


def test_deposit_term_configurable() -> None:
    p = replace(
        CASH, asset_class="deposit", start_date=date(2025, 5, 30), maturity_date=date(2025, 8, 30)
    )
    (line,), _ = _eval(p, policy=Policy(max_deposit_term_months=1))
    assert "exceeds 1 months" in (line.ineligible_reason or "")


@pytest.mark.parametrize(
    ("maturity", "issuer_type", "reason"),
    [
        (date(2025, 7, 1), "government", None),
        (date(2025, 7, 4), "government", None),
        (date(2025, 7, 8), "government", "only overnight"),
        (date(2025, 7, 1), "corporate", "collateral"),
        (date(2025, 6, 29), "government", "matured"),
    ],
)
def test_reverse_repo_overnight(maturity: date, issuer_type: str, reason: str | None) -> None:
    p = replace(
        BOND,
        asset_class="reverse_repo",
        instrument=None,
        maturity_date=maturity,
        issuer_type=issuer_type,
    )
    (line,), _ = _eval(p)
    if reason is None:
        assert line.ineligible_reason is None and line.haircut_bps == 50
    else:
        assert reason in (line.ineligible_reason or "")


def test_other_asset_class_ineligible() -> None:
    (line,), _ = _eval(replace(BOND, asset_class="other"))
    assert "not an eligible reserve asset" in (line.ineligible_reason or "")


def test_foreign_currency_needs_fx_rule() -> None:
    usd = replace(CASH, currency="USD", amount=100, market_value=100)  # 1.00 USD
    (line,), total = _eval(usd)
    assert total == 0 and "no FX rule" in (line.ineligible_reason or "")
    policy = Policy.from_dict({"fx_rates": {"USD": "7.1834"}, "fx_haircut_bps": 200})
    (line,), total = _eval(usd, policy=policy)
    assert line.market_value == 7_183_400 and line.haircut_bps == 200
    assert total == 7_183_400 * 9800 // 10000


def test_issuer_concentration_limit() -> None:
    # bank cash 60 + bond 40 -> with a 50% cap per issuer: c <= 0.5 (min(60,c) + min(40,c))
    # -> c = 40, bank keeps 40 of 60; totals 80 and nobody holds more than 50%.
    cash = replace(CASH, amount=60, market_value=60)
    bond = replace(BOND, amount=40, market_value=40, maturity_date=date(2025, 9, 1))
    lines, total = _eval(
        cash, bond, policy=Policy(haircut_bps={"government_security": 0}, max_issuer_share_bps=5000)
    )
    assert [line.eligible_value for line in lines] == [400_000, 400_000]
    assert total == 800_000
    assert "partly ineligible" in (lines[0].ineligible_reason or "")
    assert lines[1].ineligible_reason is None


def test_custodian_concentration_limit_single_custodian_all_ineligible() -> None:
    lines, total = _eval(CASH, policy=Policy(max_custodian_share_bps=5000))
    assert total == 0 and "custodian concentration" in (lines[0].ineligible_reason or "")


def test_limits_hold_after_capping() -> None:
    ps = [
        replace(CASH, issuer=f"bank{i % 3}", custodian=f"cust{i % 2}", amount=a, market_value=a)
        for i, a in enumerate([900, 50, 30, 700, 20, 10])
    ]
    lines, total = _eval(
        *ps, policy=Policy(max_issuer_share_bps=4000, max_custodian_share_bps=6000)
    )
    for key, bps in (("issuer", 4000), ("custodian", 6000)):
        groups: dict[str, int] = {}
        for pos, line in zip(ps, lines, strict=True):  # lines keep the positions' order
            groups[getattr(pos, key)] = groups.get(getattr(pos, key), 0) + line.eligible_value
        assert all(v * 10_000 <= bps * total for v in groups.values())
    assert total > 0


def test_policy_from_dict_round_trip_and_errors() -> None:
    p = Policy.from_dict(
        {
            "haircut_bps": {"government_security": 200},
            "fx_rates": {"USD": "71834/10000"},
            "max_issuer_share_bps": 5000,
            "eligible_issuer_types": ["government"],
        }
    )
    assert p.haircut_bps["cash"] == 0 and p.haircut_bps["government_security"] == 200
    assert p.fx_rates["USD"] == Fraction(71834, 10000)
    assert Policy.from_dict(p.to_dict()) == p
    for bad in (
        {"nope": 1},
        {"haircut_bps": {"cash": -1}},
        {"haircut_bps": {"other": 10}},
        {"fx_rates": {"USD": 7.18}},
        {"fx_rates": {"USD": "1e3"}},
        {"max_issuer_share_bps": 10001},
        {"max_statement_age_s": True},
    ):
        with pytest.raises(ConfigError):
            Policy.from_dict(bad)


def test_add_months_clamps() -> None:
    assert add_months(date(2025, 1, 31), 1) == date(2025, 2, 28)
    assert add_months(date(2024, 2, 29), 12) == date(2025, 2, 28)
    assert add_months(date(2025, 11, 30), 3) == date(2026, 2, 28)


def test_staleness_reasons() -> None:
    from por.custodians.model import Statement

    st = Statement(
        custodian="HT",
        account="****4471",
        currency="CNH",
        decimals=2,
        closing_booked=1,
        closing_available=None,
        as_of=AS_OF,
        statement_id="S1",
        format="mt940",
        sha256="00" * 32,
    )
    assert staleness_reasons([st], now=AS_OF, max_age_s=3600) == []
    (r,) = staleness_reasons([st], now=datetime(2025, 6, 30, 17, 0, 1, tzinfo=UTC), max_age_s=3600)
    assert r.startswith("stale: mt940 statement S1 of HT") and "3601 s old" in r
    (r,) = staleness_reasons([st], now=datetime(2025, 6, 30, 15, tzinfo=UTC), max_age_s=3600)
    assert r.startswith("future-dated")


def test_assess_statuses() -> None:
    assert (
        assess(eligible_reserves=1, circulating_supply=2, degraded_reasons=()).status
        == "UNDER_COLLATERALIZED"
    )
    assert (
        assess(eligible_reserves=2, circulating_supply=2, degraded_reasons=()).status
        == "FULLY_BACKED"
    )
    t = assess(eligible_reserves=2, circulating_supply=2, degraded_reasons=("stale",))
    assert t.status == "DEGRADED" and t.reasons == ("stale",)
    assert assess(eligible_reserves=5, circulating_supply=0, degraded_reasons=()).ratio is None
