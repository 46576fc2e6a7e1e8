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

import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
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

from por.errors import ConfigError

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
    data_dir: ConfigPath = Path("data")
    attestations_dir: ConfigPath = Path("attestations")
    database_url: str = ""  # empty: SQLite in data_dir (Config.database_url)
    origin: str = "por.local/attestations"
    listen: str = "127.0.0.1:8000"
    admin_token_env: str = "POR_ADMIN_TOKEN"  # noqa: S105 - a variable's name, not a secret
    tree_workers: int = Field(default=0, ge=0)  # threads hashing the sum tree; 0: every core
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


class ScheduleConfig(_Table):
    interval_s: int | None = Field(default=None, ge=1)
    cron: str | None = None  # 5-field crontab, UTC
    misfire_grace_s: int = 300
    coalesce: bool = True

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
        return self


class TokenConfig(_Table):
    symbol: str
    decimals: int = Field(ge=0, le=36)
    currency: str


class SigningConfig(_Table):
    key_file: ConfigPath
    passphrase_env: str = "POR_KEY_PASSPHRASE"  # noqa: S105 - a variable's name
    keys_file: ConfigPath


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
    start_block: int = 0
    max_log_range: int = Field(default=10_000, ge=1)
    spot_checks: int = Field(default=16, ge=0)  # 0: no balanceOf spot checks
    # publishing to a ReserveOracle (only when `oracle` is set)
    oracle: str | None = None
    publisher_key_env: str | None = None
    attestor_key_envs: list[str] = []  # empty: the publisher key also attests
    confirmations: int = 1
    stuck_after_blocks: int = 5

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


class SolanaChainConfig(_Exclusions):
    kind: Literal["solana"]
    chain_id: str  # solana:<genesis hash prefix>
    rpc_url: str
    mint: str
    memo_keypair: ConfigPath | None = None  # Solana CLI keypair file: publish memos


class FakeChainConfig(_Table):
    """A chain in memory, for trials and tests: holders and balances given here."""

    kind: Literal["fake"]
    chain_id: str
    token: str
    holders: dict[str, int] = {}  # CAIP-10 account -> integer base units


ChainConfig = Annotated[
    EvmChainConfig | SolanaChainConfig | FakeChainConfig, Field(discriminator="kind")
]


# --- [[custodians]] -----------------------------------------------------------------------


class FilesCustodianConfig(_Table):
    kind: Literal["files"]
    name: str
    custodian: str | None = None
    paths: list[ConfigPath]  # glob patterns of statements and holdings files
    max_age_s: int | None = None


class ApiCustodianConfig(_Table):
    kind: Literal["api"]
    name: str
    base_url: str
    public_key: HexBytes  # the custodian's Ed25519 key, hex
    max_age_s: int = 48 * 3600


CustodianConfig = Annotated[FilesCustodianConfig | ApiCustodianConfig, Field(discriminator="kind")]


# --- the file -----------------------------------------------------------------------------


class Config(_Table):
    """One por.toml. `path` is the file it was read from (relative paths are resolved)."""

    service: ServiceConfig
    schedule: ScheduleConfig
    token: TokenConfig
    signing: SigningConfig
    chains: list[ChainConfig] = []
    custodians: list[CustodianConfig] = []
    policy: dict[str, Any] = {}  # checked by por.core.policy.Policy.from_dict
    publishing: dict[str, Any] = {}  # reserved: accepted and not read
    _path: Path = PrivateAttr(default=Path("por.toml"))

    @model_validator(mode="before")
    @classmethod
    def _optional_tables(cls, data: Any) -> Any:
        # Validated like a written `[service]` (paths resolved against the file's folder).
        if isinstance(data, Mapping):
            return {"service": {}, "schedule": {}, **data}
        return data

    @property
    def path(self) -> Path:
        return self._path

    @property
    def database_url(self) -> str:
        if self.service.database_url:
            return self.service.database_url
        return f"sqlite:///{self.service.data_dir / 'por.db'}"


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
        raise _config_error(path, [*_problems(e.errors()), *_duplicate_chains(doc)]) from None
    duplicates = list(_duplicate_chains(doc))
    if duplicates:
        raise _config_error(path, duplicates)
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
_KIND_OF = {"chains": "chain ", "custodians": "custodian "}
_TAGGED = ("chains", "custodians")  # lists of tables chosen by `kind`


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
