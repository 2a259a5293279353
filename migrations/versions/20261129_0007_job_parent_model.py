"""fine-tuning jobs that start from a fine-tuned model

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 17:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("fine_tuning_jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parent_model", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("parent_adapter_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("fine_tuning_jobs", schema=None) as batch_op:
        batch_op.drop_column("parent_adapter_id")
        batch_op.drop_column("parent_model")
