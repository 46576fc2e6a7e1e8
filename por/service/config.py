"""The service's TOML configuration, parsed whole into typed, frozen models (pydantic v2).

Every table is a model with `extra="forbid"` and strict types, including each
`[[chains]]` kind (evm, solana, fake) and each `[[custodians]]` kind (files, api), chosen
by its `kind` key. These models are the one set of checks: the factories in
`por.service.wiring` receive checked models and check no key themselves.

Every problem found becomes one line of a single ConfigError naming the file, the table
and the dotted key (`por.toml:chains[1].rpc_urls: must be list, got str '...'`); all of a
file's problems are reported at once. Relative paths are resolved against the file's
folder while parsing. Secrets are never in the file: it names the environment variables
that hold them. Reads the file and nothing else (no environment, no network).

The commented example is `por.service.setup.CONFIG_TEMPLATE` (what `por init` writes);
the keys are listed in docs/configuration.md.
"""

import re
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from por.core.attestation import AllocationPolicy
from por.core.note import ALG_COSIGNATURE_V1, VerifierKey
from por.errors import ConfigError, FormatError, InputError

# --- value types --------------------------------------------------------------------------


def _config_path(value: object, info: ValidationInfo) -> Path:
    """A path string, relative to the configuration file's folder (context `base`)."""
    if not isinstance(value, str | Path):  # a Path only from code: defaults, tests
        raise PydanticCustomError("string_type", "Input should be a valid string")
    p = Path(value)
    base = (info.context or {}).get("base")
    return p if p.is_absolute() or base is None else base / p


