"""log witnesses and auditor co-signatures (issue 14): witness cosignature lines per
checkpoint size, where the log stands with each configured witness, auditor signatures
stored beside the envelope

Revision ID: 0003_log_cosignatures
Revises: 0002_alert_dead_letters
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_log_cosignatures"
down_revision = "0002_alert_dead_letters"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "por_witness_cosignatures",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("size", sa.BigInteger, sa.ForeignKey("por_checkpoints.size"), nullable=False),
        sa.Column("witness", sa.String(255), nullable=False),
        sa.Column("key_id", sa.LargeBinary, nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.Column("line", sa.Text, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("size", "witness", "key_id"),
    )
    op.create_index(
        "ix_por_witness_cosignatures_size", "por_witness_cosignatures", ["size"], unique=False
    )
    op.create_table(
        "por_witness_submissions",
        sa.Column("witness", sa.String(255), primary_key=True),
        sa.Column("known_size", sa.BigInteger, nullable=False),
        sa.Column("cosigned_size", sa.BigInteger, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "por_auditor_signatures",
        sa.Column(
            "sequence",
            sa.BigInteger,
            sa.ForeignKey("por_attestations.sequence"),
            primary_key=True,
        ),
        sa.Column("keyid", sa.String(64), primary_key=True),
        sa.Column("sig", sa.LargeBinary, nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("por_auditor_signatures")
    op.drop_table("por_witness_submissions")
    op.drop_index("ix_por_witness_cosignatures_size", table_name="por_witness_cosignatures")
    op.drop_table("por_witness_cosignatures")
