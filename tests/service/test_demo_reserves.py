"""The demo's custodian statements: sized to the supply it minted, per scenario, with
statement ids dated like their statements (no anvil needed: the statements alone)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from por.core.policy import Policy
from por.custodians.files import FileSource
from por.custodians.reserves import evaluate_reserves
from por.demo.world import DEMO_POLICY, TARGET_RATIO, _write_statements

NOW = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)  # 11:00 in Hong Kong


def _evaluate(paths: list[str]) -> tuple[list, int, list[str]]:
    src = FileSource(name="harbour-trust", paths=paths, max_age_s=48 * 3600)
    lines, total, degraded = evaluate_reserves(
        [src.fetch(NOW)],
        Policy.from_dict(DEMO_POLICY),
        token_currency="CNH",
        token_decimals=6,
        as_of=NOW,
    )
    return lines, total, degraded


@pytest.mark.parametrize(
    "circulating", [20_000_000 * 10**6, 1_000_000_000 * 10**6, 31_518_912_345_678]
)
def test_backed_reserves_follow_the_supply(tmp_path: Path, circulating: int) -> None:
    # 200 holders used to give a ratio of 49.2; the reserves now follow the supply minted
    paths = _write_statements(tmp_path, NOW, circulating=circulating, scenario="backed")
    lines, total, degraded = _evaluate(paths)
    assert degraded == []
    assert (
        TARGET_RATIO["backed"] * circulating
        <= total
        < TARGET_RATIO["backed"] * circulating + 200 * 10**6
    )
    usd = [ln for ln in lines if ln.currency == "USD"]
    assert usd and all(ln.fx is not None and ln.eligible_value > 0 for ln in usd)


def test_under_collateralized_and_degraded_scenarios(tmp_path: Path) -> None:
    circulating = 500_000_000 * 10**6
    _, total, degraded = _evaluate(
        _write_statements(
            tmp_path / "u", NOW, circulating=circulating, scenario="under-collateralized"
        )
    )
    assert degraded == [] and total < circulating  # a shortfall of about 3 %
    assert total >= TARGET_RATIO["under-collateralized"] * circulating
    _, _, degraded = _evaluate(
        _write_statements(tmp_path / "d", NOW, circulating=circulating, scenario="degraded")
    )
    assert degraded and all(r.startswith("stale:") for r in degraded)


def test_statement_ids_carry_the_statement_day(tmp_path: Path) -> None:
    paths = _write_statements(tmp_path, NOW, circulating=10**15, scenario="backed")
    lines, _, _ = _evaluate(paths)
    yesterday = (NOW - timedelta(days=1)).date()
    for ln in lines:
        dated = re.findall(r"20\d{6}", ln.statement.id)
        assert dated == [yesterday.strftime("%Y%m%d")], ln.statement.id
        assert ln.statement.as_of.date() == yesterday
