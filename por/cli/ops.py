"""Operator commands of `por`: `config check` (validate, say what would be read) and
`db upgrade` (Alembic migrations). Import the service's modules lazily."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("config", help="check a configuration file")
    csub = p.add_subparsers(dest="config_command", metavar="CONFIG_COMMAND", required=True)
    c = csub.add_parser(
        "check", help="validate por.toml and say what each source would read (signs nothing)"
    )
    c.add_argument("--config", type=Path, default=Path("por.toml"))
    c.set_defaults(func=_cmd_config_check)

    p = sub.add_parser("db", help="database schema")
    dsub = p.add_subparsers(dest="db_command", metavar="DB_COMMAND", required=True)
    u = dsub.add_parser("upgrade", help="migrate the database to this por's schema (Alembic)")
    u.add_argument("--config", type=Path, default=Path("por.toml"))
    u.set_defaults(func=_cmd_db_upgrade)


def _cmd_config_check(args: argparse.Namespace) -> int:
    from por.service.check import describe
    from por.service.config import load_config

    cfg = load_config(args.config)  # raises a ConfigError listing every problem
    lines, problems = describe(cfg)
    print(f"{args.config}: valid")
    for line in lines:
        print(f"  {line}")
    if problems:
        print(f"{len(problems)} problem(s) before a run can succeed:")
        for p in problems:
            print(f"  - {p}")
        return 1
    print("ready: `por attest` would read the sources above")
    return 0


def _cmd_db_upgrade(args: argparse.Namespace) -> int:
    from por.service.config import load_config
    from por.store.db import Database
    from por.store.migrate import upgrade

    cfg = load_config(args.config)
    cfg.service.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database.connect(cfg.database_url)
    try:
        before, after = upgrade(db)
        where = db.where
    finally:
        db.close()
    if before == after:
        print(f"{where}: already at schema revision {after}")
    else:
        print(f"{where}: upgraded from {before or 'an empty database'} to revision {after}")
    return 0
