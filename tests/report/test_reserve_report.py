"""The reserve report: periods, the end-of-day rule, the document, and `por verify`'s checks.

A store of real signed attestations spread over days (tests/report/world.py) in the Hong
Kong calendar (+08:00). The report must pick each day's end-of-day attestation by as_of
(not by sequence), say so for a day or a period without one, round-trip exactly, and
verify against the attestations it cites — and fail when a figure, a digest, a log index
or a signature is not what those attestations say.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from por.core.dsse import Ed25519Signer, Envelope, KeyEntry, KeySet, LogKey, sign_envelope
from por.core.reserve_report import (
    REPORT_PAYLOAD_TYPE,
    ReserveReport,
    decode_report,
    parse_utc_offset,
    period_containing,
    previous_period,
)
from por.core.tlog import log_verifier_key
from por.core.verify import (
    FAIL,
    PASS,
    SKIP,
    Deferred,
    LogEvidence,
    open_report_envelope,
    verify_reserve_report,
)
from por.errors import FormatError, InputError
from por.report.build import make_report, sign_report
from por.store import Store
from tests.report.world import record_at
from tests.store.factory import ISSUER, LOG_SIGNER, ORIGIN, World


def keyset() -> KeySet:
    """The issuer key and the log's key (so cited log indexes can be proved)."""
    return KeySet(
        keys=(KeyEntry.for_public_key(ISSUER.public_key_raw, role="issuer"),),
        log=LogKey(origin=ORIGIN, vkey=log_verifier_key(ORIGIN, LOG_SIGNER.public_key_raw)),
    )