def _hex_bytes(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if not isinstance(value, str):
        raise PydanticCustomError("string_type", "Input should be a valid string")
    try:
        return bytes.fromhex(value)
    except ValueError as e:
        raise ValueError("must be hex") from e


ConfigPath = Annotated[Path, PlainValidator(_config_path)]
HexBytes = Annotated[bytes, PlainValidator(_hex_bytes)]


class _Table(BaseModel):
    """A TOML table: no unknown keys, no type coercion ('60' is not 60), immutable."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, validate_default=True)


# --- [service] [schedule] [token] [signing] ------------------------------------------------


class ServiceConfig(_Table):
    # A demo or test world: only then may a chain be kind = "fake" (holders written in
    # this file). A real issuer never sets it.
    demo: bool = False
    data_dir: ConfigPath = Path("data")
    attestations_dir: ConfigPath = Path("attestations")
    database_url: str = ""  # empty: SQLite in data_dir (Config.database_url)
    origin: str = "por.local/attestations"
    listen: str = "127.0.0.1:8000"
    admin_token_env: str = "POR_ADMIN_TOKEN"  # noqa: S105 - a variable's name, not a secret
    # bearer token of the auditor routes (co-signature submission, raw statements)
    auditor_token_env: str = "POR_AUDITOR_TOKEN"  # noqa: S105 - a variable's name
    tree_workers: int = Field(default=0, ge=0)  # threads hashing the sum tree; 0: every core
    # where run state lives between runs (EVM index checkpoints, Solana flow index and memo
    # intents, raw statements): "files" under data_dir, or "database" (rows of the store's
    # database; raw statements in the object store when [artifacts] kind = "s3"), so a
    # leader can fail over to a machine with an empty disk
    state: Literal["files", "database"] = "files"
    # where the liabilities tree is built: this process, or a Dask cluster ([dask] table)
    tree_engine: Literal["local", "dask"] = "local"
    api_workers: int = Field(default=0, ge=0)  # API server processes; 0: one per core

    @field_validator("listen")
    @classmethod
    def _host_port(cls, listen: str) -> str:
        host, _, port = listen.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"must be HOST:PORT, got {listen!r}")
        return listen

    @property
    def listen_host(self) -> str:
        return self.listen.rpartition(":")[0]

    @property
    def listen_port(self) -> int:
        return int(self.listen.rpartition(":")[2])


class ApiConfig(_Table):
    """`[api]`: the API server under load and faults (docs/api.md "Limits")."""

    # reverse proxies whose X-Forwarded-For is believed (addresses or CIDR blocks); also
    # `por run/serve --trusted-proxy`. Empty: the TCP peer is the client.
    trusted_proxies: list[str] = []
    # proof lookups per client (a tree load costs 10 tokens)
    proof_rate_burst: int = Field(default=20, ge=1)
    proof_rate_per_s: float = Field(default=5.0, gt=0)
    # history pages and reports per client (1 token per 20 items asked for; a report 2)
    history_rate_burst: int = Field(default=30, ge=1)
    history_rate_per_s: float = Field(default=1.0, gt=0)
    history_max_limit: int = Field(default=100, ge=1, le=1000)
    rate_limit_backend: Literal["memory", "redis"] = "memory"
    rate_limit_redis_url: str = ""  # with rate_limit_backend = "redis"
    rate_limit_key_prefix: str = "por:rl:"
    # costly requests (tree loads, history pages, reports) at once per API process
    max_expensive_requests: int = Field(default=8, ge=1)
    # open connections per API process; more are closed at once (0: from the fd limit)
    max_connections: int = Field(default=0, ge=0)
    header_timeout_s: float = Field(default=10.0, gt=0)  # request line + headers
    idle_timeout_s: float = Field(default=5.0, gt=0)  # keep-alive between requests

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, items: list[str]) -> list[str]:
        import ipaddress

        for item in items:
            try:
                ipaddress.ip_network(item.strip(), strict=False)
            except ValueError:
                raise ValueError(f"not an IP address or CIDR block: {item!r}") from None
        return items

    @model_validator(mode="after")
    def _redis_url(self) -> Self:
        if self.rate_limit_backend == "redis" and not self.rate_limit_redis_url.startswith(
            ("redis://", "rediss://", "unix://")
        ):
            raise ValueError(
                "rate_limit_backend = 'redis' needs rate_limit_redis_url = 'redis://HOST:PORT/DB'"
            )
        return self


class ScheduleConfig(_Table):
    interval_s: int | None = Field(default=None, ge=1)
    cron: str | None = None  # 5-field crontab, UTC
    misfire_grace_s: int = 300
    coalesce: bool = True
    # a leader whose runs fail this many ticks in a row gives the lock up (scheduler.py)
    release_after_failures: int = Field(default=3, ge=1)
    # a run still going after this many seconds is cancelled, nothing recorded (run.py);
    # None: half the interval, at most 15 minutes (cron: 10 minutes)
    run_deadline_s: int | None = Field(default=None, ge=1)
    # the publication queue: a pending round is retried on the ticks after
    # publish_retry_base_s · 2^(n-1) s (n failures so far), at most publish_retry_max_s
    publish_retry_base_s: int = Field(default=60, ge=0)
    publish_retry_max_s: int = Field(default=3600, ge=0)
    # on SIGTERM a run in progress is cancelled; if it has not ended after this many
    # seconds (blocked in a read) the process leaves without it
    shutdown_grace_s: float = Field(default=5.0, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _hourly_by_default(cls, data: Any) -> Any:
        if (
            isinstance(data, Mapping)
            and data.get("interval_s") is None
            and data.get("cron") is None
        ):
            return {**data, "interval_s": 3600}
        return data

    @field_validator("cron")
    @classmethod
    def _five_fields(cls, cron: str | None) -> str | None:
        if cron is not None and len(cron.split()) != 5:
            raise ValueError(f"must have 5 fields (min hour day month weekday), got {cron!r}")
        return cron

    @model_validator(mode="after")
    def _one_trigger(self) -> Self:
        if self.interval_s is not None and self.cron is not None:
            raise ValueError("give either interval_s or cron, not both")
        if (
            self.run_deadline_s is not None
            and self.interval_s is not None
            and self.run_deadline_s >= self.interval_s
        ):
            raise ValueError(
                f"run_deadline_s ({self.run_deadline_s}) must be less than interval_s "
                f"({self.interval_s}): a run must end before the next one is due"
            )
        return self

    @property
    def deadline_s(self) -> int:
        """The run deadline in force: the configured one, else a default well under the
        interval (half of it, at most 900 s; 600 s under a cron schedule)."""
        if self.run_deadline_s is not None:
            return self.run_deadline_s
        if self.interval_s is not None:
            return max(1, min(900, self.interval_s // 2))
        return 600


class TokenConfig(_Table):
    symbol: str
    decimals: int = Field(ge=0, le=36)
    currency: str


class Pkcs11Config(_Table):
    """Keys inside an HSM, reached through its PKCS#11 library (por.service.hsm)."""

    module: ConfigPath  # the vendor's PKCS#11 library, e.g. /usr/lib/softhsm/libsofthsm2.so
    token_label: str
    pin_env: str = "POR_HSM_PIN"
    key_label: str | None = None  # the Ed25519 attestation/checkpoint key (CKM_EDDSA)
    next_key_label: str | None = None  # the key a rotation hands over to (`por keys rotate`)


class SigningConfig(_Table):
    """The issuer's Ed25519 key (it signs attestations and log checkpoints): a file or an HSM.

    `next_*` names the key a rotation hands over to: each run signs with the key whose
    window in the key set covers its `issued_at`; checkpoints carry both keys' signatures
    while both are configured, so witnesses can move from one to the other.
    """

    keys_file: ConfigPath
    key_file: ConfigPath | None = None
    next_key_file: ConfigPath | None = None
    passphrase_env: str = "POR_KEY_PASSPHRASE"  # noqa: S105 - a variable's name
    pkcs11: Pkcs11Config | None = None

    @model_validator(mode="after")
    def _one_key_store(self) -> Self:
        in_hsm = self.pkcs11 is not None and self.pkcs11.key_label is not None
        if in_hsm and self.key_file is not None:
            raise ValueError("give key_file or pkcs11.key_label, not both")
        if not in_hsm and self.key_file is None:
            raise ValueError("missing key 'key_file' (or [signing.pkcs11] key_label)")
        if self.next_key_file is not None and in_hsm:
            raise ValueError("next_key_file with an HSM key: use pkcs11.next_key_label")
        return self


# --- [[chains]] ---------------------------------------------------------------------------


class _Exclusions(_Table):
    """Accounts whose balance is not circulating supply, by reason (DESIGN §5)."""

    treasury: list[str] = []
    bridge_escrow: list[str] = []

    def exclusions(self) -> dict[str, str]:
        """account -> reason, as the readers take them."""
        out = dict.fromkeys(self.treasury, "treasury")
        out.update(dict.fromkeys(self.bridge_escrow, "bridge_escrow"))
        return out


class EvmChainConfig(_Exclusions):
    kind: Literal["evm"]
    chain_id: str  # eip155:<number>
    rpc_urls: list[str]  # several endpoints for a quorum
    quorum: int | None = None  # None: a majority of rpc_urls
    token: str  # the ERC-20 contract address
    # The block the token contract was deployed in. Required: reading every block from
    # genesis takes hours on a real chain, so it must be asked for (index_from_genesis).
    start_block: int | None = Field(default=None, ge=0)
    index_from_genesis: bool = False
    max_log_range: int = Field(default=10_000, ge=1)
    spot_checks: int = Field(default=16, ge=0)  # 0: no balanceOf spot checks
    # publishing to a ReserveOracle (only when `oracle` is set)
    oracle: str | None = None
    publisher_key_env: str | None = None
    attestor_key_envs: list[str] = []  # variables holding attestor keys (hex)
    attestor_hsm_labels: list[str] = []  # secp256k1 attestor keys in [signing.pkcs11]
    confirmations: int = 1
    stuck_after_blocks: int = 5
    # the issuer's Secure Mint guard on this chain (docs/budgets.md): its address once
    # deployed, and how old the bank data behind a round may be for a mint to pass
    guard: str | None = None
    heartbeat_s: int = Field(default=48 * 3600, ge=60)
    # the token also emits Mint/Burn(address indexed, uint256, bytes32 reference): the
    # flow reconciliation matches by those references (docs/ledger.md)
    reference_events: bool = False
    # with [reconciliation]: this chain's mints and burns are matched (false: left out,
    # and the attestation's reconciliation names only the chains it covers)
    reconcile: bool = True

    @field_validator("chain_id")
    @classmethod
    def _eip155(cls, chain_id: str) -> str:
        if not chain_id.startswith("eip155:") or not chain_id[7:].isdigit():
            raise ValueError(f"EVM chain_id must be eip155:<number>, got {chain_id!r}")
        return chain_id

    @model_validator(mode="after")
    def _publisher_for_oracle(self) -> Self:
        if self.oracle is not None and self.publisher_key_env is None:
            raise ValueError("an oracle needs publisher_key_env (the sender key's variable)")
        return self

    @property
    def chain_number(self) -> int:
        return int(self.chain_id[7:])

    @property
    def first_block(self) -> int:
        """Where holder indexing starts (0 only when index_from_genesis was asked for)."""
        return self.start_block or 0


class SolanaChainConfig(_Exclusions):
    kind: Literal["solana"]
    chain_id: str  # solana:<genesis hash prefix>
    rpc_url: str
    mint: str
    memo_keypair: ConfigPath | None = None  # Solana CLI keypair file: publish memos
    reconcile: bool = True  # with [reconciliation]: match this chain's mintTo/burn


class FakeChainConfig(_Table):
    """A chain in memory, for trials and tests: holders and balances given here."""

    kind: Literal["fake"]
    chain_id: str
    token: str
    holders: dict[str, int] = {}  # CAIP-10 account -> integer base units


ChainConfig = Annotated[
    EvmChainConfig | SolanaChainConfig | FakeChainConfig, Field(discriminator="kind")
]


# --- [allocation] [oracle] ---------------------------------------------------------------

_EVM_ADDRESS_RE = re.compile(r"0x[0-9a-fA-F]{40}")


class AllocationConfig(_Table):
    """How each attestation shares the eligible reserves out as per-chain mint budgets
    (docs/budgets.md); declared in every attestation as its `allocation`."""

    weights: str | dict[str, int] = "circulating"  # or a table: CAIP-2 chain id = weight
    headroom_share_bps: int = Field(default=10_000, ge=0, le=10_000)
    cover_excluded: bool = True

    @field_validator("weights")
    @classmethod
    def _weights(cls, weights: str | dict[str, int]) -> str | dict[str, int]:
        if isinstance(weights, str) and weights != "circulating":
            raise ValueError(f'must be "circulating" or a table of chain weights, got {weights!r}')
        if isinstance(weights, dict):
            bad = [k for k, w in weights.items() if not 0 <= w <= 10**9]
            if bad:
                raise ValueError(f"weights must be integers 0..1000000000 ({', '.join(bad)})")
            if not any(weights.values()):
                raise ValueError("fixed weights must not all be zero")
        return weights

    def policy(self) -> AllocationPolicy:
        weights = self.weights if isinstance(self.weights, str) else tuple(self.weights.items())
        return AllocationPolicy(
            weights=weights,
            headroom_share_bps=self.headroom_share_bps,
            cover_excluded=self.cover_excluded,
        )


class OracleConfig(_Table):
    """What `por oracle deploy` deploys on each EVM chain, and whose keys administer it."""

    attestors: list[str]  # attestor addresses; their keys are held apart (docs/evm.md)
    threshold: int = Field(ge=1)
    owner: str | None = None  # None: the deployer; a multisig in production
    max_report_age_s: int = Field(default=7 * 24 * 3600, ge=60)
    description: str = "reserves (por)"
    deployer_key_env: str = "POR_DEPLOYER_KEY"
    owner_key_env: str | None = None  # set-attestors / set-threshold; None: the deployer's

    @field_validator("attestors")
    @classmethod
    def _addresses(cls, attestors: list[str]) -> list[str]:
        bad = [a for a in attestors if not _EVM_ADDRESS_RE.fullmatch(a)]
        if bad:
            raise ValueError(f"not 0x-hex addresses: {', '.join(bad)}")
        if len({a.lower() for a in attestors}) != len(attestors):
            raise ValueError("an attestor is listed twice")
        return attestors

    @field_validator("owner")
    @classmethod
    def _owner(cls, owner: str | None) -> str | None:
        if owner is not None and not _EVM_ADDRESS_RE.fullmatch(owner):
            raise ValueError(f"not a 0x-hex address: {owner!r}")
        return owner

    @model_validator(mode="after")
    def _threshold(self) -> Self:
        if self.threshold > len(self.attestors):
            raise ValueError(
                f"threshold {self.threshold} is more than the {len(self.attestors)} attestors"
            )
        return self


# --- [[custodians]] -----------------------------------------------------------------------


class FilesCustodianConfig(_Table):
    kind: Literal["files"]
    name: str
    custodian: str | None = None
    paths: list[ConfigPath]  # glob patterns of statements and holdings files
    max_age_s: int | None = None
    encoding: str = "utf-8"  # of MT940 files (XML says its own): cp852, cp1250, iso-8859-2 ...

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, encoding: str) -> str:
        import codecs

        try:
            codecs.lookup(encoding)
        except LookupError:
            raise ValueError(
                f"unknown encoding {encoding!r} (e.g. utf-8, cp852, cp1250, iso-8859-1, "
                "iso-8859-2, iso-8859-15)"
            ) from None
        return encoding


