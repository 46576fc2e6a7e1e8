"""The store: atomic record, published files, tree files, the log, and bad input."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from por.core.attestation import PAYLOAD_TYPE, PreviousRef, decode_attestation
from por.core.dsse import Envelope, verify_envelope
from por.core.mst import verify_inclusion as verify_mst
from por.core.tlog import (
    envelope_leaf_hash,
    verify_checkpoint,
    verify_consistency,
    verify_inclusion,
)
from por.errors import ChainLinkError, InputError, MismatchError, StoreError
from por.store import (
    CHECKPOINT_FILE,
    SequenceConflictError,
    Store,
    UnknownSequenceError,
    envelope_file_name,
)
from tests.store.factory import LOG_SIGNER, ORIGIN, World, build, keyset, sign_cp


def test_record_three_and_read_back(store: Store) -> None:
    world = World()
    built = [world.record(store) for _ in range(3)]
    latest = store.latest()
    assert latest is not None and latest.sequence == 3
    assert latest.digest == built[2].attestation.digest()
    assert latest.attestation == built[2].attestation
    # the stored envelope is the signed one and verifies with the published keys
    got = store.get(2)
    env_bytes = built[1].envelope.to_json_bytes()
    assert got.envelope_json == env_bytes
    v = verify_envelope(
        Envelope.from_json_bytes(got.envelope_json),
        keyset(),
        at=built[1].attestation.issued_at,
        payload_type=PAYLOAD_TYPE,
    )
    assert decode_attestation(v.payload) == built[1].attestation
    # paging, newest first
    assert [a.sequence for a in store.list(2)] == [3, 2]
    assert [a.sequence for a in store.list(2, before=2)] == [1]
    assert store.list(5, before=1) == []
    with pytest.raises(UnknownSequenceError, match="no attestation with sequence 9"):
        store.get(9)


def test_published_files_and_log(store: Store) -> None:
    world = World()
    built = [world.record(store) for _ in range(3)]
    for b in built:
        path = store.attestations_dir / envelope_file_name(b.attestation.sequence)
        assert path.read_bytes() == b.envelope.to_json_bytes()
    note = (store.attestations_dir / CHECKPOINT_FILE).read_text()
    cp = verify_checkpoint(note, key_name=ORIGIN, public_key_raw=LOG_SIGNER.public_key_raw)
    assert cp.size == 3
    stored_cp = store.checkpoint()
    assert stored_cp is not None and stored_cp.note == note
    # every envelope is in the log: leaf = H(0x00 || SHA-256(file bytes))
    for b in built:
        inc = store.inclusion(b.attestation.sequence)
        assert inc.leaf_hash == envelope_leaf_hash(b.envelope.to_json_bytes())
        verify_inclusion(inc.leaf_index, inc.tree_size, inc.leaf_hash, list(inc.path), cp.root_hash)
    c = store.consistency(1, 3)
    verify_consistency(1, 3, c.from_root, c.to_root, list(c.path))
    assert c.to_root == cp.root_hash
    with pytest.raises(UnknownSequenceError):
        store.consistency(2, 4)
    with pytest.raises(InputError):
        store.consistency(3, 2)
    with pytest.raises(UnknownSequenceError):
        store.inclusion(4)


def test_tree_served_from_file_without_rebuild(store: Store) -> None:
    world = World()
    b = world.record(store)
    tree = store.tree(1)
    assert tree.root == b.tree.root and tree.size == b.tree.size
    for acct in list(b.holders)[:5]:
        proof = tree.prove(acct)
        verify_mst(proof, root=b.tree.root)
        assert proof.root.hash.hex() == b.attestation.liabilities.root
    assert store.tree(1) is tree  # cached


def test_corrupt_or_missing_tree_file_is_a_store_error(open_store: Any) -> None:
    store = open_store()
    World().record(store)
    name = store.get(1).tree_file
    path = store.trees_dir / name
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    fresh = open_store()  # no cache
    with pytest.raises(StoreError, match="corrupt"):
        fresh.tree(1)
    path.unlink()
    with pytest.raises(StoreError, match="missing"):
        open_store().tree(1)


def test_sequence_and_chain_checks(store: Store) -> None:
    world = World()
    # the first attestation must be sequence 1
    b2 = build(
        2,
        PreviousRef(sequence=1, digest="00" * 32),
        world.holders,
        reserves_cash=1,
        reserves_bonds=1,
    )
    with pytest.raises(SequenceConflictError, match="next sequence is 1"):
        store.record(**b2.record_kwargs())
    first = world.record(store)
    # the same sequence twice
    again = build(1, None, world.holders, reserves_cash=5, reserves_bonds=5)
    with pytest.raises(SequenceConflictError, match="does not follow"):
        store.record(**again.record_kwargs())
    # right sequence, wrong previous digest
    forged = build(
        2,
        PreviousRef(sequence=1, digest="ab" * 32),
        world.holders,
        reserves_cash=5,
        reserves_bonds=5,
    )
    with pytest.raises(ChainLinkError, match="previous"):
        store.record(**forged.record_kwargs())
    assert store.latest_sequence() == 1
    assert store.checkpoint().size == 1  # type: ignore[union-attr]
    assert store.get(1).digest == first.attestation.digest()
    world.record(store)  # the chain continues normally
    assert store.latest_sequence() == 2


def test_inconsistent_inputs_are_refused_before_anything_is_written(store: Store) -> None:
    world = World()
    b = world.next()
    other = World(holders={k: v + 1 for k, v in world.holders.items()}).next()
    kw = b.record_kwargs()
    with pytest.raises(MismatchError, match="sum tree"):
        store.record(**{**kw, "tree": other.tree})
    with pytest.raises(MismatchError, match="payload"):
        store.record(**{**kw, "envelope": other.envelope})
    with pytest.raises(InputError, match="round_secret"):
        store.record(**{**kw, "round_secret": b"short"})
    assert store.latest() is None
    assert not store.trees_dir.exists() or not list(store.trees_dir.iterdir())


def test_failure_inside_the_transaction_leaves_nothing(store: Store) -> None:
    world = World()
    world.record(store)
    b = world.next()

    def broken_signer(cp: Any) -> str:
        raise StoreError("signing service unavailable")

    with pytest.raises(StoreError, match="signing service"):
        store.record(**{**b.record_kwargs(), "sign_checkpoint": broken_signer})
    assert store.latest_sequence() == 1
    assert store.log_tree().size == 1
    assert not (store.attestations_dir / envelope_file_name(2)).exists()
    store.record(**b.record_kwargs())  # the same attestation records fine afterwards
    assert store.log_tree().size == 2 and store.checkpoint().size == 2  # type: ignore[union-attr]


def test_two_writers_never_both_succeed(open_store: Any) -> None:
    # Two instances (two engines, as two processes would have) race to record sequence 2
    # with different attestations; exactly one may win.
    a, b = open_store(), open_store()
    world = World()
    world.record(a)
    candidates = [world.next(salt_tag=b"A"), world.next(salt_tag=b"B")]
    barrier = threading.Barrier(2)
    results: list[object] = [None, None]

    def go(i: int, s: Store) -> None:
        barrier.wait()
        try:
            results[i] = s.record(**candidates[i].record_kwargs())
        except (SequenceConflictError, ChainLinkError) as e:
            results[i] = e

    threads = [threading.Thread(target=go, args=(i, s)) for i, s in enumerate((a, b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    wins = [r for r in results if not isinstance(r, Exception)]
    losses = [r for r in results if isinstance(r, SequenceConflictError)]
    assert len(wins) == 1 and len(losses) == 1, results
    assert a.latest_sequence() == 2 and b.latest_sequence() == 2
    assert [x.sequence for x in a.list(10)] == [2, 1]
    assert a.log_tree().size == 2 and b.log_tree().size == 2
    # both instances agree on the log and can extend it
    c = World(holders=world.holders, last=b.latest().attestation)  # type: ignore[union-attr]
    c.record(a)
    assert b.inclusion(3).tree_size == 3


def test_crash_after_commit_is_repaired_on_open(open_store: Any) -> None:
    store = open_store()
    world = World()
    built = [world.record(store) for _ in range(3)]
    d = store.attestations_dir
    # as if the process died: one envelope file never written, one torn, checkpoint stale
    (d / envelope_file_name(3)).unlink()
    (d / envelope_file_name(2)).write_bytes(built[1].envelope.to_json_bytes()[:20])
    (d / CHECKPOINT_FILE).write_text("stale")
    reopened = open_store()
    assert (d / envelope_file_name(3)).read_bytes() == built[2].envelope.to_json_bytes()
    assert (d / envelope_file_name(2)).read_bytes() == built[1].envelope.to_json_bytes()
    assert (d / CHECKPOINT_FILE).read_text() == reopened.checkpoint().note  # type: ignore[union-attr]
    assert reopened.materialize_files() == 0  # nothing left to repair


def test_orphan_tree_files_are_cleaned_when_old(store: Store) -> None:
    World().record(store)
    referenced = store.get(1).tree_file
    old_orphan = store.trees_dir / "2-deadbeefdeadbeef-00000000.mst"
    new_orphan = store.trees_dir / "2-0123456789abcdef-00000000.mst"
    for p in (old_orphan, new_orphan):
        p.write_bytes(b"from a crashed run")
    past = time.time() - 2 * 3600
    os.utime(old_orphan, (past, past))
    os.utime(store.trees_dir / referenced, (past, past))
    assert store.clean_orphans() == [old_orphan.name]
    assert new_orphan.exists() and (store.trees_dir / referenced).exists()


def test_round_secret_kept_for_the_operator(store: Store) -> None:
    b = World().record(store)
    assert store.round_secret(1) == b.round_secret


def test_publications(store: Store) -> None:
    world = World()
    world.record(store)
    world.record(store)
    store.record_publication(
        "eip155:1", 1, contract="0xabc", tx_hash="0x01", block_number=10, status="published"
    )
    store.record_publication(
        "eip155:1", 2, contract="0xabc", tx_hash=None, block_number=None, status="pending"
    )
    store.record_publication(
        "eip155:1", 2, contract="0xabc", tx_hash="0x02", block_number=12, status="published"
    )
    store.record_publication(
        "eip155:56", 1, contract="0xdef", tx_hash="0x03", block_number=7, status="published"
    )
    pubs = store.publications()
    assert [(p.chain_id, p.sequence, p.tx_hash, p.block_number, p.status) for p in pubs] == [
        ("eip155:1", 2, "0x02", 12, "published"),
        ("eip155:56", 1, "0x03", 7, "published"),
    ]


def test_bad_urls(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="unsupported database"):
        Store.open("mysql://x/y", data_dir=tmp_path, attestations_dir=tmp_path / "a")
    with pytest.raises(StoreError, match="not a database URL"):
        Store.open("::::", data_dir=tmp_path, attestations_dir=tmp_path / "a")


def test_default_is_a_sqlite_file_in_wal_mode(tmp_path: Path) -> None:
    s = Store.open(None, data_dir=tmp_path / "d", attestations_dir=tmp_path / "a", migrate=True)
    try:
        World().record(s)
        assert (tmp_path / "d" / "por.db").exists()
        assert (tmp_path / "d" / "por.db-wal").exists()
        digest = hashlib.sha256((tmp_path / "a" / envelope_file_name(1)).read_bytes())
        assert digest.hexdigest() == hashlib.sha256(s.get(1).envelope_json).hexdigest()
    finally:
        s.close()
    assert sign_cp is not None


def test_publication_error_text_fits_on_every_database(store: Store) -> None:
    """Issue 12: a publish failure of more than 32 characters went into the String(32)
    status; PostgreSQL refused it and the run aborted, SQLite kept it. The status is now
    a fixed word and the reason has a column of its own."""
    World().record(store)
    reason = "eip155:56 http://127.0.0.1:8545: eth_sendRawTransaction refused: " + "x" * 5000
    store.record_publication(
        "eip155:56",
        1,
        contract="0x" + "ab" * 20,
        tx_hash=None,
        block_number=None,
        status=f"failed: {reason}",
    )
    row = store.publication("eip155:56", 1)
    assert row is not None and row.status == "pending" and row.attempts == 1
    assert row.error is not None and row.error.startswith("failed: eip155:56 http")
    assert len(row.error) == 2000  # capped, never refused
    store.record_publication(
        "eip155:56",
        1,
        contract="0x" + "ab" * 20,
        tx_hash=None,
        block_number=None,
        status="pending",
        error=reason,
    )
    assert store.publication("eip155:56", 1).attempts == 2  # type: ignore[union-attr]


def test_publication_queue_oldest_first_per_target(store: Store) -> None:
    world = World()
    for _ in range(4):
        world.record(store)
    chains = ["eip155:1", "eip155:56"]
    # no row yet: a new target starts at the newest round (no back-fill of history)
    assert [(q.chain_id, q.sequence) for q in store.publication_queue(chains)] == [
        ("eip155:1", 4),
        ("eip155:56", 4),
    ]
    pub = {"contract": "0xabc", "tx_hash": "0x01", "block_number": 1}
    store.record_publication("eip155:1", 1, status="published", **pub)
    store.record_publication("eip155:56", 1, status="published", **pub)
    store.record_publication("eip155:56", 2, status="superseded", superseded_by=3, **pub)
    store.record_publication("eip155:56", 3, status="published", **pub)
    store.record_publication(
        "eip155:1",
        2,
        contract="0xabc",
        tx_hash=None,
        block_number=None,
        status="pending",
        error="down",
    )
    queue = store.publication_queue(chains)
    assert [(q.chain_id, q.sequence) for q in queue] == [
        ("eip155:1", 2),
        ("eip155:1", 3),
        ("eip155:1", 4),
        ("eip155:56", 4),
    ]
    assert queue[0].row is not None and queue[0].row.error == "down"
    assert store.publication("eip155:56", 2).superseded_by == 3  # type: ignore[union-attr]
