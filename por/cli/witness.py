"""`por witness`: a small C2SP tlog-witness an auditor runs beside the log.

    por witness init --out DIR --name NAME       an encrypted Ed25519 key + its cosignature vkey
    por witness serve --dir DIR --log VKEY [--log VKEY]... [--listen HOST:PORT] [--db URL]
    por witness show --dir DIR                   what it cosigned, and refused evidence

The witness keeps, per log origin, the latest checkpoint it cosigned (SQLite in DIR by
default), checks each new one's signature with the log's vkey (`--log`, or `--keys
KEYS.json` naming the log key) and its consistency proof from that checkpoint, and
answers with a tlog-cosignature/v1 line (`por.api.witness`). The key's passphrase comes
from $POR_KEY_PASSPHRASE. Give the printed vkey to the log operator (`[[witnesses]]`)
and to verifiers (`por verify --witness VKEY --witnesses 1`).

`serve` needs `por[service]` (FastAPI, uvicorn, SQLAlchemy); `init` and `show` too for
the database. Writes DIR only.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from por.cli.keys import (
    PASSPHRASE_ENV,
    passphrase_from_env_or_prompt,
    read_bytes,
    read_keyset,
    write_new_file,
)
from por.core.dsse import Ed25519Signer
from por.core.note import ALG_COSIGNATURE_V1, ALG_ED25519, VerifierKey, check_key_name
from por.errors import InputError

KEY_FILE = "witness.key.pem"
VKEY_FILE = "witness.vkey"


def cmd_init(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if not out.is_dir():
        raise InputError("output directory does not exist", where=str(out))
    name = check_key_name(args.name, where="--name")
    key_path, vkey_path = out / KEY_FILE, out / VKEY_FILE
    for p in (key_path, vkey_path):
        if p.exists():
            raise InputError("refusing to overwrite an existing file", where=str(p))
    passphrase = passphrase_from_env_or_prompt()
    signer = Ed25519Signer(os.urandom(32))
    vkey = VerifierKey(name=name, alg=ALG_COSIGNATURE_V1, public_key=signer.public_key_raw)
    write_new_file(key_path, signer.to_pem(passphrase, random_bytes=os.urandom), mode=0o600)
    try:
        write_new_file(vkey_path, (vkey.encode() + "\n").encode("ascii"))
    except BaseException:
        key_path.unlink()
        raise
    print(f"wrote {key_path} (encrypted PKCS#8 PEM, mode 0600) and {vkey_path}")
    print(vkey.encode())
    return 0


def _load(directory: Path) -> tuple[VerifierKey, Ed25519Signer]:
    vkey_text = read_bytes(directory / VKEY_FILE, what="witness vkey").decode("ascii").strip()
    vkey = VerifierKey.parse(vkey_text, where=str(directory / VKEY_FILE))
    passphrase = os.environ.get(PASSPHRASE_ENV)
    if not passphrase:
        raise InputError(f"set ${PASSPHRASE_ENV} to the witness key's passphrase")
    key_path = directory / KEY_FILE
    signer = Ed25519Signer.from_pem(read_bytes(key_path, what="witness key"), passphrase)
    if signer.public_key_raw != vkey.public_key:
        raise InputError("the key file is not the key of witness.vkey", where=str(key_path))
    return vkey, signer


def _logs(args: argparse.Namespace) -> dict[str, VerifierKey]:
    logs: dict[str, VerifierKey] = {}
    for text in args.log or []:
        v = VerifierKey.parse(text, where="--log")
        if v.alg != ALG_ED25519:
            raise InputError("a log key is an Ed25519 note key (type 0x01)", where="--log")
        logs[v.name] = v  # the key name is the origin (C2SP: it should be)
    for path in args.keys or []:
        ks = read_keyset(path)
        if ks.log is None:
            raise InputError("the key set names no log key", where=path)
        logs[ks.log.origin] = ks.log.vkey
    if not logs:
        raise InputError("give at least one log: --log VKEY or --keys KEYS.json", where="--log")
    return logs


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from por.api.witness import WitnessDeps, create_witness_app
    from por.store.witness import WitnessStateStore

    directory = Path(args.dir)
    vkey, signer = _load(directory)
    logs = _logs(args)
    host, _, port = args.listen.rpartition(":")
    if not host or not port.isdigit():
        raise InputError(f"must be HOST:PORT, got {args.listen!r}", where="--listen")
    store = WitnessStateStore.open(args.db, data_dir=directory)
    try:
        app = create_witness_app(WitnessDeps(store=store, name=vkey.name, signer=signer, logs=logs))
        print(f"witness {vkey.encode()}")
        for origin in logs:
            print(f"  follows {origin}")
        print(f"  POST http://{host}:{port}/add-checkpoint", flush=True)
        uvicorn.run(app, host=host, port=int(port), log_level="warning", access_log=False)
    finally:
        store.close()
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from por.store.witness import WitnessStateStore

    store = WitnessStateStore.open(args.db, data_dir=Path(args.dir))
    try:
        for st in store.all():
            print(f"{st.origin}  size {st.size}  root {st.root_hash.hex()}")
        evidence = store.evidence()
        for status, reason, _ in evidence:
            print(f"refused ({status}): {reason}")
        print(f"{len(store.all())} log(s), {len(evidence)} refused signed checkpoint(s)")
    finally:
        store.close()
    return 0


def register(sub: Any) -> None:
    w = sub.add_parser("witness", help="run a C2SP tlog-witness that cosigns the log")
    wsub = w.add_subparsers(dest="witness_command", metavar="WITNESS_COMMAND", required=True)

    i = wsub.add_parser("init", help="new witness key (encrypted) and its cosignature vkey")
    i.add_argument("--out", default=".", help="directory (default: .)")
    i.add_argument("--name", required=True, help="witness name, e.g. witness.example.com/w1")
    i.set_defaults(func=cmd_init)

    s = wsub.add_parser("serve", help="serve POST /add-checkpoint")
    s.add_argument("--dir", required=True, help="the directory `init` wrote")
    s.add_argument("--log", action="append", metavar="VKEY", help="a log's checkpoint vkey")
    s.add_argument("--keys", action="append", metavar="KEYS.json", help="a key set naming a log")
    s.add_argument("--listen", default="127.0.0.1:8100", help="HOST:PORT (default 127.0.0.1:8100)")
    s.add_argument("--db", help="database URL (default: SQLite in --dir)")
    s.set_defaults(func=cmd_serve)

    sh = wsub.add_parser("show", help="print what the witness cosigned and refused")
    sh.add_argument("--dir", required=True)
    sh.add_argument("--db", help="database URL (default: SQLite in --dir)")
    sh.set_defaults(func=cmd_show)
