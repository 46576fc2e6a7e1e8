"""Verify what por published: open a signed attestation, and run an auditor's checks on it.

Opening (`open_attestation_envelope`, `verify_attestation_envelope`) raises unless the
issuer's signatures verify. Signatures are judged at the attestation's own `issued_at`
(a key that expired later still vouches for what it signed while valid), but
`issued_at` is read from bytes that are not yet authenticated. That is safe because the
signature covers those bytes: a forged `issued_at` does not verify. A claimed
`issued_at` beyond `now` + clock skew is refused before anything else, so a stolen key
cannot sign "from the future" around a later revocation window.

The auditor's checks (`check_*`) each return a `CheckResult` — pass, fail or skip — and
never raise for a failed check; `verify_report` runs them in order into a `Report`, what
`por verify` prints. `compare_proof_to_attestation` raises unless a holder's inclusion
proof is for the signed liabilities, what `por check` adds to `mst.verify_inclusion`.

No I/O here: the caller passes `now` and reads the files. Inputs a check may not need —
the envelope itself, the previous envelope, the liabilities recomputed from a leaf
export — come as `Deferred` values: the caller's reader, called only when a check gets
that far (a leaf export is not hashed for an attestation that did not verify). A
PorError it raises fails that one check, as an unreadable file should.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from por.core.attestation import (
    PAYLOAD_TYPE,
    Attestation,
    Liabilities,
    check_consistency,
    decode_attestation,
    verify_chain,
)
from por.core.budgets import budget_problems
from por.core.canonical import loads_strict
from por.core.dsse import (
    Envelope,
    KeySet,
    Signature,
    VerifiedEnvelope,
    ed25519_verify,
    pae,
    verify_envelope,
)
from por.core.flows import BankEntry, ChainFlow, check_matches
from por.core.mst import InclusionProof
from por.core.note import VerifierKey
from por.core.reserve_report import (
    REPORT_PAYLOAD_TYPE,
    DayAttestation,
    ReserveReport,
    build_report,
    decode_report,
    local_date,
)
from por.core.times import format_time, parse_time
from por.core.tlog import envelope_leaf_hash, open_checkpoint
from por.core.tlog import verify_inclusion as verify_log_inclusion
from por.errors import FormatError, MismatchError, PorError, SignatureError

CLOCK_SKEW_S = 300
"""How far in the future an attestation's issued_at may lie (clocks disagree a little)."""

PASS, FAIL, SKIP = "pass", "fail", "skip"

T = TypeVar("T")


class FutureAttestationError(SignatureError):
    """The attestation claims an issue time later than now plus the allowed clock skew."""


# --- opening a signed attestation --------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifiedAttestation:
    """An attestation whose envelope verified, with the keys that vouched for it."""

    attestation: Attestation
    envelope: VerifiedEnvelope


def claimed_issued_at(payload: bytes, *, where: str = "payload") -> datetime:
    """The `issued_at` an (unverified) payload claims; a FormatError if it has none."""
    doc = loads_strict(payload, where=where)
    if not isinstance(doc, dict) or "issued_at" not in doc:
        raise FormatError("payload is not an attestation with issued_at", where=where)
    return parse_time(doc["issued_at"], where=f"{where}.issued_at")


def open_attestation_envelope(
    envelope: Envelope,
    keyset: KeySet,
    *,
    now: datetime,
    clock_skew_s: int = CLOCK_SKEW_S,
    threshold: int = 1,
    roles: frozenset[str] = frozenset({"issuer"}),
    where: str = "envelope",
) -> VerifiedAttestation:
    """Verify the envelope at the payload's issued_at and decode the verified bytes."""
    issued_at = claimed_issued_at(envelope.payload, where=f"{where}.payload")
    latest = now + timedelta(seconds=clock_skew_s)
    if issued_at > latest:
        raise FutureAttestationError(
            "attestation is issued in the future",
            expected=f"issued_at <= {format_time(latest)} (now + {clock_skew_s} s)",
            computed=format_time(issued_at),
            where=f"{where}.payload.issued_at",
        )
    verified = verify_envelope(
        envelope,
        keyset,
        at=issued_at,
        threshold=threshold,
        roles=roles,
        payload_type=PAYLOAD_TYPE,
        where=where,
    )
    attestation = decode_attestation(verified.payload, where=f"{where}.payload")
    return VerifiedAttestation(attestation=attestation, envelope=verified)


