"""Time and peak memory of refusing XML attack files (billion laughs, quadratic, XXE).

Each attack is parsed in a fresh subprocess so ru_maxrss is that parse alone; the
figures are printed against the limits the issue sets (1 s, 64 MB), next to an
honest camt.053 of the same order of size for comparison. Not a test: it prints.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "custodians" / "data"
FILES = [
    "attack_billion_laughs.xml",
    "attack_quadratic_blowup.xml",
    "attack_xxe.xml",
    "harbour_trust_camt053_v08.xml",
]

CHILD = r"""
import json, resource, sys, time
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
from por.custodians.camt import parse_camt
from por.custodians.model import StatementParseError
data = open(sys.argv[1], "rb").read()
variant = sys.argv[2]
if variant == "utf16":  # hides '<!DOCTYPE' from the byte scan: defusedxml must refuse it
    data = data.decode().replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
try:
    parse_camt(data, name=sys.argv[1]); outcome = "parsed"
except StatementParseError as e:
    outcome = type(e).__name__
dt = time.perf_counter() - t0
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"outcome": outcome, "seconds": dt, "peak_kib": after,
                  "growth_kib": after - before, "size": len(data)}))
"""


def main() -> None:
    print(
        f"{'file':34} {'variant':7} {'bytes':>8} {'outcome':18} {'ms':>8} {'peak MB':>8} {'growth MB':>9}"
    )
    worst_s, worst_growth = 0.0, 0
    for name in FILES:
        for variant in ("utf8", "utf16"):
            out = subprocess.run(
                [sys.executable, "-c", CHILD, str(DATA / name), variant],
                capture_output=True,
                text=True,
                cwd=ROOT,
                check=True,
            )
            r = json.loads(out.stdout)
            print(
                f"{name:34} {variant:7} {r['size']:>8} {r['outcome']:18} "
                f"{r['seconds'] * 1000:>8.2f} {r['peak_kib'] / 1024:>8.1f} {r['growth_kib'] / 1024:>9.2f}"
            )
            if name.startswith("attack"):
                worst_s = max(worst_s, r["seconds"])
                worst_growth = max(worst_growth, r["growth_kib"])
    print(
        f"worst attack: {worst_s * 1000:.2f} ms (limit 1000 ms), memory growth during the parse "
        f"{worst_growth / 1024:.2f} MB (limit 64 MB); peak includes the interpreter and imports"
    )


if __name__ == "__main__":
    main()
