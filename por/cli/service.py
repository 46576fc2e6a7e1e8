"""Service commands of `por`: init, attest (one run), run (scheduler + API), serve (API only), demo.

These import the heavy adapters (web3, SQLAlchemy, FastAPI) lazily, inside the command
functions, so the auditor's commands stay light.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def add_log_arguments(parser: Any) -> None:
    from por.service.logs import add_log_arguments as add

    add(parser)


def _logging(args: argparse.Namespace) -> None:
    from por.service.logs import setup_logging

    setup_logging(args.log_format, level=args.log_level)


def register(sub: Any) -> None:
    p = sub.add_parser("init", help="write a commented configuration and a fresh issuer key")
    p.add_argument("--dir", type=Path, default=Path("."), help="where to write (default: .)")
    p.set_defaults(func=_cmd_init)

    p = sub.add_parser("attest", help="run one attestation now and print its summary")
    p.add_argument("--config", type=Path, default=Path("por.toml"))
    p.add_argument("--no-publish", action="store_true", help="record, but do not publish")
    p.add_argument(
        "--as-of",
        metavar="TIME",
        help="attest as of this past time (RFC 3339, e.g. 2026-03-01T12:00:00Z): a signed "
        "point-in-time attestation, recorded and logged, never published (docs/ledger.md)",
    )
    add_log_arguments(p)
    p.set_defaults(func=_cmd_attest)

    p = sub.add_parser("run", help="run the scheduler and serve the API")
    p.add_argument("--config", type=Path, default=Path("por.toml"))
    p.add_argument("--no-api", action="store_true", help="scheduler only")
    p.add_argument("--run-now", action="store_true", help="start with one run")
    _trusted_proxy_argument(p)
    add_log_arguments(p)
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("serve", help="serve the API and dashboard only")
    p.add_argument("--config", type=Path, default=Path("por.toml"))
    _trusted_proxy_argument(p)
    add_log_arguments(p)
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("prove", help="print a holder's inclusion proof from the store")
    p.add_argument("account", help="CAIP-10 account id")
    p.add_argument("--config", type=Path, default=Path("por.toml"))
    p.add_argument("--sequence", type=int, default=None, help="default: the latest")
    p.set_defaults(func=_cmd_prove)

    p = sub.add_parser(
        "leaves",
        help="export an attestation's leaves (LEAVES.jsonl) for "
        "an auditor; they contain every account and salt",
    )
    p.add_argument("--config", type=Path, default=Path("por.toml"))
    p.add_argument("--sequence", type=int, default=None, help="default: the latest")
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=_cmd_leaves)

    p = sub.add_parser("demo", help="run the whole service on an embedded local world")
    p.add_argument("--data-dir", type=Path, default=Path("demo-data"))
    p.add_argument("--port", type=int, default=8000, help="API port on 127.0.0.1 (0: any free)")
    p.add_argument("--interval", type=int, default=30, help="seconds between attestations")
    p.add_argument("--holders", type=int, default=10_000, help="holders across all chains")
    p.add_argument("--no-solana", action="store_true")
    p.add_argument(
        "--scenario",
        choices=("backed", "under-collateralized", "degraded"),
        default="backed",
        help="reserves at 1.05 x supply (default), at 0.97 x, or backed but with "
        "statements too old to count",
    )
    p.add_argument(
        "--runs",
        type=int,
        default=0,
        help="stop after this many attestations (0: run until Ctrl-C or SIGTERM)",
    )
    add_log_arguments(p)
    p.set_defaults(func=_cmd_demo)


def _trusted_proxy_argument(p: Any) -> None:
    p.add_argument(
        "--trusted-proxy",
        action="append",
        default=[],
        metavar="ADDR",
        help="a reverse proxy (address or CIDR) whose X-Forwarded-For is believed; "
        "repeat for several; replaces [api] trusted_proxies",
    )


def _cmd_init(args: argparse.Namespace) -> int:
    from por.service.setup import init_directory

    written = init_directory(args.dir)
    for w in written:
        print(f"wrote {w}")
    return 0


def _cmd_attest(args: argparse.Namespace) -> int:
    from por.service.config import load_config
    from por.service.wiring import build_service

    _logging(args)
    when = None
    if args.as_of is not None:
        from por.core.times import parse_time_with_offset

        when = parse_time_with_offset(args.as_of, where="--as-of")
    cfg = load_config(args.config)
    svc = build_service(cfg, publish=not args.no_publish and when is None)
    try:
        result = svc.attest(as_of=when)
        svc.submit_to_witnesses()  # best effort: failures are logged and retried next run
        att = svc.store.get(result.sequence).attestation
    finally:
        svc.close()
    kind = "" if when is None else f" point-in-time as of {args.as_of}"
    print(f"attestation {result.sequence}{kind} {result.status} digest {result.digest}")
    if att.point_in_time is not None:
        blocks = {x.chain_id: x.block.number for x in att.chains}
        for c in att.point_in_time.chains:
            print(
                f"  {c.chain_id}: block {blocks[c.chain_id]} from {c.source}, "
                f"{c.gap_s} s before the as-of"
            )
    for r in result.reasons:
        print(f"  reason: {r}")
    for p in result.publications:
        print(f"  {p.chain_id}: {'ok' if p.ok else 'FAILED'} {p.detail} {p.tx or ''}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from por.service.config import load_config, with_trusted_proxies
    from por.service.wiring import build_service

    _logging(args)
    cfg = with_trusted_proxies(load_config(args.config), args.trusted_proxy)
    svc = build_service(cfg, publish=True)
    try:
        svc.run_forever(api=not args.no_api, run_now=args.run_now)
    finally:
        svc.close()
        if svc.abandoned_run:
            # a cancelled run is still blocked in a read: its thread would hold the
            # interpreter's exit. Nothing of it can be recorded any more (it was
            # cancelled); leave now, as a SIGKILL would, after flushing the logs.
            import logging
            import os

            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from por.service.config import load_config, with_trusted_proxies
    from por.service.wiring import build_service

    _logging(args)
    cfg = with_trusted_proxies(load_config(args.config), args.trusted_proxy)
    svc = build_service(cfg, publish=False)
    try:
        svc.serve_forever()
    finally:
        svc.close()
    return 0


def _open_store(config: Path) -> Any:
    from por.service.config import load_config
    from por.service.storage import open_store

    cfg = load_config(config)
    return open_store(cfg, materialize=False)


def _sequence(store: Any, wanted: int | None) -> int:
    from por.errors import InputError

    if wanted is not None:
        store.get(wanted)  # raises naming the unknown sequence
        return wanted
    latest = store.latest_regular()  # as the API's /latest: never a point-in-time one
    if latest is None:
        raise InputError("no attestation has been recorded yet")
    return int(latest.sequence)


def _cmd_prove(args: argparse.Namespace) -> int:
    import json

    store = _open_store(args.config)
    try:
        seq = _sequence(store, args.sequence)
        proof = store.tree(seq).prove(args.account)
    finally:
        store.close()
    print(json.dumps(proof.to_dict(), indent=2))
    return 0


def _cmd_leaves(args: argparse.Namespace) -> int:
    import json

    from por.fileio import write_atomic

    store = _open_store(args.config)
    try:
        seq = _sequence(store, args.sequence)
        lines = [json.dumps(d, separators=(",", ":")) for d in store.tree(seq).export_leaves()]
    finally:
        store.close()
    write_atomic(args.out, ("\n".join(lines) + "\n").encode())
    print(f"wrote {len(lines)} leaves of attestation {seq} to {args.out}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from por.demo.world import run_demo

    _logging(args)
    return run_demo(
        data_dir=args.data_dir,
        port=args.port,
        interval_s=args.interval,
        holders=args.holders,
        solana=not args.no_solana,
        runs=args.runs,
        out=sys.stdout,
        scenario=args.scenario,
    )
