"""`por verify` and `por check` on small, real trees and envelopes built in the test."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from por.cli.main import main
from por.core.attestation import PAYLOAD_TYPE, AllocationPolicy, Attestation
from por.core.budgets import with_budgets
from por.core.dsse import (
    Ed25519Signer,
    Envelope,
    KeyEntry,
    KeySet,
    sign_envelope,
)
from por.core.mst import Leaf
from por.core.sumtree import SumTree
from por.core.times import format_time

NOW = datetime.now(UTC).replace(microsecond=0)
ISSUED_1 = NOW - timedelta(hours=2)
ISSUED_2 = NOW - timedelta(hours=1)


def signer(label: str) -> Ed25519Signer:
    return Ed25519Signer(hashlib.sha256(label.encode()).digest())


ISSUER = signer("issuer")
AUDITOR = signer("auditor")


def leaves() -> list[Leaf]:
    return [
        Leaf(
            account=f"eip155:1:0x{i:040x}",
            balance=b,
            salt=hashlib.sha256(f"salt {i}".encode()).digest(),
        )
        for i, b in enumerate([250, 0, 400, 350, 1000])
    ]


def attestation(
    tree: SumTree,
    *,
    sequence: int,
    issued_at: datetime,
    previous: Attestation | None,
    eligible: int = 2500,
) -> Attestation:
    total = tree.root.sum
    ratio = f"{eligible * 10**6 // total // 10**6}.{eligible * 10**6 // total % 10**6:06d}"
    d: dict[str, Any] = {
        "format": "por-attestation-v1",
        "sequence": sequence,
        "issued_at": format_time(issued_at),
        "as_of": format_time(issued_at - timedelta(minutes=5)),
        "token": {"symbol": "CNHC", "decimals": 2, "currency": "CNH"},
        "chains": [
            {
                "chain_id": "eip155:1",
                "token": "eip155:1:0x" + "ab" * 20,
                "block": {
                    "number": 100 + sequence,
                    "hash": "cd" * 32,
                    "time": format_time(issued_at - timedelta(minutes=6)),
                },
                "total_supply": str(total + 700),
                "excluded": [
                    {"account": "eip155:1:0x" + "11" * 20, "balance": "700", "reason": "treasury"}
                ],
                "circulating_supply": str(total),
                "holders": tree.size,
            }
        ],
        "reserves": [
            {
                "custodian": "Bank",
                "account": "HK****1234",
                "asset_class": "cash",
                "instrument": None,
                "currency": "CNH",
                "amount": str(eligible),
                "market_value": str(eligible),
                "haircut_bps": 0,
                "eligible_value": str(eligible),
                "ineligible_reason": None,
                "statement": {
                    "format": "camt.053.001.08",
                    "id": "S1",
                    "as_of": format_time(issued_at - timedelta(hours=8)),
                    "sha256": "ef" * 32,
                },
            }
        ],
        "liabilities": {"root": tree.root.hash.hex(), "total": str(total), "leaf_count": tree.size},
        "totals": {
            "eligible_reserves": str(eligible),
            "circulating_supply": str(total),
            "ratio": ratio,
            "status": "FULLY_BACKED" if eligible >= total else "UNDER_COLLATERALIZED",
            "reasons": [],
        },
        "previous": None
        if previous is None
        else {"sequence": previous.sequence, "digest": previous.digest()},
    }
    # Every new document carries per-chain budgets (docs/budgets.md).
    return with_budgets(Attestation.from_dict(d), AllocationPolicy())


@dataclass
class World:
    dir: Path
    keys: Path
    env1: Path
    env2: Path
    leaves: Path
    proof: Path
    tree: SumTree
    att2: Attestation

    def write(self, name: str, data: bytes | str | dict[str, Any] | Envelope) -> Path:
        p = self.dir / name
        if isinstance(data, Envelope):
            data = data.to_json_bytes()
        elif isinstance(data, dict):
            data = json.dumps(data)
        p.write_bytes(data if isinstance(data, bytes) else data.encode())
        return p


def write_keyset(path: Path, *entries: KeyEntry) -> Path:
    path.write_text(json.dumps(KeySet(keys=entries).to_dict()))
    return path


@pytest.fixture
def world(tmp_path: Path) -> World:
    tree = SumTree.build(leaves())
    att1 = attestation(tree, sequence=1, issued_at=ISSUED_1, previous=None)
    att2 = attestation(tree, sequence=2, issued_at=ISSUED_2, previous=att1)
    keys = write_keyset(
        tmp_path / "keys.json",
        KeyEntry.for_public_key(
            ISSUER.public_key_raw, role="issuer", not_before=NOW - timedelta(days=30)
        ),
        KeyEntry.for_public_key(AUDITOR.public_key_raw, role="auditor"),
    )
    w = World(
        dir=tmp_path,
        keys=keys,
        env1=tmp_path / "1.json",
        env2=tmp_path / "2.json",
        leaves=tmp_path / "leaves.jsonl",
        proof=tmp_path / "proof.json",
        tree=tree,
        att2=att2,
    )
    w.write("1.json", sign_envelope(att1.to_bytes(), PAYLOAD_TYPE, [ISSUER]))
    w.write("2.json", sign_envelope(att2.to_bytes(), PAYLOAD_TYPE, [ISSUER, AUDITOR]))
    w.write("leaves.jsonl", "".join(json.dumps(leaf.to_dict()) + "\n" for leaf in leaves()))
    w.write("proof.json", tree.prove("eip155:1:0x" + f"{2:040x}").to_dict())
    return w


def run_verify(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    rc = main(["verify", *args, "--json"])
    out = capsys.readouterr().out
    return rc, json.loads(out)


def status(report: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["status"] for c in report["checks"]}


def detail(report: dict[str, Any], name: str) -> str:
    return next(c["detail"] for c in report["checks"] if c["name"] == name)


# --- por verify --------------------------------------------------------------------------------


def test_verify_everything_passes(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    rc, report = run_verify(
        capsys,
        str(world.env2),
        "--keys",
        str(world.keys),
        "--previous",
        str(world.env1),
        "--leaves",
        str(world.leaves),
    )
    assert rc == 0, report
    assert report["ok"] is True
    assert status(report) == {
        "format": "pass",
        "signatures": "pass",
        "key windows": "pass",
        "hash chain": "pass",
        "liabilities": "pass",
        "totals": "pass",
        "budgets": "pass",
    }
    assert ISSUER.keyid[:16] in detail(report, "signatures")
    assert "auditor co-signature: " + AUDITOR.keyid[:16] in detail(report, "signatures")
    # the human table says the same
    assert main(["verify", str(world.env2), "--keys", str(world.keys)]) == 0
    table = capsys.readouterr().out
    assert "PASS  signatures" in table and "SKIP  hash chain" in table
    assert "result: PASS" in table


def test_verify_wrong_key(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    other = write_keyset(
        world.dir / "other.json",
        KeyEntry.for_public_key(signer("someone else").public_key_raw, role="issuer"),
    )
    rc, report = run_verify(capsys, str(world.env2), "--keys", str(other))
    assert rc == 1
    assert status(report)["signatures"] == "fail"
    assert "not in the key set" in detail(report, "signatures")
    assert status(report)["key windows"] == "fail"


def test_verify_expired_key(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    expired = write_keyset(
        world.dir / "expired.json",
        KeyEntry.for_public_key(
            ISSUER.public_key_raw, role="issuer", not_after=ISSUED_2 - timedelta(seconds=1)
        ),
    )
    rc, report = run_verify(capsys, str(world.env2), "--keys", str(expired))
    assert rc == 1
    assert "expired" in detail(report, "signatures")
    assert status(report)["key windows"] == "fail"
    assert "expired " + format_time(ISSUED_2 - timedelta(seconds=1)) in detail(
        report, "key windows"
    )


def test_verify_tampered_payload(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    # Attack: raise the reserves figure in a published attestation, keep the signature.
    #   payload: "eligible_reserves":"2500"  ->  "9500"   (signature over the old bytes)
    env = Envelope.from_json_bytes(world.env2.read_bytes())
    forged = Envelope(
        payload=env.payload.replace(b'"2500"', b'"9500"'),
        payload_type=env.payload_type,
        signatures=env.signatures,
    )
    assert forged.payload != env.payload
    rc, report = run_verify(
        capsys, str(world.write("forged.json", forged)), "--keys", str(world.keys)
    )
    assert rc == 1
    assert status(report)["signatures"] == "fail"
    assert "does not verify" in detail(report, "signatures")
    assert status(report)["totals"] == "skip"  # nothing unverified is trusted further


def test_verify_broken_chain(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    # Attack: rewrite history — sequence 2 names a previous digest that is not the
    # digest of the published sequence 1 (e.g. 1 was replaced after the fact).
    #   att1 (digest D1)   <-   att2.previous = {1, D'}   with D' != D1
    tree = world.tree
    other1 = attestation(tree, sequence=1, issued_at=ISSUED_1, previous=None, eligible=2600)
    att2 = attestation(tree, sequence=2, issued_at=ISSUED_2, previous=other1)
    env2 = world.write("2b.json", sign_envelope(att2.to_bytes(), PAYLOAD_TYPE, [ISSUER]))
    rc, report = run_verify(
        capsys, str(env2), "--keys", str(world.keys), "--previous", str(world.env1)
    )
    assert rc == 1
    assert status(report)["hash chain"] == "fail"
    assert "previous digest does not match" in detail(report, "hash chain")
    # and a previous envelope that does not verify fails the chain too
    env1 = Envelope.from_json_bytes(world.env1.read_bytes())
    bad1 = world.write(
        "1bad.json", Envelope(payload=env1.payload, payload_type=PAYLOAD_TYPE, signatures=())
    )
    rc, report = run_verify(
        capsys, str(world.env2), "--keys", str(world.keys), "--previous", str(bad1)
    )
    assert rc == 1 and "1bad.json" in detail(report, "hash chain")


def test_verify_leaves_that_do_not_match(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    # Attack: the published leaf export hides a liability (a balance lowered by 1).
    lines = world.leaves.read_text().splitlines()
    first = json.loads(lines[0])
    first["balance"] = str(int(first["balance"]) - 1)
    lines[0] = json.dumps(first)
    bad = world.write("bad.jsonl", "\n".join(lines) + "\n")
    rc, report = run_verify(
        capsys, str(world.env2), "--keys", str(world.keys), "--leaves", str(bad)
    )
    assert rc == 1
    d = detail(report, "liabilities")
    assert status(report)["liabilities"] == "fail"
    assert "root: signed" in d and f"total: signed {world.tree.root.sum}" in d
    # a malformed line names file, line and field
    lines[1] = lines[1].replace('"balance": "0"', '"balance": 0')
    bad2 = world.write("bad2.jsonl", "\n".join(lines) + "\n")
    rc, report = run_verify(
        capsys, str(world.env2), "--keys", str(world.keys), "--leaves", str(bad2)
    )
    assert rc == 1 and "bad2.jsonl:2:balance" in detail(report, "liabilities")


def test_verify_inconsistent_totals(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    d = world.att2.to_dict()
    d["totals"]["eligible_reserves"] = "9999"  # reserve lines still add up to 2500
    att = Attestation.from_dict(d)
    env = world.write("incons.json", sign_envelope(att.to_bytes(), PAYLOAD_TYPE, [ISSUER]))
    rc, report = run_verify(capsys, str(env), "--keys", str(world.keys))
    assert rc == 1
    assert status(report)["signatures"] == "pass" and status(report)["totals"] == "fail"
    assert "sum of reserve lines 2500" in detail(report, "totals")


def test_verify_future_attestation(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    att = attestation(world.tree, sequence=1, issued_at=NOW + timedelta(days=2), previous=None)
    env = world.write("future.json", sign_envelope(att.to_bytes(), PAYLOAD_TYPE, [ISSUER]))
    rc, report = run_verify(capsys, str(env), "--keys", str(world.keys))
    assert rc == 1
    assert "in the future" in detail(report, "signatures")


def test_verify_malformed_inputs(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    broken = world.write("broken.json", b'{"payload": "e30=", "payloadType": ')
    rc, report = run_verify(capsys, str(broken), "--keys", str(world.keys))
    assert rc == 1 and status(report) == {"format": "fail"}
    assert "broken.json" in detail(report, "format") and "malformed JSON" in detail(
        report, "format"
    )
    env = json.loads(world.env2.read_text())
    env["signatures"][0]["sig"] = "not base64!"
    rc, report = run_verify(capsys, str(world.write("b64.json", env)), "--keys", str(world.keys))
    assert rc == 1 and "signatures[0].sig" in detail(report, "format")
    # a broken key set is an error, not a report: it is the trust root
    keys = json.loads(world.keys.read_text())
    keys["keys"][0]["keyid"] = "00" * 32
    bad_keys = world.write("badkeys.json", keys)
    assert main(["verify", str(world.env2), "--keys", str(bad_keys)]) == 1
    err = capsys.readouterr().err
    assert "badkeys.json" in err and "keys[0].keyid" in err


# --- por check ---------------------------------------------------------------------------------


def test_check_proof_alone_and_with_attestation(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", str(world.proof)]) == 0
    out = capsys.readouterr().out
    assert "eip155:1:0x" + f"{2:040x}" in out and "400 base units" in out
    assert (
        main(
            ["check", str(world.proof), "--attestation", str(world.env2), "--keys", str(world.keys)]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "4.00 CNHC" in out and "sequence 2" in out


def test_check_tampered_proof(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    d = json.loads(world.proof.read_text())
    d["balance"] = "4000"
    bad = world.write("p.json", d)
    assert main(["check", str(bad)]) == 1
    assert "ProofError" in capsys.readouterr().err


def test_check_proof_from_another_tree(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    # Attack: a proof that is internally valid but for a different tree than the one
    # signed (e.g. a tree built without some other holder's liabilities).
    other = SumTree.build(leaves()[1:])
    proof = world.write("p2.json", other.prove("eip155:1:0x" + f"{2:040x}").to_dict())
    assert main(["check", str(proof)]) == 0
    capsys.readouterr()
    assert (
        main(["check", str(proof), "--attestation", str(world.env2), "--keys", str(world.keys)])
        == 1
    )
    err = capsys.readouterr().err
    assert "MismatchError" in err and "root hash" in err and "p2.json" in err


def test_check_attestation_with_wrong_key_or_missing_keys(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    other = write_keyset(
        world.dir / "other.json", KeyEntry.for_public_key(signer("x").public_key_raw, role="issuer")
    )
    assert (
        main(["check", str(world.proof), "--attestation", str(world.env2), "--keys", str(other)])
        == 1
    )
    assert "SignatureError" in capsys.readouterr().err
    assert main(["check", str(world.proof), "--attestation", str(world.env2)]) == 1
    assert "--attestation and --keys go together" in capsys.readouterr().err
    assert main(["check", str(world.dir / "nope.json")]) == 1
    assert "nope.json" in capsys.readouterr().err


# --- light install: the holder's and auditor's commands without the service's libraries -----

HEAVY = ("numpy", "web3", "fastapi", "sqlalchemy", "apscheduler")
ROOT = Path(__file__).resolve().parents[1]

# Runs `por ARGS...` in a fresh interpreter. With "block", importing a HEAVY module fails
# as it would where it is not installed (`pip install por` without extras); either way
# the process reports which HEAVY modules it ended up importing.
_RUNNER = """
import importlib.abc, json, sys
HEAVY = set(json.loads(sys.argv[1]))
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in HEAVY:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
if sys.argv[2] == "block":
    sys.meta_path.insert(0, Block())
