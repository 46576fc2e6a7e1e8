"""`por init`: a commented configuration and a fresh, encrypted issuer key.

Writes files (atomically, never over existing ones) and reads the passphrase from the
environment variable the configuration names, or from a prompt.
"""

from __future__ import annotations

import getpass
import os
import secrets
from pathlib import Path

from por.errors import ConfigError, InputError

CONFIG_TEMPLATE = """\
# por configuration. Secrets are never written here: this file names the environment
# variables that hold them. Paths are relative to this file.

[service]
data_dir = "data"                  # database (SQLite default), tree files, raw statements
attestations_dir = "attestations"  # one signed envelope per sequence + the log checkpoint
database_url = ""                  # empty: SQLite; or postgresql+psycopg://user@host/db
origin = "por.example/cnhc"        # the transparency log's origin line (C2SP checkpoint)
listen = "127.0.0.1:8000"
admin_token_env = "POR_ADMIN_TOKEN"
api_workers = 0                    # API server processes (SO_REUSEPORT); 0: one per core
tree_workers = 0                   # threads hashing the liabilities tree; 0: every core

[schedule]
interval_s = 3600                  # or: cron = "0 * * * *"
misfire_grace_s = 300
coalesce = true

[token]
symbol = "CNHC"
decimals = 6
currency = "CNH"

[signing]
key_file = "keys/issuer.key.pem"
passphrase_env = "POR_KEY_PASSPHRASE"
keys_file = "keys/issuer.keys.json"

# One table per chain. kind = "evm" | "solana" | "fake". See docs/configuration.md.
# [[chains]]
# kind = "evm"
# chain_id = "eip155:1"
# rpc_urls = ["https://eth.example/rpc", "https://eth2.example/rpc"]
# quorum = 2
# token = "0x..."
# treasury = ["0x..."]
# bridge_escrow = ["0x..."]

# One table per custodian source. kind = "files" | "api".
# [[custodians]]
# kind = "files"
# name = "Harbour Trust Bank (Hong Kong) Limited"
# paths = ["statements/*.xml"]
# max_age_s = 172800

[policy]
"""


def _passphrase(env: str) -> str:
    value = os.environ.get(env)
    if value:
        return value
    if not os.isatty(0):
        raise ConfigError(f"set {env} to the key passphrase (no terminal to prompt on)")
    first = getpass.getpass("passphrase for the new issuer key: ")
    if first != getpass.getpass("again: "):
        raise InputError("the passphrases differ")
    return first


def init_directory(directory: Path) -> list[Path]:
    from por.core.dsse import Ed25519Signer, KeyEntry, KeySet
    from por.fileio import write_atomic

    config = directory / "por.toml"
    key = directory / "keys" / "issuer.key.pem"
    keys = directory / "keys" / "issuer.keys.json"
    for p in (config, key, keys):
        if p.exists():
            raise InputError("already exists; refusing to overwrite", where=str(p))
    passphrase = _passphrase("POR_KEY_PASSPHRASE")
    signer = Ed25519Signer(secrets.token_bytes(32))
    key.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(key, signer.to_pem(passphrase, random_bytes=secrets.token_bytes))
    os.chmod(key, 0o600)
    entry = KeyEntry.for_public_key(signer.public_key_raw, role="issuer")
    write_atomic(keys, KeySet(keys=(entry,)).to_json_bytes())
    write_atomic(config, CONFIG_TEMPLATE.encode())
    return [config, key, keys]
