"""The attestation log: an RFC 9162 Merkle tree, its proofs, and C2SP signed checkpoints.

Every signed attestation envelope is appended to an append-only log (DESIGN §5). This
module holds the tree arithmetic (RFC 9162 §2.1: leaf/node hashing, inclusion and
consistency proofs, generated and verified) and the checkpoint text a log signs after
each append (C2SP tlog-checkpoint inside a C2SP signed-note), so that existing witnesses
and monitors can follow the log.

No I/O here: no disk, network, clock or randomness. `LogTree` keeps leaf hashes in
memory; persisting them is the store's job.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from por.core.ed25519 import b64decode_strict
from por.core.note import (
    ALG_COSIGNATURE_V1,
    ALG_ED25519,
    BOM,
    Cosignature,
    NoteSigner,
    SignatureLine,
    VerifierKey,
    check_key_name,
    ed25519_signature_line,
    key_id,
    parse_decimal,
    split_note,
    verify_cosignature,
    verify_ed25519_lines,
)
from por.errors import FormatError, ProofError, SignatureError

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
"""RFC 9162 §2.1.1: the hash of an empty list is the hash of the empty string."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 §2.1.1: MTH({d(0)}) = SHA-256(0x00 || d(0))."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 §2.1.1: SHA-256(0x01 || MTH(left) || MTH(right))."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def envelope_leaf_hash(envelope_bytes: bytes) -> bytes:
    """The log leaf of one attestation envelope (DESIGN §5): H(0x00 || SHA-256(envelope))."""
    return leaf_hash(hashlib.sha256(envelope_bytes).digest())


