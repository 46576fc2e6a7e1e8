"""`por keys rotate`: hand the issuer key over to a new one without breaking a verifier.

    por keys rotate --config por.toml --at 2026-07-01T00:00:00Z [--label issuer-2026]

1. A new key is made where the current one lives: an encrypted PEM beside `key_file`
   (passphrase from the same variable, weak ones refused), or a key pair in the HSM token
   (`--label`, never extractable).
2. The key set gets the old key's `not_after` = T and the new key with `not_before` = T
   (both issuer keys), written atomically over `keys_file`: every attestation issued
   before T verifies with the old key, every one from T on with the new key, and both
   verify against the one published set.
3. `next_key_file` / `next_key_label` is added to the configuration, so the service loads
   both keys: each run signs with the key(s) valid at its issued_at, and every checkpoint
   carries a signature line of both keys (witnesses holding either key keep cosigning).

The running service picks the new key set and key up when it restarts (do it before T).
Once witnesses and monitors have the new checkpoint key, `--finish` makes the new key the
only one in the configuration (the old key stays in the key set, closed by its not_after,
so old attestations keep verifying). docs/operations.md has the whole procedure.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from por.core.dsse import Ed25519Signer, KeyEntry, KeySet, Signer
from por.core.times import format_time
from por.errors import ConfigError, InputError
from por.fileio import write_atomic
from por.service.config import Config, load_config, parse_config
from por.service.signing import load_keyring, open_token, read_keyset


@dataclass(frozen=True, slots=True)
class Rotation:
    old_keyid: str
    new_keyid: str
    at: datetime
    new_key: str  # file path or HSM label


def _keyset_json(keyset: KeySet) -> bytes:
    import json

    return (json.dumps(keyset.to_dict(), indent=2) + "\n").encode()


def _add_line(text: str, table: str, line: str, *, where: Path) -> str:
    """Insert `line` right after the `[table]` header (TOML keeps the rest as it was)."""
    pattern = re.compile(rf"^\[{re.escape(table)}\][ \t]*(#.*)?$", re.M)
    m = pattern.search(text)
    if m is None:
        raise ConfigError(
            f"no [{table}] table to add {line.split('=', maxsplit=1)[0].strip()} to",
            where=str(where),
        )
    return text[: m.end()] + "\n" + line + text[m.end() :]


def _checked(text: str, path: Path) -> Config:
    import tomllib

    return parse_config(tomllib.loads(text), path=path)


def rotate(
    config: Path, *, at: datetime, label: str | None = None, now: datetime | None = None
) -> Rotation:
    now = now or datetime.now(UTC)
    if at < now:
        raise InputError(
            f"--at {format_time(at)} is in the past: attestations issued since would no longer "
            "verify with the old key",
            where="--at",
        )
    cfg = load_config(config)
    sig = cfg.signing
    if sig.next_key_file is not None or (sig.pkcs11 is not None and sig.pkcs11.next_key_label):
        raise InputError(
            "a rotation is already under way (next_key_* is set): finish it first with "
            "`por keys rotate --finish`",
            where=str(config),
        )
    ring = load_keyring(cfg)  # proves the current key opens (passphrase / PIN right)
    try:
        old = ring.signers[0]
        keyset = ring.keyset
        old_entry = keyset.get(old.keyid)
        assert old_entry is not None
        if old_entry.not_after is not None and old_entry.not_after < at:
            raise InputError(
                f"the current key expires at {format_time(old_entry.not_after)}, before --at",
                where=str(sig.keys_file),
            )
        text = config.read_text()
        stamp = at.strftime("%Y%m%dT%H%M%SZ")
        new_signer: Signer
        if sig.pkcs11 is not None and sig.pkcs11.key_label is not None:
            new_label = label or f"{sig.pkcs11.key_label}-{stamp}"
            assert ring.token is not None
            new_signer = ring.token.generate_ed25519(new_label)
            new_text = _add_line(
                text, "signing.pkcs11", f'next_key_label = "{new_label}"', where=config
            )
            new_key = new_label
        else:
            assert sig.key_file is not None
            new_path = sig.key_file.with_name(f"issuer-{stamp}.key.pem")
            if new_path.exists():
                raise InputError("refusing to overwrite an existing file", where=str(new_path))
            passphrase = os.environ[sig.passphrase_env]  # load_keyring read it
            signer = Ed25519Signer(os.urandom(32))
            pem = signer.to_pem(passphrase, random_bytes=os.urandom)  # refuses weak ones
            rel = os.path.relpath(new_path, config.parent)
            new_text = _add_line(text, "signing", f'next_key_file = "{rel}"', where=config)
            _checked(new_text, config)  # before writing anything
            write_atomic(new_path, pem)
            os.chmod(new_path, 0o600)
            new_signer = signer
            new_key = str(new_path)
        _checked(new_text, config)
        entries = [
            KeyEntry(
                keyid=e.keyid,
                public_key=e.public_key,
                role=e.role,
                not_before=e.not_before,
                not_after=at if e.keyid == old.keyid else e.not_after,
            )
            for e in keyset.keys
        ]
        entries.append(
            KeyEntry.for_public_key(new_signer.public_key_raw, role="issuer", not_before=at)
        )
        write_atomic(sig.keys_file, _keyset_json(KeySet(keys=tuple(entries))))
        write_atomic(config, new_text.encode())
    finally:
        ring.close()
    return Rotation(old_keyid=old.keyid, new_keyid=new_signer.keyid, at=at, new_key=new_key)


def finish(config: Path) -> str:
    """Make the rotation's next key the only configured key; returns what it now is."""
    cfg = load_config(config)
    sig = cfg.signing
    text = config.read_text()
    if sig.pkcs11 is not None and sig.pkcs11.next_key_label:
        label = sig.pkcs11.next_key_label
        text = re.sub(r"^next_key_label[ \t]*=.*\n", "", text, count=1, flags=re.M)
        text = re.sub(r"^key_label[ \t]*=.*$", f'key_label = "{label}"', text, count=1, flags=re.M)
        now_key = label
    elif sig.next_key_file is not None:
        line = re.search(r"^next_key_file[ \t]*=[ \t]*(\".*\")", text, flags=re.M)
        if line is None:
            raise ConfigError("cannot find the next_key_file line", where=str(config))
        text = re.sub(r"^next_key_file[ \t]*=.*\n", "", text, count=1, flags=re.M)
        text = re.sub(
            r"^key_file[ \t]*=.*$", f"key_file = {line.group(1)}", text, count=1, flags=re.M
        )
        now_key = str(sig.next_key_file)
    else:
        raise InputError(
            "no rotation under way (no next_key_file / next_key_label)", where=str(config)
        )
    new_cfg = _checked(text, config)
    keyset = read_keyset(new_cfg)
    token = open_token(new_cfg)
    if token is not None:
        token.close()
    del keyset
    write_atomic(config, text.encode())
    return now_key
