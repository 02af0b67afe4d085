"""The task database: the record of every ETLTask run, kept in Postgres.

The operator imports this package to create a row per attempt, record phase changes, and find the
child runs that parent tasks request. The runtime uses it inside the pod to read parameters, write
statistics and errors, and request and follow child runs. The schema is owned by the Alembic
migrations in ``migrations/``, applied by ``TaskDatabase.upgrade``.
"""

from etl_runtime._errors import ParameterError
from etl_runtime._secrets import SECRET_MASK
from etl_runtime.taskdb._database import (
    CHILD_APPROVAL_CHANNEL,
    CHILD_REQUEST_CHANNEL,
    DATABASE_URL_VARIABLE,
    TaskDatabase,
)
from etl_runtime.taskdb._records import (
    APPROVED,
    REJECTED,
    TERMINAL_STATUSES,
    ChildRequest,
    ChildRequestNotFoundError,
    RunRecord,
    StatusChange,
    StoredParameter,
    TaskDatabaseError,
    TaskNotFoundError,
)

__all__ = [
    "APPROVED",
    "CHILD_APPROVAL_CHANNEL",
    "CHILD_REQUEST_CHANNEL",
    "DATABASE_URL_VARIABLE",
    "REJECTED",
    "SECRET_MASK",
    "TERMINAL_STATUSES",
    "ChildRequest",
    "ChildRequestNotFoundError",
    "ParameterError",
    "RunRecord",
    "StatusChange",
    "StoredParameter",
    "TaskDatabase",
    "TaskDatabaseError",
    "TaskNotFoundError",
]
