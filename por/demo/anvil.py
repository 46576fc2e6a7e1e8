"""A local anvil node for tests, benchmarks and `por demo`, plus deploy and bulk helpers.

`AnvilNode` starts the project-local anvil (tools/node_modules, or $POR_ANVIL) on
127.0.0.1 at a free port and stops it again; it is a context manager. By default it runs
with `--slots-in-an-epoch 1`, so anvil's `finalized` block is `latest - 2` (anvil computes
finalized = latest - 2 x slots-in-an-epoch, safe = latest - slots; see docs/evm.md) and
`mine(node, 2)` after a change makes it final.

The helpers deploy por's committed contract artifacts (StableToken, ReserveOracle,
SecureMintGuard, PorConsumer) through anvil's unlocked dev accounts and create many holders
fast with the token's batch functions. This module is test/demo tooling: it starts
processes and talks JSON-RPC to the node it started; it never touches a real network.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, cast

from eth_account import Account
from web3 import HTTPProvider, Web3

from por.errors import ChainError, ConfigError
from por.oracle.compiled import load_artifact

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MNEMONIC = "test test test test test test test test test test test junk"


class AnvilError(ChainError):
    """The local anvil node could not be started or answered wrongly."""


def find_anvil() -> str:
    """$POR_ANVIL, else the native binary npm placed for this platform, else the npm shim."""
    env = os.environ.get("POR_ANVIL")
    if env:
        return env
    modules = REPO_ROOT / "tools" / "node_modules"
    # The npm shim (.bin/anvil) is a node script that spawns the platform binary; starting
    # the binary directly saves a node process and makes stop() signal anvil itself.
    for native in sorted((modules / "@foundry-rs").glob("anvil-*/bin/anvil")):
        if os.access(native, os.X_OK):
            return str(native)
    shim = modules / ".bin" / "anvil"
    if shim.exists():
        return str(shim)
    found = shutil.which("anvil")
    if found:
        return found
    raise ConfigError("anvil not found: run ./dev setup or set POR_ANVIL", where=str(shim))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dev_private_keys(mnemonic: str = DEFAULT_MNEMONIC, count: int = 10) -> list[str]:
    """The private keys anvil derives from `mnemonic` (m/44'/60'/0'/0/i), 0x-hex."""
    Account.enable_unaudited_hdwallet_features()
    return [
        Account.from_mnemonic(mnemonic, account_path=f"m/44'/60'/0'/0/{i}").key.to_0x_hex()
        for i in range(count)
    ]


class AnvilNode:
    """One anvil process on 127.0.0.1; `with AnvilNode(chain_id=1) as node: node.w3 ...`."""

    def __init__(
        self,
        *,
        chain_id: int = 31337,
        block_time_s: float | None = None,
        slots_in_an_epoch: int = 1,
        accounts: int = 10,
        mnemonic: str = DEFAULT_MNEMONIC,
        balance_eth: int = 1_000_000,
        gas_limit: int | None = None,
        base_fee_wei: int | None = None,
        automine: bool = True,
        extra_args: Sequence[str] = (),
        binary: str | None = None,
        start_timeout_s: float = 20.0,
    ) -> None:
        self.chain_id = chain_id
        self.block_time_s = block_time_s
        self.slots_in_an_epoch = slots_in_an_epoch
        self.accounts_count = accounts
        self.mnemonic = mnemonic
        self.balance_eth = balance_eth
        self.gas_limit = gas_limit
        self.base_fee_wei = base_fee_wei
        self.automine = automine
        self.extra_args = tuple(extra_args)
        self.binary = binary or find_anvil()
        self.start_timeout_s = start_timeout_s
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._w3: Web3 | None = None
        self.private_keys = dev_private_keys(mnemonic, accounts)
        self.accounts = [Account.from_key(k).address for k in self.private_keys]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def caip2(self) -> str:
        return f"eip155:{self.chain_id}"

    @property
    def w3(self) -> Web3:
        if self._w3 is None:
            raise AnvilError("anvil is not running", where=self.caip2)
        return self._w3

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def _argv(self, port: int) -> list[str]:
        argv = [
            self.binary,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--chain-id",
            str(self.chain_id),
            "--accounts",
            str(self.accounts_count),
            "--mnemonic",
            self.mnemonic,
            "--balance",
            str(self.balance_eth),
            "--slots-in-an-epoch",
            str(self.slots_in_an_epoch),
            "--silent",
        ]
        if self.block_time_s is not None:
            argv += ["--block-time", str(self.block_time_s)]
        if not self.automine and self.block_time_s is None:
            argv += ["--no-mining"]
        if self.gas_limit is not None:
            argv += ["--gas-limit", str(self.gas_limit)]
        if self.base_fee_wei is not None:
            argv += ["--block-base-fee-per-gas", str(self.base_fee_wei)]
        return argv + list(self.extra_args)

    def start(self) -> AnvilNode:
        if self._proc is not None:
            return self
        last_err = ""
        for _attempt in range(3):  # another process may grab the free port first
            port = free_port()
            proc = subprocess.Popen(  # noqa: S603 - argv list, no shell
                self._argv(port),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - only prctl, async-signal-safe
            )
            w3 = Web3(HTTPProvider(f"http://127.0.0.1:{port}", request_kwargs={"timeout": 10}))
            deadline = time.monotonic() + self.start_timeout_s
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    last_err = (proc.stderr.read() if proc.stderr else b"").decode(errors="replace")
                    break
                try:
                    if w3.eth.chain_id == self.chain_id:
                        self.port, self._proc, self._w3 = port, proc, w3
                        return self
                except Exception:  # noqa: S110 - not listening yet: poll again
                    pass
                time.sleep(0.05)
            else:
                last_err = "did not answer in time"
            _stop_process(proc)
        raise AnvilError(
            f"anvil did not start: {last_err.strip()[-500:]}", where=f"{self.caip2} {self.binary}"
        )

    def stop(self) -> None:
        if self._proc is not None:
            _stop_process(self._proc)
            self._proc = None
            self._w3 = None

    def __enter__(self) -> AnvilNode:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def rpc(self, method: str, params: Sequence[Any] = ()) -> Any:
        """A raw JSON-RPC call (anvil_*, evm_* methods); raises AnvilError on an error answer."""
        resp = self.w3.provider.make_request(cast(Any, method), list(params))
        if "error" in resp:
            raise AnvilError(f"{method}: {resp['error']}", where=f"{self.caip2} {self.url}")
        return resp.get("result")

    def mine(self, blocks: int = 1) -> None:
        self.rpc("anvil_mine", [hex(blocks)])

    def finalize(self) -> None:
        """Mine enough empty blocks that everything so far is at or below `finalized`."""
        self.mine(2 * self.slots_in_an_epoch)

    def block_number(self, tag: str = "latest") -> int:
        return int(self.w3.eth.get_block(cast(Any, tag))["number"])


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM it when the process that started it dies (Linux
    PR_SET_PDEATHSIG), so a demo killed with SIGKILL leaves no anvil behind."""
    if sys.platform != "linux":
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG


def _stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    if proc.stderr:
        proc.stderr.close()


@contextlib.contextmanager
def anvil(**kwargs: Any) -> Iterator[AnvilNode]:
    node = AnvilNode(**kwargs)
    try:
        yield node.start()
    finally:
        node.stop()


# ---------------------------------------------------------------- deploy helpers


def _send(w3: Web3, tx: dict[str, Any], what: str) -> Any:
    tx_hash = w3.eth.send_transaction(cast(Any, tx))
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60, poll_latency=0.01)
    if receipt["status"] != 1:
        raise AnvilError(f"{what} reverted (tx {tx_hash.hex()})", where=f"chain {w3.eth.chain_id}")
    return receipt


def deploy_contract(w3: Web3, name: str, *args: Any, sender: str) -> str:
    """Deploy a committed artifact from an unlocked account; returns the checksum address."""
    art = load_artifact(name)
    factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    tx = factory.constructor(*args).build_transaction({"from": sender, "gas": 8_000_000})
    receipt = _send(w3, tx, f"deploy {name}")
    return str(receipt["contractAddress"])


def contract(w3: Web3, name: str, address: str) -> Any:
    """A web3 contract object for a committed artifact at `address`."""
    return w3.eth.contract(
        address=Web3.to_checksum_address(address), abi=load_artifact(name)["abi"]
    )


def deploy_stablecoin(
    w3: Web3, *, issuer: str, name: str = "CNH Coin", symbol: str = "CNHC"
) -> str:
    """The test/demo ERC-20 (6 decimals); `issuer` (an unlocked account) may mint and burn."""
    return deploy_contract(w3, "StableToken", name, symbol, issuer, sender=issuer)


def deploy_oracle(
    w3: Web3,
    *,
    owner: str,
    attestors: Sequence[str],
    threshold: int,
    decimals: int = 6,
    description: str = "CNHC reserves (por)",
    max_report_age_s: int = 7 * 24 * 3600,
) -> str:
    """ReserveOracle with the given attestor addresses and signature threshold."""
    return deploy_contract(
        w3,
        "ReserveOracle",
        decimals,
        description,
        [Web3.to_checksum_address(a) for a in attestors],
        threshold,
        max_report_age_s,
        owner,
        sender=owner,
    )


def deploy_consumer(w3: Web3, *, feed: str, token: str, heartbeat_s: int, sender: str) -> str:
    """PorConsumer: a Chainlink-PoR-style reader of `feed` guarding `token` mints."""
    return deploy_contract(
        w3,
        "PorConsumer",
        Web3.to_checksum_address(feed),
        Web3.to_checksum_address(token),
        heartbeat_s,
        sender=sender,
    )


def deploy_guard(
    w3: Web3, *, oracle: str, token: str, heartbeat_s: int, owner: str, sender: str | None = None
) -> str:
    """SecureMintGuard for `token` on this chain: mints need a fresh FULLY_BACKED round of
    `oracle` whose budget covers totalSupply() + amount (docs/budgets.md)."""
    return deploy_contract(
        w3,
        "SecureMintGuard",
        Web3.to_checksum_address(oracle),
        Web3.to_checksum_address(token),
        heartbeat_s,
        Web3.to_checksum_address(owner),
        sender=sender or owner,
    )


def set_mint_guard(w3: Web3, token: str, guard: str, *, issuer: str) -> None:
    """The demo token asks `guard` before every mint from now on."""
    tx = (
        contract(w3, "StableToken", token)
        .functions.setMintGuard(Web3.to_checksum_address(guard))
        .build_transaction({"from": Web3.to_checksum_address(issuer), "gas": 100_000})
    )
    _send(w3, tx, "setMintGuard")


def _batches(
    recipients: Sequence[str], amounts: Sequence[int], chunk: int
) -> Iterator[tuple[list[str], list[int]]]:
    if len(recipients) != len(amounts):
        raise ConfigError(
            f"{len(recipients)} recipients but {len(amounts)} amounts", where="anvil batch"
        )
    for i in range(0, len(recipients), chunk):
        yield (
            [Web3.to_checksum_address(a) for a in recipients[i : i + chunk]],
            list(amounts[i : i + chunk]),
        )


def _batch_call(
    w3: Web3,
    token: str,
    fn: str,
    *,
    sender: str,
    recipients: Sequence[str],
    amounts: Sequence[int],
    chunk: int,
) -> int:
    """Send one batch tx per `chunk` recipients without waiting in between; returns the count."""
    c = contract(w3, "StableToken", token)
    sender = Web3.to_checksum_address(sender)
    hashes = []
    nonce = int(w3.eth.get_transaction_count(Web3.to_checksum_address(sender), "pending"))
    for to, amts in _batches(recipients, amounts, chunk):
        tx = getattr(c.functions, fn)(to, amts).build_transaction(
            {"from": sender, "nonce": nonce, "gas": 60_000 + 40_000 * len(to)}
        )
        hashes.append(w3.eth.send_transaction(tx))
        nonce += 1
    for h in hashes:
        r = w3.eth.wait_for_transaction_receipt(h, timeout=120, poll_latency=0.01)
        if r["status"] != 1:
            raise AnvilError(f"{fn} reverted (tx {h.hex()})", where=f"chain {w3.eth.chain_id}")
    return len(hashes)


def mint_batch(
    w3: Web3,
    token: str,
    *,
    issuer: str,
    recipients: Sequence[str],
    amounts: Sequence[int],
    chunk: int = 500,
) -> int:
    """Issuer mints amounts[i] to recipients[i], `chunk` per transaction."""
    return _batch_call(
        w3, token, "mintBatch", sender=issuer, recipients=recipients, amounts=amounts, chunk=chunk
    )


def transfer_batch(
    w3: Web3,
    token: str,
    *,
    sender: str,
    recipients: Sequence[str],
    amounts: Sequence[int],
    chunk: int = 500,
) -> int:
    """`sender` (unlocked or impersonated) sends amounts[i] to recipients[i]."""
    return _batch_call(
        w3,
        token,
        "transferBatch",
        sender=sender,
        recipients=recipients,
        amounts=amounts,
        chunk=chunk,
    )


def impersonate(node: AnvilNode, address: str, *, fund_wei: int = 10**20) -> str:
    """Let tests send from any address (anvil_impersonateAccount) and give it gas money."""
    addr = Web3.to_checksum_address(address)
    node.rpc("anvil_impersonateAccount", [addr])
    node.rpc("anvil_setBalance", [addr, hex(fund_wei)])
    return addr
