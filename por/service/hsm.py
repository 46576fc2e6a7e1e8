"""Signing keys inside an HSM, reached through PKCS#11 (python-pkcs11).

PKCS#11 is the interface every HSM and cloud HSM speaks; the tests run against SoftHSM2.
Two kinds of key live in the token:

- the issuer's Ed25519 key (`CKK_EC_EDWARDS`, signs with `CKM_EDDSA`): it signs DSSE
  envelopes and log checkpoints, as `Pkcs11Ed25519Signer` (a `por.core.dsse.Signer` and
  a `por.core.tlog.NoteSigner`);
- oracle attestor keys on secp256k1 (`CKK_EC`, `CKM_ECDSA` over the EIP-712 hash):
  `Pkcs11Secp256k1Attestor.sign_report` returns the 65-byte low-s r‖s‖v signature the
  ReserveOracle accepts (v is found by recovering the key's own address).

Private keys never leave the token (generated with CKA_SENSITIVE and without
CKA_EXTRACTABLE). Every failure is a SigningError that names the token and the
library; the PIN is never part of a message.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from por.core.dsse import keyid_for
from por.errors import SigningError

if TYPE_CHECKING:
    from por.oracle.report import OracleReport

T = TypeVar("T")

OID_ED25519 = "1.3.101.112"  # RFC 8410
OID_SECP256K1 = "1.3.132.0.10"  # SEC 2
_libs: dict[str, Any] = {}  # python-pkcs11 loads one library per process; keep it
_libs_lock = threading.Lock()


def _pkcs11() -> Any:
    try:
        import pkcs11
    except ImportError as e:  # pragma: no cover - the service extra installs it
        raise SigningError("HSM signing needs python-pkcs11 (pip install 'por[service]')") from e
    return pkcs11


def _der_octet_string(data: bytes, *, where: str) -> bytes:
    """The content of a DER OCTET STRING (how CKA_EC_POINT holds the point)."""
    if len(data) < 2 or data[0] != 0x04:
        raise SigningError("CKA_EC_POINT is not a DER OCTET STRING", where=where)
    n = data[1]
    if n < 0x80:
        body = data[2:]
    else:
        width = n & 0x7F
        n = int.from_bytes(data[2 : 2 + width], "big")
        body = data[2 + width :]
    if len(body) != n:
        raise SigningError("CKA_EC_POINT has a wrong length", where=where)
    return body


class HsmToken:
    """One token of one PKCS#11 library, logged in as the user; thread-safe.

    Opening it checks the library, the token label and the PIN at once, so a service
    refuses to start (or a run fails before anything is recorded) with a message naming
    the token. A session that dies (device removed, HSM restarted) is reopened once.
    """

    def __init__(self, *, module: Path, token_label: str, pin: str) -> None:
        self.module = Path(module)
        self.token_label = token_label
        self.where = f"PKCS#11 token {token_label!r} ({self.module})"
        self._pin = pin
        self._lock = threading.Lock()
        self._session: Any = None
        self._token: Any = None

    def __repr__(self) -> str:  # never the PIN
        return f"HsmToken({self.where})"

    def open(self) -> HsmToken:
        pkcs11 = _pkcs11()
        from pkcs11 import exceptions as x

        if not self.module.is_file():
            raise SigningError("the PKCS#11 library does not exist", where=str(self.module))
        key = str(self.module.resolve())
        try:
            with _libs_lock:
                lib = _libs.get(key)
                if lib is None:
                    lib = _libs[key] = pkcs11.lib(key)
            self._token = lib.get_token(token_label=self.token_label)
            self._session = self._token.open(user_pin=self._pin, rw=True)
        except x.NoSuchToken as e:
            raise SigningError("no such token in the HSM", where=self.where) from e
        except (x.PinIncorrect, x.PinInvalid, x.PinLenRange) as e:
            raise SigningError(
                "the PIN was refused (wrong PIN for this token)", where=self.where
            ) from e
        except x.PinLocked as e:
            raise SigningError("the token's user PIN is locked", where=self.where) from e
        except (x.PKCS11Error, OSError, RuntimeError) as e:
            raise SigningError(
                f"cannot open the token: {type(e).__name__} {e}".rstrip(), where=self.where
            ) from e
        return self

    def close(self) -> None:
        with self._lock:
            if self._session is not None:
                with contextlib.suppress(Exception):  # closing is best effort
                    self._session.close()
                self._session = None

    def _call(self, what: str, fn: Callable[[Any], T]) -> T:
        """`fn(session)` under the lock; a dead session is reopened once."""
        from pkcs11 import exceptions as x

        with self._lock:
            for attempt in (1, 2):
                if self._session is None:
                    try:
                        self._session = self._token.open(user_pin=self._pin, rw=True)
                    except x.PKCS11Error as e:
                        raise SigningError(
                            f"{what}: the token is unavailable ({type(e).__name__})",
                            where=self.where,
                        ) from e
                try:
                    return fn(self._session)
                except x.NoSuchKey as e:
                    raise SigningError(f"{what}: no such key in the token", where=self.where) from e
                except (x.SessionClosed, x.SessionHandleInvalid, x.DeviceRemoved) as e:
                    self._session = None
                    if attempt == 2:
                        raise SigningError(
                            f"{what}: the token went away ({type(e).__name__})", where=self.where
                        ) from e
                except (x.PKCS11Error, RuntimeError) as e:
                    raise SigningError(
                        f"{what} failed: {type(e).__name__} {e}".rstrip(), where=self.where
                    ) from e
        raise AssertionError("unreachable")  # pragma: no cover

    # --- keys ---------------------------------------------------------------------------

    def _public_point(self, label: str, *, oid: str) -> bytes:
        from pkcs11 import Attribute, ObjectClass
        from pkcs11.util.ec import encode_named_curve_parameters

        def read(session: Any) -> bytes:
            key = session.get_key(object_class=ObjectClass.PUBLIC_KEY, label=label)
            params = bytes(key[Attribute.EC_PARAMS])
            if params != encode_named_curve_parameters(oid):
                raise SigningError(
                    f"key {label!r} is not on the expected curve ({oid})", where=self.where
                )
            return bytes(key[Attribute.EC_POINT])

        point = self._call(f"reading public key {label!r}", read)
        return _der_octet_string(point, where=f"{self.where} key {label!r}")

    def ed25519_signer(self, label: str) -> Pkcs11Ed25519Signer:
        raw = self._public_point(label, oid=OID_ED25519)
        if len(raw) != 32:
            raise SigningError(f"key {label!r} is not a 32-byte Ed25519 key", where=self.where)
        return Pkcs11Ed25519Signer(token=self, label=label, public_key_raw=raw)

    def secp256k1_attestor(self, label: str) -> Pkcs11Secp256k1Attestor:
        point = self._public_point(label, oid=OID_SECP256K1)
        if len(point) != 65 or point[0] != 0x04:
            raise SigningError(
                f"key {label!r} is not an uncompressed secp256k1 point", where=self.where
            )
        from eth_utils.address import to_checksum_address
        from eth_utils.crypto import keccak

        address = to_checksum_address(keccak(point[1:])[-20:])
        return Pkcs11Secp256k1Attestor(token=self, label=label, address=address)

    def _generate(self, label: str, *, oid: str, edwards: bool) -> None:
        from pkcs11 import Attribute, KeyType, Mechanism
        from pkcs11.util.ec import encode_named_curve_parameters

        def gen(session: Any) -> None:
            existing = list(session.get_objects({Attribute.LABEL: label}))
            if existing:
                raise SigningError(
                    f"a key labelled {label!r} already exists; refusing to add another",
                    where=self.where,
                )
            session.generate_keypair(
                KeyType.EC_EDWARDS if edwards else KeyType.EC,
                mechanism=Mechanism.EC_EDWARDS_KEY_PAIR_GEN
                if edwards
                else Mechanism.EC_KEY_PAIR_GEN,
                store=True,
                label=label,
                public_template={Attribute.EC_PARAMS: encode_named_curve_parameters(oid)},
                private_template={Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False},
            )

        self._call(f"generating key {label!r}", gen)

    def generate_ed25519(self, label: str) -> Pkcs11Ed25519Signer:
        """A new Ed25519 key pair in the token (never extractable); its signer."""
        self._generate(label, oid=OID_ED25519, edwards=True)
        return self.ed25519_signer(label)

    def generate_secp256k1(self, label: str) -> Pkcs11Secp256k1Attestor:
        self._generate(label, oid=OID_SECP256K1, edwards=False)
        return self.secp256k1_attestor(label)

    def sign(self, label: str, data: bytes, *, eddsa: bool) -> bytes:
        from pkcs11 import Mechanism, ObjectClass

        def sign(session: Any) -> bytes:
            key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label)
            return bytes(key.sign(data, mechanism=Mechanism.EDDSA if eddsa else Mechanism.ECDSA))

        return self._call(f"signing with key {label!r}", sign)


@dataclass(frozen=True, slots=True, kw_only=True)
class Pkcs11Ed25519Signer:
    """The issuer's Ed25519 key in an HSM: a `Signer` for envelopes and checkpoints."""

    token: HsmToken
    label: str
    public_key_raw: bytes

    @property
    def keyid(self) -> str:
        return keyid_for(self.public_key_raw)

    def sign(self, message: bytes) -> bytes:
        sig = self.token.sign(self.label, message, eddsa=True)
        if len(sig) != 64:
            raise SigningError(
                f"key {self.label!r} returned a {len(sig)}-byte signature, not 64",
                where=self.token.where,
            )
        return sig

    def __repr__(self) -> str:
        return f"Pkcs11Ed25519Signer({self.label!r}, keyid={self.keyid[:16]}…)"


