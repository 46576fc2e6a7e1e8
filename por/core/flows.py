"""Flow reconciliation (`por-flows-v1`): every mint and burn matched with a bank movement.

A stablecoin's supply only changes by minting (against cash received: a credit on a
reserve account) and burning (against cash paid out: a debit). This module pairs the
chains' mints and burns with the custodians' statement entries, so a mint without money
behind it, a burn whose redemption was never paid, a redemption paid twice or a
subscription minted twice is named the day it happens — not just seen, later, as a
lower ratio.

Inputs (both sides already in token base units; the adapters convert):

- `ChainFlow`: one mint or burn of one chain (EVM: a Transfer from/to the zero address,
  with the reference of the token's own Mint/Burn event when it has one; Solana: a
  mintTo/burn instruction, with the memo of its transaction);
- `BankEntry`: one booked entry of an end-of-day statement (camt.053 `Ntry`, MT940
  `:61:` with its `:86:`), with the reference tokens found in it.

The rule (docs/ledger.md §2 is the normative text):

1. Only items inside [from, to] count: a flow by its block time, an entry when its
   booking interval (a whole local day for a date, one instant for a date-time) meets it.
   Entries whose narrative has one of the configured `ignore` words (interest, fees) are
   listed as ignored and never matched.
2. By reference: a flow with reference R pairs with the earliest unmatched entry of the
   other side (mint <-> credit, burn <-> debit) that carries R and has the same amount.
   A reference some entry carries is "claimed": the flow never falls back to step 3, and
   entries carrying a claimed reference never pair in step 3 either — so the second mint
   of one subscription, or the second payout of one redemption, stays unmatched.
3. By amount and time: the remaining flows (in time order) pair with the remaining entry
   of equal amount whose booking interval is within `window_s` of the flow's time,
   nearest first (ties: earlier booking, then id).
4. An unmatched item older than `max_age_s` at `to` is overdue. The reconciliation
   degrades the attestation when any item is overdue, or when the unmatched items add up
   to more than `tolerance` (when one is set).

The detailed result is a canonical JSON document (`por-matches-v1`); its SHA-256 goes
into the attestation, and anyone holding the statements and the chain data recomputes
it (`check_matches`). Pure: no I/O, no clock; `to` is the attestation's as_of.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from por.core.amounts import format_base_units, parse_base_units
from por.core.attestation import (
    FLOWS_RULE,
    FlowRange,
    FlowTally,
    ReconciliationSection,
)
from por.core.canonical import canonical_bytes, loads_strict
from por.core.times import format_time, parse_time
from por.errors import FormatError, MismatchError

MATCHES_FORMAT = "por-matches-v1"
CHAIN_KINDS = ("mint", "burn")
BANK_KINDS = ("credit", "debit")
PAIR = {"mint": "credit", "burn": "debit", "credit": "mint", "debit": "burn"}
_REF_RE = re.compile(r"[A-Z0-9][A-Z0-9\-_/.]{2,63}")
_DATE_LIKE_RE = re.compile(r"[0-9]{4}([-/.][0-9]{2}([-/.][0-9]{2})?)?|[0-9]{1,3}")
_MAX_REFS = 16


def normalize_reference(text: str) -> str | None:
    """A reference as compared: upper case, trimmed of separators; None when empty."""
    ref = text.strip().strip("\x00").upper().strip("-_/. ")
    return ref or None


def reference_tokens(*texts: str | None) -> tuple[str, ...]:
    """The reference-like tokens of an entry's texts (bank references, end-to-end ids,
    remittance lines): runs of letters, digits and - _ / . that contain a digit.

    Words without a digit (names, "PAYOUT") are left out: they identify no payment, and
    the match list is published.
    """
    out: list[str] = []
    for text in texts:
        if not text:
            continue
        for found in _REF_RE.findall(text.upper()):
            tok = found.strip("-_/.")
            if (
                len(tok) >= 3
                and any(c.isdigit() for c in tok)
                and not _DATE_LIKE_RE.fullmatch(tok)  # a year or a date names no payment
                and tok not in out
            ):
                out.append(tok)
    return tuple(out[:_MAX_REFS])


def _kind(value: object, kinds: Sequence[str], where: str) -> str:
    if value not in kinds:
        raise FormatError(f"must be one of {', '.join(kinds)}, got {value!r}", where=where)
    assert isinstance(value, str)
    return value


def _text(value: object, where: str, *, max_len: int = 256) -> str:
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise FormatError(f"must be a non-empty string, got {value!r}", where=where)
    return value


def _count(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise FormatError(f"must be an integer >= 0, got {value!r}", where=where)
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainFlow:
    """One mint or burn on one chain. `id` is unique: `<chain>:<tx>:<log or instruction>`."""

    id: str
    chain_id: str
    kind: str  # mint | burn
    block: int
    time: datetime
    amount: int
    reference: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "chain_id": self.chain_id,
            "kind": self.kind,
            "block": self.block,
            "time": format_time(self.time),
            "amount": format_base_units(self.amount),
            "reference": self.reference,
        }

    @classmethod
    def from_dict(cls, d: object, *, where: str) -> ChainFlow:
        if not isinstance(d, dict) or set(d) != {
            "id",
            "chain_id",
            "kind",
            "block",
            "time",
            "amount",
            "reference",
        }:
            raise FormatError("must be a chain flow object", where=where)
        ref = d["reference"]
        return cls(
            id=_text(d["id"], f"{where}.id"),
            chain_id=_text(d["chain_id"], f"{where}.chain_id"),
            kind=_kind(d["kind"], CHAIN_KINDS, f"{where}.kind"),
            block=_count(d["block"], f"{where}.block"),
            time=parse_time(d["time"], where=f"{where}.time"),
            amount=parse_base_units(d["amount"], where=f"{where}.amount"),
            reference=None if ref is None else _text(ref, f"{where}.reference", max_len=64),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class BankEntry:
    """One booked statement entry, in token base units.

    `booked_from`/`booked_to` bound when it was booked (a date is a whole local day).
    `id` is the same whichever statement carries the entry (see `entry_id`), so an entry
    repeated by two statements counts once. `ignored` names the `ignore` word that left it
    out of matching, if any.
    """

    id: str
    custodian: str
    account: str  # masked, as the statement's format writes it
    account_ref: str  # `account_ref()`: one account whatever the format
    kind: str  # credit | debit
    booked_from: datetime
    booked_to: datetime
    amount: int
    references: tuple[str, ...]
    statement: str  # SHA-256 of the raw statement it was read from
    ignored: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "custodian": self.custodian,
            "account": self.account,
            "account_ref": self.account_ref,
            "kind": self.kind,
            "booked_from": format_time(self.booked_from),
            "booked_to": format_time(self.booked_to),
            "amount": format_base_units(self.amount),
            "references": list(self.references),
            "statement": self.statement,
            "ignored": self.ignored,
        }

    @classmethod
    def from_dict(cls, d: object, *, where: str) -> BankEntry:
        keys = {
            "id",
            "custodian",
            "account",
            "account_ref",
            "kind",
            "booked_from",
            "booked_to",
            "amount",
            "references",
            "statement",
            "ignored",
        }
        if not isinstance(d, dict) or set(d) != keys:
            raise FormatError("must be a bank entry object", where=where)
        refs = d["references"]
        if not isinstance(refs, list):
            raise FormatError("must be a list", where=f"{where}.references")
        ignored = d["ignored"]
        return cls(
            id=_text(d["id"], f"{where}.id"),
            custodian=_text(d["custodian"], f"{where}.custodian"),
            account=_text(d["account"], f"{where}.account"),
            account_ref=_text(d["account_ref"], f"{where}.account_ref", max_len=16),
            kind=_kind(d["kind"], BANK_KINDS, f"{where}.kind"),
            booked_from=parse_time(d["booked_from"], where=f"{where}.booked_from"),
            booked_to=parse_time(d["booked_to"], where=f"{where}.booked_to"),
            amount=parse_base_units(d["amount"], where=f"{where}.amount"),
            references=tuple(
                _text(r, f"{where}.references[{i}]", max_len=64) for i, r in enumerate(refs)
            ),
            statement=_text(d["statement"], f"{where}.statement", max_len=64),
            ignored=None if ignored is None else _text(ignored, f"{where}.ignored"),
        )


def account_ref(account_key: str) -> str:
    """An account's reference in the match list: the same for every statement format
    (from `por.custodians.model.account_key`), 16 hex."""
    return hashlib.sha256(b"por-account-v1\n" + account_key.encode()).hexdigest()[:16]


def entry_id(
    *, account_key: str, bank_reference: str | None, kind: str, amount: int, fallback: str
) -> str:
    """The id of a bank entry: by the bank's own reference when it gives one (so the entry
    repeated in another statement is the same item), else by where it was read."""
    basis = (
        f"{account_key}\n{bank_reference}\n{kind}\n{amount}"
        if bank_reference
        else f"at\n{fallback}\n{kind}\n{amount}"
    )
    return hashlib.sha256(b"por-entry-v1\n" + basis.encode()).hexdigest()[:24]


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainSource:
    """Where one chain's flows were read: what an auditor needs to read them again."""

    chain_id: str
    token: str  # CAIP-10 of the token contract / mint
    from_block: int
    to_block: int
    block_hash: str  # of `to_block`
    reference_events: bool = False  # EVM: the token's own Mint/Burn(..., bytes32) were read

    def to_dict(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "token": self.token,
            "from_block": self.from_block,
            "to_block": self.to_block,
            "block_hash": self.block_hash,
            "reference_events": self.reference_events,
        }

    @classmethod
    def from_dict(cls, d: object, *, where: str) -> ChainSource:
        keys = {"chain_id", "token", "from_block", "to_block", "block_hash", "reference_events"}
        if not isinstance(d, dict) or set(d) != keys or not isinstance(d["reference_events"], bool):
            raise FormatError("must be a chain source object", where=where)
        return cls(
            chain_id=_text(d["chain_id"], f"{where}.chain_id"),
            token=_text(d["token"], f"{where}.token"),
            from_block=_count(d["from_block"], f"{where}.from_block"),
            to_block=_count(d["to_block"], f"{where}.to_block"),
            block_hash=_text(d["block_hash"], f"{where}.block_hash", max_len=128),
            reference_events=d["reference_events"],
        )

    def range(self) -> FlowRange:
        return FlowRange(chain_id=self.chain_id, from_block=self.from_block, to_block=self.to_block)