class ApiCustodianConfig(_Table):
    kind: Literal["api"]
    name: str
    base_url: str
    public_key: HexBytes  # the custodian's Ed25519 key, hex
    max_age_s: int = 48 * 3600

    @field_validator("public_key")
    @classmethod
    def _key(cls, key: bytes) -> bytes:
        if len(key) != 32:
            raise ValueError(f"must be a 32-byte Ed25519 public key (64 hex), got {len(key)} bytes")
        return key


CustodianConfig = Annotated[FilesCustodianConfig | ApiCustodianConfig, Field(discriminator="kind")]


# --- [[ledgers]] [reconciliation] [as_of] (issue 18, docs/ledger.md) ----------------------

_LEDGER_ISSUER_RE = re.compile(r"[-_a-zA-Z0-9]{1,32}")


def _check_issuer(issuer: str) -> str:
    if not _LEDGER_ISSUER_RE.fullmatch(issuer):
        raise ValueError(f"must be a short id (letters, digits, - and _), got {issuer!r}")
    return issuer


def _check_key(key: bytes | None) -> bytes | None:
    if key is not None and len(key) != 32:
        raise ValueError(f"must be a 32-byte Ed25519 public key (64 hex), got {len(key)} bytes")
    return key


class FilesLedgerConfig(_Table):
    """Off-chain liabilities from export files (JSON or CSV); signed when a key is set."""

    kind: Literal["files"]
    name: str
    issuer: str  # the <issuer> of ledger:<issuer>:<id>
    paths: list[ConfigPath]  # glob patterns; FILE.sig beside each when public_key is set
    public_key: HexBytes | None = None  # None: hash-referenced only (the attestation names it)
    max_age_s: int | None = Field(default=48 * 3600, ge=60)

    @field_validator("issuer")
    @classmethod
    def _issuer(cls, issuer: str) -> str:
        return _check_issuer(issuer)

    @field_validator("public_key")
    @classmethod
    def _key(cls, key: bytes | None) -> bytes | None:
        return _check_key(key)


