"""`por oracle deploy|status|set-attestors|set-threshold` against the anvil chains, with
keys from the environment (signed here, never an unlocked node account)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from eth_account import Account

from por.cli.main import main
from por.demo.anvil import contract
from por.oracle.evm_publisher import EvmPublisher
from por.oracle.intents import MemoryIntentStore
from tests.evm.conftest import ATTESTOR_KEYS, NOT_ATTESTOR_KEY, Rounds, World
from tests.evm.helpers import make_doc

pytestmark = [pytest.mark.anvil, pytest.mark.xdist_group("evm")]

DEPLOYER_KEY = "0x" + "d1" * 32
STRANGER_KEY = "0x" + "d2" * 32  # funded, owns nothing
POOR_KEY = "0x" + "d3" * 32  # never funded
ATTESTORS = [Account.from_key(k).address for k in ATTESTOR_KEYS]


def _config(tmp_path: Path, worlds: dict[int, World], **chain_extra: dict[str, str]) -> Path:
    text = f"""
[token]
symbol = "CNHC"
decimals = 6
currency = "CNH"

[signing]
key_file = "k.pem"
keys_file = "keys.json"

[oracle]
attestors = {json.dumps(ATTESTORS)}
threshold = 2
deployer_key_env = "POR_TEST_DEPLOYER"
max_report_age_s = 86400

[[custodians]]
kind = "files"
name = "harbour"
paths = ["statements/*.xml"]
"""
    for cid, w in worlds.items():
        extra = "".join(f'{k} = "{v}"\n' for k, v in chain_extra.get(str(cid), {}).items())
        text += f"""
