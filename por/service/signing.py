"""The issuer's signing keys as the service uses them: a key ring over a file or an HSM.

`load_keyring(cfg)` reads the published key set and opens the configured key(s):
`[signing] key_file` (+ `next_key_file`), encrypted PEM with the passphrase from the
variable `passphrase_env`, or `[signing.pkcs11] key_label` (+ `next_key_label`) in an
HSM with the PIN from `pin_env`. Every key must be an issuer key of the key set.

Across a rotation (`por keys rotate`) both keys are configured: an attestation is signed
by each key whose key-set window covers its `issued_at` (the old one until its
`not_after`, the new one from its `not_before`), so every attestation verifies against
the published key set; every checkpoint carries a signature line of each configured key,
so a witness that knows either key keeps following the log (docs/operations.md).
Reads the key files and the environment; never logs a secret.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from por.core.dsse import Ed25519Signer, KeyEntry, KeySet, Signer
from por.core.times import format_time
from por.errors import ConfigError, SigningError
from por.service.config import Config
from por.service.hsm import HsmToken
from por.service.logs import register_secret


def _env(name: str, where: str, what: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise ConfigError(f"set {name} to {what}", where=where)
    register_secret(value)
    return value


def read_keyset(cfg: Config) -> KeySet:
    path = cfg.signing.keys_file
    try:
        return KeySet.from_json_bytes(path.read_bytes(), where=str(path))
    except OSError as e:
        raise ConfigError(f"cannot read the key set: {e.strerror}", where=str(path)) from e


def read_file_key(path: Path, passphrase: str) -> Ed25519Signer:
    try:
        pem = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read the issuer key: {e.strerror}", where=str(path)) from e
    return Ed25519Signer.from_pem(pem, passphrase, where=str(path))


def open_token(cfg: Config) -> HsmToken | None:
    """The configured HSM token, logged in (None when no [signing.pkcs11] table)."""
    hsm = cfg.signing.pkcs11
    if hsm is None:
        return None
    pin = _env(hsm.pin_env, f"{cfg.path}:signing.pkcs11.pin_env", "the HSM token's user PIN")
    return HsmToken(module=hsm.module, token_label=hsm.token_label, pin=pin).open()


@dataclass(slots=True)
class KeyRing:
    """The configured issuer keys (current first, then the rotation's next) and the key set."""

    keyset: KeySet
    signers: tuple[Signer, ...]
    token: HsmToken | None = None
    entries: dict[str, KeyEntry] = field(default_factory=dict)

    def signers_at(self, at: datetime) -> list[Signer]:
        """The keys whose window covers `at` (an attestation's issued_at)."""
        out = [s for s in self.signers if self.entries[s.keyid].window_problem(at) is None]
        if not out:
            windows = "; ".join(
                f"{s.keyid[:16]}…: {self.entries[s.keyid].window_problem(at)}" for s in self.signers
            )
            raise SigningError(
                f"no configured issuer key is valid at {format_time(at)} ({windows}); "
                "finish or redo the key rotation",
                where="signing",
            )
        return out

    def close(self) -> None:
        if self.token is not None:
            self.token.close()


def load_keyring(cfg: Config) -> KeyRing:
    keyset = read_keyset(cfg)
    token = open_token(cfg)
    signers: list[Signer] = []
    try:
        hsm = cfg.signing.pkcs11
        if hsm is not None and hsm.key_label is not None:
            assert token is not None
            for label in (hsm.key_label, hsm.next_key_label):
                if label is not None:
                    signers.append(token.ed25519_signer(label))
        else:
            passphrase = _env(
                cfg.signing.passphrase_env,
                f"{cfg.path}:signing.passphrase_env",
                "the issuer key's passphrase",
            )
            for path in (cfg.signing.key_file, cfg.signing.next_key_file):
                if path is not None:
                    signers.append(read_file_key(path, passphrase))
        entries = _issuer_entries(keyset, signers, where=str(cfg.signing.keys_file))
    except BaseException:
        if token is not None:
            token.close()
        raise
    return KeyRing(keyset=keyset, signers=tuple(signers), token=token, entries=entries)


def _issuer_entries(
    keyset: KeySet, signers: Sequence[Signer], *, where: str
) -> dict[str, KeyEntry]:
    out: dict[str, KeyEntry] = {}
    for s in signers:
        entry = keyset.get(s.keyid)
        if entry is None:
            raise ConfigError(
                f"the issuer key {s.keyid[:16]}… is not in the published key set", where=where
            )
        if entry.role != "issuer":
            raise ConfigError(
                f"key {s.keyid[:16]}… has role {entry.role!r} in the key set, not issuer",
                where=where,
            )
        out[s.keyid] = entry
    return out
