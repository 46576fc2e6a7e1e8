"""run state out of files (issue 19): index checkpoints, flow indexes, memo intents and raw
statements as rows, so a leader can fail over to a machine with an empty disk

Revision ID: 0005_i19b_state_blobs
Revises: 0005_i12a_publication_queue
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_i19b_state_blobs"
down_revision = "0005_i12a_publication_queue"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "por_state_blobs",
        sa.Column("namespace", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("value", sa.LargeBinary, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("por_state_blobs")
