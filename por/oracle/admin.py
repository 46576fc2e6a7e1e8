"""Deploy and administer ReserveOracle and SecureMintGuard on a real EVM chain.

`OracleAdmin(chain_id=, rpc_url=, key=)` talks JSON-RPC to one endpoint with one key
(the deployer's, or the owner's) and signs EIP-1559 transactions itself (nonce from the
`pending` count, fees 2 x base fee + tip). Every operation is PLANNED first — chain id
checked, every call simulated or checked against the contract's state, the gas priced —
and refused with a typed error before anything is sent when:

- the endpoint serves another chain than the configuration names (`WrongChainError`);
- the key cannot pay for every planned transaction at today's fees (`InsufficientFundsError`);
- the key is not the contract's owner (`NotOwnerError`; the message carries the calldata,
  so a multisig owner can submit it), or the change would break the attestor set
  (`AttestorSetError`: an attestor added twice, a stranger removed, a threshold above the
  attestors).

Only then are the transactions sent, one after another, each waited for; `Sent` records
say what landed (address, tx hash, block). `status()` reads everything a deployer wants
to see and sends nothing.

I/O: JSON-RPC to the given endpoint only. The CLI (`por oracle ...`, por.cli.oracle)
reads the configuration and the key's environment variable and prints.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import rlp
from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from web3 import Web3

from por.chains.evm_rpc import Endpoint, EvmChainError, EvmRevertError, parse_data, parse_quantity
from por.errors import ConfigError, PublishError
from por.oracle.compiled import load_artifact
from por.oracle.report import STATUS_NAMES

__all__ = [
    "AttestorSetError",
    "InsufficientFundsError",
    "NotOwnerError",
    "OracleAdmin",
    "OracleAdminError",
    "Planned",
    "Sent",
    "WrongChainError",
]


class OracleAdminError(PublishError):
    """An administrative operation was refused before anything was sent, or failed."""


class WrongChainError(OracleAdminError):
    """The endpoint serves another chain than the configuration names."""


class InsufficientFundsError(OracleAdminError):
    """The key cannot pay for the planned transactions."""


class NotOwnerError(OracleAdminError):
    """The key is not the owner of the contract it would change."""


class AttestorSetError(OracleAdminError):
    """The change would leave the attestor set or threshold invalid."""


_ADDRESS_RE = re.compile(r"0x[0-9a-fA-F]{40}")
_ARTIFACTS = ("ReserveOracle", "SecureMintGuard", "StableToken")


@dataclass(frozen=True, slots=True, kw_only=True)
class Planned:
    """One transaction to send: what it does, its calldata (or init code) and gas limit."""

    what: str
    to: str | None  # None: a contract creation
    data: str
    gas: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Sent:
    what: str
    tx_hash: str
    block_number: int
    contract_address: str | None = None


def _check_address(value: str, what: str) -> str:
    if not isinstance(value, str) or not _ADDRESS_RE.fullmatch(value):
        raise ConfigError(f"{what} must be a 0x-hex address, got {value!r}", where=what)
    return to_checksum_address(value)


def _abi_type(item: dict[str, Any]) -> str:
    t = str(item["type"])
    if t.startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in item["components"])
        return f"({inner}){t[5:]}"
    return t


class OracleAdmin:
    """One chain, one endpoint, one key. See the module docstring."""

    def __init__(
        self,
        *,
        chain_id: int,
        rpc_url: str,
        key: str | bytes,
        timeout_s: float = 30.0,
        receipt_timeout_s: float = 300.0,
        poll_interval_s: float = 1.0,
        priority_fee_wei: int | None = None,
    ) -> None:
        self.chain_id = chain_id
        self.caip2 = f"eip155:{chain_id}"
        self.endpoint = Endpoint(rpc_url, chain_caip2=self.caip2, timeout_s=timeout_s)
        self.account = Account.from_key(key)
        self.receipt_timeout_s = receipt_timeout_s
        self.poll_interval_s = poll_interval_s
        self.priority_fee_wei = priority_fee_wei
        w3 = Web3()
        self._abis: dict[str, list[dict[str, Any]]] = {
            n: load_artifact(n)["abi"] for n in _ARTIFACTS
        }
        self._contracts = {n: w3.eth.contract(abi=abi) for n, abi in self._abis.items()}
        self._errors: dict[bytes, tuple[str, list[str]]] = {}
        for n in _ARTIFACTS:
            for e in load_artifact(n)["abi"]:
                if e["type"] == "error":
                    types = [_abi_type(i) for i in e["inputs"]]
                    self._errors[keccak(text=f"{e['name']}({','.join(types)})")[:4]] = (
                        e["name"],
                        types,
                    )

    @property
    def address(self) -> str:
        return str(self.account.address)

    @property
    def where(self) -> str:
        return self.endpoint.where

    # -- plumbing

    def _rpc(self, method: str, params: Sequence[Any]) -> Any:
        try:
            return self.endpoint.request(method, params)
        except EvmRevertError as e:
            raise OracleAdminError(self._decode_revert(e.data, e.message), where=self.where) from e
        except EvmChainError as e:
            raise OracleAdminError(e.message, where=self.where) from e

    def _decode_revert(self, data: str | None, message: str) -> str:
        m = re.fullmatch(r"0x((?:[0-9a-fA-F]{2})+)", data or "")
        if m:
            blob = bytes.fromhex(m.group(1))
            known = self._errors.get(blob[:4])
            if known is not None:
                name, types = known
                try:
                    args = abi_decode(types, blob[4:])
                    return f"the contract refuses: {name}({', '.join(str(a) for a in args)})"
                except Exception:  # noqa: S110 - fall back to the node's message
                    pass
        return f"the contract refuses: {message}"

    def call(self, name: str, address: str, fn: str, *args: Any) -> tuple[Any, ...]:
        """eth_call `fn` of the `name` artifact at `address`; decoded outputs."""
        c = self._contracts[name]
        data = c.encode_abi(fn, args=list(args))
        raw = self._rpc("eth_call", [{"to": address, "data": data}, "latest"])
        entry = next(e for e in self._abis[name] if e["type"] == "function" and e["name"] == fn)
        types = [_abi_type(o) for o in entry["outputs"]]
        try:
            return tuple(abi_decode(types, parse_data(raw, fn)))
        except Exception as e:  # eth_abi: not our contract at that address
            raise OracleAdminError(
                f"{fn}() at {address} does not answer like {name}: {e}", where=self.where
            ) from e

    def check_chain(self) -> None:
        """Refuse an endpoint that serves another chain (before anything is signed)."""
        got = parse_quantity(self._rpc("eth_chainId", []), "eth_chainId")
        if got != self.chain_id:
            raise WrongChainError(
                f"the endpoint serves chain id {got}, the configuration says {self.chain_id}; "
                "nothing was sent",
                where=self.where,
            )

    def balance(self) -> int:
        return parse_quantity(
            self._rpc("eth_getBalance", [self.address, "latest"]), "eth_getBalance"
        )

    def _fees(self) -> tuple[int, int]:
        block = self._rpc("eth_getBlockByNumber", ["latest", False])
        base = parse_quantity(block.get("baseFeePerGas", "0x0"), "baseFeePerGas")
        tip = self.priority_fee_wei
        if tip is None:
            try:
                tip = parse_quantity(self._rpc("eth_maxPriorityFeePerGas", []), "tip")
            except OracleAdminError:
                tip = 10**9
        return 2 * base + tip, tip

    def _estimate(self, to: str | None, data: str, what: str) -> int:
        call: dict[str, Any] = {"from": self.address, "data": data}
        if to is not None:
            call["to"] = to
        try:
            gas = parse_quantity(self._rpc("eth_estimateGas", [call]), "eth_estimateGas")
        except OracleAdminError as e:
            raise OracleAdminError(
                f"{what} would fail: {e.message}; nothing was sent", where=self.where
            ) from e
        return gas * 6 // 5 + 20_000

    def _code_at(self, address: str) -> bool:
        return self._rpc("eth_getCode", [address, "latest"]) not in (None, "0x", "0x0")

    def next_nonce(self) -> int:
        return parse_quantity(
            self._rpc("eth_getTransactionCount", [self.address, "pending"]), "nonce"
        )

    def created_address(self, nonce: int) -> str:
        """Where a contract this key creates with `nonce` will live (CREATE: keccak of
        rlp([sender, nonce]), last 20 bytes)."""
        raw = keccak(rlp.encode([bytes.fromhex(self.address[2:]), nonce]))[12:]
        return to_checksum_address("0x" + raw.hex())

    # -- planning

    def plan_oracle(
        self,
        *,
        decimals: int,
        description: str,
        attestors: Sequence[str],
        threshold: int,
        max_report_age_s: int,
        owner: str | None,
    ) -> Planned:
        addrs = [_check_address(a, "attestor") for a in attestors]
        if len({a.lower() for a in addrs}) != len(addrs):
            raise AttestorSetError("an attestor is listed twice", where=self.caip2)
        if not 1 <= threshold <= len(addrs):
            raise AttestorSetError(
                f"threshold {threshold} must be between 1 and the {len(addrs)} attestors",
                where=self.caip2,
            )
        owner_addr = _check_address(owner, "owner") if owner else self.address
        art = load_artifact("ReserveOracle")
        args = abi_encode(
            ["uint8", "string", "address[]", "uint256", "uint256", "address"],
            [decimals, description, addrs, threshold, max_report_age_s, owner_addr],
        )
        data = art["bytecode"] + args.hex()
        return Planned(
            what=f"deploy ReserveOracle (owner {owner_addr})",
            to=None,
            data=data,
            gas=self._estimate(None, data, "deploying ReserveOracle"),
        )

    def plan_guard(
        self, *, oracle: str, token: str, heartbeat_s: int, owner: str | None, decimals: int
    ) -> Planned:
        token_addr = _check_address(token, "token")
        if not self._code_at(token_addr):
            raise OracleAdminError(f"no contract at token {token_addr}", where=self.where)
        (token_decimals,) = self.call("StableToken", token_addr, "decimals")
        if token_decimals != decimals:
            raise OracleAdminError(
                f"token {token_addr} has {token_decimals} decimals, the oracle {decimals}: "
                "the guard would refuse every mint (DecimalsMismatch); nothing was sent",
                where=self.where,
            )
        owner_addr = _check_address(owner, "owner") if owner else self.address
        art = load_artifact("SecureMintGuard")
        args = abi_encode(
            ["address", "address", "uint256", "address"],
            [to_checksum_address(oracle), token_addr, heartbeat_s, owner_addr],
        )
        data = art["bytecode"] + args.hex()
        return Planned(
            what=f"deploy SecureMintGuard (token {token_addr}, heartbeat {heartbeat_s} s)",
            to=None,
            data=data,
            gas=self._estimate(None, data, "deploying SecureMintGuard"),
        )

    def _require_owner(self, oracle: str, calldata: Sequence[str]) -> None:
        (owner,) = self.call("ReserveOracle", oracle, "owner")
        if str(owner).lower() != self.address.lower():
            shown = "; ".join(calldata)
            raise NotOwnerError(
                f"{self.address} is not the owner of {oracle} (the owner is {owner}); nothing "
                f"was sent. The owner can submit this calldata to {oracle}: {shown}",
                where=self.where,
            )

    def plan_attestors(
        self, oracle: str, *, add: Sequence[str] = (), remove: Sequence[str] = ()
    ) -> list[Planned]:
        """addAttestor for each of `add`, then removeAttestor for each of `remove`."""
        oracle = _check_address(oracle, "oracle")
        adds = [_check_address(a, "attestor") for a in add]
        removes = [_check_address(a, "attestor") for a in remove]
        if not adds and not removes:
            raise AttestorSetError("nothing to change: give --add or --remove", where=self.caip2)
        if {a.lower() for a in adds} & {a.lower() for a in removes} or len(
            {a.lower() for a in adds + removes}
        ) != len(adds) + len(removes):
            raise AttestorSetError("an address is named twice", where=self.caip2)
        c = self._contracts["ReserveOracle"]
        planned = [
            (f"addAttestor {a}", str(c.encode_abi("addAttestor", args=[a])), a, True) for a in adds
        ] + [
            (f"removeAttestor {a}", str(c.encode_abi("removeAttestor", args=[a])), a, False)
            for a in removes
        ]
        self._require_owner(oracle, [d for _, d, _, _ in planned])
        for _, _, a, adding in planned:
            (known,) = self.call("ReserveOracle", oracle, "isAttestor", a)
            if adding and known:
                raise AttestorSetError(f"{a} is already an attestor", where=self.where)
            if not adding and not known:
                raise AttestorSetError(f"{a} is not an attestor", where=self.where)
        (count,) = self.call("ReserveOracle", oracle, "attestorCount")
        (threshold,) = self.call("ReserveOracle", oracle, "threshold")
        after = count + len(adds) - len(removes)
        if after < threshold:
            raise AttestorSetError(
                f"{after} attestors would remain, below the threshold {threshold}; lower the "
                "threshold first (por oracle set-threshold); nothing was sent",
                where=self.where,
            )
        # Each call is independent of the others' order (adds before removes), so each
        # is simulated against today's state; a removal is simulated only while the
        # threshold allows it on its own, else priced at a fixed bound.
        out = []
        for what, data, _, adding in planned:
            alone = adding or count - 1 >= threshold
            gas = self._estimate(oracle, data, what) if alone else 150_000
            out.append(Planned(what=what, to=oracle, data=data, gas=gas))
        return out

    def plan_threshold(self, oracle: str, threshold: int) -> Planned:
        oracle = _check_address(oracle, "oracle")
        data = str(self._contracts["ReserveOracle"].encode_abi("setThreshold", args=[threshold]))
        self._require_owner(oracle, [data])
        (count,) = self.call("ReserveOracle", oracle, "attestorCount")
        if not 1 <= threshold <= count:
            raise AttestorSetError(
                f"threshold {threshold} must be between 1 and the {count} attestors; "
                "nothing was sent",
                where=self.where,
            )
        return Planned(
            what=f"setThreshold {threshold}",
            to=oracle,
            data=data,
            gas=self._estimate(oracle, data, f"setThreshold {threshold}"),
        )

    def check_funds(self, planned: Sequence[Planned]) -> tuple[int, int]:
        """(balance, need) in wei; InsufficientFundsError if the key cannot pay them all."""
        max_fee, _ = self._fees()
        need = sum(p.gas for p in planned) * max_fee
        have = self.balance()
        if have < need:
            raise InsufficientFundsError(
                f"{self.address} holds {have} wei; the {len(planned)} transaction(s) may cost "
                f"up to {need} wei at today's fees; nothing was sent",
                where=self.where,
            )
        return have, need

    # -- sending

    def send(self, planned: Sequence[Planned]) -> list[Sent]:
        """Send each planned transaction in order, waiting for each; stop at a failure."""
        out: list[Sent] = []
        nonce = self.next_nonce()
        for p in planned:
            max_fee, tip = self._fees()
            tx: dict[str, Any] = {
                "type": 2,
                "chainId": self.chain_id,
                "nonce": nonce,
                "value": 0,
                "data": p.data,
                "gas": p.gas,
                "maxFeePerGas": max(max_fee, tip),
                "maxPriorityFeePerGas": tip,
            }
            if p.to is not None:
                tx["to"] = p.to
            signed = self.account.sign_transaction(tx)
            tx_hash = signed.hash.to_0x_hex()
            self._rpc("eth_sendRawTransaction", [signed.raw_transaction.to_0x_hex()])
            rcpt = self._receipt(tx_hash, p.what)
            out.append(
                Sent(
                    what=p.what,
                    tx_hash=tx_hash,
                    block_number=parse_quantity(rcpt.get("blockNumber"), "blockNumber"),
                    contract_address=None
                    if rcpt.get("contractAddress") is None
                    else to_checksum_address(rcpt["contractAddress"]),
                )
            )
            nonce += 1
        return out

    def _receipt(self, tx_hash: str, what: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.receipt_timeout_s
        while time.monotonic() < deadline:
            rcpt = self._rpc("eth_getTransactionReceipt", [tx_hash])
            if rcpt:
                if parse_quantity(rcpt.get("status"), "status") != 1:
                    raise OracleAdminError(f"{what}: tx {tx_hash} reverted", where=self.where)
                return dict(rcpt)
            time.sleep(self.poll_interval_s)
        raise OracleAdminError(
            f"{what}: no receipt for {tx_hash} after {self.receipt_timeout_s} s (it may still "
            "land; check it before sending again)",
            where=self.where,
        )

    # -- reading

    def status(
        self, *, oracle: str, token: str, guard: str | None, attestors: Sequence[str] = ()
    ) -> dict[str, Any]:
        """What the oracle (and the guard) on this chain hold now; sends nothing."""
        o = _check_address(oracle, "oracle")
        if not self._code_at(o):
            raise OracleAdminError(f"no contract at oracle {o}", where=self.where)
        out: dict[str, Any] = {"chain_id": self.caip2, "oracle": o}
        for fn in ("owner", "threshold", "attestorCount", "decimals", "description", "version"):
            out[fn] = self.call("ReserveOracle", o, fn)[0]
        out["attestors"] = {
            a: bool(self.call("ReserveOracle", o, "isAttestor", _check_address(a, "attestor"))[0])
            for a in attestors
        }
        (latest,) = self.call("ReserveOracle", o, "latestRoundId")
        now = parse_quantity(
            self._rpc("eth_getBlockByNumber", ["latest", False]).get("timestamp"), "timestamp"
        )
        out["block_time"] = now
        if latest:
            (rnd,) = self.call("ReserveOracle", o, "getRound", latest)
            updated = self.call("ReserveOracle", o, "latestRoundData")[3]
            out["round"] = {
                "round_id": latest,
                "sequence": rnd[0],
                "as_of": rnd[1],
                "reserves_as_of": rnd[2],
                "published_at": rnd[3],
                "budget": rnd[4],
                "chain_circulating": rnd[5],
                "eligible_reserves": rnd[6],
                "total_circulating": rnd[7],
                "status": STATUS_NAMES.get(rnd[9], str(rnd[9])),
                "attestation_digest": bytes(rnd[11]).hex(),
                "updated_at": updated,
            }
        else:
            out["round"] = None
        t = _check_address(token, "token")
        out["token"] = t
        out["total_supply"] = self.call("StableToken", t, "totalSupply")[0]
        if guard:
            g = _check_address(guard, "guard")
            out["guard"] = g
            out["heartbeat_s"] = self.call("SecureMintGuard", g, "heartbeat")[0]
            try:
                out["mintable"] = self.call("SecureMintGuard", g, "mintable")[0]
                out["mint_refused"] = None
            except OracleAdminError as e:
                out["mintable"] = 0
                out["mint_refused"] = e.message
        return out
