"""Custodian JSON API over HTTP (httpx) with Ed25519-signed responses: `custodian-api-v1`.

Protocol (docs/custodians.md is the normative copy):

    GET {base_url}/v1/reserves?nonce=<32 lowercase hex>      X-Request-Id: <same nonce>

    200 OK
    Content-Type: application/json
    X-Custodian-Signature: keyid=<hex SHA-256 of the raw 32-byte Ed25519 public key>;
                           sig=<standard base64 of the 64-byte Ed25519 signature>

    signature = Ed25519(custodian key, b"por-custodian-api-v1\\n" || body bytes)

    body = {"format": "custodian-api-v1", "custodian": "...", "nonce": "<the request's>",
            "timestamp": "<RFC 3339 UTC, when the custodian signed>",
            "statement_id": "...",
            "accounts": [{"account", "currency", "closing_booked", "closing_available"|null,
                          "as_of"}],            # amounts: decimal strings, up to 5 places
            "holdings": [ {same fields as a holdings-json position} ]}

The client checks, in this order, and raises on the first failure: the header's
syntax and key id (the configured key only; a verifier never takes a key from the
message), the Ed25519 signature over the exact body bytes (pycryptodome, RFC 8032),
and only then parses the JSON: the echoed nonce must be the one this request sent
and never seen before (replay), the timestamp within `max_skew_s` of `now`, and each
account's as-of not older than `max_age_s` (stale). The context prefix keeps a
signature made for another purpose with the same key from verifying here.

I/O: one HTTP request per fetch (httpx), to the configured URL only. Randomness: the
nonce (secrets.token_hex unless a nonce factory is injected).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import secrets
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx
from Crypto.Signature import eddsa

from por.custodians.base import CustodianReport, RawDocument
from por.custodians.holdings import parse_holdings_json
from por.custodians.model import (
    Holding,
    Statement,
    StatementParseError,
    account_key,
    check_currency,
    currency_exponent,
    mask_account,
    parse_minor,
    parse_rfc3339,
    rescale,
)
from por.deadline import signed_get
from por.errors import CustodianError, SignatureError, VerificationError

FORMAT = "custodian-api-v1"
SIGNATURE_HEADER = "X-Custodian-Signature"
CONTEXT = b"por-custodian-api-v1\n"
MAX_BODY_BYTES = 4 * 1024 * 1024
_HEADER_RE = re.compile(r"keyid=([0-9a-f]{64});sig=([A-Za-z0-9+/]{86}==)")


class ApiSignatureError(SignatureError):
    """The response's signature header is missing, malformed, by another key, or wrong."""


class ReplayError(VerificationError):
    """The response does not echo this request's nonce, or echoes one already used."""


class StaleResponseError(VerificationError):
    """The response's timestamp is off by more than the skew, or its balances are too old."""


def key_id(public_key: bytes) -> str:
    """Key id as in the attestation key set: hex SHA-256 of the raw 32-byte key."""
    return hashlib.sha256(public_key).hexdigest()


def sign_body(body: bytes, private_seed: bytes) -> str:
    """The X-Custodian-Signature value for `body` (what a custodian server does)."""
    key = eddsa.import_private_key(private_seed)
    pub = key.public_key().export_key(format="raw")
    sig = eddsa.new(key, "rfc8032").sign(CONTEXT + body)
    return f"keyid={key_id(pub)};sig={base64.b64encode(sig).decode()}"


