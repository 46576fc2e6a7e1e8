"""`/healthz` and `/metrics`: is this instance able to answer, and what it has served.

`LatestAttestationCollector` adds the latest attestation's sequence, ratio and status to
the app's Prometheus registry, read from the store at scrape time (so every instance
reports the same).
"""

from collections.abc import Callable, Iterator
from datetime import datetime

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from por.api import schemas
from por.api.deps import StateDep, StoreDep
from por.api.http import NO_STORE
from por.core.times import format_time, parse_time
from por.errors import PorError
from por.store import Store
from por.store.integrity import IntegrityChecker, TamperedRowError

router = APIRouter(tags=["service"])


class LatestAttestationCollector(Collector):
    """Reads the latest attestation at scrape time (so every instance reports the same)."""

    def __init__(
        self,
        store: Store,
        wall_clock: Callable[[], datetime],
        integrity: IntegrityChecker | None = None,
    ) -> None:
        self._store = store
        self._wall_clock = wall_clock
        self._integrity = integrity or IntegrityChecker(None)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            latest = self._store.latest_regular()  # a point-in-time one is not current
        except PorError:
            return
        seq = GaugeMetricFamily("por_latest_sequence", "Sequence of the latest attestation")
        seq.add_metric([], 0 if latest is None else latest.sequence)
        yield seq
        if latest is None:
            return
        ok = GaugeMetricFamily(
            "por_latest_attestation_verified",
            "1 when the latest stored attestation is what its envelope signs; 0: its "
            "figures are withheld (por.store.integrity)",
        )
        try:
            self._integrity.check(latest)  # figures only from what was signed
        except TamperedRowError:
            ok.add_metric([], 0.0)
            yield ok
            return
        ok.add_metric([], 1.0)
        yield ok
        issued = latest.attestation.issued_at.timestamp()
        ts = GaugeMetricFamily(
            "por_latest_attestation_timestamp_seconds", "issued_at of the latest attestation"
        )
        ts.add_metric([], issued)
        yield ts
        age = GaugeMetricFamily(
            "por_attestation_age_seconds", "Seconds since the latest attestation was issued"
        )
        age.add_metric([], max(0.0, self._wall_clock().timestamp() - issued))
        yield age
        # Prometheus only has floats; the ratio here is for graphs and alerts, the signed
        # document keeps the exact decimal string.
        if latest.ratio is not None:
            ratio = GaugeMetricFamily(
                "por_reserve_ratio", "Eligible reserves / circulating supply (latest)"
            )
            ratio.add_metric([], float(latest.ratio))
            yield ratio
        status = GaugeMetricFamily(
            "por_status", "1 for the latest attestation's status", labels=["status"]
        )
        for s in ("FULLY_BACKED", "UNDER_COLLATERALIZED", "DEGRADED"):
            status.add_metric([s], 1.0 if latest.status == s else 0.0)
        yield status


@router.get(
    "/healthz",
    response_model=schemas.HealthOut,
    responses={503: {"model": schemas.HealthOut}},
)
def healthz(store: StoreDep, state: StateDep) -> JSONResponse:
    """200 `ok`; 503 `degraded` when the latest attestation is older than K intervals (or
    none was recorded within K intervals of start); 503 `unavailable` when the store fails."""
    headers = {"Cache-Control": NO_STORE}
    try:
        store.ping()
        latest = store.latest_issued()
        if latest is not None:  # its age as signed: the row is checked against its envelope
            latest = (
                latest[0],
                parse_time(state.rendered.get(latest[0]).issued_at, where="issued_at"),
            )
    except PorError as e:
        return JSONResponse(
            {"status": "unavailable", "latest_sequence": None, "detail": str(e)},
            status_code=503,
            headers=headers,
        )
    seq, issued = (None, None) if latest is None else latest
    body: dict[str, object] = {
        "status": "ok",
        "latest_sequence": seq,
        "latest_issued_at": None if issued is None else format_time(issued),
        "age_s": None,
        "stale_after_s": None,
        "detail": None,
    }
    limit = state.deps.stale_after_s
    now = state.deps.wall_clock()
    age = (now - (issued or state.started_at)).total_seconds()
    if issued is not None:
        body["age_s"] = int(age)
    if limit is None:
        return JSONResponse(body, headers=headers)
    body["stale_after_s"] = int(limit)
    if age > limit:
        body["status"] = "degraded"
        body["detail"] = (
            f"the latest attestation (#{seq}) is {int(age)} s old, more than {int(limit)} s"
            if seq is not None
            else f"no attestation recorded in the {int(age)} s since start (limit {int(limit)} s)"
        )
        return JSONResponse(body, status_code=503, headers=headers)
    return JSONResponse(body, headers=headers)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
def prometheus(state: StateDep) -> Response:
    """Prometheus metrics of this instance."""
    return Response(
        generate_latest(state.metrics.registry),
        media_type="text/plain; version=0.0.4; charset=utf-8",
        headers={"Cache-Control": NO_STORE},
    )
