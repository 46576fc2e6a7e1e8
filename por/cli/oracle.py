"""`por oracle deploy|status|set-attestors|set-threshold`: the on-chain oracle, for real.

    por oracle deploy --chain eip155:1 [--config por.toml] [--rpc-url URL] [--no-guard]
    por oracle status [--chain eip155:1] [--json]
    por oracle set-attestors --chain eip155:56 [--add 0x..]... [--remove 0x..]...
    por oracle set-threshold --chain eip155:56 N

Settings come from `[oracle]` (attestors, threshold, owner, max report age, the key
variables) and the chain's `[[chains]]` table (RPC URL, token, heartbeat; `oracle` and
`guard` once deployed). The key is read from the environment variable the configuration
names (`deployer_key_env`; `owner_key_env` for the set-* commands). Every command plans
first and refuses BEFORE sending anything on a wrong chain id, a key that cannot pay, or a
key that is not the owner (por.oracle.admin); then it prints each address and tx hash.
docs/evm.md ("Deploying on Ethereum and BNB Chain") walks through a deployment.
"""

from __future__ import annotations

import argparse
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from por.errors import ConfigError

if TYPE_CHECKING:
    from por.oracle.admin import OracleAdmin, Planned, Sent
    from por.service.config import Config, EvmChainConfig, OracleConfig


def register(sub: Any) -> None:
    p = sub.add_parser("oracle", help="deploy and administer the ReserveOracle on EVM chains")
    osub = p.add_subparsers(dest="oracle_command", metavar="ACTION", required=True)

    def common(q: argparse.ArgumentParser, *, chain_required: bool = True) -> None:
        q.add_argument("--config", type=Path, default=Path("por.toml"))
        q.add_argument(
            "--chain", required=chain_required, help="CAIP-2 id of a configured EVM chain"
        )
        q.add_argument("--rpc-url", help="default: the chain's first rpc_urls entry")

    q = osub.add_parser("deploy", help="deploy ReserveOracle (and the SecureMintGuard)")
    common(q)
    q.add_argument("--no-guard", action="store_true", help="do not deploy the mint guard")
    q.add_argument(
        "--replace", action="store_true", help="deploy although the chain names an oracle"
    )
    q.set_defaults(func=_cmd_deploy)

    q = osub.add_parser("status", help="what the oracle and guard hold now (sends nothing)")
    common(q, chain_required=False)
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=_cmd_status)

    q = osub.add_parser("set-attestors", help="add and remove attestors (owner key)")
    common(q)
    q.add_argument("--add", action="append", default=[], metavar="ADDRESS")
    q.add_argument("--remove", action="append", default=[], metavar="ADDRESS")
    q.set_defaults(func=_cmd_set_attestors)

    q = osub.add_parser("set-threshold", help="change the signature threshold (owner key)")
    common(q)
    q.add_argument("threshold", type=int)
    q.set_defaults(func=_cmd_set_threshold)


# --- configuration -------------------------------------------------------------------------


def _config(path: Path) -> Config:
    from por.service.config import load_config

    return load_config(path)


def _evm_chains(cfg: Config) -> list[tuple[int, EvmChainConfig]]:
    from por.service.config import EvmChainConfig

    return [(i, c) for i, c in enumerate(cfg.chains) if isinstance(c, EvmChainConfig)]


def _chain(cfg: Config, chain_id: str) -> tuple[int, EvmChainConfig]:
    chains = _evm_chains(cfg)
    for i, c in chains:
        if c.chain_id == chain_id:
            return i, c
    known = ", ".join(c.chain_id for _, c in chains) or "none"
    raise ConfigError(f"no EVM chain {chain_id} in the configuration (EVM chains: {known})")


def _oracle_settings(cfg: Config) -> OracleConfig:
    if cfg.oracle is None:
        raise ConfigError(
            "add an [oracle] table (attestors, threshold, ...): see docs/evm.md",
            where=str(cfg.path),
        )
    return cfg.oracle