def verify_signature(body: bytes, header: str | None, public_key: bytes, *, where: str) -> None:
    """Raise ApiSignatureError unless `header` is a valid signature of `body` by `public_key`."""
    if header is None:
        raise ApiSignatureError(f"response has no {SIGNATURE_HEADER} header", where=where)
    m = _HEADER_RE.fullmatch(header.strip())
    if not m:
        raise ApiSignatureError(
            f"{SIGNATURE_HEADER} must be 'keyid=<64 hex>;sig=<base64 of 64 bytes>'", where=where
        )
    want = key_id(public_key)
    if m.group(1) != want:
        raise ApiSignatureError(
            "signed by an unexpected key", expected=want, computed=m.group(1), where=where
        )
    try:
        sig = base64.b64decode(m.group(2), validate=True)
        verifier = eddsa.new(eddsa.import_public_key(public_key), "rfc8032")
        verifier.verify(CONTEXT + body, sig)
    except (ValueError, binascii.Error) as e:  # pycryptodome: plain ValueError on bad sig
        raise ApiSignatureError(f"Ed25519 signature does not verify: {e}", where=where) from e


def parse_response(
    body: bytes,
    *,
    name: str,
    sent_nonce: str,
    seen_nonces: set[str],
    now: datetime,
    max_skew_s: int,
    max_age_s: int,
) -> tuple[list[Statement], dict[str, Any]]:
    """Parse a VERIFIED body; check nonce, timestamp and ages. Returns (statements, doc)."""
    sha = hashlib.sha256(body).hexdigest()

    def no_number(t: str) -> Any:
        raise StatementParseError(
            f"amounts must be decimal strings, got number {t[:30]}", where=name
        )

    try:
        doc = json.loads(
            body.decode("utf-8"),
            parse_float=no_number,
            parse_int=no_number,
            parse_constant=no_number,
        )
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise StatementParseError(f"response is not JSON: {e}", where=name) from e
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise StatementParseError(f'body must be an object with "format": "{FORMAT}"', where=name)
    nonce = doc.get("nonce")
    if nonce != sent_nonce:
        raise ReplayError(
            "response does not echo this request's nonce",
            expected=sent_nonce,
            computed=nonce,
            where=name,
        )
    if nonce in seen_nonces:
        raise ReplayError(f"nonce {nonce} was already used by an earlier response", where=name)
    ts = parse_rfc3339(doc.get("timestamp"), where=f"{name}:$.timestamp")
    skew_s = abs((now - ts).total_seconds())
    if skew_s > max_skew_s:
        raise StaleResponseError(
            f"response timestamp {doc.get('timestamp')} is {int(skew_s)} s from now "
            f"(maximum skew {max_skew_s} s)",
            where=name,
        )
    custodian = doc.get("custodian")
    stmt_id = doc.get("statement_id")
    if (
        not isinstance(custodian, str)
        or not custodian
        or not isinstance(stmt_id, str)
        or not stmt_id
    ):
        raise StatementParseError(
            "custodian and statement_id must be non-empty strings", where=name
        )
    accounts = doc.get("accounts")
    if not isinstance(accounts, list):
        raise StatementParseError('"accounts" must be a list', where=f"{name}:$.accounts")
    out: list[Statement] = []
    for i, a in enumerate(accounts):
        where = f"{name}:$.accounts[{i}]"
        if not isinstance(a, dict):
            raise StatementParseError("must be an object", where=where)
        acct, ccy = a.get("account"), a.get("currency")
        if not isinstance(acct, str) or not acct.strip():
            raise StatementParseError("account must be a non-empty string", where=where)
        ccy = check_currency(ccy if isinstance(ccy, str) else "", where=f"{where}.currency")
        booked, b_dec = parse_minor(
            a.get("closing_booked"), where=f"{where}.closing_booked", allow_sign=True
        )
        avail_txt = a.get("closing_available")
        avail, a_dec = (
            (None, 0)
            if avail_txt is None
            else parse_minor(avail_txt, where=f"{where}.closing_available", allow_sign=True)
        )
        as_of = parse_rfc3339(a.get("as_of"), where=f"{where}.as_of")
        age_s = (now - as_of).total_seconds()
        if age_s > max_age_s:
            raise StaleResponseError(
                f"balance as of {a.get('as_of')} is {int(age_s)} s old (maximum {max_age_s} s)",
                where=where,
            )
        dec = max(b_dec, a_dec, currency_exponent(ccy))
        out.append(
            Statement(
                custodian=custodian,
                account=mask_account(acct),
                account_key=account_key(acct),
                currency=ccy,
                decimals=dec,
                closing_booked=rescale(booked, b_dec, dec, where=f"{where}.closing_booked"),
                closing_available=None
                if avail is None
                else rescale(avail, a_dec, dec, where=f"{where}.closing_available"),
                as_of=as_of,
                statement_id=stmt_id,
                format=FORMAT,
                sha256=sha,
                source=name,
            )
        )
    return out, doc


