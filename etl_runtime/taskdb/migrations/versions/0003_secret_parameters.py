"""Add task_parameter.secret: a parameter whose value is a secret, stored only as a mask.

Revision ID: 0003_secret_parameters
Revises: 0002_child_requests
Create Date: 2026-03-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_secret_parameters"
down_revision: str | None = "0002_child_requests"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "task_parameter",
        sa.Column("secret", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    op.drop_column("task_parameter", "secret")
