"""Key rotation: attestations on both sides of the handover verify against the one
published key set, and checkpoints carry both keys' signatures while both are configured."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from por.cli.main import main
from por.core.dsse import Envelope, KeySet
from por.core.tlog import verify_checkpoint
from por.core.verify import verify_attestation_envelope
from por.errors import InputError, SignatureError
from por.service.config import load_config
from tests.service.conftest import World


class StepClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def test_rotation_keeps_every_attestation_verifying(world: World) -> None:
    from por.service.wiring import build_service

    now = datetime.now(UTC).replace(microsecond=0)
    at = now + timedelta(hours=1)
    clock = StepClock(now)
    svc = build_service(load_config(world.config), publish=False, clock=clock)
    try:
        svc.attest()  # 1: before the rotation was even planned
    finally:
        svc.close()

    assert (
        main(
            [
                "keys",
                "rotate",
                "--config",
                str(world.config),
                "--at",
                at.isoformat().replace("+00:00", "Z"),
            ]
        )
        == 0
    )
    cfg = load_config(world.config)
    assert cfg.signing.next_key_file is not None and cfg.signing.next_key_file.is_file()
    keys = KeySet.from_json_bytes(cfg.signing.keys_file.read_bytes())
    old, new = keys.keys
    assert old.not_after == at and new.not_before == at and new.role == "issuer"

    svc = build_service(cfg, publish=False, clock=clock)  # the restart before T
    try:
        clock.now = at - timedelta(minutes=5)
        svc.attest()  # 2: the old key signs
        clock.now = at + timedelta(minutes=5)
        svc.attest()  # 3: the new key signs
        note = (cfg.service.attestations_dir / "checkpoint.txt").read_text()
    finally:
        svc.close()

    signed_by = {}
    for seq in (1, 2, 3):
        env = Envelope.from_json_bytes(
            (cfg.service.attestations_dir / f"{seq:08d}.dsse.json").read_bytes()
        )
        att = verify_attestation_envelope(env, keys, now=at + timedelta(days=1))
        assert att.sequence == seq
        signed_by[seq] = {s.keyid for s in env.signatures}
    assert signed_by == {1: {old.keyid}, 2: {old.keyid}, 3: {new.keyid}}
    # an attestation the old key signed after its not_after would be refused
    with pytest.raises(SignatureError):
        env3 = Envelope.from_json_bytes(
            (cfg.service.attestations_dir / "00000003.dsse.json").read_bytes()
        )
        bad = KeySet(keys=(old,))
        verify_attestation_envelope(env3, bad, now=at + timedelta(days=1))
    # witnesses holding either key keep verifying the log's checkpoints
    for entry in (old, new):
        verify_checkpoint(note, key_name=cfg.service.origin, public_key_raw=entry.public_key)

    assert main(["keys", "rotate", "--config", str(world.config), "--finish"]) == 0
    cfg = load_config(world.config)
    assert cfg.signing.next_key_file is None and cfg.signing.key_file is not None
    assert "issuer-" in cfg.signing.key_file.name


def test_rotation_in_the_past_is_refused(world: World) -> None:
    from por.service.rotation import rotate

    with pytest.raises(InputError, match="in the past"):
        rotate(world.config, at=datetime(2020, 1, 1, tzinfo=UTC))
    assert load_config(world.config).signing.next_key_file is None


def test_rotation_refuses_a_weak_passphrase(
    world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import os

    from por.core.dsse import Ed25519Signer
    from por.service.rotation import rotate

    weak = "short"
    key = Ed25519Signer(os.urandom(32))
    # an old key file encrypted under a weak passphrase (made before the rule): the new key
    # would inherit it, so the rotation stops before writing anything
    from Crypto.PublicKey import ECC  # noqa: F401

    pem = key._key.export_key(
        format="PEM",
        passphrase=weak,
        protection="scryptAndAES256-CBC",
        prot_params={"iteration_count": 2**14},
    )
    cfg = load_config(world.config)
    assert cfg.signing.key_file is not None
    cfg.signing.key_file.write_text(pem)
    from por.core.dsse import KeyEntry

    cfg.signing.keys_file.write_bytes(
        KeySet(keys=(KeyEntry.for_public_key(key.public_key_raw, role="issuer"),)).to_json_bytes()
    )
    monkeypatch.setenv("POR_KEY_PASSPHRASE", weak)
    before = world.config.read_text()
    with pytest.raises(InputError, match="weak passphrase"):
        rotate(world.config, at=datetime.now(UTC) + timedelta(hours=1))
    assert world.config.read_text() == before
    assert not list(cfg.signing.key_file.parent.glob("issuer-*.key.pem"))
