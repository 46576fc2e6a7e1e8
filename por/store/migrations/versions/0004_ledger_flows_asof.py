"""off-chain liabilities, flow reconciliation, attestations as of a past time (issue 18):
the attestation's kind, its match list, source documents by time, recorded chain snapshots

Revision ID: 0004_ledger_flows_asof
Revises: 0003_log_cosignatures
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_ledger_flows_asof"
down_revision = "0003_log_cosignatures"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("por_attestations") as batch:
        batch.add_column(sa.Column("kind", sa.String(16), server_default="regular", nullable=False))
    op.create_table(
        "por_reconciliations",
        sa.Column(
            "sequence",
            sa.BigInteger,
            sa.ForeignKey("por_attestations.sequence"),
            primary_key=True,
        ),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("matches_json", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "por_source_documents",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("source", sa.String(128), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("format", sa.String(64), nullable=False),
        sa.Column("name", sa.String(512), nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=True),
        sa.Column("parsed_json", sa.LargeBinary, nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("source", "sha256"),
    )
    op.create_index(
        "ix_por_source_documents_source", "por_source_documents", ["source"], unique=False
    )
    op.create_table(
        "por_chain_snapshots",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("chain_id", sa.String(64), nullable=False),
        sa.Column("block_number", sa.BigInteger, nullable=False),
        sa.Column("block_hash", sa.String(128), nullable=False),
        sa.Column("block_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("snapshot_zlib", sa.LargeBinary, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("chain_id", "block_number"),
    )
    op.create_index(
        "ix_por_chain_snapshots_chain_id", "por_chain_snapshots", ["chain_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_por_chain_snapshots_chain_id", table_name="por_chain_snapshots")
    op.drop_table("por_chain_snapshots")
    op.drop_index("ix_por_source_documents_source", table_name="por_source_documents")
    op.drop_table("por_source_documents")
    op.drop_table("por_reconciliations")
    with op.batch_alter_table("por_attestations") as batch:
        batch.drop_column("kind")
