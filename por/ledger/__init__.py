"""Off-chain liabilities (`ledger:<issuer>:<id>` accounts): exports, sources, selection.

- `por.ledger.export`: the `por-ledger-v1` export (JSON, CSV), parsed whole or refused whole;
- `por.ledger.sources`: files (signed with a detached `.sig`, or hash-referenced) and the
  signed HTTP API (`por-ledger-api-v1`);
- `por.ledger.liabilities`: which export counts at an as-of, the leaves and the totals by
  category that go into the attestation.

docs/ledger.md is the format document.
"""
