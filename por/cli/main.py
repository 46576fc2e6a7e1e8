"""`por` entry point: dispatches to subcommand modules and turns PorError into exit codes.

Each subcommand module exposes `register(subparsers)` that adds its parsers and sets
`func` (taking the parsed args, returning an exit code). Auditor and holder commands
(tree, check, verify, keys) import only `por.core`; service commands import the rest
lazily, so `por verify` runs without web3, FastAPI or SQLAlchemy being imported.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from por.errors import PorError

# module name -> registered by; each adds its own subcommands
_SUBCOMMAND_MODULES = (
    "por.cli.tree",  # tree root, tree prove
    "por.cli.audit",  # check, verify
    "por.cli.keys",  # keys generate
    "por.cli.auditor",  # log verify, statements fetch, cosign
    "por.cli.witness",  # witness init, serve, show
    "por.cli.service",  # init, run, attest, serve, demo
    "por.cli.ops",  # config check, db upgrade
    "por.cli.oracle",  # oracle deploy, status, set-attestors, set-threshold
    "por.cli.report",  # report (the periodic reserve report)
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="por", description="Proof-of-reserve attestations: produce, publish, verify."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:  # that part is not built yet
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except PorError as e:
        if getattr(args, "log_format", None):  # a service command: its log gets it too
            import logging

            logging.getLogger("por").error("%s failed: %s", args.command, e.diagnostics())
        print(f"por: error: {e.diagnostics()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
