# Types of the C kernel (por/core/_mstkernel.c); buffers are bytes-like (numpy arrays too).
from typing import Any

SHA256_IMPL: str

def sha256_rows(src: Any, width: int, out: Any, /) -> None: ...
def leaf_pass(
    blob: Any,
    offsets: Any,
    salts: Any,
    lo: Any,
    hi: Any | None,
    start: int,
    stop: int,
    leaves: Any,
    leaf_keys: Any,
    acct_keys: Any,
    base: int = 0,
    /,
) -> None: ...
def gather_records(leaves: Any, lo: Any, hi: Any | None, idx: Any, out: Any, /) -> None: ...
def node_level(src: Any, dst: Any, /) -> bool: ...

# isa: -1 the best this CPU runs, 0 scalar, 1 AVX2 (4 lanes), 2 AVX-512 (8 lanes);
# ValueError for one it lacks. blake2b_isas(): the names of those it runs, e.g.
# ("scalar", "avx2", "avx512").
def derive_salts(
    key: Any, blob: Any, offsets: Any, start: int, stop: int, out: Any, isa: int = -1, /
) -> None: ...
def salts_bytes(key: Any, parts: Any, threads: int, isa: int = -1, /) -> bytes: ...
def blake2b_isas() -> tuple[str, ...]: ...
