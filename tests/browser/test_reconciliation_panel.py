"""The dashboard's off-chain liabilities and reconciliation panel, in real Chromium.

The attestation behind it is made by the real pipeline (tests/flows harness: a chain in
memory, a statement with a credit matched by reference and a debit nobody burned for, a
ledger export with a pending redemption), served by uvicorn; the page must show the
signed figures and name the unmatched item.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from playwright.sync_api import expect, sync_playwright

from por.api import ApiDeps, create_app
from por.core.dsse import KeyEntry, KeySet
from por.demo.fake_chain import FakeChainReader
from por.demo.statements import camt053
from por.service.run import attest_once
from por.store import Store
from tests.flows.helpers import ACCOUNT, HKT, ISSUER, UNIT, Clock, Harness, ledger_export

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).parents[2] / "test-artifacts" / "screenshots"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.xdist_group("browser"),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed"),
]


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("panel")
    store = Store.open(None, data_dir=tmp / "d", attestations_dir=tmp / "a", migrate=True)
    clock = Clock(datetime(2026, 3, 3, 9, 0, tzinfo=HKT).astimezone(UTC))
    reader = FakeChainReader(
        chain_id="eip155:1",
        token_address="eip155:1:0x" + "ab" * 20,
        holders={"eip155:1:0x" + "01" * 20: 1000 * UNIT},
        clock=clock,
    )
    day = date(2026, 3, 2)
    statement = camt053(
        account=ACCOUNT,
        day=day,
        opening_minor=10**9,
        entries=[("debit", 40 * 100, "PAYOUT R-77", "HZ1")],
    )
    led = ledger_export(
        tmp / "books.json",
        ledger_id="KDM-L-9",
        as_of=datetime(2026, 3, 2, 18, 0, tzinfo=HKT),
        accounts=[
            {"account": "ledger:kdm:R-77", "category": "pending_redemption", "balance": "40"}
        ],
    )
    h = Harness(
        root=tmp,
        chains=[reader],
        clock=clock,
        flows_start=datetime(2026, 2, 20, tzinfo=UTC),
        documents=[("day.xml", statement)],
        ledger_files=[led],
        store=store,  # type: ignore[arg-type]
        max_age_s=3600,
    )
    attest_once(h.deps())
    keys = KeySet(keys=(KeyEntry.for_public_key(ISSUER.public_key_raw, role="issuer"),))
    app = create_app(
        ApiDeps(store=store, keys=keys.to_dict(), matches=store.matches, proof_rate_limit=None)
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
        store.close()


@pytest.fixture(scope="module")
def page(base: str) -> Iterator[Any]:
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=str(CHROMIUM), args=["--headless=new", "--no-sandbox", "--disable-gpu"]
        )
        pg = b.new_page(viewport={"width": 1280, "height": 1600})
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        yield pg
        b.close()
        assert not errors, errors


def test_the_panel_shows_the_signed_figures_and_the_open_item(base: str, page: Any) -> None:
    page.goto(base + "/")
    ledger = page.locator("#ledger")
    expect(ledger).to_contain_text("Pending redemptions")
    expect(ledger).to_contain_text("40.000000 CNHC")
    expect(ledger).to_contain_text("KDM-L-9")
    flows = page.locator("#flows")
    expect(flows).to_contain_text("Bank debits")
    expect(flows).to_contain_text("1 overdue (40.000000 CNHC)")
    expect(flows.locator("table").nth(1)).to_contain_text("R-77")
    expect(flows.locator("table").nth(1)).to_contain_text("overdue")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "reconciliation-panel.png"), full_page=True)


def test_the_panel_speaks_the_readers_language(base: str, page: Any) -> None:
    # the panel's texts are the i18n data files' "recon.*" keys, like the rest of the page
    page.goto(base + "/?lang=zh-HK")
    expect(page.locator("#ledger h2")).to_have_text("鏈下負債")
    expect(page.locator("#ledger")).to_contain_text("待付贖回")
    expect(page.locator("#flows")).to_contain_text("1 項逾期（40.000000 CNHC）")  # noqa: RUF001
    expect(page.locator("#circulating-label")).to_have_text("負債（鏈上 + 鏈下）")  # noqa: RUF001
    page.goto(base + "/?lang=zh-CN")
    expect(page.locator("#flows h2")).to_have_text("铸造及销毁与银行流水对账")
    page.goto(base + "/?lang=en")  # leave the module-scoped page in English
    expect(page.locator("#ledger h2")).to_have_text("Off-chain liabilities")
