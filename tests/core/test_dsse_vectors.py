"""Every file in tests/vectors/dsse and tests/vectors/canonical, run through por's code."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from por.core.canonical import canonical_bytes, loads_strict
from por.core.dsse import Envelope, KeySet, pae, verify_envelope
from por.core.times import parse_time
from por.errors import FormatError, PorError, SignatureError

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
DSSE = sorted((VECTORS / "dsse").glob("*.json"))
CANONICAL = sorted((VECTORS / "canonical").glob("*.json"))
ERRORS: dict[str, type[PorError]] = {"SignatureError": SignatureError, "FormatError": FormatError}


def test_vector_sets_are_there() -> None:
    names = {p.stem for p in DSSE}
    for required in (
        "pae_spec_example",
        "valid_one_signature",
        "valid_two_signatures_threshold_2",
        "payload_bit_flip",
        "payload_type_changed",
        "sig_bit_flip",
        "unknown_keyid",
        "duplicate_signature_counted_once",
        "expired_key",
        "not_yet_valid_key",
        "wrong_role",
    ):
        assert required in names
    assert {p.stem for p in CANONICAL} >= {"amounts_as_strings", "float_refused", "key_order"}


@pytest.mark.parametrize("path", DSSE, ids=[p.stem for p in DSSE])
def test_dsse_vector(path: Path) -> None:
    v = json.loads(path.read_text())
    if v["kind"] == "pae":
        got = pae(v["payload_type"], base64.b64decode(v["payload"]))
        assert got == base64.b64decode(v["pae"])
        assert got.decode() == v["pae_text"]
        return

    def run() -> bytes:
        keys = KeySet.from_dict(v["keys"], where=path.name)
        if v["kind"] == "keyset":
            return b""
        env = Envelope.from_dict(v["envelope"], where=path.name, exact=v["mode"] == "exact")
        return verify_envelope(
            env,
            keys,
            at=parse_time(v["at"], where="at"),
            threshold=v["threshold"],
            roles=frozenset(v["roles"]),
            payload_type=v["payload_type"],
        ).payload

    if v["want_err"] is None:
        payload = run()
        if v["kind"] == "envelope":
            text = v["envelope"]["payload"]
            assert payload == base64.urlsafe_b64decode(
                text.replace("+", "-").replace("/", "_") + "=" * (-len(text) % 4)
            )
    else:
        with pytest.raises(ERRORS[v["want_err"]]):
            run()


@pytest.mark.parametrize("path", CANONICAL, ids=[p.stem for p in CANONICAL])
def test_canonical_vector(path: Path) -> None:
    v = json.loads(path.read_text())
    if v["want_err"] is None:
        once = canonical_bytes(loads_strict(v["input"]))
        assert once == v["canonical"].encode("utf-8")
        assert canonical_bytes(loads_strict(once)) == once  # a fixed point
    else:
        with pytest.raises(ERRORS[v["want_err"]]):
            canonical_bytes(loads_strict(v["input"]))


def test_float_refused_even_from_python() -> None:
    with pytest.raises(FormatError, match="floats"):
        canonical_bytes({"amount": 1.5})
