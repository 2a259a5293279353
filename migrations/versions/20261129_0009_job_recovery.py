"""job heartbeats, attempts and waiting for a slot; checkpoint names

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 17:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("fine_tuning_jobs", sa.Column("heartbeat_at", sa.BigInteger(), nullable=True))
    op.add_column(
        "fine_tuning_jobs",
        sa.Column("attempts", sa.BigInteger(), nullable=False, server_default="0"),
    )
    op.add_column(
        "fine_tuning_jobs",
        sa.Column("waiting_for_slot", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_index(
        "ix_job_checkpoints_tenant_id_name",
        "job_checkpoints",
        ["tenant_id", "fine_tuned_model_checkpoint"],
    )


def downgrade() -> None:
    op.drop_index("ix_job_checkpoints_tenant_id_name", table_name="job_checkpoints")
    op.drop_column("fine_tuning_jobs", "waiting_for_slot")
    op.drop_column("fine_tuning_jobs", "attempts")
    op.drop_column("fine_tuning_jobs", "heartbeat_at")
