"""[allocation], [oracle] and the per-chain guard settings of por.toml."""

from __future__ import annotations

from pathlib import Path

import pytest

from por.core.attestation import AllocationPolicy
from por.errors import ConfigError
from por.service.config import load_config
from por.service.wiring import allocation_policy
from tests.service.test_config import MINIMAL, write

# Chains and a custodian as any real configuration has them.
CHAINS = """
[[chains]]
kind = "evm"
chain_id = "eip155:1"
rpc_urls = ["http://127.0.0.1:1"]
token = "0x00000000000000000000000000000000000000aa"
start_block = 100

[[chains]]
kind = "evm"
chain_id = "eip155:56"
rpc_urls = ["http://127.0.0.1:1"]
token = "0x00000000000000000000000000000000000000bb"
start_block = 100
guard = "0x00000000000000000000000000000000000000cc"
heartbeat_s = 86400

[[custodians]]
kind = "files"
name = "harbour"
paths = ["statements/*.xml"]
"""
A1 = "0x" + "a1" * 20
A2 = "0x" + "a2" * 20


def test_defaults_share_headroom_by_circulating(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, MINIMAL + CHAINS))
    assert allocation_policy(cfg) == AllocationPolicy()
    assert cfg.oracle is None


def test_fixed_weights_and_oracle_settings(tmp_path: Path) -> None:
    text = (
        MINIMAL
        + CHAINS
        + f"""
[allocation]
weights = {{ "eip155:1" = 3, "eip155:56" = 1 }}
headroom_share_bps = 8000
cover_excluded = false

[oracle]
attestors = ["{A1}", "{A2}"]
threshold = 2
"""
    )
    cfg = load_config(write(tmp_path, text))
    policy = allocation_policy(cfg)
    assert policy.fixed_weights == {"eip155:1": 3, "eip155:56": 1}
    assert (policy.headroom_share_bps, policy.cover_excluded) == (8000, False)
    assert cfg.oracle is not None and cfg.oracle.threshold == 2
    assert cfg.oracle.deployer_key_env == "POR_DEPLOYER_KEY" and cfg.oracle.owner is None
    evm = cfg.chains[1]
    assert getattr(evm, "heartbeat_s", None) == 86400


@pytest.mark.parametrize(
    ("extra", "where", "what"),
    [
        ("[allocation]\nweights = 'supply'\n", "allocation.weights", "circulating"),
        ("[allocation]\nheadroom_share_bps = 10001\n", "allocation.headroom_share_bps", "<= 10000"),
        (
            "[allocation]\nweights = { 'eip155:1' = 1 }\n",
            "allocation.weights",
            "missing eip155:56",
        ),
        (
            "[allocation]\nweights = { 'eip155:1' = 0, 'eip155:56' = 0 }\n",
            "allocation.weights",
            "all be zero",
        ),
        (f"[oracle]\nattestors = ['{A1}']\nthreshold = 2\n", "oracle", "more than the 1"),
        (f"[oracle]\nattestors = ['{A1}', '{A1}']\nthreshold = 1\n", "oracle.attestors", "twice"),
        ("[oracle]\nattestors = ['0x12']\nthreshold = 1\n", "oracle.attestors", "0x-hex"),
        (f"[oracle]\nattestors = ['{A1}']\nthreshold = 0\n", "oracle.threshold", ">= 1"),
    ],
)
def test_bad_settings_name_the_key(tmp_path: Path, extra: str, where: str, what: str) -> None:
    with pytest.raises(ConfigError) as ei:
        load_config(write(tmp_path, MINIMAL + CHAINS + extra))
    text = str(ei.value)
    assert f"por.toml:{where}" in text and what in text, text


def test_heartbeat_has_a_floor(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"chains\[1\]\.heartbeat_s"):
        load_config(write(tmp_path, MINIMAL + CHAINS.replace("86400", "5")))