def verify_attestation_envelope(
    envelope: Envelope,
    keyset: KeySet,
    *,
    now: datetime,
    clock_skew_s: int = CLOCK_SKEW_S,
    threshold: int = 1,
    where: str = "envelope",
) -> Attestation:
    """The decoded attestation, once issuer signatures verify at its issued_at; else raise."""
    return open_attestation_envelope(
        envelope, keyset, now=now, clock_skew_s=clock_skew_s, threshold=threshold, where=where
    ).attestation


def compare_proof_to_attestation(proof: InclusionProof, att: Attestation, *, where: str) -> None:
    """Raise MismatchError unless the proof's root, sum and size are the signed ones.

    `mst.verify_inclusion` shows the proof reaches its own root; this shows that root is
    the one the issuer signed. The size matters too: a root does not commit to it
    (docs/sumtree.md §4).
    """
    pairs: list[tuple[str, object, object]] = [
        ("root hash", proof.root.hash.hex(), att.liabilities.root),
        ("total", proof.root.sum, att.liabilities.total),
        ("leaf count", proof.size, att.liabilities.leaf_count),
    ]
    for what, got, signed in pairs:
        if got != signed:
            raise MismatchError(
                f"the proof's {what} is not the signed liabilities {what}",
                expected=signed,
                computed=got,
                where=where,
            )


# --- the auditor's report ----------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Deferred(Generic[T]):
    """An input the caller reads or computes only if a check needs it.

    `name` says where it comes from (a file name, for the report); `load` produces it
    and raises a PorError when it cannot (missing file, malformed JSON, bad leaf line).
    """

    name: str
    load: Callable[[], T]


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
    """Every check run on one attestation; ok only if none failed and one passed."""

    subject: str
    checks: tuple[CheckResult, ...]

    @property
    def ok(self) -> bool:
        return all(c.status != FAIL for c in self.checks) and any(
            c.status == PASS for c in self.checks
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "ok": self.ok,
            "checks": [c.to_dict() for c in self.checks],
        }

    def table(self) -> str:
        """The report as the lines `por verify` prints."""
        width = max(len(c.name) for c in self.checks)
        lines = [f"por verify {self.subject}"]
        lines += [f"  {c.status.upper():<4}  {c.name:<{width}}  {c.detail}" for c in self.checks]
        failed = sum(c.status == FAIL for c in self.checks)
        passed = sum(c.status == PASS for c in self.checks)
        lines.append(
            f"result: PASS ({passed} checks passed)"
            if self.ok
            else f"result: FAIL ({failed} of {len(self.checks)} checks failed)"
        )
        return "\n".join(lines)


def _fail(name: str, e: PorError) -> CheckResult:
    return CheckResult(name=name, status=FAIL, detail=str(e))


def check_format(envelope: Envelope) -> tuple[CheckResult, Attestation | None]:
    """The envelope carries a canonical por-attestation-v1 payload (not yet trusted)."""
    if envelope.payload_type != PAYLOAD_TYPE:
        detail = f"payloadType is {envelope.payload_type!r}, expected {PAYLOAD_TYPE!r}"
        return CheckResult(name="format", status=FAIL, detail=detail), None
    try:
        att = decode_attestation(envelope.payload, where="payload")
    except PorError as e:
        return _fail("format", e), None
    detail = (
        f"{att.format} sequence {att.sequence}, issued {format_time(att.issued_at)}, "
        f"as of {format_time(att.as_of)}" + (" (point-in-time)" if att.is_point_in_time else "")
    )
    return CheckResult(name="format", status=PASS, detail=detail), att


def check_signatures(
    envelope: Envelope, keyset: KeySet, *, now: datetime, where: str = "envelope"
) -> tuple[CheckResult, VerifiedAttestation | None]:
    """Issuer signature(s) verify at issued_at; auditor co-signatures are reported."""
    try:
        opened = open_attestation_envelope(
            envelope, keyset, now=now, clock_skew_s=CLOCK_SKEW_S, where=where
        )
    except PorError as e:
        return _fail("signatures", e), None
    signed = [
        f"{k[:16]}… ({r})"
        for k, r in zip(opened.envelope.keyids, opened.envelope.roles, strict=True)
    ]
    try:
        auditors = verify_envelope(
            envelope,
            keyset,
            at=opened.attestation.issued_at,
            payload_type=PAYLOAD_TYPE,
            roles=frozenset({"auditor"}),
        ).keyids
        cosign = "auditor co-signature: " + ", ".join(f"{k[:16]}…" for k in auditors)
    except PorError:
        cosign = "no valid auditor co-signature"
    detail = f"issuer: {', '.join(signed)}; {cosign}"
    return CheckResult(name="signatures", status=PASS, detail=detail), opened