def _key(env: str, what: str) -> str:
    value = os.environ.get(env)
    if not value:
        raise ConfigError(f"set {env} to the {what} key (0x-hex private key)", where=env)
    return value


def _admin(chain: EvmChainConfig, rpc_url: str | None, key: str) -> OracleAdmin:
    from por.oracle.admin import OracleAdmin

    admin = OracleAdmin(chain_id=chain.chain_number, rpc_url=rpc_url or chain.rpc_urls[0], key=key)
    admin.check_chain()  # a wrong chain id is refused before anything else
    return admin


def _where(cfg: Config, index: int) -> str:
    return f"{cfg.path}:chains[{index}]"


# --- commands ------------------------------------------------------------------------------


def _fund_and_send(admin: OracleAdmin, planned: list[Planned]) -> list[Sent]:
    have, need = admin.check_funds(planned)
    print(
        f"  from {admin.address}: balance {have} wei; {len(planned)} transaction(s) cost at "
        f"most {need} wei"
    )
    return admin.send(planned)


def _cmd_deploy(args: argparse.Namespace) -> int:
    cfg = _config(args.config)
    settings = _oracle_settings(cfg)
    index, chain = _chain(cfg, args.chain)
    if chain.oracle is not None and not args.replace:
        raise ConfigError(
            f"already names oracle {chain.oracle}; give --replace to deploy another one",
            where=_where(cfg, index),
        )
    admin = _admin(chain, args.rpc_url, _key(settings.deployer_key_env, "deployer"))
    print(f"por oracle deploy {chain.chain_id} via {admin.endpoint.url}")
    owner = settings.owner or admin.address
    attestors = {a.lower() for a in settings.attestors}
    if admin.address.lower() in attestors:
        print(f"  note: the deployer {admin.address} is also an attestor; keep keys apart")
    if owner.lower() in attestors:
        print(f"  note: the owner {owner} is also an attestor; keep keys apart")
    planned = [
        admin.plan_oracle(
            decimals=cfg.token.decimals,
            description=f"{cfg.token.symbol} {settings.description}",
            attestors=settings.attestors,
            threshold=settings.threshold,
            max_report_age_s=settings.max_report_age_s,
            owner=settings.owner,
        )
    ]
    nonce = admin.next_nonce()
    oracle_at = admin.created_address(nonce)
    if not args.no_guard:
        planned.append(
            admin.plan_guard(
                oracle=oracle_at,
                token=chain.token,
                heartbeat_s=chain.heartbeat_s,
                owner=settings.owner,
                decimals=cfg.token.decimals,
            )
        )
    sent = _fund_and_send(admin, planned)
    for s in sent:
        print(f"  {s.what}: {s.contract_address} tx {s.tx_hash} block {s.block_number}")
    if sent[0].contract_address != oracle_at:
        raise ConfigError(
            f"the oracle landed at {sent[0].contract_address}, not at {oracle_at}: was the "
            "key used elsewhere meanwhile? Check the guard's oracle before using it",
            where=_where(cfg, index),
        )
    print(f"add to the [[chains]] table of {chain.chain_id} ({_where(cfg, index)}):")
    print(f'  oracle = "{sent[0].contract_address}"')
    if len(sent) > 1:
        print(f'  guard = "{sent[1].contract_address}"')
        print(
            "then let the token ask the guard before every mint (StableToken: setMintGuard; "
            "your token: its own hook)"
        )
    if owner.lower() == admin.address.lower():
        print("  note: the deployer owns the oracle; transfer ownership to a multisig")
    return 0


def _cmd_set_attestors(args: argparse.Namespace) -> int:
    cfg = _config(args.config)
    settings = _oracle_settings(cfg)
    index, chain = _chain(cfg, args.chain)
    if chain.oracle is None:
        raise ConfigError("names no oracle: deploy first", where=_where(cfg, index))
    env = settings.owner_key_env or settings.deployer_key_env
    admin = _admin(chain, args.rpc_url, _key(env, "oracle owner"))
    print(f"por oracle set-attestors {chain.chain_id} oracle {chain.oracle}")
    planned = admin.plan_attestors(chain.oracle, add=args.add, remove=args.remove)
    for s in _fund_and_send(admin, planned):
        print(f"  {s.what}: tx {s.tx_hash} block {s.block_number}")
    return 0


