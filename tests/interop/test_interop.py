"""Interop with implementations nobody here wrote, installed from the registries by ./dev setup.

- DSSE: securesystemslib (PyPI, `dev` extra) verifies por's envelopes, and por — as a
  DSSE consumer — counts an auditor co-signature made by securesystemslib (its own keyid
  scheme, which is not por's).
- C2SP signed-note and tlog-tiles: Go's reference code, golang.org/x/mod/sumdb/note and
  .../sumdb/tlog from Debian's golang-golang-x-mod-dev, compiled offline (GOPATH mode)
  into tests/interop/c2spcheck: it opens por's checkpoints (vectors and live), reads a
  live log of 260 attestations through its tiles (full, partial and level-1 tiles,
  authenticated against the checkpoint by tlog.TileHashReader), proves every entry with
  tlog.ProveRecord/CheckRecord and the log's growth with tlog.ProveTree/CheckTree.

Missing tools fail (never skip): CI installs them with ./dev setup.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from securesystemslib.dsse import Envelope as SslibEnvelope
from securesystemslib.signer import CryptoSigner, SSlibKey

from por.api import ApiDeps, create_app
from por.core.attestation import PAYLOAD_TYPE
from por.core.dsse import (
    Ed25519Signer,
    Envelope,
    KeyEntry,
    KeySet,
    LogKey,
    sign_envelope,
    verify_envelope,
)
from por.core.times import parse_time
from por.core.tlog import log_verifier_key
from por.service.witnesses import WitnessSubmitter, WitnessTarget
from por.store import Store
from por.store.witness import WitnessStateStore
from tests.api.servers import serve
from tests.api.test_transparency import WITNESS, WITNESS_VKEY
from tests.store.factory import ISSUER, LOG_SIGNER, ORIGIN, World, default_holders

HERE = Path(__file__).resolve().parent
VECTORS = HERE.parent / "vectors" / "tlog"
GOPATH = Path("/usr/share/gocode")

# --- DSSE: securesystemslib ---------------------------------------------------------------


def test_securesystemslib_verifies_por_envelopes() -> None:
    auditor = Ed25519Signer(hashlib.sha256(b"interop auditor").digest())
    payload = b'{"format":"por-attestation-v1","sequence":1}'
    env = sign_envelope(payload, PAYLOAD_TYPE, [ISSUER, auditor])
    theirs = SslibEnvelope.from_dict(json.loads(env.to_json_bytes()))
    issuer_key = SSlibKey.from_dict(
        ISSUER.keyid,
        {
            "keytype": "ed25519",
            "scheme": "ed25519",
            "keyval": {"public": ISSUER.public_key_raw.hex()},
        },
    )
    auditor_key = SSlibKey.from_dict(
        auditor.keyid,
        {
            "keytype": "ed25519",
            "scheme": "ed25519",
            "keyval": {"public": auditor.public_key_raw.hex()},
        },
    )
    accepted = theirs.verify([issuer_key, auditor_key], threshold=2)
    assert set(accepted) == {ISSUER.keyid, auditor.keyid}
    assert theirs.payload == payload and theirs.payload_type == PAYLOAD_TYPE
    # and a flipped payload bit fails in their code too
    bad = json.loads(env.to_json_bytes())
    bad["payload"] = base64.b64encode(payload.replace(b"1", b"2")).decode()
    with pytest.raises(Exception, match=r"(?i)verif|threshold"):
        SslibEnvelope.from_dict(bad).verify([issuer_key], threshold=1)


def test_por_counts_a_securesystemslib_auditor_cosignature() -> None:
    seed = hashlib.sha256(b"sslib auditor").digest()
    signer = CryptoSigner(Ed25519PrivateKey.from_private_bytes(seed))
    payload = b'{"format":"por-attestation-v1","issued_at":"2026-11-25T03:00:00Z"}'
    theirs = SslibEnvelope(payload=payload, payload_type=PAYLOAD_TYPE, signatures={})
    theirs.sign(signer)
    doc = theirs.to_dict()
    assert doc["signatures"][0]["keyid"] != Ed25519Signer(seed).keyid  # their keyid scheme
    ours = Envelope.from_dict(doc)  # a DSSE consumer's reading
    keys = KeySet(
        keys=(
            KeyEntry.for_public_key(ISSUER.public_key_raw, role="issuer"),
            KeyEntry.for_public_key(Ed25519Signer(seed).public_key_raw, role="auditor"),
        )
    )
    verified = verify_envelope(
        ours,
        keys,
        at=parse_time("2026-11-25T03:00:00Z", where="t"),
        payload_type=PAYLOAD_TYPE,
        roles=frozenset({"auditor"}),
    )
    assert verified.keyids == (Ed25519Signer(seed).keyid,)
    # their verifier also accepts it, with the key under their id
    assert theirs.verify([signer.public_key], threshold=1)


# --- C2SP: Go's golang.org/x/mod/sumdb/{note,tlog} ---------------------------------------


@pytest.fixture(scope="module")
def c2spcheck(tmp_path_factory: pytest.TempPathFactory) -> Path:
    go = shutil.which("go")
    assert go, "Go is missing: ./dev setup installs Debian's golang-go"
    assert (GOPATH / "src/golang.org/x/mod/sumdb/note/note.go").exists(), (
        "golang.org/x/mod is missing: ./dev setup installs golang-golang-x-mod-dev"
    )
    out = tmp_path_factory.mktemp("go") / "c2spcheck"
    env = {
        **os.environ,
        "GO111MODULE": "off",  # GOPATH mode: Debian's packaged source, no module download
        "GOPATH": str(GOPATH),
        "GOCACHE": str(out.parent / "cache"),
        "GOFLAGS": "",
        "GOPROXY": "off",
    }
    subprocess.run(
        [go, "build", "-o", str(out), str(HERE / "c2spcheck" / "main.go")],
        check=True,
        env=env,
        capture_output=True,
    )
    return out


def test_go_note_opens_por_checkpoint_vectors(c2spcheck: Path, tmp_path: Path) -> None:
    cases = {}
    for path in sorted(VECTORS.glob("checkpoint_*.json")):
        v = json.loads(path.read_text())
        note = tmp_path / f"{path.stem}.note"
        note.write_text(v["note"], encoding="utf-8")
        cases[path.stem] = (v, note)
    vkey = next(iter(cases.values()))[0]["verifier_key"]
    out = subprocess.run(
        [str(c2spcheck), "note", vkey, *(str(n) for _, n in cases.values())],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    go_ok = {Path(line.split()[0]).stem: line.split()[1] == "ok" for line in out.splitlines()}
    assert set(go_ok) == set(cases)
    for name, (v, _) in cases.items():
        if v["want_err"] is None:
            assert go_ok[name], f"Go refuses the valid checkpoint {name}"
    # the signature itself is broken in these: Go must refuse them as por does
    for name in (
        "checkpoint_size_changed",
        "checkpoint_origin_changed",
        "checkpoint_only_witness",
        "checkpoint_no_blank_line",
        "checkpoint_hyphen_not_em_dash",
    ):
        assert not go_ok[name], name
    # these are signed correctly; Go's note layer accepts them and it is the checkpoint
    # layer (origin, size) that refuses them — in por and in Go's own ParseCheckpoint
    assert go_ok["checkpoint_other_origin"] and go_ok["checkpoint_size_2_64"]


@pytest.fixture(scope="module")
def big_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Store]]:
    """A live log of 260 attestations (a full tile, a partial tile, a level-1 tile),
    cosigned by a witness."""
    tmp = tmp_path_factory.mktemp("biglog")
    store = Store.open(None, data_dir=tmp / "data", attestations_dir=tmp / "att", migrate=True)
    world = World(holders=default_holders(2))
    for _ in range(260):
        world.record(store)
    keys = KeySet(
        keys=(KeyEntry.for_public_key(ISSUER.public_key_raw, role="issuer"),),
        log=LogKey(origin=ORIGIN, vkey=log_verifier_key(ORIGIN, LOG_SIGNER.public_key_raw)),
        witnesses=(WITNESS_VKEY,),
    )
    from por.api.witness import WitnessDeps, create_witness_app

    witness_store = WitnessStateStore.open(None, data_dir=tmp / "witness")
    witness = create_witness_app(
        WitnessDeps(
            store=witness_store,
            name=WITNESS_VKEY.name,
            signer=WITNESS,
            logs={ORIGIN: keys.log.vkey},  # type: ignore[union-attr]
        )
    )
    with (
        serve(witness) as witness_url,
        serve(create_app(ApiDeps(store=store, keys=keys.to_dict(), proof_rate_limit=None))) as url,
    ):
        (outcome,) = WitnessSubmitter(
            store, [WitnessTarget(vkey=WITNESS_VKEY, url=witness_url)]
        ).submit_all()
        assert outcome.ok, outcome.detail
        yield url, store
    witness_store.close()
    store.close()


@pytest.mark.slow
def test_go_tlog_reads_the_log_through_its_tiles(
    c2spcheck: Path, big_log: tuple[str, Store]
) -> None:
    url, store = big_log
    vkey = log_verifier_key(ORIGIN, LOG_SIGNER.public_key_raw).encode()
    old = 100
    old_root = base64.b64encode(store.log_tree().root(old)).decode()
    out = subprocess.run(
        [str(c2spcheck), "log", url, vkey, ORIGIN, str(old), old_root],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"ok size=260 entries=260 cosignatures={WITNESS_VKEY.name}"
    # Go refuses a wrong old root (the consistency proof cannot lead to it)
    bad = subprocess.run(
        [str(c2spcheck), "log", url, vkey, ORIGIN, str(old), base64.b64encode(bytes(32)).decode()],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 1 and "CheckTree" in bad.stderr
    # and a checkpoint expected for another origin
    other = subprocess.run(
        [str(c2spcheck), "log", url, vkey, "example.org/other-log"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert other.returncode == 1 and "origin" in other.stderr
