"""Logs an operator can use: one JSON line per run with its phases, errors with their
diagnostics, and never a secret (admin token, passphrase, keys, webhook key)."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from por.service.logs import REDACTED, redact, register_secret, setup_logging
from tests.service.conftest import PASSPHRASE, World, write_world

ADMIN = "admin-token-Zq81xXv0PLw"
HOOK = "hook-secret-Kd71mN02Aq"
PUBLISHER = "0x" + "5e" * 32


def run_por(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "por.cli.main", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_attest_logs_json_lines_and_no_secret(tmp_path: Path) -> None:
    world = write_world(tmp_path / "w")
    world.config.write_text(
        world.config.read_text()
        + '\n[alerts]\n[[alerts.webhooks]]\nurl = "http://127.0.0.1:9/never"\n'
        'secret_env = "POR_TEST_HOOK"\nmax_attempts = 1\n'
    )
    env = {
        "POR_KEY_PASSPHRASE": PASSPHRASE,
        "POR_ADMIN_TOKEN": ADMIN,
        "POR_TEST_HOOK": HOOK,
        "POR_TEST_PUBLISHER": PUBLISHER,
    }
    ok = run_por(
        ["attest", "--config", str(world.config), "--no-publish", "--log-format", "json"], env
    )
    assert ok.returncode == 0, ok.stderr
    lines = [json.loads(line) for line in ok.stderr.splitlines() if line.strip()]
    run = next(line for line in lines if line.get("event") == "run")
    # today's clock makes the 2025 sample statements stale: DEGRADED, logged at WARNING
    assert run["sequence"] == 1 and run["status"] == "DEGRADED" and run["level"] == "WARNING"
    assert set(run["durations_s"]) == {"snapshot", "reserves", "tree", "sign", "record", "publish"}
    assert run["message"].startswith("attestation 1 DEGRADED ratio=")
    assert any(line.get("event") == "alert" and line["kind"] == "status" for line in lines)

    # a failing run: the error's diagnostics are logged at ERROR, still without secrets
    text = world.config.read_text().replace(
        'key_file = "keys/issuer.key.pem"', 'key_file = "keys/missing.pem"'
    )
    world.config.write_text(text)
    bad = run_por(["attest", "--config", str(world.config), "--log-format", "json"], env)
    assert bad.returncode == 1
    errors = [json.loads(line) for line in bad.stderr.splitlines() if line.startswith("{")]
    assert any(e["level"] == "ERROR" and "ConfigError" in e["message"] for e in errors)
    for out in (ok.stdout + ok.stderr, bad.stdout + bad.stderr):
        for secret in (ADMIN, HOOK, PASSPHRASE, PUBLISHER, PUBLISHER[2:]):
            assert secret not in out
        assert "PRIVATE KEY" not in out


def test_secrets_are_redacted_wherever_they_appear(world: World) -> None:
    stream = io.StringIO()
    setup_logging("text", stream=stream)
    try:
        register_secret("pin-1234-secret")
        register_secret(bytes.fromhex("aa" * 32))
        pem = (world.root / "keys" / "issuer.key.pem").read_text()
        log = logging.getLogger("por.test")
        log.warning("oops: pin=%s key=0x%s", "pin-1234-secret", "aa" * 32)
        try:
            raise ValueError(f"bad key {pem}")
        except ValueError:
            log.exception("with traceback")
        out = stream.getvalue()
        assert (
            "pin-1234-secret" not in out
            and "aa" * 32 not in out
            and "ENCRYPTED PRIVATE KEY-----\n" not in out
        )
        assert out.count(REDACTED) >= 3
        assert redact("nothing secret here") == "nothing secret here"
    finally:
        setup_logging("text", stream=sys.stderr)


def test_json_lines_when_not_a_terminal_text_on_one() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    for stream, is_json in ((io.StringIO(), True), (Tty(), False)):
        setup_logging("auto", stream=stream)
        logging.getLogger("por.test").info("hello %d", 1)
        line = stream.getvalue().strip().splitlines()[-1]
        assert line.startswith("{") is is_json
        assert "hello 1" in line
    setup_logging("text", stream=sys.stderr)


def test_indexing_progress_is_rate_limited() -> None:
    from por.progress import Progress

    stream = io.StringIO()
    setup_logging("text", stream=stream)
    try:
        t = [0.0]
        p = Progress(
            logging.getLogger("por.test"),
            "indexing",
            total=1000,
            unit="blocks",
            every_s=10,
            clock=lambda: t[0],
        )
        for i in range(1, 101):
            t[0] = i * 0.5  # 50 s in 100 steps: a line every 10 s, not every step
            p.update(i * 10, blocks=i * 10, transfers=i * 3)
        p.done()
        lines = [line for line in stream.getvalue().splitlines() if "indexing" in line]
        assert len(lines) == 6, lines
        assert "400/1000 blocks (40%)" in lines[1] and "(20/s)" in lines[1]
        assert "done in 50.00 s" in lines[-1]
    finally:
        setup_logging("text", stream=sys.stderr)
