"""The sim answers in Solana's documented shapes and errors, and stops cleanly."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from solders.keypair import Keypair

from por.demo.solana_sim import SolanaSim, b58decode

from .conftest import World

pytestmark = pytest.mark.xdist_group("solana")


def rpc(world: World, method: str, params: list[Any]) -> dict[str, Any]:
    body = {"jsonrpc": "2.0", "id": 5, "method": method, "params": params}
    answer: dict[str, Any] = httpx.post(world.sim.url, json=body, timeout=10).json()
    assert answer["jsonrpc"] == "2.0" and answer["id"] == 5
    return answer


def test_get_token_supply_shape(world: World) -> None:
    result = rpc(world, "getTokenSupply", [str(world.cnhc.mint), {"commitment": "finalized"}])[
        "result"
    ]
    assert result["context"] == {
        "slot": world.sim.slot,
        "apiVersion": result["context"]["apiVersion"],
    }
    value = result["value"]
    assert value["amount"] == str(world.cnhc.supply) and value["decimals"] == 6
    whole, frac = divmod(world.cnhc.supply, 10**6)
    assert value["uiAmountString"] == f"{whole}.{frac:06d}".rstrip("0").rstrip(".")


def test_raw_ui_amount_is_a_json_number_not_a_string(world: World) -> None:
    raw = httpx.post(
        world.sim.url,
        json={
            "jsonrpc": "2.0",
            "id": 1,
            "method": "getTokenSupply",
            "params": [str(world.cnhc22.mint)],
        },
    ).text
    assert '"uiAmount":' in raw and '"uiAmount":"' not in raw


def test_program_accounts_shape_and_filters(world: World) -> None:
    mint = str(world.cnhc22.mint)
    result = rpc(
        world,
        "getProgramAccounts",
        [
            "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb",
            {
                "encoding": "jsonParsed",
                "withContext": True,
                "commitment": "finalized",
                "filters": [{"memcmp": {"offset": 0, "bytes": mint}}],
            },
        ],
    )["result"]
    assert result["context"]["slot"] == world.sim.slot
    assert len(result["value"]) == 31
    entry = result["value"][0]
    assert set(entry) == {"pubkey", "account"}
    data = entry["account"]["data"]
    assert data["program"] == "spl-token-2022" and data["space"] == 170
    info = data["parsed"]["info"]
    assert info["mint"] == mint and info["state"] == "initialized"
    assert info["extensions"] == [{"extension": "immutableOwner"}]
    # The classic-program dataSize filter excludes 170-byte Token-2022 accounts.
    plain = rpc(
        world,
        "getProgramAccounts",
        [
            "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb",
            {
                "encoding": "base64",
                "filters": [{"dataSize": 165}, {"memcmp": {"offset": 0, "bytes": mint}}],
            },
        ],
    )
    assert plain["result"] == []


@pytest.mark.parametrize(
    ("method", "params", "code", "message"),
    [
        (
            "getTokenSupply",
            [str(Keypair().pubkey())],
            -32602,
            "Invalid param: could not find account",
        ),
        ("getTokenSupply", ["xyz"], -32602, "Invalid param"),
        ("noSuchMethod", [], -32601, "Method not found"),
        ("getBlock", [10**9, {"transactionDetails": "none"}], -32004, "Block not available"),
        (
            "getProgramAccounts",
            ["TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA", {"minContextSlot": 10**9}],
            -32016,
            "Minimum context slot",
        ),
    ],
)
def test_errors_are_json_rpc_error_objects(
    world: World, method: str, params: list[Any], code: int, message: str
) -> None:
    error = rpc(world, method, params)["error"]
    assert error["code"] == code and message in error["message"]


def test_parse_error_for_a_non_json_body(world: World) -> None:
    answer = json.loads(httpx.post(world.sim.url, content=b"{nope").text)
    assert answer["error"]["code"] == -32700


def test_base58_decoder_keeps_leading_zero_bytes() -> None:
    assert b58decode("1111") == b"\0\0\0\0"
    assert b58decode("11111111111111111111111111111111") == bytes(32)
    with pytest.raises(ValueError, match="invalid base58"):
        b58decode("0OIl")


def test_sim_stops_and_frees_its_port() -> None:
    with SolanaSim() as sim:
        url = sim.url
        assert (
            httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "getSlot"}).json()["result"]
            == sim.slot
        )
    with pytest.raises(httpx.ConnectError):
        httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "getSlot"}, timeout=2)
