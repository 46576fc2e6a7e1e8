"""The public pages as a holder or journalist in Hong Kong meets them, in real Chromium.

A store of real signed attestations whose holders have ordinary 0x addresses on two EVM
chains. The holder page must take the forms wallets show (EIP-55, lower case, CAIP-10),
ask for the chain when a bare address could be on both, and give three outcomes that
cannot be confused; it checks the account across recent attestations. The dashboard and
holder page must read right in Traditional and Simplified Chinese, stay inside a 390 px
screen, show an empty state before the first publication; the report page must show the
figures. Screenshots go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from eth_utils import to_checksum_address
from playwright.sync_api import expect

from por.api import ApiDeps, create_app
from por.report import i18n
from por.store import Store
from tests.api.servers import serve
from tests.browser.test_pages import CHROMIUM, browser, shot  # noqa: F401 - fixtures
from tests.report.world import record_at
from tests.store.factory import ISSUER, World, keyset

pytestmark = [
    pytest.mark.browser,
    pytest.mark.xdist_group("browser"),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed"),
]

SITE = {
    "report_utc_offset": "+08:00",
    "holder_history": 4,
    "chain_names": {},
    "explorers": {"eip155:1": {"block": "https://etherscan.io/block/{number}"}},
}


def _addresses(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["0x" + rng.randbytes(20).hex() for _ in range(n)]


@dataclass
class Site:
    base: str
    empty: str
    world: World
    mover: str  # a holder who gave away everything before the last attestation
    mixed: str  # an address whose EIP-55 spelling has letters of both cases


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("disclosure")
    store = Store.open(None, data_dir=tmp / "d", attestations_dir=tmp / "a", migrate=True)
    empty_store = Store.open(None, data_dir=tmp / "e", attestations_dir=tmp / "f", migrate=True)
    holders: dict[str, int] = {}
    for i, a in enumerate(_addresses(30, 17)):
        chain = "eip155:1" if i % 3 else "eip155:56"
        holders[f"{chain}:{a}"] = (i * 7919 % 1000 + 1) * 1_000_000
    world = World(holders=holders)
    mixed = next(a for a in holders if a.startswith("eip155:1:") and _is_mixed(a.split(":")[2]))
    mover = next(a for a in sorted(holders) if a.startswith("eip155:1:") and a != mixed)
    now = datetime.now(UTC)
    record_at(store, world, now - timedelta(hours=30), reserves_pct=104)
    record_at(store, world, now - timedelta(hours=20), reserves_pct=108)
    world.transfer(mover, mixed, world.holders[mover])  # the mover leaves
    record_at(store, world, now - timedelta(minutes=10), reserves_pct=96)
    deps = {"keys": keyset().to_dict(), "proof_rate_limit": None, "site": SITE}
    with (
        serve(create_app(ApiDeps(store=store, report_signers=lambda at: [ISSUER], **deps))) as base,
        serve(create_app(ApiDeps(store=empty_store, **deps))) as empty,
    ):
        yield Site(base=base, empty=empty, world=world, mover=mover, mixed=mixed)
    store.close()
    empty_store.close()


def _is_mixed(lower: str) -> bool:
    body = to_checksum_address(lower)[2:]
    return body != body.lower() and body != body.upper()


@pytest.fixture
def ctx(browser: Any) -> Iterator[Any]:  # noqa: F811
    contexts: list[Any] = []
    errors: list[str] = []

    def make(width: int = 1280, lang: str = "en-GB") -> Any:
        c = browser.new_context(
            viewport={"width": width, "height": 1000}, locale=lang, timezone_id="Asia/Hong_Kong"
        )
        contexts.append(c)
        pg = c.new_page()
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        return pg

    yield make
    for c in contexts:
        c.close()
    assert not [e for e in errors if "Failed to load resource" not in e], errors


def _check(pg: Any, base: str, text: str, query: str = "?lang=en") -> Any:
    pg.goto(f"{base}/holder{query}")
    pg.fill("#account", text)
    pg.click("#check")
    return pg.locator("#verdict")


def _no_horizontal_scroll(pg: Any) -> None:
    widths = pg.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], f"page is {widths[0]} px wide in a {widths[1]} px viewport"


# --- holder page: the three outcomes -----------------------------------------------------


def test_included_and_verified_from_a_checksummed_address(site: Site, ctx: Any) -> None:
    pg = ctx()
    lower = site.mixed.split(":")[2]
    checksummed = to_checksum_address(lower)
    assert checksummed != lower
    verdict = _check(pg, site.base, f"  {checksummed} ")  # as pasted from a wallet
    # two EVM chains: the page asks which one before looking anything up
    expect(pg.locator("#chain-choice")).to_be_visible(timeout=10_000)
    expect(verdict).to_have_attribute("data-outcome", "pending")
    pg.check("input[name=chain][value='eip155:1']")
    expect(verdict).to_have_class("verdict ok", timeout=10_000)
    balance = site.world.holders[site.mixed]
    expect(verdict).to_contain_text(f"Included and verified: {site.mixed} holds ")
    whole, frac = divmod(balance, 10**6)
    expect(verdict).to_contain_text(f"{whole:,}.{frac:06d} CNHC in attestation #3")
    expect(verdict.locator(".icon")).to_have_text("✓")
    # and the account's history: verified in each of the last attestations
    rows = pg.locator("#history tbody tr")
    expect(rows).to_have_count(3, timeout=15_000)
    for i in range(3):
        expect(rows.nth(i)).to_have_attribute("data-outcome", "ok", timeout=15_000)
    shot(pg, "holder-included-eip55")


def test_lower_case_and_caip10_forms_find_the_same_account(site: Site, ctx: Any) -> None:
    pg = ctx()
    verdict = _check(
        pg, site.base, site.mixed.upper().replace("EIP155", "eip155").replace("0X", "0x")
    )
    expect(verdict).to_have_class("verdict ok", timeout=10_000)  # CAIP-10 upper-case hex
    verdict = _check(pg, site.base, site.mixed.split(":")[2])
    pg.check("input[name=chain][value='eip155:1']")
    expect(verdict).to_have_class("verdict ok", timeout=10_000)


def test_not_in_this_attestation_is_not_a_failure(site: Site, ctx: Any) -> None:
    pg = ctx()
    verdict = _check(pg, site.base, site.mover)
    expect(verdict).to_have_class("verdict absent", timeout=10_000)
    expect(verdict).to_contain_text(
        f"Not in this attestation: attestation #3 lists no balance for {site.mover}"
    )
    expect(verdict).to_contain_text("This is not a verification failure")
    expect(verdict).not_to_contain_text("FAILED")
    expect(verdict.locator(".icon")).to_have_text("i")
    # the mover held tokens in #1 and #2, each verified; not in #3
    rows = pg.locator("#history tbody tr")
    expect(rows).to_have_count(3, timeout=15_000)
    expect(rows.nth(0)).to_have_attribute("data-outcome", "absent", timeout=15_000)
    expect(rows.nth(1)).to_have_attribute("data-outcome", "ok", timeout=15_000)
    expect(rows.nth(2)).to_have_attribute("data-outcome", "ok", timeout=15_000)
    shot(pg, "holder-not-included")
    colours = pg.evaluate(
        "() => getComputedStyle(document.getElementById('verdict')).backgroundColor"
    )
    assert colours == "rgb(232, 240, 250)"  # blue-grey: neither the green nor the red


def test_verification_failed_is_loud_and_red(site: Site, ctx: Any) -> None:
    pg = ctx()

    # a proof served for this account with a changed balance: the server lies
    def tamper(route: Any) -> None:
        body = json.loads(route.fetch().text())
        body["proof"]["balance"] = str(int(body["proof"]["balance"]) + 10**6)
        route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    pg.route(re.compile(r".*/v1/proofs/.*sequence=3$"), tamper)
    verdict = _check(pg, site.base, site.mixed)
    expect(verdict).to_have_class("verdict failed", timeout=10_000)
    expect(verdict).to_contain_text("Verification FAILED: computed root hash")
    expect(verdict).to_contain_text("Do not rely on this result")
    expect(verdict.locator(".icon")).to_have_text("✕")
    colours = pg.evaluate(
        "() => getComputedStyle(document.getElementById('verdict')).backgroundColor"
    )
    assert colours == "rgb(251, 230, 230)"
    shot(pg, "holder-failed")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("0x" + "ab" * 19, "it is not an Ethereum, Solana or CAIP-10 address"),
        ("hello", "it is not an Ethereum, Solana or CAIP-10 address"),
        ("eip155:137:0x" + "ab" * 20, "chain eip155:137 is not in this attestation"),
        (
            "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin",
            "this attestation covers no chain for this kind of address",
        ),
    ],
)
def test_an_invalid_address_names_the_accepted_forms(
    site: Site, ctx: Any, text: str, says: str
) -> None:
    pg = ctx()
    verdict = _check(pg, site.base, text)
    error = pg.locator("#input-error")
    expect(error).to_be_visible(timeout=10_000)
    expect(error).to_contain_text(f"Not a valid address: {says}")
    expect(error).to_contain_text("Accepted forms: 0x followed by 40 hexadecimal digits")
    expect(verdict).to_have_attribute("data-outcome", "pending")


def test_a_mistyped_checksum_is_caught_before_any_lookup(site: Site, ctx: Any) -> None:
    pg = ctx()
    good = to_checksum_address(site.mixed.split(":")[2])
    i = next(k for k, ch in enumerate(good[2:], 2) if ch.isalpha())
    typo = good[:i] + good[i].swapcase() + good[i + 1 :]
    requests: list[str] = []
    pg.on("request", lambda r: requests.append(r.url))
    _check(pg, site.base, typo, "?lang=zh-HK")
    expect(pg.locator("#input-error")).to_contain_text("大小寫與 EIP-55 校驗不符", timeout=10_000)
    assert not [u for u in requests if "/v1/proofs/" in u]
    shot(pg, "holder-invalid-zh-HK")


def test_the_browser_checksum_and_base58_agree_with_python(site: Site, ctx: Any) -> None:
    pg = ctx()
    pg.goto(f"{site.base}/holder")
    expect(pg.locator("#check")).to_be_enabled(timeout=10_000)
    rng = random.Random(5)
    lowers = ["0x" + rng.randbytes(20).hex() for _ in range(40)]
    got = pg.evaluate("(xs) => xs.map((x) => PorAddress.checksum(x.slice(2)))", lowers)
    assert got == [to_checksum_address(x) for x in lowers]
    empty = pg.evaluate("() => PorAddress.hex(PorAddress.keccak256(new Uint8Array(0)))")
    assert empty == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    long = bytes(range(256)) * 2  # more than one 136-byte block
    got_long = pg.evaluate(
        "(b) => PorAddress.hex(PorAddress.keccak256(new Uint8Array(b)))", list(long)
    )
    from eth_utils import keccak

    assert got_long == keccak(long).hex()
    sol = "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"
    cases = pg.evaluate(
        """([sol]) => [
          PorAddress.parse("9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin", ["eip155:1", sol]),
          PorAddress.parse("11111111111111111111111111111111", [sol]),
          PorAddress.parse("9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZ", [sol]),
          PorAddress.parse(sol + ":9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin", [sol]),
        ]""",
        [sol],
    )
    assert cases[0] == {"account": f"{sol}:9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin"}
    assert cases[1] == {"account": f"{sol}:11111111111111111111111111111111"}
    assert cases[2] == {"error": "holder.bad_format"}  # 35 characters: 26 bytes, not 32
    assert cases[3] == {"account": f"{sol}:9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin"}


# --- Chinese, narrow screens, empty states, the report ------------------------------------


def test_dashboard_in_traditional_chinese_at_390_px(site: Site, ctx: Any) -> None:
    pg = ctx(390, "zh-HK")
    pg.goto(f"{site.base}/?poll=400")  # the browser's language picks zh-HK
    expect(pg.locator("#status")).to_have_text("儲備不足", timeout=10_000)
    expect(pg.locator("html")).to_have_attribute("lang", "zh-Hant-HK")
    expect(pg.locator("#headroom-label")).to_have_text("儲備缺口")
    expect(pg.locator("#attested")).to_contain_text("年")  # Intl zh-HK: 2026年11月30日
    expect(pg.locator("#age")).to_contain_text(re.compile(r"\d+ 分鐘 \d+ 秒前"))
    expect(pg.locator("#chains td[data-label='總供應量']").first).to_be_visible()
    expect(pg.locator("#report-links")).to_contain_text("昨日")
    _no_horizontal_scroll(pg)
    shot(pg, "dashboard-zh-HK-390")


def test_holder_page_in_simplified_chinese_at_390_px(site: Site, ctx: Any) -> None:
    pg = ctx(390, "en-GB")
    verdict = _check(pg, site.base, site.mover, "?lang=zh-CN")
    expect(verdict).to_have_class("verdict absent", timeout=10_000)
    expect(verdict).to_contain_text("不在此鉴证中")
    expect(pg.locator("#history tbody tr")).to_have_count(3, timeout=15_000)
    _no_horizontal_scroll(pg)
    shot(pg, "holder-zh-CN-390")
    # the choice is kept: the next page opens in Simplified Chinese without ?lang=
    pg.goto(f"{site.base}/")
    expect(pg.locator("h2 [data-i18n='dash.latest']")).to_have_text("最新鉴证", timeout=10_000)
    _no_horizontal_scroll(pg)


@pytest.mark.parametrize("width", [360, 390, 768, 1440])
def test_no_horizontal_scroll_from_360_to_1440(site: Site, ctx: Any, width: int) -> None:
    pg = ctx(width)
    pg.goto(f"{site.base}/?lang=en&poll=400")
    expect(pg.locator("#status")).not_to_have_text("—", timeout=10_000)
    _no_horizontal_scroll(pg)
    pg.goto(f"{site.base}/report?period=daily&at={datetime.now(UTC).date()}&lang=zh-HK")
    expect(pg.locator("#title")).to_be_visible()
    _no_horizontal_scroll(pg)
    if width == 390:
        shot(pg, "dashboard-390")


def test_before_the_first_publication_there_are_no_bare_tables(site: Site, ctx: Any) -> None:
    pg = ctx()
    pg.goto(f"{site.empty}/?lang=en&poll=400")
    expect(pg.locator("#empty")).to_be_visible(timeout=10_000)
    expect(pg.locator("#empty")).to_contain_text("No attestation has been published yet")
    expect(pg.locator("#content")).to_be_hidden()
    assert pg.locator("table:visible").count() == 0
    shot(pg, "dashboard-empty")


def test_favicon_is_served(site: Site, ctx: Any) -> None:
    pg = ctx()
    r = pg.request.get(f"{site.base}/favicon.ico")
    assert r.status == 200 and r.headers["content-type"] == "image/x-icon"


def test_the_report_page_shows_the_figures_and_switches_language(site: Site, ctx: Any) -> None:
    pg = ctx()
    pg.goto(f"{site.base}/?lang=en&poll=400")
    link = pg.locator("#report-links a[data-period=weekly][data-current=true]")
    expect(link).to_be_visible(timeout=10_000)
    link.click()
    expect(pg.locator("#title")).to_contain_text("Weekly reserve report")
    expect(pg.locator("#finality")).to_contain_text("PROVISIONAL")
    body = pg.request.get(f"{site.base}/v1/reports/weekly?at={datetime.now(UTC).date()}").json()
    digest = body["digest"]
    expect(pg.locator("main")).to_contain_text(digest)
    last = next(d for d in reversed(body["report"]["days"]) if d["attestation"])
    whole, frac = divmod(int(last["eligible_reserves"]), 10**6)
    expect(pg.locator("table.overview")).to_contain_text(f"{whole:,}.{frac:06d}")
    expect(pg.locator("table.cited")).to_contain_text(last["attestation"]["digest"])
    shot(pg, "report-en")
    pg.locator("nav.langs a[lang='zh-Hant-HK']").click()
    expect(pg.locator("#title")).to_contain_text(i18n.t("zh-HK", "report.weekly"))
    expect(pg.locator("main")).to_contain_text(i18n.t("zh-HK", "report.provisional"))
    shot(pg, "report-zh-HK")
    pdf = pg.request.get(
        f"{site.base}/v1/reports/weekly?at={datetime.now(UTC).date()}&format=pdf&lang=zh-HK"
    )
    assert pdf.status == 200 and pdf.body().startswith(b"%PDF-")
    assert hashlib.sha256(pdf.body()).hexdigest()  # served, cached by digest
