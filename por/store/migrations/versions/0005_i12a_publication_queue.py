"""the publication queue (issue 12): a pending round's reason, attempts, next retry, and
the newer round that superseded it, beside the (now fixed-vocabulary) status

Revision ID: 0005_i12a_publication_queue
Revises: 0004_ledger_flows_asof
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_i12a_publication_queue"
down_revision = "0004_ledger_flows_asof"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("por_publications") as batch:
        batch.add_column(sa.Column("error", sa.Text, nullable=True))
        batch.add_column(sa.Column("attempts", sa.Integer, server_default="0", nullable=False))
        batch.add_column(sa.Column("retry_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("superseded_by", sa.BigInteger, nullable=True))
    # rows an older version wrote as "failed: <reason>" (cut at 32 characters) are pending
    op.execute(
        "UPDATE por_publications SET error = status, status = 'pending' "
        "WHERE status NOT IN ('published', 'already_published', 'pending', 'superseded')"
    )


def downgrade() -> None:
    op.execute("UPDATE por_publications SET status = 'failed' WHERE status = 'pending'")
    with op.batch_alter_table("por_publications") as batch:
        batch.drop_column("superseded_by")
        batch.drop_column("retry_at")
        batch.drop_column("attempts")
        batch.drop_column("error")
