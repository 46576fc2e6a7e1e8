"""C2SP tlog-tiles: the log's Merkle tree and entries as static, immutable resources.

    <prefix>/checkpoint                      the signed checkpoint (mutable)
    <prefix>/tile/<L>/<N>[.p/<W>]            level-L tile N: 256 (or W) hashes, 32 bytes each
    <prefix>/tile/entries/<N>[.p/<W>]        entry bundle N: uint16-length-prefixed entries

The n-th tile at level l holds MTH(D[(n*256+i) * 256^l : (n*256+i+1) * 256^l]) for
i < 256 (or W for a partial tile). <N> is written in 3-digit path elements, all but the
last prefixed by `x` (1234067 -> x001/x234/067).

What the entries are. The log's leaf for an attestation is H(0x00 ‖ SHA-256(envelope))
(DESIGN §5), so in RFC 6962 terms each entry D[i] is the 32-byte SHA-256 of the
envelope's RFC 8785 bytes; tlog-tiles requires that "each entry in a bundle hashes to
the corresponding entry in the level 0 tile", so the entry bundles carry exactly those
digests and any tlog-tiles client checks them against the tiles. The envelopes
themselves are served beside them, as the spec allows for "entries in different formats
... at a different URL": `<prefix>/tile/envelopes/<N>[.p/<W>]`, the same tiling, each
envelope prefixed by its length as a big-endian uint32 (an envelope may exceed the
65,535 bytes a uint16 holds). SHA-256 of each envelope is the entry at the same index.

No I/O: the caller supplies the tree and the entries.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from por.core.tlog import HASH_SIZE, LogTree
from por.errors import FormatError

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT  # 256 hashes: a full tile is 8,192 bytes
MAX_LEVEL = 63
ENTRIES = "entries"
ENVELOPES = "envelopes"
"""The non-standard bundle of whole envelopes (see the module docstring)."""

_ELEMENT_RE = re.compile(r"[0-9]{3}")
_SMALL_DECIMAL_RE = re.compile(r"0|[1-9][0-9]{0,2}")


@dataclass(frozen=True, slots=True, kw_only=True)
class TileRef:
    """One tile or bundle: `level` is an int, or "entries" / "envelopes" for bundles;
    `width` is None for a full tile, else 1..255."""

    level: int | str
    index: int
    width: int | None = None

    @property
    def count(self) -> int:
        return TILE_WIDTH if self.width is None else self.width

    @property
    def is_bundle(self) -> bool:
        return isinstance(self.level, str)

    def path(self) -> str:
        """`tile/<L>/<N>[.p/<W>]` (no leading slash; the caller adds the prefix)."""
        tail = "" if self.width is None else f".p/{self.width}"
        return f"tile/{self.level}/{encode_index(self.index)}{tail}"

    def first_leaf(self) -> int:
        """The first entry this tile's hashes span (level 0 and bundles: its first entry)."""
        level = 0 if isinstance(self.level, str) else self.level
        return int(self.index * TILE_WIDTH ** (level + 1))

    def needs_size(self) -> int:
        """The smallest tree size in which every hash (or entry) of this tile exists."""
        level = 0 if isinstance(self.level, str) else self.level
        return int((self.index * TILE_WIDTH + self.count) * TILE_WIDTH**level)


