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


SOURCES = """
[[chains]]
kind = "evm"
chain_id = "eip155:1"
rpc_urls = ["http://a.example"]
token = "0x00000000000000000000000000000000000000aa"
start_block = 100

[[custodians]]
kind = "files"
name = "harbour"
paths = ["statements/*.xml"]
"""


def uncomment_examples(text: str) -> str:
    """The template with every example table uncommented (`# [[` starts one, a blank line ends it)."""
    out, inside = [], False
    for raw in text.splitlines():
        line = raw
        if line.startswith(("# [[", "# [signing.pkcs11]", "# [dask]")):
            inside = True
        elif not line.strip():
            inside = False
        if inside and line.startswith("# "):
            line = line[2:]  # a comment inside the example ("# # ...") stays one
        out.append(line)
    return "\n".join(out) + "\n"


def test_template_parses_once_its_examples_are_filled_in(tmp_path: Path) -> None:
    # unedited, it is refused: no chain, no custodian (por attest must not sign it)
    with pytest.raises(ConfigError) as ei:
        load_config(write(tmp_path, CONFIG_TEMPLATE))
    assert "no [[chains]] table" in str(ei.value) and "no [[custodians]] table" in str(ei.value)
    # every example is a valid table of its kind (only key_file must go for the HSM one)
    text = uncomment_examples(CONFIG_TEMPLATE).replace(
        'key_file = "keys/issuer.key.pem"', "# key_file removed for the HSM"
    )
    cfg = load_config(write(tmp_path, text))
    assert [c.kind for c in cfg.chains] == ["evm", "solana"]
    assert [c.kind for c in cfg.custodians] == ["files", "api"]
    assert cfg.signing.pkcs11 is not None and cfg.signing.pkcs11.key_label == "issuer"
    assert cfg.alerts.stale_after_intervals == 3 and len(cfg.alerts.webhooks) == 1
    evm = cfg.chains[0]
    assert evm.kind == "evm" and evm.quorum == 2 and evm.start_block == 19000000
    assert cfg.dask is not None and cfg.dask.scheduler.startswith("tls://")
    assert cfg.dask.tls_ca_file == tmp_path / "tls" / "ca.pem"


def test_template_defaults(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, CONFIG_TEMPLATE + SOURCES))
    assert cfg.token.decimals == 6
    assert cfg.schedule.interval_s == 3600
    assert cfg.database_url == f"sqlite:///{tmp_path / 'data' / 'por.db'}"
    assert cfg.signing.key_file == tmp_path / "keys" / "issuer.key.pem"


def test_minimal_defaults(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, MINIMAL + SOURCES))
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
        ("[service]\ntree_engine = 'spark'\n", "service.tree_engine", "dask"),
        ("[service]\ntree_engine = 'dask'\n", "", "needs a [dask] table"),
        ("[dask]\nscheduler = 'localhost'\n", "dask.scheduler", "tcp://HOST:PORT"),
        ("[dask]\ntls_ca_file = 'ca.pem'\n", "dask", "go together"),
        (
            "[dask]\nscheduler = 'tls://10.0.0.1:8786'\n",
            "dask",
            "tls:// scheduler needs",
        ),
        ("[dask]\nn_workers = 0\n", "dask.n_workers", ">= 1"),
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


EVERY_KIND = """
[[chains]]
kind = "evm"
chain_id = "eip155:56"
rpc_urls = ["http://a.example", "http://b.example"]
quorum = 2
token = "0x00000000000000000000000000000000000000aa"
treasury = ["0x00000000000000000000000000000000000000bb"]
bridge_escrow = ["0x00000000000000000000000000000000000000cc"]
start_block = 100
oracle = "0x00000000000000000000000000000000000000dd"
publisher_key_env = "POR_PUBLISHER_56"
attestor_key_envs = ["POR_ATTESTOR_56"]

[[chains]]
kind = "solana"
chain_id = "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"
rpc_url = "http://sol.example"
mint = "So11111111111111111111111111111111111111112"
memo_keypair = "keys/memo.json"

[[chains]]
kind = "fake"
chain_id = "eip155:1"
token = "eip155:1:0xabab"
[chains.holders]
"eip155:1:0x01" = 5

[[custodians]]
kind = "files"
name = "harbour"
paths = ["statements/*.xml", "/srv/holdings.csv"]
max_age_s = 172800

[[custodians]]
kind = "api"
name = "custodian-api"
base_url = "https://custodian.example"
public_key = "00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff"
"""


