"""Persistent storage of attestations, tree files, the attestation log and publications.

SQLite by default, PostgreSQL by URL; see `por.store.store` for the write path and
docs/storage.md for the layout. Importing this package imports SQLAlchemy: the core
verification paths never do.
"""

from por.store.leader import Leadership
from por.store.store import (
    CHECKPOINT_FILE,
    LogConsistency,
    LogInclusion,
    Publication,
    Recorded,
    SequenceConflictError,
    Store,
    StoredAttestation,
    StoredCheckpoint,
    UnknownSequenceError,
    default_url,
    envelope_file_name,
)

__all__ = [
    "CHECKPOINT_FILE",
    "Leadership",
    "LogConsistency",
    "LogInclusion",
    "Publication",
    "Recorded",
    "SequenceConflictError",
    "Store",
    "StoredAttestation",
    "StoredCheckpoint",
    "UnknownSequenceError",
    "default_url",
    "envelope_file_name",
]
