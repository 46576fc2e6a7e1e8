"""alert dead letters: webhook deliveries that never arrived (por.service.alerts)

Revision ID: 0002_alert_dead_letters
Revises: 0001_baseline
Create Date: 2026-01-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_alert_dead_letters"
down_revision = "0001_baseline"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "por_alert_dead_letters",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("alert_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("url", sa.String(512), nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("por_alert_dead_letters")
