"""serving: aliases, usage, completion records, feedback, rate limits

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 14:49:25.278068
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "completion_records",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=255), nullable=False),
        sa.Column("served_model", sa.String(length=255), nullable=False),
        sa.Column("adapter_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_completion_records_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_completion_records")),
    )
    op.create_index(
        op.f("ix_completion_records_adapter_id"), "completion_records", ["adapter_id"], unique=False
    )
    op.create_index(
        op.f("ix_completion_records_tenant_id"), "completion_records", ["tenant_id"], unique=False
    )
    op.create_table(
        "rate_limits",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("requests_per_minute", sa.BigInteger(), nullable=True),
        sa.Column("tokens_per_minute", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_rate_limits_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_rate_limits")),
    )
    op.create_table(
        "usage_daily",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("served_model", sa.String(length=255), nullable=False),
        sa.Column("adapter_id", sa.String(length=64), nullable=True),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), nullable=False),
        sa.Column("completion_tokens", sa.BigInteger(), nullable=False),
        sa.Column("latency_ms_total", sa.BigInteger(), nullable=False),
        sa.Column("latency_ms_max", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_usage_daily_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "day", "served_model", name=op.f("pk_usage_daily")),
    )
    op.create_table(
        "feedback",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("completion_id", sa.String(length=128), nullable=False),
        sa.Column("adapter_id", sa.String(length=64), nullable=True),
        sa.Column("served_model", sa.String(length=255), nullable=False),
        sa.Column("rating", sa.String(length=8), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["completion_id"],
            ["completion_records.id"],
            name=op.f("fk_feedback_completion_id_completion_records"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_feedback_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback")),
        sa.UniqueConstraint("completion_id", name=op.f("uq_feedback_completion_id")),
    )
    op.create_index(
        "ix_feedback_adapter_id_created_at", "feedback", ["adapter_id", "created_at"], unique=False
    )
    op.create_index(op.f("ix_feedback_tenant_id"), "feedback", ["tenant_id"], unique=False)
    op.create_table(
        "aliases",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=96), nullable=False),
        sa.Column("adapter_id", sa.String(length=64), nullable=True),
        sa.Column("base_model", sa.String(length=255), nullable=True),
        sa.Column("system_prompt", sa.Text(), nullable=True),
        sa.Column("previous_adapter_id", sa.String(length=64), nullable=True),
        sa.Column("previous_base_model", sa.String(length=255), nullable=True),
        sa.Column("previous_system_prompt", sa.Text(), nullable=True),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["adapter_id"], ["adapters.id"], name=op.f("fk_aliases_adapter_id_adapters")
        ),
        sa.ForeignKeyConstraint(
            ["previous_adapter_id"],
            ["adapters.id"],
            name=op.f("fk_aliases_previous_adapter_id_adapters"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_aliases_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_aliases")),
        sa.UniqueConstraint("tenant_id", "name", name="uq_aliases_tenant_id_name"),
    )
    op.create_index(op.f("ix_aliases_tenant_id"), "aliases", ["tenant_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_aliases_tenant_id"), table_name="aliases")
    op.drop_table("aliases")
    op.drop_index(op.f("ix_feedback_tenant_id"), table_name="feedback")
    op.drop_index("ix_feedback_adapter_id_created_at", table_name="feedback")
    op.drop_table("feedback")
    op.drop_table("usage_daily")
    op.drop_table("rate_limits")
    op.drop_index(op.f("ix_completion_records_tenant_id"), table_name="completion_records")
    op.drop_index(op.f("ix_completion_records_adapter_id"), table_name="completion_records")
    op.drop_table("completion_records")
