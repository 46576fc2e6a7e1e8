"""The service's TOML configuration: parsed strictly into frozen dataclasses.

Every key is checked; an unknown key, a wrong type or a missing value is a ConfigError
naming the file and the dotted key. Secrets are never in the file: it names the
environment variables that hold them. Reads the file and nothing else.

The commented example is `por.service.setup.CONFIG_TEMPLATE` (what `por init` writes);
the keys are listed in docs/configuration.md.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from por.errors import ConfigError

_SECTIONS = (
    "service",
    "schedule",
    "token",
    "signing",
    "chains",
    "custodians",
    "policy",
    "publishing",
)


def _take(
    d: dict[str, Any],
    key: str,
    typ: type | tuple[type, ...],
    where: str,
    default: Any = ...,
) -> Any:
    if key not in d:
        if default is ...:
            raise ConfigError(f"missing key {key!r}", where=where)
        return default
    v = d[key]
    if isinstance(v, bool) and typ is int:
        raise ConfigError(f"{key} must be an integer, got {v!r}", where=f"{where}.{key}")
    if not isinstance(v, typ):
        names = typ.__name__ if isinstance(typ, type) else "/".join(t.__name__ for t in typ)
        raise ConfigError(f"must be {names}, got {type(v).__name__} {v!r}", where=f"{where}.{key}")
    return v


def _no_unknown(d: dict[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(d) - known)
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join(unknown)}", where=where)


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceConfig:
    data_dir: Path
    attestations_dir: Path
    database_url: str
    origin: str
    listen_host: str
    listen_port: int
    admin_token_env: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleConfig:
    interval_s: int | None
    cron: str | None
    misfire_grace_s: int
    coalesce: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenConfig:
    symbol: str
    decimals: int
    currency: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SigningConfig:
    key_file: Path
    passphrase_env: str
    keys_file: Path


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    path: Path
    service: ServiceConfig
    schedule: ScheduleConfig
    token: TokenConfig
    signing: SigningConfig
    chains: tuple[dict[str, Any], ...]
    custodians: tuple[dict[str, Any], ...]
    policy: dict[str, Any] = field(default_factory=dict)
    publishing: dict[str, Any] = field(default_factory=dict)

    @property
    def database_url(self) -> str:
        if self.service.database_url:
            return self.service.database_url
        return f"sqlite:///{self.service.data_dir / 'por.db'}"


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


def parse_config(doc: dict[str, Any], *, path: Path) -> Config:  # noqa: PLR0915 - one block per table
    where = str(path)
    _no_unknown(doc, set(_SECTIONS), where)
    base = path.parent

    def rel(p: str) -> Path:
        q = Path(p)
        return q if q.is_absolute() else (base / q)

    s = _take(doc, "service", dict, where, {})
    sw = f"{where}:service"
    _no_unknown(
        s,
        {"data_dir", "attestations_dir", "database_url", "origin", "listen", "admin_token_env"},
        sw,
    )
    listen = _take(s, "listen", str, sw, "127.0.0.1:8000")
    host, _, port_s = listen.rpartition(":")
    if not host or not port_s.isdigit() or not 0 < int(port_s) < 65536:
        raise ConfigError(f"listen must be HOST:PORT, got {listen!r}", where=f"{sw}.listen")
    service = ServiceConfig(
        data_dir=rel(_take(s, "data_dir", str, sw, "data")),
        attestations_dir=rel(_take(s, "attestations_dir", str, sw, "attestations")),
        database_url=_take(s, "database_url", str, sw, ""),
        origin=_take(s, "origin", str, sw, "por.local/attestations"),
        listen_host=host,
        listen_port=int(port_s),
        admin_token_env=_take(s, "admin_token_env", str, sw, "POR_ADMIN_TOKEN"),
    )

    sc = _take(doc, "schedule", dict, where, {})
    scw = f"{where}:schedule"
    _no_unknown(sc, {"interval_s", "cron", "misfire_grace_s", "coalesce"}, scw)
    interval = _take(sc, "interval_s", int, scw, None)
    cron = _take(sc, "cron", str, scw, None)
    if interval is None and cron is None:
        interval = 3600
    if interval is not None and cron is not None:
        raise ConfigError("give either interval_s or cron, not both", where=scw)
    if interval is not None and interval < 1:
        raise ConfigError(f"interval_s must be >= 1, got {interval}", where=f"{scw}.interval_s")
    if cron is not None and len(cron.split()) != 5:
        raise ConfigError(
            f"cron must have 5 fields (min hour day month weekday), got {cron!r}",
            where=f"{scw}.cron",
        )
    schedule = ScheduleConfig(
        interval_s=interval,
        cron=cron,
        misfire_grace_s=_take(sc, "misfire_grace_s", int, scw, 300),
        coalesce=_take(sc, "coalesce", bool, scw, True),
    )

    t = _take(doc, "token", dict, where)
    tw = f"{where}:token"
    _no_unknown(t, {"symbol", "decimals", "currency"}, tw)
    decimals = _take(t, "decimals", int, tw)
    if not 0 <= decimals <= 36:
        raise ConfigError(f"decimals must be in 0..36, got {decimals}", where=f"{tw}.decimals")
    token = TokenConfig(
        symbol=_take(t, "symbol", str, tw),
        decimals=decimals,
        currency=_take(t, "currency", str, tw),
    )

    g = _take(doc, "signing", dict, where)
    gw = f"{where}:signing"
    _no_unknown(g, {"key_file", "passphrase_env", "keys_file"}, gw)
    signing = SigningConfig(
        key_file=rel(_take(g, "key_file", str, gw)),
        passphrase_env=_take(g, "passphrase_env", str, gw, "POR_KEY_PASSPHRASE"),
        keys_file=rel(_take(g, "keys_file", str, gw)),
    )

    chains = _take(doc, "chains", list, where, [])
    seen: set[str] = set()
    for i, c in enumerate(chains):
        cw = f"{where}:chains[{i}]"
        if not isinstance(c, dict):
            raise ConfigError("must be a table", where=cw)
        _take(c, "kind", str, cw)
        cid = _take(c, "chain_id", str, cw)
        if cid in seen:
            raise ConfigError(f"chain {cid} configured twice", where=f"{cw}.chain_id")
        seen.add(cid)
    custodians = _take(doc, "custodians", list, where, [])
    for i, c in enumerate(custodians):
        cw = f"{where}:custodians[{i}]"
        if not isinstance(c, dict):
            raise ConfigError("must be a table", where=cw)
        _take(c, "kind", str, cw)

    return Config(
        path=path,
        service=service,
        schedule=schedule,
        token=token,
        signing=signing,
        chains=tuple(chains),
        custodians=tuple(custodians),
        policy=_take(doc, "policy", dict, where, {}),
        publishing=_take(doc, "publishing", dict, where, {}),
    )
