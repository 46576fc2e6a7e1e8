"""Helpers for the EVM tests: attestation documents, a JSON-RPC proxy that misbehaves, and
decoding ReserveOracle's custom errors."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from eth_abi.abi import decode as abi_decode
from eth_utils import keccak

from por.core.attestation import (
    AllocationPolicy,
    Attestation,
    Liabilities,
    PreviousRef,
    Token,
    chain_entry_from_values,
    reserves_from_dicts,
)
from por.core.budgets import with_budgets
from por.core.canonical import canonical_bytes
from por.core.policy import assess
from por.oracle.compiled import load_artifact


def rfc3339(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


CHAINS = ("eip155:1", "eip155:56")


def make_attestation(
    *,
    sequence: int,
    as_of: int,
    reserves: int,
    supply: int | Sequence[int],
    root: str | None = None,
    chains: Sequence[str] = CHAINS,
    excluded: Sequence[int] | None = None,
    reasons: Sequence[str] = (),
    reserves_age_s: int = 3600,
    policy: AllocationPolicy | None = None,
) -> Attestation:
    """A consistent por-attestation-v1 document with per-chain budgets.

    `supply` is the circulating supply of each chain (one int is split 60/40 over two
    chains); `excluded` each chain's treasury balance (counted in its total supply); the
    one reserve line's statement is `reserves_age_s` older than `as_of`.
    """
    if isinstance(supply, int):
        split = [supply * 3 // 5, supply - supply * 3 // 5] if len(chains) == 2 else [supply]
    else:
        split = list(supply)
    treasury = list(excluded) if excluded is not None else [0] * len(chains)
    t = datetime.fromtimestamp(as_of, UTC)
    entries = tuple(
        chain_entry_from_values(
            chain_id=cid,
            token=f"{cid}:0x" + "ab" * 20,
            block_number=100 + sequence,
            block_hash="cd" * 32,
            block_time=t,
            total_supply=c + x,
            excluded=[(f"{cid}:0x" + "11" * 20, x, "treasury")] if x else [],
            holders=3,
        )
        for cid, c, x in zip(chains, split, treasury, strict=True)
    )
    circulating = sum(split)
    statement_as_of = rfc3339(as_of - reserves_age_s)
    lines = reserves_from_dicts(
        [
            {
                "custodian": "Harbour Trust Bank (Hong Kong) Limited",
                "account": "HK******1234",
                "asset_class": "cash",
                "instrument": None,
                "currency": "CNH",
                "amount": str(reserves),
                "market_value": str(reserves),
                "haircut_bps": 0,
                "eligible_value": str(reserves),
                "ineligible_reason": None,
                "statement": {
                    "format": "camt.053.001.08",
                    "id": f"STMT-{sequence}",
                    "as_of": statement_as_of,
                    "sha256": hashlib.sha256(f"statement {sequence}".encode()).hexdigest(),
                },
            }
        ]
    )
    att = Attestation(
        sequence=sequence,
        issued_at=t + timedelta(seconds=5),
        as_of=t,
        token=Token(symbol="CNHC", decimals=6, currency="CNH"),
        chains=entries,
        reserves=lines,
        liabilities=Liabilities(
            root=root or hashlib.sha256(f"root {sequence}".encode()).hexdigest(),
            total=circulating,
            leaf_count=3,
        ),
        totals=assess(
            eligible_reserves=reserves,
            circulating_supply=circulating,
            degraded_reasons=list(reasons),
        ),
        previous=None
        if sequence == 1
        else PreviousRef(
            sequence=sequence - 1,
            digest=hashlib.sha256(f"previous {sequence}".encode()).hexdigest(),
        ),
    )
    return with_budgets(att, policy or AllocationPolicy())


def make_doc(**kw: Any) -> tuple[dict[str, Any], str]:
    """`make_attestation(...)` as the wire dict and its digest (what publishers take)."""
    att = make_attestation(**kw)
    doc = att.to_dict()
    return doc, hashlib.sha256(canonical_bytes(doc)).hexdigest()


_ORACLE_ERRORS = {
    keccak(text=f"{e['name']}({','.join(i['type'] for i in e['inputs'])})")[:4]: e["name"]
    for name in ("ReserveOracle", "PorConsumer", "SecureMintGuard", "StableToken")
    for e in load_artifact(name)["abi"]
    if e["type"] == "error"
}


def revert_name(w3: Any, to: str, data: str, sender: str | None = None) -> str | None:
    """eth_call `data` to `to`; the custom error's name if it reverts, None if it succeeds."""
    call = {"to": to, "data": data}
    if sender:
        call["from"] = sender
    resp = w3.provider.make_request("eth_call", [call, "latest"])
    if "error" not in resp:
        return None
    blob = resp["error"].get("data")
    if isinstance(blob, dict):
        blob = blob.get("data")
    if not blob or len(blob) < 10:
        return f"revert:{resp['error'].get('message')}"
    if blob[:10] == "0x08c379a0":  # Error(string): a require() message
        (reason,) = abi_decode(["string"], bytes.fromhex(blob[10:]))
        return f"Error:{reason}"
    return _ORACLE_ERRORS.get(bytes.fromhex(blob[2:10]), blob[:10])


