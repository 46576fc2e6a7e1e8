"""Stored attestations are served only as what was signed.

A database row keeps an attestation three times: the signed DSSE envelope, the canonical
document (`document_json`) and a few columns read from it (status, ratio, totals, root).
Anyone who can write to the database — an operator's mistake, an intruder — can change
the document or a column without the signature noticing, and the API, the dashboard and
/metrics used to serve those copies. `check_row` ties them back to the envelope:

1. the envelope parses, and its payload is byte for byte `document_json`;
2. the digest column is the SHA-256 of that payload, and the sequence, kind, status,
   ratio, totals and liabilities root columns are the payload's;
3. with a key set: the issuer signature verifies at the payload's `issued_at` (as
   `por verify` checks it).

A row that fails is never served (`TamperedRowError`, a 500 naming the row) and never
copied to `attestations/` (Store.materialize_files); it is logged at ERROR.
`IntegrityChecker` remembers the rows that passed (bounded, keyed by a hash of
everything checked), so a page of history is not re-verified on every request.

No SQLAlchemy, no I/O.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

from por.core.attestation import PAYLOAD_TYPE, Attestation, decode_attestation
from por.core.dsse import Envelope, KeySet, verify_envelope
from por.errors import PorError, VerificationError

if TYPE_CHECKING:
    from por.store.base import StoredAttestation

log = logging.getLogger("por.store.integrity")


class TamperedRowError(VerificationError):
    """A stored attestation row differs from its signed envelope, or the envelope's
    signature does not verify: the row is not served and not published."""


def _row_key(row: StoredAttestation) -> bytes:
    h = hashlib.sha256()
    for part in (
        row.envelope_json,
        row.document_json,
        repr(
            (
                row.sequence,
                row.digest,
                row.kind,
                row.status,
                row.ratio,
                row.eligible_reserves,
                row.circulating_supply,
                row.liabilities_root,
            )
        ).encode(),
    ):
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.digest()


def check_row(row: StoredAttestation, keyset: KeySet | None) -> Attestation:
    """The row's attestation, once it is what its envelope signs (see the module
    docstring); else TamperedRowError. `keyset` None: every check but the signature."""
    where = f"attestation {row.sequence} (database row)"

    def tampered(what: str, expected: object = None, computed: object = None) -> None:
        raise TamperedRowError(
            f"{what}: the row is not what was signed; not served",
            expected=expected,
            computed=computed,
            where=where,
        )

    try:
        envelope = Envelope.from_json_bytes(row.envelope_json, where=f"{where}.envelope")
    except PorError as e:
        raise TamperedRowError(
            f"the stored envelope is unreadable ({e.message}); not served", where=where
        ) from e
    if envelope.payload != row.document_json:
        tampered("document_json differs from the signed envelope's payload")
    digest = hashlib.sha256(envelope.payload).hexdigest()
    if row.digest != digest:
        tampered("the digest column is not the payload's SHA-256", digest, row.digest)
    try:
        att = decode_attestation(envelope.payload, where=f"{where}.payload")
    except PorError as e:
        raise TamperedRowError(
            f"the signed payload does not decode ({e.message}); not served", where=where
        ) from e
    t = att.totals
    columns: tuple[tuple[str, object, object], ...] = (
        ("sequence", att.sequence, row.sequence),
        ("kind", att.kind, row.kind),
        ("status", t.status, row.status),
        ("ratio", t.ratio, row.ratio),
        ("eligible_reserves", str(t.eligible_reserves), row.eligible_reserves),
        ("circulating_supply", str(t.circulating_supply), row.circulating_supply),
        ("liabilities_root", att.liabilities.root, row.liabilities_root),
    )
    for name, signed, stored in columns:
        if signed != stored:
            tampered(f"column {name} differs from the signed payload", signed, stored)
    if keyset is not None:
        try:
            verify_envelope(
                envelope,
                keyset,
                at=att.issued_at,
                payload_type=PAYLOAD_TYPE,
                where=f"{where}.envelope",
            )
        except VerificationError as e:
            raise TamperedRowError(
                f"the stored envelope's signature does not verify ({e.message}); not served",
                where=where,
            ) from e
    return att


class IntegrityChecker:
    """`check_row` with a bounded memory of the rows that passed; failures are logged
    (once per row state) and counted (`on_failure`, e.g. a Prometheus counter)."""

    def __init__(
        self,
        keyset: KeySet | None,
        *,
        size: int = 4096,
        on_failure: Callable[[TamperedRowError], None] | None = None,
    ) -> None:
        self._keyset = keyset
        self._size = size
        self._passed: OrderedDict[bytes, None] = OrderedDict()
        self._failed: OrderedDict[bytes, TamperedRowError] = OrderedDict()
        self._lock = threading.Lock()
        self._on_failure = on_failure

    def check(self, row: StoredAttestation) -> None:
        """Return when the row is what was signed; else raise TamperedRowError."""
        key = _row_key(row)
        with self._lock:
            if key in self._passed:
                self._passed.move_to_end(key)
                return
            known = self._failed.get(key)
        if known is not None:
            raise known
        try:
            check_row(row, self._keyset)
        except TamperedRowError as e:
            log.error("%s", e.diagnostics())
            with self._lock:
                self._failed[key] = e
                while len(self._failed) > self._size:
                    self._failed.popitem(last=False)
            if self._on_failure is not None:
                self._on_failure(e)
            raise
        with self._lock:
            self._passed[key] = None
            while len(self._passed) > self._size:
                self._passed.popitem(last=False)


__all__ = ["IntegrityChecker", "TamperedRowError", "check_row"]
