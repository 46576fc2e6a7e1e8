"""C2SP tlog-witness: the add-checkpoint request, the witness's decision, the log's reading.

    POST <witness>/add-checkpoint
    old <size>\\n                  the size of the checkpoint the witness last cosigned
    <base64 hash>\\n ...           an RFC 6962 consistency proof from that size (<= 63 lines)
    \\n
    <checkpoint note>              the new signed checkpoint

A witness keeps, per log origin, the latest checkpoint it cosigned. `decide` is its
whole judgement, a pure function of that state and the request, answering as the spec
orders: unknown origin -> 404; no valid signature by a trusted log key -> 403; old size
above the checkpoint's -> 400; old size not the witness's size -> 409 with the
witness's size (`text/x.tlog.size`); same size but another root -> 409; a consistency
proof that does not verify (or is not empty when it must be) -> 422; else a
cosignature/v1 line on the checkpoint and the new state the witness must persist,
atomically with the size check, before it answers.

The log's side reads the 409 body (`parse_size_body`) and the 200 body
(`read_cosignatures`: signature lines, only those by the witness key it trusts count).

No I/O: the caller (a server, a store) persists state and passes the time.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass

from por.core.ed25519 import b64decode_strict
from por.core.note import (
    ALG_COSIGNATURE_V1,
    Cosignature,
    NoteSigner,
    SignatureLine,
    VerifierKey,
    cosign,
    parse_decimal,
    parse_signature_lines,
    split_note,
    verify_cosignature,
)
from por.core.tlog import (
    EMPTY_ROOT,
    HASH_SIZE,
    MAX_TREE_SIZE,
    Checkpoint,
    VerifiedCheckpoint,
    open_checkpoint,
    verify_consistency,
)
from por.errors import FormatError, InputError, ProofError, SignatureError, VerificationError

MAX_PROOF_LINES = 63
SIZE_CONTENT_TYPE = "text/x.tlog.size"
MAX_REQUEST_BYTES = 64 * 1024


class UnknownLogError(InputError):
    """The checkpoint's origin is not a log this witness follows (HTTP 404)."""


class SizeConflictError(VerificationError):
    """The old size is not the witness's, or the same size has another root (HTTP 409).

    `witness_size` is the size of the checkpoint the witness last cosigned."""

    def __init__(self, message: str, *, witness_size: int, where: str | None = None) -> None:
        super().__init__(message, where=where)
        self.witness_size = witness_size


def http_status(e: Exception) -> int:
    """The status tlog-witness gives for each refusal (500 for anything else)."""
    if isinstance(e, UnknownLogError):
        return 404
    if isinstance(e, SignatureError):
        return 403
    if isinstance(e, SizeConflictError):
        return 409
    if isinstance(e, ProofError):
        return 422
    if isinstance(e, InputError):
        return 400
    return 500


# --- the request --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class AddCheckpoint:
    old_size: int
    proof: tuple[bytes, ...]
    note: str

    def encode(self) -> bytes:
        lines = [f"old {self.old_size}\n"]
        lines += [b64(h) + "\n" for h in self.proof]
        return ("".join(lines) + "\n" + self.note).encode("utf-8")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def parse_add_checkpoint(body: bytes, *, where: str = "add-checkpoint") -> AddCheckpoint:
    """Parse an add-checkpoint request body strictly (FormatError -> HTTP 400)."""
    if len(body) > MAX_REQUEST_BYTES:
        raise FormatError(f"request body over {MAX_REQUEST_BYTES} bytes", where=where)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise FormatError("request body is not UTF-8", where=where) from e
    head, sep, note = text.partition("\n\n")
    if not sep:
        raise FormatError("no blank line between the proof and the checkpoint", where=where)
    lines = head.split("\n")
    first = lines[0]
    if not first.startswith("old "):
        raise FormatError("first line must be 'old <size>'", where=f"{where}:1")
    old_size = parse_decimal(first[4:], maximum=MAX_TREE_SIZE, what="old size", where=f"{where}:1")
    proof_lines = lines[1:]
    if len(proof_lines) > MAX_PROOF_LINES:
        raise FormatError(
            f"{len(proof_lines)} consistency proof lines, at most {MAX_PROOF_LINES}", where=where
        )
    proof = []
    for i, line in enumerate(proof_lines):
        h = b64decode_strict(line, where=f"{where}:{i + 2}")
        if len(h) != HASH_SIZE:
            raise FormatError(f"proof hash is {len(h)} bytes, want 32", where=f"{where}:{i + 2}")
        proof.append(h)
    return AddCheckpoint(old_size=old_size, proof=tuple(proof), note=note)