def _cmd_set_threshold(args: argparse.Namespace) -> int:
    cfg = _config(args.config)
    settings = _oracle_settings(cfg)
    index, chain = _chain(cfg, args.chain)
    if chain.oracle is None:
        raise ConfigError("names no oracle: deploy first", where=_where(cfg, index))
    env = settings.owner_key_env or settings.deployer_key_env
    admin = _admin(chain, args.rpc_url, _key(env, "oracle owner"))
    print(f"por oracle set-threshold {chain.chain_id} oracle {chain.oracle}")
    planned = [admin.plan_threshold(chain.oracle, args.threshold)]
    for s in _fund_and_send(admin, planned):
        print(f"  {s.what}: tx {s.tx_hash} block {s.block_number}")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from por.oracle.admin import OracleAdmin

    cfg = _config(args.config)
    chains = [_chain(cfg, args.chain)] if args.chain else _evm_chains(cfg)
    attestors = cfg.oracle.attestors if cfg.oracle else []
    report = []
    for _, chain in chains:
        if chain.oracle is None:
            report.append({"chain_id": chain.chain_id, "oracle": None})
            continue
        # Reads only: any key will do, none is used to sign.
        admin = OracleAdmin(
            chain_id=chain.chain_number,
            rpc_url=args.rpc_url or chain.rpc_urls[0],
            key="0x" + "01" * 32,
        )
        admin.check_chain()
        st = admin.status(
            oracle=chain.oracle, token=chain.token, guard=chain.guard, attestors=attestors
        )
        st["configured_heartbeat_s"] = chain.heartbeat_s
        report.append(st)
    if args.json:
        print(json.dumps(report, indent=2, default=_json_default))
        return 0
    for st in report:
        _print_status(st)
    return 0


def _json_default(v: object) -> object:
    if isinstance(v, bytes):
        return v.hex()
    return str(v)


def _time(ts: int) -> str:
    return "never" if not ts else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _print_status(st: dict[str, Any]) -> None:
    if st.get("oracle") is None:
        print(f"{st['chain_id']}: no oracle configured")
        return
    print(f"{st['chain_id']}: oracle {st['oracle']} ({st['description']}, v{st['version']})")
    print(f"  owner {st['owner']}; threshold {st['threshold']} of {st['attestorCount']} attestors")
    for a, yes in st["attestors"].items():
        print(f"  configured attestor {a}: {'registered' if yes else 'NOT registered'}")
    rnd = st["round"]
    if rnd is None:
        print("  no round yet: consumers read answer 0, updatedAt 0")
    else:
        age = st["block_time"] - rnd["updated_at"] if rnd["updated_at"] else None
        heartbeat = st.get("heartbeat_s") or st["configured_heartbeat_s"]
        fresh = "stale" if age is None or age > heartbeat else "fresh"
        print(
            f"  round {rnd['round_id']}: attestation {rnd['sequence']} {rnd['status']}, "
            f"budget {rnd['budget']} (this chain circulating {rnd['chain_circulating']}; "
            f"eligible reserves {rnd['eligible_reserves']}, total circulating "
            f"{rnd['total_circulating']})"
        )
        print(
            f"  updatedAt {_time(rnd['updated_at'])} (bank data; age "
            f"{'-' if age is None else f'{age} s'}, heartbeat {heartbeat} s: {fresh}); "
            f"snapshot {_time(rnd['as_of'])}, published {_time(rnd['published_at'])}"
        )
    print(f"  token {st['token']} totalSupply {st['total_supply']}")
    if "guard" in st:
        refused = st["mint_refused"]
        print(
            f"  guard {st['guard']} heartbeat {st['heartbeat_s']} s: "
            + (f"mints refused ({refused})" if refused else f"mintable now {st['mintable']}")
        )
