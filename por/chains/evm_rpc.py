"""JSON-RPC to several endpoints of one EVM chain, with a quorum over their answers.

Every read goes to each live endpoint (in parallel); answers are parsed and validated per
endpoint, then compared. The value at least `quorum` endpoints agree on wins; the others
are outvoted and reported as `EndpointNote`s (DESIGN §7). An endpoint on the wrong chain
id is dropped for the whole read session. No quorum is a typed `EvmChainError` whose
`where` names the chain and every endpoint — never a guess.

Transport is httpx, one POST per call with connect/read/total limits (por.deadline), no
retries (a retry would hide a flaky endpoint from the vote). This module does no disk
I/O and keeps no state beyond one session's notes.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import httpx

from por.chains.base import EndpointNote
from por.deadline import (
    DeadlineError,
    Timeouts,
    before_request,
    httpx_timeout,
    read_body,
    timed_out,
)
from por.errors import ChainError, ConfigError

T = TypeVar("T")


class EvmChainError(ChainError):
    """Something an EVM endpoint (or the set of them) did wrong; `where` = chain + endpoint(s)."""


class EvmEndpointDownError(EvmChainError):
    """The endpoint did not answer (connection refused, timeout, HTTP error)."""


class EvmRpcError(EvmChainError):
    """The endpoint answered with a JSON-RPC error that is not a revert or a range refusal."""


class EvmMalformedAnswerError(EvmChainError):
    """The answer is not JSON-RPC, or its result has the wrong shape."""


class EvmRevertError(EvmChainError):
    """An eth_call reverted; `data` is the revert data (0x-hex) when the node gave it."""

    data: str | None = None


class EvmAbiMismatchError(EvmChainError):
    """The contract answered, but not in the shape the ABI promises (e.g. not an ERC-20)."""


class EvmWrongChainError(EvmChainError):
    """The endpoint serves another chain id than configured."""


class EvmRangeRefusedError(EvmChainError):
    """The provider refused an eth_getLogs range as too large; the caller splits it."""


class EvmNoQuorumError(EvmChainError):
    """Not enough endpoints agreed on an answer."""


# Messages providers use when a log query is too big (Infura, Alchemy, QuickNode, geth,
# Erigon, BSC nodes...). Matching is deliberately broad: splitting a range is always safe.
_RANGE_REFUSAL_RE = re.compile(
    r"more than \d+ results|block range|range too (large|wide)|too many (blocks|logs|results)"
    r"|limit exceeded|exceed(s|ed)? (max|maximum|the limit)|response size|query timeout"
    r"|range is too large|log response size",
    re.IGNORECASE,
)


def is_range_refusal(code: object, message: str) -> bool:
    return code in (-32005, -32614) or bool(_RANGE_REFUSAL_RE.search(message))


class Endpoint:
    """One JSON-RPC URL of a chain.

    Each call is one HTTP POST with three limits (por.deadline): connect, read (silence)
    and total — a node that trickles its answer is cut off at the total, or at the run's
    deadline when that comes first. `timeout_s` is the read limit; the total defaults to
    three times it.
    """

    def __init__(
        self,
        url: str,
        *,
        chain_caip2: str,
        timeout_s: float,
        total_timeout_s: float | None = None,
    ) -> None:
        self.url = url
        self.where = f"{chain_caip2} {url}"
        self.timeouts = Timeouts(
            connect_s=min(5.0, timeout_s),
            read_s=timeout_s,
            total_s=total_timeout_s if total_timeout_s is not None else 3 * timeout_s,
        )
        self._client = httpx.Client(follow_redirects=False)
        self._ids = itertools.count(1)

    def close(self) -> None:
        self._client.close()

    def _post(self, method: str, body: bytes) -> tuple[int, bytes]:
        before_request(self.where)
        started = time.monotonic()
        with self._client.stream(
            "POST",
            self.url,
            content=body,
            headers={"Content-Type": "application/json"},
            timeout=httpx_timeout(self.timeouts),
        ) as r:
            return r.status_code, read_body(
                r, timeouts=self.timeouts, started=started, where=self.where
            )

    def request(self, method: str, params: Sequence[Any]) -> Any:
        """The raw `result` of one call; raises a typed EvmChainError naming this endpoint."""
        body = json.dumps(
            {"jsonrpc": "2.0", "method": method, "params": list(params), "id": next(self._ids)}
        ).encode()
        try:
            status, raw = self._post(method, body)
        except DeadlineError as e:
            raise EvmEndpointDownError(f"{method}: {e.message}", where=self.where) from e
        except httpx.HTTPError as e:  # connection refused, timeouts, protocol errors
            if isinstance(e, httpx.TimeoutException):
                timed_out(self.where)
            raise EvmEndpointDownError(
                f"{method}: no answer ({type(e).__name__}: {e})"[:300], where=self.where
            ) from e
        if not 200 <= status < 300:
            raise EvmEndpointDownError(f"{method}: no answer (HTTP {status})", where=self.where)
        try:
            resp = json.loads(raw)
        except ValueError as e:  # body that is not JSON
            raise EvmMalformedAnswerError(
                f"{method}: answer is not JSON-RPC ({e})"[:300], where=self.where
            ) from e
        if not isinstance(resp, dict):
            raise EvmMalformedAnswerError(
                f"{method}: answer is not a JSON-RPC object", where=self.where
            )
        err = resp.get("error")
        if err is not None:
            code = err.get("code") if isinstance(err, dict) else None
            message = str(err.get("message", err)) if isinstance(err, dict) else str(err)
            data = err.get("data") if isinstance(err, dict) else None
            if code == 3 or "revert" in message.lower():
                exc = EvmRevertError(
                    f"{method} reverted: {message}" + (f" (data {data})" if data else ""),
                    where=self.where,
                )
                if isinstance(data, dict):  # some nodes nest it: {"data": "0x..."}
                    data = data.get("data")
                exc.data = data if isinstance(data, str) else None
                raise exc
            if method == "eth_getLogs" and is_range_refusal(code, message):
                raise EvmRangeRefusedError(
                    f"{method} refused: {message} (code {code})", where=self.where
                )
            raise EvmRpcError(f"{method} failed: {message} (code {code})", where=self.where)
        if "result" not in resp:
            raise EvmMalformedAnswerError(
                f"{method}: answer has neither result nor error", where=self.where
            )
        return resp["result"]


class QuorumRpc:
    """Reads through several endpoints of one chain and returns what a quorum agrees on."""

    def __init__(
        self,
        *,
        chain_id: int,
        urls: Sequence[str],
        quorum: int | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        if not urls:
            raise ConfigError("at least one RPC URL is needed", where=f"eip155:{chain_id}")
        if len(set(urls)) != len(urls):
            raise ConfigError("RPC URLs must be distinct", where=f"eip155:{chain_id}")
        self.chain_id = chain_id
        self.caip2 = f"eip155:{chain_id}"
        self.endpoints = [Endpoint(u, chain_caip2=self.caip2, timeout_s=timeout_s) for u in urls]
        self.quorum = quorum if quorum is not None else len(urls) // 2 + 1
        if not 1 <= self.quorum <= len(urls):
            raise ConfigError(f"quorum {self.quorum} must be in 1..{len(urls)}", where=self.caip2)
        self.live: list[Endpoint] = list(self.endpoints)
        self.notes: dict[tuple[str, str], EndpointNote] = {}
        self._pool = ThreadPoolExecutor(max_workers=len(urls), thread_name_prefix="evm-rpc")

    @property
    def where_all(self) -> str:
        return f"{self.caip2} {', '.join(e.url for e in self.endpoints)}"

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        for ep in self.endpoints:
            ep.close()

    def note(self, endpoint: str, kind: str, problem: str) -> None:
        self.notes.setdefault((endpoint, kind), EndpointNote(endpoint=endpoint, problem=problem))

    def begin_session(self) -> None:
        """Forget notes; check every endpoint's chain id; keep only the right-chain ones."""
        self.notes = {}
        self.live = list(self.endpoints)
        want = self.chain_id

        def parse_chain_id(raw: Any) -> int:
            value = parse_quantity(raw, "eth_chainId")
            if value != want:
                raise EvmWrongChainError(f"serves chain id {value}, expected {want}")
            return value

        answers = self._ask("eth_chainId", [], parse_chain_id)
        self.live = [ep for ep, ans in answers if not isinstance(ans, EvmChainError)]
        for ep, ans in answers:
            if isinstance(ans, EvmChainError):
                self.note(ep.url, "chain", f"excluded: {ans.message}")
        if len(self.live) < self.quorum:
            raise self.no_quorum("eth_chainId", answers)

    def _ask(
        self, method: str, params: Sequence[Any], parse: Callable[[Any], T]
    ) -> list[tuple[Endpoint, T | EvmChainError]]:
        def one(ep: Endpoint) -> T | EvmChainError:
            try:
                return parse(ep.request(method, params))
            except EvmChainError as e:
                if e.where is None:  # raised by a parser: name the endpoint it came from
                    e.where = ep.where
                return e

        return list(zip(self.live, self._pool.map(one, self.live), strict=True))

    def each(
        self, method: str, params: Sequence[Any], parse: Callable[[Any], T]
    ) -> list[tuple[Endpoint, T | EvmChainError]]:
        """Every live endpoint's parsed answer or error (no vote)."""
        return self._ask(method, params, parse)

    def call(
        self,
        method: str,
        params: Sequence[Any],
        parse: Callable[[Any], T],
        *,
        what: str | None = None,
    ) -> T:
        """The parsed answer a quorum of live endpoints agrees on."""
        what = what or method
        answers = self._ask(method, params, parse)
        groups: list[tuple[T, list[Endpoint]]] = []
        for ep, ans in answers:
            if isinstance(ans, EvmChainError):
                continue
            for value, eps in groups:
                if value == ans:
                    eps.append(ep)
                    break
            else:
                groups.append((ans, [ep]))
        groups.sort(key=lambda g: -len(g[1]))
        if (
            groups
            and len(groups[0][1]) >= self.quorum
            and (len(groups) == 1 or len(groups[1][1]) < len(groups[0][1]))
        ):
            winner, agreeing = groups[0]
            for value, eps in groups[1:]:
                for ep in eps:
                    self.note(
                        ep.url,
                        "outvoted",
                        f"outvoted: {what} answered {_short(value)}, "
                        f"{len(agreeing)} endpoints agreed on {_short(winner)}",
                    )
            for ep, ans in answers:
                if isinstance(ans, EvmChainError):
                    self.note(ep.url, type(ans).__name__, f"{what}: {ans.message}")
            return winner
        raise self.no_quorum(what, answers)

    def no_quorum(self, what: str, answers: Sequence[tuple[Endpoint, object]]) -> EvmChainError:
        errors = [a for _, a in answers if isinstance(a, EvmChainError)]
        details = "; ".join(
            f"{ep.url}: {a.message if isinstance(a, EvmChainError) else _short(a)}"
            for ep, a in answers
        )
        message = (
            f"{what}: no {self.quorum} of {len(self.endpoints)} endpoints agree "
            f"({details or 'no live endpoint'})"
        )
        kinds = {type(e) for e in errors}
        cls: type[EvmChainError] = EvmNoQuorumError
        if any(isinstance(e, EvmRangeRefusedError) for e in errors):
            cls = EvmRangeRefusedError  # the caller splits the range and asks again
        elif len(errors) == len(answers) and len(kinds) == 1:
            cls = kinds.pop()  # every endpoint failed the same way: keep that type
        return cls(message, where=self.where_all)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def parse_quantity(raw: Any, what: str) -> int:
    """A JSON-RPC QUANTITY ("0x1a") -> int; anything else is malformed."""
    if not isinstance(raw, str) or not re.fullmatch(r"0x(0|[1-9a-fA-F][0-9a-fA-F]*)", raw):
        raise EvmMalformedAnswerError(f"{what}: expected a hex quantity, got {_short(raw)}")
    return int(raw, 16)


def parse_data(raw: Any, what: str) -> bytes:
    """A JSON-RPC DATA ("0x…" even length) -> bytes."""
    if not isinstance(raw, str) or not re.fullmatch(r"0x([0-9a-fA-F]{2})*", raw):
        raise EvmMalformedAnswerError(f"{what}: expected hex data, got {_short(raw)}")
    return bytes.fromhex(raw[2:])


def parse_hash(raw: Any, what: str) -> str:
    """A 32-byte hash -> lowercase hex without 0x (por's spelling)."""
    data = parse_data(raw, what)
    if len(data) != 32:
        raise EvmMalformedAnswerError(f"{what}: expected a 32-byte hash, got {len(data)} bytes")
    return data.hex()
