"""Where ledger exports come from: files (signed or hash-referenced) and a signed HTTP API.

Files (`kind = "files"`): every file matching the configured paths is an export. With a
configured `public_key`, each file needs a detached signature beside it, `<file>.sig`,
holding `keyid=<hex SHA-256 of the raw Ed25519 key>;sig=<base64 signature>` over
`"por-ledger-v1\\n" || file bytes`; a missing, malformed or wrong signature refuses the
export. Without a key the export is hash-referenced only: the attestation names its
SHA-256 and the raw bytes are kept for the auditor.

API (`kind = "api"`, `por-ledger-api-v1`), as the custodian API (docs/custodians.md):

    GET {base_url}/v1/liabilities?nonce=<32 lowercase hex>      X-Request-Id: <nonce>
    200  X-Ledger-Signature: keyid=<hex>;sig=<base64>
    signature = Ed25519(key, "por-ledger-api-v1\\n" || exact body bytes)
    body = a por-ledger-v1 JSON export plus "nonce" (echoed) and "timestamp" (RFC 3339)

checked in this order: signature by the configured key over the exact bytes, then the
JSON, the echoed and never-reused nonce, the timestamp within `max_skew_s` of now.

Every source parses everything before returning anything (an export is accepted whole or
refused whole). I/O: reads the configured files; one HTTP GET per fetch (httpx).
"""

from __future__ import annotations

import base64
import binascii
import glob
import hashlib
import json
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from Crypto.Signature import eddsa

from por.custodians.base import RawDocument
from por.errors import ConfigError, CustodianError, SignatureError, VerificationError
from por.ledger.export import (
    FORMAT_JSON,
    LedgerExport,
    LedgerParseError,
    parse_ledger,
    parse_ledger_json,
)

FILE_CONTEXT = b"por-ledger-v1\n"
API_CONTEXT = b"por-ledger-api-v1\n"
API_FORMAT = "por-ledger-api-v1"
SIGNATURE_HEADER = "X-Ledger-Signature"
MAX_BODY_BYTES = 64 * 1024 * 1024
_SIG_RE = re.compile(r"keyid=([0-9a-f]{64});sig=([A-Za-z0-9+/]{86}==)")


class LedgerSignatureError(SignatureError):
    """A ledger export's signature is missing, malformed, by another key, or wrong."""


class LedgerReplayError(VerificationError):
    """The API's answer does not echo this request's nonce, or reuses one."""


def key_id(public_key: bytes) -> str:
    return hashlib.sha256(public_key).hexdigest()


def sign_export(data: bytes, private_seed: bytes, *, context: bytes = FILE_CONTEXT) -> str:
    """The signature line for `data` (what the issuer's ledger system writes)."""
    key = eddsa.import_private_key(private_seed)
    pub = key.public_key().export_key(format="raw")
    sig = eddsa.new(key, "rfc8032").sign(context + data)
    return f"keyid={key_id(pub)};sig={base64.b64encode(sig).decode()}"


def verify_export_signature(
    data: bytes, line: str | None, public_key: bytes, *, where: str, context: bytes = FILE_CONTEXT
) -> str:
    """The key id, once `line` is a valid signature of `data` by `public_key`; else raise."""
    if line is None:
        raise LedgerSignatureError("the export has no signature", where=where)
    m = _SIG_RE.fullmatch(line.strip())
    if not m:
        raise LedgerSignatureError(
            "signature must be 'keyid=<64 hex>;sig=<base64 of 64 bytes>'", where=where
        )
    want = key_id(public_key)
    if m.group(1) != want:
        raise LedgerSignatureError(
            "signed by an unexpected key", expected=want, computed=m.group(1), where=where
        )
    try:
        sig = base64.b64decode(m.group(2), validate=True)
        eddsa.new(eddsa.import_public_key(public_key), "rfc8032").verify(context + data, sig)
    except (ValueError, binascii.Error) as e:  # pycryptodome: ValueError on a bad signature
        raise LedgerSignatureError(
            f"Ed25519 signature does not verify over the export's bytes: {e}", where=where
        ) from e
    return want


@dataclass(frozen=True, slots=True, kw_only=True)
class LedgerFetch:
    """What one ledger source delivered: parsed exports and the raw bytes behind them."""

    source: str
    exports: tuple[LedgerExport, ...]
    signed_by: tuple[str | None, ...]  # per export: key id of its verified signature
    raw_documents: tuple[RawDocument, ...]
    max_age_s: int | None = None


class LedgerSource(Protocol):
    name: str

    def fetch(self, now: datetime) -> LedgerFetch: ...


