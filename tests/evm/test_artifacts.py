"""The committed ABI/bytecode artifacts are exactly what solcjs 0.8.28 makes of the sources."""

from __future__ import annotations

import pytest

from por.oracle.compile import CONTRACTS_DIR, compile_sources, differences, render
from por.oracle.compiled import load_artifact

pytestmark = [pytest.mark.xdist_group("evm")]


def test_artifacts_match_a_fresh_compile() -> None:
    artifacts = compile_sources()
    assert set(artifacts) == {
        "StableToken",
        "ReserveOracle",
        "SecureMintGuard",
        "PorConsumer",
        "ExamplePorToken",
        "ExampleReserveAggregator",
        "ExampleReserveExecutor",
    }
    assert differences(artifacts) == [], "run: python -m por.oracle.compile"
    for name, art in artifacts.items():
        assert art["compiler"]["version"].startswith("0.8.28+")
        assert art["bytecode"].startswith("0x60") and len(art["bytecode"]) > 100
        assert render(load_artifact(name)) == render(art)


def test_a_changed_source_is_detected() -> None:
    # The check is not vacuous: one changed character in a source changes the artifact.
    sources = {p.name: p.read_text() for p in sorted(CONTRACTS_DIR.glob("*.sol"))}
    sources["PorConsumer.sol"] = sources["PorConsumer.sol"].replace(
        "return token.totalSupply() + amount <= reserves();",
        "return token.totalSupply() + amount < reserves();",
    )
    assert differences(compile_sources(sources)) == ["PorConsumer"]
