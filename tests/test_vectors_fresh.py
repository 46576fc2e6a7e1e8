"""The committed test vectors are exactly what their generators produce today.

Every tests/vectors/gen_*.py is run (as a subprocess, with this Python) into a temporary
directory, and the files it writes are compared byte for byte with the committed ones.
A generator not listed in GENERATORS fails the test, so a new one cannot silently go
unchecked. To refresh after an intended change: run the generator without arguments.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

VECTORS = Path(__file__).resolve().parent / "vectors"

# generator file -> (command-line arguments for an output root, areas it writes there).
# gen_signing.py takes --out-root ROOT and writes ROOT/<area>/*.json for each area;
# gen_sumtree.py and gen_budgets.py take --out DIR and write DIR/*.json for their one area.
GENERATORS: dict[str, tuple[Callable[[Path], list[str]], tuple[str, ...]]] = {
    "gen_signing.py": (lambda root: ["--out-root", str(root)], ("dsse", "canonical", "tlog")),
    "gen_sumtree.py": (lambda root: ["--out", str(root / "sumtree")], ("sumtree",)),
    "gen_budgets.py": (lambda root: ["--out", str(root / "budgets")], ("budgets",)),
}

_PRESENT = sorted(p.name for p in VECTORS.glob("gen_*.py"))


def test_every_generator_is_listed() -> None:
    unknown = [g for g in _PRESENT if g not in GENERATORS]
    assert not unknown, f"add these generators to GENERATORS in {__file__}: {unknown}"
    assert "gen_signing.py" in _PRESENT


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("generator", _PRESENT)
def test_committed_vectors_are_fresh(generator: str, tmp_path: Path) -> None:
    if generator not in GENERATORS:
        pytest.fail(f"{generator} is not listed in GENERATORS")
    args_for, areas = GENERATORS[generator]
    out_root = tmp_path / "vectors"
    out_root.mkdir()
    result = subprocess.run(  # the generator is committed project code
        [sys.executable, str(VECTORS / generator), *args_for(out_root)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"{generator} failed:\n{result.stderr}"
    produced_dirs = sorted(p.name for p in out_root.iterdir() if p.is_dir())
    assert produced_dirs == sorted(areas), (
        f"{generator} wrote areas {produced_dirs}, GENERATORS says {sorted(areas)}"
    )
    problems: list[str] = []
    for area in areas:
        fresh = _files(out_root / area)
        committed = _files(VECTORS / area) if (VECTORS / area).is_dir() else {}
        committed = {k: v for k, v in committed.items() if k.endswith(".json")}
        assert fresh, f"{generator} wrote no files for area {area}"
        for name in sorted(fresh.keys() | committed.keys()):
            if name not in committed:
                problems.append(f"{area}/{name}: generated but not committed")
            elif name not in fresh:
                problems.append(f"{area}/{name}: committed but no longer generated")
            elif fresh[name] != committed[name]:
                problems.append(f"{area}/{name}: differs from what {generator} writes")
    assert not problems, (
        f"stale vectors; run `python tests/vectors/{generator}` and commit:\n  "
        + "\n  ".join(problems)
    )