class RpcProxy:
    """A 127.0.0.1 JSON-RPC proxy in front of an upstream node, with misbehaviours.

    mode: "pass" | "lie" (totalSupply/balanceOf answers + 1) | "malformed" (body is not JSON)
    | "bad_result" (eth_call result is not hex) | "drop_transfer" (eth_getLogs answers omit
    their first holder-to-holder Transfer: the sum of balances stays right, two balances
    do not). max_log_range: refuse eth_getLogs ranges wider than this with a typical
    provider error.
    """

    def __init__(
        self, upstream: str, *, mode: str = "pass", max_log_range: int | None = None
    ) -> None:
        self.upstream = upstream
        self.mode = mode
        self.max_log_range = max_log_range
        self.log_requests: list[tuple[int, int]] = []
        self.refused = 0
        self.dropped: list[dict[str, Any]] = []
        self._client = httpx.Client(timeout=10)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                out = proxy.handle(body)
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def handle(self, body: bytes) -> bytes:
        req = json.loads(body)
        method = req.get("method")
        if method == "eth_getLogs" and self.max_log_range is not None:
            f = req["params"][0]
            a, b = int(f["fromBlock"], 16), int(f["toBlock"], 16)
            self.log_requests.append((a, b))
            if b - a + 1 > self.max_log_range:
                self.refused += 1
                return json.dumps(
                    {
                        "jsonrpc": "2.0",
                        "id": req["id"],
                        "error": {
                            "code": -32005,
                            "message": "query returned more than 10000 results",
                        },
                    }
                ).encode()
        if self.mode == "malformed" and method != "eth_chainId":
            return b"<html>502 Bad Gateway</html>"
        resp = self._client.post(
            self.upstream, content=body, headers={"content-type": "application/json"}
        ).json()
        if method == "eth_getLogs" and self.mode == "drop_transfer" and resp.get("result"):
            zero = "0x" + "00" * 32
            for i, log in enumerate(resp["result"]):
                if len(log["topics"]) == 3 and zero not in log["topics"][1:]:
                    self.dropped.append(resp["result"].pop(i))
                    break
        if method == "eth_call" and "result" in resp:
            selector = req["params"][0].get("data", "")[:10]
            if self.mode == "bad_result":
                resp["result"] = "0xnothex"
            elif self.mode == "lie" and selector in ("0x18160ddd", "0x70a08231"):
                value = int(resp["result"], 16) + 1
                resp["result"] = "0x" + value.to_bytes(32, "big").hex()
        return json.dumps(resp).encode()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._client.close()
