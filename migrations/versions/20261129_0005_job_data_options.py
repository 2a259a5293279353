"""job data options and data preparation

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 17:35:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("fine_tuning_jobs") as batch:
        batch.add_column(sa.Column("data_options", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("data_preparation", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("fine_tuning_jobs") as batch:
        batch.drop_column("data_preparation")
        batch.drop_column("data_options")
