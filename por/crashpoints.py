"""Named crash points for the crash-consistency tests.

`crashpoint("after_commit")` kills the process with SIGKILL when the environment
variable POR_CRASH_AT names that point (comma-separated list allowed). In production
the variable is unset and the call costs one dict lookup. SIGKILL, not an exception:
the tests must see what a power cut or OOM kill leaves behind, with no finally-blocks,
atexit hooks or flushes running.
"""

from __future__ import annotations

import os
import signal

ENV = "POR_CRASH_AT"


def crashpoint(name: str) -> None:
    wanted = os.environ.get(ENV)
    if wanted and name in wanted.split(","):
        os.kill(os.getpid(), signal.SIGKILL)
