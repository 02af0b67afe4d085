"""Create the task run tables: runs, parameters, status history and statistics.

Revision ID: 0001_initial
Revises:
Create Date: 2026-01-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001_initial"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "task_run",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), primary_key=True),
        sa.Column("namespace", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("uid", sa.Text(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("task_class", sa.Text(), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("pod_name", sa.Text(), nullable=True),
        sa.Column(
            "parent_task_id",
            sa.BigInteger(),
            sa.ForeignKey("task_run.id", ondelete="SET NULL", name="task_run_parent_task_id_fkey"),
            nullable=True,
        ),
        sa.Column(
            "root_task_id",
            sa.BigInteger(),
            sa.ForeignKey("task_run.id", ondelete="SET NULL", name="task_run_root_task_id_fkey"),
            nullable=True,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.UniqueConstraint("uid", "attempt", name="task_run_uid_attempt_key"),
    )
    op.create_index("task_run_namespace_name_idx", "task_run", ["namespace", "name"])
    op.create_index("task_run_parent_task_id_idx", "task_run", ["parent_task_id"])
    op.create_index("task_run_root_task_id_idx", "task_run", ["root_task_id"])

    op.create_table(
        "task_parameter",
        sa.Column(
            "task_id",
            sa.BigInteger(),
            sa.ForeignKey("task_run.id", ondelete="CASCADE", name="task_parameter_task_id_fkey"),
            primary_key=True,
        ),
        sa.Column("key", sa.Text(), primary_key=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("value", postgresql.JSONB(), nullable=False),
    )

    op.create_table(
        "task_status_history",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), primary_key=True),
        sa.Column(
            "task_id",
            sa.BigInteger(),
            sa.ForeignKey("task_run.id", ondelete="CASCADE", name="task_status_history_task_id_fkey"),
            nullable=False,
        ),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("task_status_history_task_id_idx", "task_status_history", ["task_id", "id"])

    op.create_table(
        "task_statistic",
        sa.Column(
            "task_id",
            sa.BigInteger(),
            sa.ForeignKey("task_run.id", ondelete="CASCADE", name="task_statistic_task_id_fkey"),
            primary_key=True,
        ),
        sa.Column("name", sa.Text(), primary_key=True),
        sa.Column("value", postgresql.JSONB(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("task_statistic")
    op.drop_table("task_status_history")
    op.drop_table("task_parameter")
    op.drop_index("task_run_root_task_id_idx", table_name="task_run")
    op.drop_index("task_run_parent_task_id_idx", table_name="task_run")
    op.drop_index("task_run_namespace_name_idx", table_name="task_run")
    op.drop_table("task_run")
