"""`por config check`: what a configuration would do, said in words, without signing.

`describe(cfg)` lists, per source, what a run would read (endpoints, contracts, blocks,
statement files that match now), where it would publish, which keys would sign, and
which environment variables are missing (by name; a value is never shown). It reads
the file system (statement globs, key files) and the database's schema revision, and
nothing on the network.
"""

from __future__ import annotations

import glob
import os

from por.service.config import (
    ApiCustodianConfig,
    ApiLedgerConfig,
    Config,
    EvmChainConfig,
    FakeChainConfig,
    FilesCustodianConfig,
    FilesLedgerConfig,
    SolanaChainConfig,
)


def _env(name: str, what: str, missing: list[str]) -> str:
    if os.environ.get(name):
        return f"${name} (set)"
    missing.append(f"{name} ({what})")
    return f"${name} (NOT SET)"


def describe(cfg: Config) -> tuple[list[str], list[str]]:  # noqa: PLR0912, PLR0915 - one branch per source kind
    """(lines saying what each part would do, problems that stop a run)."""
    lines: list[str] = []
    missing: list[str] = []
    problems: list[str] = []
    sched = cfg.schedule
    when = f"every {sched.interval_s} s" if sched.interval_s else f"cron {sched.cron!r} (UTC)"
    lines.append(f"token {cfg.token.symbol}: {cfg.token.decimals} decimals, {cfg.token.currency}")
    lines.append(f"schedule: {when}; API on {cfg.service.listen}")
    lines.append(_api_line(cfg))
    lines.append(
        f"runs: deadline {sched.deadline_s} s; a leader gives up after "
        f"{sched.release_after_failures} failed runs in a row; pending publications retried "
        f"after {sched.publish_retry_base_s} s doubling to {sched.publish_retry_max_s} s"
    )

    for i, c in enumerate(cfg.chains):
        head = f"chains[{i}] {c.chain_id}"
        if isinstance(c, EvmChainConfig):
            quorum = c.quorum or len(c.rpc_urls) // 2 + 1
            start = "genesis" if c.index_from_genesis else f"block {c.start_block}"
            lines.append(
                f"{head}: EVM token {c.token} via {len(c.rpc_urls)} endpoint(s) "
                f"({', '.join(c.rpc_urls)}), {quorum} must agree; holders from Transfer logs "
                f"since {start}; {c.spot_checks} balanceOf spot checks per run"
            )
            excluded = c.exclusions()
            if excluded:
                lines.append(f"  excluded from circulation: {len(excluded)} account(s)")
            if c.oracle:
                attestors = [
                    _env(e, f"attestor key of {c.chain_id}", missing) for e in c.attestor_key_envs
                ] + [f"HSM key {label!r}" for label in c.attestor_hsm_labels]
                sender = _env(c.publisher_key_env or "", f"publisher key of {c.chain_id}", missing)
                lines.append(
                    f"  publishes to ReserveOracle {c.oracle}: sender {sender}, attestors "
                    f"{', '.join(attestors)}; {c.confirmations} confirmation(s)"
                )
        elif isinstance(c, SolanaChainConfig):
            lines.append(f"{head}: Solana mint {c.mint} via {c.rpc_url} at finalized commitment")
            if c.memo_keypair is not None:
                state = "exists" if c.memo_keypair.is_file() else "MISSING"
                if state == "MISSING":
                    problems.append(f"{head}: memo keypair {c.memo_keypair} does not exist")
                lines.append(
                    f"  publishes the digest in a memo, keypair {c.memo_keypair} ({state})"
                )
        elif isinstance(c, FakeChainConfig):
            lines.append(f"{head}: in-memory demo chain with {len(c.holders)} holder(s)")

    for i, s in enumerate(cfg.custodians):
        head = f"custodians[{i}] {s.name}"
        if isinstance(s, FilesCustodianConfig):
            matched = sorted({m for p in s.paths for m in glob.glob(str(p))})
            age = f"; older than {s.max_age_s} s is stale" if s.max_age_s else ""
            lines.append(
                f"{head}: statement files {', '.join(str(p) for p in s.paths)} "
                f"({len(matched)} file(s) match now{age})"
            )
            lines.extend(f"  {m}" for m in matched[:20])
            if not matched:
                problems.append(f"{head}: no file matches {', '.join(str(p) for p in s.paths)}")
        elif isinstance(s, ApiCustodianConfig):
            lines.append(
                f"{head}: signed custodian API {s.base_url}, responses verified with "
                f"Ed25519 key {s.public_key.hex()[:16]}…; older than {s.max_age_s} s is stale"
            )

    for i, led in enumerate(cfg.ledgers):
        head = f"ledgers[{i}] {led.name}"
        age = f"; older than {led.max_age_s} s is stale" if led.max_age_s else ""
        if isinstance(led, FilesLedgerConfig):
            matched = sorted({m for p in led.paths for m in glob.glob(str(p))})
            signed = (
                f"each signed (FILE.sig) by Ed25519 key {led.public_key.hex()[:16]}…"
                if led.public_key is not None
                else "hash-referenced only (no signature key)"
            )
            lines.append(
                f"{head}: off-chain liabilities of ledger:{led.issuer}:… from export files "
                f"{', '.join(str(p) for p in led.paths)} ({len(matched)} file(s) match now; "
                f"{signed}{age})"
            )
            lines.extend(f"  {m}" for m in matched[:20])
            if not matched:
                problems.append(f"{head}: no file matches {', '.join(str(p) for p in led.paths)}")
        elif isinstance(led, ApiLedgerConfig):
            lines.append(
                f"{head}: off-chain liabilities of ledger:{led.issuer}:… from the signed API "
                f"{led.base_url}, verified with Ed25519 key {led.public_key.hex()[:16]}…{age}"
            )
    rec = cfg.reconciliation
    if rec is None:
        lines.append("reconciliation: off (mints and burns are not matched with the bank)")
    else:
        reconciled = [c.chain_id for c in cfg.chains if getattr(c, "reconcile", True)]
        tolerance = "none" if rec.tolerance is None else f"{rec.tolerance} base units"
        against = "accounts " + ", ".join(rec.accounts) if rec.accounts else "every account"
        lines.append(
            f"reconciliation: flows since {rec.start} on {', '.join(reconciled) or 'no chain'} "
            f"against {against} of the custodians; "
            f"match window {rec.window_s} s, overdue after {rec.max_age_s} s, tolerance {tolerance}"
        )

    sig = cfg.signing
    if sig.pkcs11 is not None and sig.pkcs11.key_label is not None:
        h = sig.pkcs11
        pin = _env(h.pin_env, "the HSM user PIN", missing)
        lines.append(
            f"signing: HSM key {h.key_label!r} in token {h.token_label!r} via {h.module} "
            f"({'exists' if h.module.is_file() else 'MISSING'}), PIN {pin}"
        )
        if not h.module.is_file():
            problems.append(f"signing.pkcs11.module: {h.module} does not exist")
        if h.next_key_label:
            lines.append(f"  rotation: next key {h.next_key_label!r}")
    else:
        files = [p for p in (sig.key_file, sig.next_key_file) if p is not None]
        for p in files:
            if not p.is_file():
                problems.append(f"signing: key file {p} does not exist")
        passphrase = _env(sig.passphrase_env, "the issuer key passphrase", missing)
        lines.append(
            f"signing: file key {', '.join(str(p) for p in files)}, passphrase {passphrase}"
        )
    if not sig.keys_file.is_file():
        problems.append(f"signing.keys_file: {sig.keys_file} does not exist")
    lines.append(f"key set: {sig.keys_file}")

    hooks = cfg.alerts.webhooks
    lines.append(
        f"alerts: stale after {cfg.alerts.stale_after_intervals} intervals, publication lag "
        f"{cfg.alerts.publication_lag_blocks} blocks, {len(hooks)} webhook(s)"
    )
    for hook in hooks:
        key = _env(hook.secret_env, "webhook key", missing)
        lines.append(f"  webhook {hook.url}, HMAC key {key}")
    lines.append(f"database: {_database_state(cfg, problems)}")
    art = cfg.artifacts
    if art.kind == "s3":
        where = f"s3://{art.bucket}/{art.prefix}".rstrip("/")
        lines.append(
            f"tree artifacts: {where} at {art.endpoint or 'AWS ' + art.region}, shards of "
            f"{art.shard_leaves} leaves; credentials "
            f"{_env(art.access_key_id_env, 'S3 access key id', [])}, "
            f"{_env(art.secret_access_key_env, 'S3 secret key', [])}"
        )
    else:
        lines.append(f"tree artifacts: files under {cfg.service.data_dir / 'trees'}")
    lines.append(
        "run state: database rows and the object store (any instance can take over)"
        if cfg.service.state == "database"
        else f"run state: files under {cfg.service.data_dir} (index, memo, raw)"
    )
    problems.extend(f"environment variable {m} is not set" for m in missing)
    return lines, problems