class FileLedgerSource:
    """Ledger exports from files (JSON or CSV by content); see the module docstring."""

    def __init__(
        self,
        *,
        name: str,
        paths: Sequence[str | Path],
        token_decimals: int,
        token_currency: str,
        issuer: str | None = None,
        public_key: bytes | None = None,
        max_age_s: int | None = None,
    ) -> None:
        if public_key is not None and len(public_key) != 32:
            raise ConfigError("public_key must be 32 raw bytes (64 hex)", where=f"ledger {name}")
        self.name = name
        self.paths = [str(p) for p in paths]
        self.token_decimals = token_decimals
        self.token_currency = token_currency
        self.issuer = issuer
        self.public_key = public_key
        self.max_age_s = max_age_s

    def files(self) -> list[Path]:
        found: list[Path] = []
        for p in self.paths:
            matches = sorted(glob.glob(p)) if glob.has_magic(p) else [p]
            if not matches:
                raise CustodianError(f"no ledger export matches {p}", where=f"ledger {self.name}")
            found += [Path(m) for m in matches if not m.endswith(".sig")]
        return found

    def fetch(self, now: datetime) -> LedgerFetch:
        del now  # exports carry their as_of; the evaluator judges it
        exports: list[LedgerExport] = []
        signed: list[str | None] = []
        raws: list[RawDocument] = []
        for path in self.files():
            try:
                data = path.read_bytes()
            except OSError as e:
                raise CustodianError(f"cannot read: {e.strerror}", where=str(path)) from e
            keyid = None
            if self.public_key is not None:
                sig_path = Path(f"{path}.sig")
                try:
                    line: str | None = sig_path.read_text("ascii")
                except (OSError, UnicodeDecodeError):
                    line = None
                keyid = verify_export_signature(data, line, self.public_key, where=str(path))
                raws.append(
                    RawDocument.of(
                        (line or "").strip().encode(),
                        format="por-ledger-signature",
                        name=str(sig_path),
                    )
                )
            exports.append(
                parse_ledger(
                    data,
                    name=str(path),
                    token_decimals=self.token_decimals,
                    token_currency=self.token_currency,
                    issuer=self.issuer,
                )
            )
            signed.append(keyid)
            raws.append(RawDocument.of(data, format=exports[-1].format, name=str(path)))
        return LedgerFetch(
            source=self.name,
            exports=tuple(exports),
            signed_by=tuple(signed),
            raw_documents=tuple(raws),
            max_age_s=self.max_age_s,
        )


class ApiLedgerSource:
    """Ledger liabilities from the issuer's signed HTTP API (`por-ledger-api-v1`)."""

    def __init__(
        self,
        *,
        name: str,
        base_url: str,
        public_key: bytes,
        token_decimals: int,
        token_currency: str,
        issuer: str | None = None,
        max_age_s: int | None = None,
        max_skew_s: int = 300,
        timeout_s: float = 10.0,
        transport: object | None = None,
        nonce_factory: Callable[[], str] | None = None,
    ) -> None:
        if len(public_key) != 32:
            raise ConfigError("public_key must be 32 raw bytes (64 hex)", where=f"ledger {name}")
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.public_key = public_key
        self.token_decimals = token_decimals
        self.token_currency = token_currency
        self.issuer = issuer
        self.max_age_s = max_age_s
        self.max_skew_s = max_skew_s
        self.timeout_s = timeout_s
        self._transport = transport
        self._nonce = nonce_factory or (lambda: secrets.token_hex(16))
        self._seen: set[str] = set()

    def fetch(self, now: datetime) -> LedgerFetch:
        from por.deadline import signed_get

        nonce = self._nonce()
        url = f"{self.base_url}/v1/liabilities"
        # connect/read/total limits and the run's deadline (por.deadline)
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
        keyid = verify_export_signature(
            body, header, self.public_key, where=url, context=API_CONTEXT
        )
        export = parse_ledger_json(
            body,
            name=url,
            token_decimals=self.token_decimals,
            token_currency=self.token_currency,
            issuer=self.issuer,
            fmt=API_FORMAT,
        )
        doc = json.loads(body)
        if doc.get("nonce") != nonce:
            raise LedgerReplayError(
                "answer does not echo this request's nonce",
                expected=nonce,
                computed=doc.get("nonce"),
                where=url,
            )
        if nonce in self._seen:
            raise LedgerReplayError(f"nonce {nonce} was already used", where=url)
        ts_text = doc.get("timestamp")
        try:
            ts = datetime.fromisoformat(str(ts_text).replace("Z", "+00:00")).astimezone(UTC)
        except ValueError as e:
            raise LedgerParseError(f"timestamp {ts_text!r} is not RFC 3339", where=url) from e
        skew = abs((now - ts).total_seconds())
        if skew > self.max_skew_s:
            raise LedgerReplayError(
                f"answer timestamp {ts_text} is {int(skew)} s from now (maximum {self.max_skew_s})",
                where=url,
            )
        self._seen.add(nonce)
        return LedgerFetch(
            source=self.name,
            exports=(export,),
            signed_by=(keyid,),
            raw_documents=(
                RawDocument.of(body, format=API_FORMAT, name=url),
                RawDocument.of(
                    (header or "").encode(),
                    format=f"{API_FORMAT}-signature",
                    name=f"{url}#{SIGNATURE_HEADER}",
                ),
            ),
            max_age_s=self.max_age_s,
        )


__all__ = [
    "API_CONTEXT",
    "API_FORMAT",
    "FILE_CONTEXT",
    "FORMAT_JSON",
    "SIGNATURE_HEADER",
    "ApiLedgerSource",
    "FileLedgerSource",
    "LedgerFetch",
    "LedgerReplayError",
    "LedgerSignatureError",
    "LedgerSource",
    "key_id",
    "sign_export",
    "verify_export_signature",
]
