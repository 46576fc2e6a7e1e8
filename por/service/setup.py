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
# por configuration, as written by `por init`.
#
# Fill in the sources below: every table that starts with `# [[` is an example to
# uncomment and complete. `por config check --config por.toml` validates the file and
# says what each source would read, without signing anything; `por attest` and `por run`
# refuse a file with no chain or no custodian.
#
# Secrets are never written here: this file names the environment variables that hold
# them. Relative paths are relative to this file.

[service]
data_dir = "data"                  # database (SQLite default), tree files, raw statements
attestations_dir = "attestations"  # one signed envelope per sequence + the log checkpoint
database_url = ""                  # empty: SQLite; or postgresql+psycopg://user@host/db
                                   # (then run `por db upgrade --config por.toml` once)
origin = "por.example/cnhc"        # the transparency log's origin line (C2SP checkpoint)
listen = "127.0.0.1:8000"
admin_token_env = "POR_ADMIN_TOKEN"
api_workers = 0                    # API server processes (SO_REUSEPORT); 0: one per core
tree_workers = 0                   # threads hashing the liabilities tree; 0: every core
tree_engine = "local"              # or "dask": build the tree on a Dask cluster ([dask] below)
state = "files"                    # run state between runs; "database": in the shared
                                   # database and object store, so any instance can lead

# Several instances on one PostgreSQL (stateless API replicas, leader failover) keep the
# sum trees in an S3-compatible object store, credentials in AWS_ACCESS_KEY_ID /
# AWS_SECRET_ACCESS_KEY (docs/storage.md):
#   [artifacts]
#   kind = "s3"
#   endpoint = "https://minio.internal:9000"   # empty: AWS
#   bucket = "cnhc-por"

[api]
trusted_proxies = []               # reverse proxies whose X-Forwarded-For is believed
rate_limit_backend = "memory"      # or "redis" + rate_limit_redis_url: shared by replicas
max_expensive_requests = 8         # tree loads, history pages, reports at once (then 503)
header_timeout_s = 10              # request line + headers must arrive within this
idle_timeout_s = 5                 # keep-alive connections idle longer are closed

[schedule]
interval_s = 3600                  # or: cron = "0 * * * *" (UTC)
misfire_grace_s = 300
coalesce = true

[token]
symbol = "CNHC"
decimals = 6
currency = "CNH"

[signing]
keys_file = "keys/issuer.keys.json"      # the published key set (served at /v1/keys)
key_file = "keys/issuer.key.pem"         # the issuer key: encrypted PKCS#8 PEM ...
passphrase_env = "POR_KEY_PASSPHRASE"    # ... and the variable holding its passphrase

# Beyond one machine's memory (10^8 holders and more; pip install 'por[dask]'), set
# tree_engine = "dask" above and point it at a cluster (docs/scaling.md):
# [dask]
# scheduler = "tls://dask-scheduler.internal:8786"  # empty: a local cluster of n_workers
# tls_ca_file = "tls/ca.pem"                         # TLS to the scheduler and workers
# tls_cert_file = "tls/por.pem"
# tls_key_file = "tls/por.key"
# n_workers = 2                                      # local cluster only
# memory_limit = "4GiB"                              # per local worker; beyond it, spill

# A licensed issuer keeps its keys in an HSM instead (PKCS#11). Remove `key_file` above,
# create the key in the token (`por keys hsm-generate --config por.toml --label issuer`) and add:
# [signing.pkcs11]
# module = "/usr/lib/softhsm/libsofthsm2.so"   # your HSM vendor's PKCS#11 library
# token_label = "por"
# pin_env = "POR_HSM_PIN"                      # the variable holding the user PIN
# key_label = "issuer"                         # the Ed25519 key (CKM_EDDSA)

[alerts]
stale_after_intervals = 3          # alert when the latest attestation is older than 3 intervals
publication_lag_blocks = 20        # alert when a publication has not landed after 20 blocks

# Each webhook receives every alert as JSON, signed with HMAC-SHA256 of the body
# (header X-Por-Signature: sha256=<hex>), retried with backoff, kept in the database
# when it never arrives.
# [[alerts.webhooks]]
# url = "https://alerts.example/por"
# secret_env = "POR_WEBHOOK_SECRET"