def _database_state(cfg: Config, problems: list[str]) -> str:
    from por.errors import PorError
    from por.store.db import Database
    from por.store.migrate import UPGRADE_COMMAND, current_revision, head_revision

    url = cfg.database_url
    if url.startswith("sqlite:///") and not os.path.exists(url[len("sqlite:///") :]):
        problems.append(f"database not created yet: run `{UPGRADE_COMMAND}`")
        return f"{url} (not created yet)"
    try:
        db = Database.connect(url)
        try:
            current = current_revision(db)
        finally:
            db.close()
    except PorError as e:
        problems.append(f"database: {e}")
        return f"{url} (unreachable)"
    where = db.where
    if current != head_revision():
        problems.append(
            f"database at revision {current}, needs {head_revision()}: run `{UPGRADE_COMMAND}`"
        )
    return f"{where} at schema revision {current}"


def _api_line(cfg: Config) -> str:
    """`[api]` in one line: who the client is, where budgets live, the server's limits."""
    a = cfg.api
    proxies = ", ".join(a.trusted_proxies) or "none (the TCP peer is the client)"
    if a.rate_limit_backend == "redis":
        from urllib.parse import urlsplit

        u = urlsplit(a.rate_limit_redis_url)
        where = f"Redis {u.hostname}:{u.port or 6379} (shared by replicas)"  # no password
    else:
        where = "each API process"
    return (
        f"api: trusted proxies {proxies}; rate limits in {where}: proofs "
        f"{a.proof_rate_burst} + {a.proof_rate_per_s:g}/s, history {a.history_rate_burst} + "
        f"{a.history_rate_per_s:g}/s per client; {a.max_expensive_requests} costly requests "
        f"at once; headers within {a.header_timeout_s:g} s, idle {a.idle_timeout_s:g} s, "
        f"connections {a.max_connections or 'from the descriptor limit'}"
    )
