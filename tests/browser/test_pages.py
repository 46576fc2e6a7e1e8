"""Dashboard and holder page in real Chromium (Debian's, through Playwright).

The app is served by uvicorn on 127.0.0.1 over a temp store of real signed
attestations. The pages must show the API's numbers, follow a new attestation without
a reload, accept a real proof and reject tampered ones; the in-browser verifier must
agree with the Python verifier on every sum-tree test vector and on mutations of a real
proof. Screenshots go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from playwright.sync_api import expect, sync_playwright

from por.api import ApiDeps, create_app
from por.core.dsse import Ed25519Signer, Envelope, KeyEntry, KeySet, pae
from por.core.mst import InclusionProof, verify_inclusion
from por.core.times import format_time, parse_time
from por.core.verify import open_attestation_envelope
from por.errors import PorError
from por.store import Store
from tests.store.factory import ISSUER, World, keyset

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).parents[2]
SHOTS = ROOT / "test-artifacts" / "screenshots"
VECTORS = ROOT / "tests" / "vectors" / "sumtree"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.xdist_group("browser"),
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Debian chromium is not installed at /usr/bin/chromium (apt-get install chromium)",
    ),
]


def fmt_units(value: int, decimals: int) -> str:
    """What common.js formatUnits shows in English: grouped, exact, every decimal place."""
    whole, frac = divmod(value, 10**decimals)
    return f"{whole:,}.{str(frac).rjust(decimals, '0')}" if decimals else f"{whole:,}"


@dataclass
class Served:
    base: str
    store: Store
    world: World


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("browser")
    store = Store.open(None, data_dir=tmp / "data", attestations_dir=tmp / "att", migrate=True)
    world = World()
    for pct in (105, 112, 110):
        world.record(store, reserves_pct=pct)
    app = create_app(ApiDeps(store=store, keys=keyset().to_dict(), proof_rate_limit=None))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield Served(base=f"http://127.0.0.1:{port}", store=store, world=world)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
        store.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 1400})
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    yield pg
    ctx.close()
    # CSP violations and script errors show up here; 404/429 fetches the page handles do not
    assert not [e for e in errors if "Failed to load resource" not in e], errors


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_dashboard_shows_latest_and_follows_new_attestations(served: Served, page: Any) -> None:
    latest = httpx.get(f"{served.base}/v1/attestations/latest").json()
    doc = latest["attestation"]
    dec = doc["token"]["decimals"]
    page.goto(f"{served.base}/?poll=300")
    expect(page.locator("#sequence")).to_have_text(f"#{latest['sequence']}")
    expect(page.locator("#status")).to_have_attribute("data-status", doc["totals"]["status"])
    expect(page.locator("#ratio")).to_have_text(doc["totals"]["ratio"])
    expect(page.locator("#eligible")).to_have_text(
        fmt_units(int(doc["totals"]["eligible_reserves"]), dec)
    )
    expect(page.locator("#circulating")).to_have_text(
        fmt_units(int(doc["totals"]["circulating_supply"]), dec)
    )
    expect(page.locator("#liabilities-root")).to_have_text(doc["liabilities"]["root"])
    rows = page.locator("#chains tbody tr")
    expect(rows).to_have_count(len(doc["chains"]))
    for i, c in enumerate(doc["chains"]):
        row = rows.nth(i)
        expect(row).to_contain_text(c["chain_id"])
        expect(row).to_contain_text(f"{c['block']['number']:,}")
        expect(row).to_contain_text(fmt_units(int(c["circulating_supply"]), dec))
        # this chain's mint budget and what consumers comparing totalSupply() may still mint
        expect(row).to_contain_text(fmt_units(int(c["budget"]), dec))
        room = int(c["budget"]) - int(c["total_supply"])
        expect(row).to_contain_text(fmt_units(room, dec) if room > 0 else "none")
    expect(page.locator("#by-class tbody tr")).to_have_count(2)
    expect(page.locator("#by-custodian tbody tr")).to_contain_text(
        [doc["reserves"][0]["custodian"], doc["reserves"][1]["custodian"]]
    )
    expect(page.locator("#history")).to_have_attribute("data-points", "3")
    expect(page.locator("#history circle")).to_have_count(3)
    shot(page, "dashboard-3")

    # A new attestation, under-collateralized, arrives: the page follows without reload.
    marker = page.evaluate("() => { window.__marker = 42; return window.__marker; }")
    built = served.world.record(served.store, reserves_pct=95)
    att = built.attestation
    expect(page.locator("#sequence")).to_have_text(f"#{att.sequence}", timeout=10_000)
    expect(page.locator("#status")).to_have_text("Under-collateralized")
    expect(page.locator("#status")).to_have_class("badge UNDER_COLLATERALIZED")
    shortfall = att.totals.circulating_supply - att.totals.eligible_reserves
    expect(page.locator("#headroom-label")).to_have_text("Shortfall")
    expect(page.locator("#headroom")).to_have_text(fmt_units(shortfall, dec))
    expect(page.locator("#ratio")).to_have_text(str(att.totals.ratio))
    expect(page.locator("#eligible")).to_have_text(fmt_units(att.totals.eligible_reserves, dec))
    expect(page.locator("#history")).to_have_attribute("data-points", "4")
    assert page.evaluate("() => window.__marker") == marker  # same document: no reload
    shot(page, "dashboard-4-under")


def _proof(served: Served, account: str) -> dict[str, Any]:
    r = httpx.get(f"{served.base}/v1/proofs/{account}")
    assert r.status_code == 200
    return dict(r.json())


def test_holder_page_accepts_a_real_proof(served: Served, page: Any) -> None:
    account = sorted(served.world.holders)[3]
    balance = served.world.holders[account]
    latest = httpx.get(f"{served.base}/v1/attestations/latest").json()
    page.goto(f"{served.base}/holder")
    page.fill("#account", account)
    page.click("#check")
    verdict = page.locator("#verdict")
    expect(verdict).to_have_class("verdict ok", timeout=10_000)
    expect(verdict).to_contain_text(
        f"Included and verified: {account} holds {fmt_units(balance, 6)} CNHC "
        f"in attestation #{latest['sequence']}"
    )
    expect(page.locator("#details")).to_contain_text("issuer key")
    expect(page.locator("#details")).to_contain_text(latest["attestation"]["liabilities"]["root"])
    shot(page, "holder-included")

    # an older attestation's proof, pasted: verified against THAT signed attestation
    old = httpx.get(f"{served.base}/v1/proofs/{account}", params={"sequence": 1}).json()
    page.fill("#pasted", json.dumps(old))
    page.click("#verify-pasted")
    expect(verdict).to_contain_text("in attestation #1")
    expect(verdict).to_have_class("verdict ok")

    page.fill("#account", "eip155:1:0x" + "99" * 20)
    page.click("#check")
    expect(verdict).to_have_class("verdict absent")
    expect(verdict).to_contain_text("Not in this attestation")


@pytest.mark.parametrize("tamper", ["balance", "path_bit", "root_sum", "mismatched_root"])
def test_holder_page_rejects_tampered_proofs(served: Served, page: Any, tamper: str) -> None:
    account = sorted(served.world.holders)[5]
    body = _proof(served, account)
    p = body["proof"]
    if tamper == "balance":
        p["balance"] = str(int(p["balance"]) + 1_000_000)
        want = "computed root hash"
    elif tamper == "path_bit":
        h = bytearray.fromhex(p["path"][0]["hash"])
        h[0] ^= 0x01
        p["path"][0]["hash"] = h.hex()
        want = "computed root hash"
    elif tamper == "root_sum":
        p["root"]["sum"] = str(int(p["root"]["sum"]) - 1)
        want = "root sum"
    else:
        # internally consistent proof from another tree, presented as this attestation's
        other = World(holders={account: 5}).next()
        body["proof"] = other.tree.prove(account).to_dict()
        want = "does not match the liabilities of signed attestation"
    page.goto(f"{served.base}/holder")
    page.fill("#pasted", json.dumps(body))
    page.click("#verify-pasted")
    verdict = page.locator("#verdict")
    expect(verdict).to_have_class("verdict failed", timeout=10_000)
    expect(verdict).to_contain_text("Verification FAILED:")
    expect(verdict).to_contain_text(want)
    shot(page, f"holder-rejected-{tamper}")


_JS_VERIFY = """async (p) => {
  try { await PorMst.verifyProof(p); return null; } catch (e) { return e.message; }
}"""


def _python_verdict(proof: Any) -> str | None:
    try:
        verify_inclusion(InclusionProof.from_dict(proof))
    except PorError as e:
        return str(e)
    return None


def _mutations(proof: dict[str, Any]) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = [("valid", proof)]

    def m(name: str, fn: Any) -> None:
        p = copy.deepcopy(proof)
        fn(p)
        out.append((name, p))

    m("index plus 1", lambda p: p.update(index=p["index"] + 1))
    m("size div 2", lambda p: p.update(size=p["size"] // 2))
    m("size plus 1", lambda p: p.update(size=p["size"] + 1))
    m("index equals size", lambda p: p.update(index=p["size"]))
    m("path truncated", lambda p: p["path"].pop())
    m("path extra", lambda p: p["path"].append(p["path"][0]))
    m("sibling sum plus 1", lambda p: p["path"][0].update(sum=str(int(p["path"][0]["sum"]) + 1)))
    m("balance plus 1", lambda p: p.update(balance=str(int(p["balance"]) + 1)))
    m("balance leading zero", lambda p: p.update(balance="0" + p["balance"]))
    m("balance as number", lambda p: p.update(balance=int(p["balance"])))
    m(
        "salt flipped",
        lambda p: p.update(salt=("1" if p["salt"][0] == "0" else "0") + p["salt"][1:]),
    )
    m("salt upper case", lambda p: p.update(salt=p["salt"].upper()))
    m("account changed", lambda p: p.update(account=p["account"][:-1] + "f"))
    m(
        "root hash flipped",
        lambda p: p["root"].update(
            hash=("1" if p["root"]["hash"][0] == "0" else "0") + p["root"]["hash"][1:]
        ),
    )
    m("format v2", lambda p: p.update(format="por-mst-v2"))
    m("unknown field", lambda p: p.update(extra=1))
    m("balance 2^127", lambda p: p.update(balance=str(2**127)))
    return out


def test_browser_verifier_agrees_with_python_on_mutations(served: Served, page: Any) -> None:
    page.goto(f"{served.base}/holder")
    accounts = sorted(served.world.holders)
    cases = []
    for account in (accounts[0], accounts[len(accounts) // 2], accounts[-1]):
        cases.extend(_mutations(_proof(served, account)["proof"]))
    for name, proof in cases:
        js = page.evaluate(_JS_VERIFY, proof)
        py = _python_verdict(proof)
        assert (js is None) == (py is None), (name, js, py)
    assert sum(1 for name, _ in cases if name == "valid") == 3


def test_browser_verifier_on_sumtree_vectors(served: Served, page: Any) -> None:
    files = sorted(VECTORS.glob("*.json"))
    if not files:
        pytest.skip(f"no sum-tree vectors in {VECTORS} yet")
    page.goto(f"{served.base}/holder")
    checked = 0
    for f in files:
        vector = json.loads(f.read_text())
        proof = vector.get("proof")
        if proof is None:
            continue  # a vector about building a root, not about a proof
        js = page.evaluate(_JS_VERIFY, proof)
        if vector["want_err"] is None:
            assert js is None, (f.name, vector.get("desc"), js)
        else:
            assert js is not None, (f.name, vector.get("desc"), "accepted")
        checked += 1
    assert checked, "no proof vectors found"


_JS_ENVELOPE = """async ([env, keys, now]) => {
  try {
    const v = await PorMst.verifyEnvelope(env, keys, now);
    return { ok: v.roles };
  } catch (e) { return { err: e.message }; }
}"""

AUDITOR = Ed25519Signer(hashlib.sha256(b"por browser test auditor").digest())


def _key(signer: Ed25519Signer, role: str, **window: datetime) -> dict[str, Any]:
    return KeyEntry.for_public_key(signer.public_key_raw, role=role, **window).to_dict()


def _envelope_cases(env: dict[str, Any], issued: datetime) -> list[tuple[str, Any, Any, datetime]]:
    """(name, envelope, key set, now) — the key-set rules por check applies."""
    second = timedelta(seconds=1)
    issuer = _key(ISSUER, "issuer")
    other = Ed25519Signer(hashlib.sha256(b"por browser test stranger").digest())
    wrong_type = dict(env, payloadType="application/json")
    cosigned = copy.deepcopy(env)
    payload = base64.b64decode(env["payload"])
    cosigned["signatures"].append(
        {
            "keyid": AUDITOR.keyid,
            "sig": base64.b64encode(AUDITOR.sign(pae(env["payloadType"], payload))).decode(),
        }
    )
    now = issued + timedelta(days=1)
    return [
        ("valid", env, {"keys": [issuer]}, now),
        (
            "key expired before issue",
            env,
            {"keys": [_key(ISSUER, "issuer", not_after=issued - second)]},
            now,
        ),
        (
            "key valid only later",
            env,
            {"keys": [_key(ISSUER, "issuer", not_before=issued + second)]},
            now,
        ),
        ("window ends at issue", env, {"keys": [_key(ISSUER, "issuer", not_after=issued)]}, now),
        ("window starts at issue", env, {"keys": [_key(ISSUER, "issuer", not_before=issued)]}, now),
        (
            "key expired since (still vouches)",
            env,
            {"keys": [_key(ISSUER, "issuer", not_after=issued + second)]},
            now,
        ),
        ("issuer key listed as auditor", env, {"keys": [_key(ISSUER, "auditor")]}, now),
        ("only a stranger's key", env, {"keys": [_key(other, "issuer")]}, now),
        ("wrong payload type", wrong_type, {"keys": [issuer]}, now),
        (
            "issued 10 minutes in the future",
            env,
            {"keys": [issuer]},
            issued - timedelta(minutes=10),
        ),
        ("issued 4 minutes in the future", env, {"keys": [issuer]}, issued - timedelta(minutes=4)),
        ("auditor co-signature", cosigned, {"keys": [issuer, _key(AUDITOR, "auditor")]}, now),
        ("auditor only", cosigned, {"keys": [_key(AUDITOR, "auditor")]}, now),
    ]


def test_browser_envelope_check_agrees_with_python(served: Served, page: Any) -> None:
    """The holder page applies the key set as por check does: role, window at issued_at,
    payload type, no future attestations."""
    latest = httpx.get(f"{served.base}/v1/attestations/latest").json()
    issued = parse_time(latest["attestation"]["issued_at"], where="issued_at")
    page.goto(f"{served.base}/holder")
    verdicts = {}
    for name, env, keys, now in _envelope_cases(latest["envelope"], issued):
        try:
            open_attestation_envelope(Envelope.from_dict(env), KeySet.from_dict(keys), now=now)
            py = None
        except PorError as e:
            py = str(e)
        js = page.evaluate(_JS_ENVELOPE, [env, keys, now.timestamp() * 1000])
        assert (py is None) == ("ok" in js), (name, py, js)
        verdicts[name] = js
    assert verdicts["auditor co-signature"] == {"ok": ["issuer", "auditor"]}
    assert (
        "expired " + format_time(issued - timedelta(seconds=1))
        in verdicts["key expired before issue"]["err"]
    )
    assert "not yet valid" in verdicts["key valid only later"]["err"]
    assert "issued in the future" in verdicts["issued 10 minutes in the future"]["err"]
    assert "payloadType" in verdicts["wrong payload type"]["err"]
    assert "not in the key set" in verdicts["only a stranger's key"]["err"]


def test_holder_page_refuses_an_attestation_signed_outside_the_key_window(
    served: Served, page: Any
) -> None:
    """A published key set that says the issuer key had expired when the attestation was
    signed: the holder is told the signature does not count, even though the proof holds."""
    account = sorted(served.world.holders)[3]
    latest = httpx.get(f"{served.base}/v1/attestations/latest").json()
    issued = parse_time(latest["attestation"]["issued_at"], where="issued_at")
    expired = {"keys": [_key(ISSUER, "issuer", not_after=issued - timedelta(seconds=1))]}
    page.route(
        "**/v1/keys",
        lambda route: route.fulfill(
            status=200, content_type="application/json", body=json.dumps(expired)
        ),
    )
    page.goto(f"{served.base}/holder")
    page.fill("#account", account)
    page.click("#check")
    verdict = page.locator("#verdict")
    expect(verdict).to_have_class("verdict failed", timeout=10_000)
    expect(verdict).to_contain_text("signature does not verify")
    expect(verdict).to_contain_text("expired")
    shot(page, "holder-key-expired")


# --- operations: the stale banner and the offline API docs ------------------------------------


@pytest.fixture(scope="module")
def stale_served(served: Served) -> Iterator[str]:
    """A second app over the same store whose clock says the latest attestation is a day old."""
    from datetime import UTC

    later = datetime.now(UTC) + timedelta(days=1)
    app = create_app(
        ApiDeps(
            store=served.store,
            keys=keyset().to_dict(),
            proof_rate_limit=None,
            stale_after_s=3 * 3600,
            wall_clock=lambda: later,
        )
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def test_dashboard_warns_when_the_latest_attestation_is_stale(
    served: Served, stale_served: str, page: Any
) -> None:
    page.goto(f"{stale_served}/?poll=300")
    banner = page.locator("#stale")
    expect(banner).to_be_visible(timeout=10_000)
    expect(banner).to_contain_text("stale")
    expect(banner).to_contain_text(re.compile(r"the latest attestation is \d+ d( \d+ h)? old"))
    expect(banner).to_contain_text("an alert is raised after 3 h")
    shot(page, "dashboard-stale")
    page.goto(f"{served.base}/?poll=300")  # fresh (no stale limit): no banner
    expect(page.locator("#status")).not_to_have_text("—", timeout=10_000)
    expect(page.locator("#stale")).to_be_hidden()


def test_api_docs_render_offline_within_the_csp(served: Served, page: Any) -> None:
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.goto(f"{served.base}/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text(
        "proof of reserve", timeout=15_000
    )
    expect(page.locator(".opblock-summary-path").first).to_be_visible()
    assert page.locator(".opblock").count() >= 10
    assert all(u.startswith(served.base) for u in requested), requested  # nothing off-host
    shot(page, "docs")