# --- chains: one table per chain -------------------------------------------------------

# An EVM chain read through several RPC endpoints that must agree (a quorum).
# [[chains]]
# kind = "evm"
# chain_id = "eip155:1"
# rpc_urls = ["https://rpc-a.example/eth", "https://rpc-b.example/eth", "https://rpc-c.example/eth"]
# quorum = 2                       # endpoints that must agree (default: a majority)
# token = "0x0000000000000000000000000000000000000000"   # the ERC-20 contract
# start_block = 19000000           # the block the token was deployed in (required)
# treasury = []                    # unissued inventory, not circulating
# bridge_escrow = []               # tokens locked for another chain, counted there
# # Publishing to a ReserveOracle on this chain (delete these lines to only read):
# oracle = "0x0000000000000000000000000000000000000000"
# publisher_key_env = "POR_PUBLISHER_KEY_ETH"          # pays for the transaction
# attestor_key_envs = ["POR_ATTESTOR_KEY_ETH"]         # signs the report (hex keys) ...
# # attestor_hsm_labels = ["attestor-eth"]             # ... or secp256k1 keys in the HSM
# confirmations = 3
# heartbeat_s = 172800             # the mint guard's heartbeat on this chain

# Per-chain mint budgets (docs/budgets.md): how the headroom above liabilities is shared.
# [allocation]
# weights = "circulating"          # or { "eip155:1" = 3, "eip155:56" = 1 }
# headroom_share_bps = 10000
# cover_excluded = true

# What `por oracle deploy` deploys; attestor keys are held apart (docs/evm.md).
# [oracle]
# attestors = ["0x...", "0x...", "0x..."]
# threshold = 2
# owner = "0x..."                  # a multisig
# deployer_key_env = "POR_DEPLOYER_KEY"

# A Solana SPL token, read at `finalized` commitment.
# [[chains]]
# kind = "solana"
# chain_id = "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"   # mainnet-beta genesis prefix
# rpc_url = "https://solana-rpc.example"
# mint = "11111111111111111111111111111111"
# treasury = []
# memo_keypair = "keys/solana-memo.json"   # publish each digest in a memo (optional)

# --- custodians: one table per source --------------------------------------------------

# Statement files delivered by the bank: ISO 20022 camt.053/camt.052 (XML), SWIFT MT940,
# and holdings of securities (CSV or JSON with price, maturity and haircut).
# [[custodians]]
# kind = "files"
# name = "harbour-trust"
# custodian = "Harbour Trust Bank (Hong Kong) Limited"
# paths = ["statements/*.xml", "statements/*.sta", "holdings/*.csv"]
# max_age_s = 172800               # older statements make the attestation DEGRADED

# A custodian API whose responses are signed with the custodian's Ed25519 key.
# [[custodians]]
# kind = "api"
# name = "custodian-api"
# base_url = "https://custodian.example/por/v1"
# public_key = "0000000000000000000000000000000000000000000000000000000000000000"
# max_age_s = 172800

# --- off-chain liabilities and the flow reconciliation (docs/ledger.md) ----------------

# The issuer's books: pending redemptions and subscriptions, frozen balances taken off a
# chain, supply on chains not read. Every account becomes a ledger:<issuer>:<id> leaf.
# [[ledgers]]
# kind = "files"
# name = "books"
# issuer = "kdm"
# paths = ["ledger/*.json"]
# public_key = "0000000000000000000000000000000000000000000000000000000000000000"  # FILE.sig

# Every mint and burn matched with a credit or debit of the statements.
# [reconciliation]
# start = "2026-01-01T00:00:00Z"   # flows before this are not reconciled
# window_s = 86400                 # amount matches within a day of the booking day
# max_age_s = 172800               # unmatched after 48 h: DEGRADED and an alert
# accounts = ["8870-310-1009999"]  # the collection accounts (default: every account)
# ignore = ["INTEREST", "FEE"]

[policy]
# Eligibility and haircuts (docs/custodians.md); the defaults follow the HKMA guideline.
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
