"""The holder page checks the attestation's place in the log and can require witnesses.

Real Chromium against uvicorn on 127.0.0.1: a store of real attestations whose checkpoint
a real `por witness` app cosigned. `/holder?witnesses=1` must say "Included" with the
witness named; `?witnesses=2` (more than exist) and a key set naming a log key the
checkpoint was not signed with must turn the verdict to "does NOT verify".
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.sync_api import expect

from por.api import ApiDeps, create_app
from por.api.witness import WitnessDeps, create_witness_app
from por.core.dsse import KeyEntry, KeySet, LogKey
from por.core.tlog import log_verifier_key
from por.service.witnesses import WitnessSubmitter, WitnessTarget
from por.store import Store
from por.store.witness import WitnessStateStore
from tests.api.servers import serve
from tests.api.test_transparency import WITNESS, WITNESS_VKEY
from tests.browser.test_pages import CHROMIUM, browser, page, shot  # noqa: F401 - fixtures
from tests.store.factory import ISSUER, LOG_SIGNER, ORIGIN, World

pytestmark = [
    pytest.mark.browser,
    pytest.mark.xdist_group("browser"),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed"),
]


@dataclass
class Site:
    good: str  # API whose key set names the right log key and the witness
    wrong_log_key: str  # API whose key set names another log key
    world: World


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("holderlog")
    store = Store.open(None, data_dir=tmp / "data", attestations_dir=tmp / "att", migrate=True)
    world = World()
    for _ in range(3):
        world.record(store)
    issuer = KeyEntry.for_public_key(ISSUER.public_key_raw, role="issuer")
    good = KeySet(
        keys=(issuer,),
        log=LogKey(origin=ORIGIN, vkey=log_verifier_key(ORIGIN, LOG_SIGNER.public_key_raw)),
        witnesses=(WITNESS_VKEY,),
    )
    wrong = KeySet(
        keys=(issuer,),
        log=LogKey(origin=ORIGIN, vkey=log_verifier_key(ORIGIN, ISSUER.public_key_raw)),
        witnesses=(WITNESS_VKEY,),
    )
    witness_store = WitnessStateStore.open(None, data_dir=tmp / "witness")
    witness = create_witness_app(
        WitnessDeps(
            store=witness_store,
            name=WITNESS_VKEY.name,
            signer=WITNESS,
            logs={ORIGIN: good.log.vkey},
        )  # type: ignore[union-attr]
    )
    with (
        serve(witness) as witness_url,
        serve(
            create_app(ApiDeps(store=store, keys=good.to_dict(), proof_rate_limit=None))
        ) as good_url,
        serve(
            create_app(ApiDeps(store=store, keys=wrong.to_dict(), proof_rate_limit=None))
        ) as wrong_url,
    ):
        (outcome,) = WitnessSubmitter(
            store, [WitnessTarget(vkey=WITNESS_VKEY, url=witness_url)]
        ).submit_all()
        assert outcome.ok, outcome.detail
        yield Site(good=good_url, wrong_log_key=wrong_url, world=world)
    witness_store.close()
    store.close()


def lookup(pg: Any, base: str, account: str, query: str) -> Any:
    pg.goto(f"{base}/holder{query}")
    pg.fill("#account", account)
    pg.click("#check")
    return pg.locator("#verdict")


def test_holder_page_requires_witness_cosignatures(site: Site, page: Any) -> None:  # noqa: F811
    account = sorted(site.world.holders)[2]
    verdict = lookup(page, site.good, account, "?witnesses=1")
    expect(verdict).to_have_class("verdict ok", timeout=10_000)
    expect(page.locator("#details")).to_contain_text(f"witnesses: {WITNESS_VKEY.name} (1 required)")
    expect(page.locator("#details")).to_contain_text("leaf 2 of 3")
    shot(page, "holder-witnessed")
    verdict = lookup(page, site.good, account, "?witnesses=2")
    expect(verdict).to_have_class("verdict failed", timeout=10_000)
    expect(verdict).to_contain_text("1 valid witness cosignature(s), 2 required")


def test_holder_page_refuses_a_checkpoint_not_signed_by_the_log_key(site: Site, page: Any) -> None:  # noqa: F811
    account = sorted(site.world.holders)[2]
    verdict = lookup(page, site.wrong_log_key, account, "")
    expect(verdict).to_have_class("verdict failed", timeout=10_000)
    expect(verdict).to_contain_text("no signature by the log key")
