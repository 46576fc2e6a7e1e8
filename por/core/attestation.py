"""The attestation document (`por-attestation-v1`, DESIGN §4): model, wire form, digest, chain.

The document is plain data in frozen dataclasses. `to_dict()` gives the JSON form whose
RFC 8785 bytes are signed; `from_dict()` parses it back strictly (unknown or missing
fields, non-canonical amounts, naive or non-UTC times are errors that say where). The
digest is SHA-256 of the canonical bytes; each attestation names the sequence and digest
of the one before it, so the history is a hash chain.

All money is in integer base units of the TOKEN (token.decimals places of the reference
currency), on the wire as decimal strings. No I/O, clock or randomness here.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

from por.core.amounts import check_amount, format_base_units, parse_base_units, ratio_string
from por.core.canonical import canonical_bytes, loads_strict
from por.core.times import format_time, parse_time
from por.core.wire import hex32 as _hex32
from por.core.wire import integer as _int
from por.core.wire import obj as _obj
from por.core.wire import text as _str
from por.errors import ChainLinkError, FormatError, MismatchError

FORMAT = "por-attestation-v1"
PAYLOAD_TYPE = "application/vnd.por.attestation+json"

STATUS_FULLY_BACKED = "FULLY_BACKED"
STATUS_UNDER_COLLATERALIZED = "UNDER_COLLATERALIZED"
STATUS_DEGRADED = "DEGRADED"
STATUSES = (STATUS_FULLY_BACKED, STATUS_UNDER_COLLATERALIZED, STATUS_DEGRADED)

ASSET_CLASSES = ("cash", "deposit", "government_security", "reverse_repo", "other")
EXCLUSION_REASONS = ("treasury", "bridge_escrow")

# Off-chain liabilities (docs/ledger.md): every `ledger:` leaf is in exactly one category.
LEDGER_CATEGORIES = (
    "pending_redemption",  # tokens redeemed (out of circulation), cash not yet paid out
    "pending_subscription",  # cash received, tokens not yet minted
    "frozen",  # frozen or blacklisted balances no longer on a chain read here (HKMA: counted)
    "other_chain_supply",  # supply on a chain por does not read directly, with its evidence
)
KIND_REGULAR = "regular"
KIND_POINT_IN_TIME = "point-in-time"
FLOWS_RULE = "por-flows-v1"
PIT_SOURCES = ("archive-state", "recorded-snapshot")

_CAIP2_RE = re.compile(r"[-a-z0-9]{3,8}:[-_a-zA-Z0-9]{1,32}")
_CAIP10_RE = re.compile(r"[-a-z0-9]{3,8}:[-_a-zA-Z0-9]{1,32}:[-.%a-zA-Z0-9]{1,128}")


# --- wire helpers -------------------------------------------------------------------------


def _utc(t: datetime, where: str) -> datetime:
    if not isinstance(t, datetime) or t.tzinfo is None:
        raise FormatError(f"must be a timezone-aware datetime, got {t!r}", where=where)
    return t.astimezone(UTC).replace(microsecond=0)


# --- parts of the document ----------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Token:
    symbol: str
    decimals: int
    currency: str

    def to_dict(self) -> dict[str, Any]:
        return {"symbol": self.symbol, "decimals": self.decimals, "currency": self.currency}

    @classmethod
    def from_dict(cls, d: object, *, where: str = "token") -> Token:
        o = _obj(d, ("symbol", "decimals", "currency"), where)
        decimals = _int(o["decimals"], f"{where}.decimals")
        if decimals > 36:
            raise FormatError(
                f"decimals must be at most 36, got {decimals}", where=f"{where}.decimals"
            )
        return cls(
            symbol=_str(o["symbol"], f"{where}.symbol", max_len=32),
            decimals=decimals,
            currency=_str(o["currency"], f"{where}.currency", max_len=12),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Block:
    number: int
    hash: str
    time: datetime

    def to_dict(self) -> dict[str, Any]:
        return {"number": self.number, "hash": self.hash, "time": format_time(self.time)}

    @classmethod
    def from_dict(cls, d: object, *, where: str) -> Block:
        o = _obj(d, ("number", "hash", "time"), where)
        return cls(
            number=_int(o["number"], f"{where}.number"),
            hash=_str(o["hash"], f"{where}.hash", max_len=128),
            time=parse_time(o["time"], where=f"{where}.time"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Excluded:
    account: str
    balance: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "balance": format_base_units(self.balance),
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, d: object, *, where: str) -> Excluded:
        o = _obj(d, ("account", "balance", "reason"), where)
        return cls(
            account=_str(o["account"], f"{where}.account", pattern=_CAIP10_RE),
            balance=parse_base_units(o["balance"], where=f"{where}.balance"),
            reason=_str(o["reason"], f"{where}.reason", choices=EXCLUSION_REASONS),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainEntry:
    chain_id: str  # CAIP-2
    token: str  # CAIP-10 of the token contract / mint
    block: Block
    total_supply: int
    excluded: tuple[Excluded, ...]
    circulating_supply: int
    holders: int
    # This chain's mint budget (docs/budgets.md); None only in documents made before
    # budgets existed, which still parse and verify.
    budget: int | None = None

    @property
    def excluded_total(self) -> int:
        return sum(e.balance for e in self.excluded)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "chain_id": self.chain_id,
            "token": self.token,
            "block": self.block.to_dict(),
            "total_supply": format_base_units(self.total_supply),
            "excluded": [e.to_dict() for e in self.excluded],
            "circulating_supply": format_base_units(self.circulating_supply),
            "holders": self.holders,
        }
        if self.budget is not None:
            d["budget"] = format_base_units(self.budget)
        return d

    @classmethod
    def from_dict(cls, d: object, *, where: str) -> ChainEntry:
        keys = (
            "chain_id",
            "token",
            "block",
            "total_supply",
            "excluded",
            "circulating_supply",
            "holders",
        )
        o = _obj(d, keys, where, optional=("budget",))
        if not isinstance(o["excluded"], list):
            raise FormatError("must be a list", where=f"{where}.excluded")
        return cls(
            chain_id=_str(o["chain_id"], f"{where}.chain_id", pattern=_CAIP2_RE),
            token=_str(o["token"], f"{where}.token", pattern=_CAIP10_RE),
            block=Block.from_dict(o["block"], where=f"{where}.block"),
            total_supply=parse_base_units(o["total_supply"], where=f"{where}.total_supply"),
            excluded=tuple(
                Excluded.from_dict(e, where=f"{where}.excluded[{i}]")
                for i, e in enumerate(o["excluded"])
            ),
            circulating_supply=parse_base_units(
                o["circulating_supply"], where=f"{where}.circulating_supply"
            ),
            holders=_int(o["holders"], f"{where}.holders"),
            budget=parse_base_units(o["budget"], where=f"{where}.budget")
            if "budget" in o
            else None,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class StatementRef:
    """Which raw statement a reserve line comes from; `sha256` names the stored raw bytes.

    `warnings` (optional, omitted when empty so documents without it keep their bytes and
    digest) name defects in fields of the statement that feed no figure, e.g. "line 12:
    :61: entry not read: ...": the statement was used, and a reader sees what was skipped.
    """

    format: str
    id: str
    as_of: datetime
    sha256: str
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "format": self.format,
            "id": self.id,
            "as_of": format_time(self.as_of),
            "sha256": self.sha256,
        }
        if self.warnings:
            d["warnings"] = list(self.warnings)
        return d

    @classmethod
    def from_dict(cls, d: object, *, where: str) -> StatementRef:
        o = _obj(d, ("format", "id", "as_of", "sha256"), where, optional=("warnings",))
        warnings = o.get("warnings", [])
        if not isinstance(warnings, list) or (not warnings and "warnings" in o):
            raise FormatError(
                "must be a non-empty list of strings (omitted when there is none)",
                where=f"{where}.warnings",
            )
        return cls(
            format=_str(o["format"], f"{where}.format", max_len=64),
            id=_str(o["id"], f"{where}.id"),
            as_of=parse_time(o["as_of"], where=f"{where}.as_of"),
            sha256=_hex32(o["sha256"], f"{where}.sha256"),
            warnings=tuple(
                _str(w, f"{where}.warnings[{i}]", max_len=1024) for i, w in enumerate(warnings)
            ),
        )


_RATE_RE = re.compile(r"[1-9][0-9]{0,11}(?:/[1-9][0-9]{0,18})?|[0-9]{1,12}\.[0-9]{0,17}[1-9]")


def rate_string(rate: Fraction) -> str:
    """The one spelling of an exact positive rate: a decimal when it terminates within 18
    places ("7.1834"), an integer ("7"), else "p/q" in lowest terms."""
    if rate <= 0:
        raise FormatError(f"rate must be positive, got {rate}", where="fx.rate")
    q = rate.denominator
    for places in range(19):
        if (10**places) % q == 0:
            scaled = rate.numerator * (10**places // q)
            if places == 0:
                return str(scaled)
            whole, frac = divmod(scaled, 10**places)
            return f"{whole}.{str(frac).rjust(places, '0')}"
    return f"{rate.numerator}/{rate.denominator}"


def parse_rate_string(text: object, *, where: str) -> Fraction:
    """The inverse of `rate_string`; any other spelling of the same rate is refused."""
    if not isinstance(text, str) or not _RATE_RE.fullmatch(text):
        raise FormatError(f'not an exact rate like "7.1834" or "p/q": {text!r}', where=where)
    rate = Fraction(text)
    if rate <= 0 or rate_string(rate) != text:
        raise FormatError(f"not the canonical spelling of its rate: {text!r}", where=where)
    return rate


def convert_units(value: int, *, decimals: int, rate: Fraction, token_decimals: int) -> int:
    """`value` minor units (`decimals` places) of a foreign currency in token base units
    at `rate` token-currency units per foreign unit, rounded DOWN (never overstate)."""
    exact = Fraction(value) * rate * Fraction(10) ** (token_decimals - decimals)
    return exact.numerator // exact.denominator


@dataclass(frozen=True, slots=True, kw_only=True)
class FxConversion:
    """How a reserve line in a foreign currency became token units (optional field `fx`).

    `amount` and `market_value` are the line's own figures in minor units (`decimals`
    places) of the line's `currency`; `rate` is token-currency units per one unit of it,
    exact. The line's token-unit `amount` / `market_value` are these converted at `rate`,
    rounded down (`convert_units`); `check_consistency` recomputes them.
    """

    rate: Fraction
    decimals: int
    amount: int
    market_value: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "rate": rate_string(self.rate),
            "decimals": self.decimals,
            "amount": format_base_units(self.amount),
            "market_value": format_base_units(self.market_value),
        }

    @classmethod
    def from_dict(cls, d: object, *, where: str) -> FxConversion:
        o = _obj(d, ("rate", "decimals", "amount", "market_value"), where)
        decimals = _int(o["decimals"], f"{where}.decimals")
        if decimals > 36:
            raise FormatError(f"must be at most 36, got {decimals}", where=f"{where}.decimals")
        return cls(
            rate=parse_rate_string(o["rate"], where=f"{where}.rate"),
            decimals=decimals,
            amount=parse_base_units(o["amount"], where=f"{where}.amount"),
            market_value=parse_base_units(o["market_value"], where=f"{where}.market_value"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ReserveEntry:
    """One reserve line, every amount in TOKEN base units.

    `fx` (optional, omitted for lines in the token's currency, so such documents keep
    their bytes) carries the line's own figures and the exact rate when it was converted.
    A line in another currency WITHOUT `fx` was not converted (no FX rule): it is
    ineligible and its amounts are its own currency's, scaled to token decimals.
    """

    custodian: str
    account: str  # masked
    asset_class: str
    instrument: str | None
    currency: str
    amount: int
    market_value: int
    haircut_bps: int
    eligible_value: int
    ineligible_reason: str | None
    statement: StatementRef
    fx: FxConversion | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "custodian": self.custodian,
            "account": self.account,
            "asset_class": self.asset_class,
            "instrument": self.instrument,
            "currency": self.currency,
            "amount": format_base_units(self.amount),
            "market_value": format_base_units(self.market_value),
            "haircut_bps": self.haircut_bps,
            "eligible_value": format_base_units(self.eligible_value),
            "ineligible_reason": self.ineligible_reason,
            "statement": self.statement.to_dict(),
        } | ({} if self.fx is None else {"fx": self.fx.to_dict()})

    @classmethod
    def from_dict(cls, d: object, *, where: str) -> ReserveEntry:
        keys = (
            "custodian",
            "account",
            "asset_class",
            "instrument",
            "currency",
            "amount",
            "market_value",
            "haircut_bps",
            "eligible_value",
            "ineligible_reason",
            "statement",
        )
        o = _obj(d, keys, where, optional=("fx",))
        haircut = _int(o["haircut_bps"], f"{where}.haircut_bps")
        if haircut > 10_000:
            raise FormatError(
                f"haircut_bps must be at most 10000, got {haircut}", where=f"{where}.haircut_bps"
            )
        instrument = o["instrument"]
        reason = o["ineligible_reason"]
        return cls(
            custodian=_str(o["custodian"], f"{where}.custodian"),
            account=_str(o["account"], f"{where}.account", max_len=64),
            asset_class=_str(o["asset_class"], f"{where}.asset_class", choices=ASSET_CLASSES),
            instrument=None if instrument is None else _str(instrument, f"{where}.instrument"),
            currency=_str(o["currency"], f"{where}.currency", max_len=12),
            amount=parse_base_units(o["amount"], where=f"{where}.amount"),
            market_value=parse_base_units(o["market_value"], where=f"{where}.market_value"),
            haircut_bps=haircut,
            eligible_value=parse_base_units(o["eligible_value"], where=f"{where}.eligible_value"),
            ineligible_reason=None
            if reason is None
            else _str(reason, f"{where}.ineligible_reason", max_len=1024),
            statement=StatementRef.from_dict(o["statement"], where=f"{where}.statement"),
            fx=FxConversion.from_dict(o["fx"], where=f"{where}.fx") if "fx" in o else None,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Liabilities:
    """The sum-tree commitment to every holder's balance (DESIGN §3)."""

    root: str
    total: int
    leaf_count: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "total": format_base_units(self.total),
            "leaf_count": self.leaf_count,
        }

    @classmethod
    def from_dict(cls, d: object, *, where: str = "liabilities") -> Liabilities:
        o = _obj(d, ("root", "total", "leaf_count"), where)
        return cls(
            root=_hex32(o["root"], f"{where}.root"),
            total=parse_base_units(o["total"], where=f"{where}.total"),
            leaf_count=_int(o["leaf_count"], f"{where}.leaf_count"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Totals:
    eligible_reserves: int
    circulating_supply: int
    ratio: str | None
    status: str
    reasons: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "eligible_reserves": format_base_units(self.eligible_reserves),
            "circulating_supply": format_base_units(self.circulating_supply),
            "ratio": self.ratio,
            "status": self.status,
            "reasons": list(self.reasons),
        }

    @classmethod
    def from_dict(cls, d: object, *, where: str = "totals") -> Totals:
        o = _obj(
            d, ("eligible_reserves", "circulating_supply", "ratio", "status", "reasons"), where
        )
        ratio = o["ratio"]
        if ratio is not None and (
            not isinstance(ratio, str) or not re.fullmatch(r"\d+\.\d{6}", ratio)
        ):
            raise FormatError(
                f"ratio must be a decimal string with 6 places or null, got {ratio!r}",
                where=f"{where}.ratio",
            )
        reasons = o["reasons"]
        if not isinstance(reasons, list):
            raise FormatError("must be a list of strings", where=f"{where}.reasons")
        return cls(
            eligible_reserves=parse_base_units(
                o["eligible_reserves"], where=f"{where}.eligible_reserves"
            ),
            circulating_supply=parse_base_units(
                o["circulating_supply"], where=f"{where}.circulating_supply"
            ),
            ratio=ratio,
            status=_str(o["status"], f"{where}.status", choices=STATUSES),
            reasons=tuple(
                _str(r, f"{where}.reasons[{i}]", max_len=1024) for i, r in enumerate(reasons)
            ),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class PreviousRef:
    sequence: int
    digest: str

    def to_dict(self) -> dict[str, Any]:
        return {"sequence": self.sequence, "digest": self.digest}

    @classmethod
    def from_dict(cls, d: object, *, where: str = "previous") -> PreviousRef:
        o = _obj(d, ("sequence", "digest"), where)
        return cls(
            sequence=_int(o["sequence"], f"{where}.sequence", minimum=1),
            digest=_hex32(o["digest"], f"{where}.digest"),
        )


ALLOCATION_RULE = "por-budget-v1"
WEIGHTS_CIRCULATING = "circulating"
MAX_WEIGHT = 10**9
BPS = 10_000


@dataclass(frozen=True, slots=True, kw_only=True)
class AllocationPolicy:
    """The issuer's rule for sharing eligible reserves out as per-chain mint budgets.

    Declared in every document that carries budgets, so anyone recomputes them from the
    document alone (docs/budgets.md; the arithmetic is `por.core.budgets.allocate`).

    - `weights`: how the headroom is shared: `"circulating"` (in proportion to each
      chain's circulating supply; equal shares while nothing circulates) or fixed integer
      weights per CAIP-2 chain id, naming every chain of the document exactly once.
    - `headroom_share_bps`: the part of the headroom (reserves above liabilities) handed
      out at all, in basis points; the rest stays an unallocated buffer.
    - `cover_excluded`: headroom first covers each chain's excluded balances (treasury,
      bridge escrow), so a consumer comparing the budget with `totalSupply()` — which
      includes them — reads a fully backed issue as backed.
    """

    weights: str | tuple[tuple[str, int], ...] = WEIGHTS_CIRCULATING
    headroom_share_bps: int = BPS
    cover_excluded: bool = True
    rule: str = ALLOCATION_RULE

    def __post_init__(self) -> None:
        if self.rule != ALLOCATION_RULE:
            raise FormatError(
                f"rule must be {ALLOCATION_RULE!r}, got {self.rule!r}", where="allocation.rule"
            )
        if isinstance(self.weights, str):
            if self.weights != WEIGHTS_CIRCULATING:
                raise FormatError(
                    f'weights must be "{WEIGHTS_CIRCULATING}" or an object of chain weights, '
                    f"got {self.weights!r}",
                    where="allocation.weights",
                )
        else:
            seen: set[str] = set()
            for chain_id, w in self.weights:
                where = f"allocation.weights.{chain_id}"
                _str(chain_id, where, pattern=_CAIP2_RE)
                if chain_id in seen:
                    raise FormatError("chain named twice", where=where)
                seen.add(chain_id)
                if _int(w, where) > MAX_WEIGHT:
                    raise FormatError(f"weight must be at most {MAX_WEIGHT}, got {w}", where=where)
            if not any(w for _, w in self.weights):
                raise FormatError("fixed weights must not all be zero", where="allocation.weights")
            object.__setattr__(self, "weights", tuple(sorted(self.weights)))
        share = _int(self.headroom_share_bps, "allocation.headroom_share_bps")
        if share > BPS:
            raise FormatError(
                f"must be at most {BPS}, got {share}", where="allocation.headroom_share_bps"
            )
        if not isinstance(self.cover_excluded, bool):
            raise FormatError(
                f"must be true or false, got {self.cover_excluded!r}",
                where="allocation.cover_excluded",
            )

    @property
    def fixed_weights(self) -> dict[str, int] | None:
        return None if isinstance(self.weights, str) else dict(self.weights)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "weights": self.weights if isinstance(self.weights, str) else dict(self.weights),
            "headroom_share_bps": self.headroom_share_bps,
            "cover_excluded": self.cover_excluded,
        }

    @classmethod
    def from_dict(cls, d: object, *, where: str = "allocation") -> AllocationPolicy:
        o = _obj(d, ("rule", "weights", "headroom_share_bps", "cover_excluded"), where)
        weights = o["weights"]
        if isinstance(weights, dict):
            weights = tuple(weights.items())
        elif not isinstance(weights, str):
            raise FormatError(
                f"must be a string or an object, got {type(weights).__name__}",
                where=f"{where}.weights",
            )
        try:
            return cls(
                rule=o["rule"],
                weights=weights,
                headroom_share_bps=o["headroom_share_bps"],
                cover_excluded=o["cover_excluded"],
            )
        except FormatError as e:  # name the document's path, not the model's
            raise FormatError(e.message, where=f"{where}{(e.where or '')[10:]}") from None


# --- off-chain liabilities, flow reconciliation, point in time (issue 18) -----------------


@dataclass(frozen=True, slots=True, kw_only=True)
class LedgerSourceRef:
    """One ledger export behind the `ledger:` leaves: which, as of when, its bytes' hash."""

    name: str  # the configured source
    format: str  # por-ledger-csv-v1, por-ledger-json-v1, por-ledger-api-v1
    id: str  # the export's own id
    as_of: datetime
    sha256: str  # of the raw export (kept in the raw store)
    signed_by: str | None  # key id of the verified signature; None: hash-referenced only
    accounts: int
    total: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "format": self.format,
            "id": self.id,
            "as_of": format_time(self.as_of),
            "sha256": self.sha256,
            "signed_by": self.signed_by,
            "accounts": self.accounts,
            "total": format_base_units(self.total),
        }

    @classmethod
    def from_dict(cls, d: object, *, where: str) -> LedgerSourceRef:
        keys = ("name", "format", "id", "as_of", "sha256", "signed_by", "accounts", "total")
        o = _obj(d, keys, where)
        signed = o["signed_by"]
        return cls(
            name=_str(o["name"], f"{where}.name", max_len=128),
            format=_str(o["format"], f"{where}.format", max_len=64),
            id=_str(o["id"], f"{where}.id"),
            as_of=parse_time(o["as_of"], where=f"{where}.as_of"),
            sha256=_hex32(o["sha256"], f"{where}.sha256"),
            signed_by=None if signed is None else _hex32(signed, f"{where}.signed_by"),
            accounts=_int(o["accounts"], f"{where}.accounts"),
            total=parse_base_units(o["total"], where=f"{where}.total"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class LedgerEvidence:
    """What backs one ledger account's figure where the export gives it: for supply on a
    chain por does not read, the chain, token and block it was read at; for a frozen
    balance removed from its chain, the chain and transaction. Public issuer facts only."""

    account: str
    category: str
    balance: int
    fields: tuple[tuple[str, str], ...]  # sorted by key

    def to_dict(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "category": self.category,
            "balance": format_base_units(self.balance),
            "evidence": dict(self.fields),
        }

    @classmethod
    def from_dict(cls, d: object, *, where: str) -> LedgerEvidence:
        o = _obj(d, ("account", "category", "balance", "evidence"), where)
        ev = o["evidence"]
        if not isinstance(ev, dict) or not ev:
            raise FormatError("must be a non-empty object", where=f"{where}.evidence")
        fields = tuple(
            (_str(k, f"{where}.evidence", max_len=64), _str(v, f"{where}.evidence.{k}"))
            for k, v in sorted(ev.items())
        )
        return cls(
            account=_str(o["account"], f"{where}.account", pattern=_CAIP10_RE),
            category=_str(o["category"], f"{where}.category", choices=LEDGER_CATEGORIES),
            balance=parse_base_units(o["balance"], where=f"{where}.balance"),
            fields=fields,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class LedgerSection:
    """Off-chain liabilities: totals by category and the exports they come from.

    Every account of these exports is a `ledger:<issuer>:<id>` leaf of the sum tree, and
    `total` counts in `totals.circulating_supply` (the liabilities the status is judged
    against) but in no chain's budget (docs/budgets.md).
    """

    sources: tuple[LedgerSourceRef, ...]
    categories: tuple[tuple[str, int], ...]  # every category of LEDGER_CATEGORIES, in order
    total: int
    evidence: tuple[LedgerEvidence, ...] = ()  # accounts whose export gives evidence

    def __post_init__(self) -> None:
        names = tuple(c for c, _ in self.categories)
        if names != LEDGER_CATEGORIES:
            raise FormatError(
                f"categories must be exactly {', '.join(LEDGER_CATEGORIES)}, got "
                f"{', '.join(names) or 'none'}",
                where="ledger.categories",
            )

    def category(self, name: str) -> int:
        return dict(self.categories)[name]

    def to_dict(self) -> dict[str, Any]:
        return {
            "sources": [s.to_dict() for s in self.sources],
            "categories": {c: format_base_units(v) for c, v in self.categories},
            "total": format_base_units(self.total),
            "evidence": [e.to_dict() for e in self.evidence],
        }

    @classmethod
    def from_dict(cls, d: object, *, where: str = "ledger") -> LedgerSection:
        o = _obj(d, ("sources", "categories", "total", "evidence"), where)
        for k in ("sources", "evidence"):
            if not isinstance(o[k], list):
                raise FormatError("must be a list", where=f"{where}.{k}")
        cats = _obj(o["categories"], LEDGER_CATEGORIES, f"{where}.categories")
        return cls(
            sources=tuple(
                LedgerSourceRef.from_dict(s, where=f"{where}.sources[{i}]")
                for i, s in enumerate(o["sources"])
            ),
            categories=tuple(
                (c, parse_base_units(cats[c], where=f"{where}.categories.{c}"))
                for c in LEDGER_CATEGORIES
            ),
            total=parse_base_units(o["total"], where=f"{where}.total"),
            evidence=tuple(
                LedgerEvidence.from_dict(e, where=f"{where}.evidence[{i}]")
                for i, e in enumerate(o["evidence"])
            ),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class FlowTally:
    """Counts and sums (token base units) of one kind of flow: matched and unmatched."""

    matched: int
    matched_sum: int
    unmatched: int
    unmatched_sum: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "matched": self.matched,
            "matched_sum": format_base_units(self.matched_sum),
            "unmatched": self.unmatched,
            "unmatched_sum": format_base_units(self.unmatched_sum),
        }

    @classmethod
    def from_dict(cls, d: object, *, where: str) -> FlowTally:
        o = _obj(d, ("matched", "matched_sum", "unmatched", "unmatched_sum"), where)
        return cls(
            matched=_int(o["matched"], f"{where}.matched"),
            matched_sum=parse_base_units(o["matched_sum"], where=f"{where}.matched_sum"),
            unmatched=_int(o["unmatched"], f"{where}.unmatched"),
            unmatched_sum=parse_base_units(o["unmatched_sum"], where=f"{where}.unmatched_sum"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class FlowRange:
    """The blocks (slots) of one chain whose mints and burns were reconciled."""

    chain_id: str
    from_block: int
    to_block: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "from_block": self.from_block,
            "to_block": self.to_block,
        }

    @classmethod
    def from_dict(cls, d: object, *, where: str) -> FlowRange:
        o = _obj(d, ("chain_id", "from_block", "to_block"), where)
        return cls(
            chain_id=_str(o["chain_id"], f"{where}.chain_id", pattern=_CAIP2_RE),
            from_block=_int(o["from_block"], f"{where}.from_block"),
            to_block=_int(o["to_block"], f"{where}.to_block"),
        )


FLOW_KINDS = ("mints", "burns", "credits", "debits")


@dataclass(frozen=True, slots=True, kw_only=True)
class ReconciliationSection:
    """Every mint and burn of the chains matched with the custodians' credits and debits
    (`por-flows-v1`, docs/ledger.md): the parameters, the inputs, the tallies, and the
    SHA-256 of the detailed match list (served at /v1/reconciliation/{sequence})."""

    from_time: datetime
    to_time: datetime
    window_s: int
    max_age_s: int
    tolerance: int | None
    chains: tuple[FlowRange, ...]
    statements: tuple[str, ...]  # SHA-256 of every statement whose entries were read
    mints: FlowTally
    burns: FlowTally
    credits: FlowTally
    debits: FlowTally
    ignored: int  # bank entries left out by the `ignore` words (listed, not matched)
    overdue: int  # unmatched items older than max_age_s
    overdue_sum: int
    matches_sha256: str
    rule: str = FLOWS_RULE

    def __post_init__(self) -> None:
        if self.rule != FLOWS_RULE:
            raise FormatError(f"rule must be {FLOWS_RULE!r}", where="reconciliation.rule")

    def tally(self, kind: str) -> FlowTally:
        return {"mints": self.mints, "burns": self.burns, "credits": self.credits}.get(
            kind, self.debits
        )

    @property
    def unmatched_sum(self) -> int:
        return sum(self.tally(k).unmatched_sum for k in FLOW_KINDS)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "from": format_time(self.from_time),
            "to": format_time(self.to_time),
            "window_s": self.window_s,
            "max_age_s": self.max_age_s,
            "tolerance": None if self.tolerance is None else format_base_units(self.tolerance),
            "chains": [c.to_dict() for c in self.chains],
            "statements": list(self.statements),
            "mints": self.mints.to_dict(),
            "burns": self.burns.to_dict(),
            "credits": self.credits.to_dict(),
            "debits": self.debits.to_dict(),
            "ignored": self.ignored,
            "overdue": self.overdue,
            "overdue_sum": format_base_units(self.overdue_sum),
            "matches_sha256": self.matches_sha256,
        }

    @classmethod
    def from_dict(cls, d: object, *, where: str = "reconciliation") -> ReconciliationSection:
        keys = (
            "rule",
            "from",
            "to",
            "window_s",
            "max_age_s",
            "tolerance",
            "chains",
            "statements",
            *FLOW_KINDS,
            "ignored",
            "overdue",
            "overdue_sum",
            "matches_sha256",
        )
        o = _obj(d, keys, where)
        for k in ("chains", "statements"):
            if not isinstance(o[k], list):
                raise FormatError("must be a list", where=f"{where}.{k}")
        tol = o["tolerance"]
        return cls(
            rule=_str(o["rule"], f"{where}.rule", choices=(FLOWS_RULE,)),
            from_time=parse_time(o["from"], where=f"{where}.from"),
            to_time=parse_time(o["to"], where=f"{where}.to"),
            window_s=_int(o["window_s"], f"{where}.window_s"),
            max_age_s=_int(o["max_age_s"], f"{where}.max_age_s"),
            tolerance=None if tol is None else parse_base_units(tol, where=f"{where}.tolerance"),
            chains=tuple(
                FlowRange.from_dict(c, where=f"{where}.chains[{i}]")
                for i, c in enumerate(o["chains"])
            ),
            statements=tuple(
                _hex32(s, f"{where}.statements[{i}]") for i, s in enumerate(o["statements"])
            ),
            mints=FlowTally.from_dict(o["mints"], where=f"{where}.mints"),
            burns=FlowTally.from_dict(o["burns"], where=f"{where}.burns"),
            credits=FlowTally.from_dict(o["credits"], where=f"{where}.credits"),
            debits=FlowTally.from_dict(o["debits"], where=f"{where}.debits"),
            ignored=_int(o["ignored"], f"{where}.ignored"),
            overdue=_int(o["overdue"], f"{where}.overdue"),
            overdue_sum=parse_base_units(o["overdue_sum"], where=f"{where}.overdue_sum"),
            matches_sha256=_hex32(o["matches_sha256"], f"{where}.matches_sha256"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class PointInTimeChain:
    """How one chain was read as of a past time: archive state at the last finalized block
    at or before it, or the nearest recorded snapshot (Solana keeps no history) and how
    far before the requested time that is."""

    chain_id: str
    source: str  # PIT_SOURCES
    gap_s: int  # requested time minus the block's time

    def to_dict(self) -> dict[str, Any]:
        return {"chain_id": self.chain_id, "source": self.source, "gap_s": self.gap_s}

    @classmethod
    def from_dict(cls, d: object, *, where: str) -> PointInTimeChain:
        o = _obj(d, ("chain_id", "source", "gap_s"), where)
        return cls(
            chain_id=_str(o["chain_id"], f"{where}.chain_id", pattern=_CAIP2_RE),
            source=_str(o["source"], f"{where}.source", choices=PIT_SOURCES),
            gap_s=_int(o["gap_s"], f"{where}.gap_s"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class PointInTime:
    """What a point-in-time attestation (`kind: "point-in-time"`) was asked for."""

    requested: datetime
    chains: tuple[PointInTimeChain, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "requested": format_time(self.requested),
            "chains": [c.to_dict() for c in self.chains],
        }

    @classmethod
    def from_dict(cls, d: object, *, where: str = "point_in_time") -> PointInTime:
        o = _obj(d, ("requested", "chains"), where)
        if not isinstance(o["chains"], list):
            raise FormatError("must be a list", where=f"{where}.chains")
        return cls(
            requested=parse_time(o["requested"], where=f"{where}.requested"),
            chains=tuple(
                PointInTimeChain.from_dict(c, where=f"{where}.chains[{i}]")
                for i, c in enumerate(o["chains"])
            ),
        )


# --- the document -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Attestation:
    sequence: int
    issued_at: datetime
    as_of: datetime
    token: Token
    chains: tuple[ChainEntry, ...]
    reserves: tuple[ReserveEntry, ...]
    liabilities: Liabilities
    totals: Totals
    previous: PreviousRef | None
    # The allocation rule of the chains' budgets; present exactly when they carry budgets.
    allocation: AllocationPolicy | None = None
    # Issue 18, all additive (absent in older documents, which keep parsing and verifying):
    ledger: LedgerSection | None = None  # off-chain liabilities (`ledger:` leaves)
    reconciliation: ReconciliationSection | None = None  # mints/burns vs credits/debits
    kind: str = KIND_REGULAR  # "point-in-time": as of a past time, never the oracle's latest
    point_in_time: PointInTime | None = None  # present exactly when kind is point-in-time
    format: str = field(default=FORMAT)

    def __post_init__(self) -> None:
        if self.format != FORMAT:
            raise FormatError(f"format must be {FORMAT!r}, got {self.format!r}", where="format")
        _int(self.sequence, "sequence", minimum=1)
        object.__setattr__(self, "issued_at", _utc(self.issued_at, "issued_at"))
        object.__setattr__(self, "as_of", _utc(self.as_of, "as_of"))
        if (self.previous is None) != (self.sequence == 1):
            raise ChainLinkError(
                "sequence 1 starts the chain and only it has no previous",
                expected="previous" if self.sequence > 1 else "no previous",
                computed="none" if self.previous is None else f"previous {self.previous.sequence}",
                where="previous",
            )
        # Budgets are additive to the format: a document carries them for every chain,
        # with the policy that makes them recomputable, or (made before budgets) not at all.
        budgeted = [c.budget is not None for c in self.chains]
        if self.allocation is None and any(budgeted):
            raise FormatError("chains carry budgets but there is no allocation", where="allocation")
        if self.allocation is not None and not all(budgeted):
            missing = [c.chain_id for c in self.chains if c.budget is None]
            raise FormatError(
                f"allocation declared but chain(s) {', '.join(missing)} have no budget",
                where="chains",
            )
        _str(self.kind, "kind", choices=(KIND_REGULAR, KIND_POINT_IN_TIME))
        if (self.kind == KIND_POINT_IN_TIME) != (self.point_in_time is not None):
            raise FormatError(
                "a point-in-time attestation carries point_in_time, and only it does",
                where="point_in_time",
            )

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "format": self.format,
            "sequence": self.sequence,
            "issued_at": format_time(self.issued_at),
            "as_of": format_time(self.as_of),
            "token": self.token.to_dict(),
            "chains": [c.to_dict() for c in self.chains],
            "reserves": [r.to_dict() for r in self.reserves],
            "liabilities": self.liabilities.to_dict(),
            "totals": self.totals.to_dict(),
            "previous": None if self.previous is None else self.previous.to_dict(),
        }
        # optional parts appear only when present: older documents keep their bytes
        if self.allocation is not None:
            d["allocation"] = self.allocation.to_dict()
        if self.ledger is not None:
            d["ledger"] = self.ledger.to_dict()
        if self.reconciliation is not None:
            d["reconciliation"] = self.reconciliation.to_dict()
        if self.point_in_time is not None:
            d["kind"] = self.kind
            d["point_in_time"] = self.point_in_time.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: object, *, where: str = "attestation") -> Attestation:
        keys = (
            "format",
            "sequence",
            "issued_at",
            "as_of",
            "token",
            "chains",
            "reserves",
            "liabilities",
            "totals",
            "previous",
        )
        optional = ("allocation", "ledger", "reconciliation", "kind", "point_in_time")
        o = _obj(d, keys, where, optional=optional)
        if "kind" in o and o["kind"] != KIND_POINT_IN_TIME:
            # a regular document omits `kind`: one spelling, one digest
            raise FormatError(
                f"kind must be {KIND_POINT_IN_TIME!r} when present, got {o['kind']!r}",
                where=f"{where}.kind",
            )
        if o["format"] != FORMAT:
            raise FormatError(
                f"format must be {FORMAT!r}, got {o['format']!r}", where=f"{where}.format"
            )
        for k in ("chains", "reserves"):
            if not isinstance(o[k], list):
                raise FormatError("must be a list", where=f"{where}.{k}")
        return cls(
            sequence=_int(o["sequence"], f"{where}.sequence", minimum=1),
            issued_at=parse_time(o["issued_at"], where=f"{where}.issued_at"),
            as_of=parse_time(o["as_of"], where=f"{where}.as_of"),
            token=Token.from_dict(o["token"], where=f"{where}.token"),
            chains=tuple(
                ChainEntry.from_dict(c, where=f"{where}.chains[{i}]")
                for i, c in enumerate(o["chains"])
            ),
            reserves=tuple(
                ReserveEntry.from_dict(r, where=f"{where}.reserves[{i}]")
                for i, r in enumerate(o["reserves"])
            ),
            liabilities=Liabilities.from_dict(o["liabilities"], where=f"{where}.liabilities"),
            totals=Totals.from_dict(o["totals"], where=f"{where}.totals"),
            previous=None
            if o["previous"] is None
            else PreviousRef.from_dict(o["previous"], where=f"{where}.previous"),
            allocation=AllocationPolicy.from_dict(o["allocation"], where=f"{where}.allocation")
            if "allocation" in o
            else None,
            ledger=LedgerSection.from_dict(o["ledger"], where=f"{where}.ledger")
            if "ledger" in o
            else None,
            reconciliation=ReconciliationSection.from_dict(
                o["reconciliation"], where=f"{where}.reconciliation"
            )
            if "reconciliation" in o
            else None,
            kind=o.get("kind", KIND_REGULAR),
            point_in_time=PointInTime.from_dict(o["point_in_time"], where=f"{where}.point_in_time")
            if "point_in_time" in o
            else None,
        )

    @property
    def is_point_in_time(self) -> bool:
        return self.kind == KIND_POINT_IN_TIME

    @property
    def chain_circulating(self) -> int:
        """Liabilities with a chain budget: the chains' circulating supply."""
        return sum(c.circulating_supply for c in self.chains)

    @property
    def ledger_total(self) -> int:
        """Off-chain liabilities (0 without a ledger section)."""
        return 0 if self.ledger is None else self.ledger.total

    def to_bytes(self) -> bytes:
        """The RFC 8785 bytes: what is signed (DSSE payload) and what the digest covers."""
        return canonical_bytes(self.to_dict())

    def digest(self) -> str:
        """Hex SHA-256 of the canonical bytes; the next attestation's `previous.digest`."""
        return hashlib.sha256(self.to_bytes()).hexdigest()


def attestation_bytes(att: Attestation) -> bytes:
    return att.to_bytes()


def decode_attestation(payload: bytes, *, where: str = "payload") -> Attestation:
    """Parse verified payload bytes; they must already be in canonical form.

    A payload that parses but is not its own canonical form is refused: two byte strings
    for one document would give two digests for one attestation.
    """
    att = Attestation.from_dict(loads_strict(payload, where=where), where=where)
    if att.to_bytes() != payload:
        raise FormatError("payload is not RFC 8785 canonical JSON", where=where)
    return att


def verify_chain(previous: Attestation, current: Attestation) -> None:
    """Check that `current` links to `previous`: next sequence, matching digest, no time travel."""
    if current.previous is None:
        raise ChainLinkError(
            "attestation has no previous link",
            expected=f"previous sequence {previous.sequence}",
            computed="none",
        )
    if current.previous.sequence != previous.sequence or current.sequence != previous.sequence + 1:
        raise ChainLinkError(
            "sequence does not follow the previous attestation",
            expected=f"{previous.sequence} -> {previous.sequence + 1}",
            computed=f"{current.previous.sequence} -> {current.sequence}",
            where="previous.sequence",
        )
    digest = previous.digest()
    if current.previous.digest != digest:
        raise ChainLinkError(
            "previous digest does not match the previous attestation",
            expected=digest,
            computed=current.previous.digest,
            where="previous.digest",
        )
    # A point-in-time attestation is dated in the past by design: only its issue time moves
    # on (its as_of is checked against its own issued_at). Every other one moves both.
    past = current.is_point_in_time
    if current.issued_at < previous.issued_at or (not past and current.as_of < previous.as_of):
        raise ChainLinkError(
            "attestation is dated before its predecessor",
            expected=f"issued_at >= {format_time(previous.issued_at)}",
            computed=format_time(current.issued_at),
            where="issued_at",
        )
    if past and current.as_of > current.issued_at:
        raise ChainLinkError(
            "point-in-time attestation is dated after it was issued",
            expected=f"as_of <= {format_time(current.issued_at)}",
            computed=format_time(current.as_of),
            where="as_of",
        )


def check_consistency(att: Attestation) -> list[str]:  # noqa: PLR0912 - one rule per branch
    """Internal arithmetic of a document; returns the list of problems (empty when sound).

    Checks that per-chain circulating = total - excluded, the chains add up to the totals
    and to the liabilities total, reserve lines add up to eligible reserves, the ratio
    and status follow from the figures, and (when the document carries them) every
    chain's budget is the one the declared allocation gives (docs/budgets.md).
    """
    problems: list[str] = []
    for i, c in enumerate(att.chains):
        excluded = sum(e.balance for e in c.excluded)
        if c.circulating_supply != c.total_supply - excluded:
            problems.append(
                f"chains[{i}] ({c.chain_id}): circulating_supply {c.circulating_supply}"
                f" != total_supply {c.total_supply} - excluded {excluded}"
            )
    circ = sum(c.circulating_supply for c in att.chains)
    if att.ledger is None and circ != att.totals.circulating_supply:
        problems.append(
            f"totals.circulating_supply {att.totals.circulating_supply} != sum of chains {circ}"
        )
    if att.ledger is not None:
        # off-chain liabilities count in the total the status is judged against
        problems.extend(_ledger_problems(att.ledger))
        if circ + att.ledger.total != att.totals.circulating_supply:
            problems.append(
                f"totals.circulating_supply {att.totals.circulating_supply} != sum of chains "
                f"{circ} + ledger total {att.ledger.total}"
            )
    if att.reconciliation is not None:
        problems.extend(_reconciliation_problems(att))
    # A chain whose index disagrees with its totalSupply makes the run DEGRADED; only
    # then may the tree total differ from the supply-based circulating figure.
    if (
        att.liabilities.total != att.totals.circulating_supply
        and att.totals.status != STATUS_DEGRADED
    ):
        problems.append(
            f"liabilities.total {att.liabilities.total} != totals.circulating_supply "
            f"{att.totals.circulating_supply}"
        )
    eligible = sum(r.eligible_value for r in att.reserves)
    if eligible != att.totals.eligible_reserves:
        problems.append(
            f"totals.eligible_reserves {att.totals.eligible_reserves} != sum of "
            f"reserve lines {eligible}"
        )
    for i, r in enumerate(att.reserves):
        if r.fx is not None:
            if r.currency == att.token.currency:
                problems.append(f"reserves[{i}]: fx on a line in the token's currency")
            for what, own, converted in (
                ("amount", r.fx.amount, r.amount),
                ("market_value", r.fx.market_value, r.market_value),
            ):
                expect = convert_units(
                    own, decimals=r.fx.decimals, rate=r.fx.rate, token_decimals=att.token.decimals
                )
                if expect != converted:
                    problems.append(
                        f"reserves[{i}]: {what} {converted} != fx.{what} {own} at rate "
                        f"{rate_string(r.fx.rate)} = {expect}"
                    )
        if r.eligible_value > r.market_value:
            problems.append(f"reserves[{i}]: eligible_value exceeds market_value")
        # a concentration limit may cut a line only partly: it keeps the eligible part
        partly = r.ineligible_reason is not None and r.ineligible_reason.startswith(
            "partly ineligible"
        )
        if r.ineligible_reason is not None and r.eligible_value != 0 and not partly:
            problems.append(
                f"reserves[{i}]: ineligible line with eligible_value {r.eligible_value}"
            )
    want = ratio_string(att.totals.eligible_reserves, att.totals.circulating_supply)
    if att.totals.ratio != want:
        problems.append(f"totals.ratio {att.totals.ratio} != recomputed {want}")
    if att.totals.reasons and att.totals.status != STATUS_DEGRADED:
        problems.append(f"status {att.totals.status} with reasons {list(att.totals.reasons)}")
    if not att.totals.reasons:
        want_status = (
            STATUS_FULLY_BACKED
            if att.totals.eligible_reserves >= att.totals.circulating_supply
            else STATUS_UNDER_COLLATERALIZED
        )
        if att.totals.status != want_status:
            problems.append(f"status {att.totals.status} but figures say {want_status}")
    if att.totals.status == STATUS_DEGRADED and not att.totals.reasons:
        problems.append("status DEGRADED without reasons")
    if att.allocation is not None:
        from por.core.budgets import budget_problems  # por.core.budgets imports this module

        problems.extend(budget_problems(att))
    return problems


def _ledger_problems(ledger: LedgerSection) -> list[str]:
    problems = []
    by_category = sum(v for _, v in ledger.categories)
    if by_category != ledger.total:
        problems.append(f"ledger categories add up to {by_category}, total is {ledger.total}")
    by_source = sum(s.total for s in ledger.sources)
    if by_source != ledger.total:
        problems.append(f"ledger sources add up to {by_source}, total is {ledger.total}")
    return problems


def _reconciliation_problems(att: Attestation) -> list[str]:
    r = att.reconciliation
    assert r is not None
    problems = []
    if r.from_time > r.to_time:
        problems.append("reconciliation.from is after reconciliation.to")
    if r.to_time != att.as_of:
        problems.append(
            f"reconciliation.to {format_time(r.to_time)} is not the attestation's as_of"
        )
    if r.overdue_sum > r.unmatched_sum:
        problems.append("reconciliation: overdue sum exceeds the unmatched sum")
    return problems


def verify_consistency(att: Attestation) -> None:
    """Raise MismatchError listing every arithmetic inconsistency in the document.

    When the per-chain budgets are among the problems the error is typed
    (`por.core.budgets.BudgetsExceedReservesError` when they add up to more than the
    eligible reserves, else `BudgetMismatchError`).
    """
    problems = check_consistency(att)
    if problems:
        error: type[MismatchError] = MismatchError
        if att.allocation is not None:
            from por.core.budgets import budget_error_class

            error = budget_error_class(att)
        raise error("attestation figures are inconsistent: " + "; ".join(problems))


def chain_entry_from_values(
    *,
    chain_id: str,
    token: str,
    block_number: int,
    block_hash: str,
    block_time: datetime,
    total_supply: int,
    excluded: Sequence[tuple[str, int, str]],
    holders: int,
) -> ChainEntry:
    """Build a ChainEntry from plain values, deriving circulating supply."""
    ex = tuple(Excluded(account=a, balance=b, reason=r) for a, b, r in excluded)
    circulating = total_supply - sum(e.balance for e in ex)
    check_amount(circulating, where=f"{chain_id}: circulating supply (excluded exceed supply?)")
    return ChainEntry(
        chain_id=chain_id,
        token=token,
        block=Block(number=block_number, hash=block_hash, time=block_time),
        total_supply=total_supply,
        excluded=ex,
        circulating_supply=circulating,
        holders=holders,
    )


def reserves_from_dicts(items: Sequence[Mapping[str, Any]]) -> tuple[ReserveEntry, ...]:
    """Reserve lines from their wire dicts (as ReserveEntry.to_dict() produces them)."""
    return tuple(
        ReserveEntry.from_dict(dict(r), where=f"reserves[{i}]") for i, r in enumerate(items)
    )
