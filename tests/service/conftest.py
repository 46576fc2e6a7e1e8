"""A small configured world for service tests: fake chains, the sample custodian files,
an issuer key on disk, SQLite (or PostgreSQL) storage, and a fixed clock."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from por.core.dsse import Ed25519Signer, KeyEntry, KeySet
from por.demo.fake_chain import fake_holders

SAMPLES = Path(__file__).resolve().parents[2] / "por" / "demo" / "samples"
CUSTODIAN = "Harbour Trust Bank (Hong Kong) Limited"
# The sample statements are dated 2025-06-30 (Hong Kong end of day).
SAMPLE_DAY = datetime(2025, 7, 1, 2, 0, tzinfo=UTC)
PASSPHRASE = "correct horse battery staple"


@dataclass
class World:
    root: Path
    config: Path
    keys: KeySet
    holders: dict[str, dict[str, int]]


def toml_value(v: object) -> str:
    return json.dumps(v)  # JSON strings, numbers, lists are valid TOML values here


def write_world(
    root: Path,
    *,
    holders_per_chain: int = 40,
    database_url: str = "",
    custodian_paths: list[str] | None = None,
    extra_chain: str = "",
    interval_s: int = 3600,
) -> World:
    root.mkdir(parents=True, exist_ok=True)
    signer = Ed25519Signer(secrets.token_bytes(32))
    (root / "keys").mkdir(exist_ok=True)
    (root / "keys" / "issuer.key.pem").write_bytes(
        signer.to_pem(PASSPHRASE, random_bytes=secrets.token_bytes)
    )
    keys = KeySet(keys=(KeyEntry.for_public_key(signer.public_key_raw, role="issuer"),))
    (root / "keys" / "keys.json").write_bytes(keys.to_json_bytes())
    chains = {c: fake_holders(c, holders_per_chain) for c in ("eip155:1", "eip155:56")}
    paths = (
        custodian_paths
        if custodian_paths is not None
        else [
            str(SAMPLES / "harbour_trust_camt053_v08.xml"),
            str(SAMPLES / "harbour_trust_holdings.csv"),
        ]
    )
    text = f"""
[service]
demo = true
data_dir = "data"
attestations_dir = "attestations"
database_url = {toml_value(database_url)}
origin = "por.test/cnhc"
[schedule]
interval_s = {interval_s}
[token]
symbol = "CNHC"
decimals = 6
currency = "CNH"
[signing]
key_file = "keys/issuer.key.pem"
keys_file = "keys/keys.json"
[[custodians]]
kind = "files"
name = "harbour"
custodian = "{CUSTODIAN}"
paths = {toml_value(paths)}
"""
    for cid, hs in chains.items():
        text += f"""
[[chains]]
kind = "fake"
chain_id = "{cid}"
token = "{cid}:0x{"ab" * 20}"
[chains.holders]
""" + "".join(f'"{a}" = {b}\n' for a, b in hs.items())
    text += extra_chain
    (root / "por.toml").write_text(text)
    # what an operator does once: `por db upgrade` (the service refuses an unmigrated db)
    from por.store.migrate import upgrade_url

    (root / "data").mkdir(exist_ok=True)
    upgrade_url(database_url or f"sqlite:///{root / 'data' / 'por.db'}")
    return World(root=root, config=root / "por.toml", keys=keys, holders=chains)


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setenv("POR_KEY_PASSPHRASE", PASSPHRASE)
    yield write_world(tmp_path / "world")


class Clock:
    def __init__(self, start: datetime = SAMPLE_DAY) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


# --- SoftHSM2: a PKCS#11 token for the HSM signer tests ------------------------------------

SOFTHSM_MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")
HSM_TOKEN = "por-test"
HSM_PIN = "246810"


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SoftHSM2 token per test process (PKCS#11 reads its configuration once per
    process, so the token directory is fixed before the library is first loaded)."""
    import os
    import shutil
    import subprocess

    if not SOFTHSM_MODULE.exists() or shutil.which("softhsm2-util") is None:
        if os.environ.get("CI"):
            pytest.fail("SoftHSM2 is missing: ./dev setup installs softhsm2")
        pytest.skip("SoftHSM2 is not installed (./dev setup installs softhsm2)")
    root = tmp_path_factory.mktemp("softhsm")
    (root / "tokens").mkdir()
    conf = root / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(
        [
            "softhsm2-util",
            "--init-token",
            "--free",
            "--label",
            HSM_TOKEN,
            "--pin",
            HSM_PIN,
            "--so-pin",
            "13579111",
        ],
        check=True,
        capture_output=True,
    )
    return conf
