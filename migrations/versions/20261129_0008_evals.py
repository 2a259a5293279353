"""eval runs, decision reports, alias history, adapter exports

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 17:04:29.351292
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "decision_reports",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("job_id", sa.String(length=64), nullable=False),
        sa.Column("adapter_id", sa.String(length=64), nullable=False),
        sa.Column("eval_file_ids", sa.JSON(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("report", sa.JSON(), nullable=True),
        sa.Column("error", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("finished_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["fine_tuning_jobs.id"],
            name=op.f("fk_decision_reports_job_id_fine_tuning_jobs"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_decision_reports_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decision_reports")),
    )
    op.create_index(
        op.f("ix_decision_reports_job_id"), "decision_reports", ["job_id"], unique=False
    )
    op.create_index(
        op.f("ix_decision_reports_tenant_id"), "decision_reports", ["tenant_id"], unique=False
    )
    op.create_table(
        "adapter_exports",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("adapter_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("storage_key", sa.String(length=512), nullable=True),
        sa.Column("bytes", sa.BigInteger(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("error", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("finished_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["adapter_id"],
            ["adapters.id"],
            name=op.f("fk_adapter_exports_adapter_id_adapters"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_adapter_exports_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_adapter_exports")),
    )
    op.create_index(
        op.f("ix_adapter_exports_adapter_id"), "adapter_exports", ["adapter_id"], unique=False
    )
    op.create_index(
        op.f("ix_adapter_exports_tenant_id"), "adapter_exports", ["tenant_id"], unique=False
    )
    op.create_table(
        "eval_runs",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("eval_file_id", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=255), nullable=False),
        sa.Column("alias", sa.String(length=96), nullable=True),
        sa.Column("adapter_id", sa.String(length=64), nullable=True),
        sa.Column("base_model", sa.String(length=255), nullable=False),
        sa.Column("system_prompt", sa.Text(), nullable=True),
        sa.Column("few_shot", sa.JSON(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("decision_report_id", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("rows_total", sa.BigInteger(), nullable=False),
        sa.Column("rows_done", sa.BigInteger(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=True),
        sa.Column("error", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=True),
        sa.Column("finished_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["decision_report_id"],
            ["decision_reports.id"],
            name=op.f("fk_eval_runs_decision_report_id_decision_reports"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_eval_runs_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_eval_runs")),
    )
    op.create_index(op.f("ix_eval_runs_adapter_id"), "eval_runs", ["adapter_id"], unique=False)
    op.create_index(
        op.f("ix_eval_runs_decision_report_id"), "eval_runs", ["decision_report_id"], unique=False
    )
    op.create_index(op.f("ix_eval_runs_eval_file_id"), "eval_runs", ["eval_file_id"], unique=False)
    op.create_index("ix_eval_runs_tenant_id_id", "eval_runs", ["tenant_id", "id"], unique=False)
    op.create_table(
        "alias_events",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("alias_id", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("adapter_id", sa.String(length=64), nullable=True),
        sa.Column("base_model", sa.String(length=255), nullable=True),
        sa.Column("system_prompt", sa.Text(), nullable=True),
        sa.Column("reason", sa.String(length=2000), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["alias_id"],
            ["aliases.id"],
            name=op.f("fk_alias_events_alias_id_aliases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_alias_events_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alias_events")),
    )
    op.create_index("ix_alias_events_alias_id_id", "alias_events", ["alias_id", "id"], unique=False)
    op.create_index(op.f("ix_alias_events_tenant_id"), "alias_events", ["tenant_id"], unique=False)
    op.create_table(
        "eval_run_rows",
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("line", sa.BigInteger(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("output", sa.Text(), nullable=True),
        sa.Column("scores", sa.JSON(), nullable=False),
        sa.Column("latency_ms", sa.Double(), nullable=True),
        sa.Column("prompt_tokens", sa.BigInteger(), nullable=False),
        sa.Column("completion_tokens", sa.BigInteger(), nullable=False),
        sa.Column("error", sa.String(length=2000), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["eval_runs.id"],
            name=op.f("fk_eval_run_rows_run_id_eval_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "line", name=op.f("pk_eval_run_rows")),
    )


def downgrade() -> None:
    op.drop_table("eval_run_rows")
    op.drop_index(op.f("ix_alias_events_tenant_id"), table_name="alias_events")
    op.drop_index("ix_alias_events_alias_id_id", table_name="alias_events")
    op.drop_table("alias_events")
    op.drop_index("ix_eval_runs_tenant_id_id", table_name="eval_runs")
    op.drop_index(op.f("ix_eval_runs_eval_file_id"), table_name="eval_runs")
    op.drop_index(op.f("ix_eval_runs_decision_report_id"), table_name="eval_runs")
    op.drop_index(op.f("ix_eval_runs_adapter_id"), table_name="eval_runs")
    op.drop_table("eval_runs")
    op.drop_index(op.f("ix_adapter_exports_tenant_id"), table_name="adapter_exports")
    op.drop_index(op.f("ix_adapter_exports_adapter_id"), table_name="adapter_exports")
    op.drop_table("adapter_exports")
    op.drop_index(op.f("ix_decision_reports_tenant_id"), table_name="decision_reports")
    op.drop_index(op.f("ix_decision_reports_job_id"), table_name="decision_reports")
    op.drop_table("decision_reports")