@dataclass(frozen=True, slots=True, kw_only=True)
class FlowParams:
    """The reconciliation's parameters, as the attestation declares them."""

    from_time: datetime
    to_time: datetime
    window_s: int = 86_400
    max_age_s: int = 172_800
    tolerance: int | None = None
    # Which entries are flows (the match list declares it, so a verifier reading the same
    # statements reads the same entries): accounts by `account_ref` (None: every account),
    # and the words that mark an entry as no flow (interest, fees).
    accounts: tuple[str, ...] | None = None
    ignore: tuple[str, ...] = ()
    chains: tuple[ChainSource, ...] = ()  # the chains whose flows were read

    def to_dict(self) -> dict[str, Any]:
        return {
            "chains": [c.to_dict() for c in self.chains],
            "from": format_time(self.from_time),
            "to": format_time(self.to_time),
            "window_s": self.window_s,
            "max_age_s": self.max_age_s,
            "tolerance": None if self.tolerance is None else format_base_units(self.tolerance),
            "accounts": None if self.accounts is None else sorted(self.accounts),
            "ignore": list(self.ignore),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Match:
    chain: str  # ChainFlow.id
    bank: str  # BankEntry.id
    by: str  # "reference" | "amount"

    def to_dict(self) -> dict[str, Any]:
        return {"chain": self.chain, "bank": self.bank, "by": self.by}


@dataclass(frozen=True, slots=True, kw_only=True)
class Reconciliation:
    """The full result: what the match list says, and the attestation's section."""

    params: FlowParams
    flows: tuple[ChainFlow, ...]  # in range, sorted by id
    entries: tuple[BankEntry, ...]  # in range, de-duplicated, sorted by id
    matches: tuple[Match, ...]  # sorted by chain id
    overdue: tuple[str, ...]  # ids of overdue unmatched items, sorted
    reasons: tuple[str, ...]  # DEGRADED reasons (empty when fine)

    @property
    def matched_ids(self) -> set[str]:
        return {m.chain for m in self.matches} | {m.bank for m in self.matches}

    def unmatched(self) -> list[ChainFlow | BankEntry]:
        done = self.matched_ids
        items: list[ChainFlow | BankEntry] = [f for f in self.flows if f.id not in done]
        items += [e for e in self.entries if e.id not in done and e.ignored is None]
        return items

    def document(self) -> dict[str, Any]:
        """The match list (`por-matches-v1`) as a JSON object."""
        done = self.matched_ids
        overdue = set(self.overdue)
        unmatched = sorted(
            [f.id for f in self.flows if f.id not in done]
            + [e.id for e in self.entries if e.id not in done and e.ignored is None]
        )
        return {
            "format": MATCHES_FORMAT,
            "rule": FLOWS_RULE,
            **self.params.to_dict(),
            "chain_flows": [f.to_dict() for f in self.flows],
            "bank_entries": [e.to_dict() for e in self.entries],
            "matches": [m.to_dict() for m in self.matches],
            "unmatched": [{"id": i, "overdue": i in overdue} for i in unmatched],
        }

    def document_bytes(self) -> bytes:
        return canonical_bytes(self.document())

    def sha256(self) -> str:
        return hashlib.sha256(self.document_bytes()).hexdigest()

    def tallies(self) -> dict[str, FlowTally]:
        done = self.matched_ids
        out = {}
        for kind, plural in (("mint", "mints"), ("burn", "burns")):
            items = [f for f in self.flows if f.kind == kind]
            out[plural] = _tally([(f.id in done, f.amount) for f in items])
        for kind, plural in (("credit", "credits"), ("debit", "debits")):
            ents = [e for e in self.entries if e.kind == kind and e.ignored is None]
            out[plural] = _tally([(e.id in done, e.amount) for e in ents])
        return out

    def section(self, *, statements: Sequence[str]) -> ReconciliationSection:
        """The attestation's `reconciliation` part for this result."""
        t = self.tallies()
        by_id: dict[str, int] = {f.id: f.amount for f in self.flows}
        by_id.update({e.id: e.amount for e in self.entries})
        return ReconciliationSection(
            from_time=self.params.from_time,
            to_time=self.params.to_time,
            window_s=self.params.window_s,
            max_age_s=self.params.max_age_s,
            tolerance=self.params.tolerance,
            chains=tuple(c.range() for c in self.params.chains),
            statements=tuple(sorted(set(statements))),
            mints=t["mints"],
            burns=t["burns"],
            credits=t["credits"],
            debits=t["debits"],
            ignored=sum(e.ignored is not None for e in self.entries),
            overdue=len(self.overdue),
            overdue_sum=sum(by_id[i] for i in self.overdue),
            matches_sha256=self.sha256(),
        )


def _tally(items: Iterable[tuple[bool, int]]) -> FlowTally:
    matched = [a for ok, a in items if ok]
    unmatched = [a for ok, a in items if not ok]
    return FlowTally(
        matched=len(matched),
        matched_sum=sum(matched),
        unmatched=len(unmatched),
        unmatched_sum=sum(unmatched),
    )


def _distance_s(t: datetime, start: datetime, end: datetime) -> float:
    if t < start:
        return (start - t).total_seconds()
    if t > end:
        return (t - end).total_seconds()
    return 0.0


def in_range(params: FlowParams, f: ChainFlow | BankEntry) -> bool:
    """Whether a flow (by its time) or an entry (by its booking interval) counts."""
    if isinstance(f, ChainFlow):
        return params.from_time <= f.time <= params.to_time
    return f.booked_to >= params.from_time and f.booked_from <= params.to_time


def reconcile(  # noqa: PLR0912, PLR0915 - the rule's four steps, in order
    flows: Iterable[ChainFlow], entries: Iterable[BankEntry], params: FlowParams
) -> Reconciliation:
    """Match (module docstring, steps 1-4); deterministic for any input order."""
    if params.from_time > params.to_time:
        raise FormatError("reconciliation starts after its end", where="reconciliation.from")
    fl = sorted((f for f in flows if in_range(params, f)), key=lambda f: f.id)
    if len({f.id for f in fl}) != len(fl):
        raise MismatchError("a chain flow id occurs twice", where="reconciliation")
    scope = params.accounts
    unique: dict[str, BankEntry] = {}
    wanted = (
        e for e in entries if in_range(params, e) and (scope is None or e.account_ref in scope)
    )
    for e in sorted(wanted, key=lambda e: (e.id, e.statement)):
        unique.setdefault(e.id, e)  # the same entry in two statements: one item
    en = sorted(unique.values(), key=lambda e: e.id)

    by_time = sorted(fl, key=lambda f: (f.time, f.id))
    open_entries = [e for e in sorted(en, key=lambda e: (e.booked_from, e.id)) if e.ignored is None]
    taken: set[str] = set()
    matches: list[Match] = []
    carried = {r for e in open_entries for r in e.references}
    flow_refs = {f.reference for f in fl if f.reference}

    # 2. by reference
    for f in by_time:
        if f.reference is None:
            continue
        want = PAIR[f.kind]
        for e in open_entries:
            if (
                e.id not in taken
                and e.kind == want
                and f.reference in e.references
                and e.amount == f.amount
            ):
                taken.add(e.id)
                matches.append(Match(chain=f.id, bank=e.id, by="reference"))
                break

    # 3. by amount and time, among what no reference claims
    matched_flows = {m.chain for m in matches}
    window = params.window_s
    for f in by_time:
        if f.id in matched_flows or (f.reference is not None and f.reference in carried):
            continue
        want = PAIR[f.kind]
        best: tuple[float, datetime, str] | None = None
        best_entry: BankEntry | None = None
        for e in open_entries:
            if e.id in taken or e.kind != want or e.amount != f.amount:
                continue
            if any(r in flow_refs for r in e.references):
                continue  # claimed by some flow's reference: pairs by reference only
            d = _distance_s(f.time, e.booked_from, e.booked_to)
            if d > window:
                continue
            key = (d, e.booked_from, e.id)
            if best is None or key < best:
                best, best_entry = key, e
        if best_entry is not None:
            taken.add(best_entry.id)
            matched_flows.add(f.id)
            matches.append(Match(chain=f.id, bank=best_entry.id, by="amount"))

    matches.sort(key=lambda m: m.chain)
    result = Reconciliation(
        params=params,
        flows=tuple(fl),
        entries=tuple(en),
        matches=tuple(matches),
        overdue=(),
        reasons=(),
    )
    # 4. overdue and tolerance
    limit = params.to_time - timedelta(seconds=params.max_age_s)
    overdue_items = [
        u
        for u in result.unmatched()
        if (u.time if isinstance(u, ChainFlow) else u.booked_to) < limit
    ]
    reasons: list[str] = []
    if overdue_items:
        total = sum(u.amount for u in overdue_items)
        shown = ", ".join(_describe(u) for u in overdue_items[:3])
        more = f" and {len(overdue_items) - 3} more" if len(overdue_items) > 3 else ""
        reasons.append(
            f"reconciliation: {len(overdue_items)} unmatched flow(s) older than "
            f"{params.max_age_s} s adding up to {total}: {shown}{more}"
        )
    unmatched_sum = sum(u.amount for u in result.unmatched())
    if params.tolerance is not None and unmatched_sum > params.tolerance:
        reasons.append(
            f"reconciliation: unmatched flows add up to {unmatched_sum}, above the tolerance "
            f"{params.tolerance}"
        )
    return Reconciliation(
        params=params,
        flows=result.flows,
        entries=result.entries,
        matches=result.matches,
        overdue=tuple(sorted(u.id for u in overdue_items)),
        reasons=tuple(reasons),
    )


def _describe(u: ChainFlow | BankEntry) -> str:
    if isinstance(u, ChainFlow):
        ref = f" ref {u.reference}" if u.reference else ""
        return f"{u.kind} {u.amount} {u.id} at {format_time(u.time)}{ref}"
    return (
        f"{u.kind} {u.amount} on {u.custodian} {u.account} booked "
        f"{format_time(u.booked_from)} (entry {u.id})"
    )


# --- checking a published match list -------------------------------------------------------


def parse_matches(data: bytes, *, where: str = "matches") -> dict[str, Any]:
    """A match list's JSON object; it must be its own canonical form (one digest)."""
    doc = loads_strict(data, where=where)
    if not isinstance(doc, dict) or doc.get("format") != MATCHES_FORMAT:
        raise FormatError(f'must be an object with "format": "{MATCHES_FORMAT}"', where=where)
    if canonical_bytes(doc) != data:
        raise FormatError("match list is not RFC 8785 canonical JSON", where=where)
    return doc


def recompute(doc: dict[str, Any], *, where: str = "matches") -> Reconciliation:
    """Run the rule again on the items the match list itself names."""
    for k in ("chain_flows", "bank_entries"):
        if not isinstance(doc.get(k), list):
            raise FormatError("must be a list", where=f"{where}.{k}")
    tol = doc.get("tolerance")
    accounts, ignore = doc.get("accounts"), doc.get("ignore")
    if accounts is not None and not (
        isinstance(accounts, list) and all(isinstance(a, str) for a in accounts)
    ):
        raise FormatError("must be null or a list of account refs", where=f"{where}.accounts")
    if not isinstance(ignore, list) or not all(isinstance(w, str) for w in ignore):
        raise FormatError("must be a list of words", where=f"{where}.ignore")
    chains = doc.get("chains")
    if not isinstance(chains, list):
        raise FormatError("must be a list", where=f"{where}.chains")
    try:
        params = FlowParams(
            from_time=parse_time(doc.get("from"), where=f"{where}.from"),
            to_time=parse_time(doc.get("to"), where=f"{where}.to"),
            window_s=_count(doc.get("window_s"), f"{where}.window_s"),
            max_age_s=_count(doc.get("max_age_s"), f"{where}.max_age_s"),
            tolerance=None if tol is None else parse_base_units(tol, where=f"{where}.tolerance"),
            accounts=None if accounts is None else tuple(accounts),
            ignore=tuple(ignore),
            chains=tuple(
                ChainSource.from_dict(c, where=f"{where}.chains[{i}]") for i, c in enumerate(chains)
            ),
        )
    except TypeError as e:
        raise FormatError(f"bad parameters: {e}", where=where) from e
    flows = [
        ChainFlow.from_dict(f, where=f"{where}.chain_flows[{i}]")
        for i, f in enumerate(doc["chain_flows"])
    ]
    entries = [
        BankEntry.from_dict(e, where=f"{where}.bank_entries[{i}]")
        for i, e in enumerate(doc["bank_entries"])
    ]
    return reconcile(flows, entries, params)


def check_matches(
    section: ReconciliationSection,
    data: bytes,
    *,
    flows: Sequence[ChainFlow] | None = None,
    entries: Sequence[BankEntry] | None = None,
    where: str = "matches",
) -> Reconciliation:
    """Raise MismatchError unless the match list is the signed one and is what the rule
    gives — and, when given, unless its chain flows are exactly `flows` (read from the
    chains over the section's block ranges) and its bank entries exactly `entries` (read
    from the statements the section names). Returns the recomputed result."""
    got_sha = hashlib.sha256(data).hexdigest()
    if got_sha != section.matches_sha256:
        raise MismatchError(
            "the match list is not the one the attestation signs",
            expected=section.matches_sha256,
            computed=got_sha,
            where=where,
        )
    doc = parse_matches(data, where=where)
    again = recompute(doc, where=where)
    if again.document_bytes() != data:
        raise MismatchError(
            "the match list is not what por-flows-v1 gives for its own items "
            "(matches, unmatched or overdue differ)",
            where=where,
        )
    want_section = again.section(statements=section.statements)
    if want_section.to_dict() != section.to_dict():
        raise MismatchError(
            "the attestation's reconciliation figures are not the match list's",
            expected=want_section.to_dict(),
            computed=section.to_dict(),
            where="reconciliation",
        )
    if flows is not None:
        _same_items(
            "chain flows",
            {f.id: f.to_dict() for f in again.flows},
            {f.id: f.to_dict() for f in flows if in_range(again.params, f)},
            where,
        )
    if entries is not None:
        mine = {e.id: _comparable(e) for e in again.entries}
        theirs: dict[str, dict[str, Any]] = {}
        scope = again.params.accounts
        for e in sorted(entries, key=lambda e: (e.id, e.statement)):  # as `reconcile` does
            if in_range(again.params, e) and (scope is None or e.account_ref in scope):
                theirs.setdefault(e.id, _comparable(e))
        _same_items("bank entries", mine, theirs, where)
    return again


def _comparable(e: BankEntry) -> dict[str, Any]:
    """An entry as compared with a statement: without the custodian's name and the masked
    account spelling (the configuration's and the format's, not the bank's figures)."""
    d = e.to_dict()
    for k in ("custodian", "account", "statement"):
        d.pop(k)
    return d


def _same_items(
    what: str, listed: dict[str, dict[str, Any]], read: dict[str, dict[str, Any]], where: str
) -> None:
    missing = sorted(set(read) - set(listed))
    extra = sorted(set(listed) - set(read))
    changed = sorted(i for i in set(read) & set(listed) if read[i] != listed[i])
    if missing or extra or changed:
        parts = []
        if missing:
            parts.append(f"{len(missing)} read but not listed ({', '.join(missing[:3])})")
        if extra:
            parts.append(f"{len(extra)} listed but not read ({', '.join(extra[:3])})")
        if changed:
            parts.append(f"{len(changed)} differ ({', '.join(changed[:3])})")
        raise MismatchError(f"{what}: " + "; ".join(parts), where=where)


__all__ = [
    "BANK_KINDS",
    "CHAIN_KINDS",
    "MATCHES_FORMAT",
    "BankEntry",
    "ChainFlow",
    "ChainSource",
    "FlowParams",
    "Match",
    "Reconciliation",
    "account_ref",
    "check_matches",
    "entry_id",
    "in_range",
    "normalize_reference",
    "parse_matches",
    "recompute",
    "reconcile",
    "reference_tokens",
]
