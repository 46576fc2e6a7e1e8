"""Rate limits under abuse: who the client is behind a proxy, costs, bounded state, Redis.

Issue 12 §6. Each attack in a few lines:

- one abuser behind a reverse proxy on another address used up the budget of every
  client (the proxy's address was the key);
- from loopback, a new `X-Forwarded-For` per request was a new client each time (uvicorn
  believed the header of any loopback peer), so the limit never bit;
- `?limit=1000` history pages were free, and so were proofs of old attestations, each
  loading a tree;
- the per-client table was pruned only on a refusal: a million addresses that each
  came once stayed in memory.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from por.api import ApiDeps, RateLimit, create_app
from por.api.limits import (
    ExpensiveGate,
    RedisBuckets,
    TokenBuckets,
    TrustedProxies,
    client_key,
)
from por.store import Store
from tests.api.servers import serve_production
from tests.store.factory import World, keyset

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[Store, World]]:
    s = Store.open(
        None, data_dir=tmp_path / "data", attestations_dir=tmp_path / "att", migrate=True
    )
    world = World()
    for _ in range(3):
        world.record(s)
    yield s, world
    s.close()


def _app(store: Store, **kw: Any) -> Any:
    kw.setdefault("proof_rate_limit", RateLimit(burst=3, per_second=0.001))
    return create_app(ApiDeps(store=store, keys=keyset().to_dict(), warm_up=False, **kw))


# --- who the client is --------------------------------------------------------------------


def test_client_key_is_the_rightmost_untrusted_hop() -> None:
    proxies = TrustedProxies.parse(["10.0.0.0/8", "192.0.2.7"])
    # untrusted peer: its header is its own claim
    assert client_key("198.51.100.9", ["1.2.3.4"], proxies) == "198.51.100.9"
    # trusted peer: the client is the address the proxy saw; whatever the client wrote
    # to the left of it is ignored
    assert client_key("10.1.2.3", ["6.6.6.6, 203.0.113.5"], proxies) == "203.0.113.5"
    # two trusted hops (a CDN then a load balancer), the header split over two lines
    assert client_key("10.1.2.3", ["6.6.6.6, 203.0.113.5", "192.0.2.7"], proxies) == "203.0.113.5"
    # a trusted peer without the header is itself the client
    assert client_key("10.1.2.3", [], proxies) == "10.1.2.3"
    # garbage where a proxy should have written an address: the last trusted hop
    assert client_key("10.1.2.3", ["nonsense"], proxies) == "10.1.2.3"
    # IPv6 clients are keyed by their /64; IPv4-mapped addresses as IPv4
    assert client_key("2001:db8:1:2::5", [], proxies) == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:2:ffff::9", [], proxies) == "2001:db8:1:2::/64"
    assert client_key("::ffff:198.51.100.9", [], proxies) == "198.51.100.9"


def test_rotating_forwarded_for_from_loopback_does_not_bypass_the_limit(
    store: tuple[Store, World],
) -> None:
    s, world = store
    acct = next(iter(world.holders))
    with serve_production(_app(s)) as url, httpx.Client(base_url=url) as c:
        codes = [
            c.get(f"/v1/proofs/{acct}", headers={"X-Forwarded-For": f"203.0.113.{i}"}).status_code
            for i in range(6)
        ]
    assert codes == [200, 200, 200, 429, 429, 429]


def test_behind_a_trusted_proxy_each_client_has_its_own_budget(
    store: tuple[Store, World],
) -> None:
    s, world = store
    acct = next(iter(world.holders))
    app = _app(s, trusted_proxies=["127.0.0.1"])
    with serve_production(app) as url, httpx.Client(base_url=url) as c:

        def get(chain: str) -> int:
            return c.get(f"/v1/proofs/{acct}", headers={"X-Forwarded-For": chain}).status_code

        # the abuser rotates the part of the header it controls: one key all the same
        abuser = [get(f"10.9.9.{i}, 198.51.100.66") for i in range(5)]
        assert abuser == [200, 200, 200, 429, 429]
        # every other client behind the same proxy is unaffected
        assert [get("203.0.113.5") for _ in range(3)] == [200, 200, 200]
        assert get("203.0.113.6") == 200


# --- costs --------------------------------------------------------------------------------


def test_history_pages_are_capped_and_cost_by_size(store: tuple[Store, World]) -> None:
    s, _ = store
    app = _app(s, history_rate_limit=RateLimit(burst=10, per_second=0.001), history_max_limit=100)
    with TestClient(app) as c:
        codes = [c.get("/v1/attestations", params={"limit": 1000}).status_code for _ in range(4)]
        # 1000 is cut to 100 = 5 tokens: two pages out of a burst of 10
        assert codes == [200, 200, 429, 429]
        r = c.get("/v1/attestations", params={"limit": 1000})
        assert int(r.headers["retry-after"]) >= 1


def test_proofs_of_old_attestations_cost_a_tree_load(store: tuple[Store, World]) -> None:
    s, world = store
    acct = next(iter(world.holders))
    app = _app(s, proof_rate_limit=RateLimit(burst=21, per_second=0.001))
    with TestClient(app) as c:
        assert c.get(f"/v1/proofs/{acct}", params={"sequence": 1}).status_code == 200  # 10
        assert c.get(f"/v1/proofs/{acct}", params={"sequence": 1}).status_code == 200  # 1
        assert c.get(f"/v1/proofs/{acct}", params={"sequence": 2}).status_code == 200  # 10 -> empty
        assert c.get(f"/v1/proofs/{acct}", params={"sequence": 3}).status_code == 429


def test_costly_requests_beyond_the_limit_are_answered_503_at_once(
    store: tuple[Store, World],
) -> None:
    s, _ = store
    app = _app(s, max_expensive_requests=1)
    with TestClient(app) as c:
        gate: ExpensiveGate = app.state.por.expensive
        with gate.slot(RuntimeError):  # a slow tree load or report holds the only slot
            r = c.get("/v1/attestations")
            assert r.status_code == 503 and r.headers["retry-after"] == "1"
            assert c.get("/v1/attestations/latest").status_code == 200  # cheap: not gated
        assert c.get("/v1/attestations").status_code == 200


# --- bounded state ------------------------------------------------------------------------


def test_per_client_state_is_bounded_in_time_and_memory() -> None:
    now = [0.0]
    limit = RateLimit(burst=2, per_second=1.0)  # full again after 2 s
    buckets = TokenBuckets(limit, lambda: now[0], max_clients=1000)
    for i in range(20_000):  # each address comes once and is served
        assert buckets.take(f"198.51.{i // 256}.{i % 256}") == 0.0
    assert len(buckets) == 1000  # the fixed maximum, not 20,000
    now[0] = 10.0  # every bucket refilled: each later request drops a few old ones
    for i in range(300):
        buckets.take(f"203.0.113.{i % 50}")
    assert len(buckets) <= 1000 - 300 * (TokenBuckets.PRUNE_PER_TAKE - 1) + 50


# --- Redis: one budget over replicas ------------------------------------------------------


def _redis() -> Any:
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=1)
    try:
        client.ping()
    except redis.RedisError:
        pytest.skip("no Redis at 127.0.0.1:6379")
    return client


def test_replicas_share_a_client_budget_through_redis(store: tuple[Store, World]) -> None:
    client = _redis()
    prefix = f"por-test:{uuid.uuid4().hex}:"
    s, world = store
    acct = next(iter(world.holders))
    kw = {"rate_limit_redis_url": REDIS_URL, "rate_limit_key_prefix": prefix}
    try:
        with TestClient(_app(s, **kw)) as one, TestClient(_app(s, **kw)) as two:
            codes = [
                (one if i % 2 else two).get(f"/v1/proofs/{acct}").status_code for i in range(5)
            ]
        assert codes == [200, 200, 200, 429, 429]  # a burst of 3 over both replicas
        keys = client.keys(f"{prefix}*")
        assert keys and all(0 < client.pttl(k) <= 3_001_000 for k in keys)  # state expires
    finally:
        for k in client.scan_iter(f"{prefix}*"):
            client.delete(k)


def test_redis_down_falls_back_to_this_process() -> None:
    now = [0.0]
    limit = RateLimit(burst=2, per_second=0.001)
    local = TokenBuckets(limit, lambda: now[0])
    # a port nobody listens on: Redis "down"
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    dead = probe.getsockname()[1]
    probe.close()
    buckets = RedisBuckets(
        limit, url=f"redis://127.0.0.1:{dead}/0", prefix="x:", fallback=local, timeout_s=0.2
    )
    assert [buckets.take("a") > 0 for _ in range(3)] == [False, False, True]
    buckets.close()
