"""Monitor the attestation log through C2SP tlog-tiles: what `por log verify` runs.

A monitor trusts the log for nothing. From the signed checkpoint and the log's tiles and
bundles it checks, and reports each as a CheckResult:

- checkpoint: signed by the log's key (C2SP vkey), for the expected origin, with the
  required witness cosignatures;
- history: against the checkpoint it kept from last time, the log neither shrank nor
  shows another root for the same size (a split view) — the kept checkpoint is reported
  as evidence if so;
- entries: every envelope's SHA-256 is the entry at its index, every entry hashes to
  the level-0 tile hash, every envelope is in the log's exact form, and the root
  recomputed from all entries is the checkpoint's root;
- tiles: every tile of every level is what the entries give;
- consistency: the kept checkpoint's root is the root of the first `size` entries, and
  the log's own consistency proof (if the caller fetched one) verifies too.

No I/O: the caller hands in `fetch(path) -> bytes` for tile paths and, optionally, the
log's consistency proof. `MonitorState` is what the caller keeps between runs.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from por.core.dsse import Envelope, KeySet
from por.core.note import VerifierKey
from por.core.tiles import (
    ENTRIES,
    ENVELOPES,
    TILE_HEIGHT,
    TILE_WIDTH,
    bundles_for_size,
    check_tile_width,
    decode_bundle,
    split_hashes,
    tile_for_size,
)
from por.core.tlog import (
    LogTree,
    VerifiedCheckpoint,
    leaf_hash,
    open_checkpoint,
    verify_consistency,
)
from por.core.verify import FAIL, PASS, SKIP, CheckResult, Report
from por.errors import FormatError, MismatchError, PorError, ProofError

Fetch = Callable[[str], bytes]


@dataclass(frozen=True, slots=True, kw_only=True)
class MonitorState:
    """The checkpoint a monitor verified last, kept between runs (a small JSON file)."""

    origin: str
    size: int
    root_hash: bytes
    checkpoint: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "size": self.size,
            "root_hash": base64.b64encode(self.root_hash).decode("ascii"),
            "checkpoint": self.checkpoint,
        }

    @classmethod
    def from_dict(cls, d: object, *, where: str = "state") -> MonitorState:
        if not isinstance(d, dict) or set(d) != {"origin", "size", "root_hash", "checkpoint"}:
            raise FormatError("must be {origin, size, root_hash, checkpoint}", where=where)
        size = d["size"]
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise FormatError("size must be a non-negative integer", where=f"{where}.size")
        if not isinstance(d["origin"], str) or not isinstance(d["checkpoint"], str):
            raise FormatError("origin and checkpoint must be strings", where=where)
        try:
            root = base64.b64decode(d["root_hash"], validate=True)
        except (ValueError, TypeError) as e:
            raise FormatError("root_hash must be base64", where=f"{where}.root_hash") from e
        if len(root) != 32:
            raise FormatError("root_hash must be 32 bytes", where=f"{where}.root_hash")
        return cls(origin=d["origin"], size=size, root_hash=root, checkpoint=d["checkpoint"])


@dataclass(frozen=True, slots=True, kw_only=True)
class LogAudit:
    report: Report
    state: MonitorState | None  # the state to keep, when every check passed
    envelopes: tuple[bytes, ...]  # every envelope of the log, in leaf order


def _skip(name: str, why: str) -> CheckResult:
    return CheckResult(name=name, status=SKIP, detail=why)


def _fail(name: str, e: PorError) -> CheckResult:
    return CheckResult(name=name, status=FAIL, detail=str(e))


def _history(previous: MonitorState | None, opened: VerifiedCheckpoint) -> CheckResult:
    cp = opened.checkpoint
    if previous is None:
        return _skip("history", "no kept checkpoint: first run (keep --state for the next)")
    if previous.origin != cp.origin:
        return CheckResult(
            name="history",
            status=FAIL,
            detail=f"kept checkpoint is for {previous.origin!r}, not {cp.origin!r}",
        )
    if previous.size > cp.size:
        return CheckResult(
            name="history",
            status=FAIL,
            detail=f"the log shrank: it served size {previous.size} before, {cp.size} now "
            f"(kept checkpoint: {previous.checkpoint!r})",
        )
    if previous.size == cp.size and previous.root_hash != cp.root_hash:
        return CheckResult(
            name="history",
            status=FAIL,
            detail=f"SPLIT VIEW: two signed checkpoints of size {cp.size} with different "
            f"roots ({previous.root_hash.hex()} kept, {cp.root_hash.hex()} now); both are "
            f"signed by the log — keep them as evidence. Kept: {previous.checkpoint!r}",
        )
    return CheckResult(
        name="history",
        status=PASS,
        detail=f"kept size {previous.size}, now {cp.size}: the log did not shrink",
    )


def _read_entries(size: int, fetch: Fetch) -> tuple[list[bytes], list[bytes], list[bytes]]:
    """(entries, envelopes, level-0 tile hashes) of the whole log, checked for shape."""
    entries: list[bytes] = []
    envelopes: list[bytes] = []
    level0: list[bytes] = []
    for ref in bundles_for_size(size, ENTRIES):
        got = decode_bundle(fetch(ref.path()), where=ref.path())
        check_tile_width(ref, got, where=ref.path())
        entries += got
        env_ref = type(ref)(level=ENVELOPES, index=ref.index, width=ref.width)
        envs = decode_bundle(fetch(env_ref.path()), length_bytes=4, where=env_ref.path())
        check_tile_width(env_ref, envs, where=env_ref.path())
        envelopes += envs
    for ref in tile_for_size(0, size):
        hashes = split_hashes(fetch(ref.path()), where=ref.path())
        check_tile_width(ref, hashes, where=ref.path())
        level0 += hashes
    return entries, envelopes, level0


def _check_entries(
    size: int, root: bytes, entries: list[bytes], envelopes: list[bytes], level0: list[bytes]
) -> LogTree:
    if not len(entries) == len(envelopes) == len(level0) == size:
        raise FormatError(
            f"the log serves {len(entries)} entries, {len(envelopes)} envelopes and "
            f"{len(level0)} leaf hashes for size {size}"
        )
    tree = LogTree()
    for i, (entry, env, tile_hash) in enumerate(zip(entries, envelopes, level0, strict=True)):
        if hashlib.sha256(env).digest() != entry:
            raise MismatchError(
                f"entry {i} is not the SHA-256 of envelope {i}",
                expected=entry.hex(),
                computed=hashlib.sha256(env).hexdigest(),
            )
        if leaf_hash(entry) != tile_hash:
            raise MismatchError(
                f"entry {i} does not hash to its level-0 tile hash",
                expected=tile_hash.hex(),
                computed=leaf_hash(entry).hex(),
            )
        # DESIGN §5: the leaf commits to the envelope's exact RFC 8785 bytes.
        exact = Envelope.from_json_bytes(env, where=f"envelope {i}", exact=True).to_json_bytes()
        if exact != env:
            raise FormatError(f"envelope {i} is not in the log's exact (RFC 8785) form")
        tree.append(tile_hash)
    if tree.root() != root:
        raise ProofError(
            "the root recomputed from every entry is not the checkpoint's root",
            expected=root.hex(),
            computed=tree.root().hex(),
        )
    return tree


def _check_tiles(tree: LogTree, fetch: Fetch) -> int:
    """Compare every tile above level 0 with the tree the entries give; return the count."""
    n = 0
    level = 1
    while TILE_WIDTH**level <= tree.size:
        for ref in tile_for_size(level, tree.size):
            got = split_hashes(fetch(ref.path()), where=ref.path())
            want = tree.subtree_hashes(TILE_HEIGHT * level, ref.index * TILE_WIDTH, ref.count)
            if got != want:
                raise MismatchError(f"{ref.path()} is not what the entries give")
            n += 1
        level += 1
    return n


def audit_log(
    note: str,
    *,
    keyset: KeySet,
    fetch: Fetch,
    previous: MonitorState | None = None,
    consistency_proof: Callable[[int, int], Sequence[bytes]] | None = None,
    witnesses: Sequence[VerifierKey] = (),
    required_witnesses: int = 0,
    log_key: VerifierKey | None = None,
    origin: str | None = None,
) -> LogAudit:
    """Every check of the module docstring; never raises for a failed check."""
    key = log_key or (keyset.log.vkey if keyset.log else None)
    want_origin = origin or (keyset.log.origin if keyset.log else None)
    if key is None or want_origin is None:
        fail = CheckResult(name="checkpoint", status=FAIL, detail="no log key to verify with")
        return LogAudit(report=Report(subject="log", checks=(fail,)), state=None, envelopes=())
    try:
        opened = open_checkpoint(
            note,
            log_key=key,
            origin=want_origin,
            witnesses=tuple(witnesses) or keyset.witnesses,
            required_witnesses=required_witnesses,
        )
    except PorError as e:
        report = Report(subject=want_origin, checks=(_fail("checkpoint", e),))
        return LogAudit(report=report, state=None, envelopes=())
    cp = opened.checkpoint
    checks = [
        CheckResult(
            name="checkpoint",
            status=PASS,
            detail=f"{cp.origin} size {cp.size} root {cp.root_hash.hex()[:16]}…, log key "
            f"verified; witness cosignatures: {', '.join(opened.witnesses) or 'none'}",
        ),
        _history(previous, opened),
    ]
    envelopes: list[bytes] = []
    tree: LogTree | None = None
    try:
        entries, envelopes, level0 = _read_entries(cp.size, fetch)
        tree = _check_entries(cp.size, cp.root_hash, entries, envelopes, level0)
        checks.append(
            CheckResult(
                name="entries",
                status=PASS,
                detail=f"{cp.size} envelopes: each one's SHA-256 is its entry and its leaf; "
                "the root recomputed from all of them is the checkpoint's",
            )
        )
    except PorError as e:
        checks.append(_fail("entries", e))
    if tree is None:
        checks.append(_skip("tiles", "entries did not verify"))
    else:
        try:
            n = _check_tiles(tree, fetch)
            checks.append(
                CheckResult(name="tiles", status=PASS, detail=f"{n} tile(s) above level 0 match")
            )
        except PorError as e:
            checks.append(_fail("tiles", e))
    checks.append(_consistency(previous, opened, tree, consistency_proof))
    report = Report(subject=cp.origin, checks=tuple(checks))
    state = None
    if report.ok:
        state = MonitorState(
            origin=cp.origin, size=cp.size, root_hash=cp.root_hash, checkpoint=note
        )
    return LogAudit(report=report, state=state, envelopes=tuple(envelopes))


def _consistency(
    previous: MonitorState | None,
    opened: VerifiedCheckpoint,
    tree: LogTree | None,
    proof: Callable[[int, int], Sequence[bytes]] | None,
) -> CheckResult:
    cp = opened.checkpoint
    if previous is None or previous.origin != cp.origin or previous.size > cp.size:
        return _skip("consistency", "no usable kept checkpoint")
    if tree is None:
        return _skip("consistency", "entries did not verify")
    try:
        if tree.root(previous.size) != previous.root_hash:
            raise ProofError(
                f"the first {previous.size} entries do not give the kept root",
                expected=previous.root_hash.hex(),
                computed=tree.root(previous.size).hex(),
            )
        detail = f"the first {previous.size} entries give the kept root"
        if proof is not None and 0 < previous.size < cp.size:
            verify_consistency(
                previous.size,
                cp.size,
                previous.root_hash,
                cp.root_hash,
                list(proof(previous.size, cp.size)),
            )
            detail += f"; the log's consistency proof {previous.size} -> {cp.size} verifies"
    except PorError as e:
        return _fail("consistency", e)
    return CheckResult(name="consistency", status=PASS, detail=detail)


__all__ = ["Fetch", "LogAudit", "MonitorState", "audit_log"]