class ApiLedgerConfig(_Table):
    """Off-chain liabilities from the issuer's signed HTTP API (por-ledger-api-v1)."""

    kind: Literal["api"]
    name: str
    issuer: str
    base_url: str
    public_key: HexBytes
    max_age_s: int | None = Field(default=48 * 3600, ge=60)

    @field_validator("issuer")
    @classmethod
    def _issuer(cls, issuer: str) -> str:
        return _check_issuer(issuer)

    @field_validator("public_key")
    @classmethod
    def _key(cls, key: bytes | None) -> bytes | None:
        return _check_key(key)


LedgerConfig = Annotated[FilesLedgerConfig | ApiLedgerConfig, Field(discriminator="kind")]


class ReconciliationConfig(_Table):
    """The flow reconciliation: every mint and burn matched with a bank movement."""

    start: str  # RFC 3339: flows before this are not reconciled (a quiet point, e.g. go-live)
    window_s: int = Field(default=86_400, ge=0)  # amount matches within this of the booking day
    max_age_s: int = Field(default=172_800, ge=0)  # unmatched older than this: DEGRADED
    tolerance: str | None = None  # base units: unmatched adding up to more: DEGRADED
    accounts: list[str] = []  # custodian accounts whose entries are token flows (none: all)
    ignore: list[str] = []  # entries whose texts have one of these words are not flows

    @field_validator("start")
    @classmethod
    def _rfc3339(cls, start: str) -> str:
        try:
            t = datetime.fromisoformat(start.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"must be an RFC 3339 time, got {start!r}") from None
        if t.tzinfo is None:
            raise ValueError(f"needs a time zone (Z or +08:00), got {start!r}")
        return start

    @field_validator("tolerance")
    @classmethod
    def _base_units(cls, tolerance: str | None) -> str | None:
        if tolerance is not None and not re.fullmatch(r"0|[1-9][0-9]{0,38}", tolerance):
            raise ValueError(f"must be a decimal string of base units, got {tolerance!r}")
        return tolerance

    def start_time(self) -> datetime:
        return datetime.fromisoformat(self.start.replace("Z", "+00:00")).astimezone(UTC)