def test_every_kind_parses_into_its_model(tmp_path: Path) -> None:
    from por.service.config import (
        ApiCustodianConfig,
        EvmChainConfig,
        FakeChainConfig,
        FilesCustodianConfig,
        SolanaChainConfig,
    )

    cfg = load_config(write(tmp_path, "[service]\ndemo = true\n" + MINIMAL + EVERY_KIND))
    evm, sol, fake = cfg.chains
    assert isinstance(evm, EvmChainConfig) and evm.chain_number == 56 and evm.quorum == 2
    assert evm.exclusions() == {
        "0x00000000000000000000000000000000000000bb": "treasury",
        "0x00000000000000000000000000000000000000cc": "bridge_escrow",
    }
    assert evm.spot_checks == 16 and evm.attestor_hsm_labels == []  # defaults
    assert isinstance(sol, SolanaChainConfig) and sol.memo_keypair == tmp_path / "keys/memo.json"
    assert isinstance(fake, FakeChainConfig) and fake.holders == {"eip155:1:0x01": 5}
    files, api = cfg.custodians
    assert isinstance(files, FilesCustodianConfig)
    assert files.paths == [tmp_path / "statements/*.xml", Path("/srv/holdings.csv")]
    assert isinstance(api, ApiCustodianConfig) and api.public_key == b"\x00\xff" * 16
    assert api.max_age_s == 48 * 3600


@pytest.mark.parametrize(
    ("table", "where", "what"),
    [
        (
            "kind='evm'\nchain_id='eip155:1'\nrpc_urls=[]\ntoken='t'\nrpc_url='x'\n",
            "chains[0]",
            "unknown key(s) rpc_url",
        ),
        ("kind='evm'\nchain_id='eip155:1'\ntoken='t'\n", "chains[0]", "missing key 'rpc_urls'"),
        (
            "kind='evm'\nchain_id='1'\nrpc_urls=[]\ntoken='t'\n",
            "chains[0].chain_id",
            "eip155:<number>",
        ),
        (
            "kind='evm'\nchain_id='eip155:1'\nrpc_urls=[]\ntoken='t'\nstart_block='9'\n",
            "chains[0].start_block",
            "must be int, got str '9'",
        ),
        (
            "kind='evm'\nchain_id='eip155:1'\nrpc_urls=[]\ntoken='t'\nspot_checks=-1\n",
            "chains[0].spot_checks",
            ">= 0",
        ),
        (
            "kind='evm'\nchain_id='eip155:1'\nrpc_urls=[]\ntoken='t'\noracle='0x1'\n",
            "chains[0]",
            "publisher_key_env",
        ),
        (
            "kind='evm'\nchain_id='eip155:1'\nrpc_urls=[]\ntoken='t'\ntreasury='0x1'\n",
            "chains[0].treasury",
            "must be list",
        ),
        ("kind='solana'\nchain_id='solana:x'\nrpc_url='u'\n", "chains[0]", "missing key 'mint'"),
        (
            "kind='fake'\nchain_id='eip155:1'\ntoken='t'\n[chains.holders]\n'a'=true\n",
            "chains[0].holders.a",
            "must be int",
        ),
        (
            "kind='cosmos'\nchain_id='x'\n",
            "chains[0].kind",
            "unknown chain kind 'cosmos' (evm, solana, fake)",
        ),
    ],
)
def test_chain_tables_are_checked_by_kind(
    tmp_path: Path, table: str, where: str, what: str
) -> None:
    p = write(tmp_path, MINIMAL + "[[chains]]\n" + table)
    with pytest.raises(ConfigError) as ei:
        load_config(p)
    msg = str(ei.value)
    assert f"{p}:{where}:" in msg and what in msg


@pytest.mark.parametrize(
    ("table", "where", "what"),
    [
        ("kind='files'\nname='n'\npaths='*.xml'\n", "custodians[0].paths", "must be list"),
        ("kind='files'\npaths=[]\n", "custodians[0]", "missing key 'name'"),
        (
            "kind='api'\nname='n'\nbase_url='u'\npublic_key='xyz'\n",
            "custodians[0].public_key",
            "must be hex",
        ),
        (
            "kind='api'\nname='n'\nbase_url='u'\npublic_key='00'\nmax_age_s=1.5\n",
            "custodians[0].max_age_s",
            "must be int",
        ),
        ("name='n'\n", "custodians[0]", "missing key 'kind'"),
        ("kind='ftp'\n", "custodians[0].kind", "unknown custodian kind 'ftp' (files, api)"),
    ],
)
def test_custodian_tables_are_checked_by_kind(
    tmp_path: Path, table: str, where: str, what: str
) -> None:
    p = write(tmp_path, MINIMAL + "[[custodians]]\n" + table)
    with pytest.raises(ConfigError) as ei:
        load_config(p)
    msg = str(ei.value)
    assert f"{p}:{where}:" in msg and what in msg


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        MINIMAL
        + "[service]\nlisten='x'\n[schedule]\ninterval_s=true\ncolaesce=true\n"
        + "[[chains]]\nkind='evm'\nchain_id='eip155:1'\nrpc_urls='u'\ntoken='t'\nstart_block=1\n"
        + "[[custodians]]\nkind='files'\nname='n'\npaths=[]\n",
    )
    with pytest.raises(ConfigError) as ei:
        load_config(p)
    lines = str(ei.value).splitlines()
    assert lines[0] == f"{p}: 4 problems:"
    assert lines[1:] == [
        f"  {p}:service.listen: must be HOST:PORT, got 'x'",
        f"  {p}:schedule.interval_s: must be int, got bool True",
        f"  {p}:schedule: unknown key(s) colaesce",
        f"  {p}:chains[0].rpc_urls: must be list, got str 'u'",
    ]


