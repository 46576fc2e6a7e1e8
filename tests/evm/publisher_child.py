"""A publisher process for the kill/restart tests: `python -m tests.evm.publisher_child CFG`.

CFG is a JSON file: {"chains": [{"chain_id", "url", "oracle", "sender_key"}...],
"attestor_keys": [...], "intent_dir": "...", "doc": {...}, "digest": "..."}. It publishes
the document to every chain in order and prints the results as one JSON line. With
POR_CRASH_AT set, the publisher dies (exit 137) at that step.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from por.oracle.evm_publisher import EvmPublisher, FileIntentStore


def main(path: str) -> int:
    cfg = json.loads(Path(path).read_text(encoding="utf-8"))
    store = FileIntentStore(cfg["intent_dir"])
    results = []
    for c in cfg["chains"]:
        pub = EvmPublisher(chain_id=c["chain_id"], rpc_urls=[c["url"]], contract=c["oracle"],
                           sender_key=c["sender_key"], attestor_keys=cfg["attestor_keys"],
                           intent_store=store, confirmations=1, stuck_after_blocks=5,
                           poll_interval_s=0.02, receipt_timeout_s=60)
        results.append(pub.publish(cfg["doc"], cfg["digest"]).to_dict())
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