@dataclass(frozen=True, slots=True, kw_only=True)
class Pkcs11Secp256k1Attestor:
    """An oracle attestor key in an HSM: signs EIP-712 reports (por.oracle.report)."""

    token: HsmToken
    label: str
    address: str  # checksum address of the key

    def sign_report(self, report: OracleReport, *, chain_id: int, contract: str) -> bytes:
        """The 65-byte low-s r‖s‖v signature of the report's EIP-712 hash."""
        from eth_keys import keys  # type: ignore[attr-defined]

        from por.oracle.report import HALF_N, SECP256K1_N, report_hash

        digest = report_hash(report, chain_id=chain_id, contract=contract)
        rs = self.token.sign(self.label, digest, eddsa=False)
        if len(rs) != 64:
            raise SigningError(
                f"key {self.label!r} returned a {len(rs)}-byte ECDSA signature, not r‖s",
                where=self.token.where,
            )
        r, s = int.from_bytes(rs[:32], "big"), int.from_bytes(rs[32:], "big")
        if s > HALF_N:  # EIP-2: the oracle accepts only low-s
            s = SECP256K1_N - s
        for v in (0, 1):
            pub = keys.Signature(vrs=(v, r, s)).recover_public_key_from_msg_hash(digest)
            if pub.to_checksum_address() == self.address:
                return r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([27 + v])
        raise SigningError(
            f"the signature by key {self.label!r} does not recover its address",
            where=self.token.where,
        )

    def __repr__(self) -> str:
        return f"Pkcs11Secp256k1Attestor({self.label!r}, {self.address})"