[[chains]]
kind = "evm"
chain_id = "eip155:{cid}"
rpc_urls = ["{w.node.url}"]
token = "{w.token}"
start_block = 1
heartbeat_s = 90000
publisher_key_env = "POR_TEST_PUBLISHER"
attestor_key_envs = ["POR_TEST_ATTESTOR"]
{extra}"""
    path = tmp_path / "por.toml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module", autouse=True)
def _funded(worlds: dict[int, World]) -> None:
    for w in worlds.values():
        for k in (DEPLOYER_KEY, STRANGER_KEY):
            w.node.rpc("anvil_setBalance", [Account.from_key(k).address, hex(10**20)])


def _nonce(w: World, key: str) -> int:
    return int(w.node.w3.eth.get_transaction_count(Account.from_key(key).address))


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_deploy_then_status_then_threshold_and_attestors(
    worlds: dict[int, World],
    rounds: Rounds,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    w = worlds[56]
    monkeypatch.setenv("POR_TEST_DEPLOYER", DEPLOYER_KEY)
    cfg = _config(tmp_path, worlds)
    rc, out, err = _run(capsys, "oracle", "deploy", "--config", str(cfg), "--chain", "eip155:56")
    assert rc == 0, err
    oracle = re.search(r'oracle = "(0x[0-9a-fA-F]{40})"', out)
    guard = re.search(r'guard = "(0x[0-9a-fA-F]{40})"', out)
    assert oracle and guard, out
    assert len(re.findall(r"tx 0x[0-9a-f]{64} block \d+", out)) == 2
    assert "transfer ownership to a multisig" in out
    c = contract(w.node.w3, "ReserveOracle", oracle[1])
    deployer = Account.from_key(DEPLOYER_KEY).address
    assert c.functions.owner().call() == deployer
    assert c.functions.threshold().call() == 2 and c.functions.attestorCount().call() == 3
    assert all(c.functions.isAttestor(a).call() for a in ATTESTORS)
    assert c.functions.description().call() == "CNHC reserves (por)"
    g = contract(w.node.w3, "SecureMintGuard", guard[1])
    assert g.functions.oracle().call() == oracle[1] and g.functions.token().call() == w.token
    assert g.functions.heartbeat().call() == 90000 and g.functions.owner().call() == deployer

    cfg = _config(tmp_path, worlds, **{"56": {"oracle": oracle[1], "guard": guard[1]}})
    rc, out, err = _run(capsys, "oracle", "status", "--config", str(cfg), "--chain", "eip155:56")
    assert rc == 0, err
    assert "no round yet: consumers read answer 0, updatedAt 0" in out
    assert "mints refused (the contract refuses: NoRound())" in out
    assert out.count("registered") == 3
    # one published round, and status shows its budget and freshness
    seq, as_of = rounds.next()
    doc, digest = make_doc(sequence=seq, as_of=as_of, reserves=10**12, supply=10**11)
    EvmPublisher(
        chain_id=56,
        rpc_urls=w.node.url,
        contract=oracle[1],
        sender_key=STRANGER_KEY,
        attestor_keys=ATTESTOR_KEYS[:2],
        intent_store=MemoryIntentStore(),
    ).publish(doc, digest)
    budget = next(c["budget"] for c in doc["chains"] if c["chain_id"] == "eip155:56")
    rc, out, _ = _run(
        capsys, "oracle", "status", "--config", str(cfg), "--chain", "eip155:56", "--json"
    )
    (st,) = json.loads(out)
    assert st["round"]["sequence"] == seq and st["round"]["status"] == "FULLY_BACKED"
    assert str(st["round"]["budget"]) == budget
    rc, out, _ = _run(capsys, "oracle", "status", "--config", str(cfg), "--chain", "eip155:56")
    assert "FULLY_BACKED" in out and ": fresh)" in out

    # set-threshold: a key that is not the owner is refused before sending, with calldata
    monkeypatch.setenv("POR_TEST_DEPLOYER", STRANGER_KEY)
    before = _nonce(w, STRANGER_KEY)
    argv = ["oracle", "set-threshold", "--config", str(cfg), "--chain", "eip155:56", "3"]
    rc, _, err = _run(capsys, *argv)
    assert rc == 1 and "NotOwnerError" in err and "calldata" in err and "0x" in err
    assert _nonce(w, STRANGER_KEY) == before
    monkeypatch.setenv("POR_TEST_DEPLOYER", DEPLOYER_KEY)
    rc, out, err = _run(capsys, *argv)
    assert rc == 0, err
    assert re.search(r"setThreshold 3: tx 0x[0-9a-f]{64} block \d+", out)
    assert c.functions.threshold().call() == 3
    rc, _, err = _run(capsys, *argv[:-1], "4")
    assert rc == 1 and "AttestorSetError" in err and "between 1 and the 3" in err

    # set-attestors: removing one would leave 2 < threshold 3 — refused before sending
    before = _nonce(w, DEPLOYER_KEY)
    base = ["oracle", "set-attestors", "--config", str(cfg), "--chain", "eip155:56"]
    rc, _, err = _run(capsys, *base, "--remove", ATTESTORS[0])
    assert rc == 1 and "below the threshold 3" in err
    stranger = Account.from_key(NOT_ATTESTOR_KEY).address
    rc, _, err = _run(capsys, *base, "--remove", stranger)
    assert rc == 1 and "is not an attestor" in err
    assert _nonce(w, DEPLOYER_KEY) == before
    # add one and remove another in one go: 3 + 1 - 1 stays at the threshold
    rc, out, err = _run(capsys, *base, "--add", stranger, "--remove", ATTESTORS[0])
    assert rc == 0, err
    assert len(re.findall(r"Attestor 0x[0-9a-fA-F]{40}: tx 0x[0-9a-f]{64}", out)) == 2
    assert c.functions.isAttestor(stranger).call() is True
    assert c.functions.isAttestor(ATTESTORS[0]).call() is False
    rc, _, err = _run(capsys, *base, "--add", stranger)
    assert rc == 1 and "already an attestor" in err


def test_deploy_refuses_a_wrong_chain_id(
    worlds: dict[int, World],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The configuration says eip155:1, the URL given serves chain 56: refused before
    # anything is signed or sent, on either chain.
    monkeypatch.setenv("POR_TEST_DEPLOYER", DEPLOYER_KEY)
    cfg = _config(tmp_path, worlds)
    nonces = {cid: _nonce(w, DEPLOYER_KEY) for cid, w in worlds.items()}
    rc, _, err = _run(
        capsys,
        "oracle",
        "deploy",
        "--config",
        str(cfg),
        "--chain",
        "eip155:1",
        "--rpc-url",
        worlds[56].node.url,
    )
    assert rc == 1
    assert "WrongChainError" in err and "serves chain id 56" in err and "says 1" in err
    assert {cid: _nonce(w, DEPLOYER_KEY) for cid, w in worlds.items()} == nonces


def test_deploy_refuses_a_key_without_funds(
    worlds: dict[int, World],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("POR_TEST_DEPLOYER", POOR_KEY)
    cfg = _config(tmp_path, worlds)
    rc, _, err = _run(capsys, "oracle", "deploy", "--config", str(cfg), "--chain", "eip155:1")
    assert rc == 1
    poor = Account.from_key(POOR_KEY).address
    assert "InsufficientFundsError" in err and f"{poor} holds 0 wei" in err
    assert "nothing was sent" in err
    assert _nonce(worlds[1], POOR_KEY) == 0


def test_deploy_refuses_without_settings_or_key(
    worlds: dict[int, World],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("POR_TEST_DEPLOYER", raising=False)
    cfg = _config(tmp_path, worlds)
    rc, _, err = _run(capsys, "oracle", "deploy", "--config", str(cfg), "--chain", "eip155:1")
    assert rc == 1 and "set POR_TEST_DEPLOYER" in err
    rc, _, err = _run(capsys, "oracle", "deploy", "--config", str(cfg), "--chain", "eip155:10")
    assert rc == 1 and "no EVM chain eip155:10" in err
    monkeypatch.setenv("POR_TEST_DEPLOYER", DEPLOYER_KEY)
    cfg = _config(tmp_path, worlds, **{"1": {"oracle": worlds[1].oracle}})
    rc, _, err = _run(capsys, "oracle", "deploy", "--config", str(cfg), "--chain", "eip155:1")
    assert rc == 1 and "--replace" in err
