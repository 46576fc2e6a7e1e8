"""The hot path reads no database: the latest sequence is held in memory, updated at once
by this process's recorder and re-read at most every `head_max_age_s` for records made by
another process (here: a second Store over the same database, as a scheduler process is)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from por.api.routes import attestations, proofs
from por.store import Store
from tests.api.conftest import Api


def count_calls(monkeypatch: pytest.MonkeyPatch, store: Store, name: str) -> list[int]:
    calls: list[int] = []
    real = getattr(store, name)

    def counted(*a: Any, **k: Any) -> Any:
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(store, name, counted)
    return calls


def test_latest_and_proofs_do_not_touch_the_database(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = next(iter(api.world.holders))
    state = api.client.app.state.por  # type: ignore[attr-defined]
    assert state.warmed.wait(30)  # the startup thread has loaded the body and the tree
    assert api.store.cached_tree(3) is not None
    state.buckets = None  # no rate limit here
    assert api.client.get("/v1/attestations/latest").status_code == 200
    assert api.client.get(f"/v1/proofs/{account}").status_code == 200
    heads = count_calls(monkeypatch, api.store, "latest_regular_sequence")
    gets = count_calls(monkeypatch, api.store, "get")
    trees = count_calls(monkeypatch, api.store, "tree")
    for _ in range(3):
        assert api.client.get("/v1/attestations/latest").json()["sequence"] == 3
        assert api.client.get(f"/v1/proofs/{account}").json()["sequence"] == 3
    assert (heads, gets, trees) == ([], [], [])
    api.clock.now += 0.3  # older than head_max_age_s (0.25 s): asked once more
    assert api.client.get("/v1/attestations/latest").json()["sequence"] == 3
    assert len(heads) == 1 and gets == []


def test_a_record_in_this_process_is_served_at_once(api: Api) -> None:
    assert api.client.get("/v1/attestations/latest").json()["sequence"] == 3
    api.world.record(api.store)  # same Store object: its listener updates the head
    assert api.client.get("/v1/attestations/latest").json()["sequence"] == 4


def test_a_record_by_another_process_is_served_within_the_max_age(api: Api, tmp_path: Path) -> None:
    assert api.client.get("/v1/attestations/latest").json()["sequence"] == 3
    other = Store.open(None, data_dir=tmp_path / "data", attestations_dir=tmp_path / "att")
    try:
        built = api.world.record(other)
    finally:
        other.close()
    assert api.client.get("/v1/attestations/latest").json()["sequence"] == 3  # not yet asked
    api.clock.now += 0.3
    r = api.client.get("/v1/attestations/latest")
    assert r.json()["sequence"] == 4 and r.headers["etag"] == f'"{built.attestation.digest()}"'
    account = next(iter(api.world.holders))
    assert api.client.get(f"/v1/proofs/{account}").json()["sequence"] == 4


def test_hot_handlers_are_coroutines() -> None:
    import inspect

    for fn in (attestations.latest_attestation, attestations.attestation, proofs.proof):
        assert inspect.iscoroutinefunction(fn), fn.__name__


def _answer(r: Any) -> tuple[int, bytes, dict[str, str]]:
    headers = {k: v for k, v in r.headers.items() if k not in ("date", "server")}
    return r.status_code, r.content, headers


def test_fast_path_answers_exactly_as_the_routes(api: Api) -> None:
    """por.api.fast serves latest and proofs without FastAPI; `?_=1` (a query string)
    sends the same request through the FastAPI route. Both must answer byte for byte."""
    c = api.client
    account = sorted(api.world.holders)[5]
    api.clock.now += 100  # a full bucket: 3 proofs
    c.get("/v1/attestations/latest")  # load the head, the body and the tree
    c.get(f"/v1/proofs/{account}")
    api.clock.now += 100
    cases = ["/v1/attestations/latest", f"/v1/proofs/{account}", "/v1/proofs/eip155:1:0xnobody"]
    for path in cases:
        fast = _answer(c.get(path))
        api.clock.now += 100
        slow = _answer(c.get(path + "?_=1"))
        api.clock.now += 100
        assert fast == slow, path
        etag = fast[2].get("etag")
        if etag:  # conditional requests too
            fast304 = _answer(c.get(path, headers={"If-None-Match": etag}))
            api.clock.now += 100
            slow304 = _answer(c.get(path + "?_=1", headers={"If-None-Match": etag}))
            api.clock.now += 100
            assert fast304 == slow304 and fast304[0] == 304
    # the rate limit: the fast path takes from the same buckets and answers the same 429
    answers = [c.get(f"/v1/proofs/{account}") for _ in range(4)]
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    routed = c.get(f"/v1/proofs/{account}?_=1")
    assert routed.status_code == 429 and answers[-1].json() == routed.json()
    assert answers[-1].headers["retry-after"] == routed.headers["retry-after"]
    metrics = c.get("/metrics").text
    assert 'route="/v1/proofs/{account}",status="429"' in metrics
    assert 'route="/v1/attestations/latest",status="304"' in metrics
