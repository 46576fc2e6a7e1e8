"""Build the running service from its configuration: adapters, store, signer, scheduler, API.

This is the one place that knows every adapter. Each `[[chains]]` and `[[custodians]]`
table arrives as a checked model of its `kind` (por.service.config holds every check);
the factories below turn it into a reader, a publisher or a source. Secrets (key
passphrase, publisher keys, admin token) come from environment variables named in the
configuration.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, assert_never

from por.core.attestation import AllocationPolicy, Token
from por.core.dsse import Signer
from por.crashpoints import crashpoint
from por.deadline import cancel_current
from por.errors import ConfigError, PorError
from por.oracle.base import Publisher
from por.service.config import (
    ApiCustodianConfig,
    ApiLedgerConfig,
    ChainConfig,
    Config,
    CustodianConfig,
    EvmChainConfig,
    FakeChainConfig,
    FilesCustodianConfig,
    FilesLedgerConfig,
    LedgerConfig,
    SolanaChainConfig,
)
from por.service.logs import register_secret
from por.service.run import (
    FlowSettings,
    PublishOutcome,
    ReserveResult,
    RunDeps,
    RunResult,
    attest_once,
    catch_up_publications,
)

if TYPE_CHECKING:  # types only; build_service imports these where it uses them
    from fastapi import FastAPI

    from por.chains.base import ChainReader
    from por.core.dsse import KeySet
    from por.core.policy import Policy
    from por.custodians.base import CustodianSource
    from por.custodians.rawstore import RawStore
    from por.ledger.sources import LedgerSource
    from por.service.alerts import Alert, Alerter, PublicationMetrics, Webhook
    from por.service.history import DocumentIndex, EntrySettings
    from por.service.hsm import HsmToken
    from por.service.scheduler import AttestationScheduler
    from por.service.witnesses import WitnessSubmitter
    from por.store.store import Store

log = logging.getLogger("por.service")

API_NICE = 5  # `por run`'s API workers run this much below the scheduler's process


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _secret(env: str, where: str) -> str:
    value = os.environ.get(env)
    if not value:
        raise ConfigError(f"environment variable {env} is not set", where=where)
    register_secret(value)  # never in a log line
    return value


_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141  # SEC 2 §2.4.1


def _evm_key(env: str, where: str) -> str:
    """A secp256k1 private key from `env`, checked now: 64 hex digits (an optional 0x),
    in [1, n). A malformed key is a ConfigError naming the variable — not a binascii
    traceback, and not a key that fails at the first publication."""
    value = _secret(env, where).strip()
    digits = value[2:] if value[:2] in ("0x", "0X") else value
    if len(digits) != 64:
        raise ConfigError(
            f"environment variable {env} must hold a secp256k1 private key: 64 hex digits "
            f"(32 bytes, optional 0x), got {len(digits)} characters",
            where=where,
        )
    try:
        k = int(digits, 16)
    except ValueError:
        raise ConfigError(
            f"environment variable {env} must hold a secp256k1 private key: it is not hex",
            where=where,
        ) from None
    if not 0 < k < _SECP256K1_N:
        raise ConfigError(
            f"environment variable {env} holds no valid secp256k1 private key "
            "(zero, or not below the curve order)",
            where=where,
        )
    return "0x" + digits.lower()


# --- reserves -----------------------------------------------------------------------------


@dataclass(slots=True)
class CustodianReserves:
    """The run's ReserveEvaluator: fetch every source, keep raw bytes, value by policy.

    A source that fails is a DEGRADED reason and counts zero; raw documents are stored
    by SHA-256 before their figures are used, so every line stays traceable.
    """

    sources: Sequence[CustodianSource]
    policy: Policy
    token: Token
    rawstore: RawStore
    # issue 18: what each document gave is kept (attestations as of a past time), and
    # the booked entries are read when the flow reconciliation is on
    index: DocumentIndex | None = None
    entries: EntrySettings | None = None

    def evaluate(self, *, as_of: datetime) -> ReserveResult:
        from por.custodians.reserves import evaluate_reserves
        from por.service.history import entries_of, index_report

        reports = []
        reasons: list[str] = []
        booked = []
        if not self.sources:
            reasons.append("no custodian source is configured: reserves unknown")
        for src in self.sources:
            try:
                report = src.fetch(as_of)
            except PorError as e:
                reasons.append(f"custodian {src.name} unavailable, counted as zero: {e}")
                continue
            self.rawstore.put_all(report.raw_documents)
            reports.append(report)
            by_doc: dict[str, list[Any]] = {}
            if self.entries is not None:
                by_doc, problems = entries_of(
                    report,
                    token=self.token,
                    settings=self.entries,
                    encoding=getattr(src, "encoding", "utf-8"),
                )
                reasons.extend(problems)
                booked += [e for es in by_doc.values() for e in es]
            if self.index is not None:
                index_report(self.index, src.name, report, by_doc)
        crashpoint("after_raw_store")
        lines, total, degraded = evaluate_reserves(
            reports,
            self.policy,
            token_currency=self.token.currency,
            token_decimals=self.token.decimals,
            as_of=as_of,
        )
        return ReserveResult(
            lines=tuple(lines),
            eligible_total=total,
            degraded_reasons=tuple(reasons + list(degraded)),
            entries=tuple(booked),
        )

    def evaluate_at(self, *, as_of: datetime) -> ReserveResult:
        """The stored documents valid at a past `as_of`, valued as of then."""
        from por.custodians.reserves import evaluate_reserves
        from por.service.history import reports_at

        if self.index is None:
            raise PorError("no stored statements to value as of a past time")
        reports, booked, reasons = reports_at(
            self.index,
            self.rawstore,
            self.sources,
            as_of=as_of,
            max_future_skew_s=self.policy.max_future_skew_s,
        )
        lines, total, degraded = evaluate_reserves(
            reports,
            self.policy,
            token_currency=self.token.currency,
            token_decimals=self.token.decimals,
            as_of=as_of,
        )
        return ReserveResult(
            lines=tuple(lines),
            eligible_total=total,
            degraded_reasons=tuple(reasons + list(degraded)),
            entries=tuple(booked) if self.entries is not None else (),
        )


# --- chains and publishers ----------------------------------------------------------------


def build_chain(
    chain: ChainConfig,
    *,
    cfg: Config,
    where: str,
    store: Store,
    publish: bool,
    token: HsmToken | None = None,
) -> tuple[ChainReader, Publisher | None]:
    if isinstance(chain, EvmChainConfig):
        from por.chains.evm import BlobCheckpointStore, EvmChainReader, FileCheckpointStore
        from por.service.storage import state_blobs

        blobs = state_blobs(cfg, store)
        reader = EvmChainReader(
            chain_id=chain.chain_number,
            rpc_urls=chain.rpc_urls,
            token_address=chain.token,
            excluded=chain.exclusions(),
            checkpoint_store=FileCheckpointStore(cfg.service.data_dir / "index")
            if blobs is None
            else BlobCheckpointStore(blobs),
            start_block=chain.first_block,
            quorum=chain.quorum,
            max_log_range=chain.max_log_range,
            spot_checks=chain.spot_checks,
            expected_decimals=cfg.token.decimals,
            collect_flows=cfg.reconciliation is not None and chain.reconcile,
            reference_events=chain.reference_events,
        )
        publisher: Publisher | None = None
        if publish and chain.oracle is not None and chain.publisher_key_env is not None:
            from por.oracle.evm_publisher import EvmPublisher
            from por.oracle.intents import DbIntentStore

            sender = _evm_key(chain.publisher_key_env, f"{where}.publisher_key_env")
            attestors: list[Any] = [
                _evm_key(e, f"{where}.attestor_key_envs[{i}]")
                for i, e in enumerate(chain.attestor_key_envs)
            ]
            if chain.attestor_hsm_labels:
                if token is None:  # config.py refuses this; kept for callers of build_chain
                    raise ConfigError("attestor_hsm_labels need [signing.pkcs11]", where=where)
                attestors += [
                    token.secp256k1_attestor(label) for label in chain.attestor_hsm_labels
                ]
            publisher = EvmPublisher(
                chain_id=chain.chain_number,
                rpc_urls=chain.rpc_urls,
                contract=chain.oracle,
                sender_key=sender,
                attestor_keys=attestors,
                intent_store=DbIntentStore(store),
                confirmations=chain.confirmations,
                stuck_after_blocks=chain.stuck_after_blocks,
            )
        return reader, publisher
    if isinstance(chain, SolanaChainConfig):
        from por.chains.solana import BlobFlowStore, FileFlowStore, SolanaReader
        from por.service.storage import state_blobs

        sol_blobs = state_blobs(cfg, store)

        sol_reader: ChainReader = SolanaReader(
            chain.rpc_url,
            chain.mint,
            chain_id=chain.chain_id,
            exclusions=chain.exclusions(),
            expected_decimals=cfg.token.decimals,
            collect_flows=cfg.reconciliation is not None and chain.reconcile,
            flow_store=FileFlowStore(cfg.service.data_dir / "index")
            if sol_blobs is None
            else BlobFlowStore(sol_blobs),
        )
        sol_publisher: Publisher | None = None
        if publish and chain.memo_keypair is not None:
            from por.oracle.solana_memo import SolanaMemoPublisher

            sol_publisher = SolanaMemoPublisher(
                chain.rpc_url,
                chain.memo_keypair,
                chain_id=chain.chain_id,
                state_dir=cfg.service.data_dir / "memo" if sol_blobs is None else None,
                state=sol_blobs,
            )
        return sol_reader, sol_publisher
    if isinstance(chain, FakeChainConfig):
        from por.demo.fake_chain import FakeChainReader

        return FakeChainReader(
            chain_id=chain.chain_id,
            token_address=chain.token,
            holders=dict(chain.holders),
            decimals=cfg.token.decimals,
        ), None
    assert_never(chain)


def build_custodian(source: CustodianConfig) -> CustodianSource:
    if isinstance(source, FilesCustodianConfig):
        from por.custodians.files import FileSource

        return FileSource(
            name=source.name,
            paths=source.paths,
            custodian=source.custodian,
            max_age_s=source.max_age_s,
            encoding=source.encoding,
        )
    if isinstance(source, ApiCustodianConfig):
        from por.custodians.api import CustodianApiSource

        return CustodianApiSource(
            name=source.name,
            base_url=source.base_url,
            public_key=source.public_key,
            max_age_s=source.max_age_s,
        )
    assert_never(source)


def build_ledger(source: LedgerConfig, *, token: Token) -> LedgerSource:
    if isinstance(source, FilesLedgerConfig):
        from por.ledger.sources import FileLedgerSource

        return FileLedgerSource(
            name=source.name,
            paths=source.paths,
            token_decimals=token.decimals,
            token_currency=token.currency,
            issuer=source.issuer,
            public_key=source.public_key,
            max_age_s=source.max_age_s,
        )
    if isinstance(source, ApiLedgerConfig):
        from por.ledger.sources import ApiLedgerSource

        return ApiLedgerSource(
            name=source.name,
            base_url=source.base_url,
            public_key=source.public_key,
            token_decimals=token.decimals,
            token_currency=token.currency,
            issuer=source.issuer,
            max_age_s=source.max_age_s,
        )
    assert_never(source)


def flow_settings(cfg: Config) -> FlowSettings | None:
    """`[reconciliation]` as the run takes it (None: no flow reconciliation)."""
    r = cfg.reconciliation
    if r is None:
        return None
    from por.core.flows import account_ref
    from por.custodians.model import account_key

    return FlowSettings(
        start=r.start_time(),
        window_s=r.window_s,
        max_age_s=r.max_age_s,
        tolerance=None if r.tolerance is None else int(r.tolerance),
        accounts=tuple(sorted({account_ref(account_key(a)) for a in r.accounts}))
        if r.accounts
        else None,
        ignore=tuple(r.ignore),
    )


def allocation_policy(cfg: Config) -> AllocationPolicy:
    """The issuer's budget allocation (`[allocation]`), as every attestation declares it."""
    try:
        return cfg.allocation.policy()
    except PorError as e:
        raise ConfigError(e.message, where=f"{cfg.path}:allocation") from e


