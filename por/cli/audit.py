"""`por check` (holder) and `por verify` (auditor): read the files, call por.core.verify, print.

    por check PROOF.json [--attestation ENVELOPE.json --keys KEYS.json]
    por verify ENVELOPE.json --keys KEYS.json [--previous ENVELOPE.json]
               [--leaves LEAVES.jsonl] [--inclusion INCLUSION.json]
               [--signatures SIGNATURES.json] [--witnesses N] [--witness VKEY]... [--json]
               [--matches MATCHES.json [--statements PATH]... [--rpc CHAIN=URL]...]
    por verify --from URL [--sequence N] [--keys KEYS.json] [--witnesses N] ...
    por verify --from URL --history [--first N] [--last N] [--keys KEYS.json]
    por verify REPORT.dsse.json --keys KEYS.json --attestations DIR
    por verify REPORT.dsse.json --from URL [--keys KEYS.json]
    por verify --report daily|weekly|monthly [--at DATE] --from URL [--keys KEYS.json]

Files may be bare (a DSSE envelope, a por-mst-v1 proof) or exactly what the API serves
(`/v1/attestations/N` — the envelope is taken from its `envelope` field; `/v1/proofs/…`
— the proof from its `proof` field, and its `sequence` and `attestation_digest` must be
the attestation's). With `--from`, `por verify` fetches the envelope, the previous one,
the key set (unless `--keys` pins it), the log inclusion proof with its checkpoint, and
the auditor co-signatures itself; `--history` checks every sequence in a range and
prints one line per sequence. A signed reserve report (its own payload type) is checked
against the attestations it cites, read from a published folder or fetched with
`--from` (which also proves each cited log index).

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
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from por.cli.keys import read_bytes, read_keyset
from por.cli.remote import Remote
from por.cli.tree import recompute_liabilities
from por.core.amounts import format_decimal
from por.core.canonical import loads_strict
from por.core.dsse import Envelope, KeySet, Signature
from por.core.mst import InclusionProof, verify_inclusion
from por.core.note import VerifierKey
from por.core.times import format_time
from por.core.verify import (
    CLOCK_SKEW_S,
    FAIL,
    Deferred,
    LogEvidence,
    Report,
    compare_proof_to_attestation,
    is_report_envelope,
    open_attestation_envelope,
    verify_report,
    verify_reserve_report,
)
from por.errors import FormatError, InputError, MismatchError, PorError


def envelope_from_doc(doc: object, *, where: str) -> Envelope:
    """A DSSE envelope, bare or inside the API's `{"sequence", "envelope", ...}` answer."""
    if isinstance(doc, dict) and "envelope" in doc and "payload" not in doc:
        return Envelope.from_dict(doc["envelope"], where=f"{where}.envelope")
    return Envelope.from_dict(doc, where=where)


def read_envelope(path: str | Path) -> Envelope:
    doc = loads_strict(read_bytes(path, what="envelope"), where=str(path))
    return envelope_from_doc(doc, where=str(path))


