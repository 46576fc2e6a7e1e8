"""Fixtures shared across test areas."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.s3 import S3Server, run_s3_server


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A moto S3 API server on 127.0.0.1 for the whole session (a bucket per test)."""
    with run_s3_server() as server:
        yield server