def _gate_budget_increases(publishers: Sequence[Publisher]) -> None:
    """Every ReserveOracle publisher joins one BudgetGate: a chain whose budget grows waits
    until the chains whose budgets shrink hold the new round (docs/budgets.md)."""
    from por.oracle.evm_publisher import BudgetGate, EvmPublisher

    gate = BudgetGate()
    for p in publishers:
        if isinstance(p, EvmPublisher):
            gate.join(p)


# --- the service --------------------------------------------------------------------------


def build_alerter(cfg: Config, store: Store) -> Alerter:
    """The alert rules of `[alerts]`, with webhooks whose keys come from the environment."""
    from por.service.alerts import Alerter, AlertMetrics, Webhook, WebhookSender
    from por.service.scheduler import longest_gap_s

    metrics = AlertMetrics()
    hooks = [
        Webhook(
            url=h.url,
            secret=_secret(h.secret_env, f"{cfg.path}:alerts.webhooks[{i}].secret_env").encode(),
            timeout_s=h.timeout_s,
            max_attempts=h.max_attempts,
        )
        for i, h in enumerate(cfg.alerts.webhooks)
    ]

    def dead_letter(alert: Alert, hook: Webhook, attempts: int, error: str) -> None:
        store.record_dead_letter(
            alert_id=alert.id,
            kind=alert.kind,
            url=hook.url,
            body=alert.body(),
            attempts=attempts,
            last_error=error,
        )

    sender = WebhookSender(hooks, dead_letter=dead_letter, metrics=metrics) if hooks else None
    latest = store.latest_regular()
    return Alerter(
        stale_after_s=cfg.alerts.stale_after_intervals * longest_gap_s(cfg.schedule),
        publication_lag_blocks=cfg.alerts.publication_lag_blocks,
        metrics=metrics,
        sender=sender,
        last_status=None if latest is None else latest.status,
    )