class AsOfConfig(_Table):
    """Attestations as of a past time (`por attest --as-of`)."""

    # a recorded snapshot (Solana) further than this before the as-of: DEGRADED
    max_snapshot_gap_s: int = Field(default=3 * 3600, ge=0)


# --- [alerts] -----------------------------------------------------------------------------


class WebhookConfig(_Table):
    """One receiver of alerts: JSON POSTs signed with HMAC-SHA256 (por.service.alerts)."""

    url: str
    secret_env: str  # the variable holding the shared HMAC key
    timeout_s: int = Field(default=5, ge=1, le=60)
    max_attempts: int = Field(default=5, ge=1, le=20)

    @field_validator("url")
    @classmethod
    def _http(cls, url: str) -> str:
        if not url.startswith(("https://", "http://")):
            raise ValueError(f"must be an http(s) URL, got {url!r}")
        return url


# --- [[witnesses]] ------------------------------------------------------------------------


class WitnessConfig(_Table):
    """A C2SP tlog-witness the log submits each new checkpoint to."""

    vkey: str  # the witness's cosignature verifier key: <name>+<key ID>+<base64(0x04 || key)>
    url: str  # submission prefix: POST <url>/add-checkpoint
    timeout_s: int = Field(default=10, ge=1, le=300)

    @field_validator("vkey")
    @classmethod
    def _cosignature_vkey(cls, vkey: str) -> str:
        try:
            parsed = VerifierKey.parse(vkey)
        except FormatError as e:
            raise ValueError(e.message) from e
        if parsed.alg != ALG_COSIGNATURE_V1:
            raise ValueError("must be a witness cosignature key (type 0x04)")
        return vkey

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"must be an http(s) URL, got {url!r}")
        return url


class AlertsConfig(_Table):
    # "latest attestation older than K intervals" (K = stale_after_intervals)
    stale_after_intervals: int = Field(default=3, ge=1)
    # a publication not landed after N blocks of its chain
    publication_lag_blocks: int = Field(default=20, ge=1)
    webhooks: list[WebhookConfig] = []


# --- [disclosure]: the public pages and the reserve reports (issue 17) ----------------------

_CAIP2 = re.compile(r"[-a-z0-9]{3,8}:[-_a-zA-Z0-9]{1,32}")
_URL_FIELDS = {"block": "{number}", "tx": "{hash}", "address": "{address}"}


class ExplorerConfig(_Table):
    """Block explorer links of one chain: URL templates with {number}, {hash}, {address}."""

    block: str | None = None  # e.g. "https://etherscan.io/block/{number}"
    tx: str | None = None  # e.g. "https://etherscan.io/tx/{hash}"
    address: str | None = None  # e.g. "https://etherscan.io/address/{address}"

    @model_validator(mode="after")
    def _templates(self) -> Self:
        for name, placeholder in _URL_FIELDS.items():
            url = getattr(self, name)
            if url is None:
                continue
            if not url.startswith("https://") or placeholder not in url:
                raise ValueError(
                    f"{name} must be an https:// URL template containing {placeholder}, got {url!r}"
                )
        return self


