"""The TOML configuration: strict parsing with errors that name the file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from por.errors import ConfigError
from por.service.config import load_config
from por.service.setup import CONFIG_TEMPLATE

MINIMAL = """
[token]
symbol = "CNHC"
decimals = 6
currency = "CNH"

[signing]
key_file = "k.pem"
keys_file = "keys.json"
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "por.toml"
    p.write_text(text)
    return p


def test_template_parses(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, CONFIG_TEMPLATE))
    assert cfg.token.decimals == 6
    assert cfg.schedule.interval_s == 3600
    assert cfg.database_url == f"sqlite:///{tmp_path / 'data' / 'por.db'}"
    assert cfg.signing.key_file == tmp_path / "keys" / "issuer.key.pem"


def test_minimal_defaults(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, MINIMAL))
    assert cfg.service.listen_host == "127.0.0.1" and cfg.service.listen_port == 8000
    assert cfg.schedule.coalesce is True


@pytest.mark.parametrize(
    ("extra", "where", "what"),
    [
        ("[service]\nlisten = 'nowhere'\n", "service.listen", "HOST:PORT"),
        ("[schedule]\ninterval_s = 0\n", "schedule.interval_s", ">= 1"),
        ("[schedule]\ninterval_s = 5\ncron = '* * * * *'\n", "schedule", "not both"),
        ("[schedule]\ncron = '* *'\n", "schedule.cron", "5 fields"),
        ("[schedule]\nintervall_s = 5\n", "schedule", "unknown key"),
        ("[schedule]\ninterval_s = '60'\n", "schedule.interval_s", "must be int"),
        (
            "[[chains]]\nkind='fake'\nchain_id='eip155:1'\n[[chains]]\nkind='fake'\nchain_id='eip155:1'\n",
            "chains[1].chain_id",
            "twice",
        ),
        ("[[chains]]\nchain_id='eip155:1'\n", "chains[0]", "missing key 'kind'"),
    ],
)
def test_errors_name_file_and_key(tmp_path: Path, extra: str, where: str, what: str) -> None:
    p = write(tmp_path, MINIMAL + extra)
    with pytest.raises(ConfigError) as ei:
        load_config(p)
    msg = str(ei.value)
    assert str(p) in msg and where in msg and what in msg


def test_bad_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[token\n"))
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.toml")
    with pytest.raises(ConfigError, match="missing key 'token'"):
        load_config(write(tmp_path, "[signing]\nkey_file='a'\nkeys_file='b'\n"))
