"""`por verify` recomputes the per-chain mint budgets and refuses budgets above reserves."""

from __future__ import annotations

import dataclasses

import pytest

from por.core.attestation import PAYLOAD_TYPE, Attestation
from por.core.dsse import sign_envelope
from tests.test_cli_audit import ISSUER, World, detail, run_verify, status, world

__all__ = ["world"]  # the fixture, imported for pytest


def _signed(world: World, name: str, att: Attestation) -> str:
    return str(world.write(name, sign_envelope(att.to_bytes(), PAYLOAD_TYPE, [ISSUER])))


def test_verify_recomputes_the_budgets(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    rc, report = run_verify(capsys, str(world.env2), "--keys", str(world.keys))
    assert rc == 0, report
    assert status(report)["budgets"] == "pass"
    # eligible 2500 against 2000 circulating: the 500 of headroom covers 500 of the chain's
    # 700 treasury units (cover_excluded), so the budget is 2500 and nothing is left over.
    assert "eip155:1 2500; sum 2500 <= eligible 2500" in detail(report, "budgets")


def test_verify_refuses_budgets_above_reserves(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    # Attack: the issuer's key signs a document whose chain budget exceeds the reserves;
    # every figure but the budget is honest, so only the recomputation can notice.
    #   eligible 2500, circulating 2000, budget[eip155:1] = 3000  ->  3000 > 2500
    att = world.att2
    bad = dataclasses.replace(att, chains=(dataclasses.replace(att.chains[0], budget=3000),))
    rc, report = run_verify(capsys, _signed(world, "over.json", bad), "--keys", str(world.keys))
    assert rc == 1
    assert status(report)["signatures"] == "pass"
    assert status(report)["totals"] == "fail"  # the consistency rules include the budgets
    assert status(report)["budgets"] == "fail"
    d = detail(report, "budgets")
    assert "budgets add up to 3000, more than the eligible reserves 2500" in d
    assert "budget 3000 != recomputed 2500" in d


def test_verify_skips_budgets_of_older_documents(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    att = world.att2
    old = dataclasses.replace(
        att,
        chains=tuple(dataclasses.replace(c, budget=None) for c in att.chains),
        allocation=None,
    )
    rc, report = run_verify(capsys, _signed(world, "old.json", old), "--keys", str(world.keys))
    assert rc == 0, report
    assert status(report)["budgets"] == "skip"
    assert "predates per-chain budgets" in detail(report, "budgets")
