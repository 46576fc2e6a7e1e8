"""Persistent storage of attestations, tree files, the attestation log and publications.

SQLite by default, PostgreSQL by URL; see `por.store.store` for the write path and
docs/storage.md for the layout. `por.store.base` holds the value types and the
`AttestationStore` protocol without any database import; importing this package (or
`por.store.store`) imports SQLAlchemy: the core verification paths never do.
"""

from por.store.base import (
    AttestationStore,
    LogConsistency,
    LogInclusion,
    Publication,
    Recorded,
    SequenceConflictError,
    StoredAttestation,
    StoredCheckpoint,
    UnknownSequenceError,
)
from por.store.leader import Leadership
from por.store.store import CHECKPOINT_FILE, Store, default_url, envelope_file_name

__all__ = [
    "CHECKPOINT_FILE",
    "AttestationStore",
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
