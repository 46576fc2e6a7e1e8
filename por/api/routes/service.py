"""`/healthz` and `/metrics`: is this instance able to answer, and what it has served.

`LatestAttestationCollector` adds the latest attestation's sequence, ratio and status to
the app's Prometheus registry, read from the store at scrape time (so every instance
reports the same).
"""

from collections.abc import Iterator

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from por.api import schemas
from por.api.deps import StateDep, StoreDep
from por.api.http import NO_STORE
from por.errors import PorError
from por.store import Store

router = APIRouter(tags=["service"])


class LatestAttestationCollector(Collector):
    """Reads the latest attestation at scrape time (so every instance reports the same)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            latest = self._store.latest()
        except PorError:
            return
        seq = GaugeMetricFamily("por_latest_sequence", "Sequence of the latest attestation")
        seq.add_metric([], 0 if latest is None else latest.sequence)
        yield seq
        if latest is None:
            return
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
def healthz(store: StoreDep) -> JSONResponse:
    """200 when the store answers, 503 otherwise."""
    headers = {"Cache-Control": NO_STORE}
    try:
        store.ping()
        seq = store.latest_sequence()
    except PorError as e:
        return JSONResponse(
            {"status": "unavailable", "latest_sequence": None, "detail": str(e)},
            status_code=503,
            headers=headers,
        )
    return JSONResponse({"status": "ok", "latest_sequence": seq, "detail": None}, headers=headers)


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
