"""Add task_child_request: the child runs that a parent task requests from the operator.

Revision ID: 0002_child_requests
Revises: 0001_initial
Create Date: 2026-02-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002_child_requests"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "task_child_request",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), primary_key=True),
        sa.Column(
            "parent_task_id",
            sa.BigInteger(),
            sa.ForeignKey("task_run.id", ondelete="CASCADE", name="task_child_request_parent_task_id_fkey"),
            nullable=False,
        ),
        sa.Column("task_class", sa.Text(), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=True),
        sa.Column("parameters", postgresql.JSONB(), nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("needs_approval", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("approval", sa.Text(), nullable=True),
        sa.Column("child_namespace", sa.Text(), nullable=True),
        sa.Column("child_name", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("approval IN ('approved', 'rejected')", name="task_child_request_approval_check"),
    )
    op.create_index("task_child_request_parent_task_id_idx", "task_child_request", ["parent_task_id"])


def downgrade() -> None:
    op.drop_index("task_child_request_parent_task_id_idx", table_name="task_child_request")
    op.drop_table("task_child_request")