# --- the witness's judgement ----------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class WitnessedLog:
    """What a witness keeps per origin: the latest checkpoint it cosigned."""

    origin: str
    size: int
    root_hash: bytes
    note: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """A checkpoint the witness accepts: its cosignature, and the state to persist first."""

    cosignature: SignatureLine
    state: WitnessedLog
    checkpoint: Checkpoint


def origin_of(note: str, *, where: str = "checkpoint") -> str:
    """The origin line of a note (nothing verified yet: only to look up the log's key)."""
    body, _ = split_note(note, where=where)
    return Checkpoint.from_body(body, where=where).origin


def decide(
    request: AddCheckpoint,
    *,
    logs: Mapping[str, VerifierKey],
    state: WitnessedLog | None,
    name: str,
    signer: NoteSigner,
    timestamp: int,
    where: str = "add-checkpoint",
) -> Decision:
    """The witness's judgement of one add-checkpoint request (see the module docstring).

    `logs` maps each followed origin to the log's checkpoint vkey; `state` is what the
    witness holds for the request's origin (None: never cosigned it).
    """
    origin = origin_of(request.note, where=where)
    log_key = logs.get(origin)
    if log_key is None:
        raise UnknownLogError(f"this witness does not follow the log {origin!r}", where=where)
    # Signature first (403), so nobody learns the witness's size without a signed note.
    opened: VerifiedCheckpoint = open_checkpoint(
        request.note, log_key=log_key, origin=origin, where=where
    )
    cp = opened.checkpoint
    if request.old_size > cp.size:
        raise FormatError(
            f"old size {request.old_size} is above the checkpoint size {cp.size}", where=where
        )
    held = 0 if state is None else state.size
    if request.old_size != held:
        raise SizeConflictError(
            f"old size {request.old_size} is not the size this witness last cosigned ({held})",
            witness_size=held,
            where=where,
        )
    held_root = EMPTY_ROOT if state is None else state.root_hash
    if request.old_size == cp.size and cp.root_hash != held_root:
        # tlog-witness: same size, another root — a split view, never cosigned.
        raise SizeConflictError(
            f"checkpoint of size {cp.size} has another root than the one this witness "
            f"cosigned ({cp.root_hash.hex()} vs {held_root.hex()})",
            witness_size=held,
            where=where,
        )
    if request.old_size == 0 and request.proof:
        raise ProofError("the consistency proof from size 0 must be empty", where=where)
    verify_consistency(request.old_size, cp.size, held_root, cp.root_hash, request.proof)
    line = cosign(opened.body, name=name, signer=signer, timestamp=timestamp)
    return Decision(
        cosignature=line,
        state=WitnessedLog(origin=origin, size=cp.size, root_hash=cp.root_hash, note=request.note),
        checkpoint=cp,
    )


# --- the log's side -----------------------------------------------------------------------


def parse_size_body(body: bytes, *, where: str = "409 response") -> int:
    """A `text/x.tlog.size` body: the witness's size in decimal and a newline."""
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError as e:
        raise FormatError("size body is not ASCII", where=where) from e
    if not text.endswith("\n"):
        raise FormatError("size body must end with a newline", where=where)
    return parse_decimal(text[:-1], maximum=MAX_TREE_SIZE, what="size", where=where)


def read_cosignatures(
    body: bytes,
    *,
    checkpoint_body: str,
    witness: VerifierKey,
    not_after: int | None = None,
    where: str = "200 response",
) -> list[Cosignature]:
    """The valid cosignatures by `witness` in an add-checkpoint answer (others ignored).

    A line by the witness's key that does not verify is an error; so is an answer
    without any line by it.
    """
    if witness.alg != ALG_COSIGNATURE_V1:
        raise FormatError("witness key must be a cosignature key (type 0x04)", where=where)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise FormatError("answer is not UTF-8", where=where) from e
    lines = parse_signature_lines(text, where=where)
    ours = [
        verify_cosignature(checkpoint_body, ln, witness, not_after=not_after, where=where)
        for ln in lines
        if ln.is_by(witness)
    ]
    if not ours:
        raise SignatureError(f"no cosignature by the witness key {witness.name}", where=where)
    return ours


__all__ = [
    "MAX_PROOF_LINES",
    "MAX_REQUEST_BYTES",
    "SIZE_CONTENT_TYPE",
    "AddCheckpoint",
    "Decision",
    "SizeConflictError",
    "UnknownLogError",
    "WitnessedLog",
    "decide",
    "http_status",
    "origin_of",
    "parse_add_checkpoint",
    "parse_size_body",
    "read_cosignatures",
]
