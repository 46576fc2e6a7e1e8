"""The signed custodian API against a real HTTP server on 127.0.0.1 (no mocks).

The server thread signs each answer with the custodian's Ed25519 key; per-test
behaviour is switched through `server.mode`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from Crypto.PublicKey import ECC

from por.custodians.api import (
    SIGNATURE_HEADER,
    ApiSignatureError,
    CustodianApiSource,
    ReplayError,
    StaleResponseError,
    sign_body,
)
from por.custodians.model import StatementParseError
from por.errors import CustodianError

pytestmark = pytest.mark.xdist_group("custodian_api")

NOW = datetime(2025, 6, 30, 16, 30, tzinfo=UTC)


def _keypair() -> tuple[bytes, bytes]:
    k = ECC.generate(curve="Ed25519")
    return k.seed, k.public_key().export_key(format="raw")


SEED, PUB = _keypair()
OTHER_SEED, OTHER_PUB = _keypair()


class _Server(ThreadingHTTPServer):
    mode = "good"
    last_body: bytes = b""
    last_sig: str = ""
    requests: list[str]


def _body(nonce: str, *, timestamp: datetime, as_of: datetime) -> bytes:
    doc: dict[str, Any] = {
        "format": "custodian-api-v1",
        "custodian": "Harbour Trust Bank (Hong Kong) Limited",
        "nonce": nonce,
        "timestamp": timestamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "statement_id": f"HTBK-API-{nonce[:8]}",
        "accounts": [
            {
                "account": "8870-310-1004471",
                "currency": "CNH",
                "closing_booked": "415008117.35",
                "closing_available": "415008117.35",
                "as_of": as_of.strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
            {
                "account": "8870-310-1005512",
                "currency": "CNH",
                "closing_booked": "18250000.00",
                "closing_available": None,
                "as_of": as_of.strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
        ],
        "holdings": [
            {
                "account": "8870-900-2001188",
                "asset_class": "government_security",
                "isin": "HK0000123452",
                "issuer": "Hong Kong Monetary Authority",
                "issuer_type": "central_bank",
                "currency": "CNH",
                "nominal": "80000000.00",
                "clean_price": "99.861",
                "market_value": "79888800.00",
                "maturity_date": "2025-09-26",
                "start_date": None,
            },
        ],
    }
    return json.dumps(doc).encode()


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        srv = self.server
        url = urlparse(self.path)
        nonce = parse_qs(url.query).get("nonce", [""])[0]
        srv.requests.append(nonce)
        mode = srv.mode
        ts = NOW if mode != "stale_timestamp" else NOW - timedelta(hours=1)
        as_of = NOW - timedelta(minutes=30) if mode != "stale_balance" else NOW - timedelta(days=5)
        body = _body(nonce if mode != "wrong_nonce" else "0" * 32, timestamp=ts, as_of=as_of)
        sig = sign_body(body, OTHER_SEED if mode == "wrong_key" else SEED)
        if mode == "bad_signature":
            body = body.replace(b"415008117.35", b"915008117.35", 1)  # tampered after signing
        if mode == "replay":
            body, sig = srv.last_body, srv.last_sig  # an earlier, genuinely signed answer
        if mode == "http_500":
            self.send_response(500)
            self.end_headers()
            return
        srv.last_body, srv.last_sig = body, sig
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if mode != "no_signature":
            self.send_header(SIGNATURE_HEADER, sig)
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def server() -> Iterator[_Server]:
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.requests = []
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(timeout=5)


def _source(srv: _Server, **kw: Any) -> CustodianApiSource:
    host, port = srv.server_address[:2]
    return CustodianApiSource(
        name="htbk-api",
        base_url=f"http://{host!s}:{port}",
        public_key=PUB,
        max_age_s=6 * 3600,
        **kw,
    )


def test_good_response(server: _Server) -> None:
    server.mode = "good"
    report = _source(server).fetch(NOW)
    a, b = report.statements
    assert a.format == "custodian-api-v1" and a.closing_booked == 41500811735
    assert b.closing_available is None and a.account == "************4471"
    (h,) = report.holdings
    assert h.isin == "HK0000123452" and h.market_value == 7988880000
    body_doc, sig_doc = report.raw_documents
    assert a.sha256 == body_doc.sha256 == h.sha256
    assert sig_doc.data.decode() == server.last_sig  # kept so an auditor can re-verify
    assert server.requests[-1] in report.notes[0]


@pytest.mark.parametrize(
    ("mode", "error", "what"),
    [
        ("bad_signature", ApiSignatureError, "does not verify"),
        ("wrong_key", ApiSignatureError, "unexpected key"),
        ("no_signature", ApiSignatureError, "no X-Custodian-Signature"),
        ("stale_timestamp", StaleResponseError, "maximum skew"),
        ("stale_balance", StaleResponseError, "s old"),
        ("wrong_nonce", ReplayError, "echo"),
        ("http_500", CustodianError, "HTTP 500"),
    ],
)
def test_refused(server: _Server, mode: str, error: type[Exception], what: str) -> None:
    server.mode = mode
    with pytest.raises(error, match=what):
        _source(server).fetch(NOW)


# Replay: an attacker who recorded yesterday's genuinely signed answer ("all is well")
# serves it again. The signature still verifies, but the body echoes the OLD nonce:
#   client --nonce B--> attacker --(body: nonce A, sig OK)--> client: refused
def test_replayed_response_refused(server: _Server) -> None:
    server.mode = "good"
    src = _source(server)
    src.fetch(NOW)
    server.mode = "replay"
    with pytest.raises(ReplayError, match="echo"):
        src.fetch(NOW)


# Replay with a repeated nonce: a client whose nonce source repeats (bad RNG, restart with
# a fixed seed) would accept the recorded answer; a nonce already seen is refused.
def test_repeated_nonce_refused(server: _Server) -> None:
    server.mode = "good"
    src = _source(server, nonce_factory=lambda: "ab" * 16)
    src.fetch(NOW)
    with pytest.raises(ReplayError, match="already used"):
        src.fetch(NOW)


def test_connection_refused_is_a_custodian_error() -> None:
    src = CustodianApiSource(name="x", base_url="http://127.0.0.1:9", public_key=PUB)
    with pytest.raises(CustodianError) as ei:
        src.fetch(NOW)
    assert ei.value.where == "http://127.0.0.1:9/v1/reserves"


def test_numbers_in_signed_body_refused(server: _Server) -> None:
    from por.custodians.api import parse_response

    with pytest.raises(StatementParseError, match="decimal strings"):
        parse_response(
            b'{"format":"custodian-api-v1","nonce":1}',
            name="u",
            sent_nonce="n",
            seen_nonces=set(),
            now=NOW,
            max_skew_s=1,
            max_age_s=1,
        )