def check_key_windows(envelope: Envelope, keyset: KeySet, *, now: datetime) -> CheckResult:
    """Every key of the set that signed was inside its validity window at issued_at."""
    try:
        issued_at = claimed_issued_at(envelope.payload)
    except PorError as e:
        return _fail("key windows", e)
    if (issued_at - now).total_seconds() > CLOCK_SKEW_S:
        return CheckResult(
            name="key windows",
            status=FAIL,
            detail=f"issued_at {format_time(issued_at)} is in the future (now {format_time(now)})",
        )
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
        return CheckResult(
            name="key windows", status=FAIL, detail="no signature from a key of the key set"
        )
    return CheckResult(name="key windows", status=PASS, detail="; ".join(notes))


def check_chain(
    current: Attestation | None,
    previous: Deferred[Envelope] | None,
    keyset: KeySet,
    *,
    now: datetime,
) -> CheckResult:
    """The previous envelope verifies too, and this attestation links to it."""
    if previous is None:
        if current is not None and current.previous is None:
            return CheckResult(name="hash chain", status=PASS, detail="sequence 1 starts the chain")
        return CheckResult(
            name="hash chain",
            status=SKIP,
            detail="no --previous given: link to the previous not checked",
        )
    if current is None:
        return CheckResult(name="hash chain", status=SKIP, detail="attestation did not verify")
    try:
        prev = open_attestation_envelope(
            previous.load(), keyset, now=now, clock_skew_s=CLOCK_SKEW_S, where=previous.name
        ).attestation
        verify_chain(prev, current)
    except PorError as e:
        return _fail("hash chain", e)
    return CheckResult(
        name="hash chain",
        status=PASS,
        detail=f"sequence {prev.sequence} -> {current.sequence}, previous digest "
        f"{prev.digest()[:16]}… matches; previous envelope verified",
    )


def check_leaves(current: Attestation | None, leaves: Deferred[Liabilities] | None) -> CheckResult:
    """The liabilities recomputed from the leaf export are the signed ones."""
    if leaves is None:
        return CheckResult(
            name="liabilities", status=SKIP, detail="no --leaves given: root not recomputed"
        )
    if current is None:
        return CheckResult(name="liabilities", status=SKIP, detail="attestation did not verify")
    try:
        got = leaves.load()
    except PorError as e:
        return _fail("liabilities", e)
    want = current.liabilities
    diffs = []
    if got.root != want.root:
        diffs.append(f"root: signed {want.root}, recomputed {got.root}")
    if got.total != want.total:
        diffs.append(f"total: signed {want.total}, recomputed {got.total}")
    if got.leaf_count != want.leaf_count:
        diffs.append(f"leaf_count: signed {want.leaf_count}, recomputed {got.leaf_count}")
    if diffs:
        return CheckResult(
            name="liabilities", status=FAIL, detail="leaves do not match: " + "; ".join(diffs)
        )
    return CheckResult(
        name="liabilities",
        status=PASS,
        detail=f"root {got.root[:16]}…, total {got.total}, {got.leaf_count} leaves recomputed "
        f"from {leaves.name}",
    )


def check_totals(current: Attestation | None) -> CheckResult:
    """The document adds up: supplies, liabilities, eligible reserves, ratio, status."""
    if current is None:
        return CheckResult(name="totals", status=SKIP, detail="attestation did not verify")
    problems = check_consistency(current)
    if problems:
        return CheckResult(name="totals", status=FAIL, detail="; ".join(problems))
    t = current.totals
    return CheckResult(
        name="totals",
        status=PASS,
        detail=f"{t.status}, ratio {t.ratio}, eligible {t.eligible_reserves} vs "
        f"circulating {t.circulating_supply} (= liabilities total)",
    )


