"""The Alembic revisions build exactly the schema the models describe.

Every later change to `por/store/models.py` needs a revision; this test fails until the
revision exists and matches (columns, types, nullability, keys, indexes), on SQLite and on
PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from por.store.db import Database
from por.store.migrate import head_revision, upgrade
from por.store.models import Base
from tests.store.pg import needs_pg, pg_schema_url


def _diff(db: Database) -> list[object]:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(ctx, Base.metadata))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=needs_pg)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        d = Database.connect(f"sqlite:///{tmp_path / 'm.db'}")
        try:
            yield d
        finally:
            d.close()
        return
    with pg_schema_url() as url:
        d = Database.connect(url)
        try:
            yield d
        finally:
            d.close()


def test_upgraded_database_matches_the_models(db: Database) -> None:
    before, after = upgrade(db)
    assert (before, after) == (None, head_revision())
    assert _diff(db) == []


def test_the_check_sees_a_table_the_revisions_lack(db: Database) -> None:
    # the comparison is not vacuous: a model table no revision creates shows up
    from sqlalchemy import Column, Integer, MetaData, Table

    upgrade(db)
    extra = MetaData()
    Table("por_not_migrated", extra, Column("id", Integer, primary_key=True))
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), extra)
    assert any(d[0] == "add_table" and d[1].name == "por_not_migrated" for d in diff)
