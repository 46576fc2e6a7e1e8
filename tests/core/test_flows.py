"""por-flows-v1 on its own: the matching rule, its determinism, and the document parts.

The anvil and LiteSVM stories are in tests/flows; here the rule is pinned on small hand
cases, and the attestation's new optional parts round-trip while older documents (without
them) keep their bytes.
"""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from por.core.attestation import (
    KIND_POINT_IN_TIME,
    Attestation,
    LedgerSection,
    PointInTime,
    PointInTimeChain,
    decode_attestation,
    verify_chain,
)
from por.core.flows import BankEntry, ChainFlow, FlowParams, reconcile, reference_tokens
from por.errors import ChainLinkError, FormatError

T = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def flow(i: int, kind: str, amount: int, at: datetime, ref: str | None = None) -> ChainFlow:
    return ChainFlow(
        id=f"eip155:1:0x{i:064x}:0",
        chain_id="eip155:1",
        kind=kind,
        block=i,
        time=at,
        amount=amount,
        reference=ref,
    )


def entry(i: int, kind: str, amount: int, day: datetime, *refs: str) -> BankEntry:
    return BankEntry(
        id=f"e{i:04d}",
        custodian="HT",
        account="****4471",
        account_ref="r1",
        kind=kind,
        booked_from=day,
        booked_to=day + DAY - timedelta(seconds=1),
        amount=amount,
        references=refs,
        statement="ab" * 32,
    )


PARAMS = FlowParams(from_time=T - 10 * DAY, to_time=T, window_s=86_400, max_age_s=2 * 86_400)


def test_a_reference_wins_over_a_nearer_amount() -> None:
    f = flow(1, "mint", 100, T - DAY, "S-1")
    near = entry(1, "credit", 100, T - DAY)  # same day, no reference
    far = entry(2, "credit", 100, T - 5 * DAY, "S-1")  # four days earlier, with S-1
    rec = reconcile([f], [near, far], PARAMS)
    assert [(m.bank, m.by) for m in rec.matches] == [("e0002", "reference")]
    assert [u.id for u in rec.unmatched()] == ["e0001"]


def test_a_reference_with_another_amount_is_no_match_and_never_falls_back() -> None:
    f = flow(1, "mint", 100, T - DAY, "S-1")
    rec = reconcile(
        [f], [entry(1, "credit", 90, T - DAY, "S-1"), entry(2, "credit", 100, T - DAY)], PARAMS
    )
    assert rec.matches == ()  # S-1 is claimed by the 90 credit: the flow waits for its money


def test_window_edges_are_inclusive_and_a_second_beyond_is_out() -> None:
    day = T - 3 * DAY
    inside = flow(1, "burn", 5, day + DAY - timedelta(seconds=1) + timedelta(seconds=86_400))
    outside = flow(2, "burn", 7, day + DAY + timedelta(seconds=86_400))
    rec = reconcile(
        [inside, outside], [entry(1, "debit", 5, day), entry(2, "debit", 7, day)], PARAMS
    )
    assert [m.chain for m in rec.matches] == [inside.id]


def test_overdue_and_tolerance_degrade_with_reasons() -> None:
    old = flow(1, "mint", 10, T - 3 * DAY)
    young = flow(2, "mint", 20, T - DAY)
    rec = reconcile([old, young], [], PARAMS)
    assert rec.overdue == (old.id,)
    assert (
        rec.reasons and "1 unmatched flow(s) older than 172800 s adding up to 10" in rec.reasons[0]
    )
    tight = dataclasses.replace(PARAMS, tolerance=25)
    assert any("above the tolerance 25" in r for r in reconcile([old, young], [], tight).reasons)
    assert reconcile([young], [], dataclasses.replace(PARAMS, tolerance=20)).reasons == ()


def test_reference_tokens_keep_references_not_names_or_dates() -> None:
    assert reference_tokens("REDEMPTION PAYOUT REF R-2025-0630-112 JOHN SMITH 2025-06-30") == (
        "R-2025-0630-112",
    )


@settings(max_examples=30, deadline=None)
@given(st.randoms(use_true_random=False))
def test_the_result_does_not_depend_on_input_order(rnd: random.Random) -> None:
    flows = [
        flow(
            i,
            rnd.choice(["mint", "burn"]),
            rnd.choice([5, 7, 9]),
            T - rnd.randint(0, 5) * DAY,
            rnd.choice([None, "S-1", "R-2"]),
        )
        for i in range(8)
    ]
    entries = [
        entry(
            i,
            rnd.choice(["credit", "debit"]),
            rnd.choice([5, 7, 9]),
            T - rnd.randint(0, 5) * DAY,
            *rnd.choice([(), ("S-1",), ("R-2",)]),
        )
        for i in range(8)
    ]
    a = reconcile(flows, entries, PARAMS).document_bytes()
    rnd.shuffle(flows)
    rnd.shuffle(entries)
    assert reconcile(flows, entries, PARAMS).document_bytes() == a


def _doc(**kw: object) -> Attestation:
    from tests.core.test_attestation import make

    return dataclasses.replace(make(), **kw)


def test_new_parts_round_trip_and_old_documents_keep_their_bytes() -> None:
    base = _doc()
    assert decode_attestation(base.to_bytes()).to_bytes() == base.to_bytes()
    assert b"ledger" not in base.to_bytes() and b"kind" not in base.to_bytes()
    pit = dataclasses.replace(
        base,
        kind=KIND_POINT_IN_TIME,
        as_of=base.issued_at - DAY,
        point_in_time=PointInTime(
            requested=base.issued_at - DAY,
            chains=(PointInTimeChain(chain_id="eip155:1", source="archive-state", gap_s=12),),
        ),
    )
    again = decode_attestation(pit.to_bytes())
    assert again == pit and b'"kind":"point-in-time"' in pit.to_bytes()
    with pytest.raises(FormatError, match="carries point_in_time"):
        dataclasses.replace(base, kind=KIND_POINT_IN_TIME)
    with pytest.raises(FormatError, match="categories must be exactly"):
        LedgerSection(sources=(), categories=(("frozen", 1),), total=1)


def test_a_point_in_time_attestation_may_look_back_but_not_ahead() -> None:
    from por.core.attestation import PreviousRef
    from tests.core.test_attestation import make

    prev = make()
    link = PreviousRef(sequence=prev.sequence, digest=prev.digest())
    past = dataclasses.replace(
        make(2, link),
        kind=KIND_POINT_IN_TIME,
        as_of=prev.as_of - 30 * DAY,
        point_in_time=PointInTime(requested=prev.as_of - 30 * DAY, chains=()),
    )
    verify_chain(prev, past)  # a month back: fine, it says so
    regular_back = dataclasses.replace(past, kind="regular", point_in_time=None)
    with pytest.raises(ChainLinkError, match="dated before"):
        verify_chain(prev, regular_back)
    ahead = dataclasses.replace(
        past,
        as_of=past.issued_at + DAY,
        point_in_time=PointInTime(requested=past.issued_at + DAY, chains=()),
    )
    with pytest.raises(ChainLinkError, match="after it was issued"):
        verify_chain(prev, ahead)
