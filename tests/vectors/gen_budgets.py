"""Generate the por-budget-v1 allocation vectors (docs/budgets.md): pure arithmetic cases.

    python tests/vectors/gen_budgets.py [--out DIR | --out-root DIR]

writes one JSON file per case into DIR (default tests/vectors/budgets/). Every file is

    {"desc", "want_err", "status", "eligible_reserves", "total_liabilities",
     "chains": [{"chain_id", "circulating", "excluded"}...],
     "allocation": <the document's allocation object>, "budgets": [...] | null}

Amounts are decimal strings of base units. `want_err` is null when the case must give
exactly `budgets` (one per chain, in order), else the name of the error class an
implementation must raise. The expected budgets are written here BY HAND (worked out in
the comments), not computed with por's `allocate`, so the files are evidence of the rule
and not a copy of one implementation of it; tests/core/test_budgets.py runs por's.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

AREA = "budgets"
ETH, BSC, SOL = "eip155:1", "eip155:56", "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"
Case = dict[str, Any]


def alloc(
    weights: str | dict[str, int] = "circulating", share_bps: int = 10_000, cover: bool = True
) -> dict[str, Any]:
    return {
        "rule": "por-budget-v1",
        "weights": weights,
        "headroom_share_bps": share_bps,
        "cover_excluded": cover,
    }


def case(
    desc: str,
    status: str,
    eligible: int,
    total: int,
    chains: list[tuple[str, int, int]],
    allocation: dict[str, Any],
    budgets: list[int] | None,
    want_err: str | None = None,
) -> Case:
    return {
        "desc": desc,
        "want_err": want_err,
        "status": status,
        "eligible_reserves": str(eligible),
        "total_liabilities": str(total),
        "chains": [
            {"chain_id": cid, "circulating": str(c), "excluded": str(x)} for cid, c, x in chains
        ],
        "allocation": allocation,
        "budgets": None if budgets is None else [str(b) for b in budgets],
    }


TWO = [(ETH, 400, 0), (BSC, 300, 0)]
TWO_EXCLUDED = [(ETH, 400, 50), (BSC, 300, 20)]


def cases() -> dict[str, Case]:
    return {
        # H = 1000 - 700 = 300; 300*400/700 = 171.4 -> 171; 300*300/700 = 128.6 -> 128;
        # 1 unit of dust stays unallocated.
        "backed_circulating_weights": case(
            "headroom shared in proportion to circulating supply, dust unallocated",
            "FULLY_BACKED",
            1000,
            700,
            TWO,
            alloc(),
            [571, 428],
        ),
        # X = 70 <= H = 300: k = (50, 20); R = 230; 230*400/700 = 131.4; 230*300/700 = 98.6
        "backed_cover_excluded": case(
            "headroom first covers treasury and escrow balances, the rest by circulating",
            "FULLY_BACKED",
            1000,
            700,
            TWO_EXCLUDED,
            alloc(),
            [581, 418],
        ),
        # X = 600 > H = 300: k = (300*500/600, 300*100/600) = (250, 50); R = 0
        "backed_cover_excluded_short": case(
            "excluded balances larger than the headroom are covered pro rata, nothing left",
            "FULLY_BACKED",
            1000,
            700,
            [(ETH, 400, 500), (BSC, 300, 100)],
            alloc(),
            [650, 350],
        ),
        "backed_no_cover": case(
            "cover_excluded false: excluded balances get nothing of the headroom",
            "FULLY_BACKED",
            1000,
            700,
            TWO_EXCLUDED,
            alloc(cover=False),
            [571, 428],
        ),
        # Hs = 300 * 5000 / 10000 = 150; 150*400/700 = 85.7; 150*300/700 = 64.3
        "backed_half_headroom": case(
            "only half of the headroom is handed out; the rest is a buffer",
            "FULLY_BACKED",
            1000,
            700,
            TWO,
            alloc(share_bps=5000),
            [485, 364],
        ),
        # H = 200; weights 3:1:0 of 4 -> 150, 50, 0
        "backed_fixed_weights": case(
            "fixed weights; a weight of zero gives a chain its circulating supply only",
            "FULLY_BACKED",
            1000,
            800,
            [(ETH, 400, 0), (BSC, 300, 0), (SOL, 100, 0)],
            alloc({ETH: 3, BSC: 1, SOL: 0}),
            [550, 350, 100],
        ),
        # nothing circulates: equal weights, 1000/2 each
        "backed_nothing_circulating": case(
            "a new issue: nothing circulates yet, the reserves are shared equally",
            "FULLY_BACKED",
            1000,
            0,
            [(ETH, 0, 0), (BSC, 0, 0)],
            alloc(),
            [500, 500],
        ),
        "backed_exactly": case(
            "reserves equal liabilities: every budget is the circulating supply",
            "FULLY_BACKED",
            700,
            700,
            TWO_EXCLUDED,
            alloc(),
            [400, 300],
        ),
        # L = 800 > sum(c) = 700 (100 off-chain); H = 200; 200*400/700 = 114.3; 200*300/700 = 85.7
        "backed_offchain_liabilities": case(
            "liabilities without a chain budget count in L but get no budget",
            "FULLY_BACKED",
            1000,
            800,
            TWO,
            alloc(),
            [514, 385],
        ),
        # 600000 * 1000000 / 1100000 = 545454.5; 500000 * 1000000 / 1100000 = 454545.5
        "under_pro_rata": case(
            "1.0M reserves against 1.1M: each chain gets its pro-rata share, below its supply",
            "UNDER_COLLATERALIZED",
            1_000_000,
            1_100_000,
            [(ETH, 600_000, 0), (BSC, 500_000, 0)],
            alloc(),
            [545_454, 454_545],
        ),
        # L = 800: 400*600/800 = 300; 300*600/800 = 225
        "under_offchain_liabilities": case(
            "under-collateralized with off-chain liabilities: shares of E over the total",
            "UNDER_COLLATERALIZED",
            600,
            800,
            TWO,
            alloc(),
            [300, 225],
        ),
        "under_fixed_weights_ignored": case(
            "weights only share headroom; under-collateralized budgets are pro rata",
            "UNDER_COLLATERALIZED",
            600,
            800,
            TWO,
            alloc({ETH: 1, BSC: 9}),
            [300, 225],
        ),
        "degraded_backed": case(
            "DEGRADED with reserves covering the issue: zero headroom, budget = circulating",
            "DEGRADED",
            1000,
            700,
            TWO_EXCLUDED,
            alloc(),
            [400, 300],
        ),
        # 400*500/700 = 285.7; 300*500/700 = 214.3
        "degraded_short": case(
            "DEGRADED and short: the pro-rata share",
            "DEGRADED",
            500,
            700,
            TWO,
            alloc(),
            [285, 214],
        ),
        "degraded_nothing": case(
            "DEGRADED with no liabilities and no reserves",
            "DEGRADED",
            0,
            0,
            [(ETH, 0, 0), (BSC, 0, 0)],
            alloc(),
            [0, 0],
        ),
        # E = 2^126, c = (2^125, 2^124), L = 3*2^124, H = 2^124, weights by circulating:
        # 2^124 * 2^125 / (3*2^124) = 2^125/3 -> floor; 2^124/3 -> floor
        "backed_large_amounts": case(
            "amounts near 2^126: exact integers, no overflow or rounding beyond the floors",
            "FULLY_BACKED",
            2**126,
            3 * 2**124,
            [(ETH, 2**125, 0), (BSC, 2**124, 0)],
            alloc(),
            [2**125 + 2**125 // 3, 2**124 + 2**124 // 3],
        ),
        "err_backed_below_liabilities": case(
            "status FULLY_BACKED although reserves are below liabilities",
            "FULLY_BACKED",
            600,
            700,
            TWO,
            alloc(),
            None,
            "BudgetMismatchError",
        ),
        "err_under_but_covered": case(
            "status UNDER_COLLATERALIZED although reserves cover liabilities",
            "UNDER_COLLATERALIZED",
            700,
            700,
            TWO,
            alloc(),
            None,
            "BudgetMismatchError",
        ),
        "err_budgeted_above_total": case(
            "the chains' circulating supply is more than the total liabilities",
            "FULLY_BACKED",
            1000,
            600,
            TWO,
            alloc(),
            None,
            "BudgetMismatchError",
        ),
        "err_fixed_weights_missing_chain": case(
            "fixed weights that do not name every chain",
            "FULLY_BACKED",
            1000,
            700,
            TWO,
            alloc({ETH: 1}),
            None,
            "BudgetMismatchError",
        ),
        "err_fixed_weights_all_zero": case(
            "fixed weights that are all zero",
            "FULLY_BACKED",
            1000,
            700,
            TWO,
            alloc({ETH: 0, BSC: 0}),
            None,
            "FormatError",
        ),
        "err_share_above_10000": case(
            "headroom_share_bps above 10000",
            "FULLY_BACKED",
            1000,
            700,
            TWO,
            alloc(share_bps=10_001),
            None,
            "FormatError",
        ),
        "err_unknown_rule": case(
            "an allocation rule other than por-budget-v1",
            "FULLY_BACKED",
            1000,
            700,
            TWO,
            {**alloc(), "rule": "por-budget-v2"},
            None,
            "FormatError",
        ),
        "err_unknown_weights_mode": case(
            "weights named by an unknown mode",
            "FULLY_BACKED",
            1000,
            700,
            TWO,
            alloc("total_supply"),
            None,
            "FormatError",
        ),
        "err_unknown_status": case(
            "a status the rule does not know",
            "SOLVENT",
            1000,
            700,
            TWO,
            alloc(),
            None,
            "FormatError",
        ),
    }


def write_cases(out: Path, made: dict[str, Case]) -> int:
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.json"):  # this generator owns the directory: drop stale cases
        old.unlink()
    for name, body in sorted(made.items()):
        text = json.dumps(body, indent=2, ensure_ascii=True) + "\n"
        (out / f"{name}.json").write_text(text, encoding="ascii")
    return len(made)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--out", type=Path, help="directory for the case files")
    where.add_argument("--out-root", type=Path, help="write into OUT_ROOT/budgets/")
    args = parser.parse_args(argv)
    if args.out is not None:
        out = args.out
    elif args.out_root is not None:
        out = args.out_root / AREA
    else:
        out = Path(__file__).resolve().parent / AREA
    count = write_cases(out, cases())
    print(f"{out}: {count} cases")
    return 0


if __name__ == "__main__":
    sys.exit(main())
