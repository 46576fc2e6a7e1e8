"""The committed contract artifacts (ABI and bytecode), read at run time.

por/oracle/artifacts/<Contract>.json are written by the compile tool
(`python -m por.oracle.compile`, which needs node and solcjs); everything that runs —
the EVM publisher, the demo's deploy helpers, the tests — only reads them through
`load_artifact`, so running por never needs a compiler.

I/O: reads one JSON file per call; writes nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from por.errors import ConfigError

ARTIFACTS_DIR = Path(__file__).resolve().parent / "artifacts"


def load_artifact(name: str) -> dict[str, Any]:
    """Read a committed artifact (ABI + bytecode) by contract name."""
    path = ARTIFACTS_DIR / f"{name}.json"
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ConfigError(f"no compiled artifact for {name}", where=str(path)) from e
    return data


__all__ = ["ARTIFACTS_DIR", "load_artifact"]
