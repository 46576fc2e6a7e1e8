"""`por check` (holder) and `por verify` (auditor): read the files, call por.core.verify, print.

    por check PROOF.json [--attestation ENVELOPE.json --keys KEYS.json]
    por verify ENVELOPE.json --keys KEYS.json [--previous ENVELOPE.json]
               [--leaves LEAVES.jsonl] [--json]

What each check means is in `por.core.verify`; this module reads the files, hands them to
the library and prints its answer. `por verify` prints the report as a table (or JSON
with --json) and exits 0 only when every check passed; `por check` exits 0 only when the
proof verifies (and matches the signed attestation, when one is given). Signatures are
judged against the key set given on the command line, never against keys carried by
the envelope.

Reads files, writes stdout only. Neither command imports numpy, web3, FastAPI or
SQLAlchemy; `--leaves` builds the tree on demand (por.cli.tree).
"""

from __future__ import annotations

import argparse
import functools
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from por.cli.keys import read_bytes, read_keyset
from por.cli.tree import recompute_liabilities
from por.core.amounts import format_decimal
from por.core.canonical import loads_strict
from por.core.dsse import Envelope
from por.core.mst import InclusionProof, verify_inclusion
from por.core.times import format_time
from por.core.verify import (
    CLOCK_SKEW_S,
    Deferred,
    compare_proof_to_attestation,
    open_attestation_envelope,
    verify_report,
)
from por.errors import InputError


def read_envelope(path: str | Path) -> Envelope:
    return Envelope.from_json_bytes(read_bytes(path, what="envelope"), where=str(path))


def _envelope_file(path: str) -> Deferred[Envelope]:
    return Deferred(name=path, load=functools.partial(read_envelope, path))


def cmd_verify(args: argparse.Namespace) -> int:
    keyset = read_keyset(args.keys)  # the trust root: an unreadable one is an error
    leaves = None
    if args.leaves is not None:
        leaves = Deferred(
            name=args.leaves, load=functools.partial(recompute_liabilities, args.leaves)
        )
    report = verify_report(
        _envelope_file(args.envelope),
        keyset,
        now=datetime.now(UTC),
        previous=None if args.previous is None else _envelope_file(args.previous),
        leaves=leaves,
    )
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.table())
    return 0 if report.ok else 1


def cmd_check(args: argparse.Namespace) -> int:
    if (args.attestation is None) != (args.keys is None):
        raise InputError(
            "--attestation and --keys go together",
            where="--keys" if args.keys is None else "--attestation",
        )
    proof_doc = loads_strict(read_bytes(args.proof, what="proof"), where=args.proof)
    proof = InclusionProof.from_dict(proof_doc, where=args.proof)
    verify_inclusion(proof)
    balance = f"{proof.balance} base units"
    suffix = ""
    if args.attestation is not None:
        keyset = read_keyset(args.keys)
        envelope = read_envelope(args.attestation)
        att = open_attestation_envelope(
            envelope,
            keyset,
            now=datetime.now(UTC),
            clock_skew_s=CLOCK_SKEW_S,
            where=args.attestation,
        ).attestation
        compare_proof_to_attestation(proof, att, where=args.proof)
        balance = f"{format_decimal(proof.balance, att.token.decimals)} {att.token.symbol}"
        suffix = (
            f" of attestation sequence {att.sequence} (as of {format_time(att.as_of)}, "
            "signature verified)"
        )
    print(
        f"OK: {proof.account} with balance {balance} is included in the liabilities "
        f"root {proof.root.hash.hex()[:16]}…{suffix}"
    )
    return 0


def register(sub: Any) -> None:
    check = sub.add_parser("check", help="holder: check an inclusion proof (and its attestation)")
    check.add_argument("proof", metavar="PROOF.json")
    check.add_argument(
        "--attestation",
        metavar="ENVELOPE.json",
        help="signed attestation whose liabilities root the proof must match",
    )
    check.add_argument("--keys", metavar="KEYS.json", help="key set to verify the attestation")
    check.set_defaults(func=cmd_check)

    verify = sub.add_parser("verify", help="auditor: verify a signed attestation, per check")
    verify.add_argument("envelope", metavar="ENVELOPE.json")
    verify.add_argument("--keys", required=True, metavar="KEYS.json")
    verify.add_argument(
        "--previous",
        metavar="ENVELOPE.json",
        help="the previous attestation, to check the hash chain",
    )
    verify.add_argument(
        "--leaves",
        metavar="LEAVES.jsonl",
        help="leaf export to recompute the liabilities root and total",
    )
    verify.add_argument("--json", action="store_true", help="machine-readable report")
    verify.set_defaults(func=cmd_verify)
