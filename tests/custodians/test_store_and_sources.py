"""Raw store (write-once, content-addressed), file/fake sources and evaluate_reserves."""

from __future__ import annotations

import hashlib
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from por.core.policy import Policy
from por.custodians.base import CustodianReport, CustodianSource, RawDocument
from por.custodians.files import FileSource, parse_document
from por.custodians.model import Holding, Statement, StatementParseError
from por.custodians.rawstore import RawStore
from por.custodians.reserves import evaluate_reserves
from por.demo.fake_custodian import InMemorySource
from por.errors import FormatError, StoreError
from tests.custodians.conftest import DATA, HT, sample

SAMPLES = [
    "harbour_trust_camt053_v08.xml",
    "harbour_trust_camt053_v02.xml",
    "harbour_trust_camt052_v08.xml",
    "harbour_trust_mt940.txt",
    "harbour_trust_holdings.csv",
    "harbour_trust_holdings.json",
]
AS_OF = datetime(2025, 7, 1, 1, tzinfo=UTC)


def test_rawstore_put_get_layout_and_idempotence(tmp_path: Path) -> None:
    store = RawStore(tmp_path)
    raw = sample("harbour_trust_mt940.txt")
    sha = store.put(raw)
    assert sha == hashlib.sha256(raw).hexdigest()
    assert (tmp_path / sha[:2] / sha).read_bytes() == raw
    mtime = (tmp_path / sha[:2] / sha).stat().st_mtime_ns
    assert store.put(raw) == sha and (tmp_path / sha[:2] / sha).stat().st_mtime_ns == mtime
    assert store.get(sha) == raw and sha in store
    assert not [p for p in (tmp_path / sha[:2]).iterdir() if p.name.startswith(".tmp")]


def test_rawstore_never_overwrites_and_detects_corruption(tmp_path: Path) -> None:
    store = RawStore(tmp_path)
    sha = store.put(b"statement")
    path = tmp_path / sha[:2] / sha
    path.write_bytes(b"tampered")
    with pytest.raises(StoreError, match="refusing to overwrite"):
        store.put(b"statement")
    assert path.read_bytes() == b"tampered"  # left as found, for the investigation
    with pytest.raises(StoreError, match="corrupt"):
        store.get(sha)
    with pytest.raises(StoreError, match="no raw document"):
        store.get("0" * 64)
    with pytest.raises(StoreError, match="SHA-256"):
        store.get("../etc/passwd")


def test_raw_document_hash_checked() -> None:
    with pytest.raises(FormatError, match="hash mismatch"):
        RawDocument(sha256="0" * 64, format="mt940", name="x", data=b"x")


def test_report_refuses_untraceable_statements() -> None:
    (st,) = parse_document(sample("harbour_trust_camt053_v02.xml"), name="x")[0]
    with pytest.raises(FormatError, match="raw document"):
        CustodianReport(custodian="HT", statements=(st,))


def test_file_source_parses_all_then_stores(tmp_path: Path) -> None:
    store = RawStore(tmp_path / "raw")
    src = FileSource(
        name="htbk", paths=[str(DATA / "harbour_trust_*")], custodian=None, rawstore=store
    )
    # MT940 names no custodian: the file source needs one configured for it
    with pytest.raises(StatementParseError, match="configure one"):
        src.fetch(AS_OF)
    assert not (tmp_path / "raw").exists()  # nothing stored from a failed fetch
    src = FileSource(
        name="htbk", paths=[str(DATA / "harbour_trust_*")], custodian=HT, rawstore=store
    )
    assert isinstance(src, CustodianSource)
    report = src.fetch(AS_OF)
    assert len(report.raw_documents) == 6 and len(report.statements) == 8
    assert len(report.holdings) == 8
    for d in report.raw_documents:
        assert store.get(d.sha256) == d.data


def test_bad_file_names_file_and_nothing_is_used(tmp_path: Path) -> None:
    for name in SAMPLES[:2]:
        shutil.copy(DATA / name, tmp_path / name)
    bad = sample("harbour_trust_camt053_v08.xml").replace(
        b"<CdtDbtInd>CRDT</CdtDbtInd>", b"<CdtDbtInd>X</CdtDbtInd>", 1
    )
    (tmp_path / "zz_bad.xml").write_bytes(bad)
    store = RawStore(tmp_path / "raw")
    src = FileSource(name="htbk", paths=[str(tmp_path / "*.xml")], rawstore=store)
    with pytest.raises(StatementParseError) as ei:
        src.fetch(AS_OF)
    assert str(tmp_path / "zz_bad.xml") in str(ei.value) and "/Stmt[1]/Bal[1]/CdtDbtInd" in str(
        ei.value
    )
    assert not (tmp_path / "raw").exists()
    lenient = FileSource(
        name="htbk", paths=[str(tmp_path / "*.xml")], rawstore=store, on_error="skip"
    )
    report = lenient.fetch(AS_OF)
    assert len(report.raw_documents) == 2 and "zz_bad.xml" in report.problems[0]
    _, _, degraded = evaluate_reserves(
        [report], Policy(), token_currency="CNH", token_decimals=6, as_of=AS_OF
    )
    assert any("skipped unusable file" in r for r in degraded)


