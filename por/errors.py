"""The one exception tree of por.

    PorError                         root; every error por raises on purpose
    ├── InputError                   bad input: a file, line, field or argument that is wrong
    │   ├── AmountError              not an integer amount in [0, 2^127), a float, a bad decimal
    │   ├── FormatError              malformed JSON/XML/statement/proof shape
    │   └── ConfigError              the TOML configuration or an environment setting is wrong
    ├── VerificationError            a cryptographic or accounting check failed (expected/computed)
    │   ├── ProofError               a sum-tree or log proof does not verify
    │   ├── SignatureError           a signature, key set or key window does not verify
    │   ├── ChainLinkError           the attestation hash chain is broken (previous digest/sequence)
    │   └── MismatchError            totals that must agree do not (root, sum, supply)
    ├── SourceError                  a data source failed: names the source and endpoint
    │   ├── ChainError               EVM or Solana node: bad answer, revert, wrong chain, no quorum
    │   └── CustodianError           a custodian statement or API
    ├── StoreError                   persistent storage (database, files) failed or is inconsistent
    ├── ClusterError                 the distributed tree engine (a Dask cluster) failed or vanished
    ├── PublishError                 publishing to an oracle or another sink failed
    └── SigningError                 a signing key (HSM token, PIN, key label) cannot be used

Every error carries `where` (file:line:field, endpoint, ...) when it is known, and
`diagnostics()` gives the one text the CLI and the API show. Foreign exceptions are
wrapped once at the adapter edge with `raise ... from e`.
"""

from __future__ import annotations


class PorError(Exception):
    """Root of every error por raises on purpose."""

    def __init__(self, message: str, *, where: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.where = where

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message

    def diagnostics(self) -> str:
        """A complete, human-readable account of what went wrong and where."""
        kind = type(self).__name__
        return f"{kind}: {self}"


class InputError(PorError):
    """Bad input: names the file, line and field when it can."""


class AmountError(InputError):
    """An amount that is not an integer number of base units in [0, 2^127)."""


class FormatError(InputError):
    """Input of the wrong shape: malformed JSON, XML, statement or proof."""


class ConfigError(InputError):
    """A wrong configuration value."""


class VerificationError(PorError):
    """A check failed. `expected` and `computed` say what differed, when it applies."""

    def __init__(
        self,
        message: str,
        *,
        expected: object = None,
        computed: object = None,
        where: str | None = None,
    ) -> None:
        detail = message
        if expected is not None or computed is not None:
            detail = f"{message} (expected {expected}, computed {computed})"
        super().__init__(detail, where=where)
        self.expected = expected
        self.computed = computed


class ProofError(VerificationError):
    """A Merkle sum-tree or log proof does not verify."""


class SignatureError(VerificationError):
    """A signature, key or key-validity window does not verify."""


class ChainLinkError(VerificationError):
    """The attestation hash chain (previous sequence and digest) is broken."""


class MismatchError(VerificationError):
    """Totals that must agree do not: a root, a sum, a supply."""


class SourceError(PorError):
    """A data source failed; `where` names the source and endpoint."""


class ChainError(SourceError):
    """An EVM or Solana node answered wrongly, reverted, was on another chain, or no quorum."""


class CustodianError(SourceError):
    """A custodian statement or API failed."""


class StoreError(PorError):
    """Persistent storage failed or is inconsistent."""


class ClusterError(PorError):
    """The cluster a distributed tree build runs on cannot be reached, or failed or
    disappeared during the build; `where` names the scheduler. Nothing is recorded."""


class PublishError(PorError):
    """Publishing to an oracle or another sink failed."""


class SigningError(PorError):
    """A signing key cannot be used: the HSM or its token is unavailable, a PIN is wrong."""


__all__ = [
    "AmountError",
    "ChainError",
    "ChainLinkError",
    "ClusterError",
    "ConfigError",
    "CustodianError",
    "FormatError",
    "InputError",
    "MismatchError",
    "PorError",
    "ProofError",
    "PublishError",
    "SignatureError",
    "SigningError",
    "SourceError",
    "StoreError",
    "VerificationError",
]
