"""Compile por's Solidity contracts with the project-local solcjs, deterministically.

`python -m por.oracle.compile` rewrites por/oracle/artifacts/<Contract>.json (ABI and
bytecode) from por/oracle/contracts/*.sol; `--check` only compares and exits 1 on any
difference (tests/evm/test_artifacts.py runs that). Settings are pinned — solc 0.8.28,
optimizer on (200 runs), evmVersion cancun, `metadata.bytecodeHash: none` and no
metadata in the output — so the same sources always give byte-identical artifacts.

I/O: reads the .sol files, runs node (solc npm module) as a subprocess, writes artifacts
atomically. Nothing else; the rest of por only reads the committed artifacts, through
por.oracle.compiled.load_artifact — this module is a tool, never imported at run time.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from por.errors import ConfigError, FormatError
from por.fileio import write_atomic
from por.oracle.compiled import ARTIFACTS_DIR

ORACLE_DIR = Path(__file__).resolve().parent
CONTRACTS_DIR = ORACLE_DIR / "contracts"
REPO_ROOT = ORACLE_DIR.parent.parent
SOLC_VERSION = "0.8.28"

SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 200},
    "evmVersion": "cancun",
    "metadata": {"bytecodeHash": "none", "appendCBOR": False},
    "outputSelection": {
        "*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]},
    },
}

# solc is loaded in node from the project-local tools folder; it reads the standard-JSON
# input on stdin and prints the version and the output as one JSON line.
_NODE_SCRIPT = """
const solc = require('solc');
let data = '';
process.stdin.on('data', c => data += c);
process.stdin.on('end', () => {
  const output = JSON.parse(solc.compile(data));
  process.stdout.write(JSON.stringify({version: solc.version(), output: output}));
});
"""


def _node_modules() -> Path:
    return Path(os.environ.get("POR_TOOLS_DIR", REPO_ROOT / "tools")) / "node_modules"


def compile_sources(sources: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """Compile the given {filename: source} (default: every contracts/*.sol) -> artifacts."""
    if sources is None:
        sources = {
            p.name: p.read_text(encoding="utf-8") for p in sorted(CONTRACTS_DIR.glob("*.sol"))
        }
    node = shutil.which("node")
    if node is None:
        raise ConfigError("node is not on PATH; run ./dev setup", where="por.oracle.compile")
    modules = _node_modules()
    if not (modules / "solc").is_dir():
        raise ConfigError(
            f"solc npm module not found under {modules}; run ./dev setup",
            where="por.oracle.compile",
        )
    std_input = {
        "language": "Solidity",
        "sources": {name: {"content": text} for name, text in sources.items()},
        "settings": SETTINGS,
    }
    proc = subprocess.run(  # noqa: S603 - fixed argv, no shell
        [node, "-e", _NODE_SCRIPT],
        input=json.dumps(std_input).encode(),
        capture_output=True,
        env={**os.environ, "NODE_PATH": str(modules)},
        timeout=300,
        check=False,
    )
    if proc.returncode != 0:
        raise ConfigError(
            f"solc failed: {proc.stderr.decode(errors='replace')[-2000:]}",
            where="por.oracle.compile",
        )
    result = json.loads(proc.stdout)
    version = str(result["version"])
    if not version.startswith(SOLC_VERSION + "+"):
        raise ConfigError(f"need solc {SOLC_VERSION}, found {version}", where="por.oracle.compile")
    output = result["output"]
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise FormatError("; ".join(e["formattedMessage"] for e in errors), where="contracts")
    artifacts: dict[str, dict[str, Any]] = {}
    for filename, contracts in sorted(output["contracts"].items()):
        source_sha = hashlib.sha256(sources[filename].encode()).hexdigest()
        for name, c in sorted(contracts.items()):
            if not c["evm"]["bytecode"]["object"]:
                continue  # interfaces
            artifacts[name] = {
                "contractName": name,
                "sourceName": filename,
                "sourceSha256": source_sha,
                "compiler": {"name": "solc", "version": version, "settings": SETTINGS},
                "abi": c["abi"],
                "bytecode": "0x" + c["evm"]["bytecode"]["object"],
                "deployedBytecode": "0x" + c["evm"]["deployedBytecode"]["object"],
            }
    return artifacts


def render(artifact: dict[str, Any]) -> bytes:
    """The committed spelling of an artifact: sorted keys, 2-space indent, final newline."""
    return (json.dumps(artifact, indent=2, sort_keys=True) + "\n").encode()


def differences(artifacts: dict[str, dict[str, Any]]) -> list[str]:
    """Names of artifacts whose committed file differs from `artifacts` (or is missing/extra)."""
    diff = []
    for name, art in artifacts.items():
        path = ARTIFACTS_DIR / f"{name}.json"
        if not path.is_file() or path.read_bytes() != render(art):
            diff.append(name)
    for path in ARTIFACTS_DIR.glob("*.json"):
        if path.stem not in artifacts:
            diff.append(path.stem)
    return sorted(diff)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    artifacts = compile_sources()
    if "--check" in args:
        diff = differences(artifacts)
        if diff:
            print(f"artifacts differ from sources: {', '.join(diff)}", file=sys.stderr)
            return 1
        print(f"{len(artifacts)} artifacts match their sources")
        return 0
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    for name, art in artifacts.items():
        write_atomic(ARTIFACTS_DIR / f"{name}.json", render(art), mode=0o644)
    for path in ARTIFACTS_DIR.glob("*.json"):
        if path.stem not in artifacts:
            path.unlink()
    print(f"wrote {len(artifacts)} artifacts to {ARTIFACTS_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
