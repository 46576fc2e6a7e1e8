"""Crash consistency: SIGKILL an attestation run at each named point, restart, check.

      run ──snapshot──reserves──raw──tree──sign──┬─tree file─┬─insert rows─┬─commit─┬─envelope file─┬─checkpoint file─┐
                                                 │           │             │        │               │                 │
             kill here ─────────────────────────►x           x             x        x               x                 x

After every kill: the database holds only complete attestations (sequence 1..n with no
gap), every one of them has its envelope and checkpoint files once the store reopens,
the log checkpoints stay consistent with each other, and the next run gets exactly the
next sequence — never a partial attestation, never two for one sequence.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from por.core.dsse import Envelope
from por.core.tlog import Checkpoint, verify_checkpoint, verify_consistency
from por.core.verify import verify_attestation_envelope
from por.service.config import load_config
from por.store.store import Store
from tests.service.conftest import World

POINTS = [
    "after_snapshot",
    "after_reserves",
    "after_raw_store",
    "after_tree",
    "after_sign",
    "after_tree_file",
    "before_commit",
    "after_commit",
    "after_envelope_file",
    "after_checkpoint_file",
    "after_record",
]


def run_in_child(config: Path, crash_at: str | None) -> int:
    """Fork, run `por attest` in the child, return its wait status as a signal or code."""
    pid = os.fork()
    if pid == 0:  # child: no pytest machinery, just the command
        code = 1
        try:
            if crash_at:
                os.environ["POR_CRASH_AT"] = crash_at
            else:
                os.environ.pop("POR_CRASH_AT", None)
            from por.cli.main import main

            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            code = main(["attest", "--config", str(config), "--no-publish"])
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def check_state(world: World, seen: list[Checkpoint]) -> int:
    """Invariants of a store at rest; returns the number of attestations."""
    cfg = load_config(world.config)
    store = Store.open(
        cfg.database_url,
        data_dir=cfg.service.data_dir,
        attestations_dir=cfg.service.attestations_dir,
        migrate=True,
    )
    try:
        latest = store.latest()
        n = 0 if latest is None else latest.sequence
        rows = store.list(limit=1000)
        assert sorted(r.sequence for r in rows) == list(range(1, n + 1))
        key = world.keys.keys[0].public_key
        previous_digest = None
        for seq in range(1, n + 1):
            path = cfg.service.attestations_dir / f"{seq:08d}.dsse.json"
            env = Envelope.from_json_bytes(path.read_bytes())
            from datetime import UTC, datetime

            att = verify_attestation_envelope(env, world.keys, now=datetime.now(UTC))
            assert att.sequence == seq
            assert att.digest() == store.get(seq).digest
            if previous_digest is not None:
                assert att.previous is not None and att.previous.digest == previous_digest
            previous_digest = att.digest()
            store.tree(seq)  # the tree file behind every attestation is there and intact
        if n:
            note = (cfg.service.attestations_dir / "checkpoint.txt").read_text()
            cp = verify_checkpoint(note, key_name="por.test/cnhc", public_key_raw=key)
            assert cp.size == n
            # a monitor that kept every checkpoint it saw gets a consistency proof
            # from each of them to the new one: history was only ever appended to
            for old in seen:
                if old.size < n:
                    proof = store.consistency(old.size, n)
                    verify_consistency(old.size, n, old.root_hash, cp.root_hash, list(proof.path))
                else:
                    assert (old.size, old.root_hash) == (cp.size, cp.root_hash)
            seen.append(cp)
        return n
    finally:
        store.close()


@pytest.mark.slow
def test_sigkill_at_every_point_then_restart(world: World) -> None:
    seen: list[Checkpoint] = []
    assert run_in_child(world.config, None) == 0
    expected = 1
    assert check_state(world, seen) == expected
    for point in POINTS:
        code = run_in_child(world.config, point)
        assert code == -signal.SIGKILL, f"{point}: the crash point was never reached ({code})"
        n = check_state(world, seen)
        # a kill before the commit leaves nothing; at or after it, the whole attestation
        committed = point in (
            "after_commit",
            "after_envelope_file",
            "after_checkpoint_file",
            "after_record",
        )
        assert n == expected + (1 if committed else 0), point
        expected = n
        assert run_in_child(world.config, None) == 0, f"restart after {point} failed"
        expected += 1
        assert check_state(world, seen) == expected, point