def test_in_memory_source_and_evaluate_reserves_dedupes_accounts() -> None:
    src = InMemorySource.from_documents(
        name="htbk", documents=[(n, sample(n)) for n in SAMPLES], custodian=HT
    )
    assert isinstance(src, CustodianSource)
    lines, total, degraded = evaluate_reserves(
        [src.fetch(AS_OF)],
        Policy.from_dict({"fx_rates": {"USD": "7.1834"}}),
        token_currency="CNH",
        token_decimals=6,
        as_of=AS_OF,
    )
    assert degraded == []
    cash = [line for line in lines if line.asset_class == "cash"]
    counted = [line for line in cash if line.eligible_value]
    # 4471 and 5512 are in camt.053 (16:00Z), camt.052 (06:00Z) and MT940 (16:00Z): once each
    assert sorted(line.account[-4:] for line in counted) == ["4471", "4489", "5512", "7731"]
    superseded = [line for line in cash if "superseded" in (line.ineligible_reason or "")]
    assert len(superseded) == 4
    assert total == sum(line.eligible_value for line in lines)
    assert all(
        line.to_dict()["statement"]["sha256"] in {d.sha256 for d in src.report.raw_documents}
        for line in lines
    )


def test_conflicting_statements_and_staleness_degrade() -> None:
    mt = sample("harbour_trust_mt940.txt").replace(
        b":62F:C250630CNH415008117,35", b":62F:C250630CNH415008117,36"
    )
    src = InMemorySource.from_documents(
        name="htbk",
        documents=[("a.xml", sample(SAMPLES[0])), ("b.sta", mt)],
        custodian=HT,
        max_age_s=3600,
    )
    _, _, degraded = evaluate_reserves(
        [src.fetch(AS_OF)], Policy(), token_currency="CNH", token_decimals=6, as_of=AS_OF
    )
    assert any(r.startswith("conflicting statements") for r in degraded)
    assert any(r.startswith("stale:") and "maximum 3600 s" in r for r in degraded)


def test_model_round_trips() -> None:
    sts, hs, _ = parse_document(sample("harbour_trust_camt053_v08.xml"), name="x")
    for s in sts:
        assert Statement.from_dict(s.to_dict()) == s
    _, hs, _ = parse_document(sample("harbour_trust_holdings.csv"), name="h")
    for h in hs:
        assert Holding.from_dict(h.to_dict()) == h


def test_rawstore_put_is_atomic_under_concurrent_writers(tmp_path: Path) -> None:
    # two stores racing on the same content end with one intact file
    import threading

    data = os.urandom(1 << 16)
    errors: list[Exception] = []

    def put() -> None:
        try:
            RawStore(tmp_path).put(data)
        except Exception as e:
            errors.append(e)

    ts = [threading.Thread(target=put) for _ in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    sha = hashlib.sha256(data).hexdigest()
    assert not errors and RawStore(tmp_path).get(sha) == data


def test_demo_samples_shift_dates_and_stay_fresh() -> None:
    from datetime import date, timedelta

    from por.demo import statements as demo

    docs = demo.sample_documents(date(2026, 1, 15))
    src = InMemorySource.from_documents(name="htbk", documents=docs, custodian=HT)
    now = datetime(2026, 1, 16, 1, tzinfo=UTC)
    _lines, total, degraded = evaluate_reserves(
        [src.fetch(now)], Policy(), token_currency="CNH", token_decimals=6, as_of=now
    )
    assert degraded == [] and total > 0
    assert {s.as_of.date() for s in src.report.statements} <= {date(2026, 1, 15)}
    mt = demo.shift_dates(sample("harbour_trust_mt940.txt"), timedelta(days=1))
    assert b":62F:C250701CNH415008117,35" in mt


def test_public_api_complete() -> None:
    import por.custodians as pkg

    for name in pkg.__all__:
        assert getattr(pkg, name) is not None
