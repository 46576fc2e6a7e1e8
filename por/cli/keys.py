"""`por keys`: generate an Ed25519 signing key, show and merge published key sets.

    por keys generate [--out DIR] [--role issuer|auditor] [--name NAME]
                      [--not-before T] [--not-after T]
    por keys show KEYS.json
    por keys merge A.json B.json [...] --out C.json

The private key is written as encrypted PKCS#8 PEM (scrypt + AES-256-CBC), mode 0600,
with the passphrase from $POR_KEY_PASSPHRASE or an interactive prompt; an empty
passphrase is refused. Files are never overwritten and are written atomically (temp
file, fsync, link into place), so a failure leaves nothing behind. Imports only
por.core and por.errors.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import os
import re
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from por.core.dsse import ROLES, Ed25519Signer, KeyEntry, KeySet
from por.core.times import format_time, parse_time
from por.errors import InputError

PASSPHRASE_ENV = "POR_KEY_PASSPHRASE"  # noqa: S105 - the variable's name, not a secret
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


# --- file helpers shared with por.cli.audit ----------------------------------------------


def read_bytes(path: str | Path, *, what: str) -> bytes:
    """A file's bytes, or an InputError naming the file and what it should have been."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError as e:
        raise InputError(f"{what} not found", where=str(path)) from e
    except IsADirectoryError as e:
        raise InputError(f"{what} is a directory, not a file", where=str(path)) from e
    except OSError as e:
        raise InputError(f"cannot read {what}: {e.strerror}", where=str(path)) from e


def read_keyset(path: str | Path) -> KeySet:
    return KeySet.from_json_bytes(read_bytes(path, what="key set"), where=str(path))