class DisclosureConfig(_Table):
    # The reserve reports' days run from local midnight at this fixed offset ("+08:00"
    # for Hong Kong); the dashboard links to the reports of this calendar.
    report_utc_offset: str = "+00:00"
    # CAIP-2 chain id -> explorer URL templates; chains without one get no links
    explorers: dict[str, ExplorerConfig] = {}
    # CAIP-2 chain id -> the name shown for it (default: a built-in name or the id)
    chain_names: dict[str, str] = {}
    # how many recent attestations the holder page checks an account against
    holder_history: int = Field(default=10, ge=1, le=50)

    @field_validator("report_utc_offset")
    @classmethod
    def _offset(cls, value: str) -> str:
        from por.core.reserve_report import parse_utc_offset

        try:
            parse_utc_offset(value)
        except InputError as e:
            raise ValueError(e.message) from None
        return value

    @field_validator("explorers", "chain_names")
    @classmethod
    def _chain_ids(cls, value: dict[str, Any]) -> dict[str, Any]:
        for chain_id in value:
            if not _CAIP2.fullmatch(chain_id):
                raise ValueError(f"{chain_id!r} is not a CAIP-2 chain id (eip155:1, solana:…)")
        return value

    def site(self) -> dict[str, Any]:
        """What /v1/site serves to the pages."""
        return {
            "report_utc_offset": self.report_utc_offset,
            "holder_history": self.holder_history,
            "chain_names": dict(self.chain_names),
            "explorers": {
                k: {f: u for f in _URL_FIELDS if (u := getattr(v, f)) is not None}
                for k, v in self.explorers.items()
            },
        }


# --- [artifacts] ---------------------------------------------------------------------------


class ArtifactsConfig(_Table):
    """Where sum trees (and, with [service] state = "database", raw statements) are kept:
    "local" files under data_dir (the default), or an S3-compatible object store as
    content-addressed shards (docs/storage.md). Credentials come from the environment."""

    kind: Literal["local", "s3"] = "local"
    endpoint: str = ""  # empty: AWS's endpoint for the region
    bucket: str = ""
    prefix: str = "por"
    region: str = "us-east-1"
    access_key_id_env: str = "AWS_ACCESS_KEY_ID"
    secret_access_key_env: str = "AWS_SECRET_ACCESS_KEY"  # noqa: S105 - a variable's name
    shard_leaves: int = Field(default=65536, ge=2, le=1 << 24)
    cache_mb: int = Field(default=512, ge=1)  # verified shards kept per API process, MB
    timeout_s: float = Field(default=30.0, gt=0)

    @field_validator("shard_leaves")
    @classmethod
    def _power_of_two(cls, v: int) -> int:
        if v & (v - 1):
            raise ValueError(f"must be a power of two, got {v}")
        return v

    @model_validator(mode="after")
    def _bucket_for_s3(self) -> Self:
        if self.kind == "s3" and not self.bucket:
            raise ValueError('kind = "s3" needs a bucket')
        return self


class DaskConfig(_Table):
    """`[dask]`: the cluster of `tree_engine = "dask"` (por.service.tree_dask, docs/scaling.md)."""

    scheduler: str = ""  # tcp://HOST:PORT or tls://HOST:PORT; empty: a local cluster
    n_workers: int = Field(default=2, ge=1)  # local cluster: worker processes
    threads_per_worker: int = Field(default=1, ge=1)
    memory_limit: str = "auto"  # local cluster, per worker ("4GiB"); beyond it workers spill
    local_directory: ConfigPath | None = None  # local cluster: where workers spill to disk
    partition_rows: int = Field(default=1 << 19, ge=1)  # input rows per partition task
    bucket_rows: int = Field(default=1 << 21, ge=1)  # aim of leaves per hash-prefix bucket
    connect_timeout_s: float = Field(default=30.0, gt=0)
    # TLS to a remote scheduler: the CA and this client's certificate and key (PEM)
    tls_ca_file: ConfigPath | None = None
    tls_cert_file: ConfigPath | None = None
    tls_key_file: ConfigPath | None = None
    tls_local: bool = False  # local cluster: TLS with a throw-away CA

    @field_validator("scheduler")
    @classmethod
    def _address(cls, scheduler: str) -> str:
        if scheduler and not re.fullmatch(r"(tcp|tls)://[^\s/]+:\d{1,5}", scheduler):
            raise ValueError(f"must be tcp://HOST:PORT or tls://HOST:PORT, got {scheduler!r}")
        return scheduler

    @model_validator(mode="after")
    def _tls_files(self) -> Self:
        files = (self.tls_ca_file, self.tls_cert_file, self.tls_key_file)
        if any(files) and not all(files):
            raise ValueError("tls_ca_file, tls_cert_file and tls_key_file go together")
        if self.scheduler.startswith("tls://") and not all(files):
            raise ValueError("a tls:// scheduler needs tls_ca_file, tls_cert_file, tls_key_file")
        return self


# --- the file -----------------------------------------------------------------------------


