"""Per-chain mint budgets (`por-budget-v1`): one exact integer rule, recomputable by anyone.

Every real Proof-of-Reserve consumer compares the feed's answer with ITS OWN chain's
supply. If each chain were answered with the global reserves, every chain could mint up
to all of them. So each attestation shares the eligible reserves out as per-chain
budgets with `sum(budget) <= eligible reserves`, and the oracle on chain c answers
`budget[c]`: whatever each chain's consumers allow, the sum over chains stays backed.

Notation (docs/budgets.md has the full text, with the reasons):

    E    eligible reserves                       totals.eligible_reserves
    L    total liabilities                       totals.circulating_supply (today: the sum
                                                 of the chains; off-chain liabilities,
                                                 once they exist, count here too)
    c_i  liabilities with a chain budget         chains[i].circulating_supply
    x_i  chain i's excluded balances             sum of chains[i].excluded[].balance
    s    headroom_share_bps    w_i  weights (policy)

    FULLY_BACKED (E >= L):   H  = E - L,  Hs = floor(H * s / 10000)
                             k_i = x_i if sum(x) <= Hs else floor(Hs * x_i / sum(x))
                                   (only with cover_excluded; else 0)
                             R  = Hs - sum(k)
                             budget_i = c_i + k_i + floor(R * w_i / sum(w))
    UNDER_COLLATERALIZED:    budget_i = floor(c_i * E / L)
    DEGRADED:                budget_i = min(c_i, floor(c_i * E / L))   (0 when L = 0)

Weights "circulating" are w_i = c_i, or 1 each while nothing circulates (so a new issue
can make its first mint); fixed weights come from the policy. Every floor rounds toward
zero, so the sum never exceeds E: the dust stays unallocated.

Pure: integers in, integers out; no I/O, clock or randomness.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from por.core.amounts import check_amount
from por.core.attestation import (
    BPS,
    STATUS_DEGRADED,
    STATUS_FULLY_BACKED,
    STATUS_UNDER_COLLATERALIZED,
    AllocationPolicy,
    Attestation,
)
from por.errors import FormatError, MismatchError


class BudgetError(MismatchError):
    """Per-chain budgets that are not what the document's own figures and policy give."""


class BudgetsExceedReservesError(BudgetError):
    """The budgets add up to more than the eligible reserves."""


class BudgetMismatchError(BudgetError):
    """A chain's budget differs from the recomputed one (or cannot be recomputed)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainFigures:
    """What the rule reads of one chain: its id, circulating supply, excluded balances."""

    chain_id: str
    circulating: int
    excluded: int


def _weights(chains: Sequence[ChainFigures], policy: AllocationPolicy) -> list[int]:
    fixed = policy.fixed_weights
    if fixed is None:
        if sum(c.circulating for c in chains) == 0:
            return [1] * len(chains)
        return [c.circulating for c in chains]
    named = set(fixed)
    ids = [c.chain_id for c in chains]
    if named != set(ids) or len(ids) != len(set(ids)):
        missing = sorted(set(ids) - named)
        extra = sorted(named - set(ids))
        raise BudgetMismatchError(
            "fixed weights must name every chain of the document exactly once",
            expected=f"weights for {', '.join(ids)}",
            computed=f"missing {missing or 'none'}, unknown {extra or 'none'}",
            where="allocation.weights",
        )
    return [fixed[c.chain_id] for c in chains]


def allocate(
    *,
    status: str,
    eligible_reserves: int,
    total_liabilities: int,
    chains: Sequence[ChainFigures],
    policy: AllocationPolicy,
) -> tuple[int, ...]:
    """The budget of each chain, in the order given (see the module docstring)."""
    e = check_amount(eligible_reserves, where="eligible_reserves")
    total = check_amount(total_liabilities, where="total_liabilities")
    for c in chains:
        check_amount(c.circulating, where=f"{c.chain_id}.circulating")
        check_amount(c.excluded, where=f"{c.chain_id}.excluded")
    budgeted = sum(c.circulating for c in chains)
    if budgeted > total:
        raise BudgetMismatchError(
            "liabilities with a chain budget exceed the total liabilities",
            expected=f"<= {total}",
            computed=budgeted,
        )
    if status == STATUS_FULLY_BACKED:
        if e < total:
            raise BudgetMismatchError(
                "status FULLY_BACKED with reserves below liabilities",
                expected=f"eligible reserves >= {total}",
                computed=e,
            )
        headroom = (e - total) * policy.headroom_share_bps // BPS
        covered = [0] * len(chains)
        if policy.cover_excluded:
            excluded = sum(c.excluded for c in chains)
            covered = [
                c.excluded if excluded <= headroom else headroom * c.excluded // excluded
                for c in chains
            ]
        rest = headroom - sum(covered)
        weights = _weights(chains, policy)
        weight_sum = sum(weights)
        return tuple(
            c.circulating + k + (rest * w // weight_sum if weight_sum else 0)
            for c, k, w in zip(chains, covered, weights, strict=True)
        )
    if status == STATUS_UNDER_COLLATERALIZED:
        if e >= total:
            raise BudgetMismatchError(
                "status UNDER_COLLATERALIZED with reserves covering liabilities",
                expected=f"eligible reserves < {total}",
                computed=e,
            )
        return tuple(c.circulating * e // total for c in chains)
    if status == STATUS_DEGRADED:
        if total == 0:
            return tuple(0 for _ in chains)
        return tuple(min(c.circulating, c.circulating * e // total) for c in chains)
    raise FormatError(f"unknown status {status!r}", where="totals.status")


def chain_figures(att: Attestation) -> list[ChainFigures]:
    return [
        ChainFigures(
            chain_id=c.chain_id, circulating=c.circulating_supply, excluded=c.excluded_total
        )
        for c in att.chains
    ]


def budgets_for(att: Attestation, policy: AllocationPolicy) -> tuple[int, ...]:
    """The budgets `policy` gives this document's chains, from its own figures."""
    return allocate(
        status=att.totals.status,
        eligible_reserves=att.totals.eligible_reserves,
        total_liabilities=att.totals.circulating_supply,
        chains=chain_figures(att),
        policy=policy,
    )


