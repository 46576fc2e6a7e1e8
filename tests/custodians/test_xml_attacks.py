"""XML attacks on the camt parser: real attack files, rejected with UnsafeXmlError.

Timing and memory figures are measured by bench/xml_attacks.py, not asserted here.
"""

from __future__ import annotations

import pytest

from por.custodians.camt import parse_camt
from por.custodians.model import UnsafeXmlError
from tests.custodians.conftest import sample


# Billion laughs: ten nested entities, each ten copies of the one below:
#   lol9 -> 10 x lol8 -> ... -> 10^9 x "lol"  = 3 GB from a 1 kB file.
# Quadratic blowup: one 20 kB entity referenced 20,000 times = 400 MB of text,
#   no nesting (slips past parsers that only limit entity depth).
# External entity (XXE): <!ENTITY acct SYSTEM "file:///etc/passwd"> would paste a local
#   file into <Stmt/Id>, and a parameter entity would fetch a remote DTD.
@pytest.mark.parametrize(
    "name", ["attack_billion_laughs.xml", "attack_quadratic_blowup.xml", "attack_xxe.xml"]
)
def test_attack_files_rejected(name: str) -> None:
    with pytest.raises(UnsafeXmlError) as ei:
        parse_camt(sample(name), name=name)
    assert ei.value.where is not None and ei.value.where.startswith(f"{name}:")


# The same attacks in UTF-16: the byte scan for "<!DOCTYPE" cannot see them, so the
# second layer (defusedxml with forbid_dtd / forbid_entities / forbid_external) must.
@pytest.mark.parametrize(
    "name", ["attack_billion_laughs.xml", "attack_quadratic_blowup.xml", "attack_xxe.xml"]
)
def test_attack_files_rejected_by_defusedxml_layer_too(name: str) -> None:
    text = sample(name).decode().replace('encoding="UTF-8"', 'encoding="UTF-16"')
    with pytest.raises(UnsafeXmlError):
        parse_camt(text.encode("utf-16"), name=name)


def test_internal_dtd_without_entities_is_also_refused() -> None:
    # A statement never needs a DTD; refusing every DOCTYPE closes the whole family.
    doc = sample("harbour_trust_camt053_v08.xml").replace(
        b"<Document", b"<!DOCTYPE Document>\n<Document", 1
    )
    with pytest.raises(UnsafeXmlError):
        parse_camt(doc, name="d.xml")