def signatures_from_doc(doc: object, *, where: str) -> list[Signature]:
    """Auditor signatures: the API's `{"sequence", "signatures": [...]}` or a DSSE envelope
    (read by DSSE's consumer rules)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("signatures"), list):
        raise FormatError("must be an object with a signatures list", where=where)
    return [
        Signature.from_dict(s, where=f"{where}.signatures[{i}]")
        for i, s in enumerate(doc["signatures"])
    ]


def _json_file(path: str, what: str) -> Any:
    return loads_strict(read_bytes(path, what=what), where=path)


def _witness_keys(args: argparse.Namespace) -> list[VerifierKey]:
    return [VerifierKey.parse(v, where="--witness") for v in args.witness or []]


def _envelope_file(path: str) -> Deferred[Envelope]:
    return Deferred(name=path, load=functools.partial(read_envelope, path))


def _report_file(path: str) -> Envelope | None:
    """The envelope in `path` if it claims to carry a reserve report (else None)."""
    try:
        envelope = read_envelope(path)
    except PorError:
        return None  # the attestation path reports the unreadable file
    return envelope if is_report_envelope(envelope) else None


def _attestation_dir_reader(folder: str) -> Any:
    """Envelopes by sequence from a published folder (`<sequence:08d>.dsse.json`)."""

    def read(sequence: int) -> Envelope:
        return read_envelope(Path(folder) / f"{sequence:08d}.dsse.json")

    return read


def _verify_reserve_report(args: argparse.Namespace, envelope: Envelope, name: str) -> int:
    """`por verify REPORT.dsse.json` (or `--report PERIOD --from URL`): the report's
    signature, then every cited attestation and every figure recomputed from them."""
    if args.attestations is not None and args.from_url is not None:
        raise InputError("give --attestations DIR or --from URL, not both", where="--attestations")
    if args.from_url is not None:
        remote = Remote(args.from_url)
        keyset, _ = remote_keyset(remote, args.keys)

        def fetch(sequence: int) -> Envelope:
            path = f"/v1/attestations/{sequence}"
            return envelope_from_doc(remote.get_json(path), where=remote.url(path))

        def evidence(sequence: int) -> LogEvidence:
            path = f"/v1/log/inclusion?sequence={sequence}"
            return LogEvidence.from_dict(remote.get_json(path), where=remote.url(path))

        report = verify_reserve_report(
            Deferred(name=name, load=lambda: envelope),
            keyset,
            now=datetime.now(UTC),
            attestations=fetch,
            attestations_name=remote.base,
            log=evidence,
        )
        return _print_report(report, as_json=args.json)
    if args.attestations is None:
        raise InputError(
            "a reserve report is checked against the attestations it cites: give "
            "--attestations DIR (the published <sequence>.dsse.json files) or --from URL",
            where="--attestations",
        )
    if args.keys is None:
        raise InputError("--keys KEYS.json is required with files", where="--keys")
    report = verify_reserve_report(
        Deferred(name=name, load=lambda: envelope),
        read_keyset(args.keys),
        now=datetime.now(UTC),
        attestations=_attestation_dir_reader(args.attestations),
        attestations_name=args.attestations,
    )
    return _print_report(report, as_json=args.json)


def _flow_inputs(
    args: argparse.Namespace, matches: Deferred[bytes] | None, envelope: Deferred[Envelope]
) -> dict[str, Any]:
    """`matches`, `entries` and `flows` for verify_report (por.cli.flows reads them)."""
    if matches is None:
        if args.statements or args.rpc:
            raise InputError(
                "--statements and --rpc check a match list: give --matches", where="--matches"
            )
        return {}
    out: dict[str, Any] = {"matches": matches}
    if args.statements:
        from por.cli.flows import read_entries

        paths = list(args.statements)
        out["entries"] = Deferred(
            name=", ".join(paths),
            load=lambda: read_entries(paths, matches.load(), envelope.load().payload),
        )
    if args.rpc:
        from por.cli.flows import parse_rpc, read_flows

        rpc = parse_rpc(args.rpc)
        out["flows"] = Deferred(
            name=", ".join(rpc.values()), load=lambda: read_flows(rpc, matches.load())
        )
    return out


def _matches_file(path: str | None) -> Deferred[bytes] | None:
    if path is None:
        return None
    return Deferred(name=path, load=functools.partial(read_bytes, path, what="match list"))


def cmd_verify(args: argparse.Namespace) -> int:
    if args.report is not None:
        if args.from_url is None or args.envelope is not None:
            raise InputError(
                "--report PERIOD fetches the report: give --from URL", where="--report"
            )
        remote = Remote(args.from_url)
        query = f"?at={args.at}" if args.at else ""
        path = f"/v1/reports/{args.report}{query}"
        return _verify_reserve_report(
            args, envelope_from_doc(remote.get_json(path), where=remote.url(path)), remote.url(path)
        )
    if args.envelope is not None:
        report_envelope = _report_file(args.envelope)
        if report_envelope is not None:
            return _verify_reserve_report(args, report_envelope, args.envelope)
    if args.attestations is not None:
        raise InputError("--attestations is for a reserve report", where="--attestations")
    if args.from_url is not None:
        return _verify_remote(args)
    if args.envelope is None:
        raise InputError("give ENVELOPE.json, or --from URL", where="por verify")
    if args.keys is None:
        raise InputError("--keys KEYS.json is required with a file", where="--keys")
    if args.history:
        raise InputError("--history needs --from URL", where="--history")
    keyset = read_keyset(args.keys)  # the trust root: an unreadable one is an error
    leaves = None
    if args.leaves is not None:
        leaves = Deferred(
            name=args.leaves, load=functools.partial(recompute_liabilities, args.leaves)
        )
    log = None
    if args.inclusion is not None:
        path = args.inclusion
        log = Deferred(
            name=path,
            load=lambda: LogEvidence.from_dict(_json_file(path, "inclusion proof"), where=path),
        )
    cosignatures: Deferred[Sequence[Signature]] | None = None
    if args.signatures is not None:
        sig_path = args.signatures
        cosignatures = Deferred(
            name=sig_path,
            load=lambda: signatures_from_doc(_json_file(sig_path, "signatures"), where=sig_path),
        )
    envelope = _envelope_file(args.envelope)
    report = verify_report(
        envelope,
        keyset,
        now=datetime.now(UTC),
        previous=None if args.previous is None else _envelope_file(args.previous),
        leaves=leaves,
        log=log,
        cosignatures=cosignatures,
        witnesses=_witness_keys(args),
        required_witnesses=args.witnesses,
        **_flow_inputs(args, _matches_file(args.matches), envelope),
    )
    return _print_report(report, as_json=args.json)


def _print_report(report: Report, *, as_json: bool) -> int:
    if as_json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.table())
    return 0 if report.ok else 1


def remote_keyset(remote: Remote, keys: str | None) -> tuple[KeySet, str]:
    if keys is not None:
        return read_keyset(keys), keys
    doc = remote.get_json("/v1/keys")
    print(
        f"note: trusting the key set served by {remote.base} (pin one with --keys)",
        file=sys.stderr,
    )
    return KeySet.from_dict(doc, where=remote.url("/v1/keys")), remote.url("/v1/keys")


def remote_envelope(remote: Remote, sequence: int) -> Deferred[Envelope]:
    path = f"/v1/attestations/{sequence}"
    return Deferred(
        name=remote.url(path),
        load=lambda: envelope_from_doc(remote.get_json(path), where=remote.url(path)),
    )


def remote_evidence(
    remote: Remote, sequence: int
) -> tuple[Deferred[LogEvidence], Deferred[Sequence[Signature]]]:
    inc_path = f"/v1/log/inclusion?sequence={sequence}"
    sig_path = f"/v1/attestations/{sequence}/signatures"
    log: Deferred[LogEvidence] = Deferred(
        name=remote.url(inc_path),
        load=lambda: LogEvidence.from_dict(remote.get_json(inc_path), where=remote.url(inc_path)),
    )
    cosigs: Deferred[Sequence[Signature]] = Deferred(
        name=remote.url(sig_path),
        load=lambda: signatures_from_doc(remote.get_json(sig_path), where=remote.url(sig_path)),
    )
    return log, cosigs


def latest_sequence(remote: Remote) -> int:
    doc = remote.get_json("/v1/attestations/latest")
    seq = doc.get("sequence") if isinstance(doc, dict) else None
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
        raise FormatError("no sequence in the answer", where=remote.url("/v1/attestations/latest"))
    return seq


def _verify_remote(args: argparse.Namespace) -> int:
    if args.envelope is not None:
        raise InputError("give either ENVELOPE.json or --from URL", where="--from")
    if args.leaves is not None and args.history:
        raise InputError("--leaves checks one attestation, not a history", where="--leaves")
    remote = Remote(args.from_url)
    keyset, _ = remote_keyset(remote, args.keys)
    if args.history:
        return _verify_history(args, remote, keyset)
    seq = args.sequence if args.sequence is not None else latest_sequence(remote)
    log, cosigs = remote_evidence(remote, seq)
    leaves = None
    if args.leaves is not None:
        leaves = Deferred(
            name=args.leaves, load=functools.partial(recompute_liabilities, args.leaves)
        )
    envelope = remote_envelope(remote, seq)
    matches = _matches_file(args.matches)
    if matches is None:
        path = f"/v1/reconciliation/{seq}"
        matches = Deferred(name=remote.url(path), load=lambda: remote.get(path))
    report = verify_report(
        envelope,
        keyset,
        now=datetime.now(UTC),
        previous=None if seq == 1 else remote_envelope(remote, seq - 1),
        leaves=leaves,
        log=log,
        cosignatures=cosigs,
        witnesses=_witness_keys(args),
        required_witnesses=args.witnesses,
        **_flow_inputs(args, matches, envelope),
    )
    return _print_report(report, as_json=args.json)


def _verify_history(args: argparse.Namespace, remote: Remote, keyset: KeySet) -> int:
    last = args.last if args.last is not None else latest_sequence(remote)
    first = args.first
    if not 1 <= first <= last:
        raise InputError(f"need 1 <= --first <= --last, got {first}..{last}", where="--first")
    now = datetime.now(UTC)
    failed = 0
    results = []
    cache: dict[int, Envelope] = {}

    def envelope(seq: int) -> Deferred[Envelope]:
        inner = remote_envelope(remote, seq)

        def load() -> Envelope:
            if seq not in cache:
                if len(cache) > 2:  # each envelope is read as current, then as previous
                    cache.clear()
                cache[seq] = inner.load()
            return cache[seq]

        return Deferred(name=inner.name, load=load)

    for seq in range(first, last + 1):
        log, cosigs = remote_evidence(remote, seq)
        report = verify_report(
            envelope(seq),
            keyset,
            now=now,
            previous=None if seq == 1 else envelope(seq - 1),
            log=log,
            cosignatures=cosigs,
            witnesses=_witness_keys(args),
            required_witnesses=args.witnesses,
        )
        failed += not report.ok
        results.append(report.to_dict() | {"sequence": seq})
        if not args.json:
            print(history_line(seq, report))
    if args.json:
        print(json.dumps({"ok": failed == 0, "reports": results}, indent=2))
    else:
        print(
            f"history {first}..{last}: "
            + ("PASS" if not failed else f"FAIL ({failed} of {last - first + 1} sequences)")
        )
    return 0 if failed == 0 else 1


def history_line(seq: int, report: Report) -> str:
    """One line per sequence: verdict, then each check's status, failures spelled out."""
    marks = " ".join(f"{c.name}={c.status}" for c in report.checks)
    line = f"{seq:>8}  {'PASS' if report.ok else 'FAIL'}  {marks}"
    fails = [f"{c.name}: {c.detail}" for c in report.checks if c.status == FAIL]
    return line + ("".join(f"\n          {f}" for f in fails))


