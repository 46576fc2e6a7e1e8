"""Size caps are enforced while the body streams, never after reading it whole (issue 12 §8).

As found: the custodian API client read a whole answer before checking its 4 MiB cap —
a 512 MiB body cost 1 GiB resident. Here a loopback server streams an endless chunked
body and counts what it could send before the client hung up: a client that checks the
cap as the bytes arrive hangs up a few MiB past the cap (socket buffers), one that reads
first takes everything.

The streaming reader is `por.deadline.read_body`, which also bounds each read in time.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest

from por.errors import CustodianError

SLACK = 16 * 1024 * 1024  # kernel socket buffers on loopback, both sides


@contextmanager
def flooding_server(total: int) -> Iterator[tuple[str, list[int]]]:
    """Answer 200 with a chunked body of up to `total` bytes; record what was sent."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    sent = [0]

    def serve() -> None:
        conn, _ = srv.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            chunk = b"%x\r\n" % 65536 + b"7" * 65536 + b"\r\n"
            try:
                while sent[0] < total:
                    conn.sendall(chunk)
                    sent[0] += 65536
                conn.sendall(b"0\r\n\r\n")
            except OSError:
                return  # the client hung up: what a cap does

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.getsockname()[1]}", sent
    finally:
        t.join(20)
        srv.close()


def test_custodian_api_stops_reading_at_its_cap() -> None:
    from por.custodians import api

    with flooding_server(16 * api.MAX_BODY_BYTES) as (url, sent):
        source = api.CustodianApiSource(
            name="custodian-api", base_url=url, public_key=b"\x01" * 32, timeout_s=20
        )
        with pytest.raises(CustodianError, match=r"larger than|too large"):
            source.fetch(datetime(2026, 11, 25, tzinfo=UTC))
    assert sent[0] < api.MAX_BODY_BYTES + SLACK, f"{sent[0]} bytes read for a capped body"


def test_ledger_api_stops_reading_at_its_cap() -> None:
    from por.ledger import sources

    with flooding_server(4 * sources.MAX_BODY_BYTES) as (url, sent):
        source = sources.ApiLedgerSource(
            name="books-api",
            base_url=url,
            public_key=b"\x01" * 32,
            token_decimals=6,
            token_currency="CNH",
            issuer="kdm",
            timeout_s=30,
        )
        with pytest.raises(CustodianError, match=r"larger than|too large"):
            source.fetch(datetime(2026, 11, 25, tzinfo=UTC))
    assert sent[0] < sources.MAX_BODY_BYTES + SLACK, f"{sent[0]} bytes read for a capped body"