class CustodianApiSource:
    """A CustodianSource that fetches signed balances (and holdings) from a custodian API."""

    def __init__(
        self,
        *,
        name: str,
        base_url: str,
        public_key: bytes,
        max_age_s: int = 48 * 3600,
        max_skew_s: int = 300,
        timeout_s: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        nonce_factory: Callable[[], str] | None = None,
    ) -> None:
        if len(public_key) != 32:
            raise SignatureError(
                f"custodian public key must be 32 raw bytes, got {len(public_key)}", where=name
            )
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.public_key = public_key
        self.max_age_s = max_age_s
        self.max_skew_s = max_skew_s
        self.timeout_s = timeout_s
        self._transport = transport
        self._nonce_factory = nonce_factory or (lambda: secrets.token_hex(16))
        self._seen_nonces: set[str] = set()

    def fetch(self, now: datetime) -> CustodianReport:
        if now.tzinfo is None:
            raise CustodianError("now must be timezone-aware", where=self.name)
        nonce = self._nonce_factory()
        url = f"{self.base_url}/v1/reserves"
        # connect/read/total limits and the run's deadline (por.deadline): a custodian
        # that trickles its answer is cut off, and the body is capped while it streams
        body, header = signed_get(
            url,
            nonce=nonce,
            transport=self._transport,
            timeout_s=self.timeout_s,
            max_bytes=MAX_BODY_BYTES,
            signature_header=SIGNATURE_HEADER,
            source=self.name,
            error=CustodianError,
        )
        verify_signature(body, header, self.public_key, where=url)
        statements, doc = parse_response(
            body,
            name=url,
            sent_nonce=nonce,
            seen_nonces=self._seen_nonces,
            now=now.astimezone(UTC),
            max_skew_s=self.max_skew_s,
            max_age_s=self.max_age_s,
        )
        self._seen_nonces.add(nonce)  # only after full success: a failed fetch proves nothing
        holdings: tuple[Holding, ...] = ()
        if doc.get("holdings"):
            # Holdings share the holdings-json position layout; reuse that parser on them.
            sub = json.dumps(
                {
                    "format": "holdings-json",
                    "custodian": doc["custodian"],
                    "statement_id": doc["statement_id"],
                    "as_of": doc["timestamp"],
                    "holdings": doc["holdings"],
                }
            ).encode()
            parsed = parse_holdings_json(sub, name=url)
            sha = hashlib.sha256(body).hexdigest()
            holdings = tuple(_with(h, sha=sha) for h in parsed)
        raw = RawDocument.of(body, format=FORMAT, name=url)
        sig = RawDocument.of(
            (header or "").encode(), format=f"{FORMAT}-signature", name=f"{url}#{SIGNATURE_HEADER}"
        )
        return CustodianReport(
            custodian=self.name,
            statements=tuple(statements),
            holdings=holdings,
            raw_documents=(raw, sig),
            max_age_s=self.max_age_s,
            notes=(f"{url}: signature by key {key_id(self.public_key)} verified; nonce {nonce}",),
        )


def _with(h: Holding, *, sha: str) -> Holding:
    return replace(h, sha256=sha, format=FORMAT)


__all__ = [
    "CONTEXT",
    "FORMAT",
    "SIGNATURE_HEADER",
    "ApiSignatureError",
    "CustodianApiSource",
    "ReplayError",
    "StaleResponseError",
    "key_id",
    "parse_response",
    "sign_body",
    "verify_signature",
]
