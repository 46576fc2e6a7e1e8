"""`por verify`'s flow inputs: the match list, the statements and the chains, read again.

    --matches MATCHES.json        the por-matches-v1 list (`--from` fetches it)
    --statements PATH             raw statements (files or folders; `por statements fetch`)
    --rpc CHAIN=URL               a node of each reconciled chain (repeatable)

The statements are parsed with por's own readers (por.custodians.entries, which needs
`defusedxml`: `pip install por[service]`), with the scope the match list declares (its
accounts and ignore words); only the statements the attestation names are used, and each
must be given. The chains are read over the exact block ranges of the list — EVM logs
through `eth_getLogs`, Solana transactions through `getSignaturesForAddress` +
`getTransaction` — and the last block's hash must be the listed one. These readers need
`por[service]` (web3, solders, httpx); without `--rpc` the chains are not re-read.

I/O: reads the files given and queries the nodes given.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from por.core.attestation import decode_attestation
from por.core.canonical import loads_strict
from por.core.flows import BankEntry, ChainFlow, ChainSource, recompute
from por.errors import InputError, MismatchError


def _files(paths: Sequence[str]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            out += sorted(x for x in path.iterdir() if x.is_file())
        elif path.is_file():
            out.append(path)
        else:
            raise InputError("no such file or folder", where=p)
    return out


def read_entries(statement_paths: Sequence[str], matches: bytes, payload: bytes) -> list[BankEntry]:
    """The booked entries of the statements the attestation names, read with the list's scope."""
    from por.custodians.entries import detect_entries_format, statement_entries

    att = decode_attestation(payload)
    recon = att.reconciliation
    if recon is None:
        return []
    params = recompute(loads_strict(matches, where="matches")).params
    by_sha: dict[str, Path] = {}
    for f in _files(statement_paths):
        by_sha[hashlib.sha256(f.read_bytes()).hexdigest()] = f
    missing = [s for s in recon.statements if s not in by_sha]
    if missing:
        raise InputError(
            f"{len(missing)} statement(s) the attestation names are not among the files given: "
            + ", ".join(missing[:5]),
            where="--statements",
        )
    out: list[BankEntry] = []
    for sha in recon.statements:
        path = by_sha[sha]
        data = path.read_bytes()
        fmt = detect_entries_format(data)
        if fmt is None:
            raise InputError("not a camt.053 or MT940 statement", where=str(path))
        out += statement_entries(
            data,
            name=str(path),
            fmt=fmt,
            custodian="?",  # the configured name is not a figure: not compared
            token_currency=att.token.currency,
            token_decimals=att.token.decimals,
            ignore=params.ignore,
            accounts=None if params.accounts is None else frozenset(params.accounts),
        )
    return out


def parse_rpc(values: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in values:
        chain, sep, url = v.partition("=")
        if not sep or not chain or not url.startswith(("http://", "https://")):
            raise InputError(
                f"must be CHAIN=URL (e.g. eip155:1=https://...), got {v!r}", where="--rpc"
            )
        out[chain] = url
    return out


def read_flows(rpc: dict[str, str], matches: bytes) -> list[ChainFlow]:
    """Every mint and burn of the list's chains over its block ranges, from the nodes given."""
    sources = recompute(loads_strict(matches, where="matches")).params.chains
    missing = [c.chain_id for c in sources if c.chain_id not in rpc]
    if missing:
        raise InputError(f"no --rpc for {', '.join(missing)}", where="--rpc")
    out: list[ChainFlow] = []
    for src in sources:
        out += _chain_flows(src, rpc[src.chain_id])
    return out


def _chain_flows(src: ChainSource, url: str) -> list[ChainFlow]:
    if src.chain_id.startswith("eip155:"):
        from por.chains.evm import EvmChainReader

        reader = EvmChainReader(
            chain_id=int(src.chain_id.split(":")[1]),
            rpc_urls=[url],
            token_address=src.token.rsplit(":", 1)[-1],
            start_block=src.from_block,
            reference_events=src.reference_events,
        )
        try:
            block_hash, flows = reader.read_flows(src.from_block, src.to_block)
        finally:
            reader.close()
    elif src.chain_id.startswith("solana:"):
        from por.chains.solana import SolanaReader

        sol = SolanaReader(url, src.token.rsplit(":", 1)[-1], chain_id=src.chain_id)
        try:
            block_hash = sol.read_block(src.to_block).hash
            flows = sol.flows_until(src.chain_id, src.to_block)
        finally:
            sol.close()
    else:
        raise InputError(f"cannot read the flows of {src.chain_id}", where="--rpc")
    if block_hash != src.block_hash:
        raise MismatchError(
            f"{src.chain_id}: block {src.to_block} is not the one the list was read at",
            expected=src.block_hash,
            computed=block_hash,
            where=url,
        )
    return [f for f in flows if src.from_block <= f.block <= src.to_block]


__all__ = ["parse_rpc", "read_entries", "read_flows"]
