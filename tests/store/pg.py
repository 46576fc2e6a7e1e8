"""A fresh PostgreSQL schema per test run, when POR_TEST_PG_URL is set.

Other test processes share the database, so every run works in its own schema
(`por_test_<random>`) reached through `search_path`, and drops it afterwards.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

PG_URL = os.environ.get("POR_TEST_PG_URL")

needs_pg = pytest.mark.skipif(not PG_URL, reason="POR_TEST_PG_URL is not set (no PostgreSQL)")


@contextmanager
def pg_schema_url() -> Iterator[str]:
    assert PG_URL
    schema = f"por_test_{secrets.token_hex(6)}"
    admin = create_engine(PG_URL, poolclass=NullPool)
    with admin.begin() as c:
        c.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as c:
            c.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
