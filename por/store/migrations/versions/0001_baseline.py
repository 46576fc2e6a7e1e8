"""baseline: the schema of por before migrations (SCHEMA_VERSION 1)

Revision ID: 0001_baseline
Revises:
Create Date: 2026-01-01

Written out table by table (not `Base.metadata.create_all`), so later changes to the
models never change what this revision creates. A database created by an older por
(tables present, no alembic_version) is stamped at this revision by `por db upgrade`.
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_baseline"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    meta = op.create_table(
        "por_meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(256), nullable=False),
    )
    op.create_table(
        "por_attestations",
        sa.Column("sequence", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("digest", sa.String(64), nullable=False, unique=True),
        sa.Column("previous_digest", sa.String(64)),
        sa.Column("envelope_json", sa.LargeBinary, nullable=False),
        sa.Column("document_json", sa.LargeBinary, nullable=False),
        sa.Column("issued_at", TZ, nullable=False),
        sa.Column("as_of", TZ, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("ratio", sa.String(64)),
        sa.Column("eligible_reserves", sa.String(40), nullable=False),
        sa.Column("circulating_supply", sa.String(40), nullable=False),
        sa.Column("liabilities_root", sa.String(64), nullable=False),
        sa.Column("tree_file", sa.String(255), nullable=False),
        sa.Column("tree_sha256", sa.String(64), nullable=False),
        sa.Column("round_secret", sa.LargeBinary, nullable=False),
        sa.Column("recorded_at", TZ, nullable=False),
    )
    op.create_table(
        "por_log_leaves",
        sa.Column("leaf_index", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column(
            "sequence",
            sa.BigInteger,
            sa.ForeignKey("por_attestations.sequence"),
            nullable=False,
            unique=True,
        ),
        sa.Column("leaf_hash", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "por_checkpoints",
        sa.Column("size", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("root_hash", sa.LargeBinary, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
    )
    op.create_table(
        "por_publications",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("chain_id", sa.String(64), nullable=False),
        sa.Column("sequence", sa.BigInteger, nullable=False),
        sa.Column("contract", sa.String(128), nullable=False),
        sa.Column("tx_hash", sa.String(128)),
        sa.Column("block_number", sa.BigInteger),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.UniqueConstraint("chain_id", "sequence"),
    )
    op.create_table(
        "por_publish_intents",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("chain_id", sa.String(64), nullable=False),
        sa.Column("sequence", sa.BigInteger, nullable=False),
        sa.Column("intent_json", sa.LargeBinary, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.UniqueConstraint("chain_id", "sequence"),
    )
    # the schema version (kept for older readers) and the row writers lock
    op.bulk_insert(meta, [{"key": "schema_version", "value": "1"}, {"key": "head", "value": "0"}])


def downgrade() -> None:
    for table in (
        "por_publish_intents",
        "por_publications",
        "por_checkpoints",
        "por_log_leaves",
        "por_attestations",
        "por_meta",
    ):
        op.drop_table(table)