# --- nonsense that type-checks: refused before anything is read or signed -----------------

EVM = "[[chains]]\nkind='evm'\nchain_id='eip155:1'\nrpc_urls=['http://a']\ntoken='0x01'\n"
FILES = "[[custodians]]\nkind='files'\nname='n'\npaths=['s/*.xml']\n"


@pytest.mark.parametrize(
    ("tables", "where", "what"),
    [
        (FILES, "chains", "no [[chains]] table"),
        (EVM + "start_block=5\n", "custodians", "no [[custodians]] table"),
        (EVM + FILES, "chains[0].start_block", "deployment block"),
        (EVM + "start_block=0\n" + FILES, "chains[0].start_block", "index_from_genesis = true"),
        (
            EVM + "start_block=7\nindex_from_genesis=true\n" + FILES,
            "chains[0].index_from_genesis",
            "contradicts start_block = 7",
        ),
        (
            EVM + "start_block=5\noracle='0x02'\npublisher_key_env='P'\n" + FILES,
            "chains[0].attestor_key_envs",
            "an oracle needs attestor keys",
        ),
        (
            EVM + "start_block=5\noracle='0x02'\npublisher_key_env='P'\n"
            "attestor_hsm_labels=['a1']\n" + FILES,
            "chains[0].attestor_hsm_labels",
            "[signing.pkcs11]",
        ),
        (
            "[[chains]]\nkind='fake'\nchain_id='eip155:1'\ntoken='t'\n" + FILES,
            "chains[0].kind",
            'kind "fake" is an in-memory test chain',
        ),
    ],
)
def test_nonsense_is_refused_naming_the_key(
    tmp_path: Path, tables: str, where: str, what: str
) -> None:
    p = write(tmp_path, MINIMAL + tables)
    with pytest.raises(ConfigError) as ei:
        load_config(p)
    msg = str(ei.value)
    assert f"{p}:{where}:" in msg and what in msg, msg


def test_genesis_indexing_when_asked_and_fake_in_a_demo(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, MINIMAL + EVM + "index_from_genesis=true\n" + FILES))
    assert cfg.chains[0].kind == "evm" and cfg.chains[0].first_block == 0
    fake = "[[chains]]\nkind='fake'\nchain_id='eip155:1'\ntoken='t'\n"
    cfg = load_config(write(tmp_path, "[service]\ndemo=true\n" + MINIMAL + fake + FILES))
    assert cfg.chains[0].kind == "fake"


def test_nonsense_and_type_errors_are_reported_together(tmp_path: Path) -> None:
    p = write(tmp_path, MINIMAL + "[schedule]\ninterval_s='1'\n" + EVM)
    with pytest.raises(ConfigError) as ei:
        load_config(p)
    msg = str(ei.value)
    assert "3 problems" in msg
    assert "schedule.interval_s: must be int" in msg
    assert "chains[0].start_block" in msg and "no [[custodians]] table" in msg


@pytest.mark.parametrize(
    ("signing", "what"),
    [
        ("keys_file='k.json'\n", "missing key 'key_file'"),
        (
            "keys_file='k.json'\nkey_file='a.pem'\n[signing.pkcs11]\nmodule='m.so'\n"
            "token_label='t'\nkey_label='issuer'\n",
            "not both",
        ),
        ("keys_file='k.json'\nkey_file='a.pem'\n[signing.pkcs11]\nmodule='m.so'\n", "token_label"),
    ],
)
def test_signing_needs_exactly_one_key_store(tmp_path: Path, signing: str, what: str) -> None:
    text = MINIMAL.replace('[signing]\nkey_file = "k.pem"\nkeys_file = "keys.json"\n', "")
    p = write(tmp_path, text + EVM + "start_block=5\n" + FILES + "[signing]\n" + signing)
    with pytest.raises(ConfigError) as ei:
        load_config(p)
    assert what in str(ei.value)


