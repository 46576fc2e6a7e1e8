"""The one crash-point hook of the crash-consistency tests.

`crashpoint("after_commit")` kills the process with SIGKILL when the environment
variable POR_CRASH_AT names that point; a comma-separated list names several. The store,
the run and the EVM publisher all call it, with the names in `CrashPoint` (the EVM
publisher's are prefixed `evm_`), so mypy refuses a misspelt point. In production the
variable is unset and a call costs one dict lookup.

SIGKILL, not an exception and not `os._exit`: the tests must see what a power cut or an
OOM kill leaves behind — no finally-blocks, atexit hooks or buffered writes run. A parent
sees the child killed by signal 9; a shell reports that as exit status 137 (128 + 9).

No I/O besides reading the environment.
"""

from __future__ import annotations

import os
import signal
from typing import Literal

ENV = "POR_CRASH_AT"

CrashPoint = Literal[
    # the run (por.service.run, por.service.wiring)
    "after_snapshot",
    "after_reserves",
    "after_raw_store",
    "after_tree",
    "after_sign",
    "after_record",
    # the store's write path (por.store.store.Store.record)
    "after_tree_file",
    "before_commit",
    "after_commit",
    "after_envelope_file",
    "after_checkpoint_file",
    # the EVM publisher (por.oracle.evm_publisher)
    "evm_after_sign",
    "evm_after_intent",
    "evm_after_broadcast",
    "evm_before_receipt",
]


def crashpoint(name: CrashPoint) -> None:
    """Die here with SIGKILL if POR_CRASH_AT names this point."""
    wanted = os.environ.get(ENV)
    if wanted and name in wanted.split(","):
        os.kill(os.getpid(), signal.SIGKILL)


__all__ = ["ENV", "CrashPoint", "crashpoint"]
