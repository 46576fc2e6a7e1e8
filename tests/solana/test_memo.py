"""Memo publisher: the digest lands in LiteSVM, reads back, and is published once per sequence."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from solders.keypair import Keypair
from solders.signature import Signature
from solders.transaction import VersionedTransaction

from por.core.canonical import canonical_bytes
from por.demo.solana_sim import MEMO_PROGRAM_IDS
from por.errors import ConfigError, InputError, MismatchError
from por.oracle.base import PublishReceipt
from por.oracle.solana_memo import (
    SolanaMemoPublisher,
    SolanaPublishError,
    format_memo,
    load_keypair_file,
    parse_memo,
    write_keypair_file,
)

from .conftest import World

pytestmark = pytest.mark.xdist_group("solana")


def doc(sequence: int, note: str = "") -> tuple[dict[str, Any], str]:
    d = {"format": "por-attestation-v1", "sequence": sequence, "note": note}
    return d, hashlib.sha256(canonical_bytes(d)).hexdigest()


@pytest.fixture
def attestor(world: World, tmp_path: Path) -> tuple[Keypair, Path]:
    kp = Keypair()
    path = tmp_path / "attestor.json"
    write_keypair_file(kp, path)
    world.sim.airdrop(kp.pubkey(), 1_000_000_000)
    return kp, path


def publisher(world: World, path: Path, **kw: Any) -> SolanaMemoPublisher:
    return SolanaMemoPublisher(world.sim.url, path, poll_interval_s=0.01, **kw)


def test_memo_lands_in_litesvm_and_reads_back(world: World, attestor: tuple[Keypair, Path]) -> None:
    kp, path = attestor
    d, digest = doc(7)
    result = publisher(world, path).publish(d, digest)
    assert result.status == "published" and result.sequence == 7
    assert result.chain_id == world.sim.chain_id
    # Read back from LiteSVM itself: the transaction is in its history, and the memo
    # instruction of the attestor's transaction carries exactly the documented text.
    assert world.sim.svm.get_transaction(Signature.from_string(result.tx_hash)) is not None
    assert world.sim.memos(kp.pubkey()) == [f"por:v1:7:{digest}"]
    # ... and through the RPC, as an auditor would.
    found = publisher(world, path).find_memo(7)
    assert found is not None
    assert (found.sequence, found.digest, found.signature, found.slot) == (
        7,
        digest,
        result.tx_hash,
        result.block_number,
    )


def test_publishing_twice_yields_one_memo(world: World, attestor: tuple[Keypair, Path]) -> None:
    kp, path = attestor
    d, digest = doc(1)
    first = publisher(world, path).publish(d, digest)
    sent = world.sim.request_count["sendTransaction"]
    again = publisher(world, path).publish(d, digest)  # a fresh process: no local state
    assert again.status == "already_published"
    assert (again.tx_hash, again.block_number) == (first.tx_hash, first.block_number)
    assert world.sim.request_count["sendTransaction"] == sent
    assert world.sim.memos(kp.pubkey()) == [f"por:v1:1:{digest}"]


def test_a_second_digest_for_a_published_sequence_is_refused(
    world: World, attestor: tuple[Keypair, Path]
) -> None:
    # Attack/bug: the same sequence re-signed with other contents (a rewritten history)
    # must not get a second on-chain memo that an auditor might pick instead.
    kp, path = attestor
    d1, g1 = doc(3, "first")
    d2, g2 = doc(3, "rewritten")
    publisher(world, path).publish(d1, g1)
    with pytest.raises(SolanaPublishError, match="already published with digest " + g1):
        publisher(world, path).publish(d2, g2)
    assert world.sim.memos(kp.pubkey()) == [f"por:v1:3:{g1}"]


def test_several_sequences_each_once(world: World, attestor: tuple[Keypair, Path]) -> None:
    kp, path = attestor
    pub = publisher(world, path)
    docs = [doc(s) for s in (1, 2, 3)]
    for d, g in docs + docs:
        pub.publish(d, g)
    assert world.sim.memos(kp.pubkey()) == [f"por:v1:{d['sequence']}:{g}" for d, g in docs]
    assert [m.sequence for m in pub.iter_memos()] == [3, 2, 1]  # newest first


def test_another_attestors_memo_does_not_count(
    world: World, tmp_path: Path, attestor: tuple[Keypair, Path]
) -> None:
    # A stranger publishing "por:v1:5:<digest>" from its own key cannot make our
    # publisher skip sequence 5: only the attestor's own signed memos count.
    _, ours = attestor
    stranger = Keypair()
    write_keypair_file(stranger, tmp_path / "stranger.json")
    world.sim.airdrop(stranger.pubkey(), 1_000_000_000)
    d, digest = doc(5)
    publisher(world, tmp_path / "stranger.json").publish(d, digest)
    assert publisher(world, ours).find_memo(5) is None
    assert publisher(world, ours).publish(d, digest).status == "published"


def test_digest_that_is_not_the_documents_is_refused_before_sending(
    world: World, attestor: tuple[Keypair, Path]
) -> None:
    kp, path = attestor
    d, _ = doc(9)
    with pytest.raises(MismatchError, match="expected"):
        publisher(world, path).publish(d, "ab" * 32)
    with pytest.raises(InputError, match="64 lowercase hex"):
        publisher(world, path).publish(d, "AB" * 32)
    with pytest.raises(InputError, match="sequence"):
        publisher(world, path).publish({"sequence": 0}, "ab" * 32)
    assert world.sim.memos(kp.pubkey()) == []


def test_intent_written_before_a_crash_is_resumed_with_the_same_transaction(
    world: World, attestor: tuple[Keypair, Path], tmp_path: Path
) -> None:
    # Crash window: the signed transaction was recorded as an intent, then the process
    # died before (or while) broadcasting. On restart the SAME signed bytes are sent,
    # so the memo can land at most once, and the result names that signature.
    kp, path = attestor
    state = tmp_path / "state"
    pub = publisher(world, path, state_dir=state)
    d, digest = doc(11)
    blockhash, last_valid = pub._latest_blockhash()
    tx = pub._build(format_memo(11, digest), blockhash)
    pub._write_intent(11, digest, tx, last_valid)  # ... crash here, nothing sent
    intent = json.loads(next(state.iterdir()).read_text())
    assert intent["signature"] == str(tx.signatures[0])

    result = publisher(world, path, state_dir=state).publish(d, digest)
    assert result.tx_hash == str(tx.signatures[0]) and result.status == "published"
    assert world.sim.memos(kp.pubkey()) == [f"por:v1:11:{digest}"]
    assert list(state.iterdir()) == []  # intent cleared once finalized
    assert publisher(world, path, state_dir=state).publish(d, digest).status == (
        "already_published"
    )


def test_expired_intent_is_rebuilt_once(
    world: World, attestor: tuple[Keypair, Path], tmp_path: Path
) -> None:
    # The recorded transaction never reached the chain and its blockhash has expired
    # (150 blocks): it can never land, so a fresh transaction is built and sent once.
    kp, path = attestor
    state = tmp_path / "state"
    pub = publisher(world, path, state_dir=state)
    d, digest = doc(12)
    blockhash, last_valid = pub._latest_blockhash()
    stale = pub._build(format_memo(12, digest), blockhash)
    pub._write_intent(12, digest, stale, last_valid)
    world.sim.advance_slots(151)
    result = publisher(world, path, state_dir=state).publish(d, digest)
    assert result.tx_hash != str(stale.signatures[0])
    assert world.sim.memos(kp.pubkey()) == [f"por:v1:12:{digest}"]
    # The expired transaction itself is refused by the node.
    with pytest.raises(SolanaPublishError, match="Blockhash not found"):
        pub._broadcast(stale)


def test_intent_for_another_digest_is_refused(
    world: World, attestor: tuple[Keypair, Path], tmp_path: Path
) -> None:
    kp, path = attestor
    state = tmp_path / "state"
    pub = publisher(world, path, state_dir=state)
    _, g1 = doc(13, "a")
    d2, g2 = doc(13, "b")
    blockhash, last_valid = pub._latest_blockhash()
    pub._write_intent(13, g1, pub._build(format_memo(13, g1), blockhash), last_valid)
    with pytest.raises(SolanaPublishError, match="intent for sequence 13"):
        pub.publish(d2, g2)
    assert world.sim.memos(kp.pubkey()) == []


def test_memo_transaction_is_a_plain_spl_memo(world: World, attestor: tuple[Keypair, Path]) -> None:
    kp, path = attestor
    d, digest = doc(2)
    result = publisher(world, path).publish(d, digest)
    answer = world.sim.handle(
        json.dumps(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "getTransaction",
                "params": [
                    result.tx_hash,
                    {"encoding": "base64", "maxSupportedTransactionVersion": 0},
                ],
            }
        ).encode()
    )[1]
    tx_b64 = json.loads(answer)["result"]["transaction"][0]
    tx = VersionedTransaction.from_bytes(base64.b64decode(tx_b64))
    keys = tx.message.account_keys
    assert keys[0] == kp.pubkey() and len(tx.signatures) == 1
    (ix,) = tx.message.instructions
    assert str(keys[ix.program_id_index]) == MEMO_PROGRAM_IDS[0]
    assert bytes(ix.data) == f"por:v1:2:{digest}".encode()


def test_memo_format_round_trip() -> None:
    digest = "0f" * 32
    assert format_memo(42, digest) == f"por:v1:42:{digest}"
    assert parse_memo(format_memo(42, digest)) == (42, digest)
    for bad in (
        f"por:v1:042:{digest}",
        f"por:v1:0:{digest}",
        f"por:v2:1:{digest}",
        f"por:v1:1:{digest.upper()}",
        f"por:v1:1:{digest} ",
        "por:v1:1:ab",
    ):
        assert parse_memo(bad) is None


def test_publish_result_round_trip() -> None:
    r = PublishReceipt(
        chain_id="solana:x", sequence=3, tx_hash="s", block_number=9, status="already_published"
    )
    assert PublishReceipt.from_dict(r.to_dict()) == r
    with pytest.raises(InputError):
        PublishReceipt.from_dict({**r.to_dict(), "status": "maybe"})


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("[1, 2, 3]", "64 bytes"),
        ("not json", "not JSON"),
        ("[" + ",".join(["300"] * 64) + "]", "64 bytes"),
    ],
)
def test_bad_keypair_file_is_a_config_error(tmp_path: Path, content: str, match: str) -> None:
    path = tmp_path / "k.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=match) as e:
        load_keypair_file(path)
    assert str(path) in str(e.value.where)


def test_keypair_file_round_trip(tmp_path: Path) -> None:
    kp = Keypair()
    write_keypair_file(kp, tmp_path / "k.json")
    assert load_keypair_file(tmp_path / "k.json").pubkey() == kp.pubkey()
    assert (tmp_path / "k.json").stat().st_mode & 0o777 == 0o600
    assert len(json.loads((tmp_path / "k.json").read_text())) == 64


def test_intent_in_the_database_is_resumed_on_another_machine(
    world: World, attestor: tuple[Keypair, Path], tmp_path: Path
) -> None:
    # [service] state = "database": the leader signs and records its intent, then its
    # machine dies. A new leader elsewhere (no files) resumes the SAME transaction.
    from por.store import Store

    kp, path = attestor
    url = f"sqlite:///{tmp_path / 'por.db'}"
    a = Store.open(url, data_dir=tmp_path / "a", attestations_dir=tmp_path / "a1", migrate=True)
    pub = publisher(world, path, state=a.state)
    d, digest = doc(14)
    blockhash, last_valid = pub._latest_blockhash()
    tx = pub._build(format_memo(14, digest), blockhash)
    pub._write_intent(14, digest, tx, last_valid)  # ... the machine dies here
    a.close()
    b = Store.open(url, data_dir=tmp_path / "b", attestations_dir=tmp_path / "b1")
    result = publisher(world, path, state=b.state).publish(d, digest)
    assert result.tx_hash == str(tx.signatures[0]) and result.status == "published"
    assert world.sim.memos(kp.pubkey()) == [f"por:v1:14:{digest}"]
    assert b.state.keys("solana-memo") == []  # cleared once finalized
    b.close()
