"""A publisher process for the kill/restart tests: `python -m tests.evm.publisher_child CFG`.

CFG is a JSON file: {"chains": [{"chain_id", "url", "oracle", "sender_key"}...],
"attestor_keys": [...], "intent_dir": "...", "doc": {...}, "digest": "..."}. It publishes
the document to every chain in order and prints the receipts as one JSON line. With
POR_CRASH_AT set, the publisher is SIGKILLed at that step (por.crashpoints); like a shell,
this process then exits with status 137 (128 + 9), so the test sees a plain exit code.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path


def publish(path: str) -> int:
    from por.oracle.evm_publisher import EvmPublisher
    from por.oracle.intents import FileIntentStore

    cfg = json.loads(Path(path).read_text(encoding="utf-8"))
    store = FileIntentStore(cfg["intent_dir"])
    results = []
    for c in cfg["chains"]:
        pub = EvmPublisher(
            chain_id=c["chain_id"],
            rpc_urls=[c["url"]],
            contract=c["oracle"],
            sender_key=c["sender_key"],
            attestor_keys=cfg["attestor_keys"],
            intent_store=store,
            confirmations=1,
            stuck_after_blocks=5,
            poll_interval_s=0.02,
            receipt_timeout_s=60,
        )
        results.append(pub.publish(cfg["doc"], cfg["digest"]).to_dict())
    print(json.dumps(results), flush=True)
    return 0


def main(path: str) -> int:
    pid = os.fork()
    if pid == 0:  # the publisher itself; the parent only reports how it ended
        code = 1
        try:
            code = publish(path)
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