def with_budgets(att: Attestation, policy: AllocationPolicy) -> Attestation:
    """The document with every chain's budget and the declared policy filled in."""
    budgets = budgets_for(att, policy)
    chains = tuple(replace(c, budget=b) for c, b in zip(att.chains, budgets, strict=True))
    return replace(att, chains=chains, allocation=policy)


def budget_problems(att: Attestation) -> list[str]:
    """What is wrong with the document's budgets (empty when they are the rule's)."""
    if att.allocation is None:
        return []
    problems: list[str] = []
    signed = [c.budget or 0 for c in att.chains]
    total = sum(signed)
    if total > att.totals.eligible_reserves:
        problems.append(
            f"budgets add up to {total}, more than the eligible reserves "
            f"{att.totals.eligible_reserves}"
        )
    try:
        want = budgets_for(att, att.allocation)
    except (MismatchError, FormatError) as e:
        problems.append(f"budgets cannot be recomputed: {e}")
        return problems
    for i, (c, w) in enumerate(zip(att.chains, want, strict=True)):
        if c.budget != w:
            problems.append(
                f"chains[{i}] ({c.chain_id}): budget {c.budget} != recomputed {w} "
                f"({att.allocation.rule}, {att.totals.status})"
            )
    return problems


def budget_error_class(att: Attestation) -> type[MismatchError]:
    """The typed error for a document's inconsistency: budgets first, then the rest."""
    if att.allocation is None:
        return MismatchError
    if sum(c.budget or 0 for c in att.chains) > att.totals.eligible_reserves:
        return BudgetsExceedReservesError
    if budget_problems(att):
        return BudgetMismatchError
    return MismatchError


def verify_budgets(att: Attestation) -> None:
    """Raise unless the document carries budgets and they are exactly the rule's."""
    if att.allocation is None:
        raise BudgetMismatchError(
            "the attestation carries no per-chain budgets", where="allocation"
        )
    problems = budget_problems(att)
    if problems:
        raise budget_error_class(att)("; ".join(problems), where="chains[].budget")


def reserves_as_of(att: Attestation) -> datetime | None:
    """When the reserves were measured: the as-of of the OLDEST statement behind a line
    that counts (eligible value > 0); None when no line counts."""
    times = [r.statement.as_of for r in att.reserves if r.eligible_value > 0]
    return min(times) if times else None


__all__ = [
    "BudgetError",
    "BudgetMismatchError",
    "BudgetsExceedReservesError",
    "ChainFigures",
    "allocate",
    "budget_error_class",
    "budget_problems",
    "budgets_for",
    "chain_figures",
    "reserves_as_of",
    "verify_budgets",
    "with_budgets",
]
