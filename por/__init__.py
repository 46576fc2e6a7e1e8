"""por: proof-of-reserve attestation service for a fiat-backed, multi-chain stablecoin.

`por.core` is the pure part auditors and holders need (sum tree, log, attestation,
DSSE); everything with I/O lives in the sibling packages.
"""

__version__ = "0.1.0"
