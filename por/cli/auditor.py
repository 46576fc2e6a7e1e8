"""The auditor's remote commands: `por log verify`, `por statements fetch`, `por cosign`.

    por log verify --from URL [--keys KEYS.json] [--state STATE.json]
                   [--witness VKEY]... [--witnesses N] [--json]
    por statements fetch SHA256 --from URL [--out FILE] [--token-env VAR]
    por cosign SEQUENCE --from URL --key AUDITOR.key.pem [--keys KEYS.json]
               [--out SIGNATURE.json] [--no-submit] [--token-env VAR]

`por log verify` is a monitor (checks: `por.core.monitor`): it reads the log through
C2SP tlog-tiles, and with `--state` keeps the checkpoint it verified, so the next run
proves the log only grew (a shrunk log or a second root for one size — a split view —
fails and the kept checkpoint is printed as evidence). `por statements fetch` downloads
a raw statement by SHA-256 and refuses bytes that do not hash to it. `por cosign`
verifies an attestation first (`por verify --from`'s checks) and refuses to co-sign one
that does not pass; it signs the same DSSE payload with the auditor key and submits the
signature (bearer token from $POR_AUDITOR_TOKEN). Keys are never taken from the server
when `--keys` is given.

Reads files, the network (the one URL given), writes stdout and the named files only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from por.cli.audit import (
    latest_sequence,
    remote_envelope,
    remote_evidence,
    remote_keyset,
)
from por.cli.keys import PASSPHRASE_ENV, read_bytes, write_new_file
from por.cli.remote import Remote, token_from_env
from por.core.attestation import PAYLOAD_TYPE
from por.core.canonical import loads_strict
from por.core.dsse import Ed25519Signer, Envelope, Signature, pae
from por.core.monitor import MonitorState, audit_log
from por.core.note import VerifierKey
from por.core.verify import verify_report
from por.errors import InputError, MismatchError, PorError
from por.fileio import write_atomic

AUDITOR_TOKEN_ENV = "POR_AUDITOR_TOKEN"  # noqa: S105 - the variable's name


# --- por log verify -----------------------------------------------------------------------


def cmd_log_verify(args: argparse.Namespace) -> int:
    remote = Remote(args.from_url)
    keyset, _ = remote_keyset(remote, args.keys)
    previous = None
    state_path = Path(args.state) if args.state else None
    if state_path is not None and state_path.exists():
        previous = MonitorState.from_dict(
            loads_strict(read_bytes(state_path, what="monitor state"), where=str(state_path)),
            where=str(state_path),
        )
    note = remote.get("/checkpoint").decode("utf-8", "strict")

    def proof(old: int, new: int) -> list[bytes]:
        doc = remote.get_json(f"/v1/log/consistency?from={old}&to={new}")
        return [bytes.fromhex(h) for h in doc["path"]]

    audit = audit_log(
        note,
        keyset=keyset,
        fetch=lambda path: remote.get("/" + path),
        previous=previous,
        consistency_proof=proof,
        witnesses=[VerifierKey.parse(v, where="--witness") for v in args.witness or []],
        required_witnesses=args.witnesses,
    )
    report = audit.report
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.table().replace("por verify", "por log verify", 1))
    if report.ok and state_path is not None and audit.state is not None:
        write_atomic(state_path, (json.dumps(audit.state.to_dict(), indent=2) + "\n").encode())
        print(f"kept checkpoint of size {audit.state.size} in {state_path}", file=sys.stderr)
    return 0 if report.ok else 1


# --- por statements fetch -----------------------------------------------------------------


def cmd_statements_fetch(args: argparse.Namespace) -> int:
    sha = args.sha256.lower()
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise InputError("must be 64 hex digits (a SHA-256)", where="SHA256")
    remote = Remote(args.from_url, token=token_from_env(args.token_env))
    data = remote.get(f"/v1/statements/{sha}", auth=True)
    computed = hashlib.sha256(data).hexdigest()
    if computed != sha:
        raise MismatchError(
            "the server's statement does not hash to the SHA-256 asked for",
            expected=sha,
            computed=computed,
            where=remote.url(f"/v1/statements/{sha}"),
        )
    if args.out is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        write_new_file(Path(args.out), data)
        print(f"wrote {len(data)} bytes to {args.out} (SHA-256 {sha} verified)", file=sys.stderr)
    return 0


# --- por cosign ---------------------------------------------------------------------------


def _auditor_signer(path: str) -> Ed25519Signer:
    passphrase = os.environ.get(PASSPHRASE_ENV)
    if not passphrase:
        raise InputError(f"set ${PASSPHRASE_ENV} to the auditor key's passphrase")
    return Ed25519Signer.from_pem(read_bytes(path, what="auditor key"), passphrase, where=path)


def cmd_cosign(args: argparse.Namespace) -> int:
    token = None if args.no_submit else token_from_env(args.token_env)
    remote = Remote(args.from_url, token=token)
    keyset, _ = remote_keyset(remote, args.keys)
    signer = _auditor_signer(args.key)
    entry = keyset.get(signer.keyid)
    if entry is None or entry.role != "auditor":
        raise InputError(
            f"key {signer.keyid[:16]}… is not an auditor key of the key set", where=args.key
        )
    seq = args.sequence if args.sequence is not None else latest_sequence(remote)
    envelope = remote_envelope(remote, seq)
    log, _ = remote_evidence(remote, seq)
    report = verify_report(
        envelope,
        keyset,
        now=datetime.now(UTC),
        previous=None if seq == 1 else remote_envelope(remote, seq - 1),
        log=log,
    )
    print(report.table())
    if not report.ok:
        print(f"por cosign: attestation {seq} does not verify: not co-signing", file=sys.stderr)
        return 1
    env: Envelope = envelope.load()
    sig = Signature(keyid=signer.keyid, sig=signer.sign(pae(PAYLOAD_TYPE, env.payload)))
    signed = Envelope(payload=env.payload, payload_type=PAYLOAD_TYPE, signatures=(sig,))
    body = signed.to_json_bytes()
    if args.out is not None:
        write_new_file(Path(args.out), body)
        print(f"wrote the co-signature envelope to {args.out}")
    if args.no_submit:
        return 0
    status, answer = remote.request(
        f"/v1/attestations/{seq}/signatures",
        method="POST",
        body=body,
        content_type="application/json",
        auth=True,
    )
    if status != 201:
        text = answer[:500].decode("utf-8", "replace")
        raise PorError(
            f"HTTP {status}: {text}", where=remote.url(f"/v1/attestations/{seq}/signatures")
        )
    print(f"co-signed attestation {seq} with auditor key {signer.keyid[:16]}…")
    return 0


# --- parsers ------------------------------------------------------------------------------


def _from(p: Any) -> None:
    p.add_argument("--from", dest="from_url", required=True, metavar="URL", help="a por API")


def register(sub: Any) -> None:
    log = sub.add_parser("log", help="monitor the attestation log (C2SP tlog-tiles)")
    lsub = log.add_subparsers(dest="log_command", metavar="LOG_COMMAND", required=True)
    lv = lsub.add_parser(
        "verify", help="checkpoint, every envelope's inclusion, consistency with a kept one"
    )
    _from(lv)
    lv.add_argument("--keys", metavar="KEYS.json", help="key set naming the log key (pin it)")
    lv.add_argument(
        "--state", metavar="STATE.json", help="the kept checkpoint: read, and updated on PASS"
    )
    lv.add_argument("--witness", action="append", metavar="VKEY", help="a trusted witness key")
    lv.add_argument("--witnesses", type=int, default=0, metavar="N", help="require N cosigners")
    lv.add_argument("--json", action="store_true")
    lv.set_defaults(func=cmd_log_verify)

    st = sub.add_parser("statements", help="raw custodian statements (auditor token)")
    ssub = st.add_subparsers(dest="statements_command", metavar="COMMAND", required=True)
    sf = ssub.add_parser("fetch", help="download a raw statement by its SHA-256")
    sf.add_argument("sha256", metavar="SHA256")
    _from(sf)
    sf.add_argument("--out", metavar="FILE", help="write here (never over a file); default stdout")
    sf.add_argument("--token-env", default=AUDITOR_TOKEN_ENV, metavar="VAR")
    sf.set_defaults(func=cmd_statements_fetch)

    co = sub.add_parser("cosign", help="auditor: verify, then co-sign an attestation")
    co.add_argument("sequence", nargs="?", type=int, help="default: the latest")
    _from(co)
    co.add_argument("--key", required=True, metavar="AUDITOR.key.pem")
    co.add_argument("--keys", metavar="KEYS.json", help="key set (pin it)")
    co.add_argument("--out", metavar="SIGNATURE.json", help="also write the signature envelope")
    co.add_argument("--no-submit", action="store_true", help="sign only (with --out)")
    co.add_argument("--token-env", default=AUDITOR_TOKEN_ENV, metavar="VAR")
    co.set_defaults(func=cmd_cosign)
