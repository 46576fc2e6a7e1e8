"""Operator commands: `por init` + `por attest` on the unedited template signs nothing,
`por config check`, `por db upgrade` and the service's refusal of an unmigrated database."""

from __future__ import annotations

from pathlib import Path

import pytest

from por.cli.main import main
from por.store.migrate import head_revision
from tests.service.conftest import PASSPHRASE, World


def test_unedited_template_is_refused_before_anything_is_signed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POR_KEY_PASSPHRASE", "hunter2")
    assert main(["init", "--dir", str(tmp_path)]) == 1  # a weak passphrase: no key written
    assert "weak passphrase" in capsys.readouterr().err
    assert not (tmp_path / "keys" / "issuer.key.pem").exists()

    monkeypatch.setenv("POR_KEY_PASSPHRASE", PASSPHRASE)
    assert main(["init", "--dir", str(tmp_path)]) == 0
    config = str(tmp_path / "por.toml")
    capsys.readouterr()
    assert main(["attest", "--config", config, "--log-format", "text"]) == 1
    err = capsys.readouterr().err
    assert "chains: no [[chains]] table" in err and "custodians: no [[custodians]] table" in err
    assert not (tmp_path / "data").exists() and not (tmp_path / "attestations").exists()
    assert main(["config", "check", "--config", config]) == 1


def test_config_check_says_what_each_source_would_read(
    world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["config", "check", "--config", str(world.config)]) == 0
    out = capsys.readouterr().out
    assert "valid" in out and "in-memory demo chain with 40 holder(s)" in out
    assert "(2 file(s) match now" in out and "harbour_trust_camt053_v08.xml" in out
    assert "passphrase $POR_KEY_PASSPHRASE (set)" in out and PASSPHRASE not in out
    assert f"at schema revision {head_revision()}" in out and out.rstrip().endswith(
        "would read the sources above"
    )
    monkeypatch.delenv("POR_KEY_PASSPHRASE")
    assert main(["config", "check", "--config", str(world.config)]) == 1
    assert "environment variable POR_KEY_PASSPHRASE (the issuer key passphrase) is not set" in (
        capsys.readouterr().out
    )


def test_service_refuses_an_unmigrated_database_until_db_upgrade(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    db = world.root / "data" / "por.db"
    for p in db.parent.glob("por.db*"):
        p.unlink()  # a database nobody migrated
    config = str(world.config)
    assert main(["attest", "--config", config, "--no-publish", "--log-format", "text"]) == 1
    err = capsys.readouterr().err
    assert "has no por schema" in err and "por db upgrade --config" in err
    assert main(["db", "upgrade", "--config", config]) == 0
    assert f"upgraded from an empty database to revision {head_revision()}" in (
        capsys.readouterr().out
    )
    assert main(["db", "upgrade", "--config", config]) == 0
    assert f"already at schema revision {head_revision()}" in capsys.readouterr().out
    assert main(["attest", "--config", config, "--no-publish", "--log-format", "text"]) == 0


def test_a_database_from_before_migrations_is_stamped_and_upgraded(tmp_path: Path) -> None:
    from sqlalchemy import inspect

    from por.store.db import Database
    from por.store.migrate import current_revision, upgrade
    from por.store.models import Base

    # the tables of the baseline revision: what por created before Alembic
    scratch = Database.connect(f"sqlite:///{tmp_path / 'baseline.db'}")
    try:
        from alembic import command

        from por.store.migrate import BASELINE, _alembic_config

        with scratch.engine.begin() as conn:
            command.upgrade(_alembic_config(conn), BASELINE)  # type: ignore[arg-type]
        baseline = set(inspect(scratch.engine).get_table_names()) - {"alembic_version"}
    finally:
        scratch.close()
    db = Database.connect(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        old_tables = [t for t in Base.metadata.sorted_tables if t.name in baseline]
        assert "por_alert_dead_letters" not in baseline and len(old_tables) == len(baseline)
        # what por did before Alembic: the baseline's tables, as the baseline revision
        # writes them out (today's models have grown columns since, e.g. the `kind`)
        from sqlalchemy import text

        with db.engine.begin() as conn:
            command.upgrade(_alembic_config(conn), BASELINE)  # type: ignore[arg-type]
            conn.execute(text("DROP TABLE alembic_version"))
        assert current_revision(db) is None
        before, after = upgrade(db)
        assert (before, after) == (None, head_revision())
        assert inspect(db.engine).has_table("por_alert_dead_letters")
    finally:
        db.close()


def test_config_check_describes_ledgers_and_the_reconciliation(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    exports = world.root / "ledger"
    exports.mkdir()
    (exports / "books.json").write_text("{}")
    with world.config.open("a") as f:
        f.write(
            '\n[[ledgers]]\nkind = "files"\nname = "books"\nissuer = "kdm"\n'
            'paths = ["ledger/*.json"]\n\n'
            '[reconciliation]\nstart = "2026-01-01T00:00:00Z"\nwindow_s = 3600\n'
            'tolerance = "1000000"\n'
        )
    assert main(["config", "check", "--config", str(world.config)]) == 0
    out = capsys.readouterr().out
    assert "ledgers[0] books: off-chain liabilities of ledger:kdm:… from export files" in out
    assert "(1 file(s) match now; hash-referenced only (no signature key)" in out
    assert "reconciliation: flows since 2026-01-01T00:00:00Z" in out
    assert "match window 3600 s" in out and "tolerance 1000000 base units" in out


def test_config_check_describes_the_api_limits(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    with world.config.open("a") as f:
        f.write(
            "\n[api]\ntrusted_proxies = ['10.0.0.0/8']\nrate_limit_backend = 'redis'\n"
            "rate_limit_redis_url = 'redis://:s3cret@cache.internal:6380/2'\n"
        )
    assert main(["config", "check", "--config", str(world.config)]) == 0
    out = capsys.readouterr().out
    assert "api: trusted proxies 10.0.0.0/8; rate limits in Redis cache.internal:6380" in out
    assert "s3cret" not in out
