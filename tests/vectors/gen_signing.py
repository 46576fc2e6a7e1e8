"""Generate the signing, canonical-JSON and log test vectors (deterministic).

    python tests/vectors/gen_signing.py [--out-root DIR]

writes DIR/dsse/*.json, DIR/canonical/*.json and DIR/tlog/*.json (DIR defaults to
tests/vectors). Every file is one case: {"desc", "want_err", ...}; want_err is null for a
case that must verify, else the name of the por.errors class a verifier must raise.
Keys come from fixed seeds and Ed25519 signing is deterministic (RFC 8032), so the same
code gives the same bytes; tests/test_vectors_fresh.py regenerates and diffs them.

Valid cases are built with por's own signer; the mutations are made here by hand so
that they are what they claim to be (a flipped bit, a changed type...), and named like
transparency-dev/merkle's proofgen cases.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from por.core.attestation import PAYLOAD_TYPE
from por.core.canonical import canonical_bytes
from por.core.dsse import (
    Ed25519Signer,
    Envelope,
    KeyEntry,
    KeySet,
    Signature,
    pae,
    sign_envelope,
)
from por.core.note import (
    ALG_COSIGNATURE_V1,
    SignatureLine,
    VerifierKey,
    cosign,
    ed25519_signature_line,
)
from por.core.tlog import (
    Checkpoint,
    LogTree,
    encode_verifier_key,
    leaf_hash,
    note_key_hash,
    sign_checkpoint,
)

AREAS = ("dsse", "canonical", "tlog")


def seed(label: str) -> bytes:
    return hashlib.sha256(f"por test vector seed: {label}".encode()).digest()


def t(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def flip_bit(data: bytes, byte_index: int, bit: int = 0) -> bytes:
    out = bytearray(data)
    out[byte_index] ^= 1 << bit
    return bytes(out)


# --- dsse ------------------------------------------------------------------------------


def dsse_cases() -> dict[str, dict[str, Any]]:
    issuer1 = Ed25519Signer(seed("issuer-1"))
    issuer2 = Ed25519Signer(seed("issuer-2"))
    auditor = Ed25519Signer(seed("auditor-1"))
    expired = Ed25519Signer(seed("issuer-expired"))
    future = Ed25519Signer(seed("issuer-not-yet-valid"))
    outsider = Ed25519Signer(seed("outsider"))

    keys = KeySet(
        keys=(
            KeyEntry.for_public_key(
                issuer1.public_key_raw,
                role="issuer",
                not_before=t("2026-01-01T00:00:00Z"),
                not_after=None,
            ),
            KeyEntry.for_public_key(issuer2.public_key_raw, role="issuer"),
            KeyEntry.for_public_key(auditor.public_key_raw, role="auditor"),
            KeyEntry.for_public_key(
                expired.public_key_raw,
                role="issuer",
                not_before=t("2025-01-01T00:00:00Z"),
                not_after=t("2026-06-30T23:59:59Z"),
            ),
            KeyEntry.for_public_key(
                future.public_key_raw, role="issuer", not_before=t("2027-01-01T00:00:00Z")
            ),
        )
    ).to_dict()
    at = "2026-11-25T03:00:05Z"
    payload = canonical_bytes(
        {
            "format": "por-test-payload",
            "issued_at": at,
            "note": "amounts are strings",
            "total": "1000000",
        }
    )

    def case(
        desc: str,
        want_err: str | None,
        env: Envelope | dict[str, Any],
        *,
        threshold: int = 1,
        roles: tuple[str, ...] = ("issuer",),
        at_: str = at,
        mode: str = "consumer",
    ) -> dict[str, Any]:
        # mode "consumer": read by DSSE's parsing rules (either base64 alphabet, padding
        # optional, unknown fields ignored, keyid optional); mode "exact": the log's exact
        # form of the issuer's envelope (canonical standard base64, exactly por's fields).
        return {
            "desc": desc,
            "want_err": want_err,
            "kind": "envelope",
            "mode": mode,
            "keys": keys,
            "envelope": env if isinstance(env, dict) else env.to_dict(),
            "at": at_,
            "threshold": threshold,
            "roles": list(roles),
            "payload_type": PAYLOAD_TYPE,
        }

    one = sign_envelope(payload, PAYLOAD_TYPE, [issuer1])
    two = sign_envelope(payload, PAYLOAD_TYPE, [issuer1, issuer2])
    cosigned = sign_envelope(payload, PAYLOAD_TYPE, [issuer1, auditor])
    sig1 = one.signatures[0]
    urlsafe = {
        "payload": base64.urlsafe_b64encode(payload).decode().rstrip("="),
        "payloadType": PAYLOAD_TYPE,
        "signatures": [
            {
                "keyid": sig1.keyid,
                "sig": base64.urlsafe_b64encode(sig1.sig).decode().rstrip("="),
            }
        ],
    }

    def with_sigs(
        *sigs: Signature, payload_: bytes = payload, type_: str = PAYLOAD_TYPE
    ) -> Envelope:
        return Envelope(payload=payload_, payload_type=type_, signatures=sigs)

    cases: dict[str, dict[str, Any]] = {
        "pae_spec_example": {
            "desc": "DSSE spec PAE example: type http://example.com/HelloWorld, body 'hello world'",
            "want_err": None,
            "kind": "pae",
            "payload_type": "http://example.com/HelloWorld",
            "payload": b64(b"hello world"),
            "pae": b64(pae("http://example.com/HelloWorld", b"hello world")),
            "pae_text": pae("http://example.com/HelloWorld", b"hello world").decode(),
        },
        "pae_multibyte_type": {
            "desc": "PAE lengths count bytes, not characters (type with a 2-byte character)",
            "want_err": None,
            "kind": "pae",
            "payload_type": "application/x-\u00e9",
            "payload": b64(b"{}"),
            "pae": b64(pae("application/x-\u00e9", b"{}")),
            "pae_text": pae("application/x-\u00e9", b"{}").decode(),
        },
        "valid_one_signature": case("one issuer signature, threshold 1", None, one),
        "valid_two_signatures_threshold_2": case(
            "two distinct issuer keys, threshold 2", None, two, threshold=2
        ),
        "valid_issuer_and_auditor_cosign": case(
            "issuer and auditor co-signature, threshold 2 over both roles",
            None,
            cosigned,
            threshold=2,
            roles=("auditor", "issuer"),
        ),
        "valid_expired_key_judged_at_signing_time": case(
            "a key that expired later still verifies what it signed while valid",
            None,
            sign_envelope(payload, PAYLOAD_TYPE, [expired]),
            at_="2026-06-01T00:00:00Z",
        ),
        "payload_bit_flip": case(
            "payload with one bit flipped",
            "SignatureError",
            with_sigs(sig1, payload_=flip_bit(payload, 10)),
        ),
        "payload_type_changed": case(
            "payloadType changed to application/json (signature over the old PAE)",
            "SignatureError",
            with_sigs(sig1, type_="application/json"),
        ),
        "payload_type_changed_and_resigned": {
            **case(
                "signed correctly but under another payloadType than the verifier expects",
                "SignatureError",
                sign_envelope(payload, "application/json", [issuer1]),
            ),
        },
        "sig_bit_flip": case(
            "signature with one bit flipped",
            "SignatureError",
            with_sigs(Signature(keyid=sig1.keyid, sig=flip_bit(sig1.sig, 5))),
        ),
        "sig_truncated": case(
            "signature one byte short",
            "SignatureError",
            with_sigs(Signature(keyid=sig1.keyid, sig=sig1.sig[:-1])),
        ),
        "unknown_keyid": case(
            "signed by a key that is not in the key set",
            "SignatureError",
            sign_envelope(payload, PAYLOAD_TYPE, [outsider]),
        ),
        "keyid_swapped_to_trusted_key": case(
            "outsider's signature labelled with a trusted keyid",
            "SignatureError",
            with_sigs(
                Signature(keyid=issuer1.keyid, sig=outsider.sign(pae(PAYLOAD_TYPE, payload)))
            ),
        ),
        "duplicate_signature_counted_once": case(
            "the same key's signature twice does not meet threshold 2",
            "SignatureError",
            with_sigs(sig1, sig1),
            threshold=2,
        ),
        "expired_key": case(
            "key's not_after is before the signing time",
            "SignatureError",
            sign_envelope(payload, PAYLOAD_TYPE, [expired]),
        ),
        "not_yet_valid_key": case(
            "key's not_before is after the signing time",
            "SignatureError",
            sign_envelope(payload, PAYLOAD_TYPE, [future]),
        ),
        "wrong_role": case(
            "auditor key alone where an issuer signature is required",
            "SignatureError",
            sign_envelope(payload, PAYLOAD_TYPE, [auditor]),
        ),
        "no_signatures": case("envelope without signatures", "SignatureError", with_sigs()),
        "exact_payload_not_canonical_base64": case(
            "log form: payload 'YR==' decodes to 'a' but is not canonical base64 ('YQ==')",
            "FormatError",
            {**one.to_dict(), "payload": "YR=="},
            mode="exact",
        ),
        "exact_payload_missing_padding": case(
            "log form: payload base64 without its '=' padding",
            "FormatError",
            {**one.to_dict(), "payload": "YQ"},
            mode="exact",
        ),
        "exact_urlsafe_alphabet": case(
            "log form: payload and signature in the URL-safe alphabet are refused",
            "FormatError",
            urlsafe,
            mode="exact",
        ),
        "exact_unknown_field": case(
            "log form: an extra top-level field is refused",
            "FormatError",
            {**one.to_dict(), "extra": 1},
            mode="exact",
        ),
        "exact_keyid_missing": case(
            "log form: a signature without keyid is refused",
            "FormatError",
            {**one.to_dict(), "signatures": [{"sig": b64(sig1.sig)}]},
            mode="exact",
        ),
        "valid_exact_form": case(
            "log form: the envelope exactly as por writes it", None, one, mode="exact"
        ),
        "valid_urlsafe_unpadded": case(
            "DSSE consumer: payload and signature in URL-safe base64 without padding",
            None,
            urlsafe,
        ),
        "valid_unknown_fields_ignored": case(
            "DSSE consumer: unknown fields at the top and in a signature are ignored",
            None,
            {
                **one.to_dict(),
                "extra": 1,
                "signatures": [{**sig1.to_dict(), "cert": "ignored"}],
            },
        ),
        "valid_keyid_missing": case(
            "DSSE consumer: keyid is optional; the key set's keys are tried",
            None,
            {**one.to_dict(), "signatures": [{"sig": b64(sig1.sig)}]},
        ),
        "valid_keyid_empty": case(
            "DSSE consumer: an empty keyid is the same as none",
            None,
            with_sigs(Signature(keyid="", sig=sig1.sig)),
        ),
        "valid_keyid_other_scheme": case(
            "DSSE consumer: a keyid in another tool's scheme is only a hint; keys are tried",
            None,
            with_sigs(Signature(keyid="SHA256:not-our-scheme", sig=sig1.sig)),
        ),
        "auditor_cosign_without_keyid": case(
            "DSSE consumer: an auditor signature without keyid counts for the auditor role",
            None,
            {
                **cosigned.to_dict(),
                "signatures": [
                    cosigned.signatures[0].to_dict(),
                    {"sig": b64(cosigned.signatures[1].sig)},
                ],
            },
            threshold=2,
            roles=("auditor", "issuer"),
        ),
        "mixed_base64_alphabets": case(
            "DSSE consumer: one string mixing the standard and URL-safe alphabets",
            "FormatError",
            {**one.to_dict(), "signatures": [{"keyid": "", "sig": "+_" + b64(sig1.sig)[2:]}]},
        ),
    }
    bad_keys = json.loads(json.dumps(keys))
    bad_keys["keys"][0]["keyid"] = hashlib.sha256(b"not the key").hexdigest()
    cases["keyset_keyid_mismatch"] = {
        "desc": "key set whose keyid is not SHA-256 of the public key",
        "want_err": "FormatError",
        "kind": "keyset",
        "keys": bad_keys,
    }
    dup = json.loads(json.dumps(keys))
    dup["keys"].append(dup["keys"][0])
    cases["keyset_duplicate_key"] = {
        "desc": "key set naming one key twice",
        "want_err": "FormatError",
        "kind": "keyset",
        "keys": dup,
    }
    unk = json.loads(json.dumps(keys))
    unk["keys"][0]["role"] = "operator"
    cases["keyset_unknown_role"] = {
        "desc": "key set with an unknown role",
        "want_err": "FormatError",
        "kind": "keyset",
        "keys": unk,
    }
    alg = json.loads(json.dumps(keys))
    alg["keys"][0]["alg"] = "ecdsa-p256"
    cases["keyset_unknown_alg"] = {
        "desc": "key set with an unknown alg",
        "want_err": "FormatError",
        "kind": "keyset",
        "keys": alg,
    }
    cases["keyset_valid"] = {
        "desc": "the key set used by the envelope cases",
        "want_err": None,
        "kind": "keyset",
        "keys": keys,
    }
    return cases


# --- canonical -------------------------------------------------------------------------


def canonical_cases() -> dict[str, dict[str, Any]]:
    def ok(desc: str, text: str, want: str) -> dict[str, Any]:
        return {"desc": desc, "want_err": None, "input": text, "canonical": want}

    def bad(desc: str, text: str) -> dict[str, Any]:
        return {"desc": desc, "want_err": "FormatError", "input": text, "canonical": None}

    return {
        "key_order": ok(
            "keys sorted by UTF-16 code units, whitespace removed",
            '{ "b": 1, "a": [ true, null, false ], "A": {} }',
            '{"A":{},"a":[true,null,false],"b":1}',
        ),
        "key_order_utf16": ok(
            "RFC 8785 §3.2.3: sort by UTF-16 code units (U+E000 sorts after U+1F600)",
            '{"\\ue000": 1, "\\ud83d\\ude00": 2, "z": 3}',
            '{"z":3,"\U0001f600":2,"\ue000":1}',
        ),
        "amounts_as_strings": ok(
            "amounts travel as decimal strings, so 2^127-1 survives unchanged",
            '{"balance": "170141183460469231731687303715884105727", "decimals": 6}',
            '{"balance":"170141183460469231731687303715884105727","decimals":6}',
        ),
        "unicode_escapes": ok(
            "non-ASCII written as UTF-8, control characters escaped, '/' not escaped",
            '{"name": "\\u4eba\\u6c11\\u5e01 CNH/HKD", "ctl": "a\\u0001b\\n"}',
            '{"ctl":"a\\u0001b\\n","name":"\u4eba\u6c11\u5e01 CNH/HKD"}',
        ),
        "nested": ok(
            "nested objects and arrays keep array order",
            '{"z": [{"y": 1, "x": 2}, []], "a": {"c": {"e": "", "d": 0}}}',
            '{"a":{"c":{"d":0,"e":""}},"z":[{"x":2,"y":1},[]]}',
        ),
        "float_refused": bad(
            "a JSON float is refused: money must never be a double", '{"amount": 1.5}'
        ),
        "exponent_refused": bad("an exponent number is a float too", '{"amount": 1e6}'),
        "big_integer_refused": bad(
            "an integer beyond 2^53 cannot be exact in RFC 8785", '{"amount": 9007199254740993}'
        ),
        "duplicate_key_refused": bad("duplicate keys are refused", '{"a": 1, "a": 2}'),
        "nan_refused": bad("NaN is not JSON", '{"a": NaN}'),
        "lone_surrogate_key_refused": bad(
            "an object key holding a lone UTF-16 surrogate has no UTF-8 form",
            '{"\\ud83d": 1}',
        ),
        "lone_surrogate_value_refused": bad(
            "a string value holding a lone UTF-16 surrogate has no UTF-8 form",
            '{"a": "x\\udc00"}',
        ),
    }


# --- tlog ------------------------------------------------------------------------------


def tlog_cases() -> dict[str, dict[str, Any]]:
    leaves = [leaf_hash(f"por test leaf {i}".encode()) for i in range(21)]
    tree = LogTree(leaves)
    cases: dict[str, dict[str, Any]] = {}

    def incl(
        name: str,
        desc: str,
        want_err: str | None,
        *,
        index: int,
        size: int,
        leaf: bytes,
        proof: list[bytes],
        root: bytes,
    ) -> None:
        cases[name] = {
            "desc": desc,
            "want_err": want_err,
            "kind": "inclusion",
            "index": index,
            "size": size,
            "leaf_hash": leaf.hex(),
            "proof": [p.hex() for p in proof],
            "root": root.hex(),
        }

    def cons(
        name: str,
        desc: str,
        want_err: str | None,
        *,
        old_size: int,
        new_size: int,
        old_root: bytes,
        new_root: bytes,
        proof: list[bytes],
    ) -> None:
        cases[name] = {
            "desc": desc,
            "want_err": want_err,
            "kind": "consistency",
            "old_size": old_size,
            "new_size": new_size,
            "old_root": old_root.hex(),
            "new_root": new_root.hex(),
            "proof": [p.hex() for p in proof],
        }

    for index, size in ((6, 13), (0, 1), (12, 13), (16, 21)):
        base = f"inclusion_{index}_of_{size}"
        proof = tree.inclusion_proof(index, size)
        root = tree.root(size)
        leaf = tree.leaf(index)
        incl(
            base,
            f"valid inclusion proof of leaf {index} in a tree of {size}",
            None,
            index=index,
            size=size,
            leaf=leaf,
            proof=proof,
            root=root,
        )
        muts: dict[str, tuple[str, dict[str, Any]]] = {
            "index_plus_1": ("leaf index plus 1", {"index": index + 1}),
            "size_times_2": ("tree size times 2", {"size": size * 2}),
            "size_div_2": ("tree size div 2", {"size": size // 2}),
            "wrong_leaf": ("another leaf's hash", {"leaf": flip_bit(leaf, 0)}),
            "wrong_root": ("root with one bit flipped", {"root": flip_bit(root, 31)}),
            "trailing_garbage": ("proof extended by one hash", {"proof": [*proof, bytes(32)]}),
            "empty_root": ("the empty tree's root", {"root": hashlib.sha256(b"").digest()}),
        }
        if index > 0:
            muts["index_minus_1"] = ("leaf index minus 1", {"index": index - 1})
        if proof:
            muts["truncated"] = ("proof missing its last hash", {"proof": proof[:-1]})
            for i in range(len(proof)):
                p = list(proof)
                p[i] = flip_bit(p[i], i % 32)
                muts[f"bit_flip_proof_{i}"] = (f"bit flip in proof[{i}]", {"proof": p})
        if len(proof) >= 2:
            muts["swapped_0_1"] = (
                "proof[0] and proof[1] swapped",
                {"proof": [proof[1], proof[0], *proof[2:]]},
            )
        for suffix, (what, change) in muts.items():
            args: dict[str, Any] = {
                "index": index,
                "size": size,
                "leaf": leaf,
                "proof": proof,
                "root": root,
                **change,
            }
            incl(
                f"{base}_{suffix}",
                f"inclusion of leaf {index} in {size}: {what}",
                "ProofError",
                **args,
            )

    for old, new in ((7, 21), (8, 21), (1, 2), (20, 21), (13, 16)):
        base = f"consistency_{old}_to_{new}"
        proof = tree.consistency_proof(old, new)
        o, n = tree.root(old), tree.root(new)
        cons(
            base,
            f"valid consistency proof from size {old} to {new}",
            None,
            old_size=old,
            new_size=new,
            old_root=o,
            new_root=n,
            proof=proof,
        )
        muts = {
            "old_root_flipped": ("old root with a bit flipped", {"old_root": flip_bit(o, 0)}),
            "new_root_flipped": ("new root with a bit flipped", {"new_root": flip_bit(n, 0)}),
            "old_size_plus_1": ("old size plus 1", {"old_size": old + 1}),
            "new_size_times_2": ("new size times 2", {"new_size": new * 2}),
            "sizes_swapped": ("old and new sizes swapped", {"old_size": new, "new_size": old}),
            "trailing_garbage": ("proof extended by one hash", {"proof": [*proof, bytes(32)]}),
            "truncated": ("proof missing its last hash", {"proof": proof[:-1]}),
            "empty_proof": ("empty proof", {"proof": []}),
        }
        if old > 1:
            muts["old_size_minus_1"] = ("old size minus 1", {"old_size": old - 1})
        for i in range(len(proof)):
            p = list(proof)
            p[i] = flip_bit(p[i], 7)
            muts[f"bit_flip_proof_{i}"] = (f"bit flip in proof[{i}]", {"proof": p})
        for suffix, (what, change) in muts.items():
            args = {
                "old_size": old,
                "new_size": new,
                "old_root": o,
                "new_root": n,
                "proof": proof,
                **change,
            }
            cons(f"{base}_{suffix}", f"consistency {old} -> {new}: {what}", "ProofError", **args)
    cons(
        "consistency_0_to_21",
        "from the empty tree: empty proof, empty root",
        None,
        old_size=0,
        new_size=21,
        old_root=hashlib.sha256(b"").digest(),
        new_root=tree.root(21),
        proof=[],
    )
    cons(
        "consistency_21_to_21",
        "same size, same root: empty proof",
        None,
        old_size=21,
        new_size=21,
        old_root=tree.root(21),
        new_root=tree.root(21),
        proof=[],
    )
    cons(
        "consistency_21_to_21_other_root",
        "same size, different roots",
        "ProofError",
        old_size=21,
        new_size=21,
        old_root=tree.root(21),
        new_root=tree.root(20),
        proof=[],
    )

    # Checkpoints (C2SP tlog-checkpoint in a C2SP signed-note).
    log_key = Ed25519Signer(seed("log-key"))
    witness = Ed25519Signer(seed("witness-key"))
    name = "example.com/por-log"
    cp = Checkpoint(origin="example.com/por-log", size=21, root_hash=tree.root(21))
    note = sign_checkpoint(cp, key_name=name, signer=log_key)
    wsig = base64.b64encode(
        note_key_hash("witness.example", witness.public_key_raw) + witness.sign(cp.body().encode())
    ).decode()
    with_witness = note + f"\u2014 witness.example {wsig}\n"
    body, sigs = note.split("\n\n")

    cosigner = VerifierKey(
        name="witness.example/w1", alg=ALG_COSIGNATURE_V1, public_key=witness.public_key_raw
    )
    cosig = cosign(cp.body(), name=cosigner.name, signer=witness, timestamp=1767225600)

    def cp_case(
        case: str,
        desc: str,
        want_err: str | None,
        text: str,
        *,
        witnesses: tuple[VerifierKey, ...] = (),
        required_witnesses: int = 0,
    ) -> None:
        # Verify with the log's vkey, expecting `origin`; cosignatures of `witnesses`
        # must verify, and at least `required_witnesses` of them must be there.
        cases[case] = {
            "desc": desc,
            "want_err": want_err,
            "kind": "checkpoint",
            "note": text,
            "verifier_key": encode_verifier_key(name, log_key.public_key_raw),
            "origin": cp.origin,
            "witnesses": [w.encode() for w in witnesses],
            "required_witnesses": required_witnesses,
            "size": 21,
            "root": tree.root(21).hex(),
        }

    def signed_body(text: str) -> str:
        return f"{text}\n{ed25519_signature_line(text, name=name, signer=log_key).line()}"

    root_b64 = base64.b64encode(tree.root(21)).decode()
    cp_case(
        "checkpoint_other_origin",
        "a checkpoint for another log, signed by the right key, is refused",
        "SignatureError",
        signed_body(f"example.org/other-log\n21\n{root_b64}\n"),
    )
    cp_case(
        "checkpoint_bom_before_origin",
        "a byte order mark before the origin line, signed, is refused",
        "FormatError",
        signed_body(f"\ufeff{cp.origin}\n21\n{root_b64}\n"),
    )
    cp_case(
        "checkpoint_size_leading_zero",
        "tree size '021' (not canonical), signed, is refused",
        "FormatError",
        signed_body(f"{cp.origin}\n021\n{root_b64}\n"),
    )
    cp_case(
        "checkpoint_size_plus_sign",
        "tree size '+21', signed, is refused",
        "FormatError",
        signed_body(f"{cp.origin}\n+21\n{root_b64}\n"),
    )
    cp_case(
        "checkpoint_size_2_63",
        "tree size 2^63 (beyond a signed 64-bit size), signed, is refused",
        "FormatError",
        signed_body(f"{cp.origin}\n{2**63}\n{root_b64}\n"),
    )
    cp_case(
        "checkpoint_size_2_64",
        "tree size 2^64 (beyond any 64-bit size), signed, is refused",
        "FormatError",
        signed_body(f"{cp.origin}\n{2**64}\n{root_b64}\n"),
    )
    cp_case(
        "checkpoint_witness_cosigned",
        "a tlog-cosignature/v1 by a known witness, one required",
        None,
        note + cosig.line(),
        witnesses=(cosigner,),
        required_witnesses=1,
    )
    cp_case(
        "checkpoint_witness_required_missing",
        "one witness cosignature required, none present",
        "SignatureError",
        note,
        witnesses=(cosigner,),
        required_witnesses=1,
    )
    forged = SignatureLine(
        name=cosig.name, key_id=cosig.key_id, signature=cosig.signature[:8] + bytes(64)
    )
    cp_case(
        "checkpoint_witness_cosignature_forged",
        "a known witness's cosignature line whose signature is forged",
        "SignatureError",
        note + forged.line(),
        witnesses=(cosigner,),
    )
    restamped = SignatureLine(
        name=cosig.name,
        key_id=cosig.key_id,
        signature=(1767225601).to_bytes(8, "big") + cosig.signature[8:],
    )
    cp_case(
        "checkpoint_witness_timestamp_changed",
        "a cosignature whose timestamp was changed after signing (the time is signed)",
        "SignatureError",
        note + restamped.line(),
        witnesses=(cosigner,),
    )
    cp_case(
        "checkpoint_witness_signed_other_size",
        "a witness cosignature made on another checkpoint does not count",
        "SignatureError",
        note
        + cosign(
            Checkpoint(origin=cp.origin, size=20, root_hash=tree.root(20)).body(),
            name=cosigner.name,
            signer=witness,
            timestamp=1767225600,
        ).line(),
        witnesses=(cosigner,),
    )

    cp_case("checkpoint_valid", "signed checkpoint for size 21", None, note)
    cp_case(
        "checkpoint_with_witness_cosignature",
        "a witness's signature line is ignored, the log's still verifies",
        None,
        with_witness,
    )
    cp_case(
        "checkpoint_size_changed",
        "tree size changed after signing",
        "SignatureError",
        note.replace("\n21\n", "\n22\n", 1),
    )
    cp_case(
        "checkpoint_origin_changed",
        "origin changed after signing",
        "SignatureError",
        note.replace("example.com/por-log\n", "example.org/por-log\n", 1),
    )
    cp_case(
        "checkpoint_only_witness",
        "only a witness signature: the log's is missing",
        "SignatureError",
        body + "\n\n" + f"\u2014 witness.example {wsig}\n",
    )
    cp_case(
        "checkpoint_no_blank_line",
        "no blank line before the signatures",
        "FormatError",
        body + "\n" + sigs,
    )
    cp_case(
        "checkpoint_hyphen_not_em_dash",
        "signature line opened by '-' instead of an em dash",
        "FormatError",
        note.replace("\u2014 ", "- "),
    )
    cp_case(
        "checkpoint_extension_line",
        "an extension line is part of the signed body",
        None,
        sign_checkpoint(
            Checkpoint(
                origin=cp.origin, size=21, root_hash=tree.root(21), extensions=("por-sequence 21",)
            ),
            key_name=name,
            signer=log_key,
        ),
    )
    return cases


def write_area(out_root: Path, area: str, cases: dict[str, dict[str, Any]]) -> int:
    out = out_root / area
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.json"):  # this generator owns the area: drop stale cases
        old.unlink()
    for case_name, body in sorted(cases.items()):
        text = json.dumps(body, indent=2, ensure_ascii=True) + "\n"
        (out / f"{case_name}.json").write_text(text, encoding="ascii")
    return len(cases)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-root", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args(argv)
    makers: dict[str, Callable[[], dict[str, dict[str, Any]]]] = {
        "dsse": dsse_cases,
        "canonical": canonical_cases,
        "tlog": tlog_cases,
    }
    for area in AREAS:
        n = write_area(args.out_root, area, makers[area]())
        print(f"{args.out_root / area}: {n} cases")
    return 0


if __name__ == "__main__":
    sys.exit(main())
