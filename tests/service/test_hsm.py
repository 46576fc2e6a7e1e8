"""Keys in an HSM (PKCS#11, SoftHSM2): Ed25519 for attestations and checkpoints
(CKM_EDDSA), secp256k1 oracle attestors (CKM_ECDSA), and what goes wrong with a token."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from por.cli.main import main
from por.core.dsse import Envelope, KeyEntry, KeySet
from por.core.tlog import verify_checkpoint
from por.core.verify import verify_attestation_envelope
from por.errors import SigningError
from por.service.config import load_config
from por.service.hsm import HsmToken
from tests.service.conftest import HSM_PIN, HSM_TOKEN, SOFTHSM_MODULE, Clock, write_world


def token() -> HsmToken:
    return HsmToken(module=SOFTHSM_MODULE, token_label=HSM_TOKEN, pin=HSM_PIN).open()


def hsm_world(root: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    """The service world with its issuer key made inside the token instead of a file."""
    label = f"issuer-{secrets.token_hex(4)}"
    t = token()
    signer = t.generate_ed25519(label)
    t.close()
    world = write_world(root)
    keys = KeySet(keys=(KeyEntry.for_public_key(signer.public_key_raw, role="issuer"),))
    (root / "keys" / "keys.json").write_bytes(keys.to_json_bytes())
    text = world.config.read_text().replace(
        'key_file = "keys/issuer.key.pem"\nkeys_file = "keys/keys.json"\n',
        'keys_file = "keys/keys.json"\n[signing.pkcs11]\n'
        f'module = "{SOFTHSM_MODULE}"\ntoken_label = "{HSM_TOKEN}"\n'
        f'pin_env = "POR_TEST_HSM_PIN"\nkey_label = "{label}"\n',
    )
    assert "[signing.pkcs11]" in text
    world.config.write_text(text)
    monkeypatch.setenv("POR_TEST_HSM_PIN", HSM_PIN)
    return world.config, label


def test_ed25519_in_the_token_signs_attestations_and_checkpoints(
    softhsm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from por.service.wiring import build_service

    config, label = hsm_world(tmp_path / "w", monkeypatch)
    cfg = load_config(config)
    svc = build_service(cfg, publish=False, clock=Clock())
    try:
        r = svc.attest()
        stored = svc.store.get(r.sequence)
        env = Envelope.from_json_bytes(stored.envelope_json)
        keys = KeySet.from_json_bytes(cfg.signing.keys_file.read_bytes())
        att = verify_attestation_envelope(env, keys, now=stored.attestation.issued_at)
        assert att.sequence == 1
        note = (cfg.service.attestations_dir / "checkpoint.txt").read_text()
        verify_checkpoint(note, key_name=cfg.service.origin, public_key_raw=keys.keys[0].public_key)
    finally:
        svc.close()
    assert label in repr(svc.deps.checkpoint_signer)


def test_secp256k1_attestor_in_the_token_signs_oracle_reports(softhsm: Path) -> None:
    from por.oracle.report import HALF_N, OracleReport, recover_signer

    t = token()
    try:
        attestor = t.generate_secp256k1(f"attestor-{secrets.token_hex(4)}")
        from tests.evm.helpers import make_doc

        report = OracleReport.from_attestation(
            *make_doc(sequence=7, as_of=1_700_000_000, reserves=10**12, supply=9 * 10**11)
        )
        for _ in range(4):  # ECDSA is randomized: every signature must come out low-s
            sig = attestor.sign_report(report, chain_id=1, contract="0x" + "11" * 20)
            assert len(sig) == 65 and int.from_bytes(sig[32:64], "big") <= HALF_N
            assert (
                recover_signer(report, sig, chain_id=1, contract="0x" + "11" * 20)
                == attestor.address
            )
    finally:
        t.close()


def test_wrong_pin_is_an_error_naming_the_token(
    softhsm: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SigningError) as ei:
        HsmToken(module=SOFTHSM_MODULE, token_label=HSM_TOKEN, pin="000000").open()
    assert f"token '{HSM_TOKEN}'" in str(ei.value) and "PIN was refused" in str(ei.value)
    assert "000000" not in str(ei.value)
    config, _ = hsm_world(tmp_path / "w", monkeypatch)
    monkeypatch.setenv("POR_TEST_HSM_PIN", "999999")
    assert main(["attest", "--config", str(config), "--no-publish", "--log-format", "text"]) == 1
    err = capsys.readouterr().err
    assert f"PKCS#11 token '{HSM_TOKEN}'" in err and "SigningError" in err
    assert "999999" not in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("module", "label", "what"),
    [
        (Path("/nonexistent/libpkcs11.so"), HSM_TOKEN, "library does not exist"),
        (SOFTHSM_MODULE, "no-such-token", "no such token"),
    ],
)
def test_unavailable_hsm_is_a_clear_error(
    softhsm: Path, module: Path, label: str, what: str
) -> None:
    with pytest.raises(SigningError, match=what):
        HsmToken(module=module, token_label=label, pin=HSM_PIN).open()


def test_hsm_lost_during_a_run_fails_it_before_anything_is_recorded(
    softhsm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from por.service.wiring import build_service

    config, _ = hsm_world(tmp_path / "w", monkeypatch)
    svc = build_service(load_config(config), publish=False, clock=Clock())
    try:
        hsm = svc.deps.checkpoint_signer.token  # type: ignore[attr-defined]
        hsm.close()  # the session is gone (HSM restarted) ...
        hsm._pin = "not-the-pin"  # ... and logging in again fails
        with pytest.raises(SigningError, match=HSM_TOKEN):
            svc.attest()
        assert svc.store.latest_sequence() is None
        assert not list((svc.cfg.service.attestations_dir).glob("*.dsse.json"))
        assert svc.alerter is not None and svc.alerter.metrics.run_failures == 1
    finally:
        svc.close()


@pytest.mark.anvil
def test_reserve_oracle_accepts_a_round_signed_in_the_hsm(
    softhsm: Path, world: object, tmp_path: Path
) -> None:
    """The HSM attestor and a file attestor sign; the oracle (threshold 2) takes the round."""
    from datetime import UTC, datetime, timedelta

    from eth_account import Account

    from por.demo.anvil import AnvilNode, deploy_oracle
    from por.oracle.evm_publisher import EvmPublisher
    from por.oracle.intents import FileIntentStore
    from por.service.wiring import build_service

    now = Clock(datetime.now(UTC) - timedelta(minutes=10))  # the oracle refuses old as-ofs
    svc = build_service(load_config(world.config), publish=False, clock=now)  # type: ignore[attr-defined]
    try:
        r = svc.attest()
        doc = svc.store.get(r.sequence).attestation.to_dict()
    finally:
        svc.close()
    t = token()
    try:
        hsm_attestor = t.generate_secp256k1(f"attestor-{secrets.token_hex(4)}")
        file_attestor = "0x" + "a7" * 32
        with AnvilNode(chain_id=1) as node:
            oracle = deploy_oracle(
                node.w3,
                owner=node.accounts[0],
                attestors=[hsm_attestor.address, Account.from_key(file_attestor).address],
                threshold=2,
                decimals=6,
            )
            pub = EvmPublisher(
                chain_id=1,
                rpc_urls=node.url,
                contract=oracle,
                sender_key=node.private_keys[5],
                attestor_keys=[hsm_attestor, file_attestor],
                intent_store=FileIntentStore(tmp_path / "intents"),
                poll_interval_s=0.02,
            )
            receipt = pub.publish(doc, r.digest)
            assert receipt.status == "published" and receipt.block_number is not None
    finally:
        t.close()