HK = parse_utc_offset("+08:00")
T0 = datetime(2026, 1, 5, 1, 0, tzinfo=UTC)  # Monday 5 Jan 2026, 09:00 in Hong Kong
AFTER = datetime(2026, 1, 12, 0, 0, tzinfo=UTC)  # after the week ended (Mon 08:00 HKT)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """Attestations on Mon (two), Tue, Wed (a point-in-time one recorded later, dated
    earlier than its predecessor), Thu; none on Fri, Sat, Sun."""
    tmp = tmp_path_factory.mktemp("reports")
    s = Store.open(None, data_dir=tmp / "d", attestations_dir=tmp / "a", migrate=True)
    w = World()
    for hours, pct in ((0, 110), (10, 105), (26, 97), (55, 112), (50, 108), (75, 108)):
        record_at(s, w, T0 + timedelta(hours=hours), reserves_pct=pct)
    return s


def _envelopes(store: Store) -> dict[int, Envelope]:
    latest = store.latest_sequence() or 0
    return {n: Envelope.from_dict(store.get(n).envelope()) for n in range(1, latest + 1)}


def _evidence(store: Store) -> Any:
    def load(sequence: int) -> LogEvidence:
        inc = store.inclusion(sequence)
        return LogEvidence(
            leaf_index=inc.leaf_index,
            tree_size=inc.tree_size,
            path=inc.path,
            checkpoint=inc.checkpoint_note,
        )

    return load


def _verify(store: Store, env: Envelope, *, keys: KeySet | None = None, log: bool = True) -> Any:
    envs = _envelopes(store)
    return verify_reserve_report(
        Deferred(name="report", load=lambda: env),
        keys or keyset(),
        now=AFTER + timedelta(days=30),
        attestations=lambda n: envs[n],
        attestations_name="store",
        log=_evidence(store) if log else None,
    )


def _checks(report: Any) -> dict[str, str]:
    return {c.name: c.status for c in report.checks}


def test_periods_are_days_iso_weeks_and_months_of_the_calendar() -> None:
    week = period_containing("weekly", date(2026, 1, 7), HK)
    assert (week.label, week.first_day, week.last_day) == (
        "2026-W02",
        date(2026, 1, 5),
        date(2026, 1, 11),
    )
    # local midnight in Hong Kong is 16:00 UTC the day before
    assert week.start == datetime(2026, 1, 4, 16, tzinfo=UTC)
    assert week.end == datetime(2026, 1, 11, 16, tzinfo=UTC)
    month = period_containing("monthly", date(2024, 2, 10), HK)
    assert (month.label, month.last_day) == ("2024-02", date(2024, 2, 29))
    # ISO week 1 of 2026 begins on Monday 29 Dec 2025
    assert period_containing("weekly", date(2026, 1, 1), HK).label == "2026-W01"
    # "the last ended" at 07:00 HKT on 1 Mar is February (UTC still says 28 Feb 23:00)
    assert previous_period("daily", datetime(2026, 2, 28, 23, tzinfo=UTC), HK).label == (
        "2026-02-28"
    )
    assert previous_period("monthly", datetime(2026, 2, 28, 23, tzinfo=UTC), HK).label == (
        "2026-02"
    )
    with pytest.raises(InputError, match="UTC offset"):
        parse_utc_offset("+8")
    with pytest.raises(InputError, match="period must be one of"):
        period_containing("yearly", date(2026, 1, 1), HK)


def test_each_day_takes_its_end_of_day_attestation_by_as_of(store: Store) -> None:
    report = make_report(store, period_containing("weekly", date(2026, 1, 5), HK), now=AFTER)
    got = {d.date.isoformat(): d.figures and d.figures.attestation.sequence for d in report.days}
    # Mon: #2 (19:00 HKT) over #1 (09:00); Wed: #4 as of 16:00 HKT over #5 as of 11:00,
    # though #5 came later; Fri-Sun: none
    assert got == {
        "2026-01-05": 2,
        "2026-01-06": 3,
        "2026-01-07": 4,
        "2026-01-08": 6,
        "2026-01-09": None,
        "2026-01-10": None,
        "2026-01-11": None,
    }
    assert report.final
    s = report.summary
    assert (s.days, s.days_attested, s.days_fully_backed) == (7, 4, 3)
    assert s.lowest_ratio is not None and s.lowest_ratio.sequence == 3
    assert s.lowest_ratio.ratio.startswith("0.96") or s.lowest_ratio.ratio.startswith("0.97")
    tue = report.days[1].figures
    assert tue is not None and tue.status == "UNDER_COLLATERALIZED" and tue.headroom < 0
    stored = store.get(3)
    assert tue.attestation.digest == stored.digest
    assert tue.attestation.log_index == store.inclusion(3).leaf_index
    assert [c.chain_id for c in tue.chains] == ["eip155:1", "eip155:56"]
    assert sum(h.eligible_value for h in tue.by_asset_class) == tue.eligible_reserves
    assert sum(h.eligible_value for h in tue.by_custodian) == tue.eligible_reserves
    assert {x.sha256 for x in tue.statements} == {"ee" * 32, "dd" * 32}


def test_the_document_round_trips_and_refuses_what_does_not_add_up(store: Store) -> None:
    report = make_report(store, period_containing("monthly", date(2026, 1, 20), HK), now=AFTER)
    assert not report.final  # January had not ended on 12 Jan
    assert [d.date.day for d in report.days] == list(range(1, 13))  # the days begun
    assert decode_report(report.to_bytes()) == report
    doc = report.to_dict()
    for mutate, where in (
        (lambda d: d.update(final=True), "final"),
        (lambda d: d["summary"].update(days_attested=9), "summary"),
        (lambda d: d["days"].pop(), "days"),
        (lambda d: d["period"].update(first_day="2026-01-02"), "period"),
        (lambda d: d["days"][4].update(ratio="1.5"), "ratio"),
        (lambda d: d.update(extra=1), "unknown"),
    ):
        bad = json.loads(json.dumps(doc))
        mutate(bad)
        with pytest.raises(FormatError, match=where):
            ReserveReport.from_dict(bad)


def test_a_period_without_attestations_says_so(store: Store) -> None:
    report = make_report(store, period_containing("daily", date(2026, 1, 10), HK), now=AFTER)
    assert [d.figures for d in report.days] == [None]
    assert report.summary.days_attested == 0 and report.cited() == []
    result = _verify(store, sign_report(report, [ISSUER]))
    assert result.ok, result.table()
    assert "none was recorded in 2026-01-10" in result.table()
    with pytest.raises(InputError, match="nothing to report yet"):
        make_report(store, period_containing("daily", date(2026, 2, 1), HK), now=AFTER)


def test_por_verify_passes_a_true_report(store: Store) -> None:
    report = make_report(store, period_containing("weekly", date(2026, 1, 5), HK), now=AFTER)
    result = _verify(store, sign_report(report, [ISSUER]))
    assert result.ok, result.table()
    assert _checks(result) == {
        "format": PASS,
        "signatures": PASS,
        "attestations": PASS,
        "figures": PASS,
        "log": PASS,
    }
    assert _checks(_verify(store, sign_report(report, [ISSUER]), log=False))["log"] == SKIP


def _resigned(report: ReserveReport, mutate: Any) -> Envelope:
    """The report with one thing changed, signed again by the issuer: a report that
    verifies as a signature but whose content is not what it cites."""
    doc = report.to_dict()
    mutate(doc)
    changed = ReserveReport.from_dict(doc)
    return sign_envelope(changed.to_bytes(), REPORT_PAYLOAD_TYPE, [ISSUER])


@pytest.mark.parametrize(
    ("name", "mutate", "check", "says"),
    [
        # the issuer overstates Tuesday's reserves by one base unit in a group
        (
            "a figure",
            lambda d: d["days"][1]["reserves_by_asset_class"][0].update(
                eligible_value=str(
                    int(d["days"][1]["reserves_by_asset_class"][0]["eligible_value"]) + 1
                )
            ),
            "figures",
            "reserves_by_asset_class[0].eligible_value",
        ),
        # a chain's supply at another block
        (
            "a block",
            lambda d: d["days"][0]["chains"][0]["block"].update(number=1),
            "figures",
            "block.number",
        ),
        # Monday's figures attributed to another attestation's digest
        (
            "a digest",
            lambda d: d["days"][0]["attestation"].update(digest="ab" * 32),
            "attestations",
            "digest",
        ),
        # a log index that is not the attestation's leaf
        (
            "a log index",
            lambda d: d["days"][2]["attestation"].update(log_index=0),
            "log",
            "log leaf 3",
        ),
    ],
)
def test_por_verify_fails_a_report_that_disagrees_with_its_attestations(
    store: Store, name: str, mutate: Any, check: str, says: str
) -> None:
    report = make_report(store, period_containing("weekly", date(2026, 1, 5), HK), now=AFTER)

    result = _verify(store, _resigned(report, mutate))
    assert not result.ok, name
    failed = {c.name: c.detail for c in result.checks if c.status == FAIL}
    assert check in failed, (name, result.table())
    assert says in failed[check], (name, failed[check])


def test_por_verify_fails_a_report_signed_by_another_key(store: Store) -> None:
    report = make_report(store, period_containing("daily", date(2026, 1, 6), HK), now=AFTER)
    stranger = Ed25519Signer(b"\x07" * 32)
    result = _verify(store, sign_report(report, [stranger]))
    assert _checks(result)["signatures"] == FAIL and not result.ok
    # an attestation envelope is not a report, and a report is not an attestation
    att_env = _envelopes(store)[1]
    result = _verify(store, att_env)
    assert _checks(result)["format"] == FAIL
    with pytest.raises(FormatError, match="payloadType"):
        open_report_envelope(att_env, keyset(), now=AFTER)


def test_por_verify_fails_when_a_cited_attestation_cannot_be_read(store: Store) -> None:
    report = make_report(store, period_containing("daily", date(2026, 1, 6), HK), now=AFTER)
    env = sign_report(report, [ISSUER])
    envs = _envelopes(store)
    del envs[3]

    def read(n: int) -> Envelope:
        if n not in envs:
            raise InputError("not found", where=f"{n:08d}.dsse.json")
        return envs[n]

    result = verify_reserve_report(
        Deferred(name="r", load=lambda: env),
        keyset(),
        now=AFTER,
        attestations=read,
        attestations_name="dir",
    )
    status = _checks(result)
    assert status["attestations"] == FAIL and status["figures"] == FAIL


def test_a_report_is_judged_at_its_generated_at_against_key_windows(store: Store) -> None:
    report = make_report(store, period_containing("daily", date(2026, 1, 6), HK), now=AFTER)
    env = sign_report(report, [ISSUER])
    expired = KeySet(
        keys=(
            KeyEntry.for_public_key(
                ISSUER.public_key_raw, role="issuer", not_after=AFTER - timedelta(days=1)
            ),
        )
    )
    result = _verify(store, env, keys=expired)
    assert _checks(result)["signatures"] == FAIL
    # a report claiming a generated_at beyond now + 5 min is refused before anything else
    future = replace(report, generated_at=AFTER + timedelta(days=400))
    result = verify_reserve_report(
        Deferred(name="r", load=lambda: sign_report(future, [ISSUER])),
        keyset(),
        now=AFTER,
        attestations=lambda n: _envelopes(store)[n],
        attestations_name="store",
    )
    assert "future" in {c.name: c.detail for c in result.checks}["signatures"]


def test_reports_are_deterministic_for_the_same_inputs(store: Store, tmp_path: Path) -> None:
    period = period_containing("weekly", date(2026, 1, 5), HK)
    a = make_report(store, period, now=AFTER)
    b = make_report(store, period, now=AFTER)
    assert a.to_bytes() == b.to_bytes()
    assert sign_report(a, [ISSUER]).to_json_bytes() == sign_report(b, [ISSUER]).to_json_bytes()
