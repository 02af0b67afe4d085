"""Table definitions of the task database, as SQLAlchemy Core objects.

Used by ``TaskDatabase`` to build queries and by the Alembic environment as its target metadata
for autogenerate. The schema itself is created only by the migrations in ``migrations/versions``,
so a change here needs a new revision there.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

# One row per attempt of an ETLTask. The operator creates it before the attempt's pod exists.
task_run = Table(
    "task_run",
    metadata,
    Column("id", BigInteger, Identity(always=False), primary_key=True),
    Column("namespace", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("uid", Text, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("task_class", Text, nullable=False),
    Column("display_name", Text),
    Column("status", Text, nullable=False),
    Column("pod_name", Text),
    Column("parent_task_id", BigInteger, ForeignKey("task_run.id", ondelete="SET NULL")),
    Column("root_task_id", BigInteger, ForeignKey("task_run.id", ondelete="SET NULL")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("exit_code", Integer),
    Column("message", Text),
    Column("error", Text),
    UniqueConstraint("uid", "attempt", name="task_run_uid_attempt_key"),
    Index("task_run_namespace_name_idx", "namespace", "name"),
    Index("task_run_parent_task_id_idx", "parent_task_id"),
    Index("task_run_root_task_id_idx", "root_task_id"),
)

# Parameters as JSON. ``key`` is the lower-cased name, which makes names case-insensitive. A
# ``secret`` parameter's value is always the mask "********"; the real value never reaches the table.
task_parameter = Table(
    "task_parameter",
    metadata,
    Column("task_id", BigInteger, ForeignKey("task_run.id", ondelete="CASCADE"), primary_key=True),
    Column("key", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("value", JSONB(none_as_null=False), nullable=False),
    Column("secret", Boolean, nullable=False, server_default=false()),
)

task_status_history = Table(
    "task_status_history",
    metadata,
    Column("id", BigInteger, Identity(always=False), primary_key=True),
    Column("task_id", BigInteger, ForeignKey("task_run.id", ondelete="CASCADE"), nullable=False),
    Column("status", Text, nullable=False),
    Column("message", Text),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("task_status_history_task_id_idx", "task_id", "id"),
)

# Flattened statistics with dotted names, e.g. ``task.load.seconds`` or ``reader.rows_read``.
task_statistic = Table(
    "task_statistic",
    metadata,
    Column("task_id", BigInteger, ForeignKey("task_run.id", ondelete="CASCADE"), primary_key=True),
    Column("name", Text, primary_key=True),
    Column("value", JSONB(none_as_null=False), nullable=False),
)

# A parent task's request for a child run. The runtime inserts it; the operator creates the child
# ETLTask and records its name here. ``approval`` stays NULL until a parent that must approve its
# children decides.
task_child_request = Table(
    "task_child_request",
    metadata,
    Column("id", BigInteger, Identity(always=False), primary_key=True),
    Column(
        "parent_task_id",
        BigInteger,
        ForeignKey("task_run.id", ondelete="CASCADE", name="task_child_request_parent_task_id_fkey"),
        nullable=False,
    ),
    Column("task_class", Text, nullable=False),
    Column("display_name", Text),
    Column("parameters", JSONB(none_as_null=False), nullable=False, server_default=text("'{}'::jsonb")),
    Column("needs_approval", Boolean, nullable=False, server_default=false()),
    Column("approval", Text),
    Column("child_namespace", Text),
    Column("child_name", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("approval IN ('approved', 'rejected')", name="task_child_request_approval_check"),
    Index("task_child_request_parent_task_id_idx", "parent_task_id"),
)