from por.cli.main import main
rc = main(sys.argv[3:])
print("HEAVY " + json.dumps(sorted({m.partition(".")[0] for m in sys.modules} & HEAVY)))
sys.exit(rc)
"""


def run_light(mode: str, *args: str) -> tuple[int, str, str, list[str]]:
    """(exit code, stdout without the last line, stderr, HEAVY modules imported)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", _RUNNER, json.dumps(HEAVY), mode, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    out, _, last = done.stdout.rstrip("\n").rpartition("\n")
    assert last.startswith("HEAVY "), done.stdout + done.stderr
    return done.returncode, out, done.stderr, json.loads(last.removeprefix("HEAVY "))


@pytest.mark.parametrize("mode", ["inspect", "block"])
def test_check_and_verify_import_none_of_the_service_libraries(world: World, mode: str) -> None:
    """`por check` and `por verify` (without --leaves) run on `pip install por` alone."""
    commands = [
        ["check", str(world.proof)],
        ["check", str(world.proof), "--attestation", str(world.env2), "--keys", str(world.keys)],
        ["verify", str(world.env2), "--keys", str(world.keys), "--previous", str(world.env1)],
        ["verify", str(world.env2), "--keys", str(world.keys), "--json"],
    ]
    for args in commands:
        rc, out, err, heavy = run_light(mode, *args)
        assert (rc, heavy) == (0, []), (args, out, err)
        assert out.startswith("OK: ") if args[0] == "check" else "FAIL" not in out


def test_building_a_tree_without_numpy_says_what_to_install(world: World) -> None:
    rc, out, err, heavy = run_light("block", "tree", "root", str(world.leaves))
    assert (rc, out, heavy) == (1, "", [])
    assert "pip install 'por[builder]'" in err and "Traceback" not in err
    rc, out, err, heavy = run_light(
        "block",
        "verify",
        str(world.env2),
        "--keys",
        str(world.keys),
        "--leaves",
        str(world.leaves),
        "--json",
    )
    report = json.loads(out)
    assert rc == 1 and heavy == []
    assert status(report)["liabilities"] == "fail"
    assert "por[builder]" in detail(report, "liabilities")
    assert status(report)["signatures"] == "pass"  # the rest of the report still runs
