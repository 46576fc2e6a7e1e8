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


@pytest.fixture(autouse=True)
def _logging_as_it_was() -> Iterator[None]:
    """A test that runs a por command in this process (setup_logging) leaves the root
    logger as it found it, so later tests' libraries do not write JSON lines into the
    test output."""
    import logging

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        if h not in handlers and type(h).__module__ == "por.service.logs":
            root.removeHandler(h)
    root.setLevel(level)
    logging.captureWarnings(False)
