"""Who a request comes from, how much it may ask for, and how many costly answers run at once.

- `TrustedProxies` and `client_key`: the client is the TCP peer, unless the peer is a
  configured trusted proxy; then `X-Forwarded-For` is read from the right and the first
  address that is not a trusted proxy is the client (every hop to its left was written by
  someone we do not trust, so it is ignored). A client on IPv6 is keyed by its /64, the
  block one subscriber usually holds.
- `RateLimit`, `TokenBuckets` (this process) and `RedisBuckets` (shared by every replica
  through Redis): a token bucket per client key. A request takes `cost` tokens: a page of
  history or a proof that makes the server load a tree costs more than a proof answered
  from memory. `take` returns 0 or the seconds to wait (429 Retry-After). The per-client
  state is bounded in time and memory: a bucket idle long enough to be full again is the
  same as no bucket and is dropped as requests go by (a few per request, oldest first),
  and a fixed maximum of entries evicts the least recently used. In Redis every bucket
  carries a TTL of its refill time.
- `ExpensiveGate`: at most N costly requests (tree loads, history pages, reports) at once
  per process; the N+1st is answered 503 with Retry-After at once rather than queued.

No route, no app state; Redis is the only I/O (RedisBuckets).
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from por.errors import ConfigError, InputError

log = logging.getLogger("por.api.limits")

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


# --- who the client is --------------------------------------------------------------------


def _parse_ip(text: str) -> IpAddress | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[v6]:port" (RFC 7239 style)
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # "v4:port"
        text = text.split(":", 1)[0]
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


@dataclass(frozen=True, slots=True)
class TrustedProxies:
    """The reverse proxies whose `X-Forwarded-For` is believed (addresses or CIDR blocks)."""

    networks: tuple[IpNetwork, ...] = ()

    @classmethod
    def parse(cls, items: Iterable[str], *, where: str = "trusted_proxies") -> TrustedProxies:
        nets: list[IpNetwork] = []
        for i, item in enumerate(items):
            try:
                nets.append(ipaddress.ip_network(item.strip(), strict=False))
            except ValueError as e:
                raise ConfigError(
                    f"not an IP address or CIDR block: {item!r}", where=f"{where}[{i}]"
                ) from e
        return cls(tuple(nets))

    def __contains__(self, addr: IpAddress) -> bool:
        return any(addr.version == n.version and addr in n for n in self.networks)


def _key(addr: IpAddress) -> str:
    if isinstance(addr, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((addr, 64), strict=False))
    return str(addr)


def client_key(peer: str | None, forwarded_for: Sequence[str], trusted: TrustedProxies) -> str:
    """The rate-limit key of a request from `peer` carrying these X-Forwarded-For values."""
    addr = None if peer is None else _parse_ip(peer)
    if addr is None:
        return peer or "unknown"  # a unix socket, a test client: one key for all of them
    if addr not in trusted:
        return _key(addr)  # a header from an untrusted peer is the client's own claim
    hops = [h for value in forwarded_for for h in value.split(",") if h.strip()]
    for hop in reversed(hops):  # RFC 7239 §5.2: each proxy appends the address it saw
        parsed = _parse_ip(hop)
        if parsed is None:
            break  # garbage: the last address we could trust is the best we know
        addr = parsed
        if addr not in trusted:
            break
    return _key(addr)


def scope_client_key(scope: Any, trusted: TrustedProxies) -> str:
    """`client_key` of an ASGI HTTP scope."""
    client = scope.get("client")
    peer = client[0] if client else None
    if not trusted.networks:
        return client_key(peer, (), trusted)
    xff = [v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"x-forwarded-for"]
    return client_key(peer, xff, trusted)


# --- token buckets ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimit:
    """Token bucket per client: `burst` tokens at once, `per_second` refill."""

    burst: int = 20
    per_second: float = 5.0

    def __post_init__(self) -> None:
        if self.burst < 1 or not self.per_second > 0:
            raise InputError("rate limit needs burst >= 1 and per_second > 0", where="rate_limit")

    @property
    def refill_s(self) -> float:
        """Seconds for an empty bucket to be full again (after that it is forgotten)."""
        return self.burst / self.per_second


class Buckets(Protocol):
    def take(self, key: str, cost: int = 1) -> float:
        """Take `cost` tokens for `key`: 0.0, or the seconds until they would be there."""
        ...


class TokenBuckets:
    """Token buckets of this process, bounded in time and memory (see the module docstring)."""

    MAX_CLIENTS = 50_000
    PRUNE_PER_TAKE = 4

    def __init__(
        self, limit: RateLimit, clock: Callable[[], float], *, max_clients: int | None = None
    ) -> None:
        self._limit = limit
        self._clock = clock
        self._max = max_clients or self.MAX_CLIENTS
        # key -> (tokens, at); ordered by last use, so the front is the longest idle
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str, cost: int = 1) -> float:
        burst, rate = float(self._limit.burst), self._limit.per_second
        need = float(min(cost, self._limit.burst))  # a cost above burst could never pass
        with self._lock:
            now = self._clock()
            tokens, at = self._buckets.pop(key, (burst, now))
            tokens = min(burst, tokens + max(0.0, now - at) * rate)
            wait = 0.0
            if tokens >= need:
                tokens -= need
            else:
                wait = (need - tokens) / rate
            self._buckets[key] = (tokens, now)
            self._prune(now)
            return wait

    def _prune(self, now: float) -> None:
        # The front is the least recently used: once it has refilled it is the same as
        # no bucket. A few per call keeps every call O(1) and the table from growing
        # with clients that came once; the hard maximum bounds it under a flood.
        idle_s = self._limit.refill_s
        for _ in range(self.PRUNE_PER_TAKE):
            if not self._buckets:
                break
            _, at = next(iter(self._buckets.values()))
            if now - at < idle_s:
                break
            self._buckets.popitem(last=False)
        while len(self._buckets) > self._max:
            self._buckets.popitem(last=False)


# Token bucket in Redis (one round trip, atomic). Redis' own clock: every replica agrees.
# Returns the wait in seconds as a string (a Lua number would be cut to an integer).
_REDIS_TAKE = """
local burst = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local v = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(v[1]) or burst
local at = tonumber(v[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= cost then tokens = tokens - cost else wait = (cost - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return tostring(wait)
"""


class RedisBuckets:
    """Token buckets in Redis, shared by every replica that names the same URL and prefix.

    When Redis does not answer (within `timeout_s`), this process falls back to its own
    buckets for `retry_after_s` and logs it once: the public reads stay up and each
    replica still limits on its own.
    """

    def __init__(
        self,
        limit: RateLimit,
        *,
        url: str,
        prefix: str,
        fallback: TokenBuckets,
        timeout_s: float = 0.25,
        retry_after_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        try:
            import redis
        except ImportError as e:  # pragma: no cover - redis is a service dependency
            raise ConfigError(
                "rate_limit_backend = 'redis' needs the redis package", where="api"
            ) from e
        try:
            self._client = redis.Redis.from_url(
                url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
            )
        except ValueError as e:
            raise ConfigError(f"not a Redis URL: {e}", where="api.rate_limit_redis_url") from e
        self._script = self._client.register_script(_REDIS_TAKE)
        self._limit = limit
        self._prefix = prefix
        self._fallback = fallback
        self._retry_after_s = retry_after_s
        self._clock = clock
        self._down_until = -math.inf
        self._redis_error: type[Exception] = redis.RedisError

    def take(self, key: str, cost: int = 1) -> float:
        if self._clock() < self._down_until:
            return self._fallback.take(key, cost)
        need = min(cost, self._limit.burst)
        try:
            wait = self._script(
                keys=[f"{self._prefix}{key}"],
                args=[self._limit.burst, repr(self._limit.per_second), need],
            )
        except self._redis_error as e:
            self._down_until = self._clock() + self._retry_after_s
            log.warning(
                "rate limiter: Redis did not answer (%s); limiting in this process for %g s",
                e,
                self._retry_after_s,
            )
            return self._fallback.take(key, cost)
        return float(wait)

    def close(self) -> None:
        self._client.close()


# --- costly requests at once --------------------------------------------------------------


class ExpensiveGate:
    """At most `limit` costly requests at once in this process; `enter()` says if one may."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise InputError("max_expensive_requests must be >= 1", where="api")
        self.limit = limit
        self._running = 0
        self._lock = threading.Lock()

    @property
    def running(self) -> int:
        return self._running

    @contextlib.contextmanager
    def slot(self, refused: Callable[[], BaseException]) -> Iterator[None]:
        """Hold one slot for the block, or raise `refused()` when all are taken."""
        with self._lock:
            if self._running >= self.limit:
                raise refused()
            self._running += 1
        try:
            yield
        finally:
            with self._lock:
                self._running -= 1


__all__ = [
    "Buckets",
    "ExpensiveGate",
    "RateLimit",
    "RedisBuckets",
    "TokenBuckets",
    "TrustedProxies",
    "client_key",
    "scope_client_key",
]
