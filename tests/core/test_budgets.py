"""Per-chain mint budgets (por-budget-v1): vectors, properties, and the document's checks."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from por.core.attestation import (
    STATUS_DEGRADED,
    STATUS_FULLY_BACKED,
    STATUS_UNDER_COLLATERALIZED,
    AllocationPolicy,
    Attestation,
    check_consistency,
    decode_attestation,
    verify_consistency,
)
from por.core.budgets import (
    BudgetMismatchError,
    BudgetsExceedReservesError,
    ChainFigures,
    allocate,
    budget_problems,
    reserves_as_of,
    verify_budgets,
    with_budgets,
)
from por.core.canonical import canonical_bytes
from por.core.verify import FAIL, PASS, SKIP, check_budgets
from por.errors import FormatError, MismatchError, PorError
from tests.core.test_attestation import make

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "budgets"
FILES = sorted(VECTORS.glob("*.json"))


# --- the vectors (expected budgets written by hand in tests/vectors/gen_budgets.py) -------


def run_vector(case: dict[str, Any]) -> tuple[int, ...]:
    return allocate(
        status=case["status"],
        eligible_reserves=int(case["eligible_reserves"]),
        total_liabilities=int(case["total_liabilities"]),
        chains=[
            ChainFigures(
                chain_id=c["chain_id"],
                circulating=int(c["circulating"]),
                excluded=int(c["excluded"]),
            )
            for c in case["chains"]
        ],
        policy=AllocationPolicy.from_dict(case["allocation"]),
    )


def test_vectors_exist() -> None:
    assert len(FILES) >= 20
    names = {f.stem for f in FILES}
    assert {"under_pro_rata", "degraded_backed", "backed_cover_excluded"} <= names


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_vector(path: Path) -> None:
    case = json.loads(path.read_text())
    if case["want_err"] is None:
        got = run_vector(case)
        assert [str(b) for b in got] == case["budgets"], case["desc"]
        assert sum(got) <= int(case["eligible_reserves"])
    else:
        with pytest.raises(PorError) as ei:
            run_vector(case)
        assert case["want_err"] in [c.__name__ for c in type(ei.value).__mro__], ei.value


# --- properties ---------------------------------------------------------------------------

amounts = st.integers(min_value=0, max_value=2**100)
policies = st.builds(
    AllocationPolicy,
    headroom_share_bps=st.integers(min_value=0, max_value=10_000),
    cover_excluded=st.booleans(),
)


@st.composite
def worlds(draw: st.DrawFn) -> tuple[str, int, int, list[ChainFigures], AllocationPolicy]:
    n = draw(st.integers(min_value=1, max_value=5))
    chains = [
        ChainFigures(chain_id=f"eip155:{i + 1}", circulating=draw(amounts), excluded=draw(amounts))
        for i in range(n)
    ]
    offchain = draw(st.integers(min_value=0, max_value=2**90))
    total = sum(c.circulating for c in chains) + offchain
    eligible = draw(amounts)
    degraded = draw(st.booleans())
    status = (
        STATUS_DEGRADED
        if degraded
        else STATUS_FULLY_BACKED
        if eligible >= total
        else STATUS_UNDER_COLLATERALIZED
    )
    if draw(st.booleans()):
        weights = tuple(
            (c.chain_id, draw(st.integers(min_value=0, max_value=1000))) for c in chains
        )
        if any(w for _, w in weights):
            policy = draw(policies)
            policy = dataclasses.replace(policy, weights=weights)
            return status, eligible, total, chains, policy
    return status, eligible, total, chains, draw(policies)


@settings(max_examples=400, deadline=None)
@given(worlds())
def test_budgets_never_exceed_reserves(
    world: tuple[str, int, int, list[ChainFigures], AllocationPolicy],
) -> None:
    status, eligible, total, chains, policy = world
    budgets = allocate(
        status=status,
        eligible_reserves=eligible,
        total_liabilities=total,
        chains=chains,
        policy=policy,
    )
    assert len(budgets) == len(chains)
    # The guarantee: whatever each chain's consumers allow, the sum stays backed.
    assert sum(budgets) <= eligible
    for c, b in zip(chains, budgets, strict=True):
        if status == STATUS_FULLY_BACKED:
            assert b >= c.circulating  # a backed issue never reads as unbacked
            covered = policy.cover_excluded and policy.headroom_share_bps == 10_000
            if covered and eligible - total >= sum(x.excluded for x in chains):
                assert b >= c.circulating + c.excluded  # totalSupply() is covered
        else:
            assert b <= c.circulating  # zero headroom: no Secure-Mint check can pass
            if status == STATUS_UNDER_COLLATERALIZED and c.circulating:
                assert b < c.circulating  # Aave-style `answer >= totalSupply` is false


@settings(max_examples=200, deadline=None)
@given(worlds())
def test_dust_is_less_than_one_unit_per_chain(
    world: tuple[str, int, int, list[ChainFigures], AllocationPolicy],
) -> None:
    # Floors lose at most one base unit per chain per division, never more.
    status, eligible, total, chains, policy = world
    if status != STATUS_FULLY_BACKED or policy.headroom_share_bps != 10_000:
        return
    budgets = allocate(
        status=status,
        eligible_reserves=eligible,
        total_liabilities=total,
        chains=chains,
        policy=policy,
    )
    offchain = total - sum(c.circulating for c in chains)
    assert eligible - offchain - sum(budgets) <= 2 * len(chains)


# --- in the document ----------------------------------------------------------------------


def budgeted(**kw: Any) -> Attestation:
    return with_budgets(make(**kw), AllocationPolicy())


def test_document_carries_budgets_and_round_trips() -> None:
    a = budgeted(reserves=2_000_000, supply=1_500_000)
    (chain,) = a.chains
    # H = 500,000; the 500 treasury units are covered first, the rest goes to the chain
    assert chain.budget == 1_500_000 + 500 + 499_500
    d = a.to_dict()
    assert d["chains"][0]["budget"] == "2000000"
    assert d["allocation"] == {
        "rule": "por-budget-v1",
        "weights": "circulating",
        "headroom_share_bps": 10000,
        "cover_excluded": True,
    }
    assert Attestation.from_dict(d) == a
    assert decode_attestation(a.to_bytes()) == a
    assert check_consistency(a) == []
    verify_budgets(a)


def test_fixed_weights_round_trip_in_document() -> None:
    policy = AllocationPolicy(weights=(("eip155:1", 7),), headroom_share_bps=2500)
    a = with_budgets(make(reserves=2_000_000, supply=1_500_000), policy)
    assert a.chains[0].budget == 1_500_000 + 500_000 // 4
    d = a.to_dict()
    assert d["allocation"]["weights"] == {"eip155:1": 7}
    assert Attestation.from_dict(d) == a
    assert check_consistency(a) == []


def test_documents_without_budgets_still_parse_and_verify() -> None:
    old = make()
    d = old.to_dict()
    assert "allocation" not in d and "budget" not in d["chains"][0]
    assert Attestation.from_dict(d) == old
    assert check_consistency(old) == []
    assert check_budgets(old).status == SKIP
    with pytest.raises(BudgetMismatchError, match="no per-chain budgets"):
        verify_budgets(old)


def test_half_budgeted_documents_are_refused() -> None:
    d = budgeted().to_dict()
    no_policy = {k: v for k, v in d.items() if k != "allocation"}
    with pytest.raises(FormatError, match="no allocation"):
        Attestation.from_dict(no_policy)
    no_budget = json.loads(json.dumps(d))
    del no_budget["chains"][0]["budget"]
    with pytest.raises(FormatError, match="have no budget"):
        Attestation.from_dict(no_budget)
    null_budget = json.loads(json.dumps(d))
    null_budget["chains"][0]["budget"] = None
    with pytest.raises(PorError, match="budget"):
        Attestation.from_dict(null_budget)
    bad_rule = json.loads(json.dumps(d))
    bad_rule["allocation"]["rule"] = "por-budget-v0"
    with pytest.raises(FormatError, match=r"attestation\.allocation\.rule"):
        Attestation.from_dict(bad_rule)


def _tampered(a: Attestation, budget: int) -> Attestation:
    return dataclasses.replace(a, chains=(dataclasses.replace(a.chains[0], budget=budget),))


def test_budgets_above_reserves_are_refused_with_a_typed_error() -> None:
    # Attack: an issuer (or a bug) signs budgets that add up to more than the reserves,
    # so per-chain consumers would let more be minted than is backed.
    a = budgeted(reserves=2_000_000, supply=1_500_000)
    bad = _tampered(a, 2_000_001)
    problems = budget_problems(bad)
    assert any("more than the eligible reserves 2000000" in p for p in problems)
    with pytest.raises(BudgetsExceedReservesError):
        verify_budgets(bad)
    with pytest.raises(BudgetsExceedReservesError):
        verify_consistency(bad)
    result = check_budgets(bad)
    assert result.status == FAIL and "more than the eligible reserves" in result.detail
    # ... and the signed bytes still parse: the refusal is the check's, not the parser's.
    assert decode_attestation(canonical_bytes(bad.to_dict())) == bad


def test_budget_other_than_the_rule_is_refused() -> None:
    a = budgeted(reserves=2_000_000, supply=1_500_000)
    low = _tampered(a, 1_999_999)  # within reserves, but not what the policy gives
    with pytest.raises(BudgetMismatchError, match="recomputed 2000000"):
        verify_budgets(low)
    with pytest.raises(BudgetMismatchError):
        verify_consistency(low)
    assert check_budgets(low).status == FAIL
    assert check_budgets(a).status == PASS


def test_under_collateralized_and_degraded_documents() -> None:
    under = budgeted(reserves=1_000_000, supply=1_100_000)
    assert under.totals.status == STATUS_UNDER_COLLATERALIZED
    assert under.chains[0].budget == 1_000_000  # one chain: c * E / L = E
    assert under.chains[0].budget < under.chains[0].circulating_supply
    degraded = budgeted(reserves=2_000_000, supply=1_500_000, reasons=("stale: statement",))
    assert degraded.chains[0].budget == degraded.chains[0].circulating_supply
    verify_budgets(under)
    verify_budgets(degraded)


def test_status_and_figures_must_agree_for_recomputation() -> None:
    a = budgeted(reserves=2_000_000, supply=1_500_000)
    lied = dataclasses.replace(
        a, totals=dataclasses.replace(a.totals, status=STATUS_UNDER_COLLATERALIZED)
    )
    problems = budget_problems(lied)
    assert any("cannot be recomputed" in p for p in problems)
    with pytest.raises(MismatchError):
        verify_consistency(lied)


def test_reserves_as_of_is_the_oldest_counted_statement() -> None:
    a = make()
    assert reserves_as_of(a) == a.reserves[0].statement.as_of
    none = dataclasses.replace(a, reserves=(dataclasses.replace(a.reserves[0], eligible_value=0),))
    assert reserves_as_of(none) is None


def test_policy_checks() -> None:
    with pytest.raises(FormatError, match="all be zero"):
        AllocationPolicy(weights=(("eip155:1", 0),))
    with pytest.raises(FormatError, match="twice"):
        AllocationPolicy(weights=(("eip155:1", 1), ("eip155:1", 2)))
    with pytest.raises(FormatError, match="at most 10000"):
        AllocationPolicy(headroom_share_bps=10_001)
    with pytest.raises(FormatError, match="circulating"):
        AllocationPolicy(weights="supply")
    with pytest.raises(FormatError):
        AllocationPolicy.from_dict(
            {"rule": "por-budget-v1", "weights": 3, "headroom_share_bps": 1, "cover_excluded": True}
        )
    with pytest.raises(FormatError, match="true or false"):
        AllocationPolicy(cover_excluded=1)  # type: ignore[arg-type]
