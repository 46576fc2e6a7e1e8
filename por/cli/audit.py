"""`por check` (holder) and `por verify` (auditor): verify what the service published.

    por check PROOF.json [--attestation ENVELOPE.json --keys KEYS.json]
    por verify ENVELOPE.json --keys KEYS.json [--previous ENVELOPE.json]
               [--leaves LEAVES.jsonl] [--json]

`check_*` functions return a CheckResult (they never raise for a failed check); `por
verify` collects them into a Report, prints it as a table (or JSON with --json), and
exits 0 only when every check passed. Signatures are judged at the attestation's
issued_at against the key set given on the command line, never against keys carried by
the envelope. Imports only por.core and por.errors; reads files, writes nothing.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from por.cli.keys import read_bytes, read_keyset
from por.cli.tree import build_tree
from por.core import mst
from por.core.amounts import format_decimal
from por.core.attestation import (
    PAYLOAD_TYPE,
    Attestation,
    check_consistency,
    decode_attestation,
    verify_chain,
)
from por.core.canonical import loads_strict
from por.core.dsse import (
    Envelope,
    KeySet,
    ed25519_verify,
    pae,
    verify_envelope,
)
from por.core.times import format_time
from por.core.verify import VerifiedAttestation, claimed_issued_at, open_attestation_envelope
from por.errors import InputError, MismatchError, PorError

CLOCK_SKEW_S = 300
PASS, FAIL, SKIP = "pass", "fail", "skip"


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckResult:
    """One line of a verification report."""

    name: str
    status: str  # PASS, FAIL or SKIP
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "detail": self.detail}


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    """Every check run on one attestation; ok only if none failed."""

    subject: str
    checks: tuple[CheckResult, ...]

    @property
    def ok(self) -> bool:
        return all(c.status != FAIL for c in self.checks) and any(
            c.status == PASS for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {"subject": self.subject, "ok": self.ok,
                "checks": [c.to_dict() for c in self.checks]}

    def table(self) -> str:
        width = max(len(c.name) for c in self.checks)
        lines = [f"por verify {self.subject}"]
        lines += [f"  {c.status.upper():<4}  {c.name:<{width}}  {c.detail}" for c in self.checks]
        failed = sum(c.status == FAIL for c in self.checks)
        passed = sum(c.status == PASS for c in self.checks)
        lines.append(f"result: PASS ({passed} checks passed)" if self.ok
                     else f"result: FAIL ({failed} of {len(self.checks)} checks failed)")
        return "\n".join(lines)


def _fail(name: str, e: PorError) -> CheckResult:
    return CheckResult(name=name, status=FAIL, detail=str(e))


# --- reading inputs ----------------------------------------------------------------------


def read_envelope(path: str | Path) -> Envelope:
    return Envelope.from_json_bytes(read_bytes(path, what="envelope"), where=str(path))


# --- checks ------------------------------------------------------------------------------


def check_format(envelope: Envelope) -> tuple[CheckResult, Attestation | None]:
    """The envelope carries a canonical por-attestation-v1 payload (not yet trusted)."""
    if envelope.payload_type != PAYLOAD_TYPE:
        return CheckResult(name="format", status=FAIL,
                           detail=f"payloadType is {envelope.payload_type!r}, "
                                  f"expected {PAYLOAD_TYPE!r}"), None
    try:
        att = decode_attestation(envelope.payload, where="payload")
    except PorError as e:
        return _fail("format", e), None
    return CheckResult(name="format", status=PASS,
                       detail=f"{att.format} sequence {att.sequence}, issued "
                              f"{format_time(att.issued_at)}, as of {format_time(att.as_of)}"), att


def check_signatures(envelope: Envelope, keyset: KeySet, *, now: datetime,
                     where: str = "envelope") -> tuple[CheckResult, VerifiedAttestation | None]:
    """Issuer signature(s) verify at issued_at; auditor co-signatures are reported."""
    try:
        opened = open_attestation_envelope(envelope, keyset, now=now, clock_skew_s=CLOCK_SKEW_S,
                                           where=where)
    except PorError as e:
        return _fail("signatures", e), None
    signed = [f"{k[:16]}… ({r})" for k, r in zip(opened.envelope.keyids, opened.envelope.roles,
                                                  strict=True)]
    try:
        auditors = verify_envelope(envelope, keyset, at=opened.attestation.issued_at,
                                   payload_type=PAYLOAD_TYPE,
                                   roles=frozenset({"auditor"})).keyids
        cosign = "auditor co-signature: " + ", ".join(f"{k[:16]}…" for k in auditors)
    except PorError:
        cosign = "no valid auditor co-signature"
    return CheckResult(name="signatures", status=PASS,
                       detail=f"issuer: {', '.join(signed)}; {cosign}"), opened


def check_key_windows(envelope: Envelope, keyset: KeySet, *, now: datetime) -> CheckResult:
    """Every key of the set that signed was inside its validity window at issued_at."""
    try:
        issued_at = claimed_issued_at(envelope.payload)
    except PorError as e:
        return _fail("key windows", e)
    if (issued_at - now).total_seconds() > CLOCK_SKEW_S:
        return CheckResult(name="key windows", status=FAIL,
                           detail=f"issued_at {format_time(issued_at)} is in the future "
                                  f"(now {format_time(now)})")
    notes: list[str] = []
    bad: list[str] = []
    message = pae(envelope.payload_type, envelope.payload)
    seen: set[str] = set()
    for s in envelope.signatures:
        entry = keyset.get(s.keyid)
        if entry is None or entry.keyid in seen:
            continue
        try:  # only keys whose signature is genuine matter here
            ed25519_verify(entry.public_key, message, s.sig, where="signature")
        except PorError:
            continue
        seen.add(entry.keyid)
        problem = entry.window_problem(issued_at)
        label = f"{entry.keyid[:16]}… ({entry.role})"
        if problem:
            bad.append(f"key {label} not valid at {format_time(issued_at)}: {problem}")
        else:
            notes.append(f"{label} valid at {format_time(issued_at)}")
    if bad:
        return CheckResult(name="key windows", status=FAIL, detail="; ".join(bad))
    if not notes:
        return CheckResult(name="key windows", status=FAIL,
                           detail="no signature from a key of the key set")
    return CheckResult(name="key windows", status=PASS, detail="; ".join(notes))


def check_chain(current: Attestation | None, previous_path: str | None, keyset: KeySet, *,
                now: datetime) -> CheckResult:
    """The previous envelope verifies too, and this attestation links to it."""
    if previous_path is None:
        if current is not None and current.previous is None:
            return CheckResult(name="hash chain", status=PASS,
                               detail="sequence 1 starts the chain")
        return CheckResult(name="hash chain", status=SKIP,
                           detail="no --previous given: link to the previous not checked")
    if current is None:
        return CheckResult(name="hash chain", status=SKIP,
                           detail="attestation did not verify")
    try:
        prev_env = read_envelope(previous_path)
        prev = open_attestation_envelope(prev_env, keyset, now=now, clock_skew_s=CLOCK_SKEW_S,
                                         where=str(previous_path)).attestation
        verify_chain(prev, current)
    except PorError as e:
        return _fail("hash chain", e)
    return CheckResult(name="hash chain", status=PASS,
                       detail=f"sequence {prev.sequence} -> {current.sequence}, previous "
                              f"digest {prev.digest()[:16]}… matches; previous envelope "
                              f"verified")


def check_leaves(current: Attestation | None, leaves_path: str | None) -> CheckResult:
    """Recompute the liabilities sum tree from the leaf export and compare."""
    if leaves_path is None:
        return CheckResult(name="liabilities", status=SKIP,
                           detail="no --leaves given: root not recomputed")
    if current is None:
        return CheckResult(name="liabilities", status=SKIP, detail="attestation did not verify")
    try:
        root_hash, total, count = tree_root(leaves_path)
    except PorError as e:
        return _fail("liabilities", e)
    want = current.liabilities
    diffs = []
    if root_hash != want.root:
        diffs.append(f"root: signed {want.root}, recomputed {root_hash}")
    if total != want.total:
        diffs.append(f"total: signed {want.total}, recomputed {total}")
    if count != want.leaf_count:
        diffs.append(f"leaf_count: signed {want.leaf_count}, recomputed {count}")
    if diffs:
        return CheckResult(name="liabilities", status=FAIL,
                           detail="leaves do not match: " + "; ".join(diffs))
    return CheckResult(name="liabilities", status=PASS,
                       detail=f"root {root_hash[:16]}…, total {total}, {count} leaves recomputed "
                              f"from {leaves_path}")


def check_totals(current: Attestation | None) -> CheckResult:
    """The document adds up: supplies, liabilities, eligible reserves, ratio, status."""
    if current is None:
        return CheckResult(name="totals", status=SKIP, detail="attestation did not verify")
    problems = check_consistency(current)
    if problems:
        return CheckResult(name="totals", status=FAIL, detail="; ".join(problems))
    t = current.totals
    return CheckResult(name="totals", status=PASS,
                       detail=f"{t.status}, ratio {t.ratio}, eligible {t.eligible_reserves} vs "
                              f"circulating {t.circulating_supply} (= liabilities total)")


def tree_root(leaves_path: str | Path) -> tuple[str, int, int]:
    """(root hash hex, total, leaf count) of the sum tree over a leaf export."""
    tree = build_tree(str(leaves_path))  # the same reader as `por tree root`
    root = tree.root
    return root.hash.hex(), root.sum, tree.size


def verify_report(envelope_path: str, keys_path: str, *, previous: str | None = None,
                  leaves: str | None = None, now: datetime) -> Report:
    """Run every check on one published attestation."""
    keyset = read_keyset(keys_path)  # the trust root: an unreadable one is an error
    try:
        envelope = read_envelope(envelope_path)
    except PorError as e:
        return Report(subject=envelope_path, checks=(_fail("format", e),))
    fmt, _ = check_format(envelope)
    sig, opened = check_signatures(envelope, keyset, now=now, where=envelope_path)
    current = opened.attestation if opened else None
    checks = [fmt, sig, check_key_windows(envelope, keyset, now=now),
              check_chain(current, previous, keyset, now=now),
              check_leaves(current, leaves), check_totals(current)]
    return Report(subject=envelope_path, checks=tuple(checks))


# --- commands ----------------------------------------------------------------------------


def cmd_verify(args: argparse.Namespace) -> int:
    report = verify_report(args.envelope, args.keys, previous=args.previous, leaves=args.leaves,
                           now=datetime.now(UTC))
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.table())
    return 0 if report.ok else 1


def cmd_check(args: argparse.Namespace) -> int:
    if (args.attestation is None) != (args.keys is None):
        raise InputError("--attestation and --keys go together",
                         where="--keys" if args.keys is None else "--attestation")
    proof_doc = loads_strict(read_bytes(args.proof, what="proof"), where=args.proof)
    proof = mst.InclusionProof.from_dict(proof_doc, where=args.proof)
    mst.verify_inclusion(proof)
    balance = f"{proof.balance} base units"
    suffix = ""
    if args.attestation is not None:
        keyset = read_keyset(args.keys)
        envelope = read_envelope(args.attestation)
        att = open_attestation_envelope(envelope, keyset, now=datetime.now(UTC),
                                        clock_skew_s=CLOCK_SKEW_S,
                                        where=args.attestation).attestation
        compare_proof_to_attestation(proof, att, where=args.proof)
        balance = f"{format_decimal(proof.balance, att.token.decimals)} {att.token.symbol}"
        suffix = (f" of attestation sequence {att.sequence} (as of {format_time(att.as_of)}, "
                  f"signature verified)")
    print(f"OK: {proof.account} with balance {balance} is included in the liabilities "
          f"root {proof.root.hash.hex()[:16]}…{suffix}")
    return 0


def compare_proof_to_attestation(
    proof: mst.InclusionProof, att: Attestation, *, where: str
) -> None:
    """Raise MismatchError unless the proof's root, sum and size are the signed ones."""
    pairs: list[tuple[str, object, object]] = [
        ("root hash", proof.root.hash.hex(), att.liabilities.root),
        ("total", proof.root.sum, att.liabilities.total),
        ("leaf count", proof.size, att.liabilities.leaf_count),
    ]
    for what, got, signed in pairs:
        if got != signed:
            raise MismatchError(f"the proof's {what} is not the signed liabilities {what}",
                                expected=signed, computed=got, where=where)


def register(sub: Any) -> None:
    check = sub.add_parser("check", help="holder: check an inclusion proof (and its attestation)")
    check.add_argument("proof", metavar="PROOF.json")
    check.add_argument("--attestation", metavar="ENVELOPE.json",
                       help="signed attestation whose liabilities root the proof must match")
    check.add_argument("--keys", metavar="KEYS.json", help="key set to verify the attestation")
    check.set_defaults(func=cmd_check)

    verify = sub.add_parser("verify", help="auditor: verify a signed attestation, per check")
    verify.add_argument("envelope", metavar="ENVELOPE.json")
    verify.add_argument("--keys", required=True, metavar="KEYS.json")
    verify.add_argument("--previous", metavar="ENVELOPE.json",
                        help="the previous attestation, to check the hash chain")
    verify.add_argument("--leaves", metavar="LEAVES.jsonl",
                        help="leaf export to recompute the liabilities root and total")
    verify.add_argument("--json", action="store_true", help="machine-readable report")
    verify.set_defaults(func=cmd_verify)
