"""`por run` under an API flood: attestation runs go on (issue 12 §5).

The attack, as it was: 20,000 idle connections to the API of `por run`. The API was
served from a thread of the scheduler's own process with no connection cap, so the
sockets took every file descriptor of that process: new clients timed out, and
attestation runs failed with "Too many open files" (one reached 2 of 3 chains).

Here `por run` gets a small descriptor limit (400) and 600 idle sockets are opened
against it. The API runs in its own worker process with a connection cap below its
limit: excess connections are refused at once, and the scheduler's process keeps its
descriptors — attestations keep being recorded while the sockets are held.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from por.demo.anvil import free_port
from tests.service.conftest import PASSPHRASE, write_world

FD_LIMIT = 400


def _limit_fds() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))


def _recorded(root: Path) -> int:
    return len(list((root / "attestations").glob("*.dsse.json")))


@pytest.mark.slow
def test_idle_socket_flood_starves_neither_runs_nor_the_process(tmp_path: Path) -> None:
    world = write_world(tmp_path / "w", interval_s=1)
    port = free_port()
    text = world.config.read_text().replace(
        'origin = "por.test/cnhc"',
        f'origin = "por.test/cnhc"\nlisten = "127.0.0.1:{port}"\napi_workers = 1',
    )
    text += "\n[api]\nheader_timeout_s = 60\n"  # the flood stays: the cap must hold it
    world.config.write_text(text)
    env = {**os.environ, "POR_KEY_PASSPHRASE": PASSPHRASE}
    proc = subprocess.Popen(
        [sys.executable, "-m", "por.cli.main", "run", "--config", str(world.config), "--run-now"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=_limit_fds,  # noqa: PLW1509 - setrlimit only, before exec
    )
    base = f"http://127.0.0.1:{port}"
    flood: list[socket.socket] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code in (200, 503):
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        else:
            pytest.fail("por run did not serve within 60 s")
        for _ in range(600):
            with contextlib.suppress(OSError):  # refused at once: what a cap does
                flood.append(socket.create_connection(("127.0.0.1", port), timeout=2))
        before = _recorded(world.root)
        time.sleep(6)  # ~6 scheduled runs while every socket is held
        after = _recorded(world.root)
        assert after >= before + 2, "attestation runs stalled during the API flood"
        assert proc.poll() is None
        for s in flood:
            s.close()
        flood.clear()
        time.sleep(0.5)  # the server sees the closes
        assert httpx.get(f"{base}/healthz", timeout=5).status_code in (200, 503)
    finally:
        for s in flood:
            s.close()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    text_out = out.decode(errors="replace")
    assert "Too many open files" not in text_out, text_out[-3000:]


def test_a_workers_admin_trigger_runs_in_the_scheduler_process() -> None:
    """`por run`'s API workers hand POST /v1/admin/attest to the process that owns the
    runs (one run lock, the publishers), and get its sequence or its error back."""
    import multiprocessing
    import threading
    from datetime import UTC, datetime

    from por.errors import InputError
    from por.service.server import RemoteTrigger, _answer_triggers

    runs: list[tuple[str, object]] = []

    def attest(as_of: datetime | None) -> int:
        runs.append((threading.current_thread().name, as_of))
        if as_of is not None and as_of.year < 2000:
            raise InputError("nothing was recorded then", where="as_of")
        return len(runs)

    mine, theirs = multiprocessing.get_context("spawn").Pipe()
    threading.Thread(
        target=_answer_triggers, args=(mine, attest), name="owner", daemon=True
    ).start()
    trigger = RemoteTrigger(theirs)
    assert trigger(None) == 1
    when = datetime(2026, 1, 2, tzinfo=UTC)
    assert trigger(when) == 2
    with pytest.raises(InputError, match="nothing was recorded then"):
        trigger(datetime(1999, 1, 1, tzinfo=UTC))
    assert runs[:2] == [("owner", None), ("owner", when)]
    theirs.close()
    mine.close()


def test_a_worker_stops_when_its_parent_is_gone() -> None:
    """stop_with_parent: while the parent is there nothing happens; once the process is
    re-parented uvicorn is asked to stop, and the exit follows after the grace time."""
    from por.service.server import stop_with_parent

    class Server:
        should_exit = False

    exits: list[int] = []
    mine = Server()
    watch = stop_with_parent(mine, os.getppid(), poll_s=0.01, grace_s=0.0, exit_now=exits.append)
    time.sleep(0.1)
    assert watch.is_alive() and not mine.should_exit and not exits  # the parent is here
    gone = Server()
    stop_with_parent(gone, -1, poll_s=0.01, grace_s=0.05, exit_now=exits.append).join(5)
    assert gone.should_exit and exits == [1]


@pytest.mark.slow
def test_api_workers_of_a_killed_por_run_stop(tmp_path: Path) -> None:
    """`por run` killed outright (SIGKILL: no chance to stop its workers) leaves no API
    worker behind answering on its port."""
    psutil = pytest.importorskip("psutil")
    world = write_world(tmp_path / "w", interval_s=60)
    port = free_port()
    world.config.write_text(
        world.config.read_text().replace(
            'origin = "por.test/cnhc"',
            f'origin = "por.test/cnhc"\nlisten = "127.0.0.1:{port}"\napi_workers = 2',
        )
    )
    env = {**os.environ, "POR_KEY_PASSPHRASE": PASSPHRASE}
    proc = subprocess.Popen(
        [sys.executable, "-m", "por.cli.main", "run", "--config", str(world.config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    workers: list[Any] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            workers = [
                p
                for p in psutil.Process(proc.pid).children(recursive=True)
                if "spawn_main" in " ".join(p.cmdline())
                and "resource_tracker" not in " ".join(p.cmdline())
            ]
            try:
                up = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code
            except httpx.TransportError:
                up = 0
            if up in (200, 503) and len(workers) == 2:
                break
            time.sleep(0.3)
        else:
            pytest.fail("por run did not serve from two workers within 60 s")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        _, alive = psutil.wait_procs(workers, timeout=15)
        assert not alive, f"API workers still running after their parent was killed: {alive}"
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
    finally:
        if proc.poll() is None:
            proc.kill()
        for p in workers:
            with contextlib.suppress(psutil.Error):
                p.kill()
