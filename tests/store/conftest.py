"""Store fixtures: every test runs on SQLite, and on PostgreSQL when POR_TEST_PG_URL is set."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from por.store import Store
from tests.store.pg import PG_URL, pg_schema_url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL for a fresh, empty store."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'por.db'}"
        return
    if not PG_URL:
        pytest.skip("POR_TEST_PG_URL is not set (no PostgreSQL)")
    with pg_schema_url() as url:
        yield url


@pytest.fixture
def open_store(store_url: str, tmp_path: Path) -> Iterator[object]:
    """A factory for Store instances on the same database and directories."""
    opened: list[Store] = []

    def factory(**kw: object) -> Store:
        s = Store.open(
            store_url,
            data_dir=tmp_path / "data",
            attestations_dir=tmp_path / "attestations",
            **{"migrate": True, **kw},
        )  # type: ignore[arg-type]
        opened.append(s)
        return s

    yield factory
    for s in opened:
        s.close()


@pytest.fixture
def store(open_store: object) -> Store:
    return open_store()  # type: ignore[operator, no-any-return]
