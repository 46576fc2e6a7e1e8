"""DSSE envelopes, Ed25519 signing, the key set, and verification of attestation envelopes."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime, timedelta

import pytest

from por.core.attestation import PAYLOAD_TYPE, Attestation
from por.core.canonical import canonical_bytes
from por.core.dsse import (
    Ed25519Signer,
    Envelope,
    KeyEntry,
    KeySet,
    Signature,
    Signer,
    add_signature,
    ed25519_verify,
    keyid_for,
    pae,
    sign_envelope,
    verify_envelope,
)
from por.core.verify import (
    FutureAttestationError,
    open_attestation_envelope,
    verify_attestation_envelope,
)
from por.errors import FormatError, InputError, SignatureError

T0 = datetime(2026, 11, 25, 3, 0, 5, tzinfo=UTC)


def signer(label: str) -> Ed25519Signer:
    return Ed25519Signer(hashlib.sha256(label.encode()).digest())


def keyset(*entries: tuple[Ed25519Signer, str]) -> KeySet:
    return KeySet(keys=tuple(KeyEntry.for_public_key(s.public_key_raw, role=r) for s, r in entries))


def test_pae_spec_example() -> None:
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )
    # lengths are bytes: a 2-byte character counts 2
    assert pae("\u00e9", b"") == b"DSSEv1 2 \xc3\xa9 0 "


def test_rfc8032_test_1() -> None:
    # RFC 8032 §7.1 TEST 1: empty message
    sk = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    s = Ed25519Signer(sk)
    assert s.public_key_raw.hex() == (
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    )
    sig = s.sign(b"")
    assert sig.hex() == (
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39"
        "701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    )
    ed25519_verify(s.public_key_raw, b"", sig, where="t")
    with pytest.raises(SignatureError):
        ed25519_verify(s.public_key_raw, b"x", sig, where="t")
    assert s.keyid == hashlib.sha256(s.public_key_raw).hexdigest() == keyid_for(s.public_key_raw)
    assert isinstance(s, Signer)
    assert sk.hex() not in repr(s)


def test_envelope_round_trip_and_json() -> None:
    a, b = signer("a"), signer("b")
    env = sign_envelope(b'{"x":"1"}', PAYLOAD_TYPE, [a, b])
    d = env.to_dict()
    assert set(d) == {"payload", "payloadType", "signatures"}
    assert d["signatures"][0]["keyid"] == a.keyid
    assert Envelope.from_dict(d) == env
    assert Envelope.from_json_bytes(env.to_json_bytes()) == env
    assert env.to_json_bytes() == canonical_bytes(d)
    got = verify_envelope(
        env, keyset((a, "issuer"), (b, "issuer")), at=T0, threshold=2, payload_type=PAYLOAD_TYPE
    )
    assert got.payload == b'{"x":"1"}' and set(got.keyids) == {a.keyid, b.keyid}
    assert got.roles == ("issuer", "issuer")


def test_keyset_round_trip() -> None:
    ks = KeySet(
        keys=(
            KeyEntry.for_public_key(
                signer("a").public_key_raw,
                role="issuer",
                not_before=T0,
                not_after=T0 + timedelta(days=365),
            ),
            KeyEntry.for_public_key(signer("b").public_key_raw, role="auditor"),
        )
    )
    d = ks.to_dict()
    assert d["keys"][0]["not_before"] == "2026-11-25T03:00:05Z"
    assert d["keys"][1]["not_after"] is None
    assert KeySet.from_dict(d) == ks
    assert KeySet.from_json_bytes(ks.to_json_bytes()) == ks


def test_keyset_errors_name_the_field() -> None:
    d = keyset((signer("a"), "issuer")).to_dict()
    d["keys"][0]["public_key"] = "00" * 31
    with pytest.raises(FormatError, match=r"keys\.json\.keys\[0\]\.public_key"):
        KeySet.from_dict(d, where="keys.json")
    d = keyset((signer("a"), "issuer")).to_dict()
    d["keys"][0]["not_after"] = "2026-01-01T00:00:00+08:00"
    with pytest.raises(FormatError, match=r"keys\[0\]\.not_after"):
        KeySet.from_dict(d)
    d = keyset((signer("a"), "issuer")).to_dict()
    d["keys"][0]["not_before"], d["keys"][0]["not_after"] = (
        "2027-01-01T00:00:00Z",
        "2026-01-01T00:00:00Z",
    )
    with pytest.raises(FormatError, match="not_after is before not_before"):
        KeySet.from_dict(d)


def test_merge_keysets() -> None:
    a, b = keyset((signer("a"), "issuer")), keyset((signer("b"), "auditor"))
    merged = a.merge(b).merge(a)
    assert [k.role for k in merged.keys] == ["issuer", "auditor"]
    conflicting = keyset((signer("a"), "auditor"))
    with pytest.raises(FormatError, match="different role"):
        a.merge(conflicting)


def test_add_signature_cosign() -> None:
    issuer, auditor = signer("issuer"), signer("auditor")
    ks = keyset((issuer, "issuer"), (auditor, "auditor"))
    env = sign_envelope(b"{}", PAYLOAD_TYPE, [issuer])
    cosigned = add_signature(env, auditor)
    assert cosigned.payload == env.payload and len(cosigned.signatures) == 2
    auditors = frozenset({"auditor"})
    verify_envelope(cosigned, ks, at=T0, payload_type=PAYLOAD_TYPE, roles=auditors)
    with pytest.raises(SignatureError):
        verify_envelope(env, ks, at=T0, payload_type=PAYLOAD_TYPE, roles=auditors)
    with pytest.raises(InputError):
        add_signature(cosigned, auditor)


def test_key_from_envelope_is_never_used() -> None:
    # Attack: the envelope names a trusted keyid but is signed by the attacker's key;
    # a verifier that used anything but the key set's public key would accept it.
    #   envelope: {keyid: <trusted>, sig: Sign(attacker, PAE)}
    trusted, attacker = signer("trusted"), signer("attacker")
    env = Envelope(
        payload=b"{}",
        payload_type=PAYLOAD_TYPE,
        signatures=(Signature(keyid=trusted.keyid, sig=attacker.sign(pae(PAYLOAD_TYPE, b"{}"))),),
    )
    with pytest.raises(SignatureError, match="does not verify"):
        verify_envelope(env, keyset((trusted, "issuer")), at=T0, payload_type=PAYLOAD_TYPE)


def test_duplicate_signatures_count_once() -> None:
    # Attack: one key's signature repeated to meet a 2-of-n threshold.
    #   signatures: [sig_A, sig_A]  threshold 2  ->  must still count 1
    a, b = signer("a"), signer("b")
    env = sign_envelope(b"{}", PAYLOAD_TYPE, [a])
    doubled = Envelope(
        payload=env.payload, payload_type=env.payload_type, signatures=env.signatures * 2
    )
    with pytest.raises(SignatureError, match="1 valid signature") as e:
        verify_envelope(
            doubled,
            keyset((a, "issuer"), (b, "issuer")),
            at=T0,
            threshold=2,
            payload_type=PAYLOAD_TYPE,
        )
    assert e.value.computed == 1


def test_expired_key_message() -> None:
    a = signer("a")
    ks = KeySet(
        keys=(
            KeyEntry.for_public_key(
                a.public_key_raw, role="issuer", not_after=T0 - timedelta(days=1)
            ),
        )
    )
    env = sign_envelope(b"{}", PAYLOAD_TYPE, [a])
    with pytest.raises(
        SignatureError,
        match=r"not valid at 2026-11-25T03:00:05Z: expired "
        r"2026-11-24T03:00:05Z",
    ):
        verify_envelope(env, ks, at=T0, payload_type=PAYLOAD_TYPE)
    # the window is inclusive
    verify_envelope(env, ks, at=T0 - timedelta(days=1), payload_type=PAYLOAD_TYPE)


def test_verifier_names_the_payload_type() -> None:
    """Generic DSSE: the verifier says which payloadType it expects, the envelope must match."""
    a = signer("generic")
    env = sign_envelope(b"hello world", "http://example.com/HelloWorld", [a])
    ks = keyset((a, "issuer"))
    got = verify_envelope(env, ks, at=T0, payload_type="http://example.com/HelloWorld")
    assert got.payload == b"hello world"
    with pytest.raises(SignatureError, match="wrong payloadType"):
        verify_envelope(env, ks, at=T0, payload_type=PAYLOAD_TYPE)


def test_naive_time_refused() -> None:
    a = signer("a")
    with pytest.raises(InputError, match="timezone-aware"):
        verify_envelope(
            sign_envelope(b"{}", PAYLOAD_TYPE, [a]),
            keyset((a, "issuer")),
            at=datetime(2026, 1, 1),
            payload_type=PAYLOAD_TYPE,
        )  # naive on purpose


def test_pem_round_trip_and_wrong_passphrase() -> None:
    a = signer("pem")
    pem = a.to_pem("correct horse battery", random_bytes=os.urandom)
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    b = Ed25519Signer.from_pem(pem, "correct horse battery")
    assert b.public_key_raw == a.public_key_raw
    assert b.sign(b"m") == a.sign(b"m")
    with pytest.raises(InputError, match="wrong passphrase"):
        Ed25519Signer.from_pem(pem, "wrong", where="k.pem")
    with pytest.raises(InputError, match="empty passphrase"):
        a.to_pem("", random_bytes=os.urandom)
    with pytest.raises(InputError):
        Ed25519Signer(b"short")


@pytest.mark.parametrize(
    ("weak", "why"),
    [
        ("hunter2", "at least 16"),
        ("passwordpassword", "repeats itself"),
        ("aaaaaaaaaaaaaaaaaaaa", "repeats itself"),
        ("abcdefghijklmnopqrs", "consecutive"),
    ],
)
def test_weak_passphrases_are_refused_for_key_files(weak: str, why: str) -> None:
    from por.core.dsse import passphrase_problem

    a = signer("weak")
    assert why in (passphrase_problem(weak) or "")
    assert passphrase_problem("correct horse battery staple") is None
    with pytest.raises(InputError, match="weak passphrase"):
        a.to_pem(weak, random_bytes=os.urandom)


# --- attestation envelopes --------------------------------------------------------------------


def attestation_dict(
    *,
    sequence: int = 1,
    issued_at: str = "2026-11-25T03:00:05Z",
    previous: dict[str, object] | None = None,
) -> dict[str, object]:
    return {
        "format": "por-attestation-v1",
        "sequence": sequence,
        "issued_at": issued_at,
        "as_of": "2026-11-25T03:00:00Z",
        "token": {"symbol": "CNHC", "decimals": 6, "currency": "CNH"},
        "chains": [
            {
                "chain_id": "eip155:1",
                "token": "eip155:1:0x" + "ab" * 20,
                "block": {"number": 123, "hash": "cd" * 32, "time": "2026-11-25T02:59:48Z"},
                "total_supply": "1500",
                "excluded": [
                    {"account": "eip155:1:0x" + "11" * 20, "balance": "500", "reason": "treasury"}
                ],
                "circulating_supply": "1000",
                "holders": 2,
            }
        ],
        "reserves": [
            {
                "custodian": "Bank",
                "account": "HK****1234",
                "asset_class": "cash",
                "instrument": None,
                "currency": "CNH",
                "amount": "1100",
                "market_value": "1100",
                "haircut_bps": 0,
                "eligible_value": "1100",
                "ineligible_reason": None,
                "statement": {
                    "format": "camt.053.001.08",
                    "id": "S1",
                    "as_of": "2026-11-24T16:00:00Z",
                    "sha256": "ef" * 32,
                },
            }
        ],
        "liabilities": {"root": "01" * 32, "total": "1000", "leaf_count": 2},
        "totals": {
            "eligible_reserves": "1100",
            "circulating_supply": "1000",
            "ratio": "1.100000",
            "status": "FULLY_BACKED",
            "reasons": [],
        },
        "previous": previous,
    }


def test_verify_attestation_envelope_uses_issued_at() -> None:
    a = signer("issuer")
    att = Attestation.from_dict(attestation_dict())
    env = sign_envelope(att.to_bytes(), PAYLOAD_TYPE, [a])
    # the key expired after issued_at: still valid for this attestation, checked much later
    ks = KeySet(
        keys=(
            KeyEntry.for_public_key(
                a.public_key_raw, role="issuer", not_after=T0 + timedelta(days=1)
            ),
        )
    )
    now = T0 + timedelta(days=400)
    assert verify_attestation_envelope(env, ks, now=now) == att
    opened = open_attestation_envelope(env, ks, now=now)
    assert opened.envelope.keyids == (a.keyid,)
    # a key whose window starts after issued_at does not vouch for it
    late = KeySet(
        keys=(
            KeyEntry.for_public_key(
                a.public_key_raw, role="issuer", not_before=T0 + timedelta(seconds=1)
            ),
        )
    )
    with pytest.raises(SignatureError, match="not yet valid"):
        verify_attestation_envelope(env, late, now=now)


def test_attestation_from_the_future_is_refused() -> None:
    # Attack: a stolen key signs an attestation dated after its own expiry would be
    # noticed... by dating it in the future, inside the key's window. Refuse issued_at
    # beyond now + skew before verifying anything.
    a = signer("issuer")
    att = Attestation.from_dict(attestation_dict(issued_at="2027-01-01T00:00:00Z"))
    env = sign_envelope(att.to_bytes(), PAYLOAD_TYPE, [a])
    with pytest.raises(FutureAttestationError, match="in the future"):
        verify_attestation_envelope(env, keyset((a, "issuer")), now=T0)
    assert (
        verify_attestation_envelope(
            env, keyset((a, "issuer")), now=datetime(2026, 12, 31, 23, 56, tzinfo=UTC)
        )
        == att
    )


def test_tampered_attestation_payload_is_refused() -> None:
    a = signer("issuer")
    att = Attestation.from_dict(attestation_dict())
    env = sign_envelope(att.to_bytes(), PAYLOAD_TYPE, [a])
    tampered = Envelope(
        payload=env.payload.replace(b'"1100"', b'"9100"', 1),
        payload_type=env.payload_type,
        signatures=env.signatures,
    )
    with pytest.raises(SignatureError, match="does not verify"):
        verify_attestation_envelope(tampered, keyset((a, "issuer")), now=T0)
