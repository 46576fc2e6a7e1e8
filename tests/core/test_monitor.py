"""por.core.monitor over an in-memory tiled log: what a tampered tile, a shrunk log or a
split view looks like to `por log verify` (no HTTP here: fetch is a dict lookup)."""

from __future__ import annotations

import hashlib

import pytest

from por.core.dsse import KeyEntry, KeySet, LogKey
from por.core.monitor import MonitorState, audit_log
from por.core.tiles import ENVELOPES, bundles_for_size, encode_bundle, tile_data, tile_for_size
from por.core.tlog import Checkpoint, LogTree, envelope_leaf_hash, log_verifier_key, sign_checkpoint
from tests.store.factory import ISSUER, LOG_SIGNER, ORIGIN, World, default_holders

KEYS = KeySet(
    keys=(KeyEntry.for_public_key(ISSUER.public_key_raw, role="issuer"),),
    log=LogKey(origin=ORIGIN, vkey=log_verifier_key(ORIGIN, LOG_SIGNER.public_key_raw)),
)


class TiledLog:
    def __init__(self, n: int) -> None:
        world = World(holders=default_holders(2))
        self.envelopes: list[bytes] = []
        for _ in range(n):
            built = world.next()
            world.accept(built)
            self.envelopes.append(built.envelope.to_json_bytes())
        self.tiles: dict[str, bytes] = {}

    def publish(self, size: int) -> str:
        tree = LogTree([envelope_leaf_hash(e) for e in self.envelopes[:size]])
        for level in range(3):
            for ref in tile_for_size(level, size):
                self.tiles[ref.path()] = tile_data(tree, ref)
        for ref in bundles_for_size(size):
            envs = self.envelopes[ref.first_leaf() : ref.first_leaf() + ref.count]
            self.tiles[ref.path()] = encode_bundle(hashlib.sha256(e).digest() for e in envs)
            env_ref = type(ref)(level=ENVELOPES, index=ref.index, width=ref.width)
            self.tiles[env_ref.path()] = encode_bundle(envs, length_bytes=4)
        cp = Checkpoint(origin=ORIGIN, size=size, root_hash=tree.root())
        return sign_checkpoint(cp, key_name=ORIGIN, signer=LOG_SIGNER)

    def fetch(self, path: str) -> bytes:
        return self.tiles[path]


@pytest.fixture(scope="module")
def envelopes() -> TiledLog:
    return TiledLog(5)


def statuses(audit: object) -> dict[str, str]:
    return {c.name: c.status for c in audit.report.checks}  # type: ignore[attr-defined]


def test_a_growing_log_passes_and_is_kept(envelopes: TiledLog) -> None:
    log = TiledLog.__new__(TiledLog)
    log.envelopes, log.tiles = envelopes.envelopes, {}
    first = audit_log(log.publish(3), keyset=KEYS, fetch=log.fetch)
    assert first.report.ok and first.state is not None and first.state.size == 3
    assert statuses(first)["history"] == "skip"
    second = audit_log(log.publish(5), keyset=KEYS, fetch=log.fetch, previous=first.state)
    assert second.report.ok, second.report.table()
    assert statuses(second) == {
        "checkpoint": "pass",
        "history": "pass",
        "entries": "pass",
        "tiles": "pass",
        "consistency": "pass",
    }
    assert MonitorState.from_dict(second.state.to_dict()) == second.state  # type: ignore[union-attr]


def test_tampering_and_split_views_fail(envelopes: TiledLog) -> None:
    log = TiledLog.__new__(TiledLog)
    log.envelopes, log.tiles = envelopes.envelopes, {}
    note = log.publish(5)
    kept = audit_log(note, keyset=KEYS, fetch=log.fetch).state
    assert kept is not None
    # an envelope changed under a correct checkpoint: its digest is no longer the entry
    tiles = dict(log.tiles)
    bad = bytearray(tiles["tile/envelopes/000.p/5"])
    bad[10] ^= 1
    tiles["tile/envelopes/000.p/5"] = bytes(bad)
    audit = audit_log(note, keyset=KEYS, fetch=tiles.__getitem__)
    assert statuses(audit)["entries"] == "fail" and audit.state is None
    # a shrunk log, and a second root for the same size: both fail, the state is not replaced
    shrunk = audit_log(log.publish(4), keyset=KEYS, fetch=log.fetch, previous=kept)
    assert statuses(shrunk)["history"] == "fail" and "shrank" in shrunk.report.table()
    log.envelopes = [*envelopes.envelopes[:4], envelopes.envelopes[0]]  # another 5th entry
    split = audit_log(log.publish(5), keyset=KEYS, fetch=log.fetch, previous=kept)
    assert statuses(split)["history"] == "fail" and "SPLIT VIEW" in split.report.table()
    assert split.state is None
    # a checkpoint for another origin signed by the log key is refused outright
    other = sign_checkpoint(
        Checkpoint(origin="example.org/other-log", size=5, root_hash=kept.root_hash),
        key_name="example.org/other-log",
        signer=LOG_SIGNER,
    )
    assert statuses(audit_log(other, keyset=KEYS, fetch=log.fetch)) == {"checkpoint": "fail"}
