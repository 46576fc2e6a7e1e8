"""Run state out of files: what one leader kept between runs, another instance finds.

With `[service] state = "database"` the EVM index checkpoint, the Solana flow index and
memo intents are rows of the shared database (`por_state_blobs`), and raw statements are
objects (S3, or the database); an instance on a machine with an empty disk reads them.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from por.chains.evm import BlobCheckpointStore, IndexCheckpoint
from por.chains.solana import BlobFlowStore, FlowState
from por.custodians.base import RawDocument
from por.custodians.rawstore import RawStore
from por.errors import FormatError, StoreError
from por.statekv import DirectoryBlobs
from por.store import Store
from por.store.objects import ObjectIntegrityError, content_key
from por.store.state import DbObjects
from tests.s3 import S3Server

TOKEN = "eip155:1:0x" + "12" * 20


def _second_machine(store_url: str, tmp_path: Path) -> Store:
    """Another instance on the same database, with its own empty directories."""
    return Store.open(
        store_url,
        data_dir=tmp_path / "other" / "data",
        attestations_dir=tmp_path / "other" / "att",
        migrate=True,
    )


def test_state_rows_put_get_replace_delete(store: Store) -> None:
    blobs = store.state
    assert blobs.get("ns", "k") is None
    blobs.put("ns", "k", b"one")
    blobs.put("ns", "k", b"two")  # replaced, not a second row
    assert blobs.get("ns", "k") == b"two"
    assert blobs.keys("ns") == ["k"]
    blobs.delete("ns", "k")
    assert blobs.get("ns", "k") is None
    with pytest.raises(StoreError, match="bad state key"):
        blobs.put("ns", "../etc/passwd", b"x")


def test_index_checkpoint_survives_the_leaders_disk(
    open_store: Any, store_url: str, tmp_path: Path
) -> None:
    leader = open_store()
    cp = IndexCheckpoint(
        chain_id="eip155:1",
        token=TOKEN,
        block_number=120,
        block_hash="ab" * 32,
        balances={"0x" + "01" * 20: 5, "0x" + "02" * 20: 10**30},
    )
    BlobCheckpointStore(leader.state).save(cp)
    other = _second_machine(store_url, tmp_path)
    got = BlobCheckpointStore(other.state).load("eip155:1", TOKEN)
    assert got == cp
    assert BlobCheckpointStore(other.state).load("eip155:1", TOKEN.replace("12", "13")) is None
    other.close()


def test_a_bad_or_foreign_checkpoint_row_is_refused(store: Store) -> None:
    other_token = TOKEN.replace("12", "34")
    store.state.put(BlobCheckpointStore.NAMESPACE, other_token, b"{")
    with pytest.raises(FormatError, match="malformed JSON"):
        BlobCheckpointStore(store.state).load("eip155:1", other_token)
    cp = IndexCheckpoint(chain_id="eip155:1", token=TOKEN, block_number=1, block_hash="00" * 32)
    BlobCheckpointStore(store.state).save(cp)
    raw = store.state.get(BlobCheckpointStore.NAMESPACE, TOKEN)
    assert raw is not None
    store.state.put(BlobCheckpointStore.NAMESPACE, other_token, raw)  # under another name
    with pytest.raises(StoreError, match="checkpoint is for"):
        BlobCheckpointStore(store.state).load("eip155:1", other_token)


def test_solana_flow_index_in_the_database(store: Store) -> None:
    state = FlowState(chain_id="solana:5eykt4Us", mint="Mint111", until_signature="sig", flows=())
    BlobFlowStore(store.state).save(state)
    assert BlobFlowStore(store.state).load("solana:5eykt4Us", "Mint111") == state
    assert BlobFlowStore(store.state).load("solana:5eykt4Us", "Other") is None


def _doc(data: bytes) -> RawDocument:
    return RawDocument(
        sha256=hashlib.sha256(data).hexdigest(), format="camt.053", name="s.xml", data=data
    )


def test_raw_statements_in_the_database(open_store: Any, store_url: str, tmp_path: Path) -> None:
    leader = open_store()
    raw = RawStore(None, objects=DbObjects(leader.state, "raw"))
    doc = _doc(b"<Document>statement</Document>")
    assert raw.put_all([doc]) == [doc.sha256]
    assert raw.put(doc.data) == doc.sha256  # write-once: nothing changes
    other = _second_machine(store_url, tmp_path)
    again = RawStore(None, objects=DbObjects(other.state, "raw"))
    assert doc.sha256 in again and again.get(doc.sha256) == doc.data
    # a row changed behind the store's back is refused, never served
    other.state.put("raw", content_key(doc.sha256).replace("/", ":"), b"forged")
    with pytest.raises(ObjectIntegrityError, match="SHA-256 expected"):
        again.get(doc.sha256)
    other.close()


def test_raw_statements_in_s3(s3_server: S3Server) -> None:
    bucket = s3_server.new_bucket()
    raw = RawStore(None, objects=s3_server.objects(bucket, prefix="raw"))
    doc = _doc(b":20:STATEMENT\n:62F:C261130CNH1000,00\n")
    raw.put_all([doc])
    fresh = RawStore(None, objects=s3_server.objects(bucket, prefix="raw"))
    assert fresh.get(doc.sha256) == doc.data
    assert "ab" * 32 not in fresh
    assert fresh.where(doc.sha256).startswith(f"s3://{bucket}/raw/sha256/")


def test_directory_blobs(tmp_path: Path) -> None:
    blobs = DirectoryBlobs(tmp_path)
    blobs.put("ns", "k", b"v")
    assert blobs.get("ns", "k") == b"v" and (tmp_path / "ns" / "k").read_bytes() == b"v"
    blobs.delete("ns", "k")
    assert blobs.get("ns", "k") is None
    with pytest.raises(StoreError, match="bad state"):
        blobs.get("..", "k")