def encode_index(n: int) -> str:
    """tlog-tiles <N>: zero-padded 3-digit elements, all but the last prefixed by 'x'."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise FormatError(f"tile index must be a non-negative int, got {n!r}", where="tile")
    groups = []
    while True:
        groups.append(f"{n % 1000:03d}")
        n //= 1000
        if n == 0:
            break
    groups.reverse()
    return "/".join([*(f"x{g}" for g in groups[:-1]), groups[-1]])


def parse_tile_path(path: str, *, where: str = "tile path") -> TileRef:
    """`tile/<L or entries or envelopes>/<N>[.p/<W>]` (no leading slash) as a TileRef.

    Strict, as the spec writes paths: no leading zeroes in L or W, 3-digit elements,
    'x' on every element but the last, W in 1..255, L in 0..63.
    """
    parts = path.split("/")
    if len(parts) < 3 or parts[0] != "tile":
        raise FormatError(f"not a tile path: {path[:80]!r}", where=where)
    level_text, rest = parts[1], parts[2:]
    level: int | str
    if level_text in (ENTRIES, ENVELOPES):
        level = level_text
    elif _SMALL_DECIMAL_RE.fullmatch(level_text) and int(level_text) <= MAX_LEVEL:
        level = int(level_text)
    else:
        raise FormatError(f"tile level {level_text[:20]!r} is not 0..63", where=where)
    width: int | None = None
    if len(rest) >= 2 and rest[-2].endswith(".p"):
        w_text = rest[-1]
        if not _SMALL_DECIMAL_RE.fullmatch(w_text) or not 1 <= int(w_text) < TILE_WIDTH:
            raise FormatError(f"partial tile width {w_text[:20]!r} is not 1..255", where=where)
        width = int(w_text)
        rest = [*rest[:-2], rest[-2][: -len(".p")]]
    if not rest or len(rest) > 7:  # 7 groups reach 10^21 > 2^64 tiles
        raise FormatError("tile index has no or too many path elements", where=where)
    digits = []
    for i, element in enumerate(rest):
        last = i == len(rest) - 1
        body = element if last else element.removeprefix("x")
        if (not last and not element.startswith("x")) or not _ELEMENT_RE.fullmatch(body):
            raise FormatError(
                f"tile index element {element[:20]!r} must be 3 digits"
                + ("" if last else " prefixed by 'x'"),
                where=where,
            )
        digits.append(body)
    index = int("".join(digits))
    if encode_index(index) != "/".join(rest):  # e.g. x000/001: a leading zero group
        raise FormatError("tile index is not in its one canonical form", where=where)
    return TileRef(level=level, index=index, width=width)


def tile_for_size(level: int, size: int) -> list[TileRef]:
    """Every tile of `level` a tree of `size` has: full ones, then the partial one if any."""
    span = TILE_WIDTH**level
    hashes = size // span
    out = [TileRef(level=level, index=n) for n in range(hashes // TILE_WIDTH)]
    if hashes % TILE_WIDTH:
        out.append(TileRef(level=level, index=hashes // TILE_WIDTH, width=hashes % TILE_WIDTH))
    return out


def bundles_for_size(size: int, kind: str = ENTRIES) -> list[TileRef]:
    return [TileRef(level=kind, index=t.index, width=t.width) for t in tile_for_size(0, size)]


def tile_data(tree: LogTree, tile: TileRef) -> bytes:
    """The bytes of hash tile `tile` of `tree`; FormatError if the tree lacks them."""
    if not isinstance(tile.level, int):
        raise FormatError("an entry bundle is not a hash tile", where=tile.path())
    if tile.needs_size() > tree.size:
        raise FormatError(f"the log (size {tree.size}) has no such tile yet", where=tile.path())
    hashes = tree.subtree_hashes(TILE_HEIGHT * tile.level, tile.index * TILE_WIDTH, tile.count)
    return b"".join(hashes)


def encode_bundle(entries: Iterable[bytes], *, length_bytes: int = 2) -> bytes:
    """Entries, each prefixed by its length (big-endian uint16; uint32 for envelopes)."""
    out = bytearray()
    limit = 1 << (8 * length_bytes)
    for e in entries:
        if len(e) >= limit:
            raise FormatError(f"entry of {len(e)} bytes does not fit a {length_bytes}-byte length")
        out += len(e).to_bytes(length_bytes, "big") + e
    return bytes(out)


def decode_bundle(data: bytes, *, length_bytes: int = 2, where: str = "bundle") -> list[bytes]:
    """The entries of a bundle; FormatError on a truncated entry."""
    out, i = [], 0
    while i < len(data):
        if i + length_bytes > len(data):
            raise FormatError(f"truncated length at byte {i}", where=where)
        n = int.from_bytes(data[i : i + length_bytes], "big")
        i += length_bytes
        if i + n > len(data):
            raise FormatError(f"entry at byte {i} runs past the end", where=where)
        out.append(data[i : i + n])
        i += n
    return out


def split_hashes(data: bytes, *, where: str = "tile") -> list[bytes]:
    if len(data) % HASH_SIZE:
        raise FormatError(f"tile of {len(data)} bytes is not whole hashes", where=where)
    return [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]


def check_tile_width(tile: TileRef, items: Sequence[bytes], *, where: str) -> None:
    if len(items) != tile.count:
        raise FormatError(f"{tile.path()} holds {len(items)} items, want {tile.count}", where=where)


__all__ = [
    "ENTRIES",
    "ENVELOPES",
    "MAX_LEVEL",
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "TileRef",
    "bundles_for_size",
    "check_tile_width",
    "decode_bundle",
    "encode_bundle",
    "encode_index",
    "parse_tile_path",
    "split_hashes",
    "tile_data",
    "tile_for_size",
]
