"""The log for machines, witnesses, auditor co-signatures and the auditor's CLI, over real HTTP.

One por API (uvicorn on 127.0.0.1) over a temp SQLite store of real signed attestations,
one `por witness` app (uvicorn) with its own database, the service's WitnessSubmitter
between them, and the auditor's commands (`por verify --from`, `por log verify`,
`por cosign`, `por statements fetch`) run through `por.cli.main.main`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from por.api import ApiDeps, create_app
from por.api.witness import WitnessDeps, create_witness_app
from por.cli.main import main
from por.core.attestation import PAYLOAD_TYPE
from por.core.dsse import Ed25519Signer, Envelope, KeyEntry, KeySet, LogKey, Signature, pae
from por.core.note import ALG_COSIGNATURE_V1, VerifierKey
from por.core.tlog import (
    Checkpoint,
    envelope_leaf_hash,
    log_verifier_key,
    open_checkpoint,
    sign_checkpoint,
    verify_inclusion,
)
from por.core.witness import AddCheckpoint
from por.service.witnesses import WitnessSubmitter, WitnessTarget
from por.store import Store
from por.store.witness import WitnessStateStore
from tests.api.servers import serve
from tests.store.factory import ISSUER, LOG_SIGNER, ORIGIN, World

AUDITOR = Ed25519Signer(hashlib.sha256(b"por test auditor").digest())
OTHER_AUDITOR = Ed25519Signer(hashlib.sha256(b"por test auditor 2").digest())
WITNESS = Ed25519Signer(hashlib.sha256(b"por test witness").digest())
WITNESS_VKEY = VerifierKey(
    name="witness.example/w1", alg=ALG_COSIGNATURE_V1, public_key=WITNESS.public_key_raw
)
TOKEN = "auditor-token-123"
PASSPHRASE = "auditor passphrase"
STATEMENT = b"<Document>camt.053 statement bytes</Document>\n"


def published_keys() -> KeySet:
    return KeySet(
        keys=(
            KeyEntry.for_public_key(ISSUER.public_key_raw, role="issuer"),
            KeyEntry.for_public_key(AUDITOR.public_key_raw, role="auditor"),
            KeyEntry.for_public_key(OTHER_AUDITOR.public_key_raw, role="auditor"),
        ),
        log=LogKey(origin=ORIGIN, vkey=log_verifier_key(ORIGIN, LOG_SIGNER.public_key_raw)),
        witnesses=(WITNESS_VKEY,),
    )


@dataclass
class Log:
    url: str
    witness_url: str
    store: Store
    witness_store: WitnessStateStore
    world: World
    submitter: WitnessSubmitter
    keys_file: Path
    auditor_key: Path
    dir: Path

    def record(self, n: int = 1) -> None:
        for _ in range(n):
            self.world.record(self.store)

    def get(self, path: str, **kw: object) -> httpx.Response:
        return httpx.get(self.url + path, **kw)  # type: ignore[arg-type]


@pytest.fixture
def log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Log]:
    store = Store.open(
        None, data_dir=tmp_path / "data", attestations_dir=tmp_path / "att", migrate=True
    )
    world = World()
    for _ in range(3):
        world.record(store)
    keys = published_keys()
    keys_file = tmp_path / "keys.json"
    keys_file.write_text(json.dumps(keys.to_dict()))
    auditor_key = tmp_path / "auditor.key.pem"
    auditor_key.write_bytes(AUDITOR.to_pem(PASSPHRASE, random_bytes=os.urandom))
    statements = {hashlib.sha256(STATEMENT).hexdigest(): STATEMENT}
    witness_store = WitnessStateStore.open(None, data_dir=tmp_path / "witness")
    witness_app = create_witness_app(
        WitnessDeps(
            store=witness_store,
            name=WITNESS_VKEY.name,
            signer=WITNESS,
            logs={ORIGIN: keys.log.vkey},  # type: ignore[union-attr]
            clock=lambda: 1_767_225_600,
        )
    )
    api = create_app(
        ApiDeps(
            store=store,
            keys=keys.to_dict(),
            auditor_token=TOKEN,
            statements=statements.get,
            proof_rate_limit=None,
        )
    )
    monkeypatch.setenv("POR_AUDITOR_TOKEN", TOKEN)
    monkeypatch.setenv("POR_KEY_PASSPHRASE", PASSPHRASE)
    with serve(witness_app) as witness_url, serve(api) as url:
        submitter = WitnessSubmitter(
            store, [WitnessTarget(vkey=WITNESS_VKEY, url=witness_url, timeout_s=10)]
        )
        yield Log(
            url=url,
            witness_url=witness_url,
            store=store,
            witness_store=witness_store,
            world=world,
            submitter=submitter,
            keys_file=keys_file,
            auditor_key=auditor_key,
            dir=tmp_path,
        )
    witness_store.close()
    store.close()


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    rc = main(list(args))
    captured = capsys.readouterr()
    return rc, captured.out + captured.err


def cli_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any], str]:
    rc = main([*args, "--json"])
    captured = capsys.readouterr()
    return rc, json.loads(captured.out), captured.err


# --- publishing the log for machines ----------------------------------------------------


def test_verifier_key_is_published_in_c2sp_form(log: Log) -> None:
    vkey = log.get("/v1/log/key").text.strip()
    assert vkey == log_verifier_key(ORIGIN, LOG_SIGNER.public_key_raw).encode()
    assert vkey.startswith(ORIGIN + "+")
    keys = KeySet.from_dict(log.get("/v1/keys").json())
    assert keys.log is not None and keys.log.vkey.encode() == vkey
    assert keys.witnesses == (WITNESS_VKEY,)


def test_tiles_serve_the_log(log: Log) -> None:
    cp = log.get("/checkpoint")
    assert cp.headers["content-type"].startswith("text/plain")
    assert cp.headers["cache-control"] == "no-cache"
    opened = open_checkpoint(cp.text, log_key=published_keys().log.vkey, origin=ORIGIN)  # type: ignore[union-attr]
    assert opened.checkpoint.size == 3
    tile = log.get("/tile/0/000.p/3")
    assert tile.status_code == 200 and len(tile.content) == 96
    assert tile.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert tile.headers["content-type"] == "application/octet-stream"
    tree = log.store.log_tree()
    assert tile.content == b"".join(tree.leaf(i) for i in range(3))
    entries = log.get("/tile/entries/000.p/3").content
    envelopes = log.get("/tile/envelopes/000.p/3").content
    first_env = log.store.get(1).envelope_json
    assert entries[:2] == b"\x00\x20" and entries[2:34] == hashlib.sha256(first_env).digest()
    assert envelopes[4 : 4 + len(first_env)] == first_env
    for missing in ("/tile/0/000", "/tile/0/000.p/4", "/tile/1/000.p/1", "/tile/entries/001.p/1"):
        assert log.get(missing).status_code == 404, missing
    for bad in ("/tile/0/00", "/tile/01/000", "/tile/0/000.p/0", "/tile/x/000"):
        assert log.get(bad).status_code == 404, bad


# --- witnesses ----------------------------------------------------------------------------


def test_witness_cosigns_each_checkpoint_and_catches_up(log: Log) -> None:
    (outcome,) = log.submitter.submit_all()
    assert outcome.ok, outcome.detail
    served = log.get("/checkpoint").text
    assert f"\u2014 {WITNESS_VKEY.name} " in served
    keys = published_keys()
    opened = open_checkpoint(
        served,
        log_key=keys.log.vkey,
        origin=ORIGIN,
        witnesses=[WITNESS_VKEY],
        required_witnesses=1,  # type: ignore[union-attr]
    )
    assert opened.witnesses == (WITNESS_VKEY.name,)
    assert log.submitter.submit_all() == []  # nothing pending
    # the witness misses two checkpoints, then catches up with one consistency proof
    log.record(2)
    (outcome,) = log.submitter.submit_all()
    assert outcome.ok and outcome.size == 5
    held = log.witness_store.get(ORIGIN)
    assert held is not None and held.size == 5
    witnesses = log.get("/v1/log/witnesses").json()["witnesses"]
    assert witnesses[0]["cosigned_size"] == 5 and witnesses[0]["last_error"] is None
    inc = log.get("/v1/log/inclusion", params={"sequence": 2}).json()
    assert WITNESS_VKEY.name in inc["checkpoint"]


def test_witness_refuses_stale_split_and_bad_proofs_with_the_spec_statuses(log: Log) -> None:
    log.submitter.submit_all()  # the witness holds size 3
    cp3 = log.store.checkpoint()
    assert cp3 is not None
    post = lambda req: httpx.post(log.witness_url + "/add-checkpoint", content=req.encode())  # noqa: E731
    # a stale old size: 409 with the witness's size, as text/x.tlog.size
    log.record(1)
    cp4 = log.store.checkpoint()
    assert cp4 is not None
    stale = post(
        AddCheckpoint(
            old_size=1, proof=tuple(log.store.log_tree().consistency_proof(1, 4)), note=cp4.note
        )
    )
    assert stale.status_code == 409
    assert stale.headers["content-type"] == "text/x.tlog.size" and stale.text == "3\n"
    # split view: the log's key signs another root for the size the witness holds
    fork = sign_checkpoint(
        Checkpoint(origin=ORIGIN, size=3, root_hash=hashlib.sha256(b"fork").digest()),
        key_name=ORIGIN,
        signer=LOG_SIGNER,
    )
    split = post(AddCheckpoint(old_size=3, proof=(), note=fork))
    assert split.status_code == 409 and split.text == "3\n"
    # a proof that does not verify: 422
    bad = post(AddCheckpoint(old_size=3, proof=(bytes(32),), note=cp4.note))
    assert bad.status_code == 422
    # a checkpoint signed by another key: 403; an unknown origin: 404; garbage: 400
    forged = sign_checkpoint(
        Checkpoint(origin=ORIGIN, size=4, root_hash=cp4.root_hash), key_name=ORIGIN, signer=ISSUER
    )
    assert post(AddCheckpoint(old_size=3, proof=(), note=forged)).status_code == 403
    other = sign_checkpoint(
        Checkpoint(origin="example.org/other-log", size=1, root_hash=bytes(32)),
        key_name="example.org/other-log",
        signer=LOG_SIGNER,
    )
    assert post(AddCheckpoint(old_size=0, proof=(), note=other)).status_code == 404
    assert (
        httpx.post(log.witness_url + "/add-checkpoint", content=b"old 01\n\nx").status_code == 400
    )
    # nothing above moved the witness; the signed refusals are kept as evidence
    held = log.witness_store.get(ORIGIN)
    assert held is not None and held.size == 3 and held.root_hash == cp3.root_hash
    statuses = [status for status, _, _ in log.witness_store.evidence(ORIGIN)]
    assert statuses == [409, 409, 422]
    # the submitter learns the real size from a 409 and retries from it
    log.store.cosign.record_submission(WITNESS_VKEY.name, known_size=1)
    (outcome,) = log.submitter.submit_all()
    assert outcome.ok and outcome.size == 4


def test_monitor_catches_a_split_view(log: Log, capsys: pytest.CaptureFixture[str]) -> None:
    state = log.dir / "monitor.json"
    rc, out = cli(
        capsys,
        "log",
        "verify",
        "--from",
        log.url,
        "--keys",
        str(log.keys_file),
        "--state",
        str(state),
    )
    assert rc == 0, out
    assert json.loads(state.read_text())["size"] == 3
    log.record(2)
    log.submitter.submit_all()
    rc, out = cli(
        capsys,
        "log",
        "verify",
        "--from",
        log.url,
        "--keys",
        str(log.keys_file),
        "--state",
        str(state),
        "--witnesses",
        "1",
    )
    assert rc == 0, out
    assert "consistency proof 3 -> 5 verifies" in out
    # The monitor had been shown another size-5 checkpoint (same log key, other root):
    kept = json.loads(state.read_text())
    forked = sign_checkpoint(
        Checkpoint(origin=ORIGIN, size=5, root_hash=hashlib.sha256(b"other view").digest()),
        key_name=ORIGIN,
        signer=LOG_SIGNER,
    )
    kept["root_hash"] = base64.b64encode(hashlib.sha256(b"other view").digest()).decode()
    kept["checkpoint"] = forked
    state.write_text(json.dumps(kept))
    rc, out = cli(
        capsys,
        "log",
        "verify",
        "--from",
        log.url,
        "--keys",
        str(log.keys_file),
        "--state",
        str(state),
    )
    assert rc == 1
    assert "SPLIT VIEW" in out and json.loads(state.read_text()) == kept  # state kept as evidence


# --- auditor co-signatures ------------------------------------------------------------------


def post_signatures(log: Log, seq: int, body: object, token: str | None = TOKEN) -> httpx.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return httpx.post(
        f"{log.url}/v1/attestations/{seq}/signatures",
        content=json.dumps(body).encode(),
        headers=headers,
    )


def test_auditor_cosignature_keeps_inclusion_proofs_valid(
    log: Log, capsys: pytest.CaptureFixture[str]
) -> None:
    before = log.get("/v1/log/inclusion", params={"sequence": 2}).json()
    envelope_before = log.get("/v1/attestations/2").json()["envelope"]
    rc, out = cli(
        capsys,
        "cosign",
        "2",
        "--from",
        log.url,
        "--key",
        str(log.auditor_key),
        "--keys",
        str(log.keys_file),
    )
    assert rc == 0, out
    sigs = log.get("/v1/attestations/2/signatures").json()["signatures"]
    assert [s["keyid"] for s in sigs] == [AUDITOR.keyid]
    # the issuer's envelope, its log leaf and its inclusion proof did not change
    assert log.get("/v1/attestations/2").json()["envelope"] == envelope_before
    after = log.get("/v1/log/inclusion", params={"sequence": 2}).json()
    assert after == before
    leaf = envelope_leaf_hash(Envelope.from_dict(envelope_before, exact=True).to_json_bytes())
    verify_inclusion(
        after["leaf_index"],
        after["tree_size"],
        leaf,
        [bytes.fromhex(h) for h in after["path"]],
        bytes.fromhex(after["root_hash"]),
    )
    # por verify reports which auditors signed, and the log check still passes
    rc, report, _ = cli_json(
        capsys, "verify", "--from", log.url, "--sequence", "2", "--keys", str(log.keys_file)
    )
    checks = {c["name"]: c for c in report["checks"]}
    assert rc == 0 and checks["log"]["status"] == "pass"
    assert (
        checks["auditors"]["status"] == "pass"
        and AUDITOR.keyid[:16] in checks["auditors"]["detail"]
    )
    assert "1 of 2 auditor key(s)" in checks["auditors"]["detail"]
    # a second submission by the same key is a duplicate: 409
    payload = base64.b64decode(envelope_before["payload"])
    again = {
        "payload": envelope_before["payload"],
        "payloadType": PAYLOAD_TYPE,
        "signatures": [
            {
                "keyid": AUDITOR.keyid,
                "sig": base64.b64encode(AUDITOR.sign(pae(PAYLOAD_TYPE, payload))).decode(),
            }
        ],
    }
    assert post_signatures(log, 2, again).status_code == 409


def test_cosignature_refusals_store_nothing(log: Log) -> None:
    env = log.get("/v1/attestations/1").json()["envelope"]
    payload = base64.b64decode(env["payload"])
    message = pae(PAYLOAD_TYPE, payload)

    def body(*sigs: Signature, payload_b64: str = env["payload"]) -> dict[str, object]:
        return {
            "payload": payload_b64,
            "payloadType": PAYLOAD_TYPE,
            "signatures": [s.to_dict() for s in sigs],
        }

    good = Signature(keyid=AUDITOR.keyid, sig=AUDITOR.sign(message))
    assert post_signatures(log, 1, body(good), token=None).status_code == 401
    assert post_signatures(log, 1, body(good), token="wrong").status_code == 401
    forged = Signature(keyid=AUDITOR.keyid, sig=bytes(64))
    assert post_signatures(log, 1, body(forged)).status_code == 403
    by_issuer = Signature(keyid=ISSUER.keyid, sig=ISSUER.sign(message + b" "))
    assert post_signatures(log, 1, body(by_issuer)).status_code == 403
    stranger = Ed25519Signer(hashlib.sha256(b"stranger").digest())
    assert (
        post_signatures(log, 1, body(Signature(keyid="", sig=stranger.sign(message)))).status_code
        == 403
    )
    # one good and one forged in the same body: all or nothing
    assert post_signatures(log, 1, body(good, forged)).status_code == 403
    other_payload = base64.b64encode(payload + b" ").decode()
    assert post_signatures(log, 1, body(good, payload_b64=other_payload)).status_code == 422
    assert post_signatures(log, 99, body(good)).status_code == 404
    assert log.get("/v1/attestations/1/signatures").json()["signatures"] == []
    # a DSSE consumer's envelope from another tool: URL-safe, no padding, no keyid
    urlsafe = {
        "payload": base64.urlsafe_b64encode(payload).decode().rstrip("="),
        "payloadType": PAYLOAD_TYPE,
        "signatures": [
            {"sig": base64.urlsafe_b64encode(OTHER_AUDITOR.sign(message)).decode().rstrip("=")}
        ],
        "x-tool": "ignored",
    }
    r = post_signatures(log, 1, urlsafe)
    assert r.status_code == 201 and r.json()["added"] == [OTHER_AUDITOR.keyid]


# --- the auditor's CLI ----------------------------------------------------------------------


def test_verify_from_url_fetches_everything_and_requires_witnesses(
    log: Log, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out = cli(
        capsys, "verify", "--from", log.url, "--keys", str(log.keys_file), "--witnesses", "1"
    )
    assert rc == 1 and "need 1" in out  # not cosigned yet
    log.submitter.submit_all()
    rc, report, err = cli_json(capsys, "verify", "--from", log.url, "--witnesses", "1")
    assert "trusting the key set served by" in err  # no --keys: said out loud
    assert rc == 0, report
    assert {c["name"]: c["status"] for c in report["checks"]} == {
        "format": "pass",
        "signatures": "pass",
        "key windows": "pass",
        "hash chain": "pass",
        "liabilities": "skip",
        "totals": "pass",
        "budgets": "pass",
        "log": "pass",
        "auditors": "skip",
    }


def test_verify_history_prints_one_line_per_sequence(
    log: Log, capsys: pytest.CaptureFixture[str]
) -> None:
    log.record(1)
    rc, out = cli(capsys, "verify", "--from", log.url, "--keys", str(log.keys_file), "--history")
    assert rc == 0, out
    lines = [ln for ln in out.splitlines() if ln.strip()[:1].isdigit()]
    assert [ln.split()[0] for ln in lines] == ["1", "2", "3", "4"]
    assert all(" PASS " in ln and "log=pass" in ln and "hash chain=pass" in ln for ln in lines)
    assert out.rstrip().endswith("history 1..4: PASS")


def test_verify_and_check_read_the_api_shapes(log: Log, capsys: pytest.CaptureFixture[str]) -> None:
    att = log.dir / "att3.json"
    att.write_text(log.get("/v1/attestations/3").text)
    inc = log.dir / "inc3.json"
    inc.write_text(log.get("/v1/log/inclusion", params={"sequence": 3}).text)
    rc, out = cli(capsys, "verify", str(att), "--keys", str(log.keys_file), "--inclusion", str(inc))
    assert rc == 0, out
    assert "PASS  log" in out
    account = next(iter(log.world.holders))
    proof = log.dir / "proof.json"
    proof.write_text(log.get(f"/v1/proofs/{account}").text)
    rc, out = cli(
        capsys, "check", str(proof), "--attestation", str(att), "--keys", str(log.keys_file)
    )
    assert rc == 0 and out.startswith("OK: "), out
    # a proof of another attestation is refused even though its tree is the same
    doc = json.loads(proof.read_text())
    doc["sequence"] = 2
    proof.write_text(json.dumps(doc))
    rc, out = cli(
        capsys, "check", str(proof), "--attestation", str(att), "--keys", str(log.keys_file)
    )
    assert rc == 1 and "another attestation" in out


def test_statements_are_served_to_auditors_only(
    log: Log, capsys: pytest.CaptureFixture[str]
) -> None:
    sha = hashlib.sha256(STATEMENT).hexdigest()
    assert log.get(f"/v1/statements/{sha}").status_code == 401
    r = log.get(f"/v1/statements/{sha}", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200 and r.content == STATEMENT
    assert r.headers["cache-control"] == "no-store"
    assert (
        log.get(
            f"/v1/statements/{'0' * 64}", headers={"Authorization": f"Bearer {TOKEN}"}
        ).status_code
        == 404
    )
    out_file = log.dir / "statement.xml"
    rc, out = cli(capsys, "statements", "fetch", sha, "--from", log.url, "--out", str(out_file))
    assert rc == 0, out
    assert out_file.read_bytes() == STATEMENT


def test_por_witness_command_serves_and_cosigns(
    log: Log, capsys: pytest.CaptureFixture[str]
) -> None:
    """`por witness init` + `por witness serve` as an auditor runs them (a real process)."""
    import socket
    import subprocess
    import sys
    import time

    wdir = log.dir / "w"
    wdir.mkdir()
    rc, out = cli(capsys, "witness", "init", "--out", str(wdir), "--name", "auditor.example/w9")
    assert rc == 0, out
    vkey = VerifierKey.parse((wdir / "witness.vkey").read_text().strip())
    assert vkey.alg == ALG_COSIGNATURE_V1 and vkey.encode() in out
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "por.cli.main",
            "witness",
            "serve",
            "--dir",
            str(wdir),
            "--keys",
            str(log.keys_file),
            "--listen",
            f"127.0.0.1:{port}",
        ],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url + "/add-checkpoint", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline and proc.poll() is None, "witness did not start"
                time.sleep(0.1)
        sub = WitnessSubmitter(log.store, [WitnessTarget(vkey=vkey, url=url)])
        (outcome,) = sub.submit_all()
        assert outcome.ok, outcome.detail
        log.record(1)
        (outcome,) = sub.submit_all()
        assert outcome.ok and outcome.size == 4
    finally:
        proc.terminate()
        proc.wait(10)
    rc, out = cli(capsys, "witness", "show", "--dir", str(wdir))
    assert rc == 0 and f"{ORIGIN}  size 4" in out


def test_log_stores_no_forged_or_duplicate_witness_cosignature(log: Log) -> None:
    """The log verifies what a witness answers: a forged line, a line by another key, or an
    error status stores nothing and leaves the witness pending; a repeat is stored once."""
    cp = log.store.checkpoint()
    assert cp is not None
    body_text = cp.note[: cp.note.rfind("\n\n") + 1]
    from por.core.note import cosign

    good = cosign(body_text, name=WITNESS_VKEY.name, signer=WITNESS, timestamp=1_767_225_600)
    forged = type(good)(
        name=good.name, key_id=good.key_id, signature=good.signature[:8] + bytes(64)
    )
    stranger = Ed25519Signer(hashlib.sha256(b"not the witness").digest())
    other_key = cosign(body_text, name=WITNESS_VKEY.name, signer=stranger, timestamp=1)
    # validly signed, but dated an hour after the log's clock (+ 300 s skew): a witness
    # cannot vouch now for what it claims to see later
    future = cosign(body_text, name=WITNESS_VKEY.name, signer=WITNESS, timestamp=1_767_229_201)
    answers = iter(
        [
            (200, "text/plain", forged.line().encode()),
            (200, "text/plain", other_key.line().encode()),
            (500, "text/plain", b"boom"),
            (200, "text/plain", future.line().encode()),
            (200, "text/plain", (good.line() + good.line()).encode()),
        ]
    )
    sub = WitnessSubmitter(
        log.store,
        [WitnessTarget(vkey=WITNESS_VKEY, url="http://127.0.0.1:9")],
        post=lambda url, body, timeout: next(answers),
        clock=lambda: 1_767_225_600.0,
    )
    for want in (
        "not a valid cosignature",
        "no cosignature by the witness key",
        "HTTP 500",
        "cosignature is dated in the future",
    ):
        (outcome,) = sub.submit_all()
        assert not outcome.ok and want in outcome.detail, outcome.detail
        assert log.store.cosign.witness_lines(cp.size) == []
    state = log.store.cosign.submission(WITNESS_VKEY.name)
    assert state is not None and state.attempts == 4 and state.cosigned_size == 0
    (outcome,) = sub.submit_all()
    assert outcome.ok
    assert [ln.line() for ln in log.store.cosign.witness_lines(cp.size)] == [good.line()]
