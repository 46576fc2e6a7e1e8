"""Stored attestations spread over days, for the reserve report's tests.

`record_at` records the world's next attestation with the as_of (and issued_at 30 s
later) it is given: real sum tree, real signature, real log — only the dates moved.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from por.core.attestation import PAYLOAD_TYPE, Attestation
from por.core.dsse import sign_envelope
from tests.store.factory import ISSUER, ORIGIN, World, sign_cp


def record_at(store: Any, world: World, as_of: datetime, **kw: Any) -> Attestation:
    built = world.next(**kw)
    att = replace(built.attestation, as_of=as_of, issued_at=as_of + timedelta(seconds=30))
    envelope = sign_envelope(att.to_bytes(), PAYLOAD_TYPE, [ISSUER])
    store.record(
        attestation=att,
        envelope=envelope,
        tree=built.tree,
        round_secret=built.round_secret,
        sign_checkpoint=sign_cp,
        origin=ORIGIN,
    )
    world.last = att
    return att