def cmd_check(args: argparse.Namespace) -> int:
    if (args.attestation is None) != (args.keys is None):
        raise InputError(
            "--attestation and --keys go together",
            where="--keys" if args.keys is None else "--attestation",
        )
    proof_doc = loads_strict(read_bytes(args.proof, what="proof"), where=args.proof)
    wrapper: dict[str, Any] = {}
    if isinstance(proof_doc, dict) and "proof" in proof_doc and "format" not in proof_doc:
        wrapper, proof_doc = proof_doc, proof_doc["proof"]  # /v1/proofs/{account} as served
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
        for field_name, signed in (
            ("sequence", att.sequence),
            ("attestation_digest", att.digest()),
        ):
            if field_name in wrapper and wrapper[field_name] != signed:
                raise MismatchError(
                    f"the proof names another attestation ({field_name})",
                    expected=signed,
                    computed=wrapper[field_name],
                    where=args.proof,
                )
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
    verify.add_argument(
        "envelope",
        nargs="?",
        metavar="ENVELOPE.json",
        help="a DSSE envelope, bare or as /v1/attestations/N serves it",
    )
    verify.add_argument("--keys", metavar="KEYS.json", help="key set (the trust root)")
    verify.add_argument(
        "--from",
        dest="from_url",
        metavar="URL",
        help="fetch envelope, previous, key set, log proof and co-signatures from a por API",
    )
    verify.add_argument("--sequence", type=int, help="with --from: default the latest")
    verify.add_argument(
        "--history", action="store_true", help="with --from: check every sequence of a range"
    )
    verify.add_argument("--first", type=int, default=1, help="with --history (default 1)")
    verify.add_argument("--last", type=int, help="with --history (default: the latest)")
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
    verify.add_argument(
        "--inclusion",
        metavar="INCLUSION.json",
        help="/v1/log/inclusion's answer: check the envelope is in the signed log",
    )
    verify.add_argument(
        "--signatures",
        metavar="SIGNATURES.json",
        help="auditor co-signatures (/v1/attestations/N/signatures, or a DSSE envelope)",
    )
    verify.add_argument(
        "--witnesses",
        type=int,
        default=0,
        metavar="N",
        help="require N witness cosignatures on the checkpoint (keys: the key set's "
        "witnesses and --witness)",
    )
    verify.add_argument(
        "--witness",
        action="append",
        metavar="VKEY",
        help="a witness cosignature key you trust (C2SP vkey); repeatable",
    )
    verify.add_argument(
        "--attestations",
        metavar="DIR",
        help="for a reserve report: the published attestations (<sequence>.dsse.json) it cites",
    )
    verify.add_argument(
        "--report",
        choices=("daily", "weekly", "monthly"),
        help="with --from: fetch and verify that reserve report (default: the last ended)",
    )
    verify.add_argument("--at", metavar="YYYY-MM-DD", help="with --report: a date of the period")
    verify.add_argument(
        "--matches",
        metavar="MATCHES.json",
        help="the flow reconciliation's match list (/v1/reconciliation/N); --from fetches it",
    )
    verify.add_argument(
        "--statements",
        action="append",
        metavar="PATH",
        help="raw statements (files or folders) to re-read the bank entries from; repeatable",
    )
    verify.add_argument(
        "--rpc",
        action="append",
        metavar="CHAIN=URL",
        help="a node to re-read a chain's mints and burns from (eip155:1=https://...); repeatable",
    )
    verify.add_argument("--json", action="store_true", help="machine-readable report")
    verify.set_defaults(func=cmd_verify)