def write_new_file(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write `data` to a NEW file atomically: temp file, fsync, hard link, fsync directory.

    A hard link (unlike os.replace) fails if the target exists, so a file that appeared
    meanwhile is never overwritten.
    """
    directory = path.parent
    tmp = directory / f".{path.name}.{os.getpid()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except OSError as e:
        raise InputError(f"cannot create a file here: {e.strerror}", where=str(directory)) from e
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)  # the umask may have narrowed or (for 0644) kept it
        try:
            os.link(tmp, path)
        except FileExistsError as e:
            raise InputError("refusing to overwrite an existing file", where=str(path)) from e
        except OSError as e:
            raise InputError(f"cannot write: {e.strerror}", where=str(path)) from e
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def keyset_json(keyset: KeySet) -> bytes:
    """The key set file as people read it: indented JSON, one trailing newline."""
    return (json.dumps(keyset.to_dict(), indent=2) + "\n").encode("utf-8")


# --- commands ----------------------------------------------------------------------------


def passphrase_from_env_or_prompt() -> str:
    if PASSPHRASE_ENV in os.environ:
        value = os.environ[PASSPHRASE_ENV]
        if not value:
            raise InputError(f"${PASSPHRASE_ENV} is empty; refusing an unencrypted key")
        return value
    if not sys.stdin.isatty():
        raise InputError(f"no passphrase: set ${PASSPHRASE_ENV} or run in a terminal")
    first = getpass.getpass("Passphrase for the new private key: ")
    if not first:
        raise InputError("empty passphrase; refusing an unencrypted key")
    if getpass.getpass("Repeat the passphrase: ") != first:
        raise InputError("the two passphrases differ")
    return first


def _time_arg(value: str | None, flag: str) -> datetime | None:
    return None if value is None else parse_time(value, where=flag)


def cmd_generate(args: argparse.Namespace) -> int:
    name = args.name or args.role
    if not _NAME_RE.fullmatch(name):
        raise InputError(
            f"key name {name!r} must be letters, digits, '.', '_' or '-'", where="--name"
        )
    out = Path(args.out)
    if not out.is_dir():
        raise InputError("output directory does not exist", where=str(out))
    not_before = _time_arg(args.not_before, "--not-before")
    not_after = _time_arg(args.not_after, "--not-after")
    if not_before and not_after and not_after < not_before:
        raise InputError("--not-after is before --not-before", where="--not-after")
    key_path, set_path = out / f"{name}.key.pem", out / f"{name}.keys.json"
    for p in (key_path, set_path):  # check both before asking for anything
        if p.exists():
            raise InputError("refusing to overwrite an existing file", where=str(p))
    passphrase = passphrase_from_env_or_prompt()

    signer = Ed25519Signer(os.urandom(32))
    entry = KeyEntry.for_public_key(
        signer.public_key_raw, role=args.role, not_before=not_before, not_after=not_after
    )
    pem = signer.to_pem(passphrase, random_bytes=os.urandom)
    write_new_file(key_path, pem, mode=0o600)
    try:
        write_new_file(set_path, keyset_json(KeySet(keys=(entry,))))
    except BaseException:
        key_path.unlink()  # all or nothing: no private key without its key set
        raise
    print(f"wrote private key {key_path} (encrypted PKCS#8 PEM, mode 0600)")
    print(f"wrote key set {set_path}")
    print(f"keyid {entry.keyid} role {entry.role}")
    return 0


def _window(entry: KeyEntry) -> str:
    start = format_time(entry.not_before) if entry.not_before else "-"
    end = format_time(entry.not_after) if entry.not_after else "-"
    return f"{start} .. {end}"


def cmd_show(args: argparse.Namespace) -> int:
    keyset = read_keyset(args.keys)
    print(f"{'keyid':<64}  {'role':<7}  {'alg':<7}  valid")
    for k in keyset.keys:
        print(f"{k.keyid:<64}  {k.role:<7}  {k.alg:<7}  {_window(k)}")
    print(f"{len(keyset.keys)} key(s)")
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.exists():
        raise InputError("refusing to overwrite an existing file", where=str(out))
    merged = KeySet(keys=())
    for path in args.inputs:
        keyset = read_keyset(path)
        try:
            merged = merged.merge(keyset)
        except InputError as e:
            raise InputError(e.message, where=str(path)) from e
    write_new_file(out, keyset_json(merged))
    print(f"wrote key set {out} with {len(merged.keys)} key(s)")
    return 0


def cmd_rotate(args: argparse.Namespace) -> int:
    from datetime import UTC

    from por.service.rotation import finish, rotate

    if args.finish:
        key = finish(Path(args.config))
        print(f"{args.config}: the issuer key is now {key} (the old key stays in the key set)")
        return 0
    at = _time_arg(args.at, "--at") or datetime.now(UTC).replace(microsecond=0)
    r = rotate(Path(args.config), at=at, label=args.label)
    print(f"new issuer key {r.new_keyid} ({r.new_key}), valid from {format_time(r.at)}")
    print(f"old issuer key {r.old_keyid} closed at {format_time(r.at)} in the key set")
    print(
        "restart `por run` before that time: it then serves the new key set, signs with "
        "the key valid at each attestation's issued_at, and signs checkpoints with both keys"
    )
    print("when witnesses have the new key: por keys rotate --finish --config " + args.config)
    return 0


def cmd_hsm_generate(args: argparse.Namespace) -> int:
    from por.service.config import load_config
    from por.service.signing import open_token

    cfg = load_config(Path(args.config))
    token = open_token(cfg)
    if token is None:
        raise InputError("no [signing.pkcs11] table in the configuration", where=args.config)
    try:
        if args.curve == "secp256k1":
            attestor = token.generate_secp256k1(args.label)
            print(f"secp256k1 key {args.label!r} in {token.where}: address {attestor.address}")
            print(
                "register it as an attestor of the ReserveOracle and list it in attestor_hsm_labels"
            )
            return 0
        signer = token.generate_ed25519(args.label)
    finally:
        token.close()
    entry = KeyEntry.for_public_key(signer.public_key_raw, role="issuer")
    print(f"ed25519 key {args.label!r} in {token.where}: keyid {entry.keyid}")
    if args.keys_out:
        write_new_file(Path(args.keys_out), keyset_json(KeySet(keys=(entry,))))
        print(f"wrote key set {args.keys_out}")
    return 0


def register(sub: Any) -> None:
    keys = sub.add_parser("keys", help="generate signing keys; show and merge key sets")
    ksub = keys.add_subparsers(dest="keys_command", metavar="KEYS_COMMAND", required=True)

    gen = ksub.add_parser("generate", help="new Ed25519 key: encrypted PEM + key set JSON")
    gen.add_argument("--out", default=".", help="directory to write into (default: .)")
    gen.add_argument("--role", choices=ROLES, default="issuer")
    gen.add_argument("--name", help="file name stem (default: the role)")
    gen.add_argument("--not-before", help="RFC 3339 UTC, e.g. 2026-01-01T00:00:00Z")
    gen.add_argument("--not-after", help="RFC 3339 UTC, e.g. 2027-01-01T00:00:00Z")
    gen.set_defaults(func=cmd_generate)

    show = ksub.add_parser("show", help="list the keys of a key set")
    show.add_argument("keys", metavar="KEYS.json")
    show.set_defaults(func=cmd_show)

    rot = ksub.add_parser(
        "rotate",
        help="hand the issuer key over to a new one at a time T (key set, config, key)",
    )
    rot.add_argument("--config", default="por.toml")
    rot.add_argument("--at", help="RFC 3339 UTC handover time (default: now)")
    rot.add_argument("--label", help="HSM label of the new key (default: <key_label>-<T>)")
    rot.add_argument(
        "--finish", action="store_true", help="make the new key the only configured key"
    )
    rot.set_defaults(func=cmd_rotate)

    hsm = ksub.add_parser("hsm-generate", help="new key pair inside the [signing.pkcs11] HSM token")
    hsm.add_argument("--config", default="por.toml")
    hsm.add_argument("--label", required=True)
    hsm.add_argument("--curve", choices=("ed25519", "secp256k1"), default="ed25519")
    hsm.add_argument("--keys-out", help="write a key set with the new issuer key (ed25519)")
    hsm.set_defaults(func=cmd_hsm_generate)

    merge = ksub.add_parser("merge", help="merge key sets into one")
    merge.add_argument("inputs", nargs="+", metavar="KEYS.json")
    merge.add_argument("--out", required=True, metavar="C.json")
    merge.set_defaults(func=cmd_merge)