def test_webhooks_are_checked(tmp_path: Path) -> None:
    hook = "[alerts]\n[[alerts.webhooks]]\nurl='ftp://x'\nsecret_env='S'\ntimeout_s=0\n"
    p = write(tmp_path, MINIMAL + EVM + "start_block=5\n" + FILES + hook)
    with pytest.raises(ConfigError) as ei:
        load_config(p)
    msg = str(ei.value)
    assert "alerts.webhooks[0].url: must be an http(s) URL" in msg
    assert "alerts.webhooks[0].timeout_s: must be >= 1" in msg


def test_api_table_limits_proxies_and_redis(tmp_path: Path) -> None:
    from por.service.config import with_trusted_proxies
    from por.service.wiring import api_limits

    cfg = load_config(write(tmp_path, MINIMAL + SOURCES))
    assert cfg.api.trusted_proxies == [] and cfg.api.rate_limit_backend == "memory"
    assert api_limits(cfg)["rate_limit_redis_url"] is None
    text = (
        MINIMAL
        + SOURCES
        + "[api]\ntrusted_proxies = ['10.0.0.0/8', '192.0.2.7']\nproof_rate_per_s = 2\n"
        + "rate_limit_backend = 'redis'\nrate_limit_redis_url = 'redis://127.0.0.1:6379/0'\n"
    )
    cfg = load_config(write(tmp_path, text))
    limits = api_limits(cfg)
    assert limits["trusted_proxies"] == ("10.0.0.0/8", "192.0.2.7")
    assert limits["rate_limit_redis_url"] == "redis://127.0.0.1:6379/0"
    assert limits["proof_rate_limit"].per_second == 2
    # --trusted-proxy replaces the file's list (and keeps the file's path for the workers)
    moved = with_trusted_proxies(cfg, ["127.0.0.1"])
    assert moved.api.trusted_proxies == ["127.0.0.1"] and moved.path == cfg.path
    assert with_trusted_proxies(cfg, []) is cfg
    with pytest.raises(ConfigError, match=r"--trusted-proxy.*not an IP"):
        with_trusted_proxies(cfg, ["proxy.example"])
    for bad, what in (
        ("trusted_proxies = ['10.0.0.0/33']", "api.trusted_proxies"),
        ("rate_limit_backend = 'redis'", "rate_limit_redis_url"),
        ("rate_limit_backend = 'memcached'", "api.rate_limit_backend"),
    ):
        with pytest.raises(ConfigError, match=what):
            load_config(write(tmp_path, MINIMAL + SOURCES + f"[api]\n{bad}\n"))


@pytest.mark.parametrize(
    ("value", "what"),
    [
        ("zz" * 32, "not hex"),  # was a raw binascii.Error traceback
        ("ab" * 32 + "a", "64 hex digits"),  # 65 characters: was accepted, failed later
        ("0x" + "ab" * 31, "got 62 characters"),
        ("00" * 32, "no valid secp256k1 private key"),
        ("ff" * 32, "no valid secp256k1 private key"),  # above the curve order
    ],
)
def test_publisher_and_attestor_keys_are_checked_at_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str, what: str
) -> None:
    from por.service.wiring import build_chain

    cfg = load_config(write(tmp_path, "[service]\ndemo = true\n" + MINIMAL + EVERY_KIND))
    chain = cfg.chains[0]
    good = "0x" + "11" * 32
    for publisher, attestor, where in (
        (value, good, "chains[0].publisher_key_env"),
        (good, value, "chains[0].attestor_key_envs[0]"),
    ):
        monkeypatch.setenv("POR_PUBLISHER_56", publisher)
        monkeypatch.setenv("POR_ATTESTOR_56", attestor)
        with pytest.raises(ConfigError) as ei:
            build_chain(chain, cfg=cfg, where="por.toml:chains[0]", store=None, publish=True)  # type: ignore[arg-type]
        msg = str(ei.value)
        assert what in msg and where in msg, msg
        assert value not in msg  # never the secret itself


def test_custodian_api_key_must_be_32_bytes(tmp_path: Path) -> None:
    text = (
        "[service]\ndemo = true\n" + MINIMAL + EVERY_KIND.replace("00ff" * 16, "00ff" * 16 + "00")
    )
    with pytest.raises(ConfigError, match=r"custodians\[1\]\.public_key.*32-byte"):
        load_config(write(tmp_path, text))