# --- the log, witnesses and auditor co-signatures (issue 14) ------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class LogEvidence:
    """Where an envelope sits in the log: `/v1/log/inclusion`'s answer.

    `leaf_index` and `path` (RFC 9162 inclusion proof, bottom-up) prove the leaf in the
    tree of `checkpoint`, a signed note (with any witness cosignatures after it)."""

    leaf_index: int
    tree_size: int
    path: tuple[bytes, ...]
    checkpoint: str

    @classmethod
    def from_dict(cls, d: object, *, where: str = "inclusion") -> LogEvidence:
        if not isinstance(d, dict):
            raise FormatError("must be a JSON object", where=where)
        for k in ("leaf_index", "tree_size", "path", "checkpoint"):
            if k not in d:
                raise FormatError(f"missing field {k}", where=where)
        index, size, path, note = d["leaf_index"], d["tree_size"], d["path"], d["checkpoint"]
        for name, v in (("leaf_index", index), ("tree_size", size)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise FormatError("must be a non-negative integer", where=f"{where}.{name}")
        if not isinstance(path, list) or not all(isinstance(h, str) and len(h) == 64 for h in path):
            raise FormatError("must be a list of 64-hex-digit hashes", where=f"{where}.path")
        try:
            hashes = tuple(bytes.fromhex(h) for h in path)
        except ValueError as e:
            raise FormatError(f"not hex: {e}", where=f"{where}.path") from e
        if not isinstance(note, str):
            raise FormatError("must be a signed note", where=f"{where}.checkpoint")
        return cls(leaf_index=index, tree_size=size, path=hashes, checkpoint=note)


def exact_envelope_bytes(envelope: object, *, where: str = "envelope") -> bytes:
    """The RFC 8785 bytes the log leaf commits to, for an envelope given as a JSON object.

    The issuer's envelope is logged in its exact form (DESIGN §5): this raises a
    FormatError for an envelope re-encoded by another tool (URL-safe base64, extra
    fields), which may still verify as DSSE but is not the logged byte string.
    """
    return Envelope.from_dict(envelope, where=where, exact=True).to_json_bytes()


def check_log(
    envelope_bytes: bytes | None,
    evidence: Deferred[LogEvidence] | None,
    keyset: KeySet,
    *,
    witnesses: Sequence[VerifierKey] = (),
    required_witnesses: int = 0,
    now: datetime | None = None,
    clock_skew_s: int = CLOCK_SKEW_S,
) -> CheckResult:
    """The envelope is in the log: its leaf, by the inclusion proof, is in a checkpoint
    signed by the key set's log key for its origin, cosigned by enough known witnesses
    (none dated after `now` + `clock_skew_s` when `now` is given)."""
    if evidence is None:
        return CheckResult(name="log", status=SKIP, detail="no log inclusion proof given")
    if envelope_bytes is None:
        return CheckResult(
            name="log", status=FAIL, detail="the envelope is not in the logged exact form"
        )
    if keyset.log is None:
        return CheckResult(
            name="log", status=FAIL, detail="the key set names no log key: cannot check"
        )
    try:
        ev = evidence.load()
        opened = open_checkpoint(
            ev.checkpoint,
            cosigned_not_after=None if now is None else int(now.timestamp()) + clock_skew_s,
            log_key=keyset.log.vkey,
            origin=keyset.log.origin,
            witnesses=witnesses,
            required_witnesses=required_witnesses,
            where=f"{evidence.name}: checkpoint",
        )
        cp = opened.checkpoint
        if cp.size != ev.tree_size:
            raise MismatchError(
                "the proof's tree size is not the checkpoint's",
                expected=cp.size,
                computed=ev.tree_size,
                where=evidence.name,
            )
        leaf = envelope_leaf_hash(envelope_bytes)
        verify_log_inclusion(ev.leaf_index, cp.size, leaf, ev.path, cp.root_hash)
    except PorError as e:
        return _fail("log", e)
    cosigned = ", ".join(opened.witnesses) or "none"
    return CheckResult(
        name="log",
        status=PASS,
        detail=f"leaf {ev.leaf_index} of {cp.size} in the checkpoint of {cp.origin} (root "
        f"{cp.root_hash.hex()[:16]}…, log key verified); witness cosignatures: {cosigned}"
        + (f" ({required_witnesses} required)" if required_witnesses else ""),
    )


def check_auditors(
    envelope: Envelope,
    cosignatures: Deferred[Sequence[Signature]] | None,
    keyset: KeySet,
    *,
    issued_at: datetime | None,
) -> CheckResult:
    """Which auditor keys of the key set signed this payload: in the envelope itself or
    stored beside it (DSSE consumer rules, each key once, valid at issued_at)."""
    if issued_at is None:
        return CheckResult(name="auditors", status=SKIP, detail="attestation did not verify")
    sigs = list(envelope.signatures)
    source = "envelope"
    if cosignatures is not None:
        try:
            sigs += list(cosignatures.load())
        except PorError as e:
            return _fail("auditors", e)
        source = f"envelope and {cosignatures.name}"
    auditors = keyset.with_role("auditor")
    if not auditors:
        return CheckResult(name="auditors", status=SKIP, detail="the key set names no auditor")
    combined = Envelope(
        payload=envelope.payload, payload_type=envelope.payload_type, signatures=tuple(sigs)
    )
    try:
        signed = verify_envelope(
            combined,
            keyset,
            at=issued_at,
            payload_type=PAYLOAD_TYPE,
            roles=frozenset({"auditor"}),
        ).keyids
    except SignatureError:
        signed = ()
    names = ", ".join(f"{k[:16]}…" for k in signed) or "none"
    return CheckResult(
        name="auditors",
        status=PASS if signed else SKIP,
        detail=f"{len(signed)} of {len(auditors)} auditor key(s) co-signed ({source}): {names}",
    )


def check_budgets(current: Attestation | None) -> CheckResult:
    """Every chain's mint budget is what the declared allocation gives the document's own
    figures, and the budgets add up to no more than the eligible reserves."""
    if current is None:
        return CheckResult(name="budgets", status=SKIP, detail="attestation did not verify")
    if current.allocation is None:
        return CheckResult(
            name="budgets",
            status=SKIP,
            detail="the attestation predates per-chain budgets (no allocation declared)",
        )
    problems = budget_problems(current)
    if problems:
        return CheckResult(name="budgets", status=FAIL, detail="; ".join(problems))
    total = sum(c.budget or 0 for c in current.chains)
    each = ", ".join(f"{c.chain_id} {c.budget}" for c in current.chains)
    return CheckResult(
        name="budgets",
        status=PASS,
        detail=f"{len(current.chains)} budgets recomputed ({current.allocation.rule}, "
        f"{current.totals.status}): {each}; sum {total} <= eligible "
        f"{current.totals.eligible_reserves}",
    )


def check_ledger(current: Attestation | None) -> CheckResult:
    """Off-chain liabilities: categories and sources add up (also in `totals`), each source
    named with its hash and whether its signature was verified."""
    if current is None:
        return CheckResult(name="ledger", status=SKIP, detail="attestation did not verify")
    led = current.ledger
    if led is None:
        return CheckResult(
            name="ledger", status=SKIP, detail="no off-chain liabilities in this attestation"
        )
    problems = []
    if sum(v for _, v in led.categories) != led.total:
        problems.append("categories do not add up to the total")
    if sum(x.total for x in led.sources) != led.total:
        problems.append("sources do not add up to the total")
    if problems:
        return CheckResult(name="ledger", status=FAIL, detail="; ".join(problems))
    cats = ", ".join(f"{k} {v}" for k, v in led.categories if v)
    srcs = ", ".join(
        f"{x.name} {x.sha256[:12]}… "
        + (f"(signed {x.signed_by[:12]}…)" if x.signed_by else "(hash only)")
        for x in led.sources
    )
    return CheckResult(
        name="ledger",
        status=PASS,
        detail=f"total {led.total} ({cats or 'all zero'}) from {srcs or 'no source'}",
    )


def check_reconciliation(
    current: Attestation | None,
    matches: Deferred[bytes] | None,
    *,
    entries: Deferred[Sequence[BankEntry]] | None = None,
    flows: Deferred[Sequence[ChainFlow]] | None = None,
) -> CheckResult:
    """The match list is the signed one and what por-flows-v1 gives; with `entries` (read
    by the caller from the statements the section names) and `flows` (read from the chains
    over its block ranges), its items are exactly those."""
    name = "reconciliation"
    if current is None:
        return CheckResult(name=name, status=SKIP, detail="attestation did not verify")
    recon = current.reconciliation
    if recon is None:
        return CheckResult(
            name=name, status=SKIP, detail="no flow reconciliation in this attestation"
        )
    if matches is None:
        return CheckResult(
            name=name, status=SKIP, detail="no match list given (--matches): not rechecked"
        )
    try:
        again = check_matches(
            recon,
            matches.load(),
            flows=None if flows is None else flows.load(),
            entries=None if entries is None else entries.load(),
            where=matches.name,
        )
    except PorError as e:
        return _fail(name, e)
    checked = ["match list recomputed"]
    checked.append("statements re-read" if entries is not None else "statements not re-read")
    checked.append("chains re-read" if flows is not None else "chains not re-read")
    unmatched = len(again.unmatched())
    return CheckResult(
        name=name,
        status=PASS,
        detail=f"{len(again.flows)} mints/burns, {len(again.entries)} bank entries, "
        f"{len(again.matches)} matched, {unmatched} unmatched ({len(again.overdue)} overdue); "
        + ", ".join(checked),
    )


def verify_report(
    envelope: Deferred[Envelope],
    keyset: KeySet,
    *,
    now: datetime,
    previous: Deferred[Envelope] | None = None,
    leaves: Deferred[Liabilities] | None = None,
    log: Deferred[LogEvidence] | None = None,
    cosignatures: Deferred[Sequence[Signature]] | None = None,
    witnesses: Sequence[VerifierKey] = (),
    required_witnesses: int = 0,
    matches: Deferred[bytes] | None = None,
    entries: Deferred[Sequence[BankEntry]] | None = None,
    flows: Deferred[Sequence[ChainFlow]] | None = None,
) -> Report:
    """Run every check on one published attestation, in the order `por verify` prints.

    Signatures are judged against `keyset` only (the trust root: the caller reads it
    before calling, and an unreadable one is the caller's error, not a failed check).
    An envelope that cannot be read or parsed is a report with one failed format check.
    With `log`, the envelope's RFC 8785 bytes must be in the log under a checkpoint of the
    key set's log key with `required_witnesses` cosignatures of `witnesses` (default: the
    key set's); `cosignatures` (auditor signatures stored beside the envelope) are
    reported with those in the envelope.
    """
    try:
        env = envelope.load()
    except PorError as e:
        return Report(subject=envelope.name, checks=(_fail("format", e),))
    fmt, _ = check_format(env)
    sig, opened = check_signatures(env, keyset, now=now, where=envelope.name)
    current = opened.attestation if opened else None
    checks: tuple[CheckResult, ...] = (
        fmt,
        sig,
        check_key_windows(env, keyset, now=now),
        check_chain(current, previous, keyset, now=now),
        check_leaves(current, leaves),
        check_totals(current),
        check_budgets(current),
    )
    if current is not None and current.ledger is not None:
        checks += (check_ledger(current),)
    if current is not None and current.reconciliation is not None:
        checks += (check_reconciliation(current, matches, entries=entries, flows=flows),)
    if log is not None or required_witnesses:
        checks += (
            check_log(
                env.to_json_bytes(),
                log,
                keyset,
                witnesses=tuple(witnesses) or keyset.witnesses,
                required_witnesses=required_witnesses,
                now=now,
            ),
        )
    if cosignatures is not None:
        checks += (
            check_auditors(
                env,
                cosignatures,
                keyset,
                issued_at=None if current is None else current.issued_at,
            ),
        )
    return Report(subject=envelope.name, checks=checks)


# --- the periodic reserve report (issue 17, docs/reports.md) -------------------------------


def _differences(want: object, got: object, path: str, out: list[str], limit: int = 8) -> None:
    """Paths at which two JSON values differ (at most `limit`), with both values."""
    if len(out) >= limit:
        return
    if isinstance(want, dict) and isinstance(got, dict):
        for k in sorted(set(want) | set(got)):
            _differences(want.get(k), got.get(k), f"{path}.{k}", out, limit)
    elif isinstance(want, list) and isinstance(got, list) and len(want) == len(got):
        for i, (a, b) in enumerate(zip(want, got, strict=True)):
            _differences(a, b, f"{path}[{i}]", out, limit)
    elif want != got:
        out.append(f"{path}: the attestation says {want!r}, the report {got!r}")


def open_report_envelope(
    envelope: Envelope,
    keyset: KeySet,
    *,
    now: datetime,
    clock_skew_s: int = CLOCK_SKEW_S,
    where: str = "report",
) -> ReserveReport:
    """The reserve report, once issuer signatures verify at its generated_at; else raise."""
    if envelope.payload_type != REPORT_PAYLOAD_TYPE:
        raise FormatError(
            f"payloadType is {envelope.payload_type!r}, expected {REPORT_PAYLOAD_TYPE!r}",
            where=where,
        )
    doc = loads_strict(envelope.payload, where=f"{where}.payload")
    if not isinstance(doc, dict) or "generated_at" not in doc:
        raise FormatError("payload is not a report with generated_at", where=f"{where}.payload")
    at = parse_time(doc["generated_at"], where=f"{where}.payload.generated_at")
    latest = now + timedelta(seconds=clock_skew_s)
    if at > latest:
        raise FutureAttestationError(
            "report is generated in the future",
            expected=f"generated_at <= {format_time(latest)} (now + {clock_skew_s} s)",
            computed=format_time(at),
            where=f"{where}.payload.generated_at",
        )
    verified = verify_envelope(
        envelope, keyset, at=at, payload_type=REPORT_PAYLOAD_TYPE, where=where
    )
    return decode_report(verified.payload, where=f"{where}.payload")


def is_report_envelope(envelope: Envelope) -> bool:
    """Whether an envelope claims to carry a reserve report (not yet verified)."""
    return envelope.payload_type == REPORT_PAYLOAD_TYPE


def check_report_format(env: Envelope) -> CheckResult:
    """The envelope carries a canonical por-reserve-report-v1 payload (not yet trusted)."""
    if env.payload_type != REPORT_PAYLOAD_TYPE:
        detail = f"payloadType is {env.payload_type!r}, expected {REPORT_PAYLOAD_TYPE!r}"
        return CheckResult(name="format", status=FAIL, detail=detail)
    try:
        r = decode_report(env.payload, where="payload")
    except PorError as e:
        return _fail("format", e)
    p = r.period
    state = "final" if r.final else "PROVISIONAL: the period had not ended"
    return CheckResult(
        name="format",
        status=PASS,
        detail=f"{r.format}, {p.kind} {p.label} ({p.utc_offset_text}), {len(r.days)} day(s), "
        f"{state}",
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class _Cited:
    attestation: Attestation
    envelope: Envelope


def check_report_attestations(
    report: ReserveReport,
    keyset: KeySet,
    attestations: Callable[[int], Envelope],
    *,
    now: datetime,
    source: str,
) -> tuple[CheckResult, dict[int, _Cited]]:
    """Each cited attestation verifies, is the one cited, and adds up by itself."""
    found: dict[int, _Cited] = {}
    problems: list[str] = []
    cited = report.cited()
    for c in cited:
        try:
            env = attestations(c.sequence)
            att = open_attestation_envelope(
                env, keyset, now=now, where=f"attestation {c.sequence}"
            ).attestation
        except PorError as e:
            problems.append(f"attestation {c.sequence}: {e}")
            continue
        for what, signed, claimed in (
            ("sequence", att.sequence, c.sequence),
            ("digest", att.digest(), c.digest),
            ("issued_at", format_time(att.issued_at), format_time(c.issued_at)),
            ("as_of", format_time(att.as_of), format_time(c.as_of)),
        ):
            if signed != claimed:
                problems.append(
                    f"attestation {c.sequence}: {what} is {signed}, the report cites {claimed}"
                )
        own = check_consistency(att)
        if own:
            problems.append(f"attestation {c.sequence} does not add up: {'; '.join(own)}")
        found[c.sequence] = _Cited(attestation=att, envelope=env)
    if problems:
        return CheckResult(name="attestations", status=FAIL, detail="; ".join(problems)), found
    if not cited:
        detail = f"the report cites no attestation: none was recorded in {report.period.label}"
    else:
        seqs = ", ".join(str(c.sequence) for c in cited)
        detail = f"{len(cited)} cited attestation(s) verified from {source}: {seqs}"
    return CheckResult(name="attestations", status=PASS, detail=detail), found


def check_report_figures(report: ReserveReport, found: dict[int, _Cited]) -> CheckResult:
    """The report is what `build_report` makes of its cited attestations, field by field."""
    end_of_day = {}
    try:
        for day in report.days:
            if day.figures is None:
                continue
            c = day.figures.attestation
            if c.sequence not in found:
                raise MismatchError(
                    f"attestation {c.sequence} (cited for {day.date.isoformat()}) could not be "
                    "read and verified: its figures cannot be compared"
                )
            att = found[c.sequence].attestation
            if local_date(att.as_of, report.period.utc_offset) != day.date:
                raise MismatchError(
                    f"attestation {att.sequence} is as of {format_time(att.as_of)}, not in "
                    f"{day.date.isoformat()} ({report.period.utc_offset_text})"
                )
            end_of_day[day.date] = DayAttestation(
                attestation=att, digest=att.digest(), log_index=c.log_index
            )
        rebuilt = build_report(
            report.period,
            generated_at=report.generated_at,
            token=report.token,
            end_of_day=end_of_day,
        )
    except PorError as e:
        return _fail("figures", e)
    diffs: list[str] = []
    _differences(rebuilt.to_dict(), report.to_dict(), "report", diffs)
    if diffs:
        return CheckResult(
            name="figures",
            status=FAIL,
            detail="the report's figures are not its attestations': " + "; ".join(diffs),
        )
    s = report.summary
    return CheckResult(
        name="figures",
        status=PASS,
        detail=f"every figure of {s.days} day(s) recomputed from the cited attestations "
        f"({s.days_attested} attested, {s.days_fully_backed} fully backed)",
    )


def _same(value: T) -> T:
    return value


def check_report_log(
    report: ReserveReport,
    found: dict[int, _Cited],
    keyset: KeySet,
    log: Callable[[int], LogEvidence] | None,
) -> CheckResult:
    """Each cited attestation is in the signed log at the cited leaf index."""
    cited = report.cited()
    if log is None:
        return CheckResult(name="log", status=SKIP, detail="no log evidence: indexes not checked")
    if not cited:
        return CheckResult(name="log", status=SKIP, detail="no attestation cited")
    bad: list[str] = []
    for c in cited:
        if c.sequence not in found:
            bad.append(f"attestation {c.sequence}: not read")
            continue
        try:
            evidence = log(c.sequence)
        except PorError as e:
            bad.append(f"attestation {c.sequence}: {e}")
            continue
        result = check_log(
            found[c.sequence].envelope.to_json_bytes(),
            Deferred(
                name=f"log inclusion of {c.sequence}", load=functools.partial(_same, evidence)
            ),
            keyset,
        )
        if result.status != PASS:
            bad.append(f"attestation {c.sequence}: {result.detail}")
        elif evidence.leaf_index != c.log_index:
            bad.append(
                f"attestation {c.sequence} is log leaf {evidence.leaf_index}, the report "
                f"cites {c.log_index}"
            )
    if bad:
        return CheckResult(name="log", status=FAIL, detail="; ".join(bad))
    return CheckResult(
        name="log", status=PASS, detail=f"{len(cited)} cited log index(es) proved in the log"
    )


def verify_reserve_report(
    envelope: Deferred[Envelope],
    keyset: KeySet,
    *,
    now: datetime,
    attestations: Callable[[int], Envelope],
    attestations_name: str,
    log: Callable[[int], LogEvidence] | None = None,
) -> Report:
    """Every check on a signed reserve report, in the order `por verify` prints them.

    `attestations(sequence)` reads the envelope of a cited attestation (raising a PorError
    when it cannot): each is verified with `keyset`, must be the cited one (digest,
    sequence, times), dated inside its day, and add up by itself; then the report is
    rebuilt from them (`build_report`) and must equal the signed one field by field. With
    `log(sequence)` (the log's inclusion answer), every cited log index is checked too.
    """
    try:
        env = envelope.load()
    except PorError as e:
        return Report(subject=envelope.name, checks=(_fail("format", e),))
    checks = [check_report_format(env)]
    try:
        report = open_report_envelope(env, keyset, now=now, where=envelope.name)
    except PorError as e:
        checks.append(_fail("signatures", e))
        checks += [
            CheckResult(name=n, status=SKIP, detail="report did not verify")
            for n in ("attestations", "figures", "log")
        ]
        return Report(subject=envelope.name, checks=tuple(checks))
    at = format_time(report.generated_at)
    checks.append(
        CheckResult(
            name="signatures",
            status=PASS,
            detail=f"issuer signature verified at generated_at {at}",
        )
    )
    result, found = check_report_attestations(
        report, keyset, attestations, now=now, source=attestations_name
    )
    checks.append(result)
    checks.append(check_report_figures(report, found))
    checks.append(check_report_log(report, found, keyset, log))
    return Report(subject=envelope.name, checks=tuple(checks))


__all__ = [
    "CLOCK_SKEW_S",
    "FAIL",
    "PASS",
    "SKIP",
    "CheckResult",
    "Deferred",
    "FutureAttestationError",
    "LogEvidence",
    "Report",
    "VerifiedAttestation",
    "check_auditors",
    "check_budgets",
    "check_chain",
    "check_format",
    "check_key_windows",
    "check_leaves",
    "check_ledger",
    "check_log",
    "check_reconciliation",
    "check_report_attestations",
    "check_report_figures",
    "check_report_format",
    "check_report_log",
    "check_signatures",
    "check_totals",
    "claimed_issued_at",
    "compare_proof_to_attestation",
    "exact_envelope_bytes",
    "is_report_envelope",
    "open_attestation_envelope",
    "open_report_envelope",
    "verify_attestation_envelope",
    "verify_report",
    "verify_reserve_report",
]
