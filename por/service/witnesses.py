"""The log's side of C2SP tlog-witness: submit each new checkpoint to the configured witnesses.

After an append, `WitnessSubmitter.submit_all` sends the latest checkpoint to every
witness that has not cosigned it: `old <the witness's size>`, the consistency proof from
that size, the signed note. A 200 answer's cosignature lines are verified with the
witness's configured key and stored (`CosignState`); a 409 tells the witness's real size,
which is recorded and used for one immediate retry; anything else is recorded as a
failure. A witness that is behind is "pending" and is tried again on the next append or
retry tick, so a witness that was down catches up with one consistency proof.

Best effort by design: nothing here raises into an attestation run. Runs call `notify()`
(never blocks); the background thread (`start`) does the network I/O with a timeout per
request. `por attest` (one shot) calls `submit_all` once after its run.

I/O: HTTP POSTs to the witnesses (httpx), the store.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx

from por.core.dsse import KeySet, LogKey
from por.core.note import VerifierKey, split_note
from por.core.tlog import log_verifier_key
from por.core.witness import (
    SIZE_CONTENT_TYPE,
    AddCheckpoint,
    parse_size_body,
    read_cosignatures,
)
from por.deadline import Timeouts, http_exchange
from por.errors import ConfigError, PorError, SourceError
from por.service.config import Config
from por.store.store import Store

log = logging.getLogger("por.witnesses")

USER_AGENT = "por-log (tlog-witness client)"


@dataclass(frozen=True, slots=True, kw_only=True)
class WitnessTarget:
    """One configured witness: its cosignature key and its submission prefix."""

    vkey: VerifierKey  # type 0x04; its name is the witness's name
    url: str  # submission prefix; add-checkpoint is <url>/add-checkpoint
    timeout_s: float = 10.0

    @property
    def name(self) -> str:
        return self.vkey.name


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitOutcome:
    witness: str
    size: int
    ok: bool
    detail: str


Post = Callable[[str, bytes, float], tuple[int, str, bytes]]
"""(url, body, timeout) -> (status, content type, body); raises httpx.HTTPError."""


def _httpx_post(url: str, body: bytes, timeout: float) -> tuple[int, str, bytes]:
    """`timeout` bounds the whole exchange (a witness that trickles is cut off there)."""
    try:
        with httpx.Client() as client:
            r = http_exchange(
                client,
                "POST",
                url,
                timeouts=Timeouts.of(timeout),
                where=url,
                error=SourceError,
                max_bytes=1 << 20,
                content=body,
                headers={"Content-Type": "text/plain; charset=utf-8", "User-Agent": USER_AGENT},
            )
    except SourceError as e:
        raise httpx.ReadTimeout(e.message) from e
    return r.status_code, r.headers.get("content-type", ""), r.body


def witness_targets(cfg: Config) -> list[WitnessTarget]:
    """The `[[witnesses]]` of the configuration (their vkeys were checked when parsed)."""
    return [
        WitnessTarget(vkey=VerifierKey.parse(w.vkey), url=w.url, timeout_s=float(w.timeout_s))
        for w in cfg.witnesses
    ]


def publish_log_keys(
    keyset: KeySet,
    *,
    origin: str,
    checkpoint_key: bytes,
    witnesses: Sequence[VerifierKey],
    where: str,
) -> KeySet:
    """The key set as served: the file's, plus the log's checkpoint vkey (the issuer key
    under the origin name, DESIGN §5) and the configured witnesses' cosignature vkeys.

    A key set file that already names a log key must name this one: a witness configured
    from the published key set would otherwise refuse every checkpoint.
    """
    log_key = LogKey(origin=origin, vkey=log_verifier_key(origin, checkpoint_key))
    if keyset.log is not None and keyset.log != log_key:
        raise ConfigError(
            f"the key set names the log key {keyset.log.vkey.encode()}, but the service signs "
            f"checkpoints as {log_key.vkey.encode()}",
            where=where,
        )
    merged = list(keyset.witnesses)
    merged += [w for w in witnesses if w not in merged]
    return KeySet(keys=keyset.keys, log=log_key, witnesses=tuple(merged))


class WitnessSubmitter:
    """Submits the log's latest checkpoint to witnesses; never raises into its caller."""

    def __init__(
        self,
        store: Store,
        witnesses: Sequence[WitnessTarget],
        *,
        post: Post = _httpx_post,
        retry_s: float = 60.0,
        clock: Callable[[], float] = time.time,
        clock_skew_s: int = 300,
    ) -> None:
        self._store = store
        self._clock = clock
        self._clock_skew_s = clock_skew_s
        self._witnesses = tuple(witnesses)
        self._post = post
        self._retry_s = retry_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()  # one submission round at a time
        self._thread: threading.Thread | None = None

    @property
    def witnesses(self) -> tuple[WitnessTarget, ...]:
        return self._witnesses

    # --- the background thread ----------------------------------------------------------

    def notify(self) -> None:
        """A new checkpoint exists: submit soon (never blocks)."""
        self._wake.set()

    def start(self) -> None:
        if self._thread is not None or not self._witnesses:
            return
        self._thread = threading.Thread(target=self._loop, name="por-witnesses", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)

    def _loop(self) -> None:
        self._wake.set()  # catch up with what is pending at start
        while not self._stop.is_set():
            self._wake.wait(timeout=self._retry_s)
            self._wake.clear()
            if self._stop.is_set():
                return
            self.submit_all()

    # --- one round ----------------------------------------------------------------------

    def submit_all(self) -> list[SubmitOutcome]:
        """Send the latest checkpoint to every witness that has not cosigned it."""
        with self._lock:
            out = []
            for w in self._witnesses:
                try:
                    outcome = self._submit(w)
                except Exception as e:  # best effort: a bug here must not stop the service
                    log.warning("witness %s: unexpected %s: %s", w.name, type(e).__name__, e)
                    outcome = SubmitOutcome(witness=w.name, size=0, ok=False, detail=str(e))
                    self._record_error(w, f"unexpected {type(e).__name__}: {e}")
                if outcome is not None:
                    out.append(outcome)
            return out

    def _record_error(self, w: WitnessTarget, error: str, *, known: int | None = None) -> None:
        try:
            self._store.cosign.record_submission(w.name, known_size=known, error=error)
        except PorError as e:
            log.warning("witness %s: cannot record the failure: %s", w.name, e)

    def _submit(  # noqa: PLR0911 - one answer per tlog-witness outcome
        self, w: WitnessTarget
    ) -> SubmitOutcome | None:
        cp = self._store.checkpoint()
        if cp is None:
            return None
        state = self._store.cosign.submission(w.name)
        if state is not None and state.cosigned_size >= cp.size:
            return None  # already cosigned the latest
        old = 0 if state is None else state.known_size
        for attempt in range(2):
            if old > cp.size:
                msg = f"witness holds size {old}, beyond the log's {cp.size}: not submitting"
                self._record_error(w, msg)
                log.error("witness %s: %s", w.name, msg)
                return SubmitOutcome(witness=w.name, size=cp.size, ok=False, detail=msg)
            proof = (
                ()
                if old in (0, cp.size)
                else tuple(self._store.log_tree().consistency_proof(old, cp.size))
            )
            body = AddCheckpoint(old_size=old, proof=proof, note=cp.note).encode()
            url = w.url.rstrip("/") + "/add-checkpoint"
            try:
                status, ctype, answer = self._post(url, body, w.timeout_s)
            except httpx.HTTPError as e:
                msg = f"POST {url} failed: {type(e).__name__}: {e}"
                self._record_error(w, msg)
                log.warning("witness %s: %s", w.name, msg)
                return SubmitOutcome(witness=w.name, size=cp.size, ok=False, detail=msg)
            if status == 200:
                checkpoint_body, _ = split_note(cp.note)
                try:
                    cosigs = read_cosignatures(
                        answer,
                        checkpoint_body=checkpoint_body,
                        witness=w.vkey,
                        # never store a cosignature dated later than now + skew
                        not_after=int(self._clock()) + self._clock_skew_s,
                    )
                except PorError as e:
                    msg = f"answer is not a valid cosignature by {w.name}: {e}"
                    self._record_error(w, msg)
                    return SubmitOutcome(witness=w.name, size=cp.size, ok=False, detail=msg)
                self._store.cosign.add_witness_cosignatures(cp.size, cosigs)
                self._store.cosign.record_submission(w.name, cosigned_size=cp.size)
                log.info("witness %s cosigned size %d", w.name, cp.size)
                return SubmitOutcome(witness=w.name, size=cp.size, ok=True, detail="cosigned")
            if status == 409 and attempt == 0 and SIZE_CONTENT_TYPE in ctype:
                try:
                    theirs = parse_size_body(answer)
                except PorError as e:
                    msg = f"409 with an unreadable size: {e}"
                    self._record_error(w, msg)
                    return SubmitOutcome(witness=w.name, size=cp.size, ok=False, detail=msg)
                if theirs != old:  # retry once from the size the witness really holds
                    old = theirs
                    continue
            text = answer[:300].decode("utf-8", "replace").strip()
            msg = f"HTTP {status} from {url}: {text}"
            known = None
            if status == 409 and SIZE_CONTENT_TYPE in ctype:
                try:
                    known = parse_size_body(answer)
                except PorError:
                    known = None
            self._record_error(w, msg, known=known)
            log.warning("witness %s: %s", w.name, msg)
            return SubmitOutcome(witness=w.name, size=cp.size, ok=False, detail=msg)
        return None  # pragma: no cover - the loop always returns


__all__ = [
    "Post",
    "SubmitOutcome",
    "WitnessSubmitter",
    "WitnessTarget",
    "publish_log_keys",
    "witness_targets",
]