class Config(_Table):
    """One por.toml. `path` is the file it was read from (relative paths are resolved)."""

    service: ServiceConfig
    api: ApiConfig = ApiConfig()
    schedule: ScheduleConfig
    token: TokenConfig
    signing: SigningConfig
    chains: list[ChainConfig] = []
    custodians: list[CustodianConfig] = []
    alerts: AlertsConfig = AlertsConfig()
    witnesses: list[WitnessConfig] = []
    policy: dict[str, Any] = {}  # checked by por.core.policy.Policy.from_dict
    allocation: AllocationConfig = AllocationConfig()
    oracle: OracleConfig | None = None
    disclosure: DisclosureConfig = DisclosureConfig()
    ledgers: list[LedgerConfig] = []
    reconciliation: ReconciliationConfig | None = None
    as_of: AsOfConfig = AsOfConfig()
    artifacts: ArtifactsConfig = ArtifactsConfig()
    dask: DaskConfig | None = None  # required by tree_engine = "dask"
    publishing: dict[str, Any] = {}  # reserved: accepted and not read
    _path: Path = PrivateAttr(default=Path("por.toml"))

    @model_validator(mode="before")
    @classmethod
    def _optional_tables(cls, data: Any) -> Any:
        # Validated like a written `[service]` (paths resolved against the file's folder).
        if isinstance(data, Mapping):
            return {"service": {}, "schedule": {}, **data}
        return data

    @model_validator(mode="after")
    def _engine_has_its_table(self) -> Self:
        if self.service.tree_engine == "dask" and self.dask is None:
            raise ValueError('tree_engine = "dask" needs a [dask] table (scheduler or n_workers)')
        return self

    @property
    def path(self) -> Path:
        return self._path

    @property
    def database_url(self) -> str:
        if self.service.database_url:
            return self.service.database_url
        return f"sqlite:///{self.service.data_dir / 'por.db'}"