def api_limits(cfg: Config) -> dict[str, Any]:
    """`[api]` as ApiDeps takes it: rate limits, trusted proxies, the costly-request gate."""
    from por.api.limits import RateLimit

    a = cfg.api
    return {
        "proof_rate_limit": RateLimit(burst=a.proof_rate_burst, per_second=a.proof_rate_per_s),
        "history_rate_limit": RateLimit(
            burst=a.history_rate_burst, per_second=a.history_rate_per_s
        ),
        "history_max_limit": a.history_max_limit,
        "trusted_proxies": tuple(a.trusted_proxies),
        "rate_limit_redis_url": a.rate_limit_redis_url if a.rate_limit_backend == "redis" else None,
        "rate_limit_key_prefix": a.rate_limit_key_prefix,
        "max_expensive_requests": a.max_expensive_requests,
    }


@dataclass(slots=True)
class Service:
    cfg: Config
    store: Store
    deps: RunDeps
    keyset: KeySet
    closers: list[Callable[[], None]] = field(default_factory=list)
    _run_lock: threading.Lock = field(default_factory=threading.Lock)
    _stopping: threading.Event = field(default_factory=threading.Event)
    scheduler: AttestationScheduler | None = None
    api_thread: threading.Thread | None = None
    alerter: Alerter | None = None
    up_since: datetime = field(default_factory=_utcnow)
    witnesses: WitnessSubmitter | None = None  # C2SP tlog-witness submission (best effort)
    raw_store: RawStore | None = None  # raw statements, served to auditors
    api_alive: Callable[[], bool] | None = None
    # in an API worker of `por run`: the admin trigger runs in the scheduler's process
    remote_trigger: Callable[[datetime | None], int] | None = None

    def attest(self, as_of: datetime | None = None) -> RunResult:
        """One run; runs of one process never overlap (the API trigger and the scheduler).

        With `as_of`, a point-in-time attestation (recorded and logged, never published).
        The outcome goes to the alerter (status change, publication lag, a failed run,
        unmatched flows), which never blocks: webhooks are delivered on their own thread.
        """
        with self._run_lock:
            try:
                result = attest_once(self.deps, as_of=as_of)
            except BaseException as e:
                if self.alerter is not None and isinstance(e, Exception) and as_of is None:
                    self.alerter.run_failed(e)
                if as_of is None and isinstance(e, Exception):
                    self._drain_queue()  # earlier rounds are retried even when this one failed
                raise
        if as_of is not None:
            return result  # no status change, lag or staleness follows from the past
        if self.alerter is not None:
            try:
                chains = self.store.get(result.sequence).attestation.chains
                blocks = {c.chain_id: c.block.number for c in chains}
                self.alerter.run_completed(result, blocks=blocks)
                self.alerter.reconciliation(result)
            except Exception:  # alerting must never turn a recorded run into a failure
                log.exception("alerting on attestation %d failed", result.sequence)
        if self.witnesses is not None:
            self.witnesses.notify()  # never blocks; the submitter's thread does the I/O
        return result

    def _drain_queue(self) -> None:
        if self._stopping.is_set():
            return  # the service is stopping: the next start works through the queue
        try:
            catch_up_publications(self.deps)
        except Exception:  # the run's own error is what the caller reports
            log.exception("working through the publication queue failed")

    def clean_orphan_trees(self) -> None:
        """On winning leadership: remove tree files no row names that are older than a
        run may last (an earlier leader's crashed or failed rounds; a run still in
        flight elsewhere is younger than its deadline)."""
        removed = self.store.clean_orphans(min_age_s=float(self.cfg.schedule.deadline_s))
        if removed:
            log.info("removed %d orphan tree files: %s", len(removed), ", ".join(removed))

    def check_stale(self) -> None:
        if self.alerter is None:
            return
        try:
            latest = self.store.latest_issued()
        except PorError as e:
            log.warning("stale check: cannot read the store: %s", e)
            return
        seq, issued = (None, None) if latest is None else latest
        self.alerter.check_stale(seq, issued, up_since=self.up_since)

    def start_stale_watch(self) -> None:
        """Check every minute (or K intervals / 4) whether the latest attestation is stale."""
        if self.alerter is None:
            return
        period = max(1.0, min(60.0, self.alerter.stale_after_s / 4))
        stop = threading.Event()

        def watch() -> None:
            while not stop.wait(period):
                self.check_stale()

        t = threading.Thread(target=watch, name="por-stale-watch", daemon=True)
        t.start()

        def close() -> None:
            stop.set()
            t.join(timeout=5)

        self.closers.append(close)

    def _statement(self, sha256: str) -> bytes | None:
        raw = self.raw_store
        return raw.get(sha256) if raw is not None and sha256 in raw else None

    def submit_to_witnesses(self) -> None:
        """One submission round now, in this thread (`por attest`); failures are logged."""
        if self.witnesses is not None:
            self.witnesses.submit_all()

    def catch_up(self) -> list[PublishOutcome]:
        with self._run_lock:
            return catch_up_publications(self.deps)

    def app(self) -> FastAPI:
        from por.api import ApiDeps, create_app

        token = os.environ.get(self.cfg.service.admin_token_env) or None
        register_secret(token)
        auditor_token = os.environ.get(self.cfg.service.auditor_token_env) or None
        register_secret(auditor_token)
        return create_app(
            ApiDeps(
                store=self.store,
                keys=self.keyset.to_dict(),
                admin_token=token,
                trigger=lambda: self._trigger(None),
                trigger_as_of=self._trigger,
                matches=self.store.matches,
                collectors=[
                    *([] if self.alerter is None else [self.alerter.metrics]),
                    self.publication_metrics(),
                ],
                stale_after_s=None if self.alerter is None else self.alerter.stale_after_s,
                auditor_token=auditor_token,
                statements=None if self.raw_store is None else self._statement,
                site=self.cfg.disclosure.site(),
                report_signers=self._report_signers,
                on_integrity_failure=None if self.alerter is None else self._integrity_alert,
                **api_limits(self.cfg),
            )
        )

    def _integrity_alert(self, e: PorError) -> None:
        if self.alerter is not None:
            self.alerter.integrity(str(e))

    def publication_metrics(self) -> PublicationMetrics:
        from por.service.alerts import PublicationMetrics

        chains = [p.chain_id for p in self.deps.publishers]

        def queued() -> dict[str, int]:
            out = dict.fromkeys(chains, 0)
            for item in self.store.publication_queue(chains):
                out[item.chain_id] += 1
            return out

        return PublicationMetrics(self.store.publication_state.counts, queued)

    def _trigger(self, as_of: datetime | None) -> int:
        """The admin trigger: here, or in the process that runs attestations."""
        if self.remote_trigger is not None:
            return self.remote_trigger(as_of)
        return self.attest(as_of=as_of).sequence

    def _report_signers(self, at: datetime) -> list[Signer]:
        """The issuer keys valid at a reserve report's generated_at (as for attestations)."""
        if self.deps.signers_at is not None:
            return list(self.deps.signers_at(at))
        return list(self.deps.signers)

    def start_api(self, *, isolated: bool = False) -> None:
        """Serve the API with the production settings (por.service.server): one server in
        a background thread of this process when `api_workers` resolves to 1, else that
        many worker processes on one SO_REUSEPORT port. No signal handlers there.

        `isolated` (`por run`): always worker processes, at a lower CPU priority, so that
        an API flood (idle sockets, costly requests) can take neither the descriptors nor
        the CPU of the process that runs attestations."""
        from por.service.server import WorkerPool, resolve_workers, serve_in_thread, server_limits

        host, port = self.cfg.service.listen_host, self.cfg.service.listen_port
        workers = resolve_workers(self.cfg.service.api_workers)
        has_file = self.cfg.path.is_file()  # workers re-read the file
        if not has_file or (workers == 1 and not isolated):
            if isolated:
                log.warning(
                    "no configuration file to hand to API worker processes: serving the API "
                    "from this process, beside the scheduler"
                )
            self.api_alive, stop = serve_in_thread(
                self.app(), host=host, port=port, limits=server_limits(self.cfg.api)
            )
            self.closers.append(stop)
            return
        pool = WorkerPool(
            config_path=self.cfg.path.resolve(),
            host=host,
            port=port,
            workers=workers,
            trusted_proxies=tuple(self.cfg.api.trusted_proxies),
            nice=API_NICE if isolated else 0,
            # `por run`: a worker's admin trigger runs here, under the run lock
            attest=self._trigger if isolated else None,
        )
        self.closers.append(pool.stop)
        pool.start()
        self.api_alive = pool.alive

    def start_scheduler(self, *, run_now: bool) -> AttestationScheduler:
        from por.service.scheduler import AttestationScheduler

        leadership = self.store.leadership("attest")
        self.scheduler = AttestationScheduler(
            self.cfg.schedule, self.attest, leadership, on_lead=self.clean_orphan_trees
        )
        self.scheduler.start(run_now=run_now)
        scheduler = self.scheduler
        self.closers.append(lambda: scheduler.shutdown(grace_s=self.cfg.schedule.shutdown_grace_s))
        self.start_stale_watch()
        return self.scheduler

    def _wait_for_signal(self) -> None:
        """Block the main thread until SIGINT/SIGTERM (or the API thread dies)."""
        stop = threading.Event()

        def handler(signum: int, frame: Any) -> None:
            log.info("signal %d: shutting down", signum)
            # a run in progress stops at its next read (nothing recorded): por.deadline
            cancel_current(f"the service is stopping (signal {signum})")
            self._stopping.set()
            stop.set()

        old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            while not stop.wait(0.5):
                if self.api_alive is not None and not self.api_alive():
                    raise PorError(
                        "the API server stopped (is the port in use?)",
                        where=f"{self.cfg.service.listen_host}:{self.cfg.service.listen_port}",
                    )
        finally:
            for s, h in old.items():
                signal.signal(s, h)

    def run_forever(self, *, api: bool = True, run_now: bool = False) -> None:
        """`por run`: catch up on publications, schedule attestations, serve; stop on a signal.

        Shutdown order (by `close`): scheduler first (a run in progress finishes), then the
        API, then the store — never a half-recorded attestation.
        """
        try:
            self.catch_up()
        except PorError as e:
            log.warning("catching up on publications failed: %s", e)
        if api:
            self.start_api(isolated=True)
        if self.witnesses is not None:
            self.witnesses.start()
            self.closers.append(self.witnesses.stop)
        self.start_scheduler(run_now=run_now)
        self._wait_for_signal()

    def serve_forever(self) -> None:
        self.start_api()
        self._wait_for_signal()

    @property
    def abandoned_run(self) -> bool:
        """Whether closing left a cancelled run behind (the process should exit at once)."""
        return self.scheduler is not None and self.scheduler.abandoned

    def close(self) -> None:
        for c in reversed(self.closers):
            try:
                c()
            except Exception:  # closing is best effort; the process is ending
                log.debug("closer failed", exc_info=True)
        self.closers.clear()
        self.store.close()