def _split(n: int) -> int:
    """RFC 9162 §2.1.1: the largest power of two strictly smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def _check_hash(value: object, what: str) -> bytes:
    if not isinstance(value, bytes | bytearray) or len(value) != HASH_SIZE:
        size = len(value) if isinstance(value, bytes | bytearray) else type(value).__name__
        raise ProofError(f"{what} must be {HASH_SIZE} bytes", expected=HASH_SIZE, computed=size)
    return bytes(value)


def _check_size(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ProofError(f"{what} must be a non-negative integer, got {value!r}")
    return value


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """MTH of a list of leaf hashes (RFC 9162 §2.1.1), bottom-up, one pass per level."""
    if not hashes:
        return EMPTY_ROOT
    level = list(hashes)
    # Pairing left to right and carrying an odd last node up unchanged gives exactly the
    # RFC's "largest power of two" split: the carried node is the right-edge subtree.
    while len(level) > 1:
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


class LogTree:
    """An append-only RFC 9162 tree over leaf hashes, kept in memory.

    `_levels[k][i]` is the hash of the complete subtree of 2^k leaves starting at leaf
    i * 2^k. Every subtree that appears in a root or proof of ANY tree size is either
    such a complete, aligned subtree or a ragged right edge built from O(log n) of them,
    so roots and proofs cost O(log n) hashes (O(log^2 n) for an old size), never O(n).
    Memory is about two hashes per leaf.
    """

    __slots__ = ("_levels",)

    def __init__(self, leaf_hashes: Sequence[bytes] = ()) -> None:
        self._levels: list[list[bytes]] = [[]]
        for h in leaf_hashes:
            self.append(h)

    @property
    def size(self) -> int:
        return len(self._levels[0])

    def append(self, leaf_hash_: bytes) -> int:
        """Add one leaf hash; return its index."""
        h = _check_hash(leaf_hash_, "leaf hash")
        index = self.size
        self._levels[0].append(h)
        # Each time a level gets an even count, a new complete parent subtree exists.
        k = 0
        while len(self._levels[k]) % 2 == 0:
            level = self._levels[k]
            parent = node_hash(level[-2], level[-1])
            if k + 1 == len(self._levels):
                self._levels.append([])
            self._levels[k + 1].append(parent)
            k += 1
        return index

    def leaf(self, index: int) -> bytes:
        return self._levels[0][index]

    def subtree_hashes(self, height: int, start: int, count: int) -> list[bytes]:
        """Hashes of the complete, aligned subtrees of 2^height leaves number start ..
        start+count-1 (what a C2SP tlog-tiles tile holds); ProofError if any is missing."""
        have = len(self._levels[height]) if height < len(self._levels) else 0
        if start < 0 or count < 0 or start + count > have:
            raise ProofError(
                f"the log has {have} complete subtrees of height {height}",
                expected=f">= {start + count}",
                computed=have,
            )
        return self._levels[height][start : start + count]

    def _subtree(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]) for a range that occurs in the RFC recursion."""
        n = end - start
        if n == 0:
            return EMPTY_ROOT
        if n & (n - 1) == 0 and start % n == 0:
            return self._levels[n.bit_length() - 1][start // n]
        k = _split(n)
        return node_hash(self._subtree(start, start + k), self._subtree(start + k, end))

    def _size_arg(self, size: int | None) -> int:
        if size is None:
            return self.size
        _check_size(size, "tree size")
        if size > self.size:
            raise ProofError("tree size beyond the log", expected=f"<= {self.size}", computed=size)
        return size

    def root(self, size: int | None = None) -> bytes:
        """The root hash of the first `size` leaves (default: all)."""
        return self._subtree(0, self._size_arg(size))

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """RFC 9162 §2.1.3.1 PATH(index, D[0:size]), siblings bottom-up."""
        n = self._size_arg(size)
        _check_size(index, "leaf index")
        if index >= n:
            raise ProofError("leaf index out of range", expected=f"< {n}", computed=index)
        path: list[bytes] = []
        start, end, m = 0, n, index
        # Walk down from the root; each step records the sibling subtree, so the list
        # is built top-down and reversed at the end.
        while end - start > 1:
            k = _split(end - start)
            if m < k:
                path.append(self._subtree(start + k, end))
                end = start + k
            else:
                path.append(self._subtree(start, start + k))
                start, m = start + k, m - k
        path.reverse()
        return path

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """RFC 9162 §2.1.4.1 PROOF(old_size, D[0:new_size]).

        Empty when old_size is 0 or equals new_size (nothing to prove beyond the roots).
        """
        n = self._size_arg(new_size)
        _check_size(old_size, "old size")
        if old_size > n:
            raise ProofError("old size beyond new size", expected=f"<= {n}", computed=old_size)
        if old_size in (0, n):
            return []
        # SUBPROOF(m, D[start:end], b), unrolled; collected top-down, reversed at the end.
        proof: list[bytes] = []
        start, end, m, complete = 0, n, old_size, True
        while m != end - start:
            k = _split(end - start)
            if m <= k:
                proof.append(self._subtree(start + k, end))
                end = start + k
            else:
                proof.append(self._subtree(start, start + k))
                start, m, complete = start + k, m - k, False
        if not complete:
            # SUBPROOF(m, D[m], false) = {MTH(D[m])}: the old tree's last complete subtree.
            proof.append(self._subtree(start, end))
        proof.reverse()
        return proof


def _inclusion_shape(index: int, size: int) -> tuple[int, int]:
    """(inner, border): how many proof hashes lie below and on the tree's right border.

    A proof for `index` in a tree of `size` has bit_length(index XOR (size-1)) hashes
    where the paths to `index` and to the last leaf differ, plus one per set bit of the
    remaining high part (left siblings on the shared right border).
    """
    inner = (index ^ (size - 1)).bit_length()
    border = bin(index >> inner).count("1")
    return inner, border


def verify_inclusion(
    index: int, size: int, leaf_hash_: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """RFC 9162 §2.1.3.2: raise ProofError unless `proof` shows leaf `index` in `root`.

    Sizes, lengths and the proof length are checked before any hashing.
    """
    _check_size(index, "leaf index")
    _check_size(size, "tree size")
    if index >= size:
        raise ProofError("leaf index not below tree size", expected=f"< {size}", computed=index)
    leaf = _check_hash(leaf_hash_, "leaf hash")
    want_root = _check_hash(root, "root hash")
    inner, border = _inclusion_shape(index, size)
    if len(proof) != inner + border:
        raise ProofError(
            f"inclusion proof for leaf {index} of {size} has the wrong number of hashes",
            expected=inner + border,
            computed=len(proof),
        )
    path = [_check_hash(p, f"proof[{i}]") for i, p in enumerate(proof)]
    # RFC 9162 §2.1.3.2 steps 2-5.
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:  # pragma: no cover - excluded by the length check above
            raise ProofError("inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:  # pragma: no cover - excluded by the length check above
        raise ProofError("inclusion proof is too short")
    if r != want_root:
        raise ProofError(
            f"inclusion proof for leaf {index} of {size} does not lead to the root",
            expected=want_root.hex(),
            computed=r.hex(),
        )


def _verify_trivial_consistency(
    old_size: int, new_size: int, old: bytes, new: bytes, proof: Sequence[bytes]
) -> None:
    """From the empty tree, or between equal sizes: the proof is empty, the roots decide."""
    if proof:
        raise ProofError(
            f"consistency proof from {old_size} to {new_size} must be empty",
            expected=0,
            computed=len(proof),
        )
    if old_size == 0 and old != EMPTY_ROOT:
        raise ProofError(
            "old root of an empty tree is not the empty root",
            expected=EMPTY_ROOT.hex(),
            computed=old.hex(),
        )
    if old_size == new_size and old != new:
        raise ProofError(
            f"roots of two trees of size {old_size} differ", expected=old.hex(), computed=new.hex()
        )


def _consistency_roots(path: list[bytes], old_size: int, new_size: int) -> tuple[bytes, bytes]:
    """RFC 9162 §2.1.4.2 steps 3-7: the old and new roots a (seeded) path leads to."""
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:  # pragma: no cover - excluded by the length check
            raise ProofError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:  # pragma: no cover - excluded by the length check
        raise ProofError("consistency proof is too short")
    return fr, sr


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """RFC 9162 §2.1.4.2: raise ProofError unless the new tree extends the old one."""
    _check_size(old_size, "old size")
    _check_size(new_size, "new size")
    old = _check_hash(old_root, "old root")
    new = _check_hash(new_root, "new root")
    if new_size < old_size:
        raise ProofError(
            "new size is smaller than old size", expected=f">= {old_size}", computed=new_size
        )
    if old_size in (0, new_size):
        _verify_trivial_consistency(old_size, new_size, old, new, proof)
        return
    # Expected length (as transparency-dev/merkle computes it): the inclusion proof of
    # leaf old_size-1 in new_size, minus the levels inside the old tree's last complete
    # subtree, plus that subtree's own hash unless it is the whole old tree.
    inner, border = _inclusion_shape(old_size - 1, new_size)
    shift = (old_size & -old_size).bit_length() - 1
    inner -= shift
    seeded = old_size != 1 << shift
    want_len = int(seeded) + inner + border
    if len(proof) != want_len:
        raise ProofError(
            f"consistency proof from {old_size} to {new_size} has the wrong number of hashes",
            expected=want_len,
            computed=len(proof),
        )
    path = [_check_hash(p, f"proof[{i}]") for i, p in enumerate(proof)]
    # RFC 9162 §2.1.4.2 steps 2-7.
    if not seeded:
        path.insert(0, old)
    fr, sr = _consistency_roots(path, old_size, new_size)
    if fr != old:
        raise ProofError(
            f"consistency proof from {old_size} to {new_size} does not lead to the old root",
            expected=old.hex(),
            computed=fr.hex(),
        )
    if sr != new:
        raise ProofError(
            f"consistency proof from {old_size} to {new_size} does not lead to the new root",
            expected=new.hex(),
            computed=sr.hex(),
        )


# --- C2SP tlog-checkpoint ------------------------------------------------------------------

MAX_TREE_SIZE = 2**63 - 1
"""The largest tree size a checkpoint may state: a signed 64-bit integer, what SQL stores
and Go's golang.org/x/mod/sumdb/tlog (int64 sizes) reads. Larger sizes are refused."""

NoteSignature = tuple[str, bytes, bytes]
"""(key name, 4-byte key hash, signature bytes) of one signature line."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Checkpoint:
    """C2SP tlog-checkpoint: origin, tree size, root hash, optional extension lines."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.origin, str) or not self.origin or "\n" in self.origin:
            raise FormatError("origin must be one non-empty line", where="checkpoint.origin")
        if (
            isinstance(self.size, bool)
            or not isinstance(self.size, int)
            or not 0 <= self.size <= MAX_TREE_SIZE
        ):
            raise FormatError(
                f"size must be an int in [0, 2^63-1], got {self.size!r}", where="checkpoint.size"
            )
        if not isinstance(self.root_hash, bytes) or len(self.root_hash) != HASH_SIZE:
            raise FormatError("root hash must be 32 bytes", where="checkpoint.root_hash")
        for i, ext in enumerate(self.extensions):
            if not isinstance(ext, str) or not ext or "\n" in ext:
                raise FormatError(
                    "extension lines must be non-empty single lines",
                    where=f"checkpoint.extensions[{i}]",
                )

    def body(self) -> str:
        """The checkpoint text: origin, size, base64 root, extensions, each ending in \\n."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root_hash).decode("ascii")]
        return "".join(line + "\n" for line in (*lines, *self.extensions))

    @classmethod
    def from_body(cls, body: str, *, where: str = "checkpoint") -> Checkpoint:
        if body.startswith(BOM):
            raise FormatError("checkpoint starts with a byte order mark (U+FEFF)", where=where)
        if not body.endswith("\n"):
            raise FormatError("checkpoint body must end with a newline", where=where)
        lines = body[:-1].split("\n")
        if len(lines) < 3:
            raise FormatError(
                f"checkpoint needs origin, size and root hash lines, got {len(lines)} lines",
                where=where,
            )
        origin, size_text, root_text, *extensions = lines
        if not origin:
            raise FormatError("origin line is empty", where=f"{where}:1")
        size = parse_decimal(size_text, maximum=MAX_TREE_SIZE, what="tree size", where=f"{where}:2")
        try:
            root = b64decode_strict(root_text, where=f"{where}:3")
        except FormatError as e:
            raise FormatError(f"root hash {e.message}", where=f"{where}:3") from e
        if len(root) != HASH_SIZE:
            raise FormatError(
                f"root hash is {len(root)} bytes, want {HASH_SIZE}", where=f"{where}:3"
            )
        for i, ext in enumerate(extensions):
            if not ext:
                raise FormatError("empty extension line", where=f"{where}:{4 + i}")
        return cls(origin=origin, size=size, root_hash=root, extensions=tuple(extensions))


def note_key_hash(key_name: str, public_key_raw: bytes) -> bytes:
    """C2SP signed-note: first 4 bytes of SHA-256(key name || 0x0A || 0x01 || public key)."""
    return key_id(key_name, ALG_ED25519, public_key_raw)


def log_verifier_key(origin: str, public_key_raw: bytes) -> VerifierKey:
    """The log's checkpoint key: Ed25519 (type 0x01) under the origin as key name."""
    return VerifierKey(name=origin, alg=ALG_ED25519, public_key=public_key_raw)


def encode_verifier_key(key_name: str, public_key_raw: bytes) -> str:
    """The note verifier key string: <name>+<hex key hash>+<base64(0x01 || public key)>."""
    check_key_name(key_name, where="verifier key name")
    if len(public_key_raw) != 32:
        raise FormatError("Ed25519 public key must be 32 bytes", where="verifier key")
    return VerifierKey(name=key_name, alg=ALG_ED25519, public_key=public_key_raw).encode()


def parse_verifier_key(text: str, *, where: str = "verifier key") -> tuple[str, bytes]:
    """Parse an Ed25519 (0x01) verifier key string; return (key name, raw public key)."""
    vkey = VerifierKey.parse(text.strip(), where=where)
    if vkey.alg != ALG_ED25519:
        raise FormatError("not an Ed25519 note key (type 0x01)", where=where)
    return vkey.name, vkey.public_key


def sign_checkpoint(checkpoint: Checkpoint, *, key_name: str, signer: NoteSigner) -> str:
    """The signed note: checkpoint body, a blank line, one Ed25519 signature line."""
    body = checkpoint.body()
    line = ed25519_signature_line(body, name=key_name, signer=signer)
    return f"{body}\n{line.line()}"


def parse_note(text: str, *, where: str = "checkpoint") -> tuple[Checkpoint, list[NoteSignature]]:
    """Split a signed note into its checkpoint and its signature lines (none verified)."""
    body, lines = split_note(text, where=where)
    checkpoint = Checkpoint.from_body(body, where=where)
    return checkpoint, [(ln.name, ln.key_id, ln.signature) for ln in lines]


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifiedCheckpoint:
    """A checkpoint whose log signature verified, with the witness cosignatures that did."""

    checkpoint: Checkpoint
    body: str
    cosignatures: tuple[Cosignature, ...]

    @property
    def witnesses(self) -> tuple[str, ...]:
        return tuple(c.witness.name for c in self.cosignatures)


def open_checkpoint(
    text: str,
    *,
    log_key: VerifierKey,
    origin: str,
    witnesses: Sequence[VerifierKey] = (),
    required_witnesses: int = 0,
    cosigned_not_after: int | None = None,
    where: str = "checkpoint",
) -> VerifiedCheckpoint:
    """Verify a checkpoint as a witness or monitor must, and return it with its cosignatures.

    `cosigned_not_after` (POSIX seconds: now plus clock skew) refuses witness cosignatures
    dated later than that.

    - the origin line must be `origin` exactly (a checkpoint for another log, or with a
      byte order mark before the origin, is refused: Go's ParseCheckpoint does the same);
    - the size is a canonical decimal no larger than 2^63-1, the root canonical base64;
    - at least one signature line by `log_key` (name AND key ID), and every such line
      verifies; lines of unknown keys are ignored (signed-note);
    - each line by a key of `witnesses` must be a valid cosignature/v1 (else the note is
      refused), and at least `required_witnesses` distinct witnesses must have cosigned.
    """
    if log_key.alg != ALG_ED25519:
        raise FormatError("the log key must be an Ed25519 note key (type 0x01)", where=where)
    body, lines = split_note(text, where=where)
    checkpoint = Checkpoint.from_body(body, where=where)
    if checkpoint.origin != origin:
        raise SignatureError(
            "checkpoint is for another log",
            expected=repr(origin),
            computed=repr(checkpoint.origin),
            where=f"{where}:1",
        )
    if verify_ed25519_lines(body, lines, log_key, where=where) == 0:
        raise SignatureError(
            f"no signature by key {log_key.name!r} (key ID {log_key.key_id.hex()}) on the "
            "checkpoint",
            where=where,
        )
    found: dict[bytes, Cosignature] = {}
    for w in witnesses:
        if w.alg != ALG_COSIGNATURE_V1:
            raise FormatError(f"witness key {w.name} is not a cosignature key (type 0x04)")
        for ln in lines:
            if ln.is_by(w):
                found.setdefault(
                    w.key_id + w.public_key,
                    verify_cosignature(
                        body, ln, w, not_after=cosigned_not_after, where=f"{where}: cosignature"
                    ),
                )
    if len(found) < required_witnesses:
        raise SignatureError(
            f"checkpoint has {len(found)} valid cosignature(s) from known witnesses, "
            f"need {required_witnesses}",
            expected=f">= {required_witnesses}",
            computed=len(found),
            where=where,
        )
    return VerifiedCheckpoint(checkpoint=checkpoint, body=body, cosignatures=tuple(found.values()))


def verify_checkpoint(
    text: str,
    *,
    key_name: str,
    public_key_raw: bytes,
    origin: str | None = None,
    where: str = "checkpoint",
) -> Checkpoint:
    """Verify the note's signature by (key_name, public_key_raw); return its checkpoint.

    The origin line must equal `origin` (by default the key name, which C2SP says the
    log's key name should match). Signature lines of other keys (witness cosignatures,
    say) are ignored. A line for our key name and key hash whose signature fails is an
    error, as is no line at all.
    """
    vkey = VerifierKey(
        name=check_key_name(key_name, where="key_name"), alg=ALG_ED25519, public_key=public_key_raw
    )
    return open_checkpoint(
        text, log_key=vkey, origin=key_name if origin is None else origin, where=where
    ).checkpoint


def add_signature_lines(note: str, lines: Sequence[SignatureLine], *, where: str = "note") -> str:
    """The note with `lines` appended after its own, each distinct line once."""
    body, own = split_note(note, where=where)
    seen = {ln.line() for ln in own}
    out = [ln.line() for ln in own]
    for ln in lines:
        if ln.line() not in seen:
            seen.add(ln.line())
            out.append(ln.line())
    return f"{body}\n{''.join(out)}"


__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MAX_TREE_SIZE",
    "Checkpoint",
    "LogTree",
    "NoteSignature",
    "NoteSigner",
    "VerifiedCheckpoint",
    "add_signature_lines",
    "encode_verifier_key",
    "envelope_leaf_hash",
    "leaf_hash",
    "log_verifier_key",
    "node_hash",
    "note_key_hash",
    "open_checkpoint",
    "parse_note",
    "parse_verifier_key",
    "root_from_leaf_hashes",
    "sign_checkpoint",
    "verify_checkpoint",
    "verify_consistency",
    "verify_inclusion",
]
