"""[[witnesses]] in the configuration, and the key set the service serves (log + witnesses)."""

from __future__ import annotations

from pathlib import Path

import pytest

from por.core.dsse import KeyEntry, KeySet, LogKey
from por.core.note import ALG_COSIGNATURE_V1, VerifierKey
from por.core.tlog import log_verifier_key
from por.errors import ConfigError, FormatError
from por.service.config import parse_config
from por.service.witnesses import publish_log_keys, witness_targets
from tests.store.factory import ISSUER, LOG_SIGNER

W = VerifierKey(name="w.example/1", alg=ALG_COSIGNATURE_V1, public_key=LOG_SIGNER.public_key_raw)
BASE = {
    "token": {"symbol": "CNHC", "decimals": 6, "currency": "CNH"},
    "signing": {"key_file": "k.pem", "keys_file": "k.json"},
    # a configuration needs a chain and a custodian (por.service.config refuses less)
    "chains": [
        {
            "kind": "evm",
            "chain_id": "eip155:1",
            "rpc_urls": ["http://a.example"],
            "token": "0x00000000000000000000000000000000000000aa",
            "start_block": 100,
        }
    ],
    "custodians": [{"kind": "files", "name": "harbour", "paths": ["statements/*.xml"]}],
}


def test_witness_tables_are_checked() -> None:
    cfg = parse_config(
        {**BASE, "witnesses": [{"vkey": W.encode(), "url": "http://127.0.0.1:8100"}]},
        path=Path("por.toml"),
    )
    (t,) = witness_targets(cfg)
    assert (
        t.vkey == W and t.timeout_s == 10.0 and cfg.service.auditor_token_env == "POR_AUDITOR_TOKEN"
    )
    log_vkey = log_verifier_key("o", LOG_SIGNER.public_key_raw).encode()  # type 0x01: not a witness
    with pytest.raises(ConfigError) as info:
        parse_config(
            {**BASE, "witnesses": [{"vkey": log_vkey, "url": "ftp://x"}, {"url": "http://x"}]},
            path=Path("por.toml"),
        )
    msg = str(info.value)
    assert "witnesses[0].vkey: must be a witness cosignature key (type 0x04)" in msg
    assert (
        "witnesses[0].url: must be an http(s) URL" in msg
        and "witnesses[1]: missing key 'vkey'" in msg
    )


def test_served_key_set_names_the_log_key_and_witnesses() -> None:
    keys = KeySet(keys=(KeyEntry.for_public_key(ISSUER.public_key_raw, role="issuer"),))
    served = publish_log_keys(
        keys,
        origin="por.example/log",
        checkpoint_key=ISSUER.public_key_raw,
        witnesses=[W],
        where="k.json",
    )
    assert served.log == LogKey(
        origin="por.example/log", vkey=log_verifier_key("por.example/log", ISSUER.public_key_raw)
    )
    assert served.witnesses == (W,)
    assert KeySet.from_dict(served.to_dict()) == served
    assert "log" not in keys.to_dict()  # a key set without them reads and writes as before
    # a key set file naming another log key is a configuration error
    other = KeySet(
        keys=keys.keys,
        log=LogKey(
            origin="por.example/log",
            vkey=log_verifier_key("por.example/log", LOG_SIGNER.public_key_raw),
        ),
    )
    with pytest.raises(ConfigError, match="names the log key"):
        publish_log_keys(
            other,
            origin="por.example/log",
            checkpoint_key=ISSUER.public_key_raw,
            witnesses=[],
            where="k.json",
        )
    with pytest.raises(FormatError):
        KeySet.from_dict({**served.to_dict(), "witnesses": [served.to_dict()["log"]["vkey"]]})
    with pytest.raises(FormatError):  # the key name must be the origin
        LogKey.from_dict(
            {"origin": "a", "vkey": log_verifier_key("b", ISSUER.public_key_raw).encode()}
        )
