"""Response models of the HTTP API (pydantic), kept apart from the core dataclasses.

They describe the wire form for the OpenAPI document and for clients. Amounts are
decimal strings of integer base units, hashes lowercase hex, times RFC 3339 UTC — the
same spelling as the signed documents (DESIGN §4). The core model stays the one
that parses and checks; these only document what the API sends.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

AmountStr = Field(pattern=r"^(0|[1-9][0-9]*)$", description="integer base units, decimal string")
Hex32 = Field(pattern=r"^[0-9a-f]{64}$", description="32 bytes, lowercase hex")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# --- attestation document (por-attestation-v1) --------------------------------------------


class TokenOut(_Model):
    symbol: str
    decimals: int
    currency: str


class BlockOut(_Model):
    number: int
    hash: str
    time: str


class ExcludedOut(_Model):
    account: str
    balance: str = AmountStr
    reason: Literal["treasury", "bridge_escrow"]


class ChainOut(_Model):
    chain_id: str = Field(description="CAIP-2 chain id")
    token: str = Field(description="CAIP-10 id of the token contract or mint")
    block: BlockOut
    total_supply: str = AmountStr
    excluded: list[ExcludedOut]
    circulating_supply: str = AmountStr
    holders: int
    budget: str | None = Field(
        default=None,
        pattern=r"^(0|[1-9][0-9]*)$",
        description="this chain's mint budget (docs/budgets.md); absent in older documents",
    )


class AllocationOut(_Model):
    rule: Literal["por-budget-v1"]
    weights: str | dict[str, int] = Field(description='"circulating" or fixed chain weights')
    headroom_share_bps: int
    cover_excluded: bool


class StatementOut(_Model):
    format: str
    id: str
    as_of: str
    sha256: str = Hex32
    # defects in fields of the statement that feed no figure; absent when there is none
    warnings: list[str] | None = None


class ReserveOut(_Model):
    custodian: str
    account: str
    asset_class: str
    instrument: str | None
    currency: str
    amount: str = AmountStr
    market_value: str = AmountStr
    haircut_bps: int
    eligible_value: str = AmountStr
    ineligible_reason: str | None
    statement: StatementOut


class LiabilitiesOut(_Model):
    root: str = Hex32
    total: str = AmountStr
    leaf_count: int


class TotalsOut(_Model):
    eligible_reserves: str = AmountStr
    circulating_supply: str = AmountStr
    ratio: str | None = Field(description="eligible/circulating, 6 places, rounded down")
    status: Literal["FULLY_BACKED", "UNDER_COLLATERALIZED", "DEGRADED"]
    reasons: list[str]


class PreviousOut(_Model):
    sequence: int
    digest: str = Hex32


class LedgerSourceOut(_Model):
    name: str
    format: str
    id: str
    as_of: str
    sha256: str = Hex32
    signed_by: str | None = Field(description="key id of the verified signature; null: hash only")
    accounts: int
    total: str


class LedgerEvidenceOut(_Model):
    account: str
    category: str
    balance: str
    evidence: dict[str, str]


class LedgerOut(_Model):
    """Off-chain liabilities (`ledger:` leaves of the sum tree), by category."""

    sources: list[LedgerSourceOut]
    categories: dict[str, str]
    total: str
    evidence: list[LedgerEvidenceOut]


class FlowTallyOut(_Model):
    matched: int
    matched_sum: str
    unmatched: int
    unmatched_sum: str


class FlowRangeOut(_Model):
    chain_id: str
    from_block: int
    to_block: int


class ReconciliationOut(_Model):
    """Mints and burns matched with bank credits and debits (por-flows-v1)."""

    rule: str
    from_: str = Field(alias="from")
    to: str
    window_s: int
    max_age_s: int
    tolerance: str | None
    chains: list[FlowRangeOut]
    statements: list[str]
    mints: FlowTallyOut
    burns: FlowTallyOut
    credits: FlowTallyOut
    debits: FlowTallyOut
    ignored: int
    overdue: int
    overdue_sum: str
    matches_sha256: str = Hex32


class PointInTimeChainOut(_Model):
    chain_id: str
    source: Literal["archive-state", "recorded-snapshot"]
    gap_s: int


class PointInTimeOut(_Model):
    requested: str
    chains: list[PointInTimeChainOut]


class AttestationDocumentOut(_Model):
    format: Literal["por-attestation-v1"]
    sequence: int
    issued_at: str
    as_of: str
    token: TokenOut
    chains: list[ChainOut]
    reserves: list[ReserveOut]
    liabilities: LiabilitiesOut
    totals: TotalsOut
    previous: PreviousOut | None
    allocation: AllocationOut | None = Field(
        default=None, description="the rule of the chains' budgets; absent in older documents"
    )
    ledger: LedgerOut | None = Field(default=None, description="off-chain liabilities")
    reconciliation: ReconciliationOut | None = Field(
        default=None, description="the flow reconciliation; its match list at /v1/reconciliation"
    )
    kind: Literal["point-in-time"] | None = Field(
        default=None, description="present only on attestations as of a past time"
    )
    point_in_time: PointInTimeOut | None = None


class SignatureOut(_Model):
    keyid: str
    sig: str = Field(description="base64 Ed25519 signature over PAE(payloadType, payload)")


class EnvelopeOut(_Model):
    payload: str = Field(description="base64 of the RFC 8785 attestation bytes")
    payloadType: str
    signatures: list[SignatureOut]


class AttestationOut(_Model):
    """One attestation: the signed envelope (verify THIS) and its decoded document."""

    sequence: int
    digest: str = Hex32
    envelope: EnvelopeOut
    attestation: AttestationDocumentOut


class AttestationSummaryOut(_Model):
    sequence: int
    kind: Literal["regular", "point-in-time"] = Field(
        description="`point-in-time`: attested as of a chosen past time (`por attest "
        "--as-of`), never the oracles' latest; charts of the running series skip it"
    )
    digest: str = Hex32
    issued_at: str
    as_of: str
    status: str
    ratio: str | None
    eligible_reserves: str = AmountStr
    circulating_supply: str = AmountStr
    liabilities_root: str = Hex32


class AttestationPageOut(_Model):
    items: list[AttestationSummaryOut] = Field(description="newest first")
    next_before: int | None = Field(
        description="pass as `before` for the next (older) page; null on the last page"
    )


# --- proofs -------------------------------------------------------------------------------


class NodeOut(_Model):
    hash: str = Hex32
    sum: str = AmountStr


class InclusionProofOut(_Model):
    """The por-mst-v1 inclusion proof exactly as DESIGN §3 defines it."""

    format: Literal["por-mst-v1"]
    account: str
    balance: str = AmountStr
    salt: str = Hex32
    index: int
    size: int
    path: list[NodeOut]
    root: NodeOut


class ProofOut(_Model):
    """A holder's proof plus the attestation it belongs to (match `root` to `liabilities`)."""

    sequence: int
    attestation_digest: str = Hex32
    liabilities: LiabilitiesOut
    proof: InclusionProofOut


