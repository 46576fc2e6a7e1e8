"""C2SP tlog-tiles paths and tiles, tlog-cosignature/v1, and the tlog-witness judgement."""

from __future__ import annotations

import base64
import hashlib

import pytest

from por.core.dsse import Ed25519Signer
from por.core.note import (
    ALG_COSIGNATURE_V1,
    ALG_ED25519,
    VerifierKey,
    cosign,
    cosignature_message,
    split_note,
    verify_cosignature,
)
from por.core.tiles import (
    TILE_WIDTH,
    TileRef,
    bundles_for_size,
    decode_bundle,
    encode_bundle,
    encode_index,
    parse_tile_path,
    split_hashes,
    tile_data,
    tile_for_size,
)
from por.core.tlog import (
    Checkpoint,
    LogTree,
    add_signature_lines,
    leaf_hash,
    open_checkpoint,
    root_from_leaf_hashes,
    sign_checkpoint,
)
from por.core.witness import (
    AddCheckpoint,
    SizeConflictError,
    UnknownLogError,
    WitnessedLog,
    decide,
    http_status,
    parse_add_checkpoint,
    parse_size_body,
    read_cosignatures,
)
from por.errors import FormatError, ProofError, SignatureError


def signer(label: str) -> Ed25519Signer:
    return Ed25519Signer(hashlib.sha256(label.encode()).digest())


# --- tiles ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "text"),
    [(0, "000"), (7, "007"), (999, "999"), (1000, "x001/000"), (1234067, "x001/x234/067")],
)
def test_tile_index_encoding_is_c2sp(n: int, text: str) -> None:
    assert encode_index(n) == text
    assert parse_tile_path(f"tile/0/{text}") == TileRef(level=0, index=n)
    assert parse_tile_path(f"tile/entries/{text}.p/5") == TileRef(level="entries", index=n, width=5)


@pytest.mark.parametrize(
    "path",
    [
        "tile/01/000",  # leading zero in the level
        "tile/64/000",  # level above 63
        "tile/0/01",  # two digits
        "tile/0/001/000",  # no x on a non-final element
        "tile/0/x000/001",  # a leading zero group: not the canonical form of 1
        "tile/0/000.p/0",  # width 0
        "tile/0/000.p/256",  # width 256 (a full tile has no .p)
        "tile/0/000.p/05",  # leading zero in the width
        "tile/data/000",  # not a tile kind
        "tiles/0/000",
    ],
)
def test_bad_tile_paths_are_refused(path: str) -> None:
    with pytest.raises(FormatError):
        parse_tile_path(path)


def test_tiles_of_the_spec_example_size() -> None:
    # tlog-tiles: "a tree of size 70,000 will be represented by 273 full level 0 tiles,
    # one partial level 0 tile of width 112, one full level 1 tile, one partial level 1
    # tile of width 17, and one partial level 2 tile of width 1."
    l0, l1, l2 = tile_for_size(0, 70_000), tile_for_size(1, 70_000), tile_for_size(2, 70_000)
    assert len(l0) == 274 and l0[-1] == TileRef(level=0, index=273, width=112)
    assert l1 == [TileRef(level=1, index=0), TileRef(level=1, index=1, width=17)]
    assert l2 == [TileRef(level=2, index=0, width=1)]
    assert tile_for_size(1, 256) == [TileRef(level=1, index=0, width=1)]
    assert tile_for_size(0, 0) == []


def test_tile_hashes_are_the_subtree_roots() -> None:
    data = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(256 * 3 + 5)]
    tree = LogTree([leaf_hash(d) for d in data])
    leaves = [leaf_hash(d) for d in data]
    l0 = tile_data(tree, TileRef(level=0, index=2))
    assert split_hashes(l0) == leaves[512:768]
    l1 = split_hashes(tile_data(tree, TileRef(level=1, index=0, width=3)))
    assert l1 == [root_from_leaf_hashes(leaves[i * 256 : (i + 1) * 256]) for i in range(3)]
    partial = split_hashes(tile_data(tree, TileRef(level=0, index=3, width=5)))
    assert partial == leaves[768:]
    with pytest.raises(FormatError):  # not there yet
        tile_data(tree, TileRef(level=0, index=3, width=6))
    with pytest.raises(FormatError):
        tile_data(tree, TileRef(level=1, index=0, width=4))
    assert [t.path() for t in bundles_for_size(tree.size)][-1] == "tile/entries/003.p/5"


def test_bundle_framing_round_trips() -> None:
    entries = [b"", b"a", bytes(300)]
    data = encode_bundle(entries)
    assert data[:2] == b"\x00\x00" and data[2:4] == b"\x00\x01"
    assert decode_bundle(data) == entries
    assert decode_bundle(encode_bundle(entries, length_bytes=4), length_bytes=4) == entries
    with pytest.raises(FormatError):
        decode_bundle(data[:-1])
    with pytest.raises(FormatError):
        encode_bundle([bytes(70_000)])
    assert TILE_WIDTH == 256


