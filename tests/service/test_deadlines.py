"""Deadlines (issue 12): a source that trickles its answer cannot stall a run.

    node/custodian:  HTTP/1.1 200 OK ... " " ... " " ... " "   (one byte every 0.3 s, for minutes)
    before: the read timeout (silence between bytes) never fired; `por attest` hung, and under
            `por run` every later tick was skipped ("maximum number of running instances")
    now:    each read has a total timeout; the run has a deadline; both name the slow source

The bounds asserted on elapsed time are loose (the trickle lasts two minutes); they tell a
read that was cut off from one that ran to its end, not how fast anything is.
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from por.chains.evm import EvmChainReader
from por.chains.evm_rpc import Endpoint, EvmEndpointDownError
from por.core.policy import Policy
from por.custodians.api import CustodianApiSource
from por.custodians.rawstore import RawStore
from por.deadline import RunCancelledError
from por.errors import CustodianError
from por.service.run import RunDeps, attest_once
from por.service.wiring import CustodianReserves
from por.store import Store
from tests.service.test_attest_once import (
    CHAINS,
    ISSUER,
    LOG_KEY,
    ORIGIN,
    TOKEN,
    Clock,
    StaticReserves,
    cash_line,
)
from tests.service.trickle import trickling_server

TRICKLE_S = 400 * 0.3  # how long one trickled answer lasts if nobody cuts it off


def test_evm_rpc_read_is_cut_off_at_its_total_timeout() -> None:
    with trickling_server() as url:
        ep = Endpoint(url, chain_caip2="eip155:1", timeout_s=1.0, total_timeout_s=1.5)
        started = time.monotonic()
        with pytest.raises(EvmEndpointDownError, match=r"eth_chainId: too slow: total timeout"):
            ep.request("eth_chainId", [])
        assert time.monotonic() - started < TRICKLE_S / 4
        ep.close()


def test_custodian_api_read_is_cut_off_at_its_total_timeout() -> None:
    with trickling_server() as url:
        src = CustodianApiSource(
            name="harbour", base_url=url, public_key=b"\x01" * 32, timeout_s=1.5
        )
        started = time.monotonic()
        with pytest.raises(CustodianError, match="too slow: total timeout") as e:
            src.fetch(datetime.now(UTC))
        assert e.value.where == f"{url}/v1/reserves"
        assert time.monotonic() - started < TRICKLE_S / 4


def _deps(store: Store, tmp_path: Path, **kw: object) -> RunDeps:
    from por.demo.fake_chain import FakeChainReader, fake_holders

    clock = Clock()
    holders = {c: fake_holders(c, 5) for c in CHAINS}
    seeds = (hashlib.sha256(b"round %d" % i).digest() for i in range(1, 100))
    base: dict[str, object] = {
        "token": TOKEN,
        "chains": [
            FakeChainReader(chain_id=c, token_address=f"{c}:0x{'ab' * 20}", holders=h, clock=clock)
            for c, h in holders.items()
        ],
        "reserves": StaticReserves(lines=(cash_line(10**15),)),
        "store": store,
        "signers": [ISSUER],
        "checkpoint_signer": LOG_KEY,
        "origin": ORIGIN,
        "clock": clock,
        "random_bytes": lambda n: next(seeds)[:n],
    }
    return RunDeps(**{**base, **kw})  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store.open(
        f"sqlite:///{tmp_path / 'por.db'}",
        data_dir=tmp_path / "d",
        attestations_dir=tmp_path / "a",
        migrate=True,
    )
    yield s  # type: ignore[misc]
    s.close()


def test_a_run_past_its_deadline_on_a_trickling_node_records_nothing(
    store: Store, tmp_path: Path
) -> None:
    with trickling_server() as url:
        # the node's own limits are generous (30 s read, 90 s total): the run's 2 s rule
        reader = EvmChainReader(
            chain_id=1, rpc_urls=[url], token_address="0x" + "ab" * 20, timeout_s=30.0
        )
        deps = _deps(store, tmp_path, chains=[reader], deadline_s=2.0)
        started = time.monotonic()
        with pytest.raises(RunCancelledError) as e:
            attest_once(deps)
        assert time.monotonic() - started < TRICKLE_S / 4
        reader.close()
    msg = str(e.value)
    assert "deadline of 2 s" in msg and "nothing recorded" in msg
    assert f"slow source: eip155:1 {url}" in msg  # the error names the slow endpoint
    assert store.latest() is None and store.checkpoint() is None
    assert not (tmp_path / "d" / "trees").exists() or not list((tmp_path / "d" / "trees").iterdir())


def test_a_trickling_custodian_at_the_deadline_cancels_instead_of_counting_zero(
    store: Store, tmp_path: Path
) -> None:
    """Without the deadline check the custodian would count as zero (DEGRADED) and the run
    would record that; at the deadline the run stops instead, naming the custodian."""
    with trickling_server() as url:
        src = CustodianApiSource(
            name="harbour", base_url=url, public_key=b"\x01" * 32, timeout_s=60
        )
        reserves = CustodianReserves(
            sources=[src],
            policy=Policy.from_dict({}, where="policy"),
            token=TOKEN,
            rawstore=RawStore(tmp_path / "raw"),
        )
        deps = _deps(store, tmp_path, reserves=reserves, deadline_s=2.0)
        with pytest.raises(RunCancelledError, match=rf"slow source: {url}/v1/reserves"):
            attest_once(deps)
    assert store.latest() is None
