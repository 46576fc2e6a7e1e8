"""`por keys`: generate, show, merge — good input, and bad input that must write nothing."""

from __future__ import annotations

import hashlib
import json
import stat
from pathlib import Path

import pytest

from por.cli.main import main
from por.core.dsse import Ed25519Signer, KeyEntry, KeySet, keyid_for


@pytest.fixture
def passphrase(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("POR_KEY_PASSPHRASE", "test passphrase, long enough")
    return "test passphrase, long enough"


def test_generate_writes_encrypted_key_and_keyset(
    tmp_path: Path, passphrase: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(
        [
            "keys",
            "generate",
            "--out",
            str(tmp_path),
            "--role",
            "auditor",
            "--name",
            "aud",
            "--not-before",
            "2026-01-01T00:00:00Z",
            "--not-after",
            "2027-01-01T00:00:00Z",
        ]
    )
    assert rc == 0
    key_path, set_path = tmp_path / "aud.key.pem", tmp_path / "aud.keys.json"
    out = capsys.readouterr().out
    assert str(key_path) in out and str(set_path) in out
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    pem = key_path.read_bytes()
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    signer = Ed25519Signer.from_pem(pem, passphrase)
    keyset = KeySet.from_json_bytes(set_path.read_bytes())
    (entry,) = keyset.keys
    assert entry.role == "auditor" and entry.keyid == keyid_for(signer.public_key_raw)
    assert entry.public_key == signer.public_key_raw
    assert json.loads(set_path.read_text())["keys"][0]["not_after"] == "2027-01-01T00:00:00Z"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["aud.key.pem", "aud.keys.json"]

    # a second run refuses to overwrite, and writes nothing
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert (
        main(["keys", "generate", "--out", str(tmp_path), "--role", "auditor", "--name", "aud"])
        == 1
    )
    assert "refusing to overwrite" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--not-before", "2026-01-01"], "--not-before"),
        (["--not-after", "2026-01-01T00:00:00+08:00"], "--not-after"),
        (
            ["--not-before", "2027-01-01T00:00:00Z", "--not-after", "2026-01-01T00:00:00Z"],
            "before --not-before",
        ),
        (["--name", "../evil"], "--name"),
    ],
)
def test_generate_bad_arguments_write_nothing(
    tmp_path: Path,
    passphrase: str,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    assert main(["keys", "generate", "--out", str(tmp_path), *args]) == 1
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_generate_refuses_empty_passphrase(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POR_KEY_PASSPHRASE", "")
    assert main(["keys", "generate", "--out", str(tmp_path)]) == 1
    assert "empty" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_generate_without_passphrase_and_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("POR_KEY_PASSPHRASE", raising=False)
    assert main(["keys", "generate", "--out", str(tmp_path)]) == 1  # pytest's stdin: no tty
    assert "POR_KEY_PASSPHRASE" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def _keyset_file(path: Path, label: str, role: str) -> KeySet:
    s = Ed25519Signer(hashlib.sha256(label.encode()).digest())
    ks = KeySet(keys=(KeyEntry.for_public_key(s.public_key_raw, role=role),))
    path.write_text(json.dumps(ks.to_dict()))
    return ks


def test_show_and_merge(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _keyset_file(tmp_path / "a.json", "a", "issuer")
    b = _keyset_file(tmp_path / "b.json", "b", "auditor")
    assert main(["keys", "show", str(tmp_path / "a.json")]) == 0
    out = capsys.readouterr().out
    assert a.keys[0].keyid in out and "issuer" in out
    out_path = tmp_path / "c.json"
    assert (
        main(
            [
                "keys",
                "merge",
                str(tmp_path / "a.json"),
                str(tmp_path / "b.json"),
                "--out",
                str(out_path),
            ]
        )
        == 0
    )
    merged = KeySet.from_json_bytes(out_path.read_bytes())
    assert merged.keys == a.keys + b.keys
    # refuses to overwrite
    assert main(["keys", "merge", str(tmp_path / "a.json"), "--out", str(out_path)]) == 1
    # conflicting entries for one key name the file and write nothing
    conflict = tmp_path / "conflict.json"
    d = a.to_dict()
    d["keys"][0]["role"] = "auditor"
    conflict.write_text(json.dumps(d))
    assert (
        main(
            [
                "keys",
                "merge",
                str(tmp_path / "a.json"),
                str(conflict),
                "--out",
                str(tmp_path / "d.json"),
            ]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert "conflict.json" in err and "different role" in err
    assert not (tmp_path / "d.json").exists()


def test_show_malformed_keyset_names_file_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    _keyset_file(bad, "x", "issuer")
    d = json.loads(bad.read_text())
    d["keys"][0]["public_key"] = "zz"
    bad.write_text(json.dumps(d))
    assert main(["keys", "show", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "bad.json" in err and "keys[0].public_key" in err
    (tmp_path / "nojson.json").write_text("{not json")
    assert main(["keys", "show", str(tmp_path / "nojson.json")]) == 1
    assert "malformed JSON" in capsys.readouterr().err
    assert main(["keys", "show", str(tmp_path / "missing.json")]) == 1
    assert "not found" in capsys.readouterr().err


def test_generated_key_opens_with_the_openssl_command_line(tmp_path: Path, passphrase: str) -> None:
    """`openssl pkey` (OpenSSL caps scrypt at 32 MiB) opens what `por keys generate` writes."""
    import shutil
    import subprocess

    from Crypto.PublicKey import ECC

    openssl = shutil.which("openssl")
    assert openssl, "openssl is installed by ./dev setup"
    assert main(["keys", "generate", "--out", str(tmp_path), "--name", "iss"]) == 0
    key_path = tmp_path / "iss.key.pem"
    out = subprocess.run(
        [openssl, "pkey", "-in", str(key_path), "-passin", "env:POR_KEY_PASSPHRASE", "-pubout"],
        capture_output=True,
        check=True,
    )
    public = ECC.import_key(out.stdout).export_key(format="raw")
    (entry,) = KeySet.from_json_bytes((tmp_path / "iss.keys.json").read_bytes()).keys
    assert public == entry.public_key
    # the wrong passphrase is refused by OpenSSL too (the file really is encrypted)
    bad = subprocess.run(
        [openssl, "pkey", "-in", str(key_path), "-passin", "pass:wrong", "-noout"],
        capture_output=True,
        check=False,
    )
    assert bad.returncode != 0


def test_key_files_of_the_old_scrypt_cost_stay_readable(tmp_path: Path) -> None:
    """Files written before (scrypt N=2^17, r=8, p=1: 128 MiB) still open in por."""
    from Crypto.PublicKey import ECC

    key = ECC.construct(curve="Ed25519", seed=hashlib.sha256(b"old key").digest())
    pem = key.export_key(
        format="PEM",
        passphrase="old passphrase",
        protection="scryptAndAES256-CBC",
        prot_params={"iteration_count": 2**17},
    ).encode()
    signer = Ed25519Signer.from_pem(pem, "old passphrase")
    assert signer.public_key_raw == key.public_key().export_key(format="raw")