def with_trusted_proxies(cfg: Config, proxies: Sequence[str]) -> Config:
    """`cfg` with `[api] trusted_proxies` replaced (`--trusted-proxy`); unchanged if empty."""
    if not proxies:
        return cfg
    try:
        api = ApiConfig.model_validate({**cfg.api.model_dump(), "trusted_proxies": list(proxies)})
    except ValidationError as e:
        raise ConfigError(e.errors()[0]["msg"], where="--trusted-proxy") from None
    new = cfg.model_copy(update={"api": api})
    new._path = cfg.path
    return new


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One thing wrong in the file: `key` is dotted (`chains[1].rpc_urls`), '' for the file."""

    key: str
    message: str


def load_config(path: Path) -> Config:
    where = str(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read configuration: {e.strerror}", where=where) from e
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"not valid TOML: {e}", where=where) from e
    return parse_config(doc, path=path)


def parse_config(doc: dict[str, Any], *, path: Path) -> Config:
    """Check the whole document; one ConfigError lists every problem (file, table, key)."""
    try:
        cfg = Config.model_validate(doc, context={"base": path.parent})
    except ValidationError as e:
        problems = [*_problems(e.errors()), *_duplicate_chains(doc), *_nonsense(doc)]
        raise _config_error(path, problems) from None
    problems = [*_duplicate_chains(doc), *_nonsense(doc), *_allocation_problems(cfg)]
    if problems:
        raise _config_error(path, problems)
    cfg._path = path
    return cfg


def _config_error(path: Path, problems: Sequence[ConfigProblem]) -> ConfigError:
    def where(p: ConfigProblem) -> str:
        return f"{path}:{p.key}" if p.key else str(path)

    if len(problems) == 1:
        return ConfigError(problems[0].message, where=where(problems[0]))
    lines = "".join(f"\n  {where(p)}: {p.message}" for p in problems)
    return ConfigError(f"{len(problems)} problems:{lines}", where=str(path))


def _duplicate_chains(doc: Mapping[str, Any]) -> Iterator[ConfigProblem]:
    # On the raw document, so it is reported beside the other problems of the same tables.
    chains = doc.get("chains")
    seen: set[str] = set()
    for i, c in enumerate(chains if isinstance(chains, list) else []):
        cid = c.get("chain_id") if isinstance(c, dict) else None
        if isinstance(cid, str):
            if cid in seen:
                yield ConfigProblem(f"chains[{i}].chain_id", f"chain {cid} configured twice")
            seen.add(cid)


def _nonsense(doc: Mapping[str, Any]) -> Iterator[ConfigProblem]:
    """Well-typed but unusable: refused before anything is read or signed.

    On the raw document (tolerant of wrong types, which pydantic reports), so each
    problem names its own key and comes beside the type errors of the same file.
    """
    service = doc.get("service")
    demo = isinstance(service, Mapping) and service.get("demo") is True
    signing = doc.get("signing")
    hsm = isinstance(signing, Mapping) and isinstance(signing.get("pkcs11"), Mapping)
    chains = doc.get("chains", [])
    if chains == []:
        yield ConfigProblem(
            "chains", "no [[chains]] table: an attestation without supply attests nothing"
        )
    custodians = doc.get("custodians", [])
    if custodians == []:
        yield ConfigProblem(
            "custodians", "no [[custodians]] table: reserves would be unknown (counted as 0)"
        )
    for i, c in enumerate(chains if isinstance(chains, list) else []):
        if not isinstance(c, Mapping):
            continue
        at = f"chains[{i}]"
        if c.get("kind") == "fake" and not demo:
            yield ConfigProblem(
                f"{at}.kind",
                'kind "fake" is an in-memory test chain; only a demo or test world '
                "([service] demo = true) may use it",
            )
        if c.get("kind") != "evm":
            continue
        genesis = c.get("index_from_genesis") is True
        start = c.get("start_block")
        if not genesis and start in (None, 0):
            yield ConfigProblem(
                f"{at}.start_block",
                "set it to the token contract's deployment block (indexing from genesis "
                "reads every block of the chain; say index_from_genesis = true to mean it)",
            )
        elif genesis and isinstance(start, int) and start > 0:
            yield ConfigProblem(
                f"{at}.index_from_genesis", f"contradicts start_block = {start}; give one"
            )
        if c.get("oracle") is not None and not (
            c.get("attestor_key_envs") or c.get("attestor_hsm_labels")
        ):
            yield ConfigProblem(
                f"{at}.attestor_key_envs",
                "an oracle needs attestor keys (attestor_key_envs or attestor_hsm_labels): "
                "its reports are accepted only with attestor signatures",
            )
        if c.get("attestor_hsm_labels") and not hsm:
            yield ConfigProblem(
                f"{at}.attestor_hsm_labels", "HSM keys need a [signing.pkcs11] table"
            )


def _allocation_problems(cfg: Config) -> Iterator[ConfigProblem]:
    weights = cfg.allocation.weights
    if isinstance(weights, dict):
        chains = {c.chain_id for c in cfg.chains}
        missing, unknown = sorted(chains - set(weights)), sorted(set(weights) - chains)
        if missing or unknown:
            yield ConfigProblem(
                "allocation.weights",
                "fixed weights must name every configured chain exactly: "
                f"missing {', '.join(missing) or 'none'}, unknown {', '.join(unknown) or 'none'}",
            )


# --- pydantic's errors in por's words -----------------------------------------------------

_TYPE_NAMES = {
    "int_type": "int",
    "string_type": "str",
    "bool_type": "bool",
    "list_type": "list",
    "dict_type": "table",
    "model_type": "table",
    "model_attributes_type": "table",
}
_KIND_OF = {"chains": "chain ", "custodians": "custodian ", "ledgers": "ledger "}
_TAGGED = ("chains", "custodians", "ledgers")  # lists of tables chosen by `kind`


def _dotted(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _untagged(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    # pydantic puts the chosen `kind` into the location of a tagged union member's errors:
    # ("chains", 0, "evm", "token") is chains[0].token to the reader of the file.
    if len(loc) >= 3 and loc[0] in _TAGGED and isinstance(loc[1], int):
        return loc[:2] + loc[3:]
    return loc


def _problems(errors: Sequence[Mapping[str, Any]]) -> list[ConfigProblem]:
    out: list[ConfigProblem] = []
    unknown: dict[tuple[int | str, ...], list[str]] = {}  # table -> its unknown keys
    at: dict[tuple[int | str, ...], int] = {}  # table -> its problem's place in `out`
    for err in errors:
        loc = _untagged(tuple(err["loc"]))
        if err["type"] != "extra_forbidden":
            out.append(_problem(loc, err))
            continue
        table = loc[:-1]  # one problem per table, naming all its unknown keys
        if table not in at:
            at[table] = len(out)
            out.append(ConfigProblem("", ""))
        unknown.setdefault(table, []).append(str(loc[-1]))
        names = ", ".join(sorted(unknown[table]))
        out[at[table]] = ConfigProblem(_dotted(table), f"unknown key(s) {names}")
    return out


def _problem(  # noqa: PLR0911 - one answer per kind of pydantic error
    loc: tuple[int | str, ...], err: Mapping[str, Any]
) -> ConfigProblem:
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    if kind == "missing":
        return ConfigProblem(_dotted(loc[:-1]), f"missing key {loc[-1]!r}")
    if kind == "union_tag_not_found":
        return ConfigProblem(_dotted(loc), "missing key 'kind'")
    if kind == "union_tag_invalid":
        noun = _KIND_OF.get(str(loc[0]), "")
        expected = str(ctx.get("expected_tags", "")).replace("'", "")
        return ConfigProblem(
            _dotted((*loc, "kind")), f"unknown {noun}kind {ctx.get('tag')!r} ({expected})"
        )
    if kind in _TYPE_NAMES:
        return ConfigProblem(
            _dotted(loc), f"must be {_TYPE_NAMES[kind]}, got {type(value).__name__} {value!r}"
        )
    if kind == "greater_than_equal":
        return ConfigProblem(_dotted(loc), f"must be >= {ctx['ge']}, got {value!r}")
    if kind == "less_than_equal":
        return ConfigProblem(_dotted(loc), f"must be <= {ctx['le']}, got {value!r}")
    if kind == "value_error":  # our validators' ValueError: the message is ours
        return ConfigProblem(_dotted(loc), str(ctx.get("error", err["msg"])))
    return ConfigProblem(_dotted(loc), str(err["msg"]))
