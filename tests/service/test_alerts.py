"""Alerts: signed webhooks that never hold up a run, dead letters, status changes, failed
runs, publication lag and staleness; the metrics behind the Prometheus rules."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from por.service.alerts import Alert, Alerter, AlertMetrics, Webhook, WebhookSender, verify_webhook
from por.service.config import load_config
from por.service.run import PublishOutcome, RunResult
from tests.service.conftest import Clock, World

SECRET = "webhook-shared-secret-0123"
REPO = Path(__file__).resolve().parents[2]


class Receiver:
    """A loopback webhook receiver: records (headers, body); `gate` holds each answer."""

    def __init__(self, status: int = 200) -> None:
        self.got: list[tuple[dict[str, str], bytes]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.arrived = threading.Event()
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.got.append((dict(self.headers), body))
                outer.arrived.set()
                outer.gate.wait(30)
                self.send_response(status)
                self.end_headers()

            def log_message(self, *a: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def with_webhook(
    world: World, url: str, monkeypatch: pytest.MonkeyPatch, attempts: int = 2
) -> None:
    monkeypatch.setenv("POR_TEST_WEBHOOK", SECRET)
    world.config.write_text(
        world.config.read_text()
        + f'\n[alerts]\n[[alerts.webhooks]]\nurl = "{url}"\nsecret_env = "POR_TEST_WEBHOOK"\n'
        f"max_attempts = {attempts}\ntimeout_s = 2\n"
    )


def degrade(world: World) -> None:
    """Point the custodian at nothing: reserves count zero, the run is DEGRADED."""
    text = world.config.read_text()
    start = text.index("paths = ")
    end = text.index("\n", start)
    world.config.write_text(text[:start] + 'paths = ["nothing-here/*.xml"]' + text[end:])


def test_status_change_is_a_signed_webhook_that_never_holds_up_the_run(
    world: World, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    from por.service.wiring import build_service

    with_webhook(world, receiver.url, monkeypatch)
    degrade(world)
    receiver.gate.clear()  # the receiver will not answer until the run has returned
    svc = build_service(load_config(world.config), publish=False, clock=Clock())
    try:
        result = svc.attest()  # would hang here if delivery were on the run's path
        assert result.status == "DEGRADED"
        assert receiver.arrived.wait(10)
        receiver.gate.set()
        headers, body = receiver.got[0]
        alert = json.loads(body)
        assert alert["kind"] == "status" and alert["details"]["status"] == "DEGRADED"
        assert headers["X-Por-Alert-Id"] == alert["id"]
        now = int(datetime.now(UTC).timestamp())
        assert verify_webhook(SECRET.encode(), headers["X-Por-Signature"], body, now_s=now)
        assert not verify_webhook(b"another key", headers["X-Por-Signature"], body, now_s=now)
        assert not verify_webhook(
            SECRET.encode(), headers["X-Por-Signature"], body + b" ", now_s=now
        )
        svc.attest()  # still DEGRADED: no second alert for the same status
        assert svc.alerter is not None and svc.alerter.metrics.alerts == {"status": 1}
    finally:
        svc.close()


def test_a_webhook_that_is_down_becomes_a_dead_letter(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from por.demo.anvil import free_port
    from por.service.wiring import build_service

    with_webhook(world, f"http://127.0.0.1:{free_port()}/down", monkeypatch, attempts=2)
    degrade(world)
    svc = build_service(load_config(world.config), publish=False, clock=Clock())
    try:
        assert svc.alerter is not None and svc.alerter.sender is not None
        svc.alerter.sender._backoff_s = 0.01
        assert svc.attest().status == "DEGRADED"
        for _ in range(1000):  # both attempts fail at once (connection refused)
            if svc.alerter.metrics.deliveries["dead_letter"]:
                break
            threading.Event().wait(0.01)
    finally:
        svc.close()  # drains the sender: what could not be delivered is kept
    from por.store.store import Store

    store = Store.open(
        svc.cfg.database_url,
        data_dir=svc.cfg.service.data_dir,
        attestations_dir=svc.cfg.service.attestations_dir,
    )
    try:
        letters = store.dead_letters()
    finally:
        store.close()
    assert len(letters) == 1 and letters[0]["kind"] == "status"
    assert letters[0]["attempts"] == 2 and "Connect" in str(letters[0]["last_error"])
    assert json.loads(letters[0]["body"])["details"]["status"] == "DEGRADED"  # type: ignore[arg-type]


def test_sender_retries_with_backoff_then_delivers() -> None:
    calls: list[int] = []
    letters: list[str] = []

    def post(hook: Webhook, body: bytes, headers: dict[str, str]) -> int:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("refused")
        return 204

    metrics = AlertMetrics()
    sender = WebhookSender(
        [Webhook(url="http://x", secret=b"k" * 16, max_attempts=5)],
        dead_letter=lambda a, h, n, e: letters.append(e),
        metrics=metrics,
        post=post,
        backoff_s=0.001,
    )
    sender.submit(
        Alert(kind="stale", severity="error", summary="s", about="1", at=datetime.now(UTC))
    )
    for _ in range(1000):
        if metrics.deliveries["delivered"]:
            break
        threading.Event().wait(0.01)
    sender.close()
    assert len(calls) == 3 and metrics.deliveries == {
        "delivered": 1,
        "retried": 2,
        "dead_letter": 0,
    }
    assert letters == []


def result(seq: int, status: str, ok: bool = True) -> RunResult:
    return RunResult(
        sequence=seq,
        digest="00" * 32,
        status=status,
        reasons=("r",) if status != "FULLY_BACKED" else (),
        ratio="1.000000",
        publications=(
            PublishOutcome(
                chain_id="eip155:1", sequence=seq, ok=ok, detail="" if ok else "nonce too low"
            ),
        ),
    )


def test_rules_status_lag_failure_and_staleness(caplog: pytest.LogCaptureFixture) -> None:
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    a = Alerter(
        stale_after_s=3 * 3600,
        publication_lag_blocks=20,
        wall_clock=lambda: now[0],
        last_status="FULLY_BACKED",
    )
    a.run_completed(result(1, "FULLY_BACKED"), blocks={"eip155:1": 100})
    a.run_completed(result(2, "UNDER_COLLATERALIZED", ok=False), blocks={"eip155:1": 110})
    a.run_completed(result(3, "UNDER_COLLATERALIZED", ok=False), blocks={"eip155:1": 125})
    a.run_completed(result(4, "UNDER_COLLATERALIZED", ok=False), blocks={"eip155:1": 131})
    assert [x.kind for x in a.raised] == ["status", "publication_lag"]
    assert a.raised[1].details["sequence"] == 2 and a.raised[1].details["lag_blocks"] == 21
    assert a.metrics.publication_lag == {"eip155:1": 21}
    a.run_completed(result(5, "FULLY_BACKED"), blocks={"eip155:1": 140})
    assert a.raised[-1].kind == "status_resolved" and a.metrics.publication_lag == {"eip155:1": 0}
    a.run_failed(RuntimeError("boom"))
    assert a.raised[-1].kind == "run_failed" and a.metrics.run_failures == 1
    assert any(
        r.levelname == "ERROR" and "UNDER_COLLATERALIZED" in r.getMessage() for r in caplog.records
    )
    issued = now[0]
    now[0] = issued + timedelta(hours=2)
    assert a.check_stale(5, issued, up_since=issued) is None
    now[0] = issued + timedelta(hours=4)
    stale = a.check_stale(5, issued, up_since=issued)
    assert stale is not None and stale.kind == "stale" and stale.details["age_s"] == 4 * 3600
    assert a.check_stale(5, issued, up_since=issued) is None  # once per episode
    # the same event gives the same id on every instance: receivers can dedupe
    b = Alerter(stale_after_s=3 * 3600, publication_lag_blocks=20, wall_clock=lambda: now[0])
    assert b.check_stale(5, issued, up_since=issued).id == stale.id  # type: ignore[union-attr]


def test_a_failed_run_is_counted_and_alerted(world: World) -> None:
    from por.errors import ChainError
    from por.service.wiring import build_service

    svc = build_service(load_config(world.config), publish=False, clock=Clock())
    try:

        class Broken:
            chain_id = "eip155:1"

            def snapshot(self) -> object:
                raise ChainError("node down", where="http://127.0.0.1:1")

        svc.deps.chains = [Broken()]  # type: ignore[list-item]
        with pytest.raises(ChainError):
            svc.attest()
        assert svc.alerter is not None and svc.alerter.raised[-1].kind == "run_failed"
        from fastapi.testclient import TestClient

        with TestClient(svc.app()) as c:
            text = c.get("/metrics").text
        assert "por_run_failures_total 1.0" in text and "por_stale_after_seconds" in text
    finally:
        svc.close()


def promtool() -> str:
    import os

    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing: ./dev setup installs Debian's prometheus")
        pytest.skip("promtool is not installed (./dev setup installs it)")
    return found


def test_alert_rules_pass_promtool_check_and_unit_tests() -> None:
    tool = promtool()
    rules = REPO / "deploy" / "prometheus"
    check = subprocess.run(
        [tool, "check", "rules", "por-alerts.yml"],
        cwd=rules,
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    tests = subprocess.run(
        [tool, "test", "rules", "por-alerts.test.yml"],
        cwd=rules,
        capture_output=True,
        text=True,
        check=False,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr


def test_every_metric_the_rules_use_is_served(world: World) -> None:
    import re

    from fastapi.testclient import TestClient

    from por.service.wiring import build_service

    svc = build_service(load_config(world.config), publish=False, clock=Clock())
    try:
        svc.attest()
        assert svc.alerter is not None
        svc.alerter.metrics.publication_lag["eip155:1"] = 0
        svc.alerter.metrics.count("deliveries", "dead_letter", 0)
        with TestClient(svc.app()) as c:
            served = set(re.findall(r"^(por_[a-z_]+)", c.get("/metrics").text, flags=re.M))
    finally:
        svc.close()
    rules = (REPO / "deploy" / "prometheus" / "por-alerts.yml").read_text()
    exprs = " ".join(line for line in rules.splitlines() if line.strip().startswith("expr:"))
    used = set(re.findall(r"\b(por_[a-z_]+)", exprs))
    assert used and used <= served, used - served


def test_a_tampered_row_raises_an_integrity_alert(world: World) -> None:
    """Issue 12 §7: a row edited behind the service's back is reported, not only refused:
    at start (the copy to attestations/ refuses it) and when the API meets it."""
    from fastapi.testclient import TestClient
    from sqlalchemy import text

    from por.service.wiring import build_service

    svc = build_service(load_config(world.config), publish=False, clock=Clock())
    try:
        seq = svc.attest().sequence
        env = json.loads(svc.store.get(seq).envelope_json)
        sig = env["signatures"][0]["sig"]
        env["signatures"][0]["sig"] = ("B" if sig[0] != "B" else "C") + sig[1:]
        with svc.store._db.writes.begin() as s:
            s.execute(
                text("UPDATE por_attestations SET envelope_json = :e WHERE sequence = :s"),
                {"e": json.dumps(env).encode(), "s": seq},
            )
        with TestClient(svc.app(), raise_server_exceptions=False) as c:
            assert c.get(f"/v1/attestations/{seq}").status_code == 500
            assert c.get(f"/v1/attestations/{seq}").status_code == 500
        assert svc.alerter is not None and svc.alerter.metrics.alerts == {"integrity": 1}
        assert "signature does not verify" in svc.alerter.raised[-1].summary
    finally:
        svc.close()
    (world.root / "attestations" / f"{seq:08d}.dsse.json").unlink()
    again = build_service(load_config(world.config), publish=False, clock=Clock())
    try:  # restart: not republished, and said so
        assert not (world.root / "attestations" / f"{seq:08d}.dsse.json").exists()
        assert again.alerter is not None and again.alerter.metrics.alerts == {"integrity": 1}
    finally:
        again.close()