# --- cosignatures -----------------------------------------------------------------------


def test_cosignature_v1_message_and_line() -> None:
    w = signer("witness")
    body = "example.com/log\n5\n" + base64.b64encode(bytes(32)).decode() + "\n"
    assert cosignature_message(body, 1679315147) == (
        b"cosignature/v1\ntime 1679315147\n" + body.encode()
    )
    line = cosign(body, name="w.example/1", signer=w, timestamp=1679315147)
    vkey = VerifierKey(name="w.example/1", alg=ALG_COSIGNATURE_V1, public_key=w.public_key_raw)
    # key ID: SHA-256(name || 0x0A || 0x04 || public key)[:4]
    want_id = hashlib.sha256(b"w.example/1\n\x04" + w.public_key_raw).digest()[:4]
    assert line.key_id == want_id == vkey.key_id
    assert line.signature[:8] == (1679315147).to_bytes(8, "big") and len(line.signature) == 72
    assert verify_cosignature(body, line, vkey).timestamp == 1679315147
    assert VerifierKey.parse(vkey.encode()) == vkey
    assert base64.b64decode(vkey.encode().split("+", 2)[2])[0] == 0x04  # type 0x04 || key
    # the same key as a plain Ed25519 note key has another key ID: no confusion
    assert (
        VerifierKey(name="w.example/1", alg=ALG_ED25519, public_key=w.public_key_raw).key_id
        != want_id
    )
    with pytest.raises(SignatureError):
        verify_cosignature(body.replace("\n5\n", "\n6\n"), line, vkey)


# --- the witness ------------------------------------------------------------------------

ORIGIN = "por.example/log"


class World:
    def __init__(self) -> None:
        self.log = signer("log")
        self.wit = signer("witness")
        self.log_vkey = VerifierKey(
            name=ORIGIN, alg=ALG_ED25519, public_key=self.log.public_key_raw
        )
        self.wit_vkey = VerifierKey(
            name="witness.example", alg=ALG_COSIGNATURE_V1, public_key=self.wit.public_key_raw
        )
        self.tree = LogTree()
        self.state: WitnessedLog | None = None

    def grow(self, n: int, tag: bytes = b"") -> None:
        for _ in range(n):
            self.tree.append(
                leaf_hash(hashlib.sha256(tag + bytes([self.tree.size % 256])).digest())
            )

    def note(self, size: int | None = None, *, root: bytes | None = None) -> str:
        size = self.tree.size if size is None else size
        cp = Checkpoint(origin=ORIGIN, size=size, root_hash=root or self.tree.root(size))
        return sign_checkpoint(cp, key_name=ORIGIN, signer=self.log)

    def submit(self, req: AddCheckpoint) -> WitnessedLog:
        d = decide(
            req,
            logs={ORIGIN: self.log_vkey},
            state=self.state,
            name="witness.example",
            signer=self.wit,
            timestamp=1767225600,
        )
        body, _ = split_note(req.note)
        got = read_cosignatures(
            d.cosignature.line().encode(), checkpoint_body=body, witness=self.wit_vkey
        )
        assert got[0].timestamp == 1767225600
        witnessed = add_signature_lines(req.note, [d.cosignature])
        opened = open_checkpoint(
            witnessed,
            log_key=self.log_vkey,
            origin=ORIGIN,
            witnesses=[self.wit_vkey],
            required_witnesses=1,
        )
        assert opened.witnesses == ("witness.example",)
        self.state = d.state
        return d.state


def test_witness_follows_a_growing_log() -> None:
    w = World()
    w.grow(5)
    req = AddCheckpoint(old_size=0, proof=(), note=w.note())
    assert parse_add_checkpoint(req.encode()) == req
    assert w.submit(req).size == 5
    w.grow(8)
    req = AddCheckpoint(old_size=5, proof=tuple(w.tree.consistency_proof(5)), note=w.note())
    assert parse_add_checkpoint(req.encode()) == req
    assert w.submit(req).size == 13
    # the same checkpoint again: same size, same root, empty proof -> cosigned again
    assert w.submit(AddCheckpoint(old_size=13, proof=(), note=w.note())).size == 13


