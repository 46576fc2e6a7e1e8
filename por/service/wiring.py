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

from por.core.attestation import Token
from por.crashpoints import crashpoint
from por.errors import ConfigError, PorError
from por.oracle.base import Publisher
from por.service.config import (
    ApiCustodianConfig,
    ChainConfig,
    Config,
    CustodianConfig,
    EvmChainConfig,
    FakeChainConfig,
    FilesCustodianConfig,
    SolanaChainConfig,
)
from por.service.run import (
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
    from por.core.dsse import Ed25519Signer, KeySet
    from por.core.policy import Policy
    from por.custodians.base import CustodianSource
    from por.custodians.rawstore import RawStore
    from por.service.scheduler import AttestationScheduler
    from por.store.store import Store

log = logging.getLogger("por.service")


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _secret(env: str, where: str) -> str:
    value = os.environ.get(env)
    if not value:
        raise ConfigError(f"environment variable {env} is not set", where=where)
    return value


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

    def evaluate(self, *, as_of: datetime) -> ReserveResult:
        from por.custodians.reserves import evaluate_reserves

        reports = []
        reasons: list[str] = []
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
        )


# --- chains and publishers ----------------------------------------------------------------


def build_chain(
    chain: ChainConfig, *, cfg: Config, where: str, store: Store, publish: bool
) -> tuple[ChainReader, Publisher | None]:
    if isinstance(chain, EvmChainConfig):
        from por.chains.evm import EvmChainReader, FileCheckpointStore

        reader = EvmChainReader(
            chain_id=chain.chain_number,
            rpc_urls=chain.rpc_urls,
            token_address=chain.token,
            excluded=chain.exclusions(),
            checkpoint_store=FileCheckpointStore(cfg.service.data_dir / "index"),
            start_block=chain.start_block,
            quorum=chain.quorum,
            max_log_range=chain.max_log_range,
            spot_checks=chain.spot_checks,
            expected_decimals=cfg.token.decimals,
        )
        publisher: Publisher | None = None
        if publish and chain.oracle is not None and chain.publisher_key_env is not None:
            from por.oracle.evm_publisher import EvmPublisher
            from por.oracle.intents import DbIntentStore

            sender = _secret(chain.publisher_key_env, where)
            attestors = [_secret(e, where) for e in chain.attestor_key_envs] or [sender]
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
        from por.chains.solana import SolanaReader

        sol_reader: ChainReader = SolanaReader(
            chain.rpc_url,
            chain.mint,
            chain_id=chain.chain_id,
            exclusions=chain.exclusions(),
            expected_decimals=cfg.token.decimals,
        )
        sol_publisher: Publisher | None = None
        if publish and chain.memo_keypair is not None:
            from por.oracle.solana_memo import SolanaMemoPublisher

            sol_publisher = SolanaMemoPublisher(
                chain.rpc_url,
                chain.memo_keypair,
                chain_id=chain.chain_id,
                state_dir=cfg.service.data_dir / "memo",
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


# --- the service --------------------------------------------------------------------------


def load_signer(cfg: Config) -> Ed25519Signer:
    from por.core.dsse import Ed25519Signer

    passphrase = os.environ.get(cfg.signing.passphrase_env)
    if not passphrase:
        raise ConfigError(
            f"set {cfg.signing.passphrase_env} to the issuer key's passphrase",
            where=f"{cfg.path}:signing.passphrase_env",
        )
    try:
        pem = cfg.signing.key_file.read_bytes()
    except OSError as e:
        raise ConfigError(
            f"cannot read the issuer key: {e.strerror}", where=str(cfg.signing.key_file)
        ) from e
    return Ed25519Signer.from_pem(pem, passphrase, where=str(cfg.signing.key_file))


@dataclass(slots=True)
class Service:
    cfg: Config
    store: Store
    deps: RunDeps
    keyset: KeySet
    closers: list[Callable[[], None]] = field(default_factory=list)
    _run_lock: threading.Lock = field(default_factory=threading.Lock)
    scheduler: AttestationScheduler | None = None
    api_alive: Callable[[], bool] | None = None

    def attest(self) -> RunResult:
        """One run; runs of one process never overlap (the API trigger and the scheduler)."""
        with self._run_lock:
            return attest_once(self.deps)

    def catch_up(self) -> list[PublishOutcome]:
        with self._run_lock:
            return catch_up_publications(self.deps)

    def app(self) -> FastAPI:
        from por.api import ApiDeps, create_app

        token = os.environ.get(self.cfg.service.admin_token_env) or None
        return create_app(
            ApiDeps(
                store=self.store,
                keys=self.keyset.to_dict(),
                admin_token=token,
                trigger=lambda: self.attest().sequence,
            )
        )

    def start_api(self) -> None:
        """Serve the API with the production settings (por.service.server): one server in
        a background thread of this process when `api_workers` resolves to 1, else that
        many worker processes on one SO_REUSEPORT port. No signal handlers there."""
        from por.service.server import WorkerPool, resolve_workers, serve_in_thread

        host, port = self.cfg.service.listen_host, self.cfg.service.listen_port
        workers = resolve_workers(self.cfg.service.api_workers)
        if workers == 1 or not self.cfg.path.is_file():  # workers re-read the file
            self.api_alive, stop = serve_in_thread(self.app(), host=host, port=port)
            self.closers.append(stop)
            return
        pool = WorkerPool(
            config_path=self.cfg.path.resolve(), host=host, port=port, workers=workers
        )
        self.closers.append(pool.stop)
        pool.start()
        self.api_alive = pool.alive

    def start_scheduler(self, *, run_now: bool) -> AttestationScheduler:
        from por.service.scheduler import AttestationScheduler

        leadership = self.store.leadership("attest")
        self.scheduler = AttestationScheduler(self.cfg.schedule, self.attest, leadership)
        self.scheduler.start(run_now=run_now)
        self.closers.append(self.scheduler.shutdown)
        return self.scheduler

    def _wait_for_signal(self) -> None:
        """Block the main thread until SIGINT/SIGTERM (or the API thread dies)."""
        stop = threading.Event()

        def handler(signum: int, frame: Any) -> None:
            log.info("signal %d: shutting down", signum)
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
            self.start_api()
        self.start_scheduler(run_now=run_now)
        self._wait_for_signal()

    def serve_forever(self) -> None:
        self.start_api()
        self._wait_for_signal()

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
) -> Service:
    from por.core.dsse import KeySet
    from por.core.policy import Policy
    from por.custodians.rawstore import RawStore
    from por.store.store import Store

    try:
        keyset = KeySet.from_json_bytes(
            cfg.signing.keys_file.read_bytes(), where=str(cfg.signing.keys_file)
        )
    except OSError as e:
        raise ConfigError(
            f"cannot read the key set: {e.strerror}", where=str(cfg.signing.keys_file)
        ) from e
    signer = load_signer(cfg)
    if keyset.get(signer.keyid) is None:
        raise ConfigError(
            f"the issuer key {signer.keyid[:16]}… is not in the published key set",
            where=str(cfg.signing.keys_file),
        )
    store = Store.open(
        cfg.database_url,
        data_dir=cfg.service.data_dir,
        attestations_dir=cfg.service.attestations_dir,
    )
    svc_closers: list[Callable[[], None]] = []
    try:
        readers = []
        publishers: list[Publisher] = []
        for i, chain in enumerate(cfg.chains):
            reader, pub = build_chain(
                chain, cfg=cfg, where=f"{cfg.path}:chains[{i}]", store=store, publish=publish
            )
            readers.append(reader)
            if hasattr(reader, "close"):
                svc_closers.append(reader.close)
            if pub is not None:
                publishers.append(pub)
        sources = [build_custodian(c) for c in cfg.custodians]
        token = Token(
            symbol=cfg.token.symbol, decimals=cfg.token.decimals, currency=cfg.token.currency
        )
        policy = Policy.from_dict(cfg.policy, where=f"{cfg.path}:policy")
        reserves = CustodianReserves(
            sources=sources,
            policy=policy,
            token=token,
            rawstore=RawStore(cfg.service.data_dir / "raw"),
        )
        deps = RunDeps(
            token=token,
            chains=readers,
            reserves=reserves,
            store=store,
            signers=[signer],
            checkpoint_signer=signer,
            origin=cfg.service.origin,
            clock=clock,
            random_bytes=random_bytes,
            publishers=publishers,
            tree_workers=cfg.service.tree_workers or os.cpu_count() or 1,
        )
    except BaseException:
        for c in svc_closers:
            c()
        store.close()
        raise
    return Service(cfg=cfg, store=store, deps=deps, keyset=keyset, closers=svc_closers)
