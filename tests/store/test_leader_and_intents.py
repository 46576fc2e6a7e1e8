"""Leader election between instances sharing a store, and the publisher's intent store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from por.oracle.intents import DbIntentStore, PublishIntent, SentTx
from por.store import Store
from tests.store.factory import World


def test_only_one_instance_leads(open_store: Any) -> None:
    a, b = open_store(), open_store()
    la, lb = a.leadership("scheduler"), b.leadership("scheduler")
    assert la.try_acquire()
    assert la.try_acquire()  # re-entrant for the holder
    assert not lb.try_acquire()
    assert la.is_held() and not lb.is_held()
    # another name is another lock
    with b.leadership("other") as lo:
        assert lo.try_acquire()
    la.release()
    assert not la.is_held()
    assert lb.try_acquire()
    assert not la.try_acquire()
    lb.release()


_CHILD = """
import sys, time
from pathlib import Path
from por.store import Store
s = Store.open(sys.argv[1], data_dir=Path(sys.argv[2]), attestations_dir=Path(sys.argv[3]),
               materialize=False, migrate=True)
lead = s.leadership("scheduler")
print("held" if lead.try_acquire() else "not held", flush=True)
time.sleep(120)
"""


def test_leadership_passes_on_when_the_leader_dies(
    open_store: Any, store_url: str, tmp_path: Path
) -> None:
    mine = open_store()
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _CHILD,
            store_url,
            str(tmp_path / "data"),
            str(tmp_path / "attestations"),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[2],
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "held"
        lead = mine.leadership("scheduler")
        assert not lead.try_acquire()
        os.kill(child.pid, signal.SIGKILL)  # no clean release: the lock must die with it
        child.wait(10)
        deadline = time.monotonic() + 15
        while not lead.try_acquire():
            assert time.monotonic() < deadline, "lock not released after the leader died"
            time.sleep(0.1)
        assert lead.is_held()
        lead.release()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_intent_store_round_trip(store: Store) -> None:
    World().record(store)
    intents = DbIntentStore(store)
    assert intents.get(1, 1) is None
    tx = SentTx(
        tx_hash="0x" + "12" * 32,
        raw_tx="0x02f8",
        max_fee_per_gas=3 * 10**9,
        max_priority_fee_per_gas=10**9,
        sent_at_block=None,
    )
    signed = PublishIntent(
        chain_id=1,
        sequence=1,
        contract="0x" + "Ab" * 20,
        attestation_digest="cd" * 32,
        sender="0x" + "Ef" * 20,
        nonce=7,
        state="signed",
        txs=(tx,),
    )
    intents.put(signed)
    assert intents.get(1, 1) == signed
    assert intents.get(56, 1) is None and intents.get(1, 2) is None
    mined = PublishIntent(
        chain_id=1,
        sequence=1,
        contract=signed.contract,
        attestation_digest=signed.attestation_digest,
        sender=signed.sender,
        nonce=7,
        state="confirmed",
        txs=(tx,),
        tx_hash=tx.tx_hash,
        block_number=99,
    )
    intents.put(mined)
    assert DbIntentStore(store).get(1, 1) == mined