def test_witness_refusals_have_the_spec_statuses() -> None:
    w = World()
    w.grow(6)
    w.submit(AddCheckpoint(old_size=0, proof=(), note=w.note()))
    w.grow(4)
    good_proof = tuple(w.tree.consistency_proof(6))

    def status(req: AddCheckpoint, **kw: object) -> int:
        with pytest.raises(Exception) as info:
            decide(
                req,
                logs=kw.get("logs", {ORIGIN: w.log_vkey}),  # type: ignore[arg-type]
                state=w.state,
                name="witness.example",
                signer=w.wit,
                timestamp=1,
            )
        return http_status(info.value)

    # stale old size: 409 with the witness's size
    with pytest.raises(SizeConflictError) as info:
        decide(
            AddCheckpoint(old_size=3, proof=tuple(w.tree.consistency_proof(3)), note=w.note()),
            logs={ORIGIN: w.log_vkey},
            state=w.state,
            name="witness.example",
            signer=w.wit,
            timestamp=1,
        )
    assert info.value.witness_size == 6
    assert parse_size_body(b"6\n") == 6
    # split view: a checkpoint of the witness's size with another root
    other = World()
    other.grow(6, tag=b"fork")
    split = AddCheckpoint(old_size=6, proof=(), note=w.note(6, root=other.tree.root()))
    assert status(split) == 409
    # a forked log of a larger size: the consistency proof cannot verify
    other.grow(4, tag=b"fork")
    fork = AddCheckpoint(
        old_size=6,
        proof=tuple(other.tree.consistency_proof(6)),
        note=w.note(10, root=other.tree.root()),
    )
    assert status(fork) == 422
    bad = list(good_proof)
    bad[0] = bytes(32)
    assert status(AddCheckpoint(old_size=6, proof=tuple(bad), note=w.note())) == 422
    assert status(AddCheckpoint(old_size=6, proof=good_proof[:-1], note=w.note())) == 422
    assert status(AddCheckpoint(old_size=11, proof=(), note=w.note())) == 400  # above the size
    assert status(AddCheckpoint(old_size=6, proof=good_proof, note=w.note()), logs={}) == 404
    stranger = signer("stranger")
    forged = sign_checkpoint(
        Checkpoint(origin=ORIGIN, size=10, root_hash=w.tree.root()),
        key_name=ORIGIN,
        signer=stranger,
    )
    assert status(AddCheckpoint(old_size=6, proof=good_proof, note=forged)) == 403
    # nothing above changed what the witness holds
    assert w.state is not None and w.state.size == 6
    assert w.submit(AddCheckpoint(old_size=6, proof=good_proof, note=w.note())).size == 10


def test_first_submission_must_not_carry_a_proof() -> None:
    w = World()
    w.grow(3)
    with pytest.raises(ProofError):
        decide(
            AddCheckpoint(old_size=0, proof=(bytes(32),), note=w.note()),
            logs={ORIGIN: w.log_vkey},
            state=None,
            name="witness.example",
            signer=w.wit,
            timestamp=1,
        )
    with pytest.raises(UnknownLogError):
        decide(
            AddCheckpoint(old_size=0, proof=(), note=w.note()),
            logs={},
            state=None,
            name="witness.example",
            signer=w.wit,
            timestamp=1,
        )


@pytest.mark.parametrize(
    "body",
    [
        b"old 01\n\nx",  # leading zero
        b"old -1\n\nx",
        b"old 1\nnot base64\n\nx",
        b"old 1\n" + base64.b64encode(bytes(31)) + b"\n\nx",  # 31-byte hash
        b"new 1\n\nx",
        b"old 1\n",  # no blank line
        b"old 0\n" + b"".join(base64.b64encode(bytes(32)) + b"\n" for _ in range(64)) + b"\nx",
        b"\xff\xfe",
    ],
)
def test_malformed_requests_are_400(body: bytes) -> None:
    with pytest.raises(FormatError) as info:
        parse_add_checkpoint(body)
    assert http_status(info.value) == 400


def test_a_cosignature_dated_in_the_future_is_refused_when_now_is_given() -> None:
    """A witness vouches for what it has seen: a line dated after the verifier's now plus
    its skew is refused (by the log storing it, and by a verifier requiring witnesses)."""
    from por.core.note import cosign
    from por.errors import SignatureError

    w = World()
    w.grow(3)
    note = w.note()
    body, _ = split_note(note)
    line = cosign(body, name="witness.example", signer=w.wit, timestamp=1_767_225_600)
    witnessed = add_signature_lines(note, [line])
    common = {"log_key": w.log_vkey, "origin": ORIGIN, "witnesses": [w.wit_vkey]}
    assert open_checkpoint(witnessed, required_witnesses=1, **common).witnesses
    assert open_checkpoint(
        witnessed, required_witnesses=1, cosigned_not_after=1_767_225_600, **common
    ).witnesses
    with pytest.raises(SignatureError, match="dated in the future"):
        open_checkpoint(witnessed, cosigned_not_after=1_767_225_599, **common)
    with pytest.raises(SignatureError, match="dated in the future"):
        read_cosignatures(
            line.line().encode(),
            checkpoint_body=body,
            witness=w.wit_vkey,
            not_after=1_767_225_000,
        )
