"""The AttestationStore protocol, held to one behaviour by every store that follows it.

The same tests run on the in-memory fake (`MemoryStore`, which the run tests use) and on
the real store (SQLite, and PostgreSQL when POR_TEST_PG_URL is set), so the fake cannot
drift from what it stands in for: the same checks, the same errors, the same log.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from por.core.attestation import PreviousRef
from por.core.tlog import verify_checkpoint
from por.errors import ChainLinkError, InputError, MismatchError, StoreError
from por.store import SequenceConflictError, Store
from por.store.memory import MemoryStore
from tests.store.factory import LOG_SIGNER, ORIGIN, World, build
from tests.store.pg import PG_URL, pg_schema_url


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "memory":
        yield MemoryStore()
        return
    with ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / 'por.db'}"
        elif PG_URL:
            url = stack.enter_context(pg_schema_url())
        else:
            pytest.skip("POR_TEST_PG_URL is not set (no PostgreSQL)")
        s = Store.open(
            url, data_dir=tmp_path / "data", attestations_dir=tmp_path / "att", migrate=True
        )
        stack.callback(s.close)
        yield s


def test_records_a_chain_and_its_log(store: Any) -> None:
    assert store.latest() is None
    world = World()
    built = [world.record(store) for _ in range(3)]
    latest = store.latest()
    assert latest is not None and latest.sequence == 3
    assert latest.digest == built[2].attestation.digest()
    assert latest.attestation == built[2].attestation
    assert store.get(2).envelope_json == built[1].envelope.to_json_bytes()
    cp = store.checkpoint()
    assert cp is not None and cp.size == 3 == store.log_tree().size
    verified = verify_checkpoint(cp.note, key_name=ORIGIN, public_key_raw=LOG_SIGNER.public_key_raw)
    assert verified.root_hash == cp.root_hash == store.log_tree().root()
    assert store.tree(1).root == built[0].tree.root
    assert store.round_secret(2) == built[1].round_secret


def test_record_returns_what_it_did(store: Any) -> None:
    world = World()
    world.record(store)
    b = world.next()
    rec = store.record(**b.record_kwargs())
    assert (rec.sequence, rec.digest, rec.leaf_index) == (2, b.attestation.digest(), 1)
    assert rec.checkpoint == store.checkpoint() and rec.file_error is None


def test_sequence_and_link_are_checked(store: Any) -> None:
    world = World()
    b2 = build(
        2,
        PreviousRef(sequence=1, digest="00" * 32),
        world.holders,
        reserves_cash=1,
        reserves_bonds=1,
    )
    with pytest.raises(SequenceConflictError, match="next sequence is 1"):
        store.record(**b2.record_kwargs())
    world.record(store)
    again = build(1, None, world.holders, reserves_cash=5, reserves_bonds=5)
    with pytest.raises(SequenceConflictError, match="does not follow"):
        store.record(**again.record_kwargs())
    forged = build(
        2,
        PreviousRef(sequence=1, digest="ab" * 32),
        world.holders,
        reserves_cash=5,
        reserves_bonds=5,
    )
    with pytest.raises(ChainLinkError, match="previous"):
        store.record(**forged.record_kwargs())
    assert store.latest().sequence == 1 and store.checkpoint().size == 1


def test_inputs_that_do_not_belong_together_are_refused(store: Any) -> None:
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


def test_a_failing_checkpoint_signer_leaves_nothing(store: Any) -> None:
    world = World()
    world.record(store)
    b = world.next()

    def broken_signer(cp: Any) -> str:
        raise StoreError("signing service unavailable")

    with pytest.raises(StoreError, match="signing service"):
        store.record(**{**b.record_kwargs(), "sign_checkpoint": broken_signer})
    assert store.latest().sequence == 1 and store.log_tree().size == 1
    store.record(**b.record_kwargs())
    assert store.latest().sequence == 2 and store.checkpoint().size == 2


def test_publication_state_is_upserted_per_chain_and_sequence(store: Any) -> None:
    world = World()
    world.record(store)
    world.record(store)
    store.record_publication(
        "eip155:56", 1, contract="0xdef", tx_hash=None, block_number=None, status="failed: timeout"
    )
    store.record_publication(
        "eip155:56", 1, contract="0xdef", tx_hash="0x03", block_number=7, status="published"
    )
    store.record_publication(
        "eip155:1", 1, contract="0xabc", tx_hash="0x01", block_number=10, status="published"
    )
    store.record_publication(
        "eip155:1", 2, contract="0xabc", tx_hash="0x02", block_number=12, status="already_published"
    )
    pubs = store.publications()
    assert [
        (p.chain_id, p.sequence, p.contract, p.tx_hash, p.block_number, p.status) for p in pubs
    ] == [
        ("eip155:1", 2, "0xabc", "0x02", 12, "already_published"),
        ("eip155:56", 1, "0xdef", "0x03", 7, "published"),
    ]
    assert all(p.updated_at.tzinfo is not None for p in pubs)
