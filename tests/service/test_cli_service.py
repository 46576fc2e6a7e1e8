"""Service-side CLI: a proof from the store checks; an auditor's leaf export recomputes the root."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from por.cli.main import main
from tests.service.conftest import World


def test_prove_check_and_leaves_verify(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = str(world.config)
    assert main(["attest", "--config", cfg, "--no-publish"]) == 0
    assert main(["attest", "--config", cfg, "--no-publish"]) == 0
    capsys.readouterr()
    account, balance = next(iter(world.holders["eip155:1"].items()))

    assert main(["prove", account, "--config", cfg, "--sequence", "1"]) == 0
    proof = json.loads(capsys.readouterr().out)
    assert proof["format"] == "por-mst-v1" and proof["balance"] == str(balance)
    proof_file = tmp_path / "proof.json"
    proof_file.write_text(json.dumps(proof))
    env1 = world.root / "attestations" / "00000001.dsse.json"
    env2 = world.root / "attestations" / "00000002.dsse.json"
    keys = world.root / "keys" / "keys.json"
    assert main(["check", str(proof_file), "--attestation", str(env1), "--keys", str(keys)]) == 0
    # a proof of round 1 does not match round 2: fresh salts every round
    assert main(["check", str(proof_file), "--attestation", str(env2), "--keys", str(keys)]) == 1

    leaves = tmp_path / "leaves.jsonl"
    assert main(["leaves", "--config", cfg, "--out", str(leaves)]) == 0
    n = sum(len(h) for h in world.holders.values())
    assert len(leaves.read_text().splitlines()) == n
    capsys.readouterr()
    assert main(["verify", str(env2), "--keys", str(keys), "--leaves", str(leaves), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True

    # one changed balance in the export no longer matches the signed root
    rows = leaves.read_text().splitlines()
    first = json.loads(rows[0])
    first["balance"] = str(int(first["balance"]) + 1)
    rows[0] = json.dumps(first)
    leaves.write_text("\n".join(rows) + "\n")
    assert main(["verify", str(env2), "--keys", str(keys), "--leaves", str(leaves)]) == 1

    with pytest.raises(SystemExit):
        main(["prove", "--config", cfg])  # the account is required
    assert main(["prove", "eip155:1:0x" + "00" * 20, "--config", cfg]) == 1
    assert "eip155:1:0x" in capsys.readouterr().err