# --- keys, log, oracles, health -----------------------------------------------------------


class KeyOut(_Model):
    keyid: str
    alg: Literal["ed25519"]
    public_key: str
    not_before: str | None
    not_after: str | None
    role: Literal["issuer", "auditor"]


class LogKeyOut(_Model):
    origin: str
    vkey: str = Field(description="C2SP verifier key of the log's checkpoints (type 0x01)")


class KeySetOut(_Model):
    keys: list[KeyOut]
    log: LogKeyOut | None = None
    witnesses: list[str] = Field(default=[], description="witness cosignature vkeys (0x04)")


class LogInclusionOut(_Model):
    sequence: int
    leaf_index: int
    tree_size: int
    leaf_hash: str = Hex32
    path: list[str] = Field(description="sibling hashes, bottom-up, hex (RFC 9162 §2.1.3)")
    root_hash: str = Hex32
    checkpoint: str = Field(description="the signed note of size tree_size")


class LogConsistencyOut(_Model):
    from_size: int = Field(alias="from")
    to_size: int = Field(alias="to")
    from_root: str = Hex32
    to_root: str = Hex32
    path: list[str] = Field(description="RFC 9162 §2.1.4 consistency proof, hex")


class WitnessOut(_Model):
    name: str
    vkey: str = Field(description="C2SP cosignature verifier key (type 0x04)")
    cosigned_size: int | None = Field(description="the largest checkpoint size it cosigned")
    known_size: int | None = Field(description="the size the witness last said it holds")
    failed_attempts: int
    last_error: str | None


class WitnessesOut(_Model):
    witnesses: list[WitnessOut]


class AuditorSignatureOut(_Model):
    keyid: str = Hex32
    sig: str = Field(description="base64 Ed25519 signature over PAE(payloadType, payload)")
    submitted_at: str


class AuditorSignaturesOut(_Model):
    """Auditor co-signatures over the attestation's payload, kept beside its envelope."""

    sequence: int
    signatures: list[AuditorSignatureOut]


class CosignAcceptedOut(_Model):
    sequence: int
    added: list[str] = Field(description="keyids of the auditor keys whose signatures were stored")


class OracleOut(_Model):
    chain_id: str
    contract: str
    sequence: int = Field(description="the highest attestation sequence sent to this oracle")
    tx_hash: str | None
    block_number: int | None
    status: str = Field(description="published, already_published, pending or superseded")
    updated_at: str
    error: str | None = Field(
        default=None, description="why this round is pending (or what superseded it)"
    )
    superseded_by: int | None = Field(
        default=None, description="the newer sequence the oracle took instead of this one"
    )
    pending: int = Field(default=0, description="rounds queued for this oracle")
    oldest_pending: int | None = Field(default=None, description="the oldest queued sequence")


class OraclesOut(_Model):
    oracles: list[OracleOut]


class HealthOut(_Model):
    status: Literal["ok", "degraded", "unavailable"]
    latest_sequence: int | None
    latest_issued_at: str | None = None
    age_s: int | None = None
    stale_after_s: int | None = None
    detail: str | None = None


class TriggerOut(_Model):
    sequence: int


class ExplorerOut(_Model):
    block: str | None = None
    tx: str | None = None
    address: str | None = None


class SiteOut(_Model):
    """How the public pages show the figures (`[disclosure]`)."""

    report_utc_offset: str
    holder_history: int
    chain_names: dict[str, str]
    explorers: dict[str, ExplorerOut]


class ErrorOut(_Model):
    detail: str


# --- documented error answers, for `responses=` of the routes -----------------------------

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut}}