def build_service(
    cfg: Config,
    *,
    publish: bool = True,
    clock: Callable[[], datetime] = _utcnow,
    random_bytes: Callable[[int], bytes] = secrets.token_bytes,
    migrate: bool = False,
) -> Service:
    from por.core.policy import Policy
    from por.service.signing import load_keyring
    from por.service.storage import open_store, raw_store
    from por.service.witnesses import publish_log_keys, witness_targets

    ring = load_keyring(cfg)
    try:
        targets = witness_targets(cfg)
        # the key set as served: the file's plus the log's checkpoint key and the witnesses
        keyset = publish_log_keys(
            ring.keyset,
            origin=cfg.service.origin,
            checkpoint_key=ring.signers[0].public_key_raw,
            witnesses=[t.vkey for t in targets],
            where=str(cfg.signing.keys_file),
        )
        # keyset: a row whose signature does not verify is never published
        store = open_store(cfg, migrate=migrate, keyset=keyset)
    except BaseException:
        ring.close()
        raise
    svc_closers: list[Callable[[], None]] = [ring.close]
    try:
        readers = []
        publishers: list[Publisher] = []
        for i, chain in enumerate(cfg.chains):
            reader, pub = build_chain(
                chain,
                cfg=cfg,
                where=f"{cfg.path}:chains[{i}]",
                store=store,
                publish=publish,
                token=ring.token,
            )
            readers.append(reader)
            if hasattr(reader, "close"):
                svc_closers.append(reader.close)
            if pub is not None:
                publishers.append(pub)
        _gate_budget_increases(publishers)
        sources = [build_custodian(c) for c in cfg.custodians]
        token = Token(
            symbol=cfg.token.symbol, decimals=cfg.token.decimals, currency=cfg.token.currency
        )
        policy = Policy.from_dict(cfg.policy, where=f"{cfg.path}:policy")
        from por.service.history import EntrySettings, LedgerLiabilities

        rawstore = raw_store(cfg, store)
        recon = cfg.reconciliation
        reserves = CustodianReserves(
            sources=sources,
            policy=policy,
            token=token,
            rawstore=rawstore,
            index=store,
            entries=None if recon is None else EntrySettings.of(recon.accounts, recon.ignore),
        )
        ledger = (
            LedgerLiabilities(
                sources=[build_ledger(c, token=token) for c in cfg.ledgers],
                rawstore=rawstore,
                index=store,
                max_future_skew_s=policy.max_future_skew_s,
            )
            if cfg.ledgers
            else None
        )
        deps = RunDeps(
            token=token,
            chains=readers,
            reserves=reserves,
            store=store,
            signers=list(ring.signers[:1]),
            checkpoint_signer=ring.signers[0],
            signers_at=ring.signers_at,
            checkpoint_cosigners=ring.signers[1:],
            origin=cfg.service.origin,
            clock=clock,
            random_bytes=random_bytes,
            publishers=publishers,
            allocation=allocation_policy(cfg),
            ledger=ledger,
            flows=flow_settings(cfg),
            snapshots=store,
            max_snapshot_gap_s=cfg.as_of.max_snapshot_gap_s,
            tree_workers=cfg.service.tree_workers or os.cpu_count() or 1,
            publish_retry_base_s=cfg.schedule.publish_retry_base_s,
            publish_retry_max_s=cfg.schedule.publish_retry_max_s,
            deadline_s=float(cfg.schedule.deadline_s),
        )
        if cfg.service.tree_engine == "dask" and cfg.dask is not None:
            from por.service.tree_dask import DaskTreeEngine, settings_from_config

            engine = DaskTreeEngine(settings_from_config(cfg.dask))
            deps.tree_builder = engine.build_parts
            svc_closers.append(engine.close)
        alerter = build_alerter(cfg, store)
        for problem in store.integrity_problems:  # rows refused by the start-up copy
            alerter.integrity(problem)
        if alerter.sender is not None:
            svc_closers.append(alerter.sender.close)
    except BaseException:
        for c in svc_closers:
            c()
        store.close()
        raise
    from por.service.witnesses import WitnessSubmitter

    return Service(
        cfg=cfg,
        store=store,
        deps=deps,
        keyset=keyset,
        closers=svc_closers,
        alerter=alerter,
        witnesses=WitnessSubmitter(store, targets) if targets else None,
        raw_store=reserves.rawstore,
    )
